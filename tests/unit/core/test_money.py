"""core/money.py: parsing, every named rounding helper, chain unit conversions.

Expected values are worked out by hand in the comments; none is copied from a run.
"""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest

from indexmaker.core.money import (
    INDEX_QUANTUM,
    INDEX_TOKEN_DECIMALS,
    MONEY_CONTEXT,
    RATE_QUANTUM,
    USDC_DECIMALS,
    USDC_QUANTUM,
    dec,
    index_to_units,
    money_context,
    round_down_to_step,
    round_down_to_tick,
    round_index_down,
    round_rate,
    round_up_to_step,
    round_up_to_tick,
    round_usdc,
    round_usdc_down,
    units_to_index,
    units_to_usdc,
    usdc_to_units,
    use_money_context,
)

D = Decimal


def same(a: Decimal, b: Decimal) -> bool:
    """Equal in value *and* in exponent (quantize results must carry the quantum)."""
    return a == b and a.as_tuple().exponent == b.as_tuple().exponent


# ---------------------------------------------------------------- constants and context


def test_quanta_and_decimals() -> None:
    assert USDC_DECIMALS == 6 and INDEX_TOKEN_DECIMALS == 18
    assert D("0.000001") == USDC_QUANTUM
    assert D("0.000000000000000001") == INDEX_QUANTUM
    assert D("0.000000000001") == RATE_QUANTUM


def test_money_context_is_decimal128_and_traps() -> None:
    assert MONEY_CONTEXT.prec == 34
    assert MONEY_CONTEXT.rounding == decimal.ROUND_HALF_EVEN
    for trap in (decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow):
        assert MONEY_CONTEXT.traps[trap]


def test_money_context_block() -> None:
    before = decimal.getcontext().prec
    with money_context():
        assert decimal.getcontext().prec == 34
        # 1/3 to 34 significant digits: "0." followed by 34 threes.
        assert D(1) / D(3) == D("0." + "3" * 34)
        with pytest.raises(decimal.DivisionByZero):
            _ = D(1) / D(0)
    # Outside the block the caller's context is back.
    assert decimal.getcontext().prec == before


def test_use_money_context_installs_a_copy() -> None:
    saved = decimal.getcontext()
    try:
        use_money_context()
        ctx = decimal.getcontext()
        assert ctx.prec == 34
        assert ctx is not MONEY_CONTEXT  # a copy: flags set by callers never leak into it
        assert D(2) / D(3) == D("0." + "6" * 33 + "7")  # 34 digits, half-even on the last
    finally:
        decimal.setcontext(saved)


# ---------------------------------------------------------------- dec


def test_dec_parses_strings_ints_and_decimals_exactly() -> None:
    assert same(dec("1.50"), D("1.50"))
    assert dec(7) == D(7)
    assert dec(D("0.1")) == D("0.1")
    # A long string keeps every digit (no float in between).
    assert str(dec("0.5530367005508429")) == "0.5530367005508429"


def test_dec_refuses_float() -> None:
    with pytest.raises(TypeError):
        dec(0.1)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_dec_refuses_non_finite(text: str) -> None:
    with pytest.raises(ValueError):
        dec(text)


def test_dec_refuses_garbage() -> None:
    with pytest.raises(decimal.InvalidOperation):
        dec("12abc")


# ---------------------------------------------------------------- steps and ticks


@pytest.mark.parametrize(
    ("value", "step", "down", "up"),
    [
        # 1.2345 lies between 1.23 and 1.24.
        ("1.2345", "0.01", "1.23", "1.24"),
        # An exact multiple stays where it is in both directions.
        ("1.23", "0.01", "1.23", "1.23"),
        ("0", "0.01", "0", "0"),
        # Floor/ceiling, not truncation: -1.2345 lies between -1.24 and -1.23.
        ("-1.2345", "0.01", "-1.24", "-1.23"),
        # Non-power-of-ten step: multiples of 0.25 around 1.3 are 1.25 and 1.5.
        ("1.3", "0.25", "1.25", "1.50"),
        # Step larger than the value: 0 below, one step above.
        ("0.7", "5", "0", "5"),
        # Tiny remainder past a multiple of 0.1 still pads up a whole step.
        ("50.0000001", "0.1", "50.0", "50.1"),
    ],
)
def test_round_to_step(value: str, step: str, down: str, up: str) -> None:
    assert round_down_to_step(D(value), D(step)) == D(down)
    assert round_up_to_step(D(value), D(step)) == D(up)


def test_round_to_step_results_are_multiples_and_bracket_the_value() -> None:
    value, step = D("123.456789"), D("0.003")
    low, high = round_down_to_step(value, step), round_up_to_step(value, step)
    # 123.456789 / 0.003 = 41152.263 → floor 41152 × 0.003 = 123.456, ceil 41153 → 123.459
    assert low == D("123.456") and high == D("123.459")
    assert low <= value <= high and high - low == step


@pytest.mark.parametrize("step", ["0", "-0.01"])
def test_round_to_step_refuses_non_positive_step(step: str) -> None:
    with pytest.raises(ValueError):
        round_down_to_step(D("1"), D(step))
    with pytest.raises(ValueError):
        round_up_to_step(D("1"), D(step))
    with pytest.raises(ValueError):
        round_up_to_tick(D("1"), D(step))
    with pytest.raises(ValueError):
        round_down_to_tick(D("1"), D(step))


def test_ticks_buy_up_sell_down() -> None:
    # Limit 10.1234 at tick 0.01: a buy rounds up to 10.13, a sell down to 10.12.
    assert round_up_to_tick(D("10.1234"), D("0.01")) == D("10.13")
    assert round_down_to_tick(D("10.1234"), D("0.01")) == D("10.12")
    # On the tick both leave the price alone.
    assert round_up_to_tick(D("10.12"), D("0.01")) == D("10.12")
    assert round_down_to_tick(D("10.12"), D("0.01")) == D("10.12")


# ---------------------------------------------------------------- report rounding


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.0000005", "1.000000"),  # tie → even (0)
        ("1.0000015", "1.000002"),  # tie → even (2)
        ("1.0000025", "1.000002"),  # tie → even (2)
        ("1.00000051", "1.000001"),  # above the tie
        ("0.00000025", "0.000000"),
        ("-1.0000015", "-1.000002"),
        ("3", "3.000000"),  # always carries 6 decimals
    ],
)
def test_round_usdc_half_even(value: str, expected: str) -> None:
    assert same(round_usdc(D(value)), D(expected))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.9999999", "1.999999"),  # never rounds up
        ("1.000001", "1.000001"),
        ("-0.0000001", "-0.000001"),  # floor, not toward zero
        ("2", "2.000000"),
    ],
)
def test_round_usdc_down(value: str, expected: str) -> None:
    assert same(round_usdc_down(D(value)), D(expected))


def test_round_index_down() -> None:
    # 19th decimal dropped, never rounded up.
    assert same(round_index_down(D("1.0000000000000000019")), D("1.000000000000000001"))
    assert same(round_index_down(D("0.9999999999999999999")), D("0.999999999999999999"))
    assert same(round_index_down(D("5")), D("5.000000000000000000"))


def test_round_rate() -> None:
    # Thirteen nines → twelve nines: progress is never overstated.
    assert same(round_rate(D("0.9999999999999")), D("0.999999999999"))
    assert same(round_rate(D("1")), D("1.000000000000"))
    assert same(round_rate(D("0.1234567890125")), D("0.123456789012"))


# ---------------------------------------------------------------- chain units


@pytest.mark.parametrize(
    ("amount", "units"),
    [
        ("1.5", 1_500_000),
        ("0.000001", 1),
        ("1000", 1_000_000_000),
        ("1.000000000", 1_000_000),  # trailing zeros are not excess decimals
        ("0", 0),
    ],
)
def test_usdc_to_units(amount: str, units: int) -> None:
    assert usdc_to_units(D(amount)) == units
    assert units_to_usdc(units) == D(amount)


@pytest.mark.parametrize("amount", ["1.0000001", "0.0000005", "123.4567891"])
def test_usdc_to_units_refuses_excess_decimals(amount: str) -> None:
    with pytest.raises(ValueError, match="more than 6 decimals"):
        usdc_to_units(D(amount))


def test_units_to_usdc_exact() -> None:
    assert units_to_usdc(1) == D("0.000001")
    assert units_to_usdc(123_456_789) == D("123.456789")


def test_index_units_round_down_never_over_mint() -> None:
    # 1 + 1.9e-18 → 1 + 1e-18 → 10**18 + 1 units.
    assert index_to_units(D("1.0000000000000000019")) == 10**18 + 1
    assert index_to_units(D("0.5")) == 5 * 10**17
    assert index_to_units(D("0.0000000000000000009")) == 0
    assert units_to_index(1) == D("1E-18")
    assert units_to_index(25 * 10**18) == D(25)
    # Round trip of an already 18-decimal quantity is exact.
    q = D("24.959577585404105501")
    assert units_to_index(index_to_units(q)) == q
