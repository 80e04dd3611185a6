"""Recovery from the durable store after a crash at any journal position: the engine is
rebuilt exactly, open exchange orders are reconciled (never resent), transfers and mints
whose outcome was lost are carried out again under the same id."""

from __future__ import annotations

from pathlib import Path

from indexmaker.app.recovery import recover
from indexmaker.app.runtime import EFFECTS
from indexmaker.core import codec
from indexmaker.core.clock import ManualClock
from indexmaker.core.events import (
    Command,
    ExchangeOrderStatusUnknown,
    MintIndex,
    PlaceExchangeOrder,
    QueryExchangeOrder,
    ReleaseIndex,
    RouteCollateral,
    SendToClient,
    Tick,
)
from indexmaker.core.journal import JournalEntry, OutboxItem
from indexmaker.engine.engine import Engine
from indexmaker.sim.replay_check import lifecycle, setup
from indexmaker.store.sqlite import SqliteStore


def _crashed_store(path: Path, entries: list[JournalEntry], done: int) -> Engine:
    """The store as a crash leaves it: `entries` committed with their effects, effects of
    the first `done` entries carried out. Returns the engine that ran them (the truth)."""
    engine = Engine(setup(), ManualClock())
    store = SqliteStore(path)
    for n, entry in enumerate(entries):
        commands: list[Command] = engine.replay([entry])
        seq = store.append(entry.at, entry.event).seq
        items = store.add_effects(seq, [c for c in commands if isinstance(c, EFFECTS)])
        if n < done:
            store.mark_done(i.key for i in items)
    store.close()
    return engine


def entries_effects(path: Path, cut: int) -> list[OutboxItem]:
    """The effects of the last entry (never marked done before the crash)."""
    store = SqliteStore(path)
    try:
        return [i for i in store.effects() if i.journal_seq == cut]
    finally:
        store.close()


def _state(engine: Engine) -> tuple[object, ...]:
    tracker = engine.tracker
    return (
        sorted((str(o.order_id), o.status.name, str(o.filled)) for o in tracker.open_orders()),
        engine.router.in_flight(),
        engine.orders.open_count(),
    )


def test_every_cut_of_the_lifecycle_recovers_to_the_state_before_the_crash(tmp_path: Path) -> None:
    entries, _ = lifecycle()
    cuts = range(1, len(entries), max(1, len(entries) // 25))
    seen_reconcile = seen_redo = seen_redemption = 0
    for cut in cuts:
        path = tmp_path / f"cut{cut}.sqlite3"
        truth = _crashed_store(path, entries[:cut], done=cut - 1)
        engine = Engine(setup(), ManualClock())
        store = SqliteStore(path)
        plan = recover(engine, store)
        assert plan.replayed == cut
        assert _state(engine) == _state(truth), cut
        # Every open order that was sent is asked about; nothing is placed again.
        sent = {
            i.command.order_id for i in store.effects() if isinstance(i.command, PlaceExchangeOrder)
        }
        asked = {e.order_id for e in plan.inputs if isinstance(e, ExchangeOrderStatusUnknown)}
        assert asked == {o.order_id for o in truth.tracker.open_orders()} & sent
        for event in plan.inputs:
            commands = engine.handle(event)
            assert not any(isinstance(c, PlaceExchangeOrder) for c in commands)
            assert any(isinstance(c, QueryExchangeOrder) for c in commands)
        # Transfers, mints and a redemption's chain effects whose outcome is unknown go
        # again under the same key (a release whose effect was not marked done, too).
        for command in plan.redo:
            if isinstance(command, RouteCollateral):
                assert truth.router.is_in_flight(
                    command.transfer_id
                ) or truth.redemptions.awaits_chain(command)
            elif isinstance(command, MintIndex):
                assert truth.solver.minter.is_minting(command.payment_id)
            elif isinstance(command, ReleaseIndex):
                assert command in [i.command for i in entries_effects(path, cut)]
            else:
                assert truth.redemptions.awaits_chain(command), command
                seen_redemption += 1
        # The last entry's effects were never marked done: they are superseded, not pending.
        store.commit()
        assert store.pending() == []
        seen_reconcile += bool(asked)
        seen_redo += bool(plan.redo)
        store.close()
    # The cuts did cover orders, hops and a redemption's escrow, burns or payout in flight.
    assert seen_reconcile and seen_redo and seen_redemption


def test_undelivered_client_messages_are_handed_over_again(tmp_path: Path) -> None:
    entries, _ = lifecycle()
    path = tmp_path / "db.sqlite3"
    _crashed_store(path, entries, done=0)
    plan = recover(Engine(setup(), ManualClock()), SqliteStore(path))
    expected = [
        codec.encode(c)
        for c in Engine(setup(), ManualClock()).replay(entries)
        if isinstance(c, SendToClient)
    ]
    assert expected and [codec.encode(m) for m in plan.messages] == expected


def test_a_restart_after_a_snapshot_replays_only_what_follows_and_ends_the_same(
    tmp_path: Path,
) -> None:
    entries, _ = lifecycle()
    cut = len(entries) // 3
    path = tmp_path / "db.sqlite3"
    truth = _crashed_store(path, entries, done=len(entries))
    # The service snapshotted after entry `cut` (a later one of another build is ignored).
    midway = Engine(setup(), ManualClock())
    midway.replay(entries[:cut])
    store = SqliteStore(path, keep_snapshots=0)  # the journal kept in full (full replay below)
    store.save_snapshot(cut, "this-build", midway.snapshot())
    store.commit()
    store.save_snapshot(len(entries), "older-build", b"never unpickled")
    store.close()

    engine = Engine(setup(), ManualClock())
    plan = recover(engine, SqliteStore(path), "this-build")
    assert (plan.snapshot_seq, plan.replayed) == (cut, len(entries) - cut)
    assert _state(engine) == _state(truth)
    assert engine.collateral.last_deposit_seq() == truth.collateral.last_deposit_seq() > 0
    tail = entries[-1].at
    assert [codec.encode(c) for c in engine.replay([JournalEntry(0, tail, Tick(tail))])] == [
        codec.encode(c) for c in truth.replay([JournalEntry(0, tail, Tick(tail))])
    ]
    full = Engine(setup(), ManualClock())
    assert recover(full, SqliteStore(path), None).replayed == len(entries)
    assert _state(full) == _state(truth)
