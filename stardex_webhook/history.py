"""``python -m stardex_webhook.history``: what happened to the webhooks (the event history).

Reads the records the function keeps under ``events/`` in ``STATE_BUCKET`` (see ``events``), with
the function's own settings. Records are named by day and hour, so ``--since`` lists only the hours
it covers; without it the days are walked newest first until ``--limit`` records are found.

    history list [--source S] [--outcome O] [--since 2h|3d|ISO-time] [--person ID]
                 [--email ADDRESS] [--linkedin URL] [--limit N] [--json]
    history show DELIVERY_ID|RECORD [--json]

``--email`` and ``--linkedin`` match by the keyed hash the records carry (``HISTORY_KEY``, the
function's key): the history holds no address, and without the key none can be found.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import datetime, timezone
from typing import Any, Iterator, Sequence, TextIO

from .config import load_settings
from .errors import ConfigurationError, RetryLater
from .events import EVENTS_PREFIX, HISTORY_KEY, IDS_PREFIX, identity_hash
from .secrets import SecretProvider
from .sources import SOURCES
from .state import DEAD_LETTERS_PREFIX, StateStore, dead_letter_name, digest
from .transforms import linkedin

_NAME = re.compile(r"events/(\d{4}-\d{2}-\d{2})/(\d{2})/(\d{2})(\d{2})-(.+)-([0-9a-f]+)\.json")
_AGO = re.compile(r"(\d+)\s*([mhd])")
_UNITS = {"m": 60, "h": 3600, "d": 86400}


def since_time(text: str, now: float) -> float:
    """``90m``, ``2h``, ``3d`` ago, or an ISO time (``2026-12-07T09:00``, UTC unless it says)."""
    ago = _AGO.fullmatch(text.strip())
    if ago:
        return now - int(ago.group(1)) * _UNITS[ago.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--since {text!r}: expected 2h, 3d, 90m or an ISO time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def name_time(name: str) -> float | None:
    """When the record's event was first received, read from its name."""
    match = _NAME.fullmatch(name)
    if not match:
        return None
    day, hour, minute, second = match.group(1, 2, 3, 4)
    return datetime.fromisoformat(f"{day}T{hour}:{minute}:{second}+00:00").timestamp()


def name_source(name: str) -> str | None:
    match = _NAME.fullmatch(name)
    return match.group(5) if match else None


class History:
    """The records in the bucket, newest first; ``listed`` counts the objects listed."""

    def __init__(self, bucket: Any) -> None:
        self.bucket = bucket
        self.listed = 0

    def _children(self, prefix: str) -> tuple[list[str], list[str]]:
        """(object names, sub-prefixes) one level under ``prefix``."""
        listing = self.bucket.list_blobs(prefix=prefix, delimiter="/")
        names = [blob.name for blob in listing]
        self.listed += len(names)
        return names, sorted(listing.prefixes)

    def hours(self, since: float | None) -> Iterator[str]:
        """Hour prefixes, newest first, none older than ``since``'s hour."""
        floor_day = time.strftime(f"{EVENTS_PREFIX}%Y-%m-%d/", time.gmtime(since)) if since is not None else ""
        floor_hour = time.strftime(f"{EVENTS_PREFIX}%Y-%m-%d/%H/", time.gmtime(since)) if since is not None else ""
        days = [day for day in self._children(EVENTS_PREFIX)[1] if day != IDS_PREFIX and day >= floor_day]
        for day in reversed(days):
            for hour in reversed(self._children(day)[1]):
                if hour >= floor_hour:
                    yield hour

    def names(self, since: float | None = None, source: str | None = None) -> Iterator[str]:
        """Record names, newest first, filtered by what the name says (time, source): no read."""
        for hour in self.hours(since):
            for name in sorted(self._children(hour)[0], reverse=True):
                at = name_time(name)
                if at is not None and (since is None or at >= since) and (source is None or name_source(name) == source):
                    yield name

    def read(self, name: str) -> dict[str, Any] | None:
        blob = self.bucket.get_blob(name)
        return None if blob is None else json.loads(blob.download_as_bytes())

    def records(self, since: float | None = None, source: str | None = None, outcome: str | None = None,
                person: str | None = None, identities: set[str] | None = None, limit: int = 50) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for name in self.names(since, source):
            if len(found) >= limit:
                break
            record = self.read(name)
            if record is None or (outcome and outcome not in (record.get("outcome"), record.get("reason"))):
                continue
            if person and record.get("person_id") != person:
                continue
            if identities is not None and not identities & set(record.get("identities") or ()):
                continue
            found.append({**record, "name": name})
        return found

    def by_delivery(self, delivery_id: str) -> list[dict[str, Any]]:
        """The record of each source's event with this delivery id."""
        found = []
        for pointer in self._children(f"{IDS_PREFIX}{digest(delivery_id)}/")[0]:
            name = self.bucket.blob(pointer).download_as_text()
            record = self.read(name)
            if record is not None:
                found.append({**record, "name": name})
        return found


def line(record: dict[str, Any]) -> str:
    parts = [record.get("received_at") or "-", record.get("source") or "-", record.get("event") or "-",
             str(record.get("outcome"))]
    if record.get("status_code", 200) >= 300 or record.get("reason"):
        parts.append(f"{record.get('status_code')} {record.get('reason') or ''}".rstrip())
    for key in ("person_id", "delivery_id"):
        if record.get(key):
            parts.append(f"{key.split('_')[0]}={record[key]}")
    if "***" in str(record.get("delivery_id")) and record.get("name"):  # masked (phone-like): show takes the name
        parts.append(f"record={record['name']}")
    if record.get("fields"):
        parts.append("fields=" + ",".join(record["fields"]))
    if record.get("skipped"):
        parts.append("skipped=" + ",".join(record["skipped"]))
    parts.append(f"attempts={record.get('attempts')}")
    if record.get("latency_ms") is not None:
        parts.append(f"{record['latency_ms']:.0f}ms")
    return "  ".join(parts)


def replay_command(bucket_name: str, letter: str) -> str:
    short = letter[len(DEAD_LETTERS_PREFIX):] if letter.startswith(DEAD_LETTERS_PREFIX) else letter
    return f"STATE_BUCKET={bucket_name} python -m stardex_webhook.replay run {short}"


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 1 or more")
    return value


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout, environ: dict[str, str] | None = None,
         bucket: Any = None, now: float | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stardex_webhook.history", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="the records, newest first, one a line")
    listing.add_argument("--source")
    listing.add_argument("--outcome", help="updated, ignored, queued, dead_letter, unprocessable... or a reason")
    listing.add_argument("--since", help="2h, 3d, 90m or an ISO time (UTC unless it says)")
    listing.add_argument("--person", help="a Stardex person id")
    listing.add_argument("--email", help="an address the event named (any case or spacing)")
    listing.add_argument("--linkedin", help="a LinkedIn URL the event named")
    listing.add_argument("--limit", type=_at_least_one, default=50, help="at most this many records (default 50)")
    listing.add_argument("--json", action="store_true", help="one JSON document")
    show = commands.add_parser("show", help="one event's record, and its dead letter when there is one")
    show.add_argument("delivery_id", help="as the sender sent it, or a record's name (events/….json) as list prints it")
    show.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "list" and args.linkedin and not linkedin(args.linkedin):
        parser.error(f"--linkedin {args.linkedin!r}: not a LinkedIn profile URL (such as https://www.linkedin.com/in/name)")
    if args.command == "list" and args.source is not None and args.source not in SOURCES:  # else: nothing, exit 0
        parser.error(f"--source {args.source!r}: no such sender (one of: {', '.join(sorted(SOURCES))})")
    if args.command == "list" and args.outcome == "dead_lettered":  # the worker's answer: the record says dead_letter
        args.outcome = "dead_letter"
    now = time.time() if now is None else now
    try:
        settings = load_settings(environ)
    except ConfigurationError as error:
        print(f"history cannot start: {error}", file=sys.stderr)
        return 2
    if not settings.state_bucket:
        print("history needs STATE_BUCKET: the bucket that holds the records", file=sys.stderr)
        return 2
    store = StateStore(settings.state_bucket)
    history = History(bucket if bucket is not None else store.bucket())
    try:
        if args.command == "show":
            return _show(history, settings.state_bucket, args.delivery_id, args.json, out)
        identities = None
        if args.email or args.linkedin:
            key = SecretProvider(settings).get(HISTORY_KEY)
            if not key:
                print("--email and --linkedin need HISTORY_KEY (or HISTORY_KEY_SECRET), the function's key", file=sys.stderr)
                return 2
            identities = {identity_hash(key, "email", args.email)} if args.email else set()
            url = linkedin(args.linkedin) if args.linkedin else None
            identities |= {identity_hash(key, "linkedin", url)} if url else set()
        try:
            since = since_time(args.since, now) if args.since else None
        except argparse.ArgumentTypeError as error:
            parser.error(str(error))
        found = history.records(since, args.source, args.outcome, args.person, identities, args.limit)
    except RetryLater as error:
        print(f"history: {error.reason}: {error.message}", file=sys.stderr)
        return 1
    except Exception as error:  # the bucket could not be read (Google's client raised)
        print(f"history: the state bucket could not be read ({type(error).__name__}: {error})", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(found, indent=2), file=out)
    else:
        for record in found:
            print(line(record), file=out)
    return 0


def _show(history: History, bucket_name: str, delivery_id: str, as_json: bool, out: TextIO) -> int:
    """``delivery_id``: as the sender sent it, or a record's name (``events/….json``, as ``list`` prints it
    beside a delivery id it masks)."""
    if delivery_id.startswith(EVENTS_PREFIX) and not delivery_id.startswith(IDS_PREFIX) and delivery_id.endswith(".json"):
        record = history.read(delivery_id)
        records = [] if record is None else [{**record, "name": delivery_id}]
    else:
        records = history.by_delivery(delivery_id)
    if not records:
        print(f"no record of delivery {delivery_id} (kept 30 days)", file=sys.stderr)
        return 1
    for record in records:
        letter = record.get("dead_letter")
        waiting = bool(letter) and history.bucket.get_blob(dead_letter_name(letter)) is not None
        if as_json:
            print(json.dumps({**record, "dead_letter_waiting": waiting,
                              "replay": replay_command(bucket_name, letter) if waiting else None}, indent=2), file=out)
            continue
        print(line(record), file=out)
        print(json.dumps(record, indent=2), file=out)
        if waiting:
            print(f"dead letter: {letter}\nreplay it:   {replay_command(bucket_name, letter)}", file=out)
        elif letter:
            print(f"dead letter: {letter} (no longer in the bucket: replayed or expired)", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
