"""Free loopback ports, and waiting on a condition (poll with a deadline, never a sleep)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import urllib.request
from typing import Callable, TypeVar

T = TypeVar("T")
POLL = 0.1


def free_port() -> int:
    """A TCP port nothing listens on now, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], T], seconds: float, what: str, poll: float = POLL) -> T:
    """Polls `condition` until it returns something truthy; returns it.

    Raises:
        TimeoutError: naming `what`, when the deadline passes first.
    """
    deadline = time.monotonic() + seconds
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"waited {seconds:g} s for {what}")
        time.sleep(poll)


def http_ok(url: str, timeout: float = 2) -> bool:
    """True if GET `url` answers 200."""
    with contextlib.suppress(OSError):
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    return False


def wait_for(url: str, seconds: float, proc: subprocess.Popen | None = None) -> None:
    """Waits until `url` answers 200; fails at once if `proc` exits first."""

    def up() -> bool:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early ({proc.returncode}) for {url}")
        return http_ok(url)

    wait_until(up, seconds, f"{url} to answer", poll=0.3)
