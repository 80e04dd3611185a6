"""Money and quantities: one Decimal context and every rounding as a named helper.

Never use float for money. Parse from strings (or ints) only; convert at the edges
(chain integer units, exchange strings) with the helpers below.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
    setcontext,
)

# 34 significant digits (IEEE decimal128): far beyond 18-decimal token units on
# any realistic amount. Invalid operations, division by zero and overflow raise.
MONEY_CONTEXT = Context(
    prec=34,
    rounding=ROUND_HALF_EVEN,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)

ZERO = Decimal(0)
ONE = Decimal(1)

USDC_DECIMALS = 6
INDEX_TOKEN_DECIMALS = 18
USDC_QUANTUM = Decimal(1).scaleb(-USDC_DECIMALS)  # 0.000001
# Every USDC amount moved (a deposit, a hop) is below this: 10^15 USDC, far beyond any supply
# (the wire's 15 integer digits, server/wire_values.py), so sums of amounts with 18 decimals
# stay exact in the 34-digit context and units fit a uint256 many times over.
USDC_LIMIT = Decimal(10) ** 15
INDEX_QUANTUM = Decimal(1).scaleb(-INDEX_TOKEN_DECIMALS)  # 1e-18


def use_money_context() -> None:
    """Install the project context in the current thread (the engine's thread)."""
    setcontext(MONEY_CONTEXT.copy())


def money_context() -> AbstractContextManager[Context]:
    """A `with` block running on the project context (for code outside the engine)."""
    return localcontext(MONEY_CONTEXT)


def dec(value: str | int | Decimal) -> Decimal:
    """Parse an exact decimal. Floats are refused: they are not exact."""
    if isinstance(value, float):  # defensive: callers at the edge may be untyped
        raise TypeError("float is not money; pass a string")
    result = Decimal(value)
    if not result.is_finite():
        raise ValueError(f"not a finite decimal: {value!r}")
    return result


# Unbounded precision: additions, subtractions, products, integer divisions and quantize are
# exact in it, whatever context the caller runs under (a caller's prec=3 or the default 28
# must not move a rounding across a step). Never divide in it: 1/3 has no end.
EXACT_CONTEXT = Context(
    prec=MAX_PREC,
    Emax=MAX_EMAX,
    Emin=MIN_EMIN,
    rounding=ROUND_HALF_EVEN,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)


def exact_add(*values: Decimal) -> Decimal:
    """Sum without rounding (ledger figures that must add up to the unit: lot quantities)."""
    total = ZERO
    for value in values:
        total = EXACT_CONTEXT.add(total, value)
    return total


def exact_sub(value: Decimal, *values: Decimal) -> Decimal:
    """`value` minus `values` without rounding: what remains is never rounded above the truth."""
    for other in values:
        value = EXACT_CONTEXT.subtract(value, other)
    return value


# Quotients must round, so shares of something that exists (a lot's fee, an affordable step)
# round toward zero: a rounded-up share can take one unit of the 34th digit more than exists.
_DOWN_CONTEXT = Context(
    prec=34,
    rounding=ROUND_FLOOR,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)


def share_down(whole: Decimal, part: Decimal, of: Decimal) -> Decimal:
    """`whole * part / of` to 34 digits, rounded toward -inf (never above the exact share).

    Shapes: any non-negative Decimals, `of` > 0. Raises DivisionByZero when `of` is 0.
    """
    return _DOWN_CONTEXT.divide(EXACT_CONTEXT.multiply(whole, part), of)


def _steps_below(value: Decimal, step: Decimal) -> Decimal:
    """floor(value / step) as an integral Decimal, computed exactly."""
    if not step.is_finite() or step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    if not value.is_finite():
        raise ValueError(f"not a finite decimal: {value}")
    ctx = EXACT_CONTEXT
    count = ctx.divide_int(value, step)  # truncates toward zero, exactly
    if ctx.subtract(value, ctx.multiply(count, step)) < 0:
        count = ctx.subtract(count, 1)  # negative values: truncation was a ceiling
    return count


def round_down_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of `step` that is <= value (exchange LOT_SIZE on quantities).

    Exact for any positive step (0.25, 0.3: Bitget has steps that are not powers of ten) and
    under any Decimal context; the result carries the step's exponent. Raises ValueError for
    a step <= 0 or a non-finite value.
    """
    return EXACT_CONTEXT.multiply(_steps_below(value, step), step)


def round_up_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Smallest multiple of `step` that is >= value (volley padding, buy tick rounding).

    Exact like `round_down_to_step`: never below `value`.
    """
    ctx = EXACT_CONTEXT
    below = ctx.multiply(_steps_below(value, step), step)
    return below if below == value else ctx.add(below, step)


# An excess over a multiple of a step smaller than this share of the step is 34-digit noise
# (a volley scale of 1/6, a pro-rata cut), not demand: padding never buys a step for it.
PAD_NOISE = Decimal("1e-12")


def pad_up_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Smallest multiple of `step` that covers `value`, ignoring an excess over a multiple below
    PAD_NOISE of a step (volley padding, LOT_SIZE cover of a batch's demand). Exact."""
    ctx = EXACT_CONTEXT
    below = ctx.multiply(_steps_below(value, step), step)
    excess = ctx.subtract(value, below)
    return below if excess <= ctx.multiply(step, PAD_NOISE) else ctx.add(below, step)


def exact_multiply(a: Decimal, b: Decimal) -> Decimal:
    """a × b with every digit kept (notional checks against a venue minimum or maximum)."""
    return EXACT_CONTEXT.multiply(a, b)


def round_up_to_tick(price: Decimal, tick: Decimal) -> Decimal:
    """Buy limit prices round up to the tick so the limit is never tighter than sized."""
    return round_up_to_step(price, tick)


def round_down_to_tick(price: Decimal, tick: Decimal) -> Decimal:
    """Sell limit prices round down to the tick."""
    return round_down_to_step(price, tick)


def round_usdc(value: Decimal) -> Decimal:
    """Report rounding for USDC amounts: 6 decimals, half-even."""
    return value.quantize(USDC_QUANTUM, rounding=ROUND_HALF_EVEN, context=EXACT_CONTEXT)


def round_usdc_down(value: Decimal) -> Decimal:
    """USDC amounts paid out or moved on chain: never more than owed."""
    return value.quantize(USDC_QUANTUM, rounding=ROUND_FLOOR, context=EXACT_CONTEXT)


def round_index_down(value: Decimal) -> Decimal:
    """Index token quantities minted: 18 decimals, never more than backed."""
    return value.quantize(INDEX_QUANTUM, rounding=ROUND_FLOOR, context=EXACT_CONTEXT)


def index_units_down(amount: Decimal, price: Decimal) -> Decimal:
    """The index units `amount` USDC pays for at `price` USDC per unit: amount / price on the
    token's 18 decimals, rounded toward -inf (never a unit more than was paid for), computed
    exactly under any Decimal context (an integer division, no 34-digit quotient first).

    Shapes: amount >= 0, price > 0 (ValueError otherwise). Result carries exponent -18."""
    return _index_quotient(amount, price, up=False)


def index_units_up(amount: Decimal, price: Decimal) -> Decimal:
    """amount / price on 18 decimals rounded toward +inf: the fewest whole token units that
    `amount` USDC covers at `price` (what a reduction by `amount` used up of a sell, so the
    rest never counts a unit twice). Exact under any context; shapes as index_units_down."""
    return _index_quotient(amount, price, up=True)


def _index_quotient(amount: Decimal, price: Decimal, *, up: bool) -> Decimal:
    if not price.is_finite() or price <= 0:
        raise ValueError(f"price must be positive, got {price}")
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"amount must be >= 0, got {amount}")
    ctx = EXACT_CONTEXT
    scaled = ctx.scaleb(amount, Decimal(INDEX_TOKEN_DECIMALS))
    count = ctx.divide_int(scaled, price)  # floor: both are non-negative
    if up and ctx.multiply(count, price) != scaled:
        count = ctx.add(count, 1)
    return ctx.scaleb(count, Decimal(-INDEX_TOKEN_DECIMALS)).quantize(INDEX_QUANTUM, context=ctx)


# Sums of 34-digit quotients can land a unit of the last digit past an exact bound (spend
# exactly equal to net, say). Overshoots up to this are rounding, not money.
ROUNDING_NOISE = Decimal("1e-20")

# Allocation totals (engine/batches.py, engine/sell_batches.py) are cumulative figures of
# the fill ratio: what a fill adds is total(after) - total(before), exact, so the end state
# is the same however the fills were grouped into steps (a restart regroups them, issue 10).
# USDC to 18 decimals, so a sum of 10^16 USDC still fits the 34-digit context exactly.
COST_QUANTUM = Decimal("1e-18")


def units_at(ratio: Decimal, quantity: Decimal) -> Decimal:
    """Index units of an allocation at a fill ratio (a buy or sell batch's entry): the whole
    quantity at 1 (a filled order is filled), else ratio × quantity to 34 significant digits,
    half-even (as a fill rate reads it back: 34 digits, not a unit of the last digit under
    it; the last sliver of a position may fall that short, batches.py). A relative grid:
    one unit of an index can cost millions of USDC, so a fixed exponent would cut a share of
    a partial batch that sizing the rest in USDC does not give back. A function of the ratio
    alone, so the same however the ratio got there; exact under any context."""
    if ratio >= ONE:
        return quantity
    return MONEY_CONTEXT.multiply(ratio, quantity)


def basket_share(units: Decimal, quantity: Decimal) -> Decimal:
    """The asset quantity backing `units` index units of a basket `quantity` (an allocation's
    cumulative take, buy or sell side): 34 significant digits, half-even, as units_at. A
    function of the units alone; kept to 34 digits, so lot figures stay short (an exact
    product carried 50-odd digits into every lot, fee share and value). Exact under any
    context."""
    return MONEY_CONTEXT.multiply(units, quantity)


# Asset quantities of lot disposals (a sale's take of a lot, issue 12): 18 decimals, the
# finest ERC-20 unit and finer than any venue's LOT_SIZE step, so no 34-digit tail reaches a
# lot, an invoice or a restart's replay.
ASSET_QUANTUM = Decimal("1e-18")


def asset_share_down(units: Decimal, quantity: Decimal) -> Decimal:
    """The asset quantity backing `units` index units of a basket `quantity`, for a disposal:
    the exact product rounded toward -inf to ASSET_QUANTUM (never disposes more than the exact
    share; the remainder stays on the lot). Exact under any context."""
    product = EXACT_CONTEXT.multiply(units, quantity)
    return product.quantize(ASSET_QUANTUM, rounding=ROUND_FLOOR, context=EXACT_CONTEXT)


def round_asset_down(value: Decimal) -> Decimal:
    """An asset quantity to dispose of or take (a rebalance's take of idle inventory) to
    ASSET_QUANTUM, toward -inf: never more than the bound it came from; the remainder stays
    on the lot. Exact under any context."""
    return value.quantize(ASSET_QUANTUM, rounding=ROUND_FLOOR, context=EXACT_CONTEXT)


# Prices shown in invoices (a lot's sale price, the VWAP): 12 decimals, half-even.
PRICE_QUANTUM = Decimal("1e-12")


def invoice_price(value: Decimal, quantity: Decimal) -> Decimal:
    """`value / quantity` (USDC per unit) to PRICE_QUANTUM, half-even, in canonical form (no
    trailing zeros): the same under any caller context. Raises DivisionByZero for 0."""
    price = MONEY_CONTEXT.divide(value, quantity)
    return canonical(price.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_EVEN, context=EXACT_CONTEXT))


def canonical(value: Decimal) -> Decimal:
    """One form per value (no trailing zeros; 0 as 0), so an invoice reads the same after a
    restart; format with `:f` for text without an exponent."""
    if not value:
        return ZERO
    return value.normalize(EXACT_CONTEXT)


def round_cost_down(value: Decimal) -> Decimal:
    """USDC of an allocation total (value of the lots or proceeds, fees): COST_QUANTUM,
    toward -inf (a client is never charged above the exact cost). Exact under any context."""
    return value.quantize(COST_QUANTUM, rounding=ROUND_FLOOR, context=EXACT_CONTEXT)


RATE_QUANTUM = Decimal("1e-12")


def round_rate(value: Decimal) -> Decimal:
    """Fill rates in reports: 12 decimals, rounded down (never overstate progress)."""
    return value.quantize(RATE_QUANTUM, rounding=ROUND_FLOOR, context=EXACT_CONTEXT)


def usdc_text(value: Decimal) -> str:
    """A USDC amount for a message to a person: rounded down to 6 decimals, no trailing zeros,
    never an exponent ("500", "595.192", "0.000001")."""
    text = f"{round_usdc_down(value):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def usdc_to_units(value: Decimal) -> int:
    """USDC amount to on-chain integer units; refuses amounts finer than 1e-6."""
    units = value.scaleb(USDC_DECIMALS, context=EXACT_CONTEXT)
    if units != units.to_integral_value(rounding=ROUND_FLOOR):
        raise ValueError(f"{value} has more than {USDC_DECIMALS} decimals")
    return int(units)


def units_to_usdc(units: int) -> Decimal:
    return Decimal(units).scaleb(-USDC_DECIMALS, context=EXACT_CONTEXT)


def index_to_units(value: Decimal) -> int:
    """Index token quantity to 18-decimal units, rounded down (never over-mint)."""
    return int(round_index_down(value).scaleb(INDEX_TOKEN_DECIMALS, context=EXACT_CONTEXT))


def units_to_index(units: int) -> Decimal:
    return Decimal(units).scaleb(-INDEX_TOKEN_DECIMALS, context=EXACT_CONTEXT)
