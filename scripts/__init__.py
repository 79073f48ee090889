"""Operator scripts: the action server on loopback, conversation erasure and purge."""
