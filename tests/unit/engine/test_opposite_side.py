"""Opposite-side orders weighed exactly and ended (issue 12 review): a buy against a sell takes
amount / P_sell index units rounded down to the token's 18 decimals (never a unit more than it
pays for), a sell against a buy rounds the units its USDC stands for up; every figure the
client then reads (the reduction, a later cancel) has at most 18 decimals, the same under any
Decimal context the caller runs in. An order used up where it was weighed ends at once with a
final report (CancelIndexOrder, status canceled, "done: ...")."""

from __future__ import annotations

from decimal import Context, Decimal, localcontext

import pytest

from indexmaker.core.events import (
    CancelIndexOrderRequest,
    CancelIndexOrderResponse,
    NewIndexOrderResponse,
    RequestStatus,
)
from indexmaker.core.ids import ClientOrderId
from indexmaker.core.money import MONEY_CONTEXT
from indexmaker.model.side import Side

from .sell_setup import IDX, floor_held, order, sent, world

D = Decimal


@pytest.mark.parametrize("context", [MONEY_CONTEXT, Context(prec=10)], ids=["money", "prec10"])
def test_a_buy_against_a_sell_at_a_price_that_does_not_divide_takes_whole_token_units(
    context: Context,
) -> None:
    with localcontext(context):
        state = world()
        alice = state.client("alice")
        redemption = floor_held(state, "alice")
        # At the sell limit P = 2 x 9.9 + 19.9 = 39.7, 50 USDC pay for 1.2594458438287153652...
        # units: 1.259445843828715365 of them on 18 decimals (down), never the 34-digit quotient.
        mark = len(state.world.log.messages)
        unspent = state.world.engine.collateral.unspent(alice)
        state.world.submit(order("alice", state, "A2", Side.BUY, "50"))
        # The buy is used up there: it ends at once with a final report (SPEC §3; issue 12
        # review: it stayed `accepted` forever), spending no collateral.
        assert sent(state, mark) == [
            NewIndexOrderResponse(
                ClientOrderId("A2"),
                RequestStatus.NEW,
                "reduced the redemption by 1.259445843828715365 index units",
            ),
            CancelIndexOrderResponse(
                ClientOrderId("A2"),
                RequestStatus.CANCELED,
                "done: nothing left to buy (reduced the redemption by 1.259445843828715365 "
                "index units; no collateral spent, nothing minted)",
            ),
        ]
        assert state.world.engine.orders.update(alice, ClientOrderId("A2")) is None
        assert state.world.engine.collateral.unspent(alice) == unspent
        assert redemption.quantity == D("23.740554156171284635")
        assert redemption.quantity.as_tuple().exponent >= -18
        # The cancel of everything left names the rest in whole token units.
        mark = len(state.world.log.messages)
        state.world.submit(CancelIndexOrderRequest(alice, ClientOrderId("S1"), IDX, D(30)))
        (cancel,) = [m for m in sent(state, mark) if isinstance(m, CancelIndexOrderResponse)]
        assert cancel.status is RequestStatus.CANCELED
        assert cancel.reason == "23.740554156171284635 index units taken off the sell"


@pytest.mark.parametrize("context", [MONEY_CONTEXT, Context(prec=10)], ids=["money", "prec10"])
def test_a_sell_against_a_buy_rounds_the_units_its_usdc_stands_for_up(context: Context) -> None:
    # Bob's buy of 100 waits for collateral. At the buy limit P = 40, fee_factor 1.001, one
    # unit weighs 40.04 USDC: a sell of 3.3 units wants 132.132, the whole 100 is taken, and
    # 100 / 40.04 = 2.4975024975024975024975... units are covered, 2.497502497502497503 on 18
    # decimals (up), so 0.802497502497502497 units flip into a redemption.
    with localcontext(context):
        state = world()
        bob = state.client("bob")
        state.world.submit(order("bob", state, "B1", Side.BUY, "100"))
        state.world.submit(order("bob", state, "S1", Side.SELL, "3.3"))
        assert state.world.engine.orders.update(bob, ClientOrderId("B1")) is None
        redemption = state.world.engine.redemptions.get(bob, ClientOrderId("S1"))
        assert redemption is not None
        assert redemption.quantity == D("0.802497502497502497")
