"""Long conversations: does a turn cost more the longer she talks?

One conversation at a time through the REST channel: a benchmark dialogue's whole
interview to its outcome, then follow-up questions (why, how long, running, booking,
...) until it has `--turns` turns. Each turn's webhook round trip is timed; the
result gives the median of each window of 20 turns and the number of stored events
at the end. Prints nothing; writes one JSON object to `--out`.

    python -m bench.longconv --url URL --token T --turns 160 --out long.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.support.dialogue import Script, arun_dialogue

WINDOW = 20
# What a patient asks after her outcome, in her words; every one is a question the
# assistant answers from the sources (data/nlu/questions.yml).
FOLLOW_UPS = (
    "why does this happen?",
    "how long will it take to get better?",
    "can I still go running?",
    "how do I book a physio?",
    "what does a physical therapist actually do",
    "is it because of a weak core?",
    "would a labral tear change any of this?",
    "ok thanks, and why does it hurt more at night?",
)


def windows(ms: list[float], size: int = WINDOW) -> list[dict[str, Any]]:
    """The median of each full window of `size` turns: [{"turns": "1-20", "p50": ...}]."""
    out = []
    for start in range(0, len(ms) - size + 1, size):
        chunk = ms[start : start + size]
        out.append(
            {"turns": f"{start + 1}-{start + size}", "first": start + 1,
             "p50": statistics.median(chunk)}
        )  # fmt: skip
    return out


async def run(args: argparse.Namespace, dialogue: dict[str, Any]) -> dict[str, Any]:
    """One long conversation; its per-turn times, windows and final event count."""
    sender = f"bench-long-{uuid.uuid4().hex[:12]}"
    ms: list[float] = []
    base = args.url.rstrip("/")
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def say(text: str) -> list[dict]:
            t0 = time.monotonic()
            async with session.post(
                f"{base}/webhooks/rest/webhook", json={"sender": sender, "message": text}
            ) as response:
                body = await response.read()
                status = response.status
            ms.append((time.monotonic() - t0) * 1000.0)
            if status != 200:
                raise RuntimeError(f"webhook answered {status}")
            return json.loads(body)

        async def tracker(include: str) -> dict[str, Any]:
            params = {"token": args.token, "include_events": include}
            async with session.get(f"{base}/conversations/{sender}/tracker", params=params) as r:
                if r.status != 200:
                    raise RuntimeError(f"tracker answered {r.status}")
                return await r.json()

        async def slots() -> dict[str, Any]:
            return (await tracker("NONE"))["slots"]

        answers = {k: v[0] for k, v in (dialogue.get("answers") or {}).items()}
        final = await arun_dialogue(say, slots, Script(dialogue["opening"], answers))
        interview_turns = len(ms)
        i = 0
        while len(ms) < args.turns:
            await say(FOLLOW_UPS[i % len(FOLLOW_UPS)])
            i += 1
        events = len((await tracker("ALL"))["events"])
    return {
        "dialogue": dialogue["id"],
        "outcome_reached": bool(final.get("triage")),
        "interview_turns": interview_turns,
        "turns": len(ms),
        "events": events,
        "ms": ms,
        "windows": windows(ms),
    }


def main() -> None:
    """Parses arguments, runs one long conversation, writes the JSON to `--out`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--dialogues", type=Path, default=Path(__file__).with_name("dialogues.yml"))
    parser.add_argument("--dialogue", default="", help="dialogue id (default: the first)")
    parser.add_argument("--turns", type=int, default=160)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    dialogues = yaml.safe_load(args.dialogues.read_text())["dialogues"]
    chosen = [d for d in dialogues if d["id"] == args.dialogue] if args.dialogue else dialogues
    if not chosen:
        raise SystemExit(f"no dialogue {args.dialogue!r} in {args.dialogues}")
    result = asyncio.run(run(args, chosen[0]))
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
