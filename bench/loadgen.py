"""Load generator: whole interviews through the REST channel, from its own process.

An asyncio client (aiohttp) runs `--concurrency` conversations at a time on
loopback. Each conversation is one benchmark dialogue, driven by the project's
one dialogue driver (tests/support/dialogue.py): the free-text opening, then the
scripted answer to whatever `requested_slot` names (read from the tracker between
turns; "not sure" when unscripted), until the slot `triage` is set. Only the
webhook round trip of each turn is timed; the tracker read between turns (plus
`--think` seconds, 0 by default: a closed loop with no pause) is the client's
think time. Bounded in count and time: no new conversation starts after
`--max-dialogues` or `--max-seconds`; with `--abandon`, conversations still
running stop there too (otherwise they finish); everything stops at a hard
deadline.

    python -m bench.loadgen --url URL --token T --concurrency 8 --out run.json

Prints nothing on success; writes one JSON object (see `main`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import resource
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.support.dialogue import DialogueError, Script, arun_dialogue

MAX_TURNS = 30
REQUEST_TIMEOUT = 60.0


class Abandoned(Exception):
    """The run's time is up and `--abandon` stops conversations still running."""


def _answers(dialogue: dict[str, Any]) -> dict[str, str]:
    return {field: pair[0] for field, pair in (dialogue.get("answers") or {}).items()}


class Client:
    """One load run: shared session, results and bounds."""

    def __init__(self, args: argparse.Namespace, dialogues: list[dict[str, Any]]) -> None:
        self.url = args.url.rstrip("/")
        self.token = args.token
        self.args = args
        self.queue = itertools.cycle(dialogues)
        self.started = 0
        self.turns: list[dict[str, Any]] = []
        self.results: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.t0 = 0.0
        self.session: aiohttp.ClientSession | None = None

    def _time_up(self) -> bool:
        return time.monotonic() - self.t0 >= self.args.max_seconds

    def _may_start(self) -> bool:
        return self.started < self.args.max_dialogues and not self._time_up()

    async def _say(self, sender: str, text: str, dialogue_id: str) -> list[dict]:
        assert self.session is not None
        t_start = time.monotonic()
        wall_start = time.time()
        async with self.session.post(
            f"{self.url}/webhooks/rest/webhook", json={"sender": sender, "message": text}
        ) as response:
            body = await response.read()
            status = response.status
        seconds = time.monotonic() - t_start
        self.turns.append(
            {"ms": seconds * 1000.0, "end": wall_start + seconds, "dialogue": dialogue_id}
        )
        if status != 200:
            raise RuntimeError(f"webhook answered {status}: {body[:200]!r}")
        return json.loads(body)

    async def _slots(self, sender: str) -> dict[str, Any]:
        assert self.session is not None
        url = f"{self.url}/conversations/{sender}/tracker"
        params = {"token": self.token, "include_events": "NONE"}
        async with self.session.get(url, params=params) as response:
            if response.status != 200:
                raise RuntimeError(f"tracker answered {response.status}")
            return (await response.json())["slots"]

    async def _dialogue(self, dialogue: dict[str, Any]) -> None:
        sender = f"bench-{dialogue['id']}-{uuid.uuid4().hex[:8]}"
        script = Script(dialogue["opening"], _answers(dialogue), MAX_TURNS)
        result: dict[str, Any] = {"id": dialogue["id"], "asked": script.asked, "finished": False}

        async def say(text: str) -> list[dict]:
            return await self._say(sender, text, dialogue["id"])

        async def slots() -> dict[str, Any]:
            found = await self._slots(sender)
            if self.args.abandon and self._time_up() and not found.get("triage"):
                raise Abandoned
            return found

        async def think() -> None:
            if self.args.think > 0:
                await asyncio.sleep(self.args.think * random.uniform(0.5, 1.5))

        try:
            final = await arun_dialogue(say, slots, script, think)
            outcome = final["triage"]
            wrong = {
                key: [outcome.get(key), value]
                for key, value in dialogue["expect"].items()
                if outcome.get(key) != value
            }
            result.update(finished=True, correct=not wrong, wrong=wrong)
        except Abandoned:
            result["abandoned"] = True
        except DialogueError as exc:
            result["error"] = str(exc)
        except (aiohttp.ClientError, asyncio.TimeoutError, RuntimeError) as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
            self.errors.append(result["error"])
        self.results.append(result)

    async def _worker(self) -> None:
        if self.args.think > 0:  # patients arrive spread out, not all in the same instant
            await asyncio.sleep(random.uniform(0, 2 * self.args.think))
        while self._may_start():
            self.started += 1
            await self._dialogue(next(self.queue))

    async def run(self) -> float:
        """Runs the workers; returns the wall time in seconds."""
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        connector = aiohttp.TCPConnector(limit=self.args.concurrency * 2)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            self.session = session
            self.t0 = time.monotonic()
            workers = [self._worker() for _ in range(self.args.concurrency)]
            hard = self.args.max_seconds * 2 + 60
            try:
                await asyncio.wait_for(asyncio.gather(*workers), timeout=hard)
            except asyncio.TimeoutError:
                self.errors.append(f"hard deadline of {hard:.0f} s reached")
            return time.monotonic() - self.t0


def main() -> None:
    """Parses arguments, runs the load and writes the JSON result to `--out`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--dialogues", type=Path, required=True)
    parser.add_argument("--ids", default="", help="comma-separated dialogue ids (default all)")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--max-dialogues", type=int, default=10)
    parser.add_argument("--max-seconds", type=float, default=10.0)
    parser.add_argument(
        "--abandon", action="store_true", help="stop conversations mid-way at --max-seconds"
    )
    parser.add_argument(
        "--think", type=float, default=0.0, help="mean pause before each answer, seconds"
    )
    parser.add_argument("--offset", type=int, default=0, help="first dialogue to use")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    dialogues = yaml.safe_load(args.dialogues.read_text())["dialogues"]
    if args.ids:
        wanted = args.ids.split(",")
        dialogues = [d for d in dialogues if d["id"] in wanted]
    offset = args.offset % len(dialogues)
    dialogues = dialogues[offset:] + dialogues[:offset]
    client = Client(args, dialogues)
    wall_start = time.time()
    wall = asyncio.run(client.run())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    args.out.write_text(
        json.dumps(
            {
                "concurrency": args.concurrency,
                "wall_s": wall,
                "start": wall_start,
                "turns": client.turns,
                "dialogues": client.results,
                "errors": client.errors,
                "client_cpu_s": usage.ru_utime + usage.ru_stime,
            }
        )
    )


if __name__ == "__main__":
    main()
