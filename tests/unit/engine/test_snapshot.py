"""Engine snapshots and market data journalled at decision granularity (issue 10): a restart
from a snapshot plus the journal after it, or from a compacted journal, decides exactly as
the engine that ran."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from indexmaker.core import codec
from indexmaker.core.clock import ManualClock
from indexmaker.core.events import (
    BookSnapshot,
    BookUpdate,
    Command,
    EngineInput,
    ExchangeFill,
    NewQuoteRequest,
    SendToClient,
    Tick,
)
from indexmaker.core.ids import ClientQuoteId, Symbol
from indexmaker.core.journal import MemoryJournal
from indexmaker.engine.engine import Engine
from indexmaker.model.side import Side
from indexmaker.sim.replay_check import AAA, BBB, CLIENTS, lifecycle, setup


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


def _diffed_engine() -> tuple[Engine, MemoryJournal, ManualClock]:
    clock = ManualClock()
    journal = MemoryJournal()
    engine = Engine(setup(), clock, journal, compact_market=True)
    engine.handle(BookSnapshot(AAA, ((Decimal(9), Decimal(1)),), ((Decimal(11), Decimal(2)),)))
    engine.handle(BookSnapshot(BBB, ((Decimal(19), Decimal(1)),), ((Decimal(21), Decimal(5)),)))
    engine.handle(BookUpdate(AAA, bids=((Decimal(10), Decimal(3)),)))
    engine.handle(BookUpdate(AAA, asks=((Decimal(11), Decimal(0)), (Decimal(12), Decimal(4)))))
    return engine, journal, clock


AAA_SEEN = BookSnapshot(
    AAA, ((Decimal(10), Decimal(3)), (Decimal(9), Decimal(1))), ((Decimal(12), Decimal(4)),)
)
BBB_SEEN = BookSnapshot(BBB, ((Decimal(19), Decimal(1)),), ((Decimal(21), Decimal(5)),))


def test_a_tick_that_reads_no_book_journals_no_book() -> None:
    engine, journal, clock = _diffed_engine()
    for _ in range(5):  # nothing to decide: no order, no quote
        clock.advance(timedelta(milliseconds=100))
        engine.handle(Tick(clock.now()))
    assert [type(e.event) for e in journal.entries()] == [Tick] * 5
    assert engine.market.unjournaled == {AAA, BBB}


def test_a_decision_is_preceded_by_each_changed_book_it_read_once() -> None:
    engine, journal, clock = _diffed_engine()
    commands: list[Command] = []

    def quote_then_tick(quote_id: str) -> tuple[NewQuoteRequest, Tick]:
        quote = NewQuoteRequest(
            CLIENTS[0], ClientQuoteId(quote_id), Symbol("IDX"), Side.BUY, Decimal(50)
        )
        commands.extend(engine.handle(quote))
        clock.advance(timedelta(milliseconds=100))
        tick = Tick(clock.now())
        commands.extend(engine.handle(tick))  # answers the quote: reads AAA and BBB
        return quote, tick

    first, first_tick = quote_then_tick("q1")
    second, second_tick = quote_then_tick("q2")  # the same books, unchanged: not again
    engine.handle(BookUpdate(BBB, asks=((Decimal(21), Decimal(7)),)))
    clock.advance(timedelta(milliseconds=100))
    engine.handle(Tick(clock.now()))  # nothing to answer: BBB's change stays unjournalled
    events = [e.event for e in journal.entries()]
    # IDX holds AAA and BBB: each as the tick read it, right before the tick's own entry.
    assert events == [
        first,
        AAA_SEEN,
        BBB_SEEN,
        first_tick,
        second,
        second_tick,
        Tick(clock.now()),
    ]
    assert engine.market.unjournaled == {BBB}
    sent = [type(c.message).__name__ for c in commands if isinstance(c, SendToClient)]
    assert sent.count("IndexQuoteResponse") == 2, sent  # one quote per request
    # Replay answers both quotes identically from the journalled books alone.
    replayed = Engine(setup(), ManualClock()).replay(journal.entries())
    assert _encoded(replayed) == _encoded(commands)


def test_a_snapshot_journals_every_book_not_yet_journalled_first() -> None:
    engine, journal, _ = _diffed_engine()
    state = engine.snapshot()
    assert sorted(repr(e.event) for e in journal.entries()) == sorted(
        (repr(AAA_SEEN), repr(BBB_SEEN))
    )
    restored = Engine(setup(), ManualClock(), MemoryJournal(), compact_market=True)
    restored.restore(state)
    assert restored.market.unjournaled == set() and restored.market.on_read is None
    book = restored.market.book(AAA)
    assert book is not None and book.best_prices() == (Decimal(10), Decimal(12))
