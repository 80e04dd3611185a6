"""Journal compaction on both backends (SQLite, PostgreSQL): the journal stays bounded by the
kept snapshots, a restart after compaction ends in the state of an uncompacted replay, and a
kill between two delete batches loses nothing (store/compaction.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from indexmaker.app.recovery import recover
from indexmaker.app.runtime import EFFECTS
from indexmaker.core import codec
from indexmaker.core.clock import ManualClock
from indexmaker.core.events import Tick
from indexmaker.core.journal import JournalEntry
from indexmaker.engine.engine import Engine
from indexmaker.sim.replay_check import lifecycle, setup
from indexmaker.store.compaction import JournalCompacted
from indexmaker.store.sql import SqlStore

BUILD = "this-build"
Opener = Callable[[int], SqlStore]


def _run(store: SqlStore, entries: list[JournalEntry], every: int) -> Engine:
    """The service's way: journal each input with its effects, a snapshot every `every`
    entries, a commit per entry. Returns the engine that ran them (the truth)."""
    engine = Engine(setup(), ManualClock())
    for entry in entries:
        commands = engine.replay([entry])
        seq = store.append(entry.at, entry.event).seq
        store.mark_done(
            i.key for i in store.add_effects(seq, [c for c in commands if isinstance(c, EFFECTS)])
        )
        if seq % every == 0:
            store.save_snapshot(seq, BUILD, engine.snapshot())
        store.commit()
    return engine


def _seqs(store: SqlStore) -> list[int]:
    return [int(r[0]) for r in store._rows("SELECT seq FROM journal ORDER BY seq")]


def _same(engine: Engine, truth: Engine, at: JournalEntry) -> None:
    """Same ledgers: the same commands for the next tick, byte for byte, and the same
    open orders, transfers and index orders."""
    tick = [JournalEntry(0, at.at, Tick(at.at))]
    assert [codec.encode(c) for c in engine.replay(tick)] == [
        codec.encode(c) for c in truth.replay(tick)
    ]
    for each in (engine, truth):
        assert each.orders.open_count() == truth.orders.open_count()
        assert each.router.in_flight() == truth.router.in_flight()
        assert each.collateral.last_deposit_seq() == truth.collateral.last_deposit_seq()


def test_the_journal_stays_within_the_kept_snapshots_and_restores_as_uncompacted(
    open_keeping: Opener,
) -> None:
    entries, _ = lifecycle()
    every = max(5, len(entries) // 8)  # about 8 snapshots over the lifecycle
    store = open_keeping(2)
    truth = _run(store, entries, every)
    seqs = _seqs(store)
    last_snapshot = len(entries) // every * every
    # Everything up to the spare snapshot is gone; the spare and the newest are kept.
    assert seqs == list(range(last_snapshot - every + 1, len(entries) + 1))
    assert len(seqs) <= 2 * every
    kept = [int(r[0]) for r in store._rows("SELECT seq FROM snapshots ORDER BY seq")]
    assert kept == [last_snapshot - every, last_snapshot]
    assert store.compacted_through == last_snapshot - every
    store.close()

    reopened = open_keeping(2)
    engine = Engine(setup(), ManualClock())
    plan = recover(engine, reopened, BUILD)
    assert (plan.snapshot_seq, plan.replayed) == (last_snapshot, len(entries) - last_snapshot)
    assert reopened.last_seq == len(entries)  # numbering goes on after the compacted journal
    _same(engine, truth, entries[-1])
    # A reader asking for entries compaction deleted is told so, never given a partial replay.
    with pytest.raises(JournalCompacted, match="compacted away"):
        next(iter(reopened.entries(0)))
    reopened.close()


def test_without_compaction_the_whole_journal_is_kept(open_keeping: Opener) -> None:
    entries, _ = lifecycle()
    store = open_keeping(0)
    _run(store, entries, 10)
    assert _seqs(store) == list(range(1, len(entries) + 1))
    assert store.compacted_through == 0
    store.close()


def test_a_kill_between_delete_batches_loses_nothing(open_keeping: Opener) -> None:
    entries, _ = lifecycle()
    every = len(entries) // 3
    store = open_keeping(2)
    store.compaction.batch = 3  # one small batch per commit: compaction spans many commits
    truth = Engine(setup(), ManualClock())
    # Two snapshots: entries up to the first are to be deleted, 3 per commit.
    store_truth = _run(store, entries[: 2 * every], every)
    floor = store.compacted_through
    assert 0 < floor < every  # started, not finished
    store._db.close()  # killed mid-compaction: the next batch never ran

    reopened = open_keeping(2)
    assert _seqs(reopened)[0] == floor + 1
    engine = Engine(setup(), ManualClock())
    plan = recover(engine, reopened, BUILD)
    assert plan.snapshot_seq == 2 * every
    truth.replay(entries[: 2 * every])
    _same(engine, truth, entries[2 * every - 1])
    _same(store_truth, truth, entries[2 * every - 1])
    # Compaction goes on from where it stopped with the next commits, batch by batch.
    reopened.compaction.batch = 3
    for entry in entries[2 * every :]:
        reopened.append(entry.at, entry.event)
        reopened.commit()
        assert reopened.compacted_through <= every
    assert reopened.compacted_through == min(every, floor + 3 * len(entries[2 * every :]))
    reopened.close()
