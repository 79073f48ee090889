"""Fixtures every test layer shares: the domain, the clinic's settings, the model."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from triage import clinic

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def domain() -> dict:
    """domain.yml, as the action server receives it."""
    return yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def settings() -> dict:
    """The clinic's settings (clinic.yml and CLINIC_* overrides): tests read numbers here."""
    return clinic.settings()


@pytest.fixture(scope="session")
def model() -> Path:
    """The trained model; `make test` trains it before the tests that need it."""
    path = ROOT / "models" / "hip-triage.tar.gz"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make train` first")
    return path
