"""A sell held below its floor looks at the books once a `floor_recheck` and is priced again
only when what its price is made of moved (engine/redemption_candidates.py `FloorPricing`,
`MarketData.best_price`).

Pricing reads every book of the basket, and with a store each read of a book changed since it
was last journalled journals it whole: re-pricing a parked sell every tick journalled about
one `BookSnapshot` per asset per tick (~780 rows/s for SY100) while nothing else happened.
Here the engine journals as `serve` does with a store (`compact_market`), the books move
every tick (below their best bids, then at them), and the journal and the effects are
counted.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal

from indexmaker.core import codec
from indexmaker.core.clock import ManualClock
from indexmaker.core.events import (
    BookInvalid,
    BookSnapshot,
    BookUpdate,
    Command,
    PlaceExchangeOrder,
    Tick,
)
from indexmaker.core.holds import HoldCode
from indexmaker.core.ids import instrument
from indexmaker.core.journal import MemoryJournal
from indexmaker.core.redemption_events import RedemptionStatus
from indexmaker.engine.engine import Engine
from indexmaker.engine.prices import MarketData
from indexmaker.model.side import Side

from .sell_setup import floor_held, world

D = Decimal
AAA, BBB = instrument("AAAUSDC"), instrument("BBBUSDC")
TICKS = 30


def _books_read(journal: MemoryJournal, mark: int) -> list[object]:
    entries = list(journal.entries())[mark:]
    return [e.event.instrument for e in entries if isinstance(e.event, BookSnapshot)]


def test_a_sell_held_below_its_floor_looks_at_the_books_once_a_recheck() -> None:
    state = world()
    engine = state.world.engine
    assert engine.setup.config.floor_recheck == timedelta(seconds=1)
    redemption = floor_held(state, "alice")  # stopped: 1000 > 991.507499
    # From here on the engine journals as serve does with a store.
    before = engine.snapshot()
    journal = MemoryJournal()
    engine.journal, engine.compact_market = journal, True
    commands: list[Command] = []
    state.world.on_command = commands.append

    for n in range(TICKS):  # every tick the books change, but not at their best bids
        state.world.submit(BookUpdate(AAA, bids=((D("9.8"), D(100 + n)),)))
        state.world.submit(BookUpdate(BBB, bids=((D("19.8"), D(100 + n)),), asks=()))
        state.world.submit(BookUpdate(BBB, asks=((D("20.1"), D(1 + n)),)))
        state.world.advance(timedelta(milliseconds=100))
    kinds = Counter(type(e.event) for e in journal.entries())
    # The first recheck reads both books (this journal has none yet); the next ones find the
    # same best bids and read none (before: both books journalled every tick). No effect.
    assert kinds == {Tick: TICKS, BookSnapshot: 2}
    assert commands == []

    # AAA's best bid rises every tick, still below the floor (P at most 2 x 9.979 + 19.9):
    # the books are looked at once a second, not 30 times in 3 s; the client is told nothing.
    mark = len(journal)
    for n in range(TICKS):
        state.world.submit(BookUpdate(AAA, bids=((D("9.95") + D(n) / 1000, D(50)),)))
        state.world.advance(timedelta(milliseconds=100))
    read = _books_read(journal, mark)
    assert 2 <= read.count(AAA) <= 4 and read.count(BBB) == 1, read  # BBB: changed below
    assert commands == []
    assert redemption.notice == (RedemptionStatus.STOPPED, HoldCode.BELOW_FLOOR)

    # BBB's best bid moves above what the floor needs (P >= 2 x 9.95 + 20.5 = 40.4): sold at
    # the next look, within a recheck.
    state.world.submit(BookUpdate(BBB, bids=((D("20.5"), D(50)),)))
    state.world.advance(timedelta(milliseconds=1100))
    sells = [c for c in commands if isinstance(c, PlaceExchangeOrder)]
    assert {(c.instrument, c.side) for c in sells} == {(AAA, Side.SELL), (BBB, Side.SELL)}

    # Replay decides the same from the journal: the skipped ticks read no book it lacks.
    replayed = Engine(engine.setup, ManualClock())
    replayed.restore(before)
    again = replayed.replay(journal.entries())
    assert [codec.encode(c) for c in again] == [codec.encode(c) for c in commands]


def test_best_price_reads_a_changed_book_only_when_its_best_price_moved() -> None:
    market = MarketData()
    read: list[object] = []
    market.on_read = read.append

    def changed(event: BookSnapshot | BookUpdate | BookInvalid) -> None:
        market.apply(event)  # as Engine.handle does with compact_market
        if isinstance(event, BookInvalid):
            market.unjournaled.discard(event.instrument)
        else:
            market.unjournaled.add(event.instrument)

    changed(BookSnapshot(AAA, ((D(9), D(1)),), ((D(11), D(1)),)))
    assert market.best_price(AAA, Side.SELL) == D(9) and read == [AAA]  # never journalled
    market.journaled(AAA)  # what Engine._journal_book does when it journals it
    changed(BookUpdate(AAA, bids=((D(8), D(5)),), asks=((D(11), D(3)),)))
    assert market.best_price(AAA, Side.SELL) == D(9) and read == [AAA]  # below the bid
    assert market.best_price(AAA, Side.BUY) == D(11) and read == [AAA]
    changed(BookUpdate(AAA, asks=((D("10.5"), D(1)),)))
    assert market.best_price(AAA, Side.SELL) == D(9) and read == [AAA]  # the other side
    assert market.best_price(AAA, Side.BUY) == D("10.5") and read == [AAA, AAA]
    market.journaled(AAA)
    # A book dropped and snapshotted anew at the same best bid is new: replay saw the drop.
    changed(BookInvalid(AAA, "stale"))
    changed(BookSnapshot(AAA, ((D(9), D(1)),), ((D(11), D(1)),)))
    assert market.best_price(AAA, Side.SELL) == D(9) and read == [AAA, AAA, AAA]
