"""Rebalancing (issue 12): a rebalance of SY100 (81 assets) planned while 1,000 buy orders are
open, beside same-run baselines: the buy tick of the same 1,000 open orders without a
rebalance, and a Decimal multiply-add.

Set-up (not timed): SY100 from the bundled data at its implied prices, 20-level synthetic
books with Binance-like filters (2-4 m USDC a level); 1,000 clients buy 100-5,000 USDC in one
batch that fills in full and is minted (the units the rebalance moves); then each opens a
second buy of the same size (ready, not yet batched). Timed, medians of 3 runs:
- the proposal: `RebalanceIndex` with 40 weights up 20% and 41 down 20% (the next basket
  version at the mids, the cut-over);
- the round's plan alone, beside the plan of the 1,000-order buy batch (the baseline, same
  engine, same instant): leftovers of 81 assets, limits and liquidity within max_levels, the
  round's orders through the filters, and crossing them with that buy plan;
- the whole tick that opens the round with the buy batch, beside the same tick on a twin
  engine without the proposal (both dominated by allocating the inventory the first batch
  left over to 1,000 orders × 81 assets).
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta
from decimal import Decimal

from bench_core import HERE, decimal_madd_ns
from bench_sell import ORDERS, SY100, _close_all, _fill_all, _placed, sy100_engine

from indexmaker.core.clock import ManualClock
from indexmaker.core.events import (
    DepositObserved,
    MintConfirmed,
    MintIndex,
    NewIndexOrderRequest,
    RebalanceReport,
    Tick,
)
from indexmaker.core.ids import ClientOrderId, TxHash
from indexmaker.core.rebalance_events import RebalanceIndex, RebalanceWeight
from indexmaker.engine.engine import Engine
from indexmaker.model.side import Side


def _engine(seed: int) -> tuple[Engine, ManualClock]:
    """SY100 with 1,000 minted buyers and 1,000 open buys (set-up, not timed)."""
    engine, clock, rng, clients = sy100_engine(seed, rebalance_max_tranche=Decimal("1e9"))
    amounts = [Decimal(rng.randint(100, 5000)) for _ in clients]
    for n, client in enumerate(clients):
        # Twice the amount: the second order waits in the queue as ready collateral.
        deposit = DepositObserved(client, n, 2 * amounts[n], HERE, TxHash(f"0x{n:064x}"), 0, n, 12)
        engine.handle(deposit)
        order = NewIndexOrderRequest(client, ClientOrderId(f"b{n}"), SY100, Side.BUY, amounts[n])
        engine.handle(order)
    clock.advance(timedelta(milliseconds=100))
    placed = _placed(engine.handle(Tick(clock.now())))
    for fill in _fill_all(engine, placed, 0):
        engine.handle(fill)
    _close_all(engine, placed)
    clock.advance(timedelta(seconds=11))
    mints = [c for c in engine.handle(Tick(clock.now())) if isinstance(c, MintIndex)]
    for mint in mints:
        engine.handle(MintConfirmed(mint.payment_id))
    assert len(mints) == ORDERS, len(mints)
    for n, client in enumerate(clients):
        order = NewIndexOrderRequest(client, ClientOrderId(f"c{n}"), SY100, Side.BUY, amounts[n])
        engine.handle(order)
    return engine, clock


def _proposal(engine: Engine) -> RebalanceIndex:
    assets = engine.baskets[SY100].assets
    weights = tuple(
        RebalanceWeight(a.instrument, a.weight * (Decimal("1.2") if i < 40 else Decimal("0.8")))
        for i, a in enumerate(assets)
    )
    return RebalanceIndex(SY100, "bench", weights)


def run_once(seed: int) -> tuple[float, float, float, int, int, float, float]:
    """(baseline buy tick s, proposal s, tick with the round s, round orders, crossed,
    buy plan s, round plan s)."""
    twin, twin_clock = _engine(seed)
    twin_clock.advance(timedelta(milliseconds=100))
    started = time.perf_counter()
    baseline_orders = _placed(twin.handle(Tick(twin_clock.now())))
    baseline = time.perf_counter() - started
    assert len(baseline_orders) == 81, len(baseline_orders)

    engine, clock = _engine(seed)
    proposal = _proposal(engine)
    started = time.perf_counter()
    reports = engine.handle(proposal)
    cut_over = time.perf_counter() - started
    assert [r.kind for r in reports if isinstance(r, RebalanceReport)] == ["started"], reports
    clock.advance(timedelta(milliseconds=100))
    started = time.perf_counter()
    buy_plan = engine.solver._plan_buy(clock.now())
    planned_buys = time.perf_counter() - started
    started = time.perf_counter()
    round_plan = engine.rebalance.plan(clock.now(), buy_plan, None)
    planned_round = time.perf_counter() - started
    assert round_plan is not None and (round_plan.orders or round_plan.to_buyers)
    started = time.perf_counter()
    commands = engine.handle(Tick(clock.now()))
    tick = time.perf_counter() - started
    rounds = [o for o in _placed(commands) if engine.rebalance.owns(o.batch_id)]
    (rebalance,) = engine.rebalance.active.values()
    crossed = sum(1 for a in rebalance.assets.values() if a.crossed != 0)
    assert rounds or crossed, "the round sent nothing"
    return baseline, cut_over, tick, len(rounds), crossed, planned_buys, planned_round


def run() -> list[str]:
    base = decimal_madd_ns()
    runs = [run_once(seed) for seed in (1, 2, 3)]
    buy = statistics.median(r[0] for r in runs)
    cut_over = statistics.median(r[1] for r in runs)
    tick = statistics.median(r[2] for r in runs)
    orders, crossed = runs[0][3], runs[0][4]
    buy_plan = statistics.median(r[5] for r in runs)
    round_plan = statistics.median(r[6] for r in runs)
    return [
        f"baseline: Decimal multiply-add {base:.0f} ns",
        f"SY100 (81 assets), {ORDERS:,} minted buyers and {ORDERS:,} open buys, "
        f"medians of {len(runs)} runs:",
        f"  baseline buy tick, {ORDERS:,} open buys, no rebalance: {buy * 1e3:8.1f} ms",
        f"  proposal (cut-over to version 2, 81 weights): {cut_over * 1e3:8.1f} ms",
        f"  baseline plan of the {ORDERS:,}-order buy batch: {buy_plan * 1e3:8.1f} ms",
        f"  round 1 plan (81 assets, crossed with that buy plan): {round_plan * 1e3:8.1f} ms "
        f"(x{round_plan / buy_plan:.3f} the buy plan; "
        f"{round_plan * 1e9 / 81 / base:.0f} madd-equivalents per asset)",
        f"  tick planning round 1 with the {ORDERS:,}-order buy batch: {tick * 1e3:8.1f} ms "
        f"(x{tick / buy:.2f} the buy tick; round: {orders} venue orders, {crossed} assets "
        f"crossed with the buys; the round's share {(tick - buy) * 1e3:.1f} ms)",
    ]


if __name__ == "__main__":
    for line in run():
        print(line)
