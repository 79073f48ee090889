"""A/B of one endpoints.yml setting: Rasa and action-server CPU per turn, interleaved.

Measures a candidate for issue 16's "half the CPU" the way the benchmark does (the
trained model, the shipped SQLite store, `bench/loadgen.py` closed-loop interviews)
but only what differs between two `action_endpoint` settings, with the runs
interleaved (A B A B ...) on one action server so drift on a shared host hits both:

    python -m bench.ab_endpoints --key enable_selective_domain --a false --b true

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
    tmp: Path, actions: procs.Server, key: str, value: Any, level: int, seconds: float, n: int
) -> dict[str, Any]:
    """A fresh Rasa server with `action_endpoint.<key>: value`; one timed load on it."""
    endpoints = procs.write_endpoints(
        ROOT / "endpoints.yml", tmp / f"endpoints-{n}.yml", actions.port, tmp / f"t-{n}.db"
    )
    data = yaml.safe_load(endpoints.read_text())
    data["action_endpoint"][key] = value
    endpoints.write_text(yaml.safe_dump(data, sort_keys=False))
    token = secrets.token_hex(16)
    rasa = procs.start_rasa(MODEL, ROOT, endpoints, token, tmp, procs.env())
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
    parser.add_argument("--key", required=True, help="an action_endpoint key")
    parser.add_argument("--a", type=yaml.safe_load, required=True)
    parser.add_argument("--b", type=yaml.safe_load, required=True)
    parser.add_argument("--level", type=int, default=32, help="conversations at once")
    parser.add_argument("--seconds", type=float, default=40.0, help="per run")
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args(argv)
    if not MODEL.exists():
        print(f"{MODEL} is missing: run `make train` first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        actions = procs.start_actions(ROOT, tmp)
        runs: list[dict[str, Any]] = []
        try:
            for n in range(2 * args.pairs):
                value = args.a if n % 2 == 0 else args.b
                run = one_run(tmp, actions, args.key, value, args.level, args.seconds, n)
                runs.append(run)
                print(
                    f"{args.key}={run['value']}: {run['turns']} turns, {run['errors']} errors, "
                    f"Rasa {run['rasa_ms']:.1f} ms CPU/turn, actions {run['actions_ms']:.1f}, "
                    f"{run['turns_per_s']:.1f} turns/s",
                    flush=True,
                )
        finally:
            actions.stop()
    for value in (args.a, args.b):
        mine = [r for r in runs if r["value"] == value]
        print(
            f"median {args.key}={value}: Rasa "
            f"{statistics.median(r['rasa_ms'] for r in mine):.1f} ms CPU/turn, actions "
            f"{statistics.median(r['actions_ms'] for r in mine):.1f}, "
            f"{statistics.median(r['turns_per_s'] for r in mine):.1f} turns/s "
            f"({len(mine)} runs at {args.level} conversations)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
