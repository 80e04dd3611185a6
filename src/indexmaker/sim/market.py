"""Synthetic but realistic markets for the bundled indexes.

Prices are the ones implied by the published index files (shared/data/README.md): BTC is
anchored near 110,000 USDC and every other asset follows from its weight and quantity.
Books have `levels` price levels a side at Binance-like tick sizes, and each symbol gets
Binance-like filters (tick, step, 5 USDC minimum notional).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from indexmaker.core.ids import InstrumentId, instrument
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.index import Basket, implied_prices

BTC = instrument("BTCUSDC")
BTC_PRICE = Decimal("110000")
MIN_NOTIONAL = Decimal("5")

Level = tuple[Decimal, Decimal]
Books = dict[InstrumentId, tuple[list[Level], list[Level]]]


def reference_prices(baskets: Iterable[Basket]) -> dict[InstrumentId, Decimal]:
    """One price per asset across indexes (the first index that holds BTC anchors it)."""
    prices: dict[InstrumentId, Decimal] = {}
    for basket in baskets:
        symbols = {a.instrument for a in basket.assets}
        if BTC in symbols:
            implied = implied_prices(basket, BTC, BTC_PRICE)
        else:
            # Without BTC, anchor the heaviest asset at a round price.
            heaviest = max(basket.assets, key=lambda a: a.weight)
            implied = implied_prices(basket, heaviest.instrument, Decimal("100"))
        for symbol, price in implied.items():
            prices.setdefault(symbol, _significant(price, 6))
    return prices


def rules_for(symbol: InstrumentId, price: Decimal) -> InstrumentRules:
    tick = Decimal(1).scaleb(price.adjusted() - 6)  # 1e-6..1e-5 of the price
    step = Decimal(1).scaleb(-(price.adjusted() + 3))  # one step is worth ~0.001-0.01 USDC
    return InstrumentRules(
        instrument=symbol,
        base_asset=symbol.pair.removesuffix("USDC"),
        quote_asset="USDC",
        tick_size=tick,
        step_size=step,
        min_qty=step,
        min_notional=MIN_NOTIONAL,
    )


def synthetic_books(
    prices: dict[InstrumentId, Decimal],
    rules: dict[InstrumentId, InstrumentRules],
    rng: random.Random,
    levels: int = 20,
    depth_usdc: tuple[int, int] = (2_000, 40_000),
) -> Books:
    books: Books = {}
    for symbol, mid in prices.items():
        rule = rules[symbol]
        bids: list[Level] = []
        asks: list[Level] = []
        for i in range(1, levels + 1):
            spread = Decimal("0.0004") * i
            bid = (mid * (1 - spread)).quantize(rule.tick_size, rounding=ROUND_FLOOR)
            ask = (mid * (1 + spread)).quantize(rule.tick_size, rounding=ROUND_CEILING)
            bids.append((bid, _depth(bid, rule.step_size, rng, depth_usdc)))
            asks.append((ask, _depth(ask, rule.step_size, rng, depth_usdc)))
        books[symbol] = (bids, asks)
    return books


def _depth(price: Decimal, step: Decimal, rng: random.Random, bounds: tuple[int, int]) -> Decimal:
    notional = Decimal(rng.randint(*bounds))
    return (notional / price).quantize(step, rounding=ROUND_FLOOR)


def _significant(value: Decimal, digits: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(value.adjusted() - digits + 1), rounding=ROUND_FLOOR)


class MarketSimulator:
    """Book dynamics: every step each mid price takes a small random walk and makers
    requote the whole book around it."""

    def __init__(
        self,
        prices: dict[InstrumentId, Decimal],
        rng: random.Random,
        levels: int = 20,
        volatility: Decimal = Decimal("0.001"),
    ) -> None:
        self.prices = dict(prices)
        self.rules = {symbol: rules_for(symbol, price) for symbol, price in prices.items()}
        self.rng = rng
        self.levels = levels
        self.volatility = volatility

    def books(self) -> Books:
        return synthetic_books(self.prices, self.rules, self.rng, self.levels)

    def step(self) -> Books:
        for symbol, price in self.prices.items():
            move = Decimal(self.rng.randint(-100, 100)) / 100 * self.volatility
            tick = self.rules[symbol].tick_size
            self.prices[symbol] = (price * (1 + move)).quantize(tick, rounding=ROUND_FLOOR)
        return self.books()
