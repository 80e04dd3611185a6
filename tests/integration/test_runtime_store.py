"""The runtime with a durable store (issue 10): commits run in the store's writer thread
while the engine and the event loop go on, and nothing a group decided leaves the process
before its commit is durable (durable before effect), even when the commit waits on a
locked database or fails. A real SQLite file; another connection holds its write lock."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import pytest

from indexmaker.core.events import NewIndexOrderResponse, NewQuoteRequest
from indexmaker.core.ids import ClientQuoteId
from indexmaker.model.side import Side
from indexmaker.store.sqlite import SqliteStore

from .test_runtime_faults import ALICE, IDX, Rig, build

D = Decimal


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    store = SqliteStore(tmp_path / "db")
    rig = build(store=store)
    durable_when_sent: list[bool] = []
    reader = sqlite3.connect(tmp_path / "db")  # sees committed rows only (WAL)

    def deliver(client: object, message: object) -> None:
        key = rig.runtime.effect_key
        row = reader.execute("SELECT 1 FROM outbox WHERE key = ?", (key,)).fetchone()
        durable_when_sent.append(row is not None)
        rig.sent.append((client, message))  # type: ignore[arg-type]

    rig.runtime.deliver = deliver
    rig.durable_when_sent = durable_when_sent  # type: ignore[attr-defined]
    yield rig
    for blocker in _blockers:
        blocker.close()  # a failed test may leave the lock held
    _blockers.clear()
    await rig.runtime.stop()
    store.close()
    reader.close()


def _locked(path: Path) -> sqlite3.Connection:
    """Another connection holding the database's write lock until it rolls back."""
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    _blockers.append(blocker)
    return blocker


_blockers: list[sqlite3.Connection] = []


async def _until(done: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not done():
            await asyncio.sleep(0.005)


async def test_a_reply_waits_for_its_commit_while_the_engine_goes_on(
    rig: Rig, tmp_path: Path
) -> None:
    await rig.runtime.start()
    blocker = _locked(tmp_path / "db")
    await rig.order()
    store = rig.runtime.store
    assert store is not None
    # The order's commit waits on the lock in the writer thread: the event loop runs (this
    # test does), the engine handles more inputs, and no reply has left.
    seq = store.last_seq
    rig.runtime.submit(NewQuoteRequest(ALICE, ClientQuoteId("q-1"), IDX, Side.BUY, D(10)))
    await _until(lambda: store.last_seq > seq)
    await asyncio.sleep(0.2)
    assert rig.sent == []
    blocker.execute("ROLLBACK")
    await _until(lambda: len(rig.sent) >= 2)
    replies = [m for _, m in rig.sent]
    assert isinstance(replies[0], NewIndexOrderResponse)  # in the order decided
    assert rig.durable_when_sent and all(rig.durable_when_sent)  # type: ignore[attr-defined]


async def test_a_failed_commit_sends_nothing_and_is_written_again_before_the_next(
    rig: Rig, tmp_path: Path
) -> None:
    store = rig.runtime.store
    assert isinstance(store, SqliteStore)
    store._db.execute("PRAGMA busy_timeout = 20")  # give up on a lock at once
    await rig.runtime.start()
    blocker = _locked(tmp_path / "db")
    await rig.order()
    await asyncio.sleep(0.3)  # the commit failed (locked) and its retry too
    assert rig.sent == []
    blocker.execute("ROLLBACK")
    await _until(lambda: bool(rig.sent))
    await asyncio.sleep(0.05)
    assert len([m for _, m in rig.sent if isinstance(m, NewIndexOrderResponse)]) == 1
    assert all(rig.durable_when_sent)  # type: ignore[attr-defined]
    await rig.runtime.drain()
    store.commit()
    seqs = [e.seq for e in store.entries()]
    assert seqs == list(range(1, store.last_seq + 1))  # no group lost: no gap


async def test_an_effect_never_leaves_with_an_earlier_commit_of_market_data(
    rig: Rig, tmp_path: Path
) -> None:
    """A commit without effects (ticks, books) is in flight when an order comes: the
    order's reply waits for a commit that holds the order, not for that earlier one."""
    await rig.runtime.start()
    blocker = _locked(tmp_path / "db")
    await asyncio.sleep(0.25)  # ticks every 10 ms: a commit of them waits on the lock
    await rig.order()
    await asyncio.sleep(0.1)
    assert rig.sent == []
    blocker.execute("ROLLBACK")
    await _until(lambda: bool(rig.sent))
    await asyncio.sleep(0.05)
    assert rig.durable_when_sent and all(rig.durable_when_sent)  # type: ignore[attr-defined]
