"""Plain `rasa test` finds only the project's own test stories.

Patches `rasa.shared.data._find_data_files_in_directory` (checked against Rasa 3.6.21).
With no arguments, `rasa test` looks for test stories in every folder below the
current one (its default path is "."), following links: in a fresh clone that is the
virtualenv too, where Rasa's own `rasa init` project ships `test_stories.yml` for
another bot, and `rasa test` then reports its stories as failures. The patched
function skips hidden folders (`.venv`, `.git`, `.rasa`) and `node_modules`, and
otherwise finds what Rasa's does. It is installed when the model loads, which `rasa
test` does before it looks for stories.
"""

from __future__ import annotations

import os
from typing import Callable, Set

import rasa.shared.data

SKIPPED = ("node_modules",)


def _skipped(name: str) -> bool:
    return name.startswith(".") or name in SKIPPED


def find_data_files_in_directory(
    directory: str, filter_property: Callable[[str], bool]
) -> Set[str]:
    """Like Rasa's: every valid data file below `directory`, without skipped folders."""
    found = set()
    for root, folders, files in os.walk(directory, followlinks=True):
        folders[:] = [name for name in folders if not _skipped(name)]
        for name in sorted(files):
            path = os.path.join(root, name)
            if rasa.shared.data.is_valid_filetype(path) and filter_property(path):
                found.add(path)
    return found


def install() -> None:
    """Replaces Rasa's folder walk for data files (idempotent; Rasa's is `__wrapped__`)."""
    original = rasa.shared.data._find_data_files_in_directory
    if original is not find_data_files_in_directory:
        find_data_files_in_directory.__wrapped__ = original  # type: ignore[attr-defined]
        rasa.shared.data._find_data_files_in_directory = find_data_files_in_directory
