"""Internal crossing (issue 12; reference §6.1 item 3): a buy batch and a sell batch formed in
the same tick net their exchange orders per asset; only the net goes to the venue.

Per asset both batches trade, the crossed quantity X = min(buy quantity, sell quantity) moves
from the redeeming side to the buying side at the asset's mid price when the batches form
(the batch mid), with no exchange fee: the buy batch receives a lot of X at the mid, the sell
batch a sale of X at the mid. The mid lies between the two limit prices, so a buyer never
pays more and a seller never gets less than the venue would have given. What is left on one
side goes to the venue; a remainder the venue would refuse (below min_asset_volley or its
filters) is not crossed at all, so neither side is left with an order it cannot send. A sell
leg too small for the venue, which the issuer would absorb (absorption.py), goes to the buyer
first in the same way; only what the buyer does not take is absorbed. Assets without a mid
are not crossed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from indexmaker.core.ids import InstrumentId
from indexmaker.engine.prices import MarketData
from indexmaker.engine.strategy import BatchPlan, Candidate, PlannedAssetOrder
from indexmaker.model.filters import FilteredOrder, InstrumentRules, apply_filters

ZERO = Decimal(0)
B = TypeVar("B", bound=Candidate)
S = TypeVar("S", bound=Candidate)


@dataclass(frozen=True, slots=True)
class Crossing:
    instrument: InstrumentId
    quantity: Decimal
    price: Decimal  # the asset's mid when the batches formed


def cross(
    buy: BatchPlan[B],
    sell: BatchPlan[S],
    market: MarketData,
    rules: dict[InstrumentId, InstrumentRules],
    min_volley: Decimal,
) -> tuple[BatchPlan[B], BatchPlan[S], list[Crossing]]:
    """The two plans with their exchange orders netted, and what was crossed (in the buy
    plan's asset order: deterministic)."""
    sells = {o.instrument: o for o in sell.asset_orders}
    buys_out: list[PlannedAssetOrder] = []
    crossings: list[Crossing] = []
    for order in buy.asset_orders:
        other = sells.get(order.instrument)
        prices = market.prices(order.instrument)
        mid = prices.mid if prices is not None else None
        if other is None or mid is None or order.quantity <= 0:
            buys_out.append(order)
            continue
        if other.quantity <= 0 and other.absorbed > 0:
            # A sell leg the issuer would absorb goes to the buyer instead, as far as what the
            # buy still sends the venue is an order it takes; the rest is absorbed.
            crossed = min(order.quantity, other.absorbed)
            left_buy = _remainder(order, order.quantity - crossed, rules, min_volley)
            if left_buy is None:
                buys_out.append(order)
                continue
            other = dataclasses.replace(other, absorbed=other.absorbed - crossed)
        elif other.quantity > 0:
            crossed = min(order.quantity, other.quantity)
            left_buy = _remainder(order, order.quantity - crossed, rules, min_volley)
            left_sell = _remainder(other, other.quantity - crossed, rules, min_volley)
            if left_buy is None or left_sell is None:
                buys_out.append(order)  # a remainder the venue would refuse: not crossed
                continue
            other = dataclasses.replace(other, quantity=left_sell)
        else:
            buys_out.append(order)
            continue
        crossings.append(Crossing(order.instrument, crossed, mid))
        buys_out.append(dataclasses.replace(order, quantity=left_buy))
        sells[order.instrument] = other
    if not crossings:
        return buy, sell, []
    sells_out = tuple(sells[o.instrument] for o in sell.asset_orders)
    return (
        dataclasses.replace(buy, asset_orders=tuple(buys_out)),
        dataclasses.replace(sell, asset_orders=sells_out),
        crossings,
    )


def _remainder(
    order: PlannedAssetOrder,
    left: Decimal,
    rules: dict[InstrumentId, InstrumentRules],
    min_volley: Decimal,
) -> Decimal | None:
    """What still goes to the venue after crossing, or None if the venue would refuse it."""
    if left <= 0:
        return ZERO
    if left * order.price < min_volley:
        return None
    symbol_rules = rules.get(order.instrument)
    if symbol_rules is None:
        return None
    filtered = apply_filters(symbol_rules, order.side, order.price, left, left)
    if not isinstance(filtered, FilteredOrder) or filtered.quantity != left:
        return None
    return left
