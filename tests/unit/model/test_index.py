"""model/index.py: bundled index files read exactly, implied prices, basket validation."""

from __future__ import annotations

import json
import re
from decimal import Decimal, localcontext
from importlib import resources
from pathlib import Path

import pytest

from indexmaker.core.errors import InvalidInputError
from indexmaker.core.ids import Symbol, instrument
from indexmaker.model.index import (
    BUNDLED_INDEXES,
    Basket,
    BasketAsset,
    basket_from_entries,
    implied_prices,
    load_bundled_index,
    load_index_file,
)

D = Decimal
BTC = instrument("BTCUSDC")
ETH = instrument("ETHUSDC")


def _raw_text(symbol: str) -> str:
    return resources.files("indexmaker.data").joinpath(f"indexes/{symbol}.json").read_text()


def _text_entries(symbol: str) -> list[tuple[str, str, str]]:
    """(pair, weights, quantity) exactly as the characters of the file spell them."""
    text = _raw_text(symbol)
    pairs = re.findall(r'"pair":\s*"([^"]+)"', text)
    weights = re.findall(r'"weights":\s*"([^"]+)"', text)
    quantities = re.findall(r'"quantity":\s*([-+0-9.eE]+)', text)
    assert len(pairs) == len(weights) == len(quantities)
    return list(zip(pairs, weights, quantities, strict=True))


# ---------------------------------------------------------------- bundled SY100


def test_sy100_has_81_assets_with_exact_text_quantities() -> None:
    basket = load_bundled_index("SY100")
    assert basket.symbol == "SY100"
    assert len(basket.assets) == 81
    expected = _text_entries("SY100")
    assert len(expected) == 81
    for asset, (pair, weight, quantity) in zip(basket.assets, expected, strict=True):
        assert asset.instrument.pair == pair
        # Same digits as the text, not a float's nearest binary value.
        assert asset.quantity == D(quantity)
        assert str(asset.quantity) == str(D(quantity))
        assert asset.weight == D(weight)


def test_sy100_first_entry_digits() -> None:
    btc = load_bundled_index("SY100").assets[0]
    assert btc == BasketAsset(BTC, D("0.5530367005508429"), D("20.00"))
    # float would have given 0.55303670055084290... with binary noise; the tuple proves none.
    assert btc.quantity.as_tuple().exponent == -16


def test_sy100_weights_sum_to_100() -> None:
    assert sum((a.weight for a in load_bundled_index("SY100").assets), D(0)) == D("100.00")


@pytest.mark.parametrize("symbol", BUNDLED_INDEXES)
def test_every_bundled_index_loads_exactly(symbol: str) -> None:
    basket = load_bundled_index(symbol)
    expected = _text_entries(symbol)
    assert [a.instrument.pair for a in basket.assets] == [pair for pair, _, _ in expected]
    assert [a.quantity for a in basket.assets] == [D(q) for _, _, q in expected]


def test_unknown_bundled_index() -> None:
    with pytest.raises(InvalidInputError) as info:
        load_bundled_index("NOPE")
    assert info.value.field == "symbol"


def test_load_index_file_names_the_index_after_the_file(tmp_path: Path) -> None:
    path = tmp_path / "MINI.json"
    path.write_text(
        '[{"pair": "BTCUSDC", "weights": "60", "quantity": 0.000000000000000001},'
        ' {"pair": "ETHUSDC", "weights": "40", "quantity": 12345678901234567890.123}]'
    )
    basket = load_index_file(path)
    assert basket.symbol == "MINI"
    assert basket.assets[0].quantity == D("1E-18")
    assert basket.assets[1].quantity == D("12345678901234567890.123")
    assert load_index_file(str(path), "OTHER").symbol == "OTHER"


# ---------------------------------------------------------------- implied prices


def test_implied_prices_btc_anchor() -> None:
    basket = load_bundled_index("SY100")
    prices = implied_prices(basket, BTC, D("110000"))
    assert len(prices) == 81
    # V = 110000 × 0.5530367005508429 × 100 / 20.00 = 304170.185302963595 (exact: 18 digits),
    # and BTC's own price is 20.00/100 × V / q_btc = 110000 exactly.
    assert prices[BTC] == D("110000")
    # ETH = w_eth/w_btc × 110000 × q_btc / q_eth, computed independently at 50 digits.
    with localcontext() as ctx:
        ctx.prec = 50
        eth = (
            D("1.00") / D("20.00") * D("110000") * D("0.5530367005508429") / D("0.6999696770692475")
        )
    assert abs(prices[ETH] - eth) < D("1e-20")
    assert D("4345") < prices[ETH] < D("4346")  # 3041.70185302963595 / 0.69996967706924...


def test_implied_prices_give_index_value_v() -> None:
    basket = load_bundled_index("SY100")
    prices = implied_prices(basket, BTC, D("110000"))
    # Σ q_i × p_i = Σ w_i/100 × V = V because the weights sum to 100.
    value = basket.index_price(prices)
    assert value is not None
    assert abs(value - D("304170.185302963595")) < D("1e-18")


def test_implied_prices_small_basket_exact() -> None:
    basket = Basket(
        Symbol("T"),
        (
            BasketAsset(instrument("A"), D("2"), D("50")),
            BasketAsset(instrument("B"), D("4"), D("50")),
        ),
    )
    # V = 10 × 2 × 100 / 50 = 40; B = 0.5 × 40 / 4 = 5.
    assert implied_prices(basket, instrument("A"), D("10")) == {
        instrument("A"): D(10),
        instrument("B"): D(5),
    }


def test_implied_prices_unknown_anchor() -> None:
    with pytest.raises(InvalidInputError) as info:
        implied_prices(load_bundled_index("SYAI"), instrument("NOPEUSDC"), D("1"))
    assert info.value.field == "anchor"


# ---------------------------------------------------------------- basket validation


def test_index_price_and_missing_price() -> None:
    basket = Basket(
        Symbol("T"), (BasketAsset(instrument("A"), D("2")), BasketAsset(instrument("B"), D("0.5")))
    )
    # 2 × 10.10 + 0.5 × 3 = 21.70
    assert basket.index_price({instrument("A"): D("10.10"), instrument("B"): D("3")}) == D("21.70")
    assert basket.index_price({instrument("A"): D("10.10")}) is None


def test_empty_basket_refused() -> None:
    with pytest.raises(InvalidInputError) as info:
        Basket(Symbol("T"), ())
    assert info.value.field == "assets"


@pytest.mark.parametrize("quantity", ["0", "-1"])
def test_non_positive_quantity_refused(quantity: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        Basket(Symbol("T"), (BasketAsset(instrument("A"), D(quantity)),))
    assert info.value.field == "quantity"


def test_duplicate_pair_refused() -> None:
    with pytest.raises(InvalidInputError) as info:
        Basket(
            Symbol("T"), (BasketAsset(instrument("A"), D(1)), BasketAsset(instrument("A"), D(2)))
        )
    assert info.value.field == "pair"


def test_entries_missing_field_named_with_position() -> None:
    with pytest.raises(InvalidInputError) as info:
        basket_from_entries("T", [{"pair": "A", "quantity": "1"}, {"pair": "B"}])
    assert info.value.field == "[1].quantity"
    with pytest.raises(InvalidInputError) as info:
        basket_from_entries("T", [{"quantity": "1"}])
    assert info.value.field == "[0].pair"


def test_entries_refuse_float_quantity() -> None:
    with pytest.raises(InvalidInputError) as info:
        basket_from_entries("T", [{"pair": "A", "quantity": 0.1}])
    assert info.value.field == "quantity"


def test_entries_accept_strings_ints_and_default_weight() -> None:
    basket = basket_from_entries(
        "T", [{"pair": "A", "quantity": "1.5"}, {"pair": "B", "quantity": 3}]
    )
    assert basket.assets == (
        BasketAsset(instrument("A"), D("1.5"), D(0)),
        BasketAsset(instrument("B"), D(3), D(0)),
    )


def test_json_numbers_parsed_as_decimal_in_file(tmp_path: Path) -> None:
    # A quantity with more digits than a double holds survives intact.
    digits = "0.12345678901234567890123"
    path = tmp_path / "X.json"
    path.write_text(
        json.dumps([{"pair": "A", "weights": "100"}])[:-2] + f', "quantity": {digits}}}]'
    )
    assert load_index_file(path).assets[0].quantity == D(digits)
