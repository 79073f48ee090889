"""Speed of the pure-Python parts, reported by the benchmark (never asserted in tests).

- the case command (`python -m actions.triage CASE`): wall time of a whole process,
  best of 3 (the target: well under a second);
- the extractor: `build_nlp` CPU and wall time (best of 3), and CPU per message over
  the extractor's test cases (median, p95), plus the longest message the channels take.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CASE = "stage: pregnant\nweeks: 31\nlocations: [side]\nqualities: [burning]\nred_flags: []\n"


def _best(fn: Any, repeats: int = 3) -> tuple[float, float]:
    """Best (CPU, wall) seconds of `fn()` over `repeats` calls, after one warm-up."""
    fn()
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return min(cpu), min(wall)


def case_command_ms() -> float:
    """Wall time of `python -m actions.triage CASE` (best of 3), in ms."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "case.yml"
        path.write_text(CASE, encoding="utf-8")
        command = [sys.executable, "-m", "actions.triage", str(path)]

        def run() -> None:
            subprocess.run(command, cwd=ROOT, check=True, capture_output=True, timeout=60)

        return _best(run)[1] * 1000


def extractor_ms() -> dict[str, float]:
    """Build and per-message times of the rule-based extractor, in ms."""
    from components import extractor
    from components.extractor import MAX_CHARS

    build_cpu, build_wall = _best(extractor.build_nlp)
    nlp = extractor.build_nlp()
    cases = yaml.safe_load((ROOT / "tests" / "extractor_cases.yml").read_text(encoding="utf-8"))
    texts = [row["text"] for row in cases]
    for text in texts:
        extractor.extract(nlp, text)
    cpu = []
    for text in texts:
        c0 = time.process_time()
        extractor.extract(nlp, text)
        cpu.append(time.process_time() - c0)
    longest = (" ".join(texts) * 50)[:MAX_CHARS]
    longest_cpu, _ = _best(lambda: extractor.extract(nlp, longest))
    return {
        "build_cpu": build_cpu * 1000,
        "build_wall": build_wall * 1000,
        "message_cpu_p50": statistics.median(cpu) * 1000,
        "message_cpu_p95": sorted(cpu)[int(len(cpu) * 0.95)] * 1000,
        "longest_message_cpu": longest_cpu * 1000,
        "messages": len(texts),
    }


def measure() -> dict[str, Any]:
    """Every figure above."""
    return {"case_command_wall_ms": case_command_ms(), "extractor": extractor_ms()}


def lines(speed: dict[str, Any] | None) -> list[str]:
    """The figures as Markdown bullet points for the report."""
    if not speed:
        return []
    ex = speed["extractor"]
    return [
        "Pure-Python parts (this machine, best of 3 after a warm-up):",
        f"- case command `python -m actions.triage CASE`: {speed['case_command_wall_ms']:.0f} ms"
        " wall, a whole process (target: well under 1 s)",
        f"- extractor build (`build_nlp`): {ex['build_cpu']:.0f} ms CPU, "
        f"{ex['build_wall']:.0f} ms wall; per message over {ex['messages']} test cases: "
        f"median {ex['message_cpu_p50']:.2f} ms CPU, p95 {ex['message_cpu_p95']:.2f} ms; the "
        f"longest message the channels accept (4,000 characters): "
        f"{ex['longest_message_cpu']:.1f} ms",
    ]
