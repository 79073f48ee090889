"""An action package whose action fails with her words in the exception (tests only)."""

from typing import Any

from rasa_sdk import Action


class ActionThatFails(Action):
    """Raises an error whose message quotes what she wrote, as a careless bug would."""

    def name(self) -> str:
        return "action_fail_loudly"

    def run(self, dispatcher: Any, tracker: Any, domain: Any) -> list:
        raise ValueError(f"could not read {tracker.latest_message.get('text')!r}")
