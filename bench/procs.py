"""Processes for the benchmark: training, the two servers, and readings from /proc."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
RASA = str(Path(sys.executable).parent / "rasa")
CLK_TCK = os.sysconf("SC_CLK_TCK")
BASE_ENV = {
    "RASA_TELEMETRY_ENABLED": "false",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}
# What the servers need from the working tree, copied once per run so that both
# configurations train and serve the very same files while others edit the tree:
# the top-level YAML files, the training data, every top-level Python package
# (actions, components, custom channels and stores) and the held-out NLU set.
SNAPSHOT_EXTRA = ["data", "tests/nlu_heldout.yml", "bench/__init__.py"]


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for every Rasa process: telemetry off, plus `extra`."""
    return {**os.environ, **BASE_ENV, **(extra or {})}


def snapshot_paths(root: Path) -> list[str]:
    """The paths (relative to `root`) a snapshot copies."""
    names = [p.name for p in sorted(root.glob("*.yml"))]
    names += [
        p.name
        for p in sorted(root.iterdir())
        if p.is_dir() and (p / "__init__.py").exists() and p.name not in ("tests", "bench")
    ]
    return names + [n for n in SNAPSHOT_EXTRA if (root / n).exists()]


def snapshot(root: Path, dest: Path) -> Path:
    """Copies the files training and serving need into `dest` (caches left out)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in snapshot_paths(root):
        src = root / name
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=ignore)
        else:
            shutil.copy2(src, target)
    return dest


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in KiB (empty if it is gone)."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


def children(pid: int) -> list[int]:
    """Every descendant of a process (from /proc/*/stat)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return found


def rss_mib(pid: int) -> dict[str, float]:
    """Resident memory of a process and its descendants, in MiB (rss, peak, tree)."""
    own = proc_status(pid)
    tree = own.get("VmRSS", 0) + sum(proc_status(p).get("VmRSS", 0) for p in children(pid))
    return {
        "rss": own.get("VmRSS", 0) / 1024,
        "peak": own.get("VmHWM", 0) / 1024,
        "tree": tree / 1024,
    }


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 if gone)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    return 0.0


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return (total - idle) / CLK_TCK, total / CLK_TCK


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


@dataclass
class Trained:
    """A cold training run."""

    model: Path
    seconds: float
    cpu_seconds: float
    size_mib: float
    log: Path


def train(
    config: Path, workdir: Path, out: Path, name: str, extra_env: dict[str, str],
    extra_args: list[str], timeout: float,
) -> Trained:  # fmt: skip
    """Trains cold: `rasa train --force` into `out`, with a new, empty cache folder.

    Raises:
        RuntimeError: if training fails (the log's tail is in the message).
    """
    cache = out / f"cache-{name}"
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    log = out / f"train-{name}.log"
    args = [
        RASA, "train", "--force", "--config", str(config), "--domain", "domain.yml",
        "--data", "data", "--out", str(out), "--fixed-model-name", name, *extra_args,
    ]  # fmt: skip
    run_env = env({"RASA_CACHE_DIRECTORY": str(cache), **extra_env})
    before = os.times()
    start = time.monotonic()
    with open(log, "wb") as handle:
        proc = subprocess.run(
            args, cwd=workdir, env=run_env, stdout=handle, stderr=subprocess.STDOUT,
            timeout=timeout, check=False,
        )  # fmt: skip
    seconds = time.monotonic() - start
    after = os.times()
    shutil.rmtree(cache, ignore_errors=True)
    model = out / f"{name}.tar.gz"
    if proc.returncode != 0 or not model.exists():
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"training {name} failed ({proc.returncode}):\n{tail}")
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return Trained(model, seconds, cpu, model.stat().st_size / 2**20, log)


@dataclass
class Server:
    """A server process we started, with its log."""

    proc: subprocess.Popen
    port: int
    log: Path
    start_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        """Terminates the process (kills it after 20 s)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _spawn(args: list[str], cwd: Path, log: Path, extra_env: dict[str, str]) -> subprocess.Popen:
    handle = open(log, "ab")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(
        args, cwd=cwd, env=env(extra_env), stdout=handle, stderr=subprocess.STDOUT
    )


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def start_actions(workdir: Path, logdir: Path, timeout: float = 90) -> Server:
    """Starts the action server and waits until /health answers.

    Raises:
        RuntimeError: if it exits or does not answer in time.
    """
    port = free_port()
    log = logdir / f"actions-{port}.log"
    start = time.monotonic()
    # As `make run` starts it: loopback only, keep-alive longer than Rasa's.
    cmd = [sys.executable, "scripts/action_server.py", "--port", str(port)]
    proc = _spawn(cmd, workdir, log, {})
    server = Server(proc, port, log)
    deadline = start + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"action server exited ({proc.returncode}):\n{_tail(log)}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    server.start_s = time.monotonic() - start
                    return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"action server not up after {timeout} s:\n{_tail(log)}")


def write_endpoints(source: Path, path: Path, actions_port: int, db: Path) -> Path:
    """The project's endpoints.yml with the bench's action server port and tracker file.

    The tracker store keeps its type and settings (SQLite as in `make run`); only
    its `db` moves to a new file, so every server starts with no conversations.
    """
    endpoints = yaml.safe_load(source.read_text()) or {}
    shipped = endpoints.get("action_endpoint") or {}
    endpoints["action_endpoint"] = {**shipped, "url": f"http://127.0.0.1:{actions_port}/webhook"}
    store = endpoints.get("tracker_store")
    if isinstance(store, dict) and store.get("dialect", "sqlite") == "sqlite":
        store["db"] = str(db)
    path.write_text(yaml.safe_dump(endpoints, sort_keys=False))
    return path


def start_rasa(
    model: Path, workdir: Path, endpoints: Path, token: str, logdir: Path,
    extra_env: dict[str, str], timeout: float = 240,
) -> Server:  # fmt: skip
    """Starts `rasa run` and times it: process start until the REST webhook answers.

    Raises:
        RuntimeError: if it exits or does not answer in time.
    """
    port = free_port()
    log = logdir / f"rasa-{port}.log"
    args = [
        RASA, "run", "--model", str(model), "--endpoints", str(endpoints),
        "--credentials", "credentials.yml", "-i", "127.0.0.1", "--port", str(port),
        "--enable-api", "--auth-token", token,
    ]  # fmt: skip
    body = json.dumps({"sender": f"bench-probe-{port}", "message": "hello"}).encode()
    start = time.monotonic()
    proc = _spawn(args, workdir, log, extra_env)
    server = Server(proc, port, log)
    deadline = start + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rasa server exited ({proc.returncode}):\n{_tail(log)}")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/webhooks/rest/webhook",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with contextlib.suppress(OSError, urllib.error.URLError):
            with urllib.request.urlopen(request, timeout=30) as response:
                if response.status == 200:
                    server.start_s = time.monotonic() - start
                    return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"rasa server not up after {timeout} s:\n{_tail(log)}")


def git_commit(root: Path) -> dict[str, Any]:
    """The commit checked out and whether the tree has changes (read-only git calls)."""

    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return proc.stdout.rstrip("\n")

    status = git("status", "--porcelain", "--", *snapshot_paths(root))
    return {
        "commit": git("rev-parse", "HEAD").strip(),
        "short": git("rev-parse", "--short", "HEAD").strip(),
        "dirty_files": [line[3:] for line in status.splitlines()],
    }
