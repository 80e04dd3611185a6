"""The demos' rebalance step (issue 12): after the buys, the curator moves one index's
weights and the service trades its holdings to the new basket version in rounds. Shared by
the in-process demo (demo.py, simulated time) and the socket demo (demo_sockets.py, the
running service over the exchange-sim, wall-clock time).

Weights: the first half of the basket's assets (by position in the published file) up 20%,
the rest down 20%, renormalised by the core (engine/rebalance.py). The world runs until the
rebalance completes (bounded); every report (start, rounds, end) is printed as one line and
the end as a per-asset table.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from indexmaker.app.demo_common import heading, show_table
from indexmaker.core.events import RebalanceReport
from indexmaker.core.ids import Symbol
from indexmaker.core.money import round_usdc
from indexmaker.core.rebalance_events import RebalanceIndex, RebalanceWeight
from indexmaker.sim.world import SimulatedWorld

if TYPE_CHECKING:
    from indexmaker.app.service import Service
    from indexmaker.engine.engine import Engine

UP, DOWN = Decimal("1.2"), Decimal("0.8")
LIMIT = timedelta(hours=2)  # simulated: a rebalance not done by then is shown as it stands


SERVICE_LIMIT = 30.0  # wall seconds the socket demo waits for the rebalance to complete
HEADING = "[bold]Rebalance[/] {symbol}: first half of the weights +20%, rest −20%"


def busiest(engine: Engine, symbols: tuple[str, ...]) -> Symbol:
    """The index whose holdings are worth the most at the mids (the one worth rebalancing)."""

    def value(symbol: str) -> Decimal:
        total = Decimal(0)
        for asset in engine.solver.holdings.assets_of(Symbol(symbol)):
            prices = engine.market.prices(asset)
            if prices is not None and prices.mid is not None:
                total += engine.solver.holdings.held_of(Symbol(symbol), asset) * prices.mid
        return total

    return Symbol(max(symbols, key=value))


def moved_weights(engine: Engine, symbol: Symbol) -> tuple[RebalanceWeight, ...]:
    """The basket's weights (by value at the mids), first half × 1.2, second half × 0.8."""
    basket = engine.baskets[symbol]
    half = len(basket.assets) // 2
    weights = []
    for i, asset in enumerate(basket.assets):
        prices = engine.market.prices(asset.instrument)
        mid = prices.mid if prices is not None and prices.mid is not None else Decimal(0)
        weights.append(
            RebalanceWeight(asset.instrument, asset.quantity * mid * (UP if i < half else DOWN))
        )
    return tuple(weights)


def report_line(report: RebalanceReport) -> str:
    reason = f" ({report.reason})" if report.reason else ""
    when = {"started": "started", "round": f"round {report.round}"}.get(
        report.kind, f"{report.kind} after {report.round} rounds"
    )
    return (
        f"rebalance {report.symbol} v{report.version} {when}: "
        f"progression {report.progression * 100:.2f}%, accuracy {report.accuracy * 100:.2f}%, "
        f"traded {report.traded} USDC, fees {report.fees}, slippage {report.slippage} "
        f"({report.cost_bps:.1f} bps), cash {report.cash}, left {report.left_value} USDC, "
        f"{report.orders} orders{reason}"
    )


def report_json(report: RebalanceReport) -> dict[str, str]:
    """The end report's headline figures for summary.json."""
    return {
        "kind": report.kind,
        "rounds": str(report.round),
        "progression": str(report.progression),
        "accuracy": str(report.accuracy),
        "traded": str(report.traded),
        "fees": str(report.fees),
        "slippage": str(report.slippage),
        "cost_bps": str(report.cost_bps),
        "cash": str(report.cash),
        "left_value": str(report.left_value),
        "reason": report.reason or "",
    }


def rebalance_summary(report: RebalanceReport) -> dict[str, object]:
    """summary.json's "rebalance" entry: the index, its new version and the last report."""
    return {"symbol": report.symbol, "version": report.version, **report_json(report)}


def run_rebalance(
    world: SimulatedWorld, console: Console, symbol: Symbol
) -> RebalanceReport | None:
    """Propose, run until the rebalance completes (or LIMIT), print; returns the last report."""
    seen = len(world.log.rebalances)
    world.submit(RebalanceIndex(symbol, "demo", moved_weights(world.engine, symbol)))
    end = world.clock.now() + LIMIT
    while world.clock.now() < end:
        world.advance(timedelta(seconds=1))
        if any(r.kind == "completed" for r in world.log.rebalances[seen:]):
            break
    return show_reports(console, symbol, world.log.rebalances[seen:])


async def run_service_rebalance(
    service: Service, symbols: tuple[str, ...]
) -> tuple[Symbol, list[RebalanceReport]]:
    """The same step on a running service: its engine is read between steps (runtime.quiet),
    the proposal goes in as any input, its reports are seen as the runtime carries them out.
    Waits at most SERVICE_LIMIT wall seconds; the index and its reports (show_reports)."""
    import asyncio

    runtime = service.runtime
    await runtime.quiet()
    symbol = busiest(service.engine, symbols)
    reports: list[RebalanceReport] = []

    def observe(command: object) -> None:
        if isinstance(command, RebalanceReport) and command.symbol == symbol:
            reports.append(command)

    runtime.observers.append(observe)
    try:
        await runtime.put(RebalanceIndex(symbol, "demo", moved_weights(service.engine, symbol)))
        loop = asyncio.get_running_loop()
        end = loop.time() + SERVICE_LIMIT
        while loop.time() < end and not any(r.kind == "completed" for r in reports):
            await asyncio.sleep(0.05)
    finally:
        runtime.observers.remove(observe)
    return symbol, reports


def show_reports(
    console: Console, symbol: Symbol, reports: list[RebalanceReport]
) -> RebalanceReport | None:
    """Print each report as a line and the last one as a per-asset table; the last report
    (None, said so, when there is none)."""
    heading(console, HEADING.format(symbol=symbol))
    if not reports:
        console.print(f"rebalance {symbol}: no report")
        return None
    for report in reports:
        console.print(report_line(report))
    last = reports[-1]
    table = Table(title=f"rebalance of {symbol} to basket version {last.version}")
    for column in ("asset", "target", "held", "left", "bought", "sold", "crossed", "fees"):
        table.add_column(column, justify="left" if column == "asset" else "right")
    for line in last.assets:
        table.add_row(
            line.instrument.pair,
            f"{line.target:.8f}",
            f"{line.held:.8f}",
            f"{line.left:.8f}",
            f"{line.bought:.8f}",
            f"{line.sold:.8f}",
            f"{line.crossed:.8f}",
            str(round_usdc(line.fees)),
        )
    show_table(console, table)
    return last
