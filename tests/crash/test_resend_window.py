"""Issue 8's resend window across a `kill -9` of the real `serve` (issue 10): the service dies
with a client's order received and its signature spent but the order not yet committed. The
SDK's resend on the new session (same id, same nonce) must be taken, not refused as a replay
("already taken"), and the order minted once. On SQLite and PostgreSQL; bounded waits."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from indexmaker.app.cli import ANVIL_TEST_KEYS
from indexmaker.core.events import NewIndexOrderRequest
from indexmaker.server.client import IndexMakerClient

from .harness import SYMBOL, Run, StoreView, _deposit

CLIENT = 2


async def test_an_order_lost_with_the_process_is_taken_when_the_sdk_resends_it(
    tmp_path: Path, store_url: str | None
) -> None:
    # Dies with the first order buffered, not durable (its signature already spent).
    run = Run(tmp_path, ["before_commit:NewIndexOrderRequest#1"], store_url=store_url)
    run.start()
    try:
        _deposit(run.url, CLIENT, Decimal(400))
        events: list[Any] = []
        client = IndexMakerClient(run.url, ANVIL_TEST_KEYS[CLIENT], max_reconnect_delay=0.5)
        client.on_event = events.append
        async with client:
            sent = asyncio.create_task(client.new_order(SYMBOL, "buy", Decimal(300), "w-1"))
            deadline = time.monotonic() + 60
            while not sent.done():  # restart serve once it died
                assert time.monotonic() < deadline, run.logs()[-2000:]
                await asyncio.to_thread(run.ensure)
                await asyncio.sleep(0.1)
            await sent  # the resend was answered (a refusal as a replay times out here)
            await client.wait_minted("w-1", timeout=30)
        assert len(run.kills) == 1 and run.kills[0].spec.startswith("before_commit:")
        orders = [
            e
            for e in StoreView.read(run.db).inputs
            if isinstance(e, NewIndexOrderRequest) and e.client_order_id == "w-1"
        ]
        assert len(orders) == 1  # journalled once: the resend, after the crash lost the first
        assert "Replayed signature" not in run.logs()
    finally:
        run.stop()
