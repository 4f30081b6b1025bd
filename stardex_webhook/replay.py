"""``python -m stardex_webhook.replay``: list, show and replay dead letters.

Reads the same settings as the function (``STATE_BUCKET``, the Stardex key, ``MAPPINGS_DIR``...).
A replayed letter goes through the pipeline's own stages (``accept`` without the signature, which
was checked when the delivery was received; ``prepare`` with the mapping files as they are now, so
a fixed mapping applies; ``process``). A letter is deleted only once its event is applied or
deliberately ignored; the command exits 1 when any letter it was asked to replay is left.

    replay list [--prefix P]        one dead letter's name a line
    replay show NAME                the letter as stored (JSON)
    replay run NAME...              replay those letters
    replay run --prefix P           replay every letter whose name starts with P (e.g. greenhouse/)
    replay run --all                replay every letter
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence, TextIO

from .deadline import Deadline
from .errors import ConfigurationError, RetryLater
from .pipeline import Answer, Pipeline, answered
from .records import Handshake, Received
from .state import DEAD_LETTERS_PREFIX, StateStore

# Outcomes after which the letter has served its purpose.
DONE = ("updated", "ignored")


def _short(name: str) -> str:
    return name[len(DEAD_LETTERS_PREFIX):] if name.startswith(DEAD_LETTERS_PREFIX) else name


def replay(pipeline: Pipeline, received: Received) -> Answer:
    """The replay door: accept (no signature) ─► ignored? ─► prepare ─► process; no claim and no
    new dead letter: the letter being replayed is both."""

    def work(record: dict[str, Any]) -> Answer:
        record.update(source=received.source, event=received.event, delivery_id=received.delivery_id,
                      received_at=received.received_at, door="replay")
        source = pipeline.source(received.source)
        deadline = Deadline(pipeline.settings.task_deadline_seconds)
        event = pipeline.accept(source, received.delivery(), deadline, verify=False)
        if isinstance(event, Handshake):
            return event.status_code, event.body, dict(event.headers)
        answer = pipeline.ignored(event)
        if answer is None:
            answer = pipeline.process(pipeline.prepare(event, deadline), deadline, record)
        return source.success_status, answer, {}

    return answered(pipeline.log, work, pipeline.history)


def run(pipeline: Pipeline, store: StateStore, names: Sequence[str], out: TextIO) -> int:
    """Replay each letter, print one line per letter, return how many are left."""
    left = 0
    for name in names:
        letter = store.dead_letter(name)
        if letter is None:
            print(f"{_short(name)}: missing", file=out)
            left += 1
            continue
        try:
            received = Received.from_dict(letter)
        except ValueError as error:
            print(f"{_short(name)}: unreadable ({error})", file=out)
            left += 1
            continue
        status_code, answer, _ = replay(pipeline, received)
        outcome = answer.get("status")
        detail = " ".join(str(part) for part in (answer.get("reason"), answer.get("person_id")) if part)
        if outcome in DONE:
            store.delete_dead_letter(name)
            print(f"{_short(name)}: {outcome} {detail}".rstrip() + " (deleted)", file=out)
        else:
            print(f"{_short(name)}: {status_code} {outcome} {detail}".rstrip() + " (kept)", file=out)
            left += 1
    return left


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m stardex_webhook.replay", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="print one dead letter's name a line",
                                  description="Print the name of each dead letter in STATE_BUCKET, one a line.")
    listing.add_argument("--prefix", default="", help="only letters whose name starts so (greenhouse/, greenhouse/202612)")
    show = commands.add_parser("show", help="print one dead letter", description="Print one dead letter as JSON.")
    show.add_argument("name", help="a name as `list` prints it (greenhouse/20261201T101500Z-….json)")
    replay_command = commands.add_parser(
        "run", help="replay dead letters through the pipeline",
        description="Replay dead letters through the same pipeline as a webhook, with the mapping files as they "
                    "are now. One line per letter says what happened; a letter is deleted only once its event is "
                    "applied or deliberately ignored. Exit 0 when every letter asked for was settled, 1 when any is "
                    "left, 2 for a usage or settings error. Give exactly one of NAME..., --prefix or --all.")
    replay_command.add_argument("names", nargs="*", metavar="NAME", help="dead letters by name, as `list` prints them")
    which = replay_command.add_mutually_exclusive_group()
    which.add_argument("--prefix", help="every letter whose name starts so (greenhouse/ for one sender)")
    which.add_argument("--all", action="store_true", help="every dead letter in the bucket")
    args = parser.parse_args(argv)
    if args.command == "run" and bool(args.names) + (args.prefix is not None) + args.all != 1:
        parser.error("run takes NAME..., --prefix P or --all (one of them)")
    try:
        pipeline = Pipeline.from_environment(log_stream=sys.stderr)
    except ConfigurationError as error:
        print(f"replay cannot start: {error}", file=sys.stderr)
        return 2
    if pipeline.state is None:
        print("replay needs STATE_BUCKET: the bucket that holds the dead letters", file=sys.stderr)
        return 2
    store = pipeline.state
    try:
        if args.command == "list":
            for name in store.dead_letters(args.prefix):
                print(_short(name), file=out)
            return 0
        if args.command == "show":
            letter = store.dead_letter(args.name)
            if letter is None:
                print(f"no dead letter {args.name}", file=sys.stderr)
                return 1
            print(json.dumps(letter, indent=2, ensure_ascii=False), file=out)
            return 0
        names = args.names or store.dead_letters("" if args.all else args.prefix)
        left = run(pipeline, store, names, out)
    except RetryLater as error:
        print(f"replay: {error.reason}: {error.message}", file=sys.stderr)
        return 1
    print(f"{len(names) - left} done, {left} left", file=out)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
