"""A/B of one endpoints.yml setting, or of two models: CPU per turn, interleaved.

Measures a candidate for issue 16's "half the CPU" the way the benchmark does (the
trained model, the shipped SQLite store, `bench/loadgen.py` closed-loop interviews)
but only what differs between two `action_endpoint` settings, with the runs
interleaved (A B A B ...) on one action server so drift on a shared host hits both:

    python -m bench.ab_endpoints --key enable_selective_domain --a false --b true
    python -m bench.ab_endpoints --models OFF.tar.gz models/hip-triage.tar.gz

(two models: e.g. one trained with a patch disabled in its config, see
bench/variants/, against the shipped one).

Prints one line per run and the median per variant; writes nothing else. A benchmark:
it reports, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench import procs

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "hip-triage.tar.gz"
DIALOGUES = ROOT / "bench" / "dialogues.yml"


def one_run(
    tmp: Path, actions: procs.Server, key: str | None, value: Any, level: int, seconds: float,
    n: int, model: Path = MODEL,
) -> dict[str, Any]:  # fmt: skip
    """A fresh Rasa server on `model`, with `action_endpoint.<key>: value`; one timed load."""
    endpoints = procs.write_endpoints(
        ROOT / "endpoints.yml", tmp / f"endpoints-{n}.yml", actions.port, tmp / f"t-{n}.db"
    )
    if key is not None:
        data = yaml.safe_load(endpoints.read_text())
        data["action_endpoint"][key] = value
        endpoints.write_text(yaml.safe_dump(data, sort_keys=False))
    token = secrets.token_hex(16)
    rasa = procs.start_rasa(model, ROOT, endpoints, token, tmp, procs.env())
    try:
        out = tmp / f"load-{n}.json"
        url = f"http://127.0.0.1:{rasa.port}"
        args = [
            sys.executable, "-m", "bench.loadgen", "--url", url, "--token", token,
            "--dialogues", str(DIALOGUES), "--concurrency", str(level),
            "--max-dialogues", str(100 * level), "--max-seconds", str(seconds), "--abandon",
            "--out", str(out),
        ]  # fmt: skip
        r0, a0, t0 = procs.cpu_s(rasa.pid), procs.cpu_s(actions.pid), time.monotonic()
        subprocess.run(args, cwd=ROOT, env=procs.env(), check=True, timeout=seconds * 3 + 120)
        r1, a1, wall = procs.cpu_s(rasa.pid), procs.cpu_s(actions.pid), time.monotonic() - t0
        load = json.loads(out.read_text())
    finally:
        rasa.stop()
    count = len(load["turns"])
    turns = count or 1
    return {
        "value": value,
        "turns": count,
        "errors": len(load["errors"]),
        "rasa_ms": 1000 * (r1 - r0) / turns,
        "actions_ms": 1000 * (a1 - a0) / turns,
        "turns_per_s": count / wall,
    }


def main(argv: list[str] | None = None) -> int:
    """Runs the interleaved pairs and prints the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--key", help="an action_endpoint key")
    parser.add_argument("--a", type=yaml.safe_load)
    parser.add_argument("--b", type=yaml.safe_load)
    parser.add_argument("--models", nargs=2, type=Path, metavar=("A", "B"), help="two models")
    parser.add_argument("--level", type=int, default=32, help="conversations at once")
    parser.add_argument("--seconds", type=float, default=40.0, help="per run")
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args(argv)
    if (args.key is None) == (args.models is None):
        parser.error("give --key with --a and --b, or --models A B")
    if args.models:
        args.key, args.a, args.b = None, str(args.models[0]), str(args.models[1])
    for model in args.models or [MODEL]:
        if not model.exists():
            print(f"{model} is missing: run `make train` first", file=sys.stderr)
            return 2
    what = args.key or "model"
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        actions = procs.start_actions(ROOT, tmp)
        runs: list[dict[str, Any]] = []
        try:
            for n in range(2 * args.pairs):
                value = args.a if n % 2 == 0 else args.b
                model = Path(value) if args.models else MODEL
                run = one_run(tmp, actions, args.key, value, args.level, args.seconds, n, model)
                runs.append(run)
                print(
                    f"{what}={run['value']}: {run['turns']} turns, {run['errors']} errors, "
                    f"Rasa {run['rasa_ms']:.1f} ms CPU/turn, actions {run['actions_ms']:.1f}, "
                    f"{run['turns_per_s']:.1f} turns/s",
                    flush=True,
                )
        finally:
            actions.stop()
    for value in (args.a, args.b):
        mine = [r for r in runs if r["value"] == value]
        print(
            f"median {what}={value}: Rasa "
            f"{statistics.median(r['rasa_ms'] for r in mine):.1f} ms CPU/turn, actions "
            f"{statistics.median(r['actions_ms'] for r in mine):.1f}, "
            f"{statistics.median(r['turns_per_s'] for r in mine):.1f} turns/s "
            f"({len(mine)} runs at {args.level} conversations)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
