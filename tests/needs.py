"""Skip a test for a missing system package locally, but fail it in CI.

`.ci/run` installs chromium, PostgreSQL, Redis and nginx, so under CI (`CI` set) a
missing one is a broken CI setup, not a reason to skip.
"""

import os

import pytest


def missing(reason: str) -> None:
    """Skips the test with `reason`, or fails it when running under CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must install it: .ci/run)")
    pytest.skip(reason)
