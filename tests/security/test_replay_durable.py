"""Issue 8's replay hole, over real sockets against the real service with its store (SQLite;
the restart on PostgreSQL too): the in-memory signature ledger is bounded (least recently used
keys forgotten), and a forgotten key's captured reference-style frame must still be refused,
also after a restart.
Repro of the hole: max_signing_keys=2, a victim's order, two fresh keys send orders (the
victim is evicted from memory), the victim's frame replayed by a stranger → was ACK."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from eth_account import Account

from indexmaker.app.config import ServiceConfig, StoreConfig
from indexmaker.core.ids import ClientOrderId
from indexmaker.server.session import SessionConfig
from integration.test_protocol import ORDER, Live, fast_config, start_live

from .test_replay_auth import private_frames, replayed


def durable_config(data: Path, max_keys: int = 2, url: str | None = None) -> ServiceConfig:
    config = fast_config(session=SessionConfig(max_signing_keys=max_keys))
    return dataclasses.replace(config, store=StoreConfig(data, url=url))


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    live = await start_live(durable_config(tmp_path))
    try:
        yield live
    finally:
        await live.http.close()
        await live.stop()


async def test_a_key_forgotten_in_memory_cannot_be_replayed(live: Live) -> None:
    victim = await live.connect()
    captured = victim.build("NewIndexOrder", {"client_order_id": "v-1", **ORDER})
    await victim.send(captured)
    await victim.expect("ACK", ref_seq_num=1)
    victim.seq = 1
    for n in range(2):  # two fresh keys push the victim's out of the bounded cache
        other = await live.connect()
        await other.request("NewIndexOrder", {"client_order_id": f"o-{n}", **ORDER})
    ledger = live.service.server.hub.signatures
    assert len(ledger) == 2 and not ledger.is_compromised(victim.address.lower())
    stranger = await live.connect(Account.create())
    await stranger.refused(replayed(captured, 1), "Replayed signature", ref=0, refused_seq=1)
    # The victim's own session cannot replay it either, and nothing was placed twice.
    await victim.refused(replayed(captured, 2), "Replayed signature", refused_seq=2)
    update = live.service.engine.orders.update(victim.key, ClientOrderId("v-1"))
    assert update is not None and update.amount == 1000
    await stranger.nothing_more()
    assert private_frames(stranger) == []


async def test_a_spent_signature_stays_spent_after_a_restart(
    tmp_path: Path, store_url: str | None
) -> None:
    first = await start_live(durable_config(tmp_path / "data", 100, store_url))
    try:
        victim = await first.connect()
        captured = victim.build("NewIndexOrder", {"client_order_id": "r-1", **ORDER})
        await victim.send(captured)
        await victim.expect("ACK", ref_seq_num=1)
        await victim.close()
    finally:
        await first.http.close()
        await first.stop()
    second = await start_live(durable_config(tmp_path / "data", 100, store_url))
    try:
        assert len(second.service.server.hub.signatures) == 0  # nothing in memory
        stranger = await second.connect(Account.create())
        await stranger.refused(replayed(captured, 1), "Replayed signature", ref=0, refused_seq=1)
        # The restarted service still knows the order (journal) and took no second one.
        assert second.service.engine.orders.update(victim.key, ClientOrderId("r-1")) is not None
        await stranger.nothing_more()
        assert private_frames(stranger) == []
    finally:
        await second.http.close()
        await second.stop()
