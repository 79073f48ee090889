"""Runs the triage command: ``python -m actions.triage CASE_FILE``."""

from actions.triage.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
