"""Alias of the top-level :mod:`triage` package (not an action).

``python -m actions.triage`` is the name the triage contract gives the case command.
"""

from triage import FIELDS, CaseError, red_flag_urgency, rulebook, triage, validate_case

__all__ = ["FIELDS", "CaseError", "red_flag_urgency", "rulebook", "triage", "validate_case"]
