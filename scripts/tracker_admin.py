"""Staff erasure: forget one conversation, or purge everything older than N days.

Works on the tracker store configured in endpoints.yml (SQL or ClinicTrackerStore;
SQLite or PostgreSQL), with the Rasa server running or not:

    .venv/bin/python -m scripts.tracker_admin forget SENDER_ID     # make forget SENDER=...
    .venv/bin/python -m scripts.tracker_admin purge DAYS [--dry-run]  # make purge DAYS=...
    .venv/bin/python -m scripts.tracker_admin list                   # conversation ids

`--endpoints FILE` chooses another endpoints file (default: endpoints.yml, or
$ENDPOINTS). Values like ${DB_PASSWORD} are read from the environment, as Rasa does.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import List

warnings.simplefilter("ignore", DeprecationWarning)  # Rasa's import-time chatter
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SQL_TYPES = {"sql", "store.tracker_store.clinictrackerstore"}


def open_store(endpoints_file: str):  # -> ClinicTrackerStore
    """The configured SQL tracker store, as a ClinicTrackerStore (no start-up wait)."""
    from rasa.utils.endpoints import read_endpoint_config

    from store.tracker_store import ClinicTrackerStore

    config = read_endpoint_config(endpoints_file, "tracker_store")
    if config is None or (config.type or "").lower() not in SQL_TYPES:
        raise SystemExit(
            f"{endpoints_file}: the tracker_store is not an SQL store "
            f"({getattr(config, 'type', None)!r}); nothing to erase here."
        )
    kwargs = dict(config.kwargs)
    kwargs["startup_wait"] = 0
    return ClinicTrackerStore(host=config.url, **kwargs)


def parse_args(argv: List[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", default=os.environ.get("ENDPOINTS") or "endpoints.yml")
    commands = parser.add_subparsers(dest="command", required=True)
    forget = commands.add_parser("forget", help="erase one conversation")
    forget.add_argument("sender", help="the conversation (sender) id")
    purge = commands.add_parser("purge", help="erase everything older than DAYS days")
    purge.add_argument("days", type=float)
    purge.add_argument("--dry-run", action="store_true", help="count only")
    commands.add_parser("list", help="print every conversation id")
    return parser.parse_args(argv)


def main(argv: List[str] | None = None) -> int:
    """Runs one command; returns the exit status."""
    args = parse_args(argv)
    if args.command == "forget" and not args.sender.strip():
        print("forget: give the conversation id (SENDER=...)", file=sys.stderr)
        return 2
    if args.command == "purge" and not args.days >= 0:
        print("purge: DAYS must be a number >= 0", file=sys.stderr)
        return 2
    store = open_store(args.endpoints)
    try:
        if args.command == "forget":
            count = store.erase(args.sender)
            if count:
                print(f"Erased conversation {args.sender!r}: {count} events deleted.")
            else:
                print(f"Nothing stored for conversation {args.sender!r}.")
        elif args.command == "purge":
            counts = store.purge(args.days, dry_run=args.dry_run)
            verb = "Would delete" if args.dry_run else "Deleted"
            print(
                f"{verb} {counts['events']} events older than {args.days:g} days, "
                f"{counts['conversations']} whole conversations."
            )
        else:
            for sender in store.senders():
                print(sender)
    finally:
        store.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
