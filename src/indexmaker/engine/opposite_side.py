"""Opposite-side orders of one client for one index (SPEC §3), across buys and redemptions.

A buy is collateral (USDC), a sell index units, so one is weighed in the other's unit at the
current limit price of the side being reduced: a sell of q units against a buy queue takes
q × P_buy × fee_factor of its collateral (what engaging q units would have cost); a buy of A
USDC against a redemption takes A / P_sell of its units (rounded down to the token's 18
decimals: never a unit more than paid for; core/money.py index_units_down). The order
reduces what is not yet engaged (most recent first); only when nothing is engaged or done
does its excess flip to the other side (a new redemption or a new buy); otherwise the
response says what was reduced and why the rest was not. Neither side is left below the
minimum order (SPEC §3; sell_size.py): the rest of a flip that small is not redeemed, and a
buy that would leave a redemption's unsold, unengaged units worth less than min_order at the
bids takes them all (they are returned to the client with the rest), as a cancel may not
leave such dust. Without a price the request is rejected, never guessed.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from indexmaker.core.events import (
    CancelIndexOrderResponse,
    NewIndexOrderRequest,
    NewIndexOrderResponse,
    RequestStatus,
    SendToClient,
)
from indexmaker.core.money import (
    exact_multiply,
    exact_sub,
    index_units_down,
    index_units_up,
    round_index_down,
    round_usdc_down,
    usdc_text,
)
from indexmaker.engine.sell_size import dust_remainder
from indexmaker.model.order import IndexOrder
from indexmaker.model.redemption import Redemption
from indexmaker.model.side import Side

if TYPE_CHECKING:
    from indexmaker.engine.engine import Engine


def _price(engine: Engine, request: NewIndexOrderRequest, side: Side) -> Decimal | str:
    basket = engine.baskets[request.symbol]
    return engine.solver.strategy.index_limit_price(
        basket, engine.market, engine.solver.rules, side
    )


def _answer(engine: Engine, request: NewIndexOrderRequest, status: RequestStatus, why: str) -> None:
    response = NewIndexOrderResponse(request.client_order_id, status, why)
    engine.solver.out.append(SendToClient(request.client, response))


def _done(engine: Engine, request: NewIndexOrderRequest, why: str, rest: str) -> None:
    """An order that ends where it was weighed (SPEC §3): accepted with what it reduced, then
    ended at once with a final report, so it is never left open with nothing to come (issue
    12 review: a buy used up reducing a sell stayed `accepted` forever). The final report is
    the wire's CancelIndexOrder response, status canceled (what ends a buy or sell whose rest
    is taken off), unsolicited, its reason saying the order is done and why."""
    _answer(engine, request, RequestStatus.NEW, why)
    final = CancelIndexOrderResponse(
        request.client_order_id, RequestStatus.CANCELED, f"done: {rest}"
    )
    engine.solver.out.append(SendToClient(request.client, final))


def sell_against_buy(
    engine: Engine, request: NewIndexOrderRequest, order: IndexOrder, now: datetime
) -> None:
    """A sell while the client's buy queue for the symbol is open."""
    price = _price(engine, request, Side.BUY)
    engine.orders.reject_id(request.client, request.client_order_id)  # seen: no replay
    if isinstance(price, str):
        _answer(engine, request, RequestStatus.REJECTED, f"cannot weigh against the buy: {price}")
        return
    per_unit = exact_multiply(price, engine.setup.config.fee_factor)
    wanted = exact_multiply(request.amount, per_unit)
    reducible = engine.orders.reducible(order)
    take = reducible if wanted >= reducible else round_usdc_down(wanted)
    if take > 0:
        engine.reduce_buy(order, take)
    # The units `take` stands for round up, so the rest of the sell never counts one twice.
    left = round_index_down(exact_sub(request.amount, index_units_up(take, per_unit)))
    reduced = f"reduced the buy by {usdc_text(take)} USDC"
    ended = f"{reduced}; none of its index units sold"
    if left <= 0:
        _done(engine, request, reduced, f"nothing left to sell ({ended})")
    elif engine.orders.find(request.client, request.symbol) is None:
        flipped = dataclasses.replace(request, amount=left)
        refused = engine.redemptions.refusal(flipped)  # too small for the venue and issuer
        if refused is not None:
            why = f"{reduced}; the other {left} index units were not redeemed: {refused}"
            _done(engine, request, why, f"the other {left} index units are not sold ({ended})")
            return
        engine.redemptions.accept(flipped, engine.orders.next_arrival(), now, f"{reduced}; ")
    else:
        _done(
            engine,
            request,
            f"{reduced} (all not yet engaged); the other {left} index units were not "
            "redeemed: collateral engaged in a batch is released only when the batch completes",
            f"the other {left} index units are not sold ({ended})",
        )


def buy_against_sell(
    engine: Engine, request: NewIndexOrderRequest, redemption: Redemption, now: datetime
) -> Decimal | None:
    """A buy while the client's redemption of the symbol is selling. Returns the USDC left
    to queue as an ordinary buy (the flip), or None when the request is answered here."""
    price = _price(engine, request, Side.SELL)
    if isinstance(price, str):
        engine.orders.reject_id(request.client, request.client_order_id)
        _answer(engine, request, RequestStatus.REJECTED, f"cannot weigh against the sell: {price}")
        return None
    # Never a unit more than the USDC pays for; the USDC they stand for is exact, and the
    # rest of the buy rounds down to USDC's 6 decimals.
    units = index_units_down(request.amount, price)
    before = engine.redemptions.reducible(redemption)
    basket, min_order = engine.redemptions.baskets[request.symbol], engine.setup.config.min_order
    dust = dust_remainder(basket, before, before - units, engine.market, min_order)
    if dust is not None:  # SPEC §3: no sell below the minimum order is left: all of it goes
        units = before
    taken = engine.redemptions.reduce(redemption, units, "reduced by a buy")
    left = round_usdc_down(exact_sub(request.amount, exact_multiply(taken, price)))
    reduced = f"reduced the redemption by {round_index_down(taken)} index units"
    if dust is not None:
        reduced += (
            " (all not yet engaged or sold: the rest would have been below the minimum order)"
        )
    untouched = redemption.sold <= 0 and redemption.engaged <= 0
    if left >= engine.setup.config.min_order and untouched:
        return left
    engine.orders.reject_id(request.client, request.client_order_id)
    ended = f"{reduced}; no collateral spent, nothing minted"
    if left <= 0:
        _done(engine, request, reduced, f"nothing left to buy ({ended})")
    else:
        _done(
            engine,
            request,
            f"{reduced}; the other {usdc_text(left)} USDC was not bought: units of the "
            "redemption are engaged or sold (or the rest is below the minimum order)",
            f"the other {usdc_text(left)} USDC is not bought ({ended})",
        )
    return None
