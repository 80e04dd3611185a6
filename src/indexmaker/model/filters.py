"""Exchange symbol rules (Binance-style filters) and how an order is fitted to them (SPEC §6).

The sizing upstream decides the most the order may be (`max_quantity`); the filters may round
down, or raise to a venue minimum only while that stays within `max_quantity`. When it cannot,
the asset is skipped for this batch with the name of the filter that refused it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from indexmaker.core.errors import InvalidInputError
from indexmaker.core.ids import DEFAULT_VENUE, InstrumentId, Pair, Venue
from indexmaker.core.money import (
    EXACT_CONTEXT,
    MONEY_CONTEXT,
    ZERO,
    dec,
    exact_multiply,
    pad_up_to_step,
    round_down_to_step,
    round_down_to_tick,
    round_up_to_step,
    round_up_to_tick,
)
from indexmaker.model.side import Side

_FLOOR_CTX = MONEY_CONTEXT.copy()
_FLOOR_CTX.rounding = ROUND_FLOOR
_CEIL_CTX = MONEY_CONTEXT.copy()
_CEIL_CTX.rounding = ROUND_CEILING

PRICE_FILTER = "PRICE_FILTER"
LOT_SIZE = "LOT_SIZE"
NOTIONAL = "NOTIONAL"


@dataclass(frozen=True, slots=True)
class InstrumentRules:
    """One instrument's trading rules. 0 disables tick_size, step_size, min_price and every max_*,
    as on Binance."""

    instrument: InstrumentId
    base_asset: str
    quote_asset: str
    tick_size: Decimal = ZERO
    min_price: Decimal = ZERO
    max_price: Decimal = ZERO
    step_size: Decimal = ZERO
    min_qty: Decimal = ZERO
    max_qty: Decimal = ZERO
    min_notional: Decimal = ZERO
    max_notional: Decimal = ZERO
    # Rate of a buy's commission the venue takes in the base asset (Binance's default: the
    # received asset; SPEC §6, the lot holds quantity − commission). 0: charged otherwise.
    buy_base_commission: Decimal = ZERO

    def __post_init__(self) -> None:
        for name in _DECIMAL_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value < ZERO:
                raise InvalidInputError(name, f"must be a finite Decimal >= 0, got {value!r}")
        if self.max_price and self.min_price > self.max_price:
            raise InvalidInputError("min_price", "above max_price")
        if self.max_qty and self.min_qty > self.max_qty:
            raise InvalidInputError("min_qty", "above max_qty")
        if self.max_notional and self.min_notional > self.max_notional:
            raise InvalidInputError("min_notional", "above max_notional")
        if self.buy_base_commission >= 1:
            raise InvalidInputError("buy_base_commission", "must be below 1")

    @classmethod
    def from_binance(
        cls,
        symbol_info: Mapping[str, Any],
        venue: Venue = DEFAULT_VENUE,
        buy_base_commission: Decimal = ZERO,
    ) -> InstrumentRules:
        """Parse one entry of Binance `GET /api/v3/exchangeInfo` `symbols[]`.

        Reads PRICE_FILTER (minPrice, maxPrice, tickSize), LOT_SIZE (minQty, maxQty, stepSize),
        MIN_NOTIONAL (minNotional) and NOTIONAL (minNotional, maxNotional); when both notional
        filters are present the stricter minimum wins. `buy_base_commission` is the account's
        commission rate on a buy when the venue takes it in the base asset (0 otherwise).
        """
        try:
            instrument = InstrumentId(venue, Pair(str(symbol_info["symbol"])))
            base = str(symbol_info["baseAsset"])
            quote = str(symbol_info["quoteAsset"])
            filters = {str(entry["filterType"]): entry for entry in symbol_info.get("filters", ())}
        except (KeyError, TypeError) as exc:
            raise InvalidInputError("symbol_info", f"not an exchangeInfo symbol: {exc}") from exc

        def field(filter_type: str, name: str) -> Decimal:
            entry = filters.get(filter_type)
            if entry is None or entry.get(name) is None:
                return ZERO
            try:
                return dec(str(entry[name]))
            except (ArithmeticError, ValueError) as exc:
                raise InvalidInputError(f"{filter_type}.{name}", f"{entry[name]!r}") from exc

        return cls(
            instrument=instrument,
            base_asset=base,
            quote_asset=quote,
            tick_size=field(PRICE_FILTER, "tickSize"),
            min_price=field(PRICE_FILTER, "minPrice"),
            max_price=field(PRICE_FILTER, "maxPrice"),
            step_size=field(LOT_SIZE, "stepSize"),
            min_qty=field(LOT_SIZE, "minQty"),
            max_qty=field(LOT_SIZE, "maxQty"),
            min_notional=max(field("MIN_NOTIONAL", "minNotional"), field(NOTIONAL, "minNotional")),
            max_notional=field(NOTIONAL, "maxNotional"),
            buy_base_commission=buy_base_commission,
        )


_DECIMAL_FIELDS = (
    "tick_size",
    "min_price",
    "max_price",
    "step_size",
    "min_qty",
    "max_qty",
    "min_notional",
    "max_notional",
    "buy_base_commission",
)


@dataclass(frozen=True, slots=True)
class FilteredOrder:
    """An order that passes every filter."""

    price: Decimal
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class FilterSkip:
    """The asset cannot be traded this batch; `reason` is the filter's name."""

    reason: str
    detail: str = ""


def _down(value: Decimal, step: Decimal) -> Decimal:
    return round_down_to_step(value, step) if step else value


def _up(value: Decimal, step: Decimal) -> Decimal:
    return round_up_to_step(value, step) if step else value


def _qty_down(value: Decimal, step: Decimal, origin: Decimal) -> Decimal:
    """LOT_SIZE: largest origin + k × step <= value (Binance: (qty − minQty) % stepSize == 0)."""
    if not step:
        return value
    return EXACT_CONTEXT.add(
        origin, round_down_to_step(EXACT_CONTEXT.subtract(value, origin), step)
    )


def _qty_up(value: Decimal, step: Decimal, origin: Decimal) -> Decimal:
    """LOT_SIZE: smallest origin + k × step >= value."""
    if not step:
        return value
    offset = round_up_to_step(EXACT_CONTEXT.subtract(value, origin), step)
    return EXACT_CONTEXT.add(origin, offset)


def lot_cover(rules: InstrumentRules, quantity: Decimal) -> Decimal:
    """The smallest quantity on the LOT_SIZE grid (min_qty + k × step) that covers `quantity`,
    ignoring 34-digit noise (`pad_up_to_step`): padding never rounds below a batch's demand."""
    step, origin = rules.step_size, rules.min_qty
    if not step or quantity <= origin:
        return quantity if quantity > origin else origin
    offset = pad_up_to_step(EXACT_CONTEXT.subtract(quantity, origin), step)
    return EXACT_CONTEXT.add(origin, offset)


def gross_up_for_commission(
    rules: InstrumentRules | None, side: Side, quantity: Decimal
) -> Decimal:
    """What to send so that `quantity` arrives: a buy whose commission the venue takes in the
    base asset at rate r sends quantity / (1 − r), rounded up (ceiling, 34 digits, whatever the
    caller's context); the caller then rounds it up onto the LOT_SIZE grid (`lot_cover`). Any
    other case (a sell, a commission in the quote or another asset) sends `quantity`."""
    rate = rules.buy_base_commission if rules is not None else ZERO
    if side is not Side.BUY or not rate or quantity <= ZERO:
        return quantity
    return _CEIL_CTX.divide(quantity, _CEIL_CTX.subtract(Decimal(1), rate))


def received_share(rules: InstrumentRules | None, side: Side) -> Decimal:
    """The share of a `side` order's quantity that reaches the account (1 − r for a buy paying
    its commission in the base asset at rate r, else 1); exact (1 − r has few digits)."""
    rate = rules.buy_base_commission if rules is not None else ZERO
    if side is not Side.BUY or not rate:
        return Decimal(1)
    return EXACT_CONTEXT.subtract(Decimal(1), rate)


def _filter_price(rules: InstrumentRules, side: Side, price: Decimal) -> Decimal:
    tick = rules.tick_size
    if tick:
        # Buys round up so the limit is never tighter than sized; sells round down.
        price = (
            round_up_to_tick(price, tick) if side is Side.BUY else round_down_to_tick(price, tick)
        )
    if rules.min_price and price < rules.min_price:
        price = _up(rules.min_price, tick)
    if rules.max_price and price > rules.max_price:
        price = _down(rules.max_price, tick)
    return price


def _min_quantity_for_notional(
    price: Decimal, min_notional: Decimal, step: Decimal, origin: Decimal
) -> Decimal:
    """Smallest quantity on the LOT_SIZE grid whose notional at `price` reaches `min_notional`."""
    needed = _qty_up(_CEIL_CTX.divide(min_notional, price), step, origin)
    if step:
        # Guard against the division's own rounding at 34 digits.
        while exact_multiply(price, needed) < min_notional:
            needed = EXACT_CONTEXT.add(needed, step)
    return needed


def _max_quantity_for_notional(
    price: Decimal, max_notional: Decimal, step: Decimal, origin: Decimal
) -> Decimal:
    """Largest quantity on the LOT_SIZE grid whose notional at `price` stays within
    `max_notional`."""
    allowed = _qty_down(_FLOOR_CTX.divide(max_notional, price), step, origin)
    if step:
        while allowed > ZERO and exact_multiply(price, allowed) > max_notional:
            allowed = EXACT_CONTEXT.subtract(allowed, step)
    return allowed


def apply_filters(
    rules: InstrumentRules,
    side: Side,
    price: Decimal,
    quantity: Decimal,
    max_quantity: Decimal,
) -> FilteredOrder | FilterSkip:
    """Fit a limit order to the symbol's filters.

    `quantity` is what the sizing wants, `max_quantity` the most it allows (a quantity above it
    is cut to it). The result's price is a tick multiple (buys rounded up, sells down, then
    clamped into [min_price, max_price]); its quantity min_qty + a step multiple, never above
    `max_quantity` nor `max_qty`; its notional within [min_notional, max_notional].
    """
    for name, value in (("price", price), ("quantity", quantity), ("max_quantity", max_quantity)):
        if not value.is_finite() or value < ZERO:
            raise InvalidInputError(name, f"must be a finite Decimal >= 0, got {value}")
    if price == ZERO:
        raise InvalidInputError("price", "must be positive")

    price = _filter_price(rules, side, price)
    if price <= ZERO:
        return FilterSkip(PRICE_FILTER, "price rounds to zero at this tick size")

    step = rules.step_size
    origin = rules.min_qty  # the LOT_SIZE grid starts at minQty (0 when disabled)
    cap = _qty_down(max_quantity, step, origin)
    if rules.max_qty:
        cap = min(cap, _qty_down(rules.max_qty, step, origin))
    qty = min(_qty_down(quantity, step, origin), cap)

    if qty < rules.min_qty or qty <= ZERO:
        lowest = rules.min_qty if rules.min_qty else step
        if lowest == ZERO or lowest > cap:
            return FilterSkip(LOT_SIZE, f"quantity {qty} below min {rules.min_qty}, cap {cap}")
        qty = lowest

    notional = exact_multiply(price, qty)
    if rules.min_notional and notional < rules.min_notional:
        needed = _min_quantity_for_notional(price, rules.min_notional, step, origin)
        if needed > cap:
            return FilterSkip(
                NOTIONAL, f"notional {notional} below min {rules.min_notional}; needs {needed}"
            )
        qty = needed
        notional = exact_multiply(price, qty)
    if rules.max_notional and notional > rules.max_notional:
        qty = _max_quantity_for_notional(price, rules.max_notional, step, origin)
        too_small = qty < rules.min_qty or exact_multiply(price, qty) < rules.min_notional
        if qty <= ZERO or too_small:
            return FilterSkip(NOTIONAL, f"max notional {rules.max_notional} allows {qty}")
    return FilteredOrder(price=price, quantity=qty)
