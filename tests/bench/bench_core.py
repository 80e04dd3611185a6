"""Core benchmarks: one solver tick, and the fill-allocation path (issue #2).

Each figure is printed beside a baseline measured in the same run (a Decimal
multiply-add), so the machine's noise cancels out in the ratio.
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import timedelta
from decimal import Decimal

from indexmaker.core.clock import ManualClock
from indexmaker.core.events import (
    BookSnapshot,
    DepositObserved,
    ExchangeFill,
    NewIndexOrderRequest,
    PlaceExchangeOrder,
    Tick,
)
from indexmaker.core.ids import (
    Asset,
    ClientOrderId,
    Designation,
    Symbol,
    TradeId,
    TxHash,
    VenueOrderId,
    client_key,
    instrument,
)
from indexmaker.core.journal import NullJournal
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.engine import Engine, EngineSetup
from indexmaker.engine.throttle import RateLimit
from indexmaker.model.index import Basket, BasketAsset
from indexmaker.model.side import Side
from indexmaker.sim.market import rules_for, synthetic_books

INDEXES = 10
ASSETS_PER_INDEX = 50
ASSET_POOL = 250
LEVELS = 20
HERE = Designation("BINANCE:ACCOUNT:USDC")


def decimal_madd_ns(n: int = 200_000) -> float:
    """Baseline: ns per Decimal multiply-add, measured now on this machine."""
    a, b, acc = Decimal("1.000001"), Decimal("3.14159"), Decimal(0)
    start = time.perf_counter_ns()
    for _ in range(n):
        acc += a * b
    return (time.perf_counter_ns() - start) / n


def build_market(seed: int) -> tuple[dict[str, Basket], dict, dict]:
    rng = random.Random(seed)
    symbols = [instrument(f"A{i:03d}USDC") for i in range(ASSET_POOL)]
    prices = {s: Decimal(int(10 ** rng.uniform(-1, 4) * 1000)) / 1000 for s in symbols}
    rules = {s: rules_for(s, p) for s, p in prices.items()}
    books = synthetic_books(prices, rules, rng, levels=LEVELS)
    baskets = {}
    for i in range(INDEXES):
        chosen = rng.sample(symbols, ASSETS_PER_INDEX)
        assets = tuple(
            BasketAsset(s, (Decimal(rng.randint(10, 1000)) / prices[s]).quantize(Decimal("1e-8")))
            for s in chosen
        )
        baskets[f"IX{i}"] = Basket(Symbol(f"IX{i}"), assets)
    return baskets, rules, books


def ready_engine(orders: int, seed: int = 1) -> tuple[Engine, ManualClock]:
    baskets, rules, books = build_market(seed)
    config = SolverConfig(
        max_batch_size=orders,
        max_volley=Decimal("1e12"),
        max_total_volley=Decimal("1e12"),
        order_rate_limits=(RateLimit("ORDERS_10S", 10**9, timedelta(seconds=10)),),
    )
    clock = ManualClock()
    setup = EngineSetup(baskets=baskets, config=config, rules=rules, hops=[], destination=HERE)
    engine = Engine(setup, clock, NullJournal())
    for symbol, (bids, asks) in books.items():
        engine.handle(BookSnapshot(symbol, tuple(bids), tuple(asks)))
    rng = random.Random(seed)
    names = list(baskets)
    for n in range(orders):
        client = client_key(42161, f"0x{n:040x}")
        amount = Decimal(rng.randint(100, 5000))
        engine.handle(DepositObserved(client, n, amount, HERE, TxHash(f"0x{n:064x}"), 0, n, 12))
        engine.handle(
            NewIndexOrderRequest(
                client, ClientOrderId(f"c{n}"), Symbol(rng.choice(names)), Side.BUY, amount
            )
        )
    return engine, clock


def time_tick(orders: int, repeats: int) -> tuple[float, int]:
    samples = []
    entries = 0
    for r in range(repeats):
        engine, clock = ready_engine(orders, seed=r + 1)
        clock.advance(timedelta(milliseconds=100))
        start = time.perf_counter()
        commands = engine.handle(Tick(clock.now()))
        samples.append(time.perf_counter() - start)
        entries = sum(1 for b in engine.batches.open_batches() for _ in b.entries())
        assert any(isinstance(c, PlaceExchangeOrder) for c in commands)
    return statistics.median(samples), entries


def time_fills(orders: int, repeats: int) -> tuple[float, int, int]:
    """All asset orders of one batch filled in full, one execution each."""
    samples = []
    fills = assignments = 0
    for r in range(repeats):
        engine, clock = ready_engine(orders, seed=r + 1)
        placed = [c for c in engine.handle(Tick(clock.now())) if isinstance(c, PlaceExchangeOrder)]
        events = [
            ExchangeFill(
                p.order_id,
                p.instrument,
                VenueOrderId(str(i)),
                TradeId(f"t{i}"),
                p.price,
                p.quantity,
                p.quantity,
                Decimal("0.01"),
                Asset("USDC"),
                engine.clock.now(),
            )
            for i, p in enumerate(placed)
        ]
        start = time.perf_counter()
        for event in events:
            engine.handle(event)
        samples.append(time.perf_counter() - start)
        fills = len(events)
        assignments = sum(
            len(lot.assignments)
            for a in engine.inventory.assets()
            for lot in engine.inventory.lots(a)
        )
    return statistics.median(samples), fills, assignments


def run() -> list[str]:
    lines = []
    base = decimal_madd_ns()
    lines.append(f"baseline: Decimal multiply-add {base:.0f} ns")
    lines.append(
        f"solver tick, {INDEXES} indexes x {ASSETS_PER_INDEX} assets, {LEVELS}-level books:"
    )
    previous = None
    for orders, repeats in ((100, 5), (1_000, 5), (10_000, 3)):
        seconds, entries = time_tick(orders, repeats)
        per_order_madds = seconds * 1e9 / orders / base
        growth = f", x{seconds / previous:.1f} for 10x orders" if previous else ""
        lines.append(
            f"  {orders:>6} ready orders: {seconds * 1e3:8.2f} ms/tick ({entries} engaged); "
            f"{per_order_madds:6.0f} madd-equivalents per order{growth}"
        )
        previous = seconds
    seconds, fills, assignments = time_fills(1_000, 3)
    lines.append(
        f"fill allocation, batch of 1,000 orders: {fills} fills in {seconds * 1e3:.1f} ms "
        f"({seconds * 1e6 / fills:.0f} us/fill, {assignments} lot assignments, "
        f"{seconds * 1e9 / max(assignments, 1) / base:.0f} madd-equivalents each)"
    )
    return lines


if __name__ == "__main__":
    for line in run():
        print(line)
