"""Symbols of the simulated venue: their filters, their exchangeInfo entry, number formats.

Prices and quantities travel as integers (ticks and steps) inside the simulator, so matching
is exact and cheap; this module converts at the wire. Binance formats both with 8 decimals
(`"0.01379000"`), never in scientific notation (filters.md, -1111 BAD_PRECISION).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from indexmaker.venues.binance_sim.errors import ApiError

EIGHT = Decimal("1e-8")
STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT")
ORDER_TYPES = ("LIMIT", "MARKET", "LIMIT_MAKER")
STATUSES = ("TRADING", "HALT", "BREAK", "CANCEL_ONLY")


def fmt8(value: Decimal) -> str:
    """8 decimals, fixed point (exact for anything on an 8-decimal grid)."""
    return f"{value:.8f}"


@dataclass(slots=True)
class SymbolSpec:
    """One symbol's rules (filters.md). `tick`/`step` are the PRICE_FILTER tickSize and LOT_SIZE
    stepSize; every price and quantity inside the simulator is an integer multiple of them."""

    symbol: str
    base: str
    quote: str
    tick: Decimal
    step: Decimal
    min_price: Decimal
    max_price: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    max_notional: Decimal
    notional_filter: str = "NOTIONAL"
    bid_up: Decimal = Decimal("5")
    bid_down: Decimal = Decimal("0.2")
    ask_up: Decimal = Decimal("5")
    ask_down: Decimal = Decimal("0.2")
    max_num_orders: int = 200
    status: str = "TRADING"
    delisted: bool = False

    def price_of(self, ticks: int) -> Decimal:
        return self.tick * ticks

    def qty_of(self, steps: int) -> Decimal:
        return self.step * steps

    def fmt_price(self, ticks: int) -> str:
        return fmt8(self.tick * ticks)

    def fmt_qty(self, steps: int) -> str:
        return fmt8(self.step * steps)

    def ticks(self, price: Decimal) -> int:
        """Exact tick count of a price already checked to be on the tick grid."""
        return int(price / self.tick)

    def steps(self, qty: Decimal) -> int:
        return int(qty / self.step)

    def check_price(self, price: Decimal) -> int:
        """PRICE_FILTER: min/max (0 disables) and a multiple of tickSize; returns ticks."""
        if price <= 0:
            raise ApiError(-1013, "Invalid price.")
        if (self.min_price and price < self.min_price) or (
            self.max_price and price > self.max_price
        ):
            raise ApiError(-1013, "Filter failure: PRICE_FILTER")
        if price % self.tick != 0:
            raise ApiError(-1013, "Filter failure: PRICE_FILTER")
        return self.ticks(price)

    def check_qty(self, qty: Decimal) -> int:
        """LOT_SIZE: minQty <= qty <= maxQty and (qty - minQty) a multiple of stepSize."""
        if qty <= 0:
            raise ApiError(-1013, "Invalid quantity.")
        if qty < self.min_qty or (self.max_qty and qty > self.max_qty):
            raise ApiError(-1013, "Filter failure: LOT_SIZE")
        if (qty - self.min_qty) % self.step != 0:
            raise ApiError(-1013, "Filter failure: LOT_SIZE")
        return self.steps(qty)

    def check_notional(self, notional: Decimal) -> None:
        if notional < self.min_notional:
            raise ApiError(-1013, f"Filter failure: {self.notional_filter}")
        if (
            self.notional_filter == "NOTIONAL"
            and self.max_notional
            and notional > self.max_notional
        ):
            raise ApiError(-1013, "Filter failure: NOTIONAL")

    def check_percent_price(self, side: str, price: Decimal, reference: Decimal) -> None:
        """PERCENT_PRICE_BY_SIDE against the reference price (the current mid)."""
        low, high = (self.bid_down, self.bid_up) if side == "BUY" else (self.ask_down, self.ask_up)
        if price < reference * low or price > reference * high:
            raise ApiError(-1013, "Filter failure: PERCENT_PRICE_BY_SIDE")

    def exchange_info(self) -> dict[str, object]:
        """The symbol's `exchangeInfo.symbols[]` entry (rest-api.md, filters.md)."""
        notional: dict[str, object]
        if self.notional_filter == "MIN_NOTIONAL":
            notional = {
                "filterType": "MIN_NOTIONAL",
                "minNotional": fmt8(self.min_notional),
                "applyToMarket": True,
                "avgPriceMins": 5,
            }
        else:
            notional = {
                "filterType": "NOTIONAL",
                "minNotional": fmt8(self.min_notional),
                "applyMinToMarket": True,
                "maxNotional": fmt8(self.max_notional),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            }
        return {
            "symbol": self.symbol,
            "status": self.status,
            "baseAsset": self.base,
            "baseAssetPrecision": 8,
            "quoteAsset": self.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
            "icebergAllowed": False,
            "ocoAllowed": False,
            "otoAllowed": False,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": False,
            "amendAllowed": False,
            "pegInstructionsAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": fmt8(self.min_price),
                    "maxPrice": fmt8(self.max_price),
                    "tickSize": fmt8(self.tick),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": fmt8(self.min_qty),
                    "maxQty": fmt8(self.max_qty),
                    "stepSize": fmt8(self.step),
                },
                notional,
                {
                    "filterType": "PERCENT_PRICE_BY_SIDE",
                    "bidMultiplierUp": str(self.bid_up),
                    "bidMultiplierDown": str(self.bid_down),
                    "askMultiplierUp": str(self.ask_up),
                    "askMultiplierDown": str(self.ask_down),
                    "avgPriceMins": 5,
                },
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": self.max_num_orders},
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": list(STP_MODES),
        }


def spec_for(
    symbol: str, price: Decimal, quote: str = "USDC", notional_filter: str = "NOTIONAL"
) -> SymbolSpec:
    """Binance-like rules for a pair trading near `price`: a tick of about 1e-6 of the price
    (never finer than 1e-8, Binance's precision), a step worth about 0.001-0.01 quote units."""
    tick = max(Decimal(1).scaleb(price.adjusted() - 6), EIGHT)
    step = max(Decimal(1).scaleb(-(price.adjusted() + 3)), EIGHT)
    max_qty = (Decimal("9000000") / price).quantize(step, rounding=ROUND_FLOOR)
    return SymbolSpec(
        symbol=symbol,
        base=symbol.removesuffix(quote),
        quote=quote,
        tick=tick,
        step=step,
        min_price=tick,
        max_price=(price * 1000).quantize(tick, rounding=ROUND_FLOOR),
        min_qty=step,
        max_qty=max_qty,
        min_notional=Decimal("5"),
        max_notional=Decimal("9000000"),
        notional_filter=notional_filter,
    )
