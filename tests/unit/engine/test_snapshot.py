"""Engine snapshots and market data journalled at decision granularity (issue 10): a restart
from a snapshot plus the journal after it, or from a compacted journal, decides exactly as
the engine that ran."""

from __future__ import annotations

from decimal import Decimal

from indexmaker.core import codec
from indexmaker.core.clock import ManualClock
from indexmaker.core.events import (
    BookSnapshot,
    BookUpdate,
    Command,
    EngineInput,
    ExchangeFill,
    Tick,
)
from indexmaker.core.journal import MemoryJournal
from indexmaker.engine.engine import Engine
from indexmaker.sim.replay_check import AAA, lifecycle, setup


def _encoded(commands: list[Command]) -> list[bytes]:
    return [codec.encode(c) for c in commands]


def test_a_restart_from_a_snapshot_decides_as_the_full_replay() -> None:
    entries, _ = lifecycle()
    # Between two fills of the first batches: orders engaged, lots open, mints to come.
    middle = [i for i, e in enumerate(entries) if isinstance(e.event, ExchangeFill)][3]
    ran = Engine(setup(), ManualClock())
    ran.replay(entries[:middle])
    state = ran.snapshot()
    expected = ran.replay(entries[middle:])

    restarted = Engine(setup(), ManualClock())
    restarted.restore(state)
    got = restarted.replay(entries[middle:])
    assert _encoded(got) == _encoded(expected)
    kinds = {type(c).__name__ for c in got}
    assert {"MintIndex", "PlaceExchangeOrder"} <= kinds  # the half with decisions in it
    assert restarted.collateral is not ran.collateral  # restoring shares nothing with `ran`


def test_book_diffs_are_journalled_once_per_decision_as_whole_books() -> None:
    clock = ManualClock()
    journal = MemoryJournal()
    engine = Engine(setup(), clock, journal, compact_market=True)
    entries, _ = lifecycle()
    inputs: list[EngineInput] = [e.event for e in entries]
    diffs = [
        BookUpdate(
            AAA,
            bids=((Decimal("9.9") - Decimal(n % 5) / 100, Decimal(100 + n)),),
            asks=((Decimal(10) + Decimal(n % 7) / 100, Decimal(0 if n % 3 else 50 + n)),),
        )
        for n in range(40)
    ]
    # Interleave a burst of diffs before every tenth lifecycle input.
    fed: list[EngineInput] = []
    for n, event in enumerate(inputs):
        if n % 10 == 0 and not isinstance(event, BookUpdate):
            fed.extend(diffs[: 5 + n % 30])
        fed.append(event)
    commands = []
    for event in fed:
        commands.extend(engine.handle(event))

    journalled = [e.event for e in journal.entries()]
    assert not any(isinstance(e, BookUpdate) for e in journalled)
    assert len(journalled) < len(fed)
    replayed = Engine(setup(), ManualClock())
    assert _encoded(replayed.replay(journal.entries())) == _encoded(commands)
    book, again = engine.market.book(AAA), replayed.market.book(AAA)
    assert book is not None and again is not None
    assert repr(book) == repr(again) and book.depth() == again.depth()


def test_a_tick_after_diffs_is_preceded_by_the_book_it_saw() -> None:
    clock = ManualClock()
    journal = MemoryJournal()
    engine = Engine(setup(), clock, journal, compact_market=True)
    engine.handle(BookSnapshot(AAA, ((Decimal(9), Decimal(1)),), ((Decimal(11), Decimal(2)),)))
    engine.handle(BookUpdate(AAA, bids=((Decimal(10), Decimal(3)),)))
    engine.handle(BookUpdate(AAA, asks=((Decimal(11), Decimal(0)), (Decimal(12), Decimal(4)))))
    engine.handle(Tick(clock.now()))
    first, second = [e.event for e in journal.entries()]
    assert first == BookSnapshot(
        AAA, ((Decimal(10), Decimal(3)), (Decimal(9), Decimal(1))), ((Decimal(12), Decimal(4)),)
    )
    assert isinstance(second, Tick)
