"""Issue 10: "A discrepancy that cannot be resolved automatically is an operator alert, and the
affected orders wait." An asset the venue holds less of than our lots (twice in a row) is
alerted and holds every order that needs it (a redemption selling it, a buy of an index with
it) with the hold `balance_short`, until a balance report covers the lots again."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from indexmaker.core.events import Alert, RedemptionFill, VenueBalance
from indexmaker.core.holds import HoldCode
from indexmaker.core.ids import Asset, ClientOrderId, Venue
from indexmaker.model.order import OrderStatus
from indexmaker.model.side import Side

from .sell_setup import order, sent, world

D = Decimal


def test_an_asset_short_at_the_venue_holds_its_orders_until_a_balance_covers_the_lots() -> None:
    state = world()  # alice and bob hold 25 IDX each: lots of 100 AAA and 50 BBB
    engine = state.world.engine
    aaa = next(i for i in engine.solver.rules if i.pair == "AAAUSDC")
    venue, held = aaa.venue, engine.inventory.held_quantity(aaa)
    assert held == D(100)
    now = state.world.clock.now()
    short = VenueBalance(Venue(venue), Asset("AAA"), D(60), D(0), now)
    state.world.submit(short)
    state.world.submit(short)  # short twice in a row: not a stale report
    assert [a.code for a in state.world.log.alerts if isinstance(a, Alert)] == ["balance_short"]

    placed = len(state.world.log.exchange_orders)
    mark = len(state.world.log.messages)
    state.world.deposit(state.client("bob"), D("401"))
    state.world.submit(order("alice", state, "S1", Side.SELL, "5"))
    state.world.submit(order("bob", state, "B2", Side.BUY, "401"))
    state.world.advance(timedelta(seconds=6))
    # Nothing of AAA (nor of the indexes that need it) went to the venue; both orders wait,
    # the sell told why with the hold's code.
    assert len(state.world.log.exchange_orders) == placed
    held_fills = [
        m for m in sent(state, mark) if isinstance(m, RedemptionFill) and m.reason_code is not None
    ]
    assert held_fills and held_fills[-1].reason_code is HoldCode.BALANCE_SHORT
    assert held_fills[-1].reason is not None and "AAA" in held_fills[-1].reason
    update = engine.orders.update(state.client("bob"), ClientOrderId("B2"))
    assert update is not None and update.status is OrderStatus.READY  # not engaged
    redemption = engine.redemptions.get(state.client("alice"), ClientOrderId("S1"))
    assert redemption is not None and redemption.sold == 0

    # The venue's next report covers the lots: both go on (the sell crossed with the buy).
    state.world.submit(VenueBalance(Venue(venue), Asset("AAA"), D(100), D(0), now))
    state.world.advance(timedelta(seconds=5))
    assert {o.side for o in state.world.log.exchange_orders[placed:]} == {Side.BUY}
    assert redemption.sold == D(5)
    assert update.filled_quantity > 0
