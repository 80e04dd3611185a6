"""Every named rounding is exact under any Decimal context the caller happens to run in.

Issue 7: under the default context (prec 28) a value with 30 nines after "1." rounded down to
0.01 came out as 2.00, and a 34-digit value just under 10 rounded down to 0.25 as 10.00. The
helpers must not depend on the caller's context: down never above the input, up never below,
for any positive step (Bitget has steps such as 0.25 or 0.3 that are not powers of ten).
"""

from __future__ import annotations

from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    localcontext,
)
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexmaker.core.money import (
    exact_add,
    exact_sub,
    index_to_units,
    index_units_down,
    index_units_up,
    pad_up_to_step,
    round_down_to_step,
    round_down_to_tick,
    round_index_down,
    round_rate,
    round_up_to_step,
    round_up_to_tick,
    round_usdc,
    round_usdc_down,
    share_down,
    units_to_index,
    units_to_usdc,
    usdc_text,
    usdc_to_units,
)

D = Decimal

# Contexts a caller might have installed: tiny precision, the interpreter's default (28,
# half-even), and rounding modes that would push a quotient the wrong way.
HOSTILE = [
    Context(prec=3),
    Context(),
    Context(prec=28, rounding=ROUND_CEILING),
    Context(prec=34, rounding=ROUND_HALF_UP),
    Context(prec=12, rounding=ROUND_DOWN),
]

NINES_30 = D("1." + "9" * 30)  # 1.999…9 (30 nines), just under 2
NINES_34 = D("9." + "9" * 33)  # 34 digits, just under 10


@pytest.mark.parametrize("ctx", HOSTILE, ids=lambda c: f"prec{c.prec}-{c.rounding}")
@pytest.mark.parametrize(
    ("value", "step", "down", "up"),
    [
        # Worked by hand: the multiples of 0.01 around 1.999…9 are 1.99 and 2.00.
        (NINES_30, "0.01", "1.99", "2.00"),
        # Around 9.999…9 (34 digits): 0.25 → 9.75 / 10.00; 0.3 → 9.9 / 10.2 (33 × 0.3, 34 × 0.3).
        (NINES_34, "0.25", "9.75", "10.00"),
        (NINES_34, "0.3", "9.9", "10.2"),
        (NINES_34, "0.01", "9.99", "10.00"),
        # An exact multiple stays put even when it has more digits than the context keeps.
        ("123456.789", "0.001", "123456.789", "123456.789"),
        # 7 × 0.3 = 2.1 exactly; 2.1000…01 lies above it.
        ("2.1", "0.3", "2.1", "2.1"),
        ("2.1" + "0" * 30 + "1", "0.3", "2.1", "2.4"),
    ],
)
def test_named_cases_under_hostile_contexts(
    ctx: Context, value: Decimal | str, step: str, down: str, up: str
) -> None:
    with localcontext(ctx):
        low = round_down_to_step(D(value), D(step))
        high = round_up_to_step(D(value), D(step))
    assert low == D(down) and high == D(up)


def _fraction(value: Decimal) -> Fraction:
    return Fraction(*value.as_integer_ratio())


# 34-significant-digit magnitudes, steps of every shape (1, 2, 25, 3 × a power of ten).
values = st.builds(
    lambda digits, exponent, sign: D(f"{sign}{digits}E{exponent}"),
    st.integers(min_value=0, max_value=10**34 - 1),
    st.integers(min_value=-40, max_value=-20),
    st.sampled_from(["", "-"]),
)
steps = st.builds(
    lambda mantissa, exponent: D(f"{mantissa}E{exponent}"),
    st.sampled_from([1, 2, 25, 3, 5, 7]),
    st.integers(min_value=-10, max_value=2),
)


@settings(max_examples=300, deadline=None)
@given(value=values, step=steps, ctx=st.sampled_from(HOSTILE))
def test_rounding_to_any_step_is_exact_under_any_context(
    value: Decimal, step: Decimal, ctx: Context
) -> None:
    with localcontext(ctx):
        low = round_down_to_step(value, step)
        high = round_up_to_step(value, step)
        tick_low = round_down_to_tick(value, step)
        tick_high = round_up_to_tick(value, step)
    exact, unit = _fraction(value), _fraction(step)
    # Multiples of the step that bracket the value, one step apart unless the value is one.
    for result in (low, high):
        assert (_fraction(result) / unit).denominator == 1
    assert _fraction(low) <= exact <= _fraction(high)
    assert _fraction(high) - _fraction(low) == (0 if low == value else unit)
    assert (tick_low, tick_high) == (low, high)


@settings(max_examples=200, deadline=None)
@given(value=values, ctx=st.sampled_from(HOSTILE))
def test_report_roundings_are_exact_under_any_context(value: Decimal, ctx: Context) -> None:
    with localcontext(ctx):
        usdc, usdc_down = round_usdc(value), round_usdc_down(value)
        index_down, rate = round_index_down(value), round_rate(value)
    exact = _fraction(value)
    micro, atto = Fraction(1, 10**6), Fraction(1, 10**18)
    assert _fraction(usdc_down) <= exact < _fraction(usdc_down) + micro
    assert abs(_fraction(usdc) - exact) <= micro / 2
    assert _fraction(index_down) <= exact < _fraction(index_down) + atto
    assert _fraction(rate) <= exact < _fraction(rate) + Fraction(1, 10**12)


@pytest.mark.parametrize("ctx", HOSTILE, ids=lambda c: f"prec{c.prec}-{c.rounding}")
def test_chain_units_are_exact_under_any_context(ctx: Context) -> None:
    big_usdc = D("123456789012.345678")  # 18 digits: more than prec 3 or 12 can hold
    big_index = D("98765432109876.123456789012345678")
    with localcontext(ctx):
        assert usdc_to_units(big_usdc) == 123456789012345678
        assert units_to_usdc(123456789012345678) == big_usdc
        assert index_to_units(big_index) == 98765432109876123456789012345678
        assert units_to_index(98765432109876123456789012345678) == big_index
        with pytest.raises(ValueError, match="more than 6 decimals"):
            usdc_to_units(D("123456789012.3456781"))


@pytest.mark.parametrize(
    ("value", "step", "padded"),
    [
        ("550", "0.2", "550.0"),  # a multiple stays
        ("550.000000000000000000000000001", "0.2", "550.0"),  # 34-digit noise is no demand
        ("549.999999999999999999999999999", "0.2", "550.0"),
        ("550.01", "0.2", "550.2"),  # a real excess pads a whole step
        ("0.0000953", "0.00001", "0.00010"),  # LOT_SIZE cover of a demand
        # Noise means below 1e-12 of a step: 1e-13 over 5.50 is (< 2.5e-13), 1e-12 is not.
        ("5.5000000000001", "0.25", "5.50"),
        ("5.500000000001", "0.25", "5.75"),
    ],
)
def test_pad_up_to_step_ignores_only_noise(value: str, step: str, padded: str) -> None:
    with localcontext(Context(prec=3)):
        assert pad_up_to_step(D(value), D(step)) == D(padded)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("500", "500"),
        ("1E+3", "1000"),  # never an exponent
        ("595.1920000000000000000000001", "595.192"),  # 34-digit noise never reaches a person
        ("0.0000019", "0.000001"),  # rounded down
        ("0", "0"),
    ],
)
def test_usdc_text(value: str, text: str) -> None:
    assert usdc_text(D(value)) == text


@given(
    whole=st.decimals(min_value=0, max_value=10**6, places=8),
    part=st.decimals(min_value=0, max_value=10**6, places=30),
    of=st.decimals(min_value=Decimal("1e-8"), max_value=10**6, places=8),
)
@settings(derandomize=True)
def test_share_down_never_above_the_exact_share(whole: Decimal, part: Decimal, of: Decimal) -> None:
    with localcontext(Context(prec=3, rounding=ROUND_CEILING)):  # must not leak in
        share = share_down(whole, part, of)
    exact = Fraction(whole) * Fraction(part) / Fraction(of)
    assert Fraction(share) <= exact
    assert len(share.as_tuple().digits) <= 34
    # 34 significant digits: within one unit of the 34th digit of the exact share.
    assert exact - Fraction(share) <= Fraction(share) / 10**33


def test_exact_add_and_sub_do_not_round_in_a_small_context() -> None:
    with localcontext(Context(prec=3, rounding=ROUND_HALF_UP)):
        quantity = Decimal("1.386666666666666666666666666666667")
        taken = Decimal("0.0004622554941117565708776246749695")
        rest = exact_sub(quantity, taken)
        assert rest == Decimal("1.3862044111725549100957890419916975")
        assert exact_add(taken, rest) == quantity


# USDC amounts (6 decimals) and prices with up to 34 digits that rarely divide each other.
usdc_amounts = st.builds(
    lambda units: D(units).scaleb(-6), st.integers(min_value=0, max_value=10**16)
)
prices = st.builds(
    lambda digits, exponent: D(f"{digits}E{exponent}"),
    st.integers(min_value=1, max_value=10**34 - 1),
    st.integers(min_value=-30, max_value=0),
)


@settings(max_examples=300, deadline=None)
@given(amount=usdc_amounts, price=prices, ctx=st.sampled_from(HOSTILE))
def test_index_units_of_an_amount_are_the_exact_quotient_on_18_decimals(
    amount: Decimal, price: Decimal, ctx: Context
) -> None:
    """Issue 12 review: a buy weighed against a sell took amount / price to 34 digits (37
    decimals reached the client); the units are the exact quotient floored (or ceiled) on the
    token's 18 decimals, whatever the caller's context."""
    with localcontext(ctx):
        low, high = index_units_down(amount, price), index_units_up(amount, price)
    exact = _fraction(amount) / _fraction(price)
    quantum = Fraction(1, 10**18)
    assert low.as_tuple().exponent == high.as_tuple().exponent == -18
    assert _fraction(low) <= exact < _fraction(low) + quantum
    assert _fraction(high) - quantum < exact <= _fraction(high)


@pytest.mark.parametrize("ctx", HOSTILE, ids=lambda c: f"prec{c.prec}-{c.rounding}")
def test_index_units_worked_by_hand(ctx: Context) -> None:
    # 50 / 39.7 = 1.259445843828715365239...; 6 / 3 = 2 exactly (no rounding either way).
    with localcontext(ctx):
        assert index_units_down(D(50), D("39.7")) == D("1.259445843828715365")
        assert index_units_up(D(50), D("39.7")) == D("1.259445843828715366")
        assert index_units_down(D(6), D(3)) == index_units_up(D(6), D(3)) == D(2)
        with pytest.raises(ValueError, match="price must be positive"):
            index_units_down(D(1), D(0))
