"""The benchmark: our configuration vs Rasa's default, measured in one run.

    .venv/bin/python -m bench.run              # full: `make bench`, under 10 minutes
    .venv/bin/python -m bench.run --smoke      # CI: one repeat, 1 and 8 conversations
    .venv/bin/python -m bench.run --variants   # our config vs bench/variants/*.yml

For each configuration, one after the other on a snapshot of the working tree:
cold training, model size, server start time (repeated), resident memory,
whole interviews through the REST channel at 1, 8 and 32 concurrent
conversations (repeats, medians, warm-up excluded), dialogue outcomes, NLU F1
on the held-out set, and (full run, ours) a py-spy profile at 32 conversations.
Writes raw JSON, a Markdown table and a PNG chart under bench/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from bench import check_dialogues, nlu_eval, procs, report, speed

ROOT = procs.ROOT
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
DIALOGUES = BENCH / "dialogues.yml"
PY_SPY = str(Path(sys.executable).parent / "py-spy")

# Mean pause (s) before each answer in the paced series: a patient reads the question
# and taps or types; 3 s is quick for that.
PACED_THINK = 3.0
PROFILES: dict[str, dict[str, Any]] = {
    "full": {
        "levels": [1, 8, 32],
        "repeats": 3,
        "start_repeats": 2,
        "max_seconds": 5.0,
        "max_dialogues": {1: 8, 8: 24, 32: 64},
        "warmup_seconds": 1.5,
        "dialogues": None,
        "profile_seconds": 8.0,
        "train_timeout": 900.0,
        # Also, with patients pausing before each answer (mean PACED_THINK s).
        "paced_levels": [32],
        "paced_seconds": 8.0,
        # One long conversation (interview, then follow-up questions), both configs.
        "long_turns": 160,
        # Many patients at once pacing like patients (ours only: one Rasa server).
        "crowd": {"conversations": 200, "think": 10.0, "seconds": 60.0},
    },
    "smoke": {
        "levels": [1, 8],
        "repeats": 1,
        "start_repeats": 1,
        "max_seconds": 4.0,
        "max_dialogues": {1: 2, 8: 8},
        "warmup_seconds": 1.5,
        "dialogues": 8,
        "max_epochs": 3,
        "profile_seconds": 0.0,
        "train_timeout": 300.0,
        "long_turns": 40,
    },
    "variants": {
        "levels": [1, 32],
        "repeats": 2,
        "start_repeats": 1,
        "max_seconds": 8.0,
        "max_dialogues": {1: 6, 32: 64},
        "warmup_seconds": 2.0,
        "dialogues": None,
        "profile_seconds": 0.0,
        "train_timeout": 420.0,
    },
}

# Where the Rasa server's CPU samples go: the first rule whose every key occurs
# somewhere in the stack wins.
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("custom actions: validating the action server's reply (jsonschema)",
     ("core/actions/action.py", "jsonschema/")),
    ("custom actions: validating the action server's reply (jsonschema)", ("jsonschema/",)),
    ("custom actions: copying the tracker for the request", ("core/actions/action.py", "copy")),
    ("custom actions: JSON and HTTP to the action server", ("core/actions/action.py",)),
    ("tracker store: SQLite commit", ("do_commit",)),
    ("tracker store: reading and writing events", ("tracker_store.py",)),
    ("NLU: our spaCy extractor", ("components/",)),
    ("NLU: DIET classifier (TensorFlow)", ("diet_classifier.py",)),
    ("NLU: ResponseSelector (TensorFlow)", ("response_selector.py",)),
    ("NLU: logistic regression (sklearn)", ("logistic_regression_classifier.py",)),
    ("NLU: tokenizer and featurizers", ("nlu/featurizers/",)),
    ("NLU: tokenizer and featurizers", ("nlu/tokenizers/",)),
    ("core: TED policy (TensorFlow)", ("ted_policy.py",)),
    ("core: UnexpecTED intent policy (TensorFlow)", ("unexpected_intent_policy.py",)),
    ("core: rule and memoization policies", ("rule_policy.py",)),
    ("core: rule and memoization policies", ("memoization.py",)),
    ("core: tracker featurizing", ("featurizers/tracker_featurizers",)),
    ("TensorFlow (other)", ("tensorflow/",)),
    ("tracker and events (Rasa)", ("shared/core/trackers.py",)),
    ("tracker and events (Rasa)", ("shared/core/events.py",)),
    ("graph runner and message processor (Rasa)", ("rasa/engine/",)),
    ("graph runner and message processor (Rasa)", ("core/processor.py",)),
    ("HTTP server (Sanic) and JSON", ("sanic/",)),
    ("asyncio event loop", ("asyncio/",)),
]  # fmt: skip
DESCRIPTIONS = {
    "ours": "config.yml",
    "default": "Rasa 3.6 default recipe + CaseEntityExtractor",
}
TF_EPOCH_COMPONENTS = {"DIETClassifier", "ResponseSelector", "TEDPolicy", "UnexpecTEDIntentPolicy"}


def classify(stack: str) -> str:
    """The category of one sampled stack (see CATEGORIES)."""
    for name, keys in CATEGORIES:
        if all(key in stack for key in keys):
            return name
    return "other Python"


def cap_epochs(config: dict[str, Any], cap: int) -> bool:
    """Caps the epochs of every TensorFlow component (smoke runs); True if any changed."""
    changed = False
    for item in (config.get("pipeline") or []) + (config.get("policies") or []):
        if isinstance(item, dict) and item.get("name") in TF_EPOCH_COMPONENTS:
            item["epochs"] = min(int(item.get("epochs", cap)), cap)
            changed = True
    return changed


def machine() -> dict[str, Any]:
    """Core count, CPU model and memory of this machine."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "mem_gib": mem_kib / 2**20,
        "loadavg_start": procs.loadavg(),
    }


def read_config(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Rasa config and its optional `bench:` block (what, env, train_args)."""
    data = yaml.safe_load(path.read_text())
    meta = data.pop("bench", None) or {}
    return data, meta


def percentiles(ms: list[float]) -> dict[str, float]:
    """p50, p95, p99 and mean of latencies (ms)."""
    if not ms:
        return {}
    arr = np.asarray(ms)
    return {
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "p99": float(np.percentile(arr, 99)),
        "mean": float(arr.mean()),
    }


@dataclass
class Subject:
    """One configuration under test: its model, its two servers, its figures."""

    name: str
    path: Path
    env: dict[str, str] = field(default_factory=dict)
    model: Path | None = None
    actions: procs.Server | None = None
    rasa: procs.Server | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def url(self) -> str:
        assert self.rasa is not None
        return f"http://127.0.0.1:{self.rasa.port}"

    def stop(self) -> None:
        """Stops its servers, if up."""
        for server in (self.rasa, self.actions):
            if server is not None:
                server.stop()
        self.rasa = self.actions = None


class Bench:
    """One benchmark run over several configurations."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.profile_name = args.profile
        self.s = dict(PROFILES[args.profile])
        if args.repeats:
            self.s["repeats"] = args.repeats
        self.s["think"] = args.think
        self.s.setdefault("paced_levels", [])
        self.s.setdefault("long_turns", 0)
        self.s.setdefault("crowd", None)
        self.s["paced_think"] = PACED_THINK
        if args.levels:
            self.s["levels"] = args.levels
        if args.profile_seconds is not None:
            self.s["profile_seconds"] = args.profile_seconds
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.tmp = RESULTS / "tmp" / f"{args.profile}-{stamp}"
        self.work = self.tmp / "tree"
        self.logs = self.tmp / "logs"
        self.models = self.tmp / "models"
        self.token = secrets.token_hex(16)
        self.dialogues = check_dialogues.load_dialogues(DIALOGUES)
        if self.s["dialogues"]:
            self.dialogues = self._spread(self.dialogues, self.s["dialogues"])
        self.ids = ",".join(d["id"] for d in self.dialogues)
        self.foreign_load: list[float] = []

    @staticmethod
    def _spread(dialogues: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
        step = len(dialogues) / n
        return [dialogues[int(i * step)] for i in range(n)]

    def log(self, text: str) -> None:
        """Progress on stderr."""
        print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    # ---------------------------------------------------------------- setup
    def prepare(self) -> None:
        """Makes the run folders and the snapshot; drops old runs' temp files."""
        old = RESULTS / "tmp"
        if old.exists():
            for run_dir in old.iterdir():
                if run_dir.is_dir() and time.time() - run_dir.stat().st_mtime > 3600:
                    shutil.rmtree(run_dir, ignore_errors=True)
        for path in (self.work, self.logs, self.models, self.tmp / "configs"):
            path.mkdir(parents=True, exist_ok=True)
        procs.snapshot(Path(self.args.root), self.work)

    def configs(self) -> list[tuple[str, Path]]:
        """The configurations this run measures, by name."""
        if self.args.configs:
            return [(s.split("=", 1)[0], Path(s.split("=", 1)[1])) for s in self.args.configs]
        ours = ("ours", self.work / "config.yml")
        if self.profile_name == "variants":
            return [ours] + [(p.stem, p) for p in sorted((BENCH / "variants").glob("*.yml"))]
        return [ours, ("default", BENCH / "config.default.yml")]

    # ----------------------------------------------------------------- load
    def loadgen(
        self, url: str, concurrency: int, max_dialogues: int, max_seconds: float, offset: int,
        name: str, abandon: bool = True, think: float = 0.0,
    ) -> dict[str, Any]:  # fmt: skip
        """Runs bench/loadgen.py in its own process; returns its JSON."""
        out = self.tmp / f"load-{name}.json"
        args = [
            sys.executable, "-m", "bench.loadgen", "--url", url, "--token", self.token,
            "--dialogues", str(DIALOGUES), "--ids", self.ids,
            "--concurrency", str(concurrency), "--max-dialogues", str(max_dialogues),
            "--max-seconds", str(max_seconds), "--offset", str(offset), "--out", str(out),
            "--think", str(think),
        ] + (["--abandon"] if abandon else [])  # fmt: skip
        subprocess.run(args, cwd=ROOT, env=procs.env(), check=True, timeout=max_seconds * 3 + 120)
        return json.loads(out.read_text())

    def measured_load(
        self, url: str, rasa: procs.Server, actions: procs.Server, level: int, rep: int,
        tag: str, paced: bool = False, think: float | None = None, seconds: float | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """One timed repeat at `level` conversations, with CPU readings around it."""
        if think is None:
            think = self.s["paced_think"] if paced else self.s["think"]
        if seconds is None:
            seconds = self.s["paced_seconds"] if paced else self.s["max_seconds"]
        busy0, _ = procs.machine_busy_s()
        r0, a0 = procs.cpu_s(rasa.pid), procs.cpu_s(actions.pid)
        t0 = time.monotonic()
        data = self.loadgen(
            url, level, self.s["max_dialogues"].get(level, 10 * level), seconds,
            offset=rep * 7, name=f"{tag}-c{level}{'p' if paced else ''}-r{rep}", think=think,
        )  # fmt: skip
        wall = time.monotonic() - t0
        busy1, _ = procs.machine_busy_s()
        rasa_cpu = procs.cpu_s(rasa.pid) - r0
        actions_cpu = procs.cpu_s(actions.pid) - a0
        ours = rasa_cpu + actions_cpu + data["client_cpu_s"]
        foreign = max(0.0, (busy1 - busy0) - ours) / (wall * os.cpu_count())
        self.foreign_load.append(foreign)
        ms = [t["ms"] for t in data["turns"]]
        turns = len(ms)
        return {
            **percentiles(ms),
            "turns": turns,
            "dialogues_started": len(data["dialogues"]),
            "dialogues_finished": sum(1 for d in data["dialogues"] if d.get("finished")),
            "wall_s": data["wall_s"],
            "throughput": turns / data["wall_s"] if data["wall_s"] else 0.0,
            "server_cpu_ms_per_turn": 1000 * rasa_cpu / turns if turns else None,
            "actions_cpu_ms_per_turn": 1000 * actions_cpu / turns if turns else None,
            "client_cpu_s": data["client_cpu_s"],
            "foreign_cpu_share": foreign,
            "errors": data["errors"][:5],
            "error_count": len(data["errors"]),
        }

    def dialogue_pass(self, url: str, tag: str) -> dict[str, Any]:
        """Every benchmark dialogue once (also the warm-up): the share reaching its outcome."""
        data = self.loadgen(
            url, 4, len(self.dialogues), 300.0, 0, f"{tag}-dialogues", abandon=False
        )
        results = data["dialogues"]
        correct = [d for d in results if d.get("correct")]
        failures = [
            {k: d.get(k) for k in ("id", "finished", "wrong", "error", "asked")}
            for d in results
            if not d.get("correct")
        ]
        return {
            "n": len(results),
            "correct": len(correct),
            "share": len(correct) / len(results) if results else 0.0,
            "failures": failures,
            "turns": len(data["turns"]),
        }

    def long_conversation(self, subject: Subject) -> None:
        """One conversation of `long_turns` turns: does a turn cost more as it grows?"""
        turns = self.s["long_turns"]
        assert subject.rasa is not None
        self.log(f"{subject.name}: one long conversation ({turns} turns)")
        out = self.tmp / f"long-{subject.name}.json"
        cpu0 = procs.cpu_s(subject.rasa.pid)
        subprocess.run(
            [sys.executable, "-m", "bench.longconv", "--url", subject.url, "--token",
             self.token, "--turns", str(turns), "--out", str(out)],
            cwd=ROOT, env=procs.env(), check=True, timeout=turns * 20 + 120,
        )  # fmt: skip
        cpu = procs.cpu_s(subject.rasa.pid) - cpu0
        data = json.loads(out.read_text())
        windows = data["windows"]
        first, last = windows[0]["p50"], windows[-1]["p50"]
        subject.result["long"] = {
            "turns": data["turns"],
            "events": data["events"],
            "interview_turns": data["interview_turns"],
            "windows": windows,
            "first_p50": first,
            "last_p50": last,
            "last_over_first": last / first if first else None,
            "server_cpu_ms_per_turn": 1000 * cpu / data["turns"],
        }
        self.log(
            f"{subject.name}: long conversation, {data['events']} events: median turn "
            f"{first:.0f} ms (turns {windows[0]['turns']}) -> {last:.0f} ms "
            f"(turns {windows[-1]['turns']})"
        )

    def crowd(self, subject: Subject) -> None:
        """Many conversations at once, each pausing like a patient, on one Rasa server."""
        crowd = self.s["crowd"]
        assert subject.rasa is not None and subject.actions is not None
        n, think = crowd["conversations"], crowd["think"]
        self.log(f"{subject.name}: {n} conversations pausing {think:g} s")
        subject.result["crowd"] = {
            "conversations": n,
            "think": think,
            **self.measured_load(
                subject.url,
                subject.rasa,
                subject.actions,
                n,
                0,
                f"{subject.name}-crowd",
                think=think,
                seconds=crowd["seconds"],
            ),  # fmt: skip
        }
        c = subject.result["crowd"]
        self.log(
            f"{subject.name}: {n} paced conv.: p50 {c.get('p50', 0):.0f} ms, "
            f"p95 {c.get('p95', 0):.0f} ms, {c['turns']} turns, {c['error_count']} errors"
        )

    # -------------------------------------------------------------- profile
    def profile(
        self, url: str, rasa: procs.Server, actions: procs.Server, tag: str
    ) -> dict[str, Any]:
        """py-spy on the Rasa server while 32 conversations run; CPU per turn by category."""
        seconds = self.s["profile_seconds"]
        level = max(self.s["levels"])
        raw = self.tmp / f"profile-{tag}.txt"
        if not Path(PY_SPY).exists():
            return {"error": "py-spy is not installed (pip install -r requirements-dev.txt)"}
        out = self.tmp / f"load-{tag}-profile.json"
        load = subprocess.Popen(
            [sys.executable, "-m", "bench.loadgen", "--url", url, "--token", self.token,
             "--dialogues", str(DIALOGUES), "--ids", self.ids, "--concurrency", str(level),
             "--max-dialogues", "1000", "--max-seconds", str(seconds + 3), "--out", str(out),
             "--abandon"],
            cwd=ROOT, env=procs.env(),
        )  # fmt: skip
        time.sleep(1.5)
        r0, a0, w0 = procs.cpu_s(rasa.pid), procs.cpu_s(actions.pid), time.time()
        spy = subprocess.run(
            [PY_SPY, "record", "--pid", str(rasa.pid), "--duration", str(int(seconds)),
             "--rate", "100", "--format", "raw", "--nonblocking", "--output", str(raw)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        r1, a1, w1 = procs.cpu_s(rasa.pid), procs.cpu_s(actions.pid), time.time()
        load.wait(timeout=seconds * 3 + 120)
        if spy.returncode != 0 or not raw.exists():
            return {"error": f"py-spy failed: {(spy.stderr or spy.stdout).strip()[-300:]}"}
        turns = sum(1 for t in json.loads(out.read_text())["turns"] if w0 <= t["end"] <= w1)
        counts: Counter = Counter()
        functions: Counter = Counter()
        total = 0
        for line in raw.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            if not stack or not n.isdigit():
                continue
            total += int(n)
            counts[classify(stack)] += int(n)
            functions[stack.split(";")[-1]] += int(n)
        sampled_s = total / 100.0
        cpu = r1 - r0
        native = max(0.0, cpu - sampled_s)
        shares = [(k, v / total * min(1.0, sampled_s / cpu) if cpu else 0.0) for k, v in
                  counts.most_common()]  # fmt: skip
        if native > 0 and cpu:
            shares.append(("native threads not seen by py-spy (TensorFlow op pools)", native / cpu))
        if self.main_run:
            stem = self.args.stem or "latest"
            prefix = "" if stem == "latest" else f"{stem}-"
            target = RESULTS / f"{prefix}profile-{tag}-c{level}.txt.gz"
            target.write_bytes(gzip.compress(raw.read_bytes(), mtime=0))
        return {
            "seconds": w1 - w0,
            "concurrency": level,
            "turns": turns,
            "cpus": os.cpu_count(),
            "samples": total,
            "server_cpu_ms_per_turn": 1000 * cpu / turns if turns else 0.0,
            "actions_cpu_ms_per_turn": 1000 * (a1 - a0) / turns if turns else 0.0,
            "categories": shares,
            "top_leaf_functions": [[f, n / total] for f, n in functions.most_common(12)]
            if total
            else [],  # fmt: skip
        }

    @property
    def main_run(self) -> bool:
        return self.profile_name == "full"

    # ------------------------------------------------------------ per config
    def _fail(self, subject: Subject, exc: BaseException) -> None:
        subject.error = str(exc)[-3000:]
        self.log(f"{subject.name}: FAILED: {subject.error[-1500:]}")
        subject.stop()

    def train(self, subject: Subject) -> None:
        """Cold training of one configuration (nothing else of ours runs meanwhile)."""
        config, meta = read_config(subject.path)
        capped = bool(self.s.get("max_epochs")) and cap_epochs(config, self.s["max_epochs"])
        cfg = self.tmp / "configs" / f"{subject.name}.yml"
        cfg.write_text(yaml.safe_dump(config, sort_keys=False))
        subject.env = {str(k): str(v) for k, v in (meta.get("env") or {}).items()}
        path = subject.path
        subject.result.update(
            config=str(
                path.relative_to(self.work)
                if self.work in path.parents
                else path.resolve().relative_to(ROOT)
                if ROOT in path.resolve().parents
                else path
            ),
            what=meta.get("what", DESCRIPTIONS.get(subject.name, "")),
            env=subject.env,
            train_args=meta.get("train_args") or [],
            epochs_capped_at=self.s.get("max_epochs") if capped else None,
        )
        self.log(f"{subject.name}: training cold")
        trained = procs.train(
            cfg, self.work, self.models, subject.name, subject.env,
            subject.result["train_args"], self.s["train_timeout"],
        )  # fmt: skip
        subject.model = trained.model
        subject.result["train"] = {
            "seconds": trained.seconds,
            "cpu_seconds": trained.cpu_seconds,
            "model_mib": trained.size_mib,
        }
        self.log(f"{subject.name}: trained in {trained.seconds:.1f} s, {trained.size_mib:.1f} MiB")

    def start(self, subject: Subject) -> None:
        """Starts its action server, then its Rasa server (timed, repeated); leaves both up."""
        subject.actions = procs.start_actions(self.work, self.logs)
        starts = []
        for i in range(self.s["start_repeats"]):
            if subject.rasa is not None:
                subject.rasa.stop()
                subject.rasa = None
            endpoints = procs.write_endpoints(
                self.work / "endpoints.yml", self.tmp / f"endpoints-{subject.name}-{i}.yml",
                subject.actions.port, self.tmp / f"tracker-{subject.name}-{i}.db",
            )  # fmt: skip
            assert subject.model is not None
            subject.rasa = procs.start_rasa(
                subject.model, self.work, endpoints, self.token, self.logs, subject.env
            )
            starts.append(subject.rasa.start_s)
            self.log(f"{subject.name}: server answered after {subject.rasa.start_s:.1f} s")
        time.sleep(1.0)
        subject.result["start"] = {
            "seconds": starts,
            "median": statistics.median(starts),
            "actions_seconds": subject.actions.start_s,
        }
        subject.result["memory"] = {"rasa_idle": procs.rss_mib(subject.rasa.pid)}

    def load_level(self, subjects: list[Subject], level: int, paced: bool = False) -> None:
        """Warm-up, then the timed repeats at one level, configurations taking turns.

        The order alternates (A B, B A, A B ...) so that a burst of load from other
        processes on the machine hits every configuration alike. `paced`: patients
        pause before each answer; the figures go under "paced" instead of "load".
        """
        for subject in subjects if not paced else []:  # paced: warm from the closed loop
            self.loadgen(
                subject.url, level, level, self.s["warmup_seconds"], 3,
                f"{subject.name}-c{level}-warmup",
            )  # fmt: skip
        reps: dict[str, list[dict[str, Any]]] = {s.name: [] for s in subjects}
        for rep in range(self.s["repeats"]):
            order = subjects if rep % 2 == 0 else subjects[::-1]
            for subject in order:
                assert subject.rasa is not None and subject.actions is not None
                reps[subject.name].append(
                    self.measured_load(
                        subject.url,
                        subject.rasa,
                        subject.actions,
                        level,
                        rep,
                        subject.name,
                        paced,
                    )
                )
        for subject in subjects:
            runs = reps[subject.name]
            keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
            median = {
                k: statistics.median([r[k] for r in runs if r.get(k) is not None])
                for k in keys
                if any(r.get(k) is not None for r in runs)
            }
            subject.result.setdefault("paced" if paced else "load", {})[str(level)] = {
                "repeats": runs,
                "median": median,
            }
            self.log(
                f"{subject.name}: {level} conv.{' paced' if paced else ''}: "
                f"p50 {median.get('p50', 0):.0f} ms, "
                f"p95 {median.get('p95', 0):.0f} ms, {median.get('throughput', 0):.1f} turns/s, "
                f"{median.get('server_cpu_ms_per_turn') or 0:.0f} ms CPU/turn"
            )

    def finish(self, subject: Subject) -> None:
        """Memory after the load, the profile (ours), the held-out NLU set; stops its servers."""
        assert subject.rasa is not None and subject.actions is not None
        subject.result["memory"]["rasa_after_load"] = procs.rss_mib(subject.rasa.pid)
        subject.result["memory"]["actions_after_load"] = procs.rss_mib(subject.actions.pid)
        if self.s["profile_seconds"] and (subject.name == "ours" or self.args.configs):
            self.log(f"{subject.name}: profiling at {max(self.s['levels'])} conversations")
            subject.result["profile"] = self.profile(
                subject.url, subject.rasa, subject.actions, subject.name
            )
        self.log(f"{subject.name}: held-out NLU set")
        subject.result["nlu"] = nlu_eval.evaluate(
            subject.url, self.token, self.work / "tests/nlu_heldout.yml"
        )

    def measure(self, subjects: list[Subject]) -> None:
        """Every figure for every configuration; a failing one is reported and dropped."""
        errors = (RuntimeError, subprocess.SubprocessError, OSError, ValueError, KeyError)

        def one(step: Callable[[Subject], None], subject: Subject) -> None:
            try:
                step(subject)
            except errors as exc:
                self._fail(subject, exc)

        def each(step: Callable[[Subject], None], together: bool = False) -> None:
            alive = [s for s in subjects if s.error is None]
            if together:  # the smoke run's figures are not compared: save its time
                with ThreadPoolExecutor(max_workers=len(alive) or 1) as pool:
                    list(pool.map(lambda subject: one(step, subject), alive))
                return
            for subject in alive:
                one(step, subject)

        try:
            smoke = self.profile_name == "smoke"
            each(self.train, together=smoke)
            each(self.start, together=smoke)

            def dialogues(subject: Subject) -> None:
                n = len(self.dialogues)
                self.log(f"{subject.name}: dialogue pass ({n} dialogues, also the warm-up)")
                d = subject.result["dialogues"] = self.dialogue_pass(subject.url, subject.name)
                self.log(f"{subject.name}: {d['correct']}/{d['n']} reached the expected outcome")

            each(dialogues)
            for level in self.s["levels"]:
                alive = [s for s in subjects if s.error is None]
                try:
                    self.load_level(alive, level)
                except errors as exc:
                    for subject in alive:
                        self._fail(subject, exc)
            for level in self.s["paced_levels"]:
                alive = [s for s in subjects if s.error is None]
                try:
                    self.load_level(alive, level, paced=True)
                except errors as exc:
                    for subject in alive:
                        self._fail(subject, exc)
            if self.s["long_turns"]:
                each(self.long_conversation)
            if self.s["crowd"]:
                for subject in subjects:
                    if subject.name == "ours" and subject.error is None:
                        one(self.crowd, subject)
            each(self.finish)
        finally:
            for subject in subjects:
                subject.stop()
                if subject.model is not None:
                    subject.model.unlink(missing_ok=True)

    # ------------------------------------------------------------------ run
    def run(self) -> int:
        """Measures every configuration, writes the results, prints the table."""
        started = time.monotonic()
        busy0, _ = procs.machine_busy_s()
        cpu0 = os.times()
        info = machine()
        self.prepare()
        problems = check_dialogues.check(DIALOGUES)
        if problems:
            print("\n".join(problems), file=sys.stderr)
            self.log("bench/dialogues.yml has wrong expectations: fix them first")
            return 2
        subjects = [Subject(name, path) for name, path in self.configs()]
        self.measure(subjects)
        self.log("speed of the case command and the extractor")
        speed_figures = speed.measure()
        results: dict[str, Any] = {}
        for subject in subjects:
            results[subject.name] = subject.result
            if subject.error is not None:
                results[subject.name]["error"] = subject.error
        failed = any(subject.error is not None for subject in subjects)
        busy1, _ = procs.machine_busy_s()
        cpu1 = os.times()
        wall = time.monotonic() - started
        ours_cpu = (
            (cpu1.children_user - cpu0.children_user)
            + (cpu1.children_system - cpu0.children_system)
            + (cpu1.user - cpu0.user)
            + (cpu1.system - cpu0.system)
        )
        info["loadavg_end"] = procs.loadavg()
        info["foreign_cpu_share"] = max(0.0, (busy1 - busy0) - ours_cpu) / (wall * os.cpu_count())
        info["foreign_cpu_share_load_min"] = min(self.foreign_load, default=0.0)
        info["foreign_cpu_share_load_max"] = max(self.foreign_load, default=0.0)
        run = {
            "profile": self.profile_name,
            "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "duration_s": wall,
            "machine": info,
            "git": procs.git_commit(Path(self.args.root)),
            "settings": {**self.s, "max_dialogues": {str(k): v for k, v in
                                                      self.s["max_dialogues"].items()}},
            "dialogues": [d["id"] for d in self.dialogues],
            "results": results,
            "speed": speed_figures,
            "interview": check_dialogues.questions_asked(DIALOGUES),
            "outcome_words": check_dialogues.outcome_words(DIALOGUES),
        }  # fmt: skip
        self.write(run)
        return 1 if failed else 0

    def write(self, run: dict[str, Any]) -> None:
        """Writes JSON, Markdown (and the chart) and prints the Markdown."""
        if self.args.stem:
            out, stem = RESULTS, self.args.stem
        elif self.profile_name == "full":
            out, stem = RESULTS, "latest"
        elif self.profile_name == "variants":
            out, stem = RESULTS, "variants"
        else:
            out, stem = self.tmp, "smoke"
        out.mkdir(parents=True, exist_ok=True)
        if self.profile_name == "variants":
            text = report.variants_markdown(run)
        else:
            ok = all("error" not in r for r in run["results"].values())
            if ok:
                report.chart(run, out / f"{stem}.png")
                run["chart"] = f"{stem}.png"
            text = report.render(run, out)
            text = text.replace("(latest.png)", f"({stem}.png)")
            if stem == "latest" and ok:
                report.sync_readme(text, ROOT / "README.md")
        (out / f"{stem}.json").write_text(json.dumps(run, indent=1, default=str) + "\n")
        (out / f"{stem}.md").write_text(text)
        print(text)
        m = run["machine"]
        print(
            f"{m['cpus']} cores, git {run['git']['commit']}, {run['duration_s']:.0f} s; "
            f"results in {out.relative_to(ROOT)}/{stem}.*"
        )
        for name, result in run["results"].items():
            if "error" in result:
                print(f"{name}: FAILED: {result['error'][-600:]}")


def main(argv: list[str] | None = None) -> int:
    """Parses the arguments and runs the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--smoke", dest="profile", action="store_const", const="smoke")
    mode.add_argument("--variants", dest="profile", action="store_const", const="variants")
    parser.set_defaults(profile="full")
    parser.add_argument("--repeats", type=int, default=0, help="override the repeat count")
    parser.add_argument(
        "--configs", nargs="*", metavar="NAME=PATH", help="measure these configs instead"
    )
    parser.add_argument(
        "--profile-seconds", type=float, default=None, help="py-spy duration (0: no profile)"
    )
    parser.add_argument(
        "--think", type=float, default=0.0,
        help="mean pause (s) before each answer in the timed runs (default 0: closed loop)",
    )  # fmt: skip
    parser.add_argument(
        "--levels", type=int, nargs="*", help="concurrency levels (default: the mode's)"
    )
    parser.add_argument(
        "--stem", default="", help="write bench/results/STEM.* (default: latest, variants)"
    )
    parser.add_argument("--root", default=str(ROOT), help="tree to snapshot (default: repo)")
    args = parser.parse_args(argv)
    return Bench(args).run()


if __name__ == "__main__":
    sys.exit(main())
