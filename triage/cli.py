"""The triage command: ``python -m actions.triage CASE_FILE``.

Reads a case (YAML or JSON; ``-`` reads stdin), prints the outcome as one JSON
object on stdout and exits 0. An invalid case or file exits 2 with one line on
stderr naming the field (or the file) and what was expected; never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

USAGE = "usage: python -m actions.triage [--pretty] CASE_FILE  (YAML or JSON; '-' reads stdin)"
EXIT_OK, EXIT_ERROR, EXIT_INVALID = 0, 1, 2


class InputError(Exception):
    """The case file cannot be read or parsed (one-line message)."""


def _read(name: str) -> str:
    try:
        if name == "-":
            data = sys.stdin.buffer.read()
        else:
            data = Path(name).read_bytes()
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise InputError(f"{name}: expected a readable case file ({reason})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{name}: expected a UTF-8 text file (YAML or JSON)") from None


def parse(text: str, name: str) -> Any:
    """Parses case text as JSON, or else YAML.

    Raises:
        InputError: if it is neither, or is empty.
    """
    if not text.strip():
        raise InputError(f"{name}: expected a case (YAML or JSON mapping), the file is empty")
    try:
        return json.loads(text)
    except ValueError:
        pass
    import yaml

    from .loader import read_yaml

    try:
        data = read_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise InputError(f"{name}: expected YAML or JSON, could not parse it{where}") from None
    if data is None:
        raise InputError(f"{name}: expected a case (YAML or JSON mapping), the file is empty")
    return data


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command; returns the exit code (0 ok, 2 invalid input, 1 internal error)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(USAGE)
        return EXIT_OK
    pretty = "--pretty" in args
    args = [a for a in args if a != "--pretty"]
    if len(args) != 1:
        print(USAGE, file=sys.stderr)
        return EXIT_INVALID

    from . import CaseError, triage

    name = args[0]
    try:
        outcome = triage(parse(_read(name), "<stdin>" if name == "-" else name))
    except (InputError, CaseError) as exc:
        print(_one_line(exc), file=sys.stderr)
        return EXIT_INVALID
    except RecursionError:
        where = "<stdin>" if name == "-" else name
        print(f"{where}: expected a flat case mapping, it is nested too deeply", file=sys.stderr)
        return EXIT_INVALID
    except Exception as exc:  # noqa: BLE001 - never show a traceback
        print(_one_line(f"internal error: {exc.__class__.__name__}: {exc}"), file=sys.stderr)
        return EXIT_ERROR
    text = json.dumps(outcome, ensure_ascii=False, indent=2 if pretty else None)
    try:
        sys.stdout.buffer.write((text + "\n").encode("utf-8"))
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    return EXIT_OK
