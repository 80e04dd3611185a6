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
from collections.abc import Callable
from dataclasses import dataclass, field
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
    minted_line,
    order_sizes,
    show_table,
    summary_table,
)
from indexmaker.core.ids import client_key
from indexmaker.engine.economics import issuer_position

if TYPE_CHECKING:
    from indexmaker.app.service import Service

SOCKET_DEMO_DEADLINE = 50.0  # seconds of wall time for every client to finish
BOOKS_WAIT = 20.0  # seconds the demo waits for every book before its clients start
OUTAGE_LIMIT = 20.0  # seconds the dropped client waits for something to be resent to it
# The simulator's market for the demo: only the demo's pairs, moving 4 times a second. Its
# order limits are raised as the in-process venue's are (solver.order_rate_limits below): a
# batch is one order per asset (123), Binance's 50 per 10 s would make the demo minutes long.
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

# (chain id, address, server_seq) -> how many stored responses the server holds beyond it
HeldAfter = Callable[[int, str, int], int]


@dataclass(slots=True)
class SocketStats:
    connected: int = 0
    deposits: int = 0
    quotes: int = 0
    orders_sent: int = 0
    accepted: int = 0
    rejected: int = 0
    canceled: int = 0
    fills: int = 0
    minted: int = 0
    reconnects: int = 0
    resent: int = 0
    naks: int = 0
    inconsistent: int = 0
    events: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ClientRun:
    n: int
    address: str = ""
    deposited: Decimal = ZERO
    orders: int = 0
    invoices: list[Any] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def demo_private_key(seed: int, n: int) -> str:
    """A deterministic throw-away wallet key per demo client."""
    import hashlib

    return "0x" + hashlib.sha256(f"indexmaker-demo-{seed}-{n}".encode()).hexdigest()


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
            # The simulator is not Binance: let batches of 123 assets go every tick.
            order_rate_limits=(RateLimit("ORDERS_10S", 100_000, timedelta(seconds=10)),),
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
                    _demo_client(
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
    finally:
        elapsed_trading = time.perf_counter() - started - books_at
        await service.stop()
    invoices = [inv for run in runs for inv in run.invoices]
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
    engine = service.engine
    delivered = sum((inv.assets_value for inv in invoices), ZERO)
    issuer = issuer_summary(issuer_position(engine.inventory, engine.market), delivered)
    console.print(issuer_line(issuer))
    book_events = service.runtime.book_events - book_events_before
    console.print(
        f"market: {book_events:,} book snapshots and updates applied while the clients traded "
        f"({book_events / max(elapsed_trading, 0.001):,.0f}/s over {len(service.engine.baskets)} "
        f"indexes' {assets} books)"
    )
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


async def _outage(client: Any, cid: str, held_after: HeldAfter) -> bool:
    """Drop `client`'s connection and reconnect once the server holds a response for it
    beyond its cursor; False when `cid`'s invoice arrived first (nothing sure to come)."""
    import asyncio

    resend = False
    held = asyncio.Event()

    async def something_held() -> None:
        nonlocal resend
        try:
            cursor = client.last_server_seq or 0
            for _ in range(int(OUTAGE_LIMIT / 0.02)):  # bounded: at most OUTAGE_LIMIT s
                if cid in client.invoices:  # arrived just before the drop
                    return
                if held_after(client.chain_id, client.address, cursor) > 0:
                    resend = True
                    return
                await asyncio.sleep(0.02)
        finally:
            held.set()

    await client.drop_connection(something_held)
    await asyncio.wait_for(held.wait(), OUTAGE_LIMIT + 5)
    return resend


async def _demo_client(
    url: str,
    server_address: str,
    run: ClientRun,
    seed: int,
    rng: random.Random,
    stats: SocketStats,
    never_funded: bool,
    held_after: HeldAfter,
) -> None:
    """One client's session: quote, deposit, orders, and the odd amendment, cancel, replay."""
    import asyncio

    from indexmaker.server import client as sdk

    client = sdk.IndexMakerClient(
        url, demo_private_key(seed, run.n), server_address=server_address, request_timeout=20
    )
    run.address = client.address
    who = client.address[:10]

    def observe(event: sdk.Event) -> None:
        if isinstance(event, sdk.Fill) and not event.poss_dup:
            stats.fills += 1
        elif isinstance(event, sdk.ServerMessage) and event.poss_dup:
            stats.resent += 1
        elif isinstance(event, sdk.Connected) and event.session > 1:
            stats.reconnects += 1
            stats.events.append(
                f"[yellow]reconnected[/] {who}… resuming after server_seq {event.resumed_from}"
            )
        elif isinstance(event, sdk.Nak):
            stats.naks += 1

    client.on_event = observe
    await asyncio.sleep(rng.uniform(0, 1.5))
    await client.connect()
    stats.connected += 1
    try:
        wealth = Decimal(int(10 ** rng.uniform(2.7, 4.3)))  # ~500 to ~20,000 USDC
        quote = await client.quote("SY100", "buy", wealth)
        stats.quotes += 1
        stats.events.append(
            f"[cyan]quote[/] {who}… {wealth:,} USDC buys {quote.quantity_possible:.6f} SY100"
        )
        if never_funded:
            # Its collateral never comes: the order waits, and the client cancels it.
            response = await client.new_order("SYAI", "buy", Decimal(2500), "never-funded")
            stats.orders_sent += 1
            run.orders += 1
            stats.accepted += response.accepted
            await asyncio.sleep(2)
            cancel = await client.cancel("SYAI", "never-funded", Decimal(2500))
            stats.canceled += cancel.status == "canceled"
            run.notes.append(f"unfunded order canceled: {cancel.status}")
            stats.events.append(f"[magenta]canceled[/] {who}… never-funded: {cancel.status}")
            return
        await sdk.sim_deposit(url, client.address, wealth)
        run.deposited = wealth
        stats.deposits += 1
        budget = wealth * Decimal("0.9")  # routing fees come off the deposit
        waiting: list[str] = []
        resend_due = run.n == 3  # this client's network fails once, with something to resend
        symbol = rng.choice(DEMO_INDEXES)
        for k, size in enumerate(order_sizes(rng, budget)):
            symbol = rng.choice(DEMO_INDEXES) if k == 0 or rng.random() < 0.3 else symbol
            cid = f"c{run.n}-o{k + 1}"
            response = await client.new_order(symbol, "buy", size, cid)
            stats.orders_sent += 1
            run.orders += 1
            if response.accepted:
                stats.accepted += 1
                waiting.append(cid)
            else:
                stats.rejected += 1
                stats.events.append(f"[red]rejected[/] {who}… {cid}: {response.reason}")
            if resend_due and response.accepted and cid not in client.invoices:
                # Network trouble mid-order: the SDK reconnects and resumes, losing nothing.
                # The outage lasts until the server holds a response beyond the client's
                # cursor (its invoice is still to come), so the resume always resends one.
                resend_due = not await _outage(client, cid, held_after)
            await asyncio.sleep(rng.uniform(0.1, 1.0))
        if run.n % 4 == 1 and waiting:
            # An amendment, cancelled again before it can be engaged.
            amend = f"c{run.n}-amend"
            response = await client.new_order(symbol, "buy", Decimal(60), amend)
            stats.orders_sent += 1
            run.orders += 1
            stats.accepted += response.accepted
            cancel = await client.cancel(symbol, amend, Decimal(60))
            canceled = cancel.status == "canceled"
            stats.canceled += canceled
            if not canceled:  # it was engaged first after all: then it is minted
                waiting.append(amend)
            stats.events.append(f"[magenta]amendment {cancel.status}[/] {who}… {amend}")
        if run.n % 5 == 2 and waiting:
            replay = await client.new_order(symbol, "buy", Decimal(100), waiting[0])
            stats.orders_sent += 1
            stats.rejected += not replay.accepted
            run.notes.append(f"replayed id: {replay.status} ({replay.reason})")
            stats.events.append(f"[red]replay refused[/] {who}… {waiting[0]}: {replay.reason}")
        for cid in waiting:
            try:
                invoice = await client.wait_minted(cid, timeout=SOCKET_DEMO_DEADLINE)
            except TimeoutError:
                run.missing.append(cid)
                continue
            run.invoices.append(invoice)
            stats.minted += 1
            consistent = (
                invoice.total_amount
                == invoice.amount_paid + invoice.amount_remaining + invoice.management_fee
                and abs(invoice.amount_paid - invoice.assets_value - invoice.exchange_fee)
                <= Decimal("0.000001")
            )
            stats.inconsistent += not consistent
            stats.events.append(minted_line(invoice, who))
    finally:
        await client.close()


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
