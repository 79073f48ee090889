"""Conversation storage: the clinic's tracker store (see store/tracker_store.py)."""
