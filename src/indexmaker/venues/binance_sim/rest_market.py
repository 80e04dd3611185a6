"""Market-data endpoints (security type NONE): ping, time, exchangeInfo, depth, bookTicker,
ticker/price, ticker/24hr, avgPrice. Weights as rest-api.md lists them."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING

from indexmaker.venues.binance_sim.errors import ApiError, missing
from indexmaker.venues.binance_sim.exchange import now_ms
from indexmaker.venues.binance_sim.rest import Caller, Params, Route, depth_weight, symbols_param
from indexmaker.venues.binance_sim.symbols import fmt8

if TYPE_CHECKING:
    from indexmaker.venues.binance_sim.server import Simulator


def _one_or_many(params: Params) -> int:
    return 2 if "symbol" in params else 4


def market_routes(sim: Simulator) -> dict[tuple[str, str], Route]:
    exchange = sim.exchange

    def ping(params: Params, caller: Caller) -> object:
        return {}

    def server_time(params: Params, caller: Caller) -> object:
        return {"serverTime": now_ms()}

    def exchange_info(params: Params, caller: Caller) -> object:
        return exchange.exchange_info(symbols_param(params), sim.limiter.rate_limits())

    def depth(params: Params, caller: Caller) -> object:
        if "symbol" not in params:
            raise missing("symbol")
        try:
            limit = int(params.get("limit", "100"))
        except ValueError:
            raise ApiError(-1100, "Illegal characters found in parameter 'limit'.") from None
        return exchange.depth(params["symbol"], limit)

    def book_ticker(params: Params, caller: Caller) -> object:
        names = symbols_param(params)
        if names is not None:
            tickers = [exchange.book_ticker(exchange.spec(n).symbol) for n in names]
            return tickers[0] if "symbol" in params else tickers
        return [exchange.book_ticker(s) for s in sorted(exchange.specs)]

    def price(params: Params, caller: Caller) -> object:
        names = symbols_param(params) or sorted(exchange.specs)
        out = []
        for name in names:
            spec = exchange.spec(name)
            mid = exchange.reference_price(spec.symbol)
            out.append({"symbol": spec.symbol, "price": fmt8(_on_tick(mid, spec.tick))})
        return out[0] if "symbol" in params else out

    def ticker_24hr(params: Params, caller: Caller) -> object:
        names = symbols_param(params) or sorted(exchange.specs)
        out = []
        stamp = now_ms()
        for name in names:
            spec = exchange.spec(name)
            top = exchange.book_ticker(spec.symbol)
            last = fmt8(_on_tick(exchange.reference_price(spec.symbol), spec.tick))
            out.append(
                {
                    "symbol": spec.symbol,
                    "priceChange": "0.00000000",
                    "priceChangePercent": "0.000",
                    "weightedAvgPrice": last,
                    "prevClosePrice": last,
                    "lastPrice": last,
                    "lastQty": "0.00000000",
                    "bidPrice": top["bidPrice"],
                    "bidQty": top["bidQty"],
                    "askPrice": top["askPrice"],
                    "askQty": top["askQty"],
                    "openPrice": last,
                    "highPrice": last,
                    "lowPrice": last,
                    "volume": "0.00000000",
                    "quoteVolume": "0.00000000",
                    "openTime": stamp - 86_400_000,
                    "closeTime": stamp,
                    "firstId": -1,
                    "lastId": -1,
                    "count": 0,
                }
            )
        return out[0] if "symbol" in params else out

    def avg_price(params: Params, caller: Caller) -> object:
        spec = exchange.spec(params.get("symbol"))
        mid = exchange.reference_price(spec.symbol)
        return {"mins": 5, "price": fmt8(_on_tick(mid, spec.tick)), "closeTime": now_ms()}

    def ticker_weight(params: Params) -> int:
        return 2 if "symbol" in params else 80

    return {
        ("GET", "/api/v3/ping"): Route(ping),
        ("GET", "/api/v3/time"): Route(server_time),
        ("GET", "/api/v3/exchangeInfo"): Route(exchange_info, weight=20),
        ("GET", "/api/v3/depth"): Route(depth, weight=depth_weight),
        ("GET", "/api/v3/ticker/bookTicker"): Route(book_ticker, weight=_one_or_many),
        ("GET", "/api/v3/ticker/price"): Route(price, weight=_one_or_many),
        ("GET", "/api/v3/ticker/24hr"): Route(ticker_24hr, weight=ticker_weight),
        ("GET", "/api/v3/avgPrice"): Route(avg_price, weight=2),
    }


def _on_tick(value: Decimal | None, tick: Decimal) -> Decimal:
    if value is None:
        return Decimal(0)
    return (value / tick).to_integral_value(rounding=ROUND_HALF_EVEN) * tick
