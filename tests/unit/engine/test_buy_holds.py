"""A ready buy held outside a batch says why, with a stable code (issue 12 review #5): the
buy fill report carries `reason` and `reason_code` as a redemption's fill report does
(core/holds.py), told once per code."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from indexmaker.core.events import BookSnapshot, FillStatus, IndexOrderFill
from indexmaker.core.holds import HoldCode
from indexmaker.core.ids import instrument
from indexmaker.model.side import BookSide, Side

from .sell_setup import IDX, order, sent, world

D = Decimal


def test_a_buy_held_for_a_missing_ask_is_told_why_once_then_fills() -> None:
    # Scenario 10's market; BBB's asks are taken away before carol's ready buy forms a batch.
    state = world()
    engine = state.world.engine
    bbb = instrument("BBBUSDC")
    book = engine.market.book(bbb)
    assert book is not None
    bids, asks = book.depth()
    kept = (tuple(book.levels(BookSide.BIDS, bids)), tuple(book.levels(BookSide.ASKS, asks)))
    state.world.submit(BookSnapshot(bbb, kept[0], ()))
    carol = state.client("carol")
    state.world.deposit(carol, D("401.9"))  # 10 units x 40 x 1.001 + the bridge's 1.5
    mark = len(state.world.log.messages)
    state.world.submit(order("carol", state, "C1", Side.BUY, "401.9"))
    state.world.advance(timedelta(seconds=10))  # collateral ready after 4 s; 60 ticks held
    fills = [m for m in sent(state, mark) if isinstance(m, IndexOrderFill)]
    held = [f for f in fills if f.reason_code is not None]
    assert [f.status for f in fills] == [FillStatus.COLLATERAL_READY, FillStatus.IN_PROGRESS]
    (hold,) = held
    assert hold.reason_code is HoldCode.NO_PRICE and hold.reason is not None
    assert "BBB" in hold.reason and hold.filled_quantity == 0
    queue = engine.orders.find(carol, IDX)
    assert queue is not None and queue.updates[0].notice is HoldCode.NO_PRICE
    state.world.submit(BookSnapshot(bbb, *kept))
    state.world.advance(timedelta(seconds=5))
    later = [m for m in sent(state, mark) if isinstance(m, IndexOrderFill)][len(fills) :]
    assert later and all(f.reason is None and f.reason_code is None for f in later)
    assert later[-1].filled_quantity == D(10)
    assert state.world.chain.minted[(carol, IDX)] == D(10)
