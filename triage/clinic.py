"""Clinic settings: clinic.yml at the project root, overridden by the environment."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Dict

import yaml

CONFIG_FILE = Path(__file__).resolve().parent.parent / "clinic.yml"
KEYS = ("name", "phone", "emergency_number", "maternity_line", "booking_url")
# Words for the placeholders when the settings cannot be read (the apology of a failed
# turn; domain.yml's responses before the session has loaded them).
FALLBACK = {
    "clinic_name": "the clinic",
    "clinic_phone": "the number on the clinic's website",
    "emergency_number": "your emergency number",
    "maternity_line": "your maternity unit's triage line",
}


@functools.lru_cache(maxsize=1)
def settings() -> Dict[str, str]:
    """Returns the clinic settings, read once.

    `CLINIC_CONFIG` names another file; `CLINIC_<KEY>` overrides one value.
    """
    path = Path(os.environ.get("CLINIC_CONFIG", CONFIG_FILE))
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    missing = [key for key in KEYS if key not in data]
    if missing:
        raise ValueError(f"{path}: missing clinic settings {missing}")
    result = {key: str(data[key]) for key in KEYS}
    for key in KEYS:
        override = os.environ.get(f"CLINIC_{key.upper()}")
        if override:
            result[key] = override
    return result


def fill(text: str) -> str:
    """Fills {clinic_name}, {clinic_phone}, {emergency_number} ... placeholders."""
    values = settings()
    return (
        text.replace("{clinic_name}", values["name"])
        .replace("{clinic_phone}", values["phone"])
        .replace("{emergency_number}", values["emergency_number"])
        .replace("{maternity_line}", values["maternity_line"])
        .replace("{booking_url}", values["booking_url"])
    )
