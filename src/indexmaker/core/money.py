"""Money and quantities: one Decimal context and every rounding as a named helper.

Never use float for money. Parse from strings (or ints) only; convert at the edges
(chain integer units, exchange strings) with the helpers below.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from decimal import (
    ROUND_CEILING,
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


def round_down_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of `step` that is <= value (exchange LOT_SIZE on quantities)."""
    if step <= 0:
        raise ValueError("step must be positive")
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def round_up_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Smallest multiple of `step` that is >= value (volley padding, buy tick rounding)."""
    if step <= 0:
        raise ValueError("step must be positive")
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def round_up_to_tick(price: Decimal, tick: Decimal) -> Decimal:
    """Buy limit prices round up to the tick so the limit is never tighter than sized."""
    return round_up_to_step(price, tick)


def round_down_to_tick(price: Decimal, tick: Decimal) -> Decimal:
    """Sell limit prices round down to the tick."""
    return round_down_to_step(price, tick)


def round_usdc(value: Decimal) -> Decimal:
    """Report rounding for USDC amounts: 6 decimals, half-even."""
    return value.quantize(USDC_QUANTUM, rounding=ROUND_HALF_EVEN)


def round_usdc_down(value: Decimal) -> Decimal:
    """USDC amounts paid out or moved on chain: never more than owed."""
    return value.quantize(USDC_QUANTUM, rounding=ROUND_FLOOR)


def round_index_down(value: Decimal) -> Decimal:
    """Index token quantities minted: 18 decimals, never more than backed."""
    return value.quantize(INDEX_QUANTUM, rounding=ROUND_FLOOR)


# Sums of 34-digit quotients can land a unit of the last digit past an exact bound (spend
# exactly equal to net, say). Overshoots up to this are rounding, not money.
ROUNDING_NOISE = Decimal("1e-20")

RATE_QUANTUM = Decimal("1e-12")


def round_rate(value: Decimal) -> Decimal:
    """Fill rates in reports: 12 decimals, rounded down (never overstate progress)."""
    return value.quantize(RATE_QUANTUM, rounding=ROUND_FLOOR)


def usdc_to_units(value: Decimal) -> int:
    """USDC amount to on-chain integer units; refuses amounts finer than 1e-6."""
    units = value.scaleb(USDC_DECIMALS)
    if units != units.to_integral_value():
        raise ValueError(f"{value} has more than {USDC_DECIMALS} decimals")
    return int(units)


def units_to_usdc(units: int) -> Decimal:
    return Decimal(units).scaleb(-USDC_DECIMALS)


def index_to_units(value: Decimal) -> int:
    """Index token quantity to 18-decimal units, rounded down (never over-mint)."""
    return int(round_index_down(value).scaleb(INDEX_TOKEN_DECIMALS))


def units_to_index(units: int) -> Decimal:
    return Decimal(units).scaleb(-INDEX_TOKEN_DECIMALS)
