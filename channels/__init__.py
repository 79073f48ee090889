"""Custom Rasa input/output channels (see docs/telegram.md)."""
