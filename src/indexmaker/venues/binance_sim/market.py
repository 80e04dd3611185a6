"""The market model behind the simulated books: what the venue's other participants quote.

Synthetic (default): every symbol of the bundled indexes, priced as the index files imply
(sim/market.py: BTC anchored near 110,000 USDC), `levels` price levels a side, quantities worth
a random 2,000-40,000 USDC, and a random-walk mid. Seeded and deterministic: the n-th update
of a symbol depends only on the seed and n, never on wall time.

Replay: a JSON-lines file of recorded depth (docs/exchange-sim.md): snapshot lines
`{"symbol", "bids", "asks", "lastUpdateId"}` replace a symbol's quotes, diff lines (Binance's
`depthUpdate` payload, bare or wrapped as `{"stream", "data"}`) set levels; `E` (ms) paces
the replay when present, otherwise one line per tick.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

from indexmaker.model.index import load_bundled_index
from indexmaker.sim.market import reference_prices
from indexmaker.venues.binance_sim.config import MarketConfig
from indexmaker.venues.binance_sim.symbols import SymbolSpec, spec_for

QUOTES = ("USDC", "USDT", "FDUSD", "BTC", "ETH", "BNB")


@dataclass(slots=True)
class Quotes:
    """The market's quotes for one symbol: price ticks -> quantity steps per side. `replace`
    means these are all of them (absent prices are withdrawn); otherwise only these change
    (0 withdraws)."""

    symbol: str
    bids: dict[int, int]
    asks: dict[int, int]
    replace: bool


class _Walker:
    __slots__ = ("asks", "bids", "half", "max_move", "mid", "rng", "spacing", "spec", "unit")

    def __init__(self, spec: SymbolSpec, price: Decimal, seed: int) -> None:
        self.spec = spec
        self.rng = random.Random(seed ^ zlib.crc32(spec.symbol.encode()))
        self.mid = max(int(price / spec.tick), 1)
        self.unit = 1 / (spec.tick * spec.step)  # quote units -> steps, divided by ticks
        self.spacing = 1
        self.half = 1
        self.max_move = 1
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}


class SyntheticMarket:
    def __init__(self, config: MarketConfig, notional_filter: str = "NOTIONAL") -> None:
        self.config = config
        baskets = [load_bundled_index(name) for name in config.indexes]
        # Instruments of the bundled indexes are named (venue, pair); the simulator is one venue.
        prices = {str(i.pair): price for i, price in reference_prices(baskets).items()}
        wanted = set(config.symbols)
        self.specs: dict[str, SymbolSpec] = {}
        self._walkers: list[_Walker] = []
        for symbol in sorted(prices):
            if wanted and symbol not in wanted:
                continue
            spec = spec_for(symbol, prices[symbol], notional_filter=notional_filter)
            self.specs[symbol] = spec
            walker = _Walker(spec, prices[symbol], config.seed)
            walker.spacing = max(int(walker.mid * config.level_spacing), 1)
            walker.half = max(walker.spacing // 2, 1)
            walker.max_move = max(int(walker.mid * config.volatility), 1)
            self._walkers.append(walker)
        self._share = min(max(config.updates_per_second / 10.0, 0.0), 1.0)
        self._tick_rng = random.Random(config.seed)

    def initial(self) -> list[Quotes]:
        return [self._requote(w, first=True) for w in self._walkers]

    def mid(self, symbol: str) -> int | None:
        for walker in self._walkers:
            if walker.spec.symbol == symbol:
                return walker.mid
        return None

    def step(self, now_ms: int) -> list[Quotes]:
        """One 100 ms tick: each symbol updates with probability updates_per_second / 10."""
        del now_ms  # deterministic: the sequence depends on the seed only
        share = self._share
        draw = self._tick_rng.random
        return [self._requote(w) for w in self._walkers if share >= 1.0 or draw() < share]

    def _requote(self, w: _Walker, first: bool = False) -> Quotes:
        """A mid move (1 update in 10) requotes the whole ladder; otherwise a few levels
        change size, which is what most of a real diff stream looks like."""
        rng = w.rng
        moved = first or rng.random() < 0.1
        if moved and not first:
            w.mid = max(w.mid + rng.randint(-w.max_move, w.max_move), w.half + 1)
        if moved:
            # Levels sit on a grid of `spacing` ticks, so a small move of the mid changes
            # only the levels at the edges, as a real book's diff does.
            levels, spacing = self.config.levels, w.spacing
            best_bid = (w.mid - w.half) // spacing * spacing
            best_ask = -(-(w.mid + w.half) // spacing) * spacing
            if best_ask <= best_bid:
                best_ask = best_bid + spacing
            bids = [p for p in (best_bid - i * spacing for i in range(levels)) if p > 0]
            asks = [best_ask + i * spacing for i in range(levels)]
            w.bids = {p: w.bids.get(p) or self._size(w, p) for p in bids}
            w.asks = {p: w.asks.get(p) or self._size(w, p) for p in asks}
            return Quotes(w.spec.symbol, dict(w.bids), dict(w.asks), replace=True)
        bid_changes: dict[int, int] = {}
        ask_changes: dict[int, int] = {}
        bid_prices, ask_prices = list(w.bids), list(w.asks)
        for _ in range(self.config.changes_per_update):
            if rng.random() < 0.5 and bid_prices:
                price = bid_prices[rng.randrange(len(bid_prices))]
                bid_changes[price] = w.bids[price] = self._size(w, price)
            elif ask_prices:
                price = ask_prices[rng.randrange(len(ask_prices))]
                ask_changes[price] = w.asks[price] = self._size(w, price)
        # Levels takers ate into are restored at the next full requote (a mid move).
        return Quotes(w.spec.symbol, bid_changes, ask_changes, replace=False)

    def _size(self, w: _Walker, price: int) -> int:
        low, high = self.config.depth_usdc
        return max(int(Decimal(w.rng.randint(low, high)) * w.unit / price), 1)


class ReplayMarket:
    """Recorded depth, applied line by line (see the module docstring)."""

    def __init__(self, path: Path, speed: float = 1.0) -> None:
        self.path = path
        self.speed = speed if speed > 0 else 1.0
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        self._events = [_unwrap(line) for line in lines]
        self.specs = _specs_from(self._events)
        self._cursor = 0
        self._start_ms: int | None = None
        self._first_event_ms: int | None = None

    def initial(self) -> list[Quotes]:
        out: list[Quotes] = []
        seen: set[str] = set()
        while self._cursor < len(self._events):
            event = self._events[self._cursor]
            if not event.get("snapshot") or event["symbol"] in seen:
                break
            seen.add(event["symbol"])
            out.append(self._quotes(event))
            self._cursor += 1
        return out

    def mid(self, symbol: str) -> int | None:
        return None

    def step(self, now_ms: int) -> list[Quotes]:
        if self._start_ms is None:
            self._start_ms = now_ms
        out: list[Quotes] = []
        while self._cursor < len(self._events):
            event = self._events[self._cursor]
            stamp = event.get("E")
            if stamp is not None:
                if self._first_event_ms is None:
                    self._first_event_ms = int(stamp)
                due = self._start_ms + (int(stamp) - self._first_event_ms) / self.speed
                if due > now_ms:
                    break
            out.append(self._quotes(event))
            self._cursor += 1
            if stamp is None:
                break  # un-timed lines: one per tick
        return out

    def _quotes(self, event: dict[str, Any]) -> Quotes:
        spec = self.specs[str(event["symbol"])]
        return Quotes(
            spec.symbol,
            {spec.ticks(Decimal(p)): spec.steps(Decimal(q)) for p, q in _pairs(event["bids"])},
            {spec.ticks(Decimal(p)): spec.steps(Decimal(q)) for p, q in _pairs(event["asks"])},
            replace=bool(event.get("snapshot")),
        )


def _pairs(value: object) -> Iterator[tuple[str, str]]:
    for pair in value:  # type: ignore[attr-defined]
        yield str(pair[0]), str(pair[1])


def _unwrap(line: dict[str, Any]) -> dict[str, Any]:
    data = line.get("data", line)
    assert isinstance(data, dict)
    if "lastUpdateId" in data or "bids" in data:
        return {
            "symbol": str(data.get("symbol", data.get("s", ""))).upper(),
            "bids": data.get("bids", data.get("b", [])),
            "asks": data.get("asks", data.get("a", [])),
            "snapshot": True,
            "E": data.get("E"),
        }
    return {
        "symbol": str(data["s"]).upper(),
        "bids": data.get("b", []),
        "asks": data.get("a", []),
        "snapshot": False,
        "E": data.get("E"),
    }


def _specs_from(events: list[dict[str, Any]]) -> dict[str, SymbolSpec]:
    """Tick and step from the finest decimals the recording shows for each symbol."""
    prices: dict[str, list[Decimal]] = {}
    qtys: dict[str, list[Decimal]] = {}
    for event in events:
        symbol = str(event["symbol"])
        for side in ("bids", "asks"):
            for p, q in _pairs(event[side]):
                prices.setdefault(symbol, []).append(Decimal(p))
                qtys.setdefault(symbol, []).append(Decimal(q))
    specs: dict[str, SymbolSpec] = {}
    for symbol, values in prices.items():
        quote = next((q for q in QUOTES if symbol.endswith(q) and symbol != q), "USDC")
        mid = sorted(values)[len(values) // 2]
        spec = spec_for(symbol, mid, quote=quote)
        spec.tick = min(spec.tick, _finest(values))
        spec.step = min(spec.step, _finest(qtys[symbol]))
        spec.min_price = spec.tick
        spec.min_qty = spec.step
        spec.max_qty = spec.max_qty.quantize(spec.step, rounding=ROUND_FLOOR)
        specs[symbol] = spec
    return specs


def _finest(values: list[Decimal]) -> Decimal:
    exponent = min((v.normalize().as_tuple().exponent for v in values if v), default=0)
    assert isinstance(exponent, int)
    return Decimal(1).scaleb(max(min(exponent, 0), -8))
