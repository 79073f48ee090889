"""``python -m actions.triage CASE_FILE``: the case command (see :mod:`triage.cli`)."""

from triage.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
