"""The FIX outbox and server_seq across a `kill -9` of the real `serve` (issue 10): a client
that reconnects after the restart gets every message it missed, once, under the numbers it
would have had, and sees no restart (on SQLite and PostgreSQL). Bounded waits; the process is
stopped by PID."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from indexmaker.app.cli import ANVIL_TEST_KEYS
from indexmaker.core.events import IndexOrderFill, MintInvoice, SendToClient
from indexmaker.server.client import IndexMakerClient
from indexmaker.server.client_events import ServerMessage

from .harness import SYMBOL, Run, StoreView, _deposit, _order, address

CLIENT = 1


def business(events: list[Any]) -> dict[int, Any]:
    """Stored business messages by server_seq (a second one under a number fails)."""
    seen: dict[int, Any] = {}
    for event in events:
        if isinstance(event, ServerMessage) and event.server_seq is not None:
            assert event.server_seq not in seen, event
            seen[event.server_seq] = event
    return seen


def committed_for_client(view: StoreView) -> list[SendToClient]:
    who = address(CLIENT).lower()
    return [e for e in view.effects if isinstance(e, SendToClient) and e.client[1] == who]


async def _wait_minted(run: Run, client_order_id: str, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while client_order_id not in {i.client_order_id for i in StoreView.read(run.db).invoices()}:
        assert run.process is not None and run.process.poll() is None, run.logs()[-2000:]
        assert time.monotonic() < deadline, f"{client_order_id} not minted"
        await asyncio.sleep(0.1)


async def test_a_client_resumes_after_a_kill_and_gets_each_missed_message_once(
    tmp_path: Path, store_url: str | None
) -> None:
    run = Run(tmp_path, [], store_url=store_url)
    run.start()
    try:
        _deposit(run.url, CLIENT, Decimal(700))
        live: list[Any] = []
        first = IndexMakerClient(run.url, ANVIL_TEST_KEYS[CLIENT])
        first.on_event = live.append
        async with first:
            await first.new_order(SYMBOL, "buy", Decimal(250), "k-1")
            await first.wait_minted("k-1", timeout=30)
            cursor = first.last_server_seq
        assert cursor is not None
        # While the client is away its second order fills and mints; then serve is killed.
        await _order(run.url, CLIENT, "k-2", Decimal(250))
        await _wait_minted(run, "k-2")
        assert run.process is not None
        run.process.kill()
        run.process.wait(10)
        run.start()  # same port, same data

        # Numbers are the same in every life: a resume from 0 gives k-1's messages again
        # under the numbers they had live (first: a resume acknowledges what it skips).
        replay: list[Any] = []
        third = IndexMakerClient(run.url, ANVIL_TEST_KEYS[CLIENT], resume_from=0)
        third.on_event = replay.append
        async with third:
            await third.wait_minted("k-2", timeout=30)
            await asyncio.sleep(0.3)
        again = business(replay)
        for seq, message in business(live).items():
            assert type(again[seq]) is type(message), (seq, again.get(seq), message)
        assert set(business(live)) < set(again)
        resumed: list[Any] = []
        second = IndexMakerClient(run.url, ANVIL_TEST_KEYS[CLIENT], resume_from=cursor)
        second.on_event = resumed.append
        async with second:
            invoice = await second.wait_minted("k-2", timeout=30)
            await asyncio.sleep(0.5)  # a duplicate would arrive by now
        assert second.server_restarts == 0 and second.duplicates_dropped == 0
        missed = business(resumed)
        assert all(seq > cursor for seq in missed)
        assert set(missed) == set(again) - set(business(live))
        # Exactly what the service committed for this client after the cursor's message.
        view = StoreView.read(run.db)
        mine = committed_for_client(view)
        before = len(business(live))  # k-1's messages, received live in the first life
        after = [m.message for m in mine][before:]
        assert len(missed) == len(after)
        kinds = [type(m).__name__ for m in after]
        assert kinds.count("MintInvoice") == 1 and "IndexOrderFill" in kinds
        assert isinstance(after[-1], MintInvoice) and after[-1].client_order_id == "k-2"
        assert invoice.filled_quantity == after[-1].filled_quantity
        assert sum(isinstance(m, IndexOrderFill) for m in after) == len(second.fills["k-2"])

    finally:
        run.stop()


async def test_a_connected_client_rides_through_a_crash_mid_order(tmp_path: Path) -> None:
    # serve kills itself (SIGKILL) at its 10th effect, in the middle of the order's life.
    run = Run(tmp_path, ["effect:10"])
    run.start()
    try:
        _deposit(run.url, CLIENT, Decimal(400))
        events: list[Any] = []
        client = IndexMakerClient(run.url, ANVIL_TEST_KEYS[CLIENT], max_reconnect_delay=0.5)
        client.on_event = events.append
        async with client:
            await client.new_order(SYMBOL, "buy", Decimal(300), "m-1")
            deadline = time.monotonic() + 60
            while "m-1" not in client.invoices:  # restart serve whenever it died
                assert time.monotonic() < deadline, run.logs()[-2000:]
                await asyncio.to_thread(run.ensure)
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)  # a duplicate would arrive by now
        assert len(run.kills) == 1  # it did crash, and came back
        assert client.server_restarts == 0 and client.duplicates_dropped == 0
        received = business(events)
        committed = committed_for_client(StoreView.read(run.db))
        assert len(received) == len(committed)  # each message once, none lost
        fills = sum(isinstance(c.message, IndexOrderFill) for c in committed)
        assert fills == len(client.fills["m-1"]) > 0
        assert [
            c.message.client_order_id for c in committed if isinstance(c.message, MintInvoice)
        ] == ["m-1"]
    finally:
        run.stop()
