"""The smallest sell accepted (issue 12; SPEC §3 minimum order, mirrored for a seller).

A buy below `min_order` USDC is refused at acceptance (index_orders.py). A sell names index
units, so its size is valued at the current bids: units × Σ basket quantity × best bid (the
most the books pay before fees and the threshold). A sell worth less than `min_order` there
would move no asset at the venue and cost more than it pays (a 1e-18 SY100 sell was burned
and invoiced a negative net), so it is refused at acceptance, naming the minimum in index
units and USDC. A cancel may not cut a sell at or above the minimum to a dust remainder.
"""

from __future__ import annotations

from decimal import Decimal

from indexmaker.core.money import (
    EXACT_CONTEXT,
    INDEX_QUANTUM,
    USDC_QUANTUM,
    usdc_text,
)
from indexmaker.engine.prices import MarketData
from indexmaker.model.index import Basket

ZERO = Decimal(0)


def bid_price(basket: Basket, market: MarketData) -> Decimal | None:
    """Σ basket quantity × best bid (USDC per index unit, exact), or None if an asset has
    no bid."""
    ctx = EXACT_CONTEXT
    total = ZERO
    for asset in basket.assets:
        prices = market.prices(asset.instrument)
        if prices is None or prices.bid is None or prices.bid <= 0:
            return None
        total = ctx.add(total, ctx.multiply(asset.quantity, prices.bid))
    return total


def smallest_sell(min_order: Decimal, price: Decimal) -> Decimal:
    """The fewest index units on the token's 18 decimals worth at least `min_order` USDC at
    `price` > 0 USDC per unit: ceil of an exact integer division, under any context."""
    ctx = EXACT_CONTEXT
    quanta = ctx.divide_int(min_order, ctx.multiply(price, INDEX_QUANTUM))
    units = ctx.multiply(quanta, INDEX_QUANTUM)
    return units if ctx.multiply(units, price) >= min_order else ctx.add(units, INDEX_QUANTUM)


def _value(units: Decimal, price: Decimal) -> Decimal:
    return EXACT_CONTEXT.multiply(units, price)


def _worth(value: Decimal) -> str:
    """A value for the reason: a dust value says it is under a micro-USDC, not "0"."""
    return "less than 0.000001" if 0 < value < USDC_QUANTUM else usdc_text(value)


def _minimum_text(min_order: Decimal, price: Decimal) -> str:
    return (
        f"the minimum order of {usdc_text(min_order)} USDC "
        f"({smallest_sell(min_order, price):f} index units at "
        f"{usdc_text(price)} USDC per unit at the bids)"
    )


def below_minimum(
    basket: Basket, units: Decimal, market: MarketData, min_order: Decimal
) -> str | None:
    """Why a sell of `units` index units is refused as too small, or None.

    None too when an asset has no bid: the sell cannot be valued and waits for the books
    (as the absorb rule does, absorption.py)."""
    price = bid_price(basket, market)
    if price is None or _value(units, price) >= min_order:
        return None
    return (
        f"amount {units:f} index units is worth {_worth(_value(units, price))} USDC at the "
        f"current bids, below {_minimum_text(min_order, price)}"
    )


def dust_remainder(
    basket: Basket, before: Decimal, after: Decimal, market: MarketData, min_order: Decimal
) -> str | None:
    """Why a cancel that leaves `after` of `before` unsold, unengaged units is refused, or
    None: it would turn a remainder worth at least `min_order` at the bids into one worth
    less (but not nothing). A remainder already below the minimum may shrink."""
    price = bid_price(basket, market)
    if price is None or after <= 0 or _value(after, price) >= min_order:
        return None
    if _value(before, price) < min_order:
        return None
    most = before - smallest_sell(min_order, price)
    return (
        f"would leave {after:f} index units worth {_worth(_value(after, price))} USDC, below "
        f"{_minimum_text(min_order, price)}; cancel all {before:f} or at most {most:f}"
    )
