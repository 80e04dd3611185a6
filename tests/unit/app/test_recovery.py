"""Recovery from the durable store after a crash at any journal position: the engine is
rebuilt exactly, open exchange orders are reconciled (never resent), transfers and mints
whose outcome was lost are carried out again under the same id."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from indexmaker.app.recovery import recover
from indexmaker.app.runtime import EFFECTS
from indexmaker.core import codec
from indexmaker.core.clock import ManualClock
from indexmaker.core.events import (
    Command,
    DepositObserved,
    ExchangeOrderStatusUnknown,
    HopFailed,
    MintIndex,
    PlaceExchangeOrder,
    QueryExchangeOrder,
    ReleaseIndex,
    ResumeRoutes,
    RouteCollateral,
    SendToClient,
    Tick,
)
from indexmaker.core.ids import Designation, TxHash, client_key
from indexmaker.core.journal import JournalEntry, MemoryJournal, OutboxItem
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


def test_a_given_up_lot_is_resumed_once_by_the_restart_then_carried_on(tmp_path: Path) -> None:
    """Issue 11: a lot still given up after replay is routed again by one journalled
    `ResumeRoutes` input; a second crash replays that resume and redoes its hop under the
    same transfer id and hop key, never resuming twice."""
    clock = ManualClock()
    live = Engine(setup(), clock, MemoryJournal())
    alice = client_key(42161, "0x" + "a" * 40)
    arbitrum, tx = Designation("EVM:ARBITRUM:USDC"), TxHash("0x" + "1" * 64)
    (route,) = live.handle(DepositObserved(alice, 1, Decimal(100), arbitrum, tx, 0, 1, 12))
    failed = route
    for _ in range(3):
        out = live.handle(HopFailed(failed.transfer_id, "refused"))
        failed = next((c for c in out if isinstance(c, RouteCollateral)), failed)
    assert len(live.router.given_up()) == 1
    entries = list(live.journal.entries())  # type: ignore[attr-defined]
    _crashed_store(tmp_path / "one.sqlite3", entries, done=len(entries))
    engine = Engine(setup(), ManualClock())
    plan = recover(engine, SqliteStore(tmp_path / "one.sqlite3"))
    (resume,) = [e for e in plan.inputs if isinstance(e, ResumeRoutes)]
    assert resume == ResumeRoutes(None, "restart") and plan.redo == []
    (resumed,) = [c for c in engine.handle(resume) if isinstance(c, RouteCollateral)]
    assert resumed.hop_key == route.hop_key and resumed.transfer_id != failed.transfer_id
    # Crash again before the resumed hop's outcome is known.
    entries.append(JournalEntry(len(entries) + 1, clock.now(), resume))
    _crashed_store(tmp_path / "two.sqlite3", entries, done=len(entries) - 1)
    again = Engine(setup(), ManualClock())
    plan = recover(again, SqliteStore(tmp_path / "two.sqlite3"))
    assert not [e for e in plan.inputs if isinstance(e, ResumeRoutes)]
    assert again.router.given_up() == []
    assert [c for c in plan.redo if isinstance(c, RouteCollateral)] == [resumed]
