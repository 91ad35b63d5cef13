"""The dead-letter stream: list what failed and replay it.

    python -m crm_kernel.dlq list [--consumer reports]
    python -m crm_kernel.dlq replay --all [--consumer reports]
    python -m crm_kernel.dlq replay 42

Replay republishes the original message to its original subject under the same
event id: the consumer that failed applies it, every other consumer of that
subject already has it in its inbox and skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from nats.js.errors import NotFoundError

from crm_kernel.bus import Bus
from crm_kernel.contracts import DEAD_LETTER_STREAM


@dataclass(frozen=True)
class DeadLetter:
    sequence: int
    consumer: str
    subject: str
    error: str
    deliveries: int
    failed_at: str
    headers: Mapping[str, str]
    data: bytes


async def list_dead_letters(
    bus: Bus, consumer: str | None = None, limit: int = 1000
) -> list[DeadLetter]:
    """Dead letters in order, optionally of one consumer."""
    try:
        info = await bus.js.stream_info(DEAD_LETTER_STREAM)
    except NotFoundError:
        return []
    found: list[DeadLetter] = []
    if info.state.messages == 0:
        return found
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            raw = await bus.js.get_msg(DEAD_LETTER_STREAM, seq)
        except NotFoundError:
            continue  # replayed and deleted
        # Values are ASCII (the consumer %-encodes them); str() undoes nats-py's header parsing.
        headers = {
            k: unquote(str(v)) if k.startswith("Crm-") else str(v)
            for k, v in (raw.headers or {}).items()
        }
        letter = DeadLetter(
            sequence=seq,
            consumer=headers.get("Crm-Consumer", ""),
            subject=headers.get("Crm-Original-Subject", ""),
            error=headers.get("Crm-Error", ""),
            deliveries=int(headers.get("Crm-Deliveries", "0")),
            failed_at=headers.get("Crm-Failed-At", ""),
            headers=headers,
            data=raw.data or b"",
        )
        if consumer is None or letter.consumer == consumer:
            found.append(letter)
            if len(found) >= limit:
                break
    return found


async def replay(bus: Bus, letter: DeadLetter) -> None:
    """Send a dead letter back to its subject, then remove it from the dead-letter stream."""
    headers = {
        k: v for k, v in letter.headers.items() if not k.startswith("Crm-") and k != "Nats-Msg-Id"
    }
    # A fresh message id: the original one may still be in JetStream's duplicate window.
    headers["Nats-Msg-Id"] = f"replay:{DEAD_LETTER_STREAM}:{letter.sequence}"
    await bus.js.publish(letter.subject, letter.data, headers=headers)
    await bus.js.delete_msg(DEAD_LETTER_STREAM, letter.sequence)


async def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m crm_kernel.dlq", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    sub = parser.add_subparsers(dest="command", required=True)
    list_cmd = sub.add_parser("list")
    list_cmd.add_argument("--consumer")
    replay_cmd = sub.add_parser("replay")
    replay_cmd.add_argument("sequence", nargs="?", type=int)
    replay_cmd.add_argument("--all", action="store_true")
    replay_cmd.add_argument("--consumer")
    args = parser.parse_args(argv)

    bus = await Bus.connect(args.nats_url, name="crm-dlq")
    try:
        letters = await list_dead_letters(bus, args.consumer)
        if args.command == "list":
            for letter in letters:
                print(
                    f"{letter.sequence}\t{letter.consumer}\t{letter.subject}\t"
                    f"{letter.deliveries}\t{letter.failed_at}\t{letter.error}"
                )
            return
        chosen = [x for x in letters if args.all or x.sequence == args.sequence]
        for letter in chosen:
            await replay(bus, letter)
        print(f"replayed {len(chosen)}")
    finally:
        await bus.close()


if __name__ == "__main__":
    asyncio.run(_main())
