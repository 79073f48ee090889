"""Alias of the top-level :mod:`triage` package (not an action).

``python -m actions.triage CASE_FILE`` is the name the triage contract gives the case
command; it runs :func:`triage.cli.main`. A module rather than a package: the Rasa SDK
walks the packages under actions/, and a sub-package named like the top-level one
would lead it into that one.
"""

from triage import FIELDS, CaseError, red_flag_urgency, rulebook, triage, validate_case
from triage.cli import main

__all__ = ["FIELDS", "CaseError", "main", "red_flag_urgency", "rulebook", "triage", "validate_case"]

if __name__ == "__main__":
    raise SystemExit(main())
