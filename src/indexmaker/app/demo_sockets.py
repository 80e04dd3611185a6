"""`indexmaker demo` over real sockets (the default since issue 3).

The whole service on 127.0.0.1 with an ephemeral port and fast simulated delays, and the
clients as SDK users over WebSockets, depositing through POST /sim/deposit. The venue is the
Binance connector trading on `exchange-sim` started as a child process (the seed's "solver
with live market data": the simulator's books move while the batches are priced and filled;
stopped by PID at the end), or with `venue="sim"` the in-process simulated venue. Wall-clock
time, so figures vary run to run. The in-process, simulated-time demo is demo.py.
"""

from __future__ import annotations

import json
import random
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from indexmaker.app.demo_common import (
    DEMO_INDEXES,
    ZERO,
    LiveView,
    demo_console,
    heading,
    invoice_json,
    issuer_line,
    issuer_summary,
    show_table,
    summary_table,
)
from indexmaker.app.demo_rebalance import (
    rebalance_summary,
    run_service_rebalance,
    show_reports,
)
from indexmaker.app.demo_socket_clients import (
    SOCKET_DEMO_DEADLINE,
    ClientRun,
    SocketStats,
    run_demo_client,
)
from indexmaker.core.ids import client_key
from indexmaker.engine.economics import issuer_position

if TYPE_CHECKING:
    from indexmaker.app.service import Service

BOOKS_WAIT = 20.0  # seconds the demo waits for every book before its clients start
# The simulator's market for the demo: only the demo's pairs, moving 4 times a second. Its
# order limits are raised as the in-process venue's are (solver.order_rate_limits below): a
# batch is one order per asset (105), Binance's 50 per 10 s would make the demo minutes long.
DEMO_EXCHANGE_SIM = (
    "--indexes",
    ",".join(DEMO_INDEXES),
    "--updates-per-second",
    "4",
    "--orders-10s",
    "100000",
    "--weight-limit",
    "600000",
)


def socket_demo_config(indexes: tuple[str, ...] = DEMO_INDEXES) -> Any:
    """The service on an ephemeral loopback port with fast simulated peers."""
    from dataclasses import replace

    from indexmaker.app.config import ServiceConfig, SimConfig
    from indexmaker.engine.config import SolverConfig
    from indexmaker.engine.throttle import RateLimit
    from indexmaker.server.ws_server import ServerConfig

    base = ServiceConfig()
    return replace(
        base,
        indexes=indexes,
        server=ServerConfig(host="127.0.0.1", port=0),
        solver=SolverConfig(
            mint_idle=timedelta(milliseconds=500),
            collateral_timeout=timedelta(seconds=60),
            # The simulator is not Binance: let batches of 105 assets go every tick.
            order_rate_limits=(RateLimit("ORDERS_10S", 100_000, timedelta(seconds=10)),),
            # The demo's rebalance (issue 12): a round a second, not a minute.
            rebalance_interval=timedelta(seconds=1),
        ),
        sim=SimConfig(
            book_refresh=timedelta(seconds=1),
            exchange_latency=timedelta(milliseconds=5),
            bridge_delay=timedelta(milliseconds=150),
            wallet_delay=timedelta(milliseconds=100),
            mint_delay=timedelta(milliseconds=50),
            deposit_endpoint=True,  # the demo is the sim mode: clients fund themselves
        ),
    )


def run_socket_demo(
    seed: int = 7,
    clients: int = 12,
    out_dir: Path = Path("out"),
    console: Console | None = None,
    venue: str = "binance",
) -> dict[str, Any]:
    """Run the demo and return its summary (also written to `out_dir`/summary.json).

    `venue`: "binance" (the connector on an exchange-sim child process) or "sim"."""
    import asyncio
    import logging

    logger = logging.getLogger("indexmaker")
    level = logger.level
    logger.setLevel(logging.ERROR)  # the service's own logs would drown the progress view
    try:
        return asyncio.run(_socket_demo(seed, clients, out_dir, console or demo_console(), venue))
    finally:
        logger.setLevel(level)


async def _socket_demo(
    seed: int, clients: int, out_dir: Path, console: Console, venue_kind: str
) -> dict[str, Any]:

    from indexmaker.app.service import Service, index_pairs

    started = time.perf_counter()
    exchange_sim = None
    venue = None
    if venue_kind == "binance":
        from indexmaker.app.binance_wiring import binance_venue

        venue, exchange_sim = binance_venue(index_pairs(DEMO_INDEXES), DEMO_EXCHANGE_SIM)
    try:
        service = Service(socket_demo_config(), venue=venue)
        where = (
            f"Binance connector on exchange-sim {exchange_sim.url} (pid {exchange_sim.process.pid})"
            if exchange_sim is not None
            else "in-process simulated venue"
        )
        return await _run_service_demo(service, where, seed, clients, out_dir, console, started)
    finally:
        if exchange_sim is not None:
            exchange_sim.stop()


async def _run_service_demo(
    service: Service,
    where: str,
    seed: int,
    clients: int,
    out_dir: Path,
    console: Console,
    started: float,
) -> dict[str, Any]:
    import asyncio

    rng = random.Random(seed)
    await service.start()
    assets = len({a.instrument for b in service.engine.baskets.values() for a in b.assets})
    for _ in range(int(BOOKS_WAIT / 0.05)):  # bounded: the clients quote on these books
        if service.runtime.books_seen() >= assets:
            break
        await asyncio.sleep(0.05)
    books_at = time.perf_counter() - started
    book_events_before = service.runtime.book_events
    url = service.server.url
    stats = SocketStats()
    outbox = service.server.hub.outbox

    def held_after(chain_id: int, address: str, server_seq: int) -> int:
        return outbox.held_after(client_key(chain_id, address), server_seq)

    runs = [ClientRun(n) for n in range(clients)]
    heading(
        console,
        f"[bold]Index Maker demo over WebSockets[/] — {url}, {clients} SDK clients, "
        f"indexes {', '.join(DEMO_INDEXES)}",
    )
    console.print(
        f"venue: {where}; {service.runtime.books_seen()} of {assets} order books live "
        f"after {books_at:.1f} s"
    )
    try:
        with LiveView(console, _socket_progress(stats, started)) as live:
            tasks = [
                asyncio.create_task(
                    run_demo_client(
                        url,
                        service.signer.address,
                        run,
                        seed,
                        random.Random(rng.random()),
                        stats,
                        n == clients - 1,
                        held_after,
                    )
                )
                for n, run in enumerate(runs)
            ]
            done = asyncio.ensure_future(asyncio.wait(tasks, timeout=SOCKET_DEMO_DEADLINE))
            while not done.done():
                await asyncio.sleep(0.125)
                for line in stats.events:
                    live.print(line)
                stats.events.clear()
                live.update(_socket_progress(stats, started))
            _, late = done.result()
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for line in stats.events:
                live.print(line)
            live.update(_socket_progress(stats, started))
        elapsed_trading = time.perf_counter() - started - books_at
        book_events = service.runtime.book_events - book_events_before
        # The issuer's position after the buys, before the rebalance trades the holdings.
        await service.runtime.quiet()
        invoices = [inv for run in runs for inv in run.invoices]
        delivered = sum((inv.assets_value for inv in invoices), ZERO)
        engine = service.engine
        issuer = issuer_summary(issuer_position(engine.inventory, engine.market), delivered)
        # Issue 12: after the buys, the curator reweights the index holding the most.
        rebalanced, reports = await run_service_rebalance(service, DEMO_INDEXES)
    finally:
        await service.stop()
    missing = [cid for run in runs for cid in run.missing]
    table = summary_table(
        ("client", "deposited", "orders", "mints", "paid", "returned", "fees", "index units")
    )
    rows = []
    for run in runs:
        units: dict[str, Decimal] = {}
        for inv in run.invoices:
            units[inv.symbol] = units.get(inv.symbol, ZERO) + inv.filled_quantity
        paid = sum((inv.amount_paid for inv in run.invoices), ZERO)
        returned = sum((inv.amount_remaining for inv in run.invoices), ZERO)
        fees = sum((inv.management_fee + inv.exchange_fee for inv in run.invoices), ZERO)
        table.add_row(
            run.address[:10] + "…",
            f"{run.deposited:,.2f}",
            str(run.orders),
            str(len(run.invoices)),
            f"{paid:,.2f}",
            f"{returned:,.2f}",
            f"{fees:,.2f}",
            ", ".join(f"{q:.6f} {s}" for s, q in units.items()) or "-",
        )
        rows.append(
            {
                "client": run.address,
                "deposited": str(run.deposited),
                "orders": run.orders,
                "invoices": len(run.invoices),
                "paid": str(paid),
                "returned": str(returned),
                "minted": {s: str(q) for s, q in units.items()},
                "notes": run.notes,
            }
        )
    show_table(console, table)
    console.print(issuer_line(issuer))
    console.print(
        f"market: {book_events:,} book snapshots and updates applied while the clients traded "
        f"({book_events / max(elapsed_trading, 0.001):,.0f}/s over {len(service.engine.baskets)} "
        f"indexes' {assets} books)"
    )
    rebalance = show_reports(console, rebalanced, reports)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "invoices.json"
    path.write_text(json.dumps([_sdk_invoice_json(i) for i in invoices], indent=2))
    elapsed = time.perf_counter() - started
    ok = not missing and stats.inconsistent == 0
    summary = {
        "ok": ok,
        "mode": "sockets",
        "url": url,
        "clients": rows,
        "invoices": len(invoices),
        "missing_invoices": missing,
        "inconsistent_invoices": stats.inconsistent,
        "reconnects": stats.reconnects,
        "resent_messages": stats.resent,
        "seconds": round(elapsed, 1),
        "venue": where,
        "book_events": book_events,
        "issuer": issuer,
    }
    if rebalance is not None:
        summary["rebalance"] = rebalance_summary(rebalance)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    verdict = (
        "[green]all invoices consistent[/]"
        if ok
        else f"[red]missing {missing}, {stats.inconsistent} inconsistent[/]"
    )
    console.print(
        f"{len(invoices)} mint invoices written to [bold]{path}[/]; {stats.orders_sent} orders, "
        f"{stats.fills} fills, {stats.reconnects} reconnect(s) with {stats.resent} message(s) "
        f"resent; {verdict}; service stopped; {elapsed:.1f} s"
    )
    return summary


def _socket_progress(stats: SocketStats, started: float) -> Table:
    table = Table(title=f"wall time {time.perf_counter() - started:.1f} s", show_header=False)
    table.add_row(
        "clients connected / deposits / quotes",
        f"{stats.connected} / {stats.deposits} / {stats.quotes}",
    )
    table.add_row(
        "orders sent / accepted / rejected / canceled",
        f"{stats.orders_sent} / {stats.accepted} / {stats.rejected} / {stats.canceled}",
    )
    table.add_row("fill reports received", str(stats.fills))
    table.add_row("minted (invoices received)", str(stats.minted))
    table.add_row("reconnects / messages resent", f"{stats.reconnects} / {stats.resent}")
    return table


def _sdk_invoice_json(invoice: Any) -> dict[str, Any]:
    lots = (
        (lot.symbol, lot.lot_id, lot.price, lot.assigned_quantity, lot.assigned_fee)
        for lot in invoice.lots
    )
    return invoice_json(invoice, lots, invoice.minted_at)
