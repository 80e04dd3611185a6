from __future__ import annotations

from dataclasses import replace
from decimal import Context, Decimal, localcontext
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from indexmaker.core.errors import InvalidInputError
from indexmaker.core.ids import instrument
from indexmaker.model.filters import (
    FilteredOrder,
    FilterSkip,
    InstrumentRules,
    apply_filters,
    lot_cover,
)
from indexmaker.model.side import Side

D = Decimal
BUY, SELL = Side.BUY, Side.SELL

BTC = InstrumentRules(
    instrument=instrument("BTCUSDC"),
    base_asset="BTC",
    quote_asset="USDC",
    tick_size=D("0.01"),
    min_price=D("0.01"),
    max_price=D("1000000"),
    step_size=D("0.00001"),
    min_qty=D("0.00001"),
    max_qty=D("9000"),
    min_notional=D("5"),
    max_notional=D("9000000"),
)

BINANCE_ENTRY: dict[str, Any] = {
    "symbol": "BTCUSDC",
    "status": "TRADING",
    "baseAsset": "BTC",
    "baseAssetPrecision": 8,
    "quoteAsset": "USDC",
    "quotePrecision": 8,
    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
    "filters": [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": "0.01000000",
            "maxPrice": "1000000.00000000",
            "tickSize": "0.01000000",
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": "0.00001000",
            "maxQty": "9000.00000000",
            "stepSize": "0.00001000",
        },
        {"filterType": "ICEBERG_PARTS", "limit": 10},
        {
            "filterType": "MARKET_LOT_SIZE",
            "minQty": "0.00000000",
            "maxQty": "63.1",
            "stepSize": "0.00000000",
        },
        {
            "filterType": "NOTIONAL",
            "minNotional": "5.00000000",
            "applyMinToMarket": True,
            "maxNotional": "9000000.00000000",
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        },
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
    ],
}


def test_from_binance() -> None:
    assert InstrumentRules.from_binance(BINANCE_ENTRY) == BTC


def test_from_binance_legacy_min_notional_and_missing_filters() -> None:
    entry = {
        "symbol": "XUSDC",
        "baseAsset": "X",
        "quoteAsset": "USDC",
        "filters": [
            {"filterType": "MIN_NOTIONAL", "minNotional": "10", "applyToMarket": True},
            {"filterType": "NOTIONAL", "minNotional": "1", "maxNotional": "100"},
        ],
    }
    rules = InstrumentRules.from_binance(entry)
    assert rules.min_notional == D("10")  # the stricter minimum wins
    assert rules.max_notional == D("100")
    assert (rules.tick_size, rules.step_size, rules.max_qty) == (D(0), D(0), D(0))


@pytest.mark.parametrize(
    "entry",
    [
        {"baseAsset": "X", "quoteAsset": "Y"},
        {"symbol": "XY", "baseAsset": "X", "quoteAsset": "Y", "filters": [{"x": 1}]},
        {
            "symbol": "XY",
            "baseAsset": "X",
            "quoteAsset": "Y",
            "filters": [{"filterType": "LOT_SIZE", "stepSize": "abc"}],
        },
        {
            "symbol": "XY",
            "baseAsset": "X",
            "quoteAsset": "Y",
            "filters": [{"filterType": "LOT_SIZE", "minQty": "2", "maxQty": "1"}],
        },
    ],
)
def test_from_binance_rejects_malformed(entry: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        InstrumentRules.from_binance(entry)


def test_price_rounds_up_for_buys_and_down_for_sells() -> None:
    assert apply_filters(BTC, BUY, D("100.123"), D("0.123456"), D("1")) == FilteredOrder(
        D("100.13"), D("0.12345")
    )
    assert apply_filters(BTC, SELL, D("100.129"), D("0.123456"), D("1")) == FilteredOrder(
        D("100.12"), D("0.12345")
    )
    # Already on the tick: unchanged either way.
    assert apply_filters(BTC, BUY, D("100.10"), D("1"), D("1")) == FilteredOrder(D("100.1"), D("1"))


def test_price_clamped_into_range() -> None:
    rules = replace(BTC, min_price=D("1"), max_price=D("1000"), min_notional=D(0))
    assert apply_filters(rules, BUY, D("2000"), D("1"), D("1")) == FilteredOrder(D("1000"), D("1"))
    assert apply_filters(rules, SELL, D("0.5"), D("1"), D("1")) == FilteredOrder(D("1"), D("1"))


def test_sell_price_below_one_tick_is_skipped() -> None:
    rules = replace(BTC, min_price=D(0), min_notional=D(0))
    skip = apply_filters(rules, SELL, D("0.005"), D("1"), D("1"))
    assert isinstance(skip, FilterSkip)
    assert skip.reason == "PRICE_FILTER"


def test_lot_size_rounds_down_and_raises_to_min_only_within_max_quantity() -> None:
    rules = replace(BTC, step_size=D("0.001"), min_qty=D("0.001"), min_notional=D(0))
    assert apply_filters(rules, BUY, D("100"), D("0.0019"), D("1")) == FilteredOrder(
        D("100"), D("0.001")
    )
    assert apply_filters(rules, BUY, D("100"), D("0.0004"), D("0.002")) == FilteredOrder(
        D("100"), D("0.001")
    )
    skip = apply_filters(rules, BUY, D("100"), D("0.0004"), D("0.0009"))
    assert isinstance(skip, FilterSkip)
    assert skip.reason == "LOT_SIZE"


def test_zero_quantity_is_skipped_when_it_cannot_be_raised() -> None:
    skip = apply_filters(replace(BTC, min_notional=D(0)), BUY, D("100"), D("0"), D("0"))
    assert isinstance(skip, FilterSkip)
    assert skip.reason == "LOT_SIZE"


def test_quantity_capped_by_max_quantity_and_max_qty() -> None:
    rules = replace(BTC, max_qty=D("10"), max_notional=D(0))
    assert apply_filters(rules, BUY, D("100"), D("12.345678"), D("20")) == FilteredOrder(
        D("100"), D("10")
    )
    # Sized above what is allowed: cut to max_quantity, rounded down to the step.
    assert apply_filters(rules, BUY, D("100"), D("5"), D("1.234567")) == FilteredOrder(
        D("100"), D("1.23456")
    )


def test_min_notional_raises_quantity_only_when_sizing_allows() -> None:
    assert apply_filters(BTC, BUY, D("100"), D("0.04"), D("0.06")) == FilteredOrder(
        D("100"), D("0.05")
    )
    skip = apply_filters(BTC, BUY, D("100"), D("0.04"), D("0.049"))
    assert isinstance(skip, FilterSkip)
    assert skip.reason == "NOTIONAL"
    # 5 / 30000.01 = 0.000166666...: 0.00016 gives 4.8000016 (< 5), 0.00017 gives 5.1000017.
    assert apply_filters(BTC, BUY, D("30000.01"), D("0.0001"), D("1")) == FilteredOrder(
        D("30000.01"), D("0.00017")
    )


def test_max_notional_cuts_quantity() -> None:
    rules = replace(BTC, step_size=D("0.001"), min_qty=D("0.001"), max_notional=D("1000"))
    # 1000 / 300 = 3.333... -> 3.333 (notional 999.9)
    assert apply_filters(rules, BUY, D("300"), D("5"), D("5")) == FilteredOrder(
        D("300"), D("3.333")
    )
    narrow = replace(rules, min_notional=D("999.95"))
    skip = apply_filters(narrow, BUY, D("300"), D("5"), D("5"))
    assert isinstance(skip, FilterSkip)
    assert skip.reason == "NOTIONAL"


def test_disabled_tick_and_step_leave_values_alone() -> None:
    rules = InstrumentRules(instrument("XY"), "X", "Y")
    assert apply_filters(rules, BUY, D("1.23456789"), D("0.987654321"), D("1")) == FilteredOrder(
        D("1.23456789"), D("0.987654321")
    )


@pytest.mark.parametrize(
    ("price", "quantity", "max_quantity"),
    [("0", "1", "1"), ("-1", "1", "1"), ("1", "-1", "1"), ("1", "1", "NaN")],
)
def test_invalid_inputs_raise(price: str, quantity: str, max_quantity: str) -> None:
    with pytest.raises(InvalidInputError):
        apply_filters(BTC, BUY, D(price), D(quantity), D(max_quantity))


def test_rules_validate() -> None:
    with pytest.raises(InvalidInputError):
        replace(BTC, tick_size=D("-0.01"))
    with pytest.raises(InvalidInputError):
        replace(BTC, min_price=D("2"), max_price=D("1"))


# ---------------------------------------------------------------- properties

steps = st.sampled_from([D("0.00001"), D("0.001"), D("0.1"), D("1"), D("5")])
ticks = st.sampled_from([D("0.0001"), D("0.01"), D("0.5"), D("1"), D("10")])
amounts = st.decimals(min_value=D("0.00001"), max_value=D("100000"), places=5)


@st.composite
def rules_strategy(draw: st.DrawFn) -> InstrumentRules:
    tick = draw(ticks)
    step = draw(steps)
    max_price = draw(st.sampled_from([D(0), tick * 100_000]))
    return InstrumentRules(
        instrument=instrument("XY"),
        base_asset="X",
        quote_asset="Y",
        tick_size=tick,
        min_price=draw(st.sampled_from([D(0), tick])),
        max_price=max_price,
        step_size=step,
        # Some venues' minQty is off the step grid; the grid then starts at minQty.
        min_qty=step * draw(st.integers(0, 3)) + draw(st.sampled_from([D(0), step / 4])),
        max_qty=draw(st.sampled_from([D(0), step * 1000])),
        min_notional=draw(st.sampled_from([D(0), D("5"), D("10")])),
        max_notional=draw(st.sampled_from([D(0), D("50000")])),
    )


@settings(max_examples=300)
@given(rules_strategy(), st.sampled_from([BUY, SELL]), amounts, amounts, amounts)
def test_filtered_order_obeys_every_rule(
    rules: InstrumentRules, side: Side, price: Decimal, quantity: Decimal, max_quantity: Decimal
) -> None:
    result = apply_filters(rules, side, price, quantity, max_quantity)
    if isinstance(result, FilterSkip):
        assert result.reason in {"PRICE_FILTER", "LOT_SIZE", "NOTIONAL"}
        return
    p, q = result.price, result.quantity
    assert p % rules.tick_size == 0
    assert (q - rules.min_qty) % rules.step_size == 0  # LOT_SIZE: minQty + k × stepSize
    assert D(0) < q <= max_quantity
    assert q >= rules.min_qty
    if rules.max_qty:
        assert q <= rules.max_qty
    assert p * q >= rules.min_notional
    if rules.max_notional:
        assert p * q <= rules.max_notional
    if rules.min_price:
        assert p >= rules.min_price
    if rules.max_price:
        assert p <= rules.max_price
    # The right side of the tick: buys never below the sized limit, sells never above,
    # unless the price range clamps them.
    clamped = (rules.max_price and p == rules.max_price) or (
        rules.min_price and p == rules.min_price
    )
    if side is BUY and not clamped:
        assert price <= p < price + rules.tick_size
    if side is SELL and not clamped:
        assert price - rules.tick_size < p <= price


@given(rules_strategy(), st.sampled_from([BUY, SELL]), amounts, amounts)
def test_quantity_never_raised_without_a_minimum(
    rules: InstrumentRules, side: Side, price: Decimal, quantity: Decimal
) -> None:
    rules = replace(rules, min_qty=D(0), max_qty=D(0), min_notional=D(0), max_notional=D(0))
    result = apply_filters(rules, side, price, quantity, quantity)
    assume(isinstance(result, FilteredOrder))
    assert isinstance(result, FilteredOrder)
    assert result.quantity == quantity - quantity % rules.step_size


@pytest.mark.parametrize("prec", [3, 28])
def test_filters_exact_under_a_hostile_context_with_a_non_decimal_step(prec: int) -> None:
    # Issue 7: a 34-digit max_quantity just under 10 with step 0.25 came out as 10.00 under
    # the default context, above max_quantity. Exactly: 9.75 (39 steps), and the notional
    # check 9.75 × 0.52 = 5.07 passes the 5 USDC minimum.
    rules = replace(BTC, step_size=D("0.25"), min_qty=D("0.25"), tick_size=D("0.01"))
    just_under_10 = D("9." + "9" * 33)
    with localcontext(Context(prec=prec)):
        result = apply_filters(rules, BUY, D("0.52"), just_under_10, just_under_10)
    assert result == FilteredOrder(price=D("0.52"), quantity=D("9.75"))


def test_lot_size_grid_starts_at_min_qty() -> None:
    # Binance LOT_SIZE: (quantity − minQty) % stepSize == 0. minQty 0.015, step 0.01: valid
    # quantities are 0.015, 0.025, 0.035, 0.045…
    rules = InstrumentRules(instrument("XY"), "X", "Y", step_size=D("0.01"), min_qty=D("0.015"))
    assert apply_filters(rules, BUY, D("100"), D("0.05"), D("1")) == FilteredOrder(
        D("100"), D("0.045")
    )
    # Below the minimum: raised to it while max_quantity allows, else skipped.
    assert apply_filters(rules, BUY, D("100"), D("0.01"), D("1")) == FilteredOrder(
        D("100"), D("0.015")
    )
    skipped = apply_filters(rules, BUY, D("100"), D("0.01"), D("0.014"))
    assert isinstance(skipped, FilterSkip) and skipped.reason == "LOT_SIZE"
    # The padding cover: the smallest grid quantity >= a demand, ignoring 34-digit noise.
    assert lot_cover(rules, D("0.0301")) == D("0.035")
    assert lot_cover(rules, D("0.035")) == D("0.035")
    assert lot_cover(rules, D("0.035") + D("1e-30")) == D("0.035")
    assert lot_cover(rules, D("0.001")) == D("0.015")
