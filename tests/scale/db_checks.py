"""Checks of the scale test's conversations, straight from PostgreSQL's `events` table.

Every conversation must be stored completely, in order, once, and only under its own
sender id.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Sequence


@dataclass
class SentTurn:
    """What the client knows about one of its turns."""

    text: str
    replies: List[Dict[str, Any]] | None  # None: recorded, but the answer was lost


def load_events(conn, sender_ids: Iterable[str]) -> Dict[str, List[tuple]]:
    """Rows (id, type_name, timestamp, data) per sender, in id order."""
    rows: Dict[str, List[tuple]] = {sender: [] for sender in sender_ids}
    with conn.cursor() as cur:
        cur.execute(
            "SELECT sender_id, id, type_name, timestamp, data FROM events "
            "WHERE sender_id = ANY(%s) ORDER BY id",
            (list(rows),),
        )
        for sender, *row in cur.fetchall():
            rows[sender].append(tuple(row))
    return rows


def all_senders(conn) -> List[str]:
    """Every sender id in the events table."""
    with conn.cursor() as cur:
        cur.execute("SELECT DISTINCT sender_id FROM events")
        return sorted(sender for (sender,) in cur.fetchall())


def check_conversation(rows: Sequence[tuple], turns: Sequence[SentTurn], triage: Any) -> List[str]:
    """Problems with one conversation's stored events (empty when all is well)."""
    problems: List[str] = []
    if not rows:
        return ["no events stored"]
    stamps = [row[2] for row in rows]
    if any(later < earlier for earlier, later in zip(stamps, stamps[1:], strict=False)):
        problems.append("timestamps not in id order")
    datas = [row[3] for row in rows]
    duplicated = [data for data, count in Counter(datas).items() if count > 1]
    if duplicated:
        problems.append(f"{len(duplicated)} duplicated event rows")
    events = [json.loads(data) for data in datas]
    sessions = sum(1 for event in events if event.get("event") == "session_started")
    if sessions != 1:
        problems.append(f"{sessions} session_started events (expected 1)")

    user_at = [i for i, event in enumerate(events) if event.get("event") == "user"]
    stored = [events[i].get("text") for i in user_at]
    sent = [turn.text for turn in turns]
    if stored != sent:
        problems.append(f"user messages differ: stored {stored!r}, sent {sent!r}")
        return problems
    for k, start in enumerate(user_at):
        end = user_at[k + 1] if k + 1 < len(user_at) else len(events)
        segment = events[start + 1 : end]
        last = segment[-1] if segment else {}
        if last.get("event") != "action" or last.get("name") != "action_listen":
            problems.append(f"turn {k} not finished (no action_listen before the next)")
        if turns[k].replies is not None:
            # Rasa's REST channel sends a text with blank lines as several messages.
            bot = "\n\n".join(
                str(event.get("text") or "") for event in segment if event.get("event") == "bot"
            )
            got = "\n\n".join(str(reply.get("text") or "") for reply in turns[k].replies)
            if bot != got:
                problems.append(f"turn {k}: stored bot messages {bot!r} != received {got!r}")
    slot_values = [
        event.get("value")
        for event in events
        if event.get("event") == "slot" and event.get("name") == "triage"
    ]
    if not slot_values or slot_values[-1] is None:
        problems.append("no triage outcome stored")
    elif triage is not None and slot_values[-1] != triage:
        problems.append("stored triage outcome differs from the tracker's")
    return problems


def duplicate_message_ids(rows_by_sender: Dict[str, List[tuple]]) -> List[str]:
    """User message ids stored more than once (within or across conversations)."""
    counts: Counter = Counter()
    for rows in rows_by_sender.values():
        for row in rows:
            if row[1] == "user":
                message_id = json.loads(row[3]).get("message_id")
                if message_id:
                    counts[message_id] += 1
    return [message_id for message_id, count in counts.items() if count > 1]
