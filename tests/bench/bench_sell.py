"""Sell side (issue 12): one solver tick forming a sell batch of 1,000 redemptions of SY100
(81 assets), and the allocation of its fills (every leg filled in one execution), each
beside same-run baselines: the buy tick of 1,000 orders on the same market, and a Decimal
multiply-add.

Set-up (not timed): SY100 from the bundled data at its implied prices, 20-level synthetic
books with Binance-like filters; 1,000 clients buy (100-5,000 USDC) in one batch that fills
in full (books 2-4 m USDC a level) and is minted; each then redeems half of what it got,
escrow confirmed.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from bench_core import HERE, decimal_madd_ns

from indexmaker.core.clock import ManualClock
from indexmaker.core.events import (
    BookSnapshot,
    DepositObserved,
    ExchangeFill,
    ExchangeOrderClosed,
    ExchangeOrderStatus,
    IndexEscrowed,
    MintConfirmed,
    MintIndex,
    NewIndexOrderRequest,
    PlaceExchangeOrder,
    Tick,
)
from indexmaker.core.ids import (
    Asset,
    ClientKey,
    ClientOrderId,
    PaymentId,
    Symbol,
    TradeId,
    TxHash,
    VenueOrderId,
    client_key,
)
from indexmaker.core.journal import NullJournal
from indexmaker.core.money import round_index_down
from indexmaker.core.pacing import paced
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.engine import Engine, EngineSetup
from indexmaker.engine.throttle import RateLimit
from indexmaker.model.index import load_bundled_index
from indexmaker.model.side import Side
from indexmaker.sim.market import reference_prices, rules_for, synthetic_books

# The allocation it replaced, kept as the oracle of tests/unit/engine/test_sell_allocation.py,
# timed here as the same-run baseline of the fast one.
sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "engine"))
from sell_allocation_reference import ReferenceAllocator

ORDERS = 1_000
SY100 = Symbol("SY100")


def _fill_all(engine: Engine, placed: list[PlaceExchangeOrder], start: int) -> list[ExchangeFill]:
    return [
        ExchangeFill(
            p.order_id,
            p.instrument,
            VenueOrderId(str(start + i)),
            TradeId(f"t{start + i}"),
            p.price,
            p.quantity,
            p.quantity,
            Decimal("0.01"),
            Asset("USDC"),
            engine.clock.now(),
        )
        for i, p in enumerate(placed)
    ]


def _close_all(engine: Engine, placed: list[PlaceExchangeOrder]) -> None:
    for p in placed:
        engine.handle(
            ExchangeOrderClosed(p.order_id, p.instrument, ExchangeOrderStatus.FILLED, None)
        )


def _placed(commands: list[object]) -> list[PlaceExchangeOrder]:
    return [c for c in commands if isinstance(c, PlaceExchangeOrder)]


class _Gaps:
    """The stretches between checkpoints (a pause installed by core.pacing): the engine's
    work between two chances to hand the event loop a turn (plus any preemption by the OS)."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.gaps: list[float] = []

    def __call__(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self.last)
        self.last = now

    def p99(self) -> float:
        return statistics.quantiles(self.gaps, n=100)[98] if len(self.gaps) > 1 else 0.0


def sy100_engine(
    seed: int, **limits: Decimal
) -> tuple[Engine, ManualClock, random.Random, list[ClientKey]]:
    """An engine serving SY100 on deep synthetic books (2-4 m USDC a level: 1,000 buys fill
    in one batch), no volley or order-rate limit, `limits` added to its SolverConfig; the
    random source that drew the books and ORDERS client keys (set-up, not timed)."""
    basket = load_bundled_index("SY100")
    rng = random.Random(seed)
    prices = reference_prices([basket])
    rules = {s: rules_for(s, p) for s, p in prices.items()}
    books = synthetic_books(prices, rules, rng, depth_usdc=(2_000_000, 4_000_000))
    config = SolverConfig(
        max_batch_size=ORDERS,
        max_order_volley=Decimal("1e12"),
        max_volley=Decimal("1e12"),
        max_total_volley=Decimal("1e12"),
        order_rate_limits=(RateLimit("ORDERS_10S", 10**9, timedelta(seconds=10)),),
        **limits,  # type: ignore[arg-type]
    )
    clock = ManualClock()
    setup = EngineSetup({"SY100": basket}, config, rules, hops=[], destination=HERE)
    engine = Engine(setup, clock, NullJournal())
    for symbol, (bids, asks) in books.items():
        engine.handle(BookSnapshot(symbol, tuple(bids), tuple(asks)))
    clients = [client_key(42161, f"0x{n:040x}") for n in range(ORDERS)]
    return engine, clock, rng, clients


def run_once(
    seed: int, reference: bool = False
) -> tuple[float, float, float, int, int, float, float, float]:
    """(buy tick s, sell tick s, sell fill allocation s, sell legs, lots disposed, p99 and
    longest stretch between checkpoints during the allocation s, allocation CPU s);
    `reference`: allocate with the allocation the fast one replaced."""
    engine, clock, rng, clients = sy100_engine(seed, max_net_redemption=Decimal("1e15"))
    for n, client in enumerate(clients):
        amount = Decimal(rng.randint(100, 5000))
        engine.handle(DepositObserved(client, n, amount, HERE, TxHash(f"0x{n:064x}"), 0, n, 12))
        engine.handle(NewIndexOrderRequest(client, ClientOrderId(f"b{n}"), SY100, Side.BUY, amount))
    clock.advance(timedelta(milliseconds=100))
    started = time.perf_counter()
    placed = _placed(engine.handle(Tick(clock.now())))
    buy_tick = time.perf_counter() - started
    for fill in _fill_all(engine, placed, 0):
        engine.handle(fill)
    _close_all(engine, placed)
    clock.advance(timedelta(seconds=11))  # partly mintable ones too (mint_idle)
    mints = [c for c in engine.handle(Tick(clock.now())) if isinstance(c, MintIndex)]
    for mint in mints:
        engine.handle(MintConfirmed(mint.payment_id))
    held = {m.client: m.quantity for m in mints}
    if reference:
        engine.redemptions.allocator = ReferenceAllocator(engine.inventory, engine.solver.holdings)
    assert len(held) == ORDERS, len(held)
    for n, client in enumerate(clients):
        units = round_index_down(held[client] / 2)
        engine.handle(NewIndexOrderRequest(client, ClientOrderId(f"s{n}"), SY100, Side.SELL, units))
        engine.handle(IndexEscrowed(PaymentId(f"R{n + 1}")))
    clock.advance(timedelta(milliseconds=100))
    started = time.perf_counter()
    sells = _placed(engine.handle(Tick(clock.now())))
    sell_tick = time.perf_counter() - started
    assert sells and all(p.side is Side.SELL for p in sells)
    fills = _fill_all(engine, sells, len(placed))
    gaps = _Gaps()
    started, cpu = time.perf_counter(), time.process_time()
    with paced(gaps):
        for fill in fills:
            engine.handle(fill)
    allocation = time.perf_counter() - started
    cpu = time.process_time() - cpu  # CPU seconds: steadier than wall time on a busy machine
    gaps()
    _close_all(engine, sells)  # the batch completes: burns, then settlement
    redemptions = engine.redemptions.open_redemptions()
    assert all(r.sold > 0 for r in redemptions)
    disposed = sum(len(r.disposals) for r in redemptions)
    longest = max(gaps.gaps)
    return buy_tick, sell_tick, allocation, len(sells), disposed, gaps.p99(), longest, cpu


def run() -> list[str]:
    base = decimal_madd_ns()
    runs, before = [], []
    for seed in (1, 2, 3):  # interleaved: both see the same load
        runs.append(run_once(seed))
        before.append(run_once(seed, reference=True))
    buy = statistics.median(r[0] for r in runs)
    sell = statistics.median(r[1] for r in runs)
    allocation = statistics.median(r[2] for r in runs)
    old = statistics.median(r[2] for r in before)
    cpu, old_cpu = statistics.median(r[7] for r in runs), statistics.median(r[7] for r in before)
    p99, longest = statistics.median(r[5] for r in runs), max(r[6] for r in runs)
    old_p99, old_longest = statistics.median(r[5] for r in before), max(r[6] for r in before)
    legs, disposed = runs[0][3], runs[0][4]
    assert [r[4] for r in runs] == [r[4] for r in before]
    return [
        f"baseline: Decimal multiply-add {base:.0f} ns",
        f"SY100 (81 assets), {ORDERS:,} orders, medians of {len(runs)} runs:",
        f"  baseline buy tick, {ORDERS:,} ready buys: {buy * 1e3:8.1f} ms",
        f"  sell tick, {ORDERS:,} escrowed redemptions: {sell * 1e3:8.1f} ms "
        f"({legs} sell legs; x{sell / buy:.2f} the buy tick; "
        f"{sell * 1e9 / ORDERS / base:.0f} madd-equivalents per order)",
        f"  baseline: sell fill allocation before (per redemption and asset), {legs} fills: "
        f"{old * 1e3:8.1f} ms, CPU {old_cpu * 1e3:.1f} ms "
        f"({old * 1e9 / max(disposed, 1) / base:.0f} madd-equivalents "
        f"per disposal; stretches between checkpoints p99 {old_p99 * 1e3:.1f} ms, "
        f"longest {old_longest * 1e3:.1f} ms)",
        f"  sell fill allocation, {legs} fills: {allocation * 1e3:8.1f} ms, CPU {cpu * 1e3:.1f} ms "
        f"({disposed:,} lot disposals, {allocation * 1e9 / max(disposed, 1) / base:.0f} "
        f"madd-equivalents each; x{old / allocation:.1f} faster, CPU x{old_cpu / cpu:.1f}; "
        f"stretches between checkpoints p99 {p99 * 1e3:.1f} ms, longest {longest * 1e3:.1f} ms)",
    ]


if __name__ == "__main__":
    for line in run():
        print(line)
