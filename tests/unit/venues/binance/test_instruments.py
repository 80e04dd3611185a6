"""Instruments from exchangeInfo: tradable set, filters, removal with a reason."""

from __future__ import annotations

from decimal import Decimal

from indexmaker.core.ids import Pair, instrument
from indexmaker.venues.binance.instruments import Instruments
from indexmaker.venues.binance.wire import ENCODE, EXCHANGE_INFO


def info(*symbols: tuple[str, str], filters: bool = True) -> bytes:
    body = {
        "serverTime": 1,
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 6000,
            },
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        ],
        "symbols": [
            {
                "symbol": name,
                "status": status,
                "baseAsset": name[:-4],
                "quoteAsset": "USDC",
                "filters": [
                    {
                        "filterType": "PRICE_FILTER",
                        "minPrice": "0.01",
                        "maxPrice": "0",
                        "tickSize": "0.01",
                    },
                    {
                        "filterType": "LOT_SIZE",
                        "minQty": "0.001",
                        "maxQty": "0",
                        "stepSize": "0.001",
                    },
                    {"filterType": "NOTIONAL", "minNotional": "5", "maxNotional": "0"},
                ]
                if filters
                else [{"filterType": "LOT_SIZE", "minQty": "x"}],
            }
            for name, status in symbols
        ],
    }
    return ENCODE(body)


def test_tradable_symbols_with_filters_and_limits() -> None:
    instruments = Instruments(wanted=frozenset({Pair("BTCUSDC"), Pair("ETHUSDC")}))
    changes = instruments.apply(
        EXCHANGE_INFO.decode(
            info(("BTCUSDC", "TRADING"), ("ETHUSDC", "HALT"), ("XRPUSDC", "TRADING"))
        )
    )
    assert changes.added == (instrument("BTCUSDC"),)
    assert instruments.rules[instrument("BTCUSDC")].step_size == Decimal("0.001")
    assert instruments.rules[instrument("BTCUSDC")].min_notional == Decimal("5")
    names = {r.name: r.limit for r in instruments.limiter().limits}
    assert names == {"REQUEST_WEIGHT_1M": 5400, "ORDERS_10S": 90}


def test_halted_and_delisted_symbols_are_removed_with_reason() -> None:
    instruments = Instruments()
    instruments.apply(
        EXCHANGE_INFO.decode(
            info(("BTCUSDC", "TRADING"), ("ETHUSDC", "TRADING"), ("SOLUSDC", "TRADING"))
        )
    )
    changes = instruments.apply(
        EXCHANGE_INFO.decode(info(("BTCUSDC", "TRADING"), ("ETHUSDC", "BREAK")))
    )
    assert changes.removed == (
        (instrument("ETHUSDC"), "BREAK"),
        (instrument("SOLUSDC"), "delisted"),
    )
    assert list(instruments.tradable()) == [instrument("BTCUSDC")]
    again = instruments.apply(
        EXCHANGE_INFO.decode(info(("BTCUSDC", "TRADING"), ("ETHUSDC", "TRADING")))
    )
    assert again.added == (instrument("ETHUSDC"),)


def test_unparsable_filters_are_not_traded() -> None:
    instruments = Instruments()
    changes = instruments.apply(EXCHANGE_INFO.decode(info(("BTCUSDC", "TRADING"), filters=False)))
    assert changes.added == ()
    assert changes.unparsable[0][0] == instrument("BTCUSDC")
