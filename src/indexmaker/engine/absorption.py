"""Sell legs the venue would refuse, taken by the issuer (issue 12: small redemptions complete).

A sell leg is never padded (that would sell assets no client redeems), so a leg worth less than
the venue's minimum (`sell_minimum`: min_asset_volley, or the instrument's NOTIONAL minimum if
higher) could not be sold at all: an SY100 redemption under ~500 USDC waited its whole TTL.
Instead the issuer takes such a leg into its idle inventory when the batch forms, at the
asset's mid (the limit price when the book has no mid), without exchange fee: a crossing with
the issuer (marked crossed on the redemption invoice). The issuer's USDC at the venue pays the
redeemer; the asset never leaves the venue, so the lot only changes owner (backing → free,
`InventoryManager.absorbed_notional` records the USDC). The next buy batch of the asset uses
that free lot before it buys (SPEC §3 carry-over), as it uses padding's surplus.

The bound is `max_issuer_absorb`, a cap on the issuer's absorbed inventory (USDC at the
current mids; 0 turns absorption off): what absorbed lots still hold free (no buy batch has
used it yet, `absorbed_inventory`) plus what a sell batch would absorb may not exceed it. A
batch that would take fewer redemptions; when even its first would, that one waits, told
why, until buys of those assets use the inventory up (or the books or more redemptions send
its legs to the venue), at most until its TTL. With sells and no buys the issuer so holds
at most the cap (plus what mids rose since), not an amount growing with every batch. A
redemption that alone would exceed the cap at the current books is refused at acceptance
(`absorb_refusal`), naming the sizes that can be sold, rather than waiting an hour.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from decimal import ROUND_CEILING, Context, Decimal, DivisionByZero, InvalidOperation
from typing import TYPE_CHECKING, TypeVar

from indexmaker.core.holds import HoldCode, HoldReason
from indexmaker.core.ids import InstrumentId
from indexmaker.core.money import (
    EXACT_CONTEXT,
    INDEX_QUANTUM,
    exact_add,
    exact_sub,
    round_index_down,
    round_up_to_step,
    share_down,
    usdc_text,
)
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.prices import MarketData
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.index import Basket
from indexmaker.model.side import Side

if TYPE_CHECKING:  # strategy.py asks `sell_minimum` here
    from indexmaker.engine.strategy import BatchPlan, Candidate, PlannedAssetOrder
    from indexmaker.model.lot import Lot

ZERO = Decimal(0)
ONE = Decimal(1)
# Exact whatever the caller's context (docs/decisions.md, roundings): products and sums in
# EXACT_CONTEXT; a leg's breakpoint rounds up (a sell at it is surely the venue's), the
# largest size absorbed whole rounds down (`share_down`).
_mul = EXACT_CONTEXT.multiply
_UP = Context(prec=34, rounding=ROUND_CEILING, traps=[InvalidOperation, DivisionByZero])
T = TypeVar("T", bound="Candidate")


def sell_minimum(config: SolverConfig, rules: InstrumentRules) -> Decimal:
    """The least notional (USDC at the limit) a sell leg of this instrument may have at the
    venue: min_asset_volley (SPEC §4), or the venue's NOTIONAL filter if higher (SPEC §6)."""
    return max(config.min_asset_volley, rules.min_notional)


def absorb_price(market: MarketData, instrument: InstrumentId, limit: Decimal) -> Decimal:
    """What the issuer pays per unit of an absorbed leg: the mid when the batch forms (as a
    crossing, crossing.py), or the sell limit when the book has no mid (what the bids would
    pay within the threshold, the least the client accepted)."""
    prices = market.prices(instrument)
    mid = prices.mid if prices is not None else None
    return mid if mid is not None and mid > 0 else limit


def absorbed_value(orders: Iterable[PlannedAssetOrder], market: MarketData) -> Decimal:
    """USDC the issuer pays for a sell plan's absorbed legs (Σ quantity × absorb price)."""
    total = ZERO
    for order in orders:
        if order.absorbed > 0:
            price = absorb_price(market, order.instrument, order.price)
            total = exact_add(total, _mul(order.absorbed, price))
    return total


def absorbed_inventory(lots: Iterable[Lot], market: MarketData) -> Decimal:
    """USDC the issuer's absorbed inventory is worth: Σ free quantity × mid of `lots`
    (InventoryManager.absorbed_free), at the lot's price when its book has no mid."""
    total = ZERO
    for lot in lots:
        total = exact_add(total, _mul(lot.free, absorb_price(market, lot.asset, lot.price)))
    return total


def within_absorb_bound(
    candidates: Sequence[tuple[T, Basket]],
    plan: Callable[[Sequence[tuple[T, Basket]]], BatchPlan[T]],
    market: MarketData,
    bound: Decimal,
    held: Decimal = ZERO,
) -> BatchPlan[T]:
    """`plan(candidates)` (a sell batch), with the last candidates left out (FIFO: they wait
    for the next batch) while `held` (USDC, the absorbed inventory) plus its absorbed legs
    exceed `bound` (max_issuer_absorb; 0: no absorption, nothing to bound); a plan absorbing
    nothing always goes. A first candidate that alone exceeds it (the inventory is full, or
    the books moved since it was accepted) is deferred, told why. At most len(candidates)
    plans."""
    while True:
        planned = plan(candidates)
        absorbed = absorbed_value(planned.asset_orders, market) if bound > 0 else ZERO
        if absorbed <= 0 or exact_add(held, absorbed) <= bound:
            return planned
        if len(candidates) > 1:
            candidates = candidates[:-1]
            continue
        ((first, _),) = candidates
        legs = f"legs below the venue minimum worth {usdc_text(absorbed)} USDC"
        reason = (
            f"{legs} and the issuer's absorbed inventory of {usdc_text(held)} USDC at the "
            f"mids exceed max_issuer_absorb {bound}; waits for buys of those assets, the "
            "books or more redemptions"
            if held > 0
            else f"{legs} exceed max_issuer_absorb {bound}; waits for the books or more redemptions"
        )
        deferred = ((first, HoldReason(HoldCode.OVER_ABSORB_LIMIT, reason)),)
        return replace(planned, entries=(), asset_orders=(), deferred=deferred, notional=ZERO)


def absorb_refusal(
    basket: Basket,
    units: Decimal,
    market: MarketData,
    rules: Mapping[InstrumentId, InstrumentRules],
    config: SolverConfig,
) -> str | None:
    """Why a redemption of `units` of `basket` is refused at acceptance, or None.

    Sold alone at the current books, each leg units × basket quantity worth less than its
    `sell_minimum` at the sell limit is absorbed. As `units` grows, the absorbed value rises
    within each interval between two legs' breakpoints (b = sell_minimum / (basket quantity ×
    limit)) and drops at each breakpoint, where a leg leaves for the venue; it is 0 from the
    last breakpoint on. Refused when it exceeds max_issuer_absorb; the reason names the largest
    sell below the first size that exceeds it and the smallest from which none does (both
    exact to the token's 18 decimals). None too when absorption is off or a price or rule is
    missing (the sell then waits for it, as before)."""
    bound = config.max_issuer_absorb
    if bound <= 0:
        return None
    threshold = config.price_threshold
    legs: list[tuple[Decimal, Decimal]] = []  # (breakpoint in units, USDC absorbed per unit)
    for asset in basket.assets:
        symbol_rules = rules.get(asset.instrument)
        if symbol_rules is None:
            return None
        limit = market.limit_price(asset.instrument, Side.SELL, threshold, symbol_rules.tick_size)
        if limit is None or limit <= 0 or asset.quantity <= 0:
            return None
        per_unit = _mul(asset.quantity, absorb_price(market, asset.instrument, limit))
        minimum = sell_minimum(config, symbol_rules)
        legs.append((_UP.divide(minimum, _mul(asset.quantity, limit)), per_unit))
    legs.sort()
    absorbing = exact_add(*(v for _, v in legs))
    here: Decimal | None = None  # absorbed at `units`
    below: Decimal | None = None  # the largest sell below the first one that exceeds the bound
    above = ZERO  # from here on nothing exceeds it
    n = 0
    while n < len(legs):
        breakpoint_ = legs[n][0]
        if here is None and units < breakpoint_:  # the legs still absorbed at `units`
            here = _mul(units, absorbing)
        if _mul(breakpoint_, absorbing) > bound:  # within [previous breakpoint, this one)
            if below is None:
                below = share_down(bound, ONE, absorbing)
            above = breakpoint_
        while n < len(legs) and legs[n][0] == breakpoint_:
            absorbing = exact_sub(absorbing, legs[n][1])
            n += 1
    if here is None or here <= bound:
        return None
    smallest = round_up_to_step(above, INDEX_QUANTUM)
    largest = round_index_down(below) if below is not None else ZERO
    return (
        f"a sell of {units:f} {basket.symbol} needs the issuer to take {usdc_text(here)} USDC "
        f"of legs below the venue minimum ({config.min_asset_volley} USDC per asset), above "
        f"max_issuer_absorb {bound}: sell at most {largest:f} or at least {smallest:f} units"
    )
