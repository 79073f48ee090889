"""Runs the triage command: ``python -m triage CASE_FILE``."""

from triage.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
