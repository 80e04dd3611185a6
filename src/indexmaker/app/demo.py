"""`indexmaker demo`: a realistic trading session on the simulated adapters.

Three published indexes (SY100 with 81 assets, SYAI, SYL2) on synthetic Binance-like books
that move every 30 simulated seconds; a dozen clients deposit USDC on the source chain,
send dozens of orders of very different sizes (plus amendments, cancels, a replay and an
order whose collateral never comes), and the solver batches, fills and mints them. Time is
simulated and exact: the same seed gives the same session, figure for figure.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from indexmaker.core.clock import ManualClock, rfc3339
from indexmaker.core.events import (
    CancelIndexOrderRequest,
    Command,
    EngineInput,
    IndexOrderFill,
    MintInvoice,
    NewIndexOrderRequest,
    NewIndexOrderResponse,
    NewQuoteRequest,
    RequestStatus,
    SendToClient,
)
from indexmaker.core.ids import ClientKey, ClientOrderId, ClientQuoteId, Symbol, client_key
from indexmaker.core.money import round_usdc
from indexmaker.engine.engine import EngineSetup
from indexmaker.model.index import load_bundled_index
from indexmaker.model.side import Side
from indexmaker.sim.chain import BridgeTerms, SimulatedChain
from indexmaker.sim.exchange import SimulatedExchange
from indexmaker.sim.market import MarketSimulator, reference_prices
from indexmaker.sim.world import SimulatedWorld

DEMO_INDEXES = ("SY100", "SYAI", "SYL2")
SESSION = timedelta(hours=2)
BOOK_REFRESH = timedelta(seconds=30)
ZERO = Decimal(0)


@dataclass(slots=True)
class Action:
    at: timedelta
    event: EngineInput | None = None
    deposit: tuple[ClientKey, Decimal] | None = None
    label: str = ""


@dataclass(slots=True)
class DemoStats:
    orders_sent: int = 0
    accepted: int = 0
    rejected: int = 0
    fills: int = 0
    minted: int = 0
    batches: int = 0
    exchange_orders: int = 0
    notional: Decimal = ZERO
    events: list[str] = field(default_factory=list)


def client_address(n: int) -> str:
    return "0x" + f"{n + 1:02x}" * 20


def build_session(rng: random.Random, clients: list[ClientKey]) -> list[Action]:
    """A session's timeline: deposits, then orders of log-uniform size, amendments, cancels."""
    actions: list[Action] = []
    order_no = 0
    for n, client in enumerate(clients):
        start = timedelta(seconds=rng.randint(0, 3600))
        wealth = Decimal(int(10 ** rng.uniform(2.7, 4.8)))  # ~500 to ~60,000 USDC
        if n == len(clients) - 1:
            # This client's collateral never arrives: its order expires after 30 minutes.
            actions.append(_order(start, client, "never-funded", "SYAI", Decimal(2500)))
            continue
        actions.append(Action(start, deposit=(client, wealth), label="deposit"))
        budget = wealth
        for k in range(rng.randint(2, 5)):
            if budget < 100:
                break
            size = min(budget, Decimal(int(budget * Decimal(rng.uniform(0.2, 0.7)))) + 50)
            budget -= size
            order_no += 1
            symbol = rng.choice(DEMO_INDEXES) if k == 0 else actions[-1].label or "SY100"
            at = start + timedelta(seconds=rng.randint(5, 900) * (k + 1))
            actions.append(_order(at, client, f"o{order_no}", symbol, size))
        if n % 4 == 1:
            # An amendment that is cancelled again before it can be engaged.
            last = [a for a in actions if a.event is not None and a.label][-1]
            assert isinstance(last.event, NewIndexOrderRequest)
            actions.append(_cancel(last.at + timedelta(seconds=1), client, last.event, Decimal(50)))
        if n % 5 == 2:
            # A replay of an id already used: refused, changes nothing.
            first = next(
                a
                for a in actions
                if isinstance(a.event, NewIndexOrderRequest) and a.event.client == client
            )
            actions.append(Action(first.at + timedelta(minutes=5), first.event, label="replay"))
        actions.append(
            Action(
                start + timedelta(seconds=30),
                NewQuoteRequest(client, ClientQuoteId(f"q{n}"), Symbol("SY100"), Side.BUY, wealth),
            )
        )
    return sorted(actions, key=lambda a: a.at)


def _order(at: timedelta, client: ClientKey, cid: str, symbol: str, amount: Decimal) -> Action:
    request = NewIndexOrderRequest(client, ClientOrderId(cid), Symbol(symbol), Side.BUY, amount)
    return Action(at, request, label=symbol)


def _cancel(
    at: timedelta, client: ClientKey, order: NewIndexOrderRequest, amount: Decimal
) -> Action:
    request = CancelIndexOrderRequest(client, order.client_order_id, order.symbol, amount)
    return Action(at, request, label="")


def run_demo(
    seed: int = 7, clients: int = 12, out_dir: Path = Path("out"), console: Console | None = None
) -> dict[str, Any]:
    console = console or Console()
    rng = random.Random(seed)
    baskets = {s: load_bundled_index(s) for s in DEMO_INDEXES}
    market = MarketSimulator(reference_prices(baskets.values()), rng)
    exchange = SimulatedExchange(market.books(), rules=market.rules)
    chain = SimulatedChain(
        bridges={
            "across": BridgeTerms(Decimal("0.10"), Decimal("0.0004"), timedelta(seconds=6)),
            "wallet": BridgeTerms(Decimal("0.01"), ZERO, timedelta(seconds=20)),
        }
    )
    setup = EngineSetup(baskets=baskets, rules=market.rules)
    world = SimulatedWorld(setup, exchange, chain, ManualClock())
    keys = [client_key(42161, client_address(n)) for n in range(clients)]
    timeline = build_session(rng, keys)
    stats = DemoStats()
    invoices: list[MintInvoice] = []
    world.on_command = lambda command: _observe(command, stats, invoices)
    start_real = time.perf_counter()
    start_sim = world.clock.now()
    console.rule(
        f"[bold]Index Maker demo[/] — {len(DEMO_INDEXES)} indexes, "
        f"{sum(len(b.assets) for b in baskets.values())} assets, {clients} clients"
    )
    with Live(_progress(world, stats), console=console, refresh_per_second=8) as live:
        pending = list(timeline)
        next_refresh = BOOK_REFRESH
        while True:
            elapsed = world.clock.now() - start_sim
            while pending and pending[0].at <= elapsed:
                _perform(world, pending.pop(0), stats)
            if elapsed >= next_refresh:
                next_refresh += BOOK_REFRESH
                for snapshot in exchange.replace_books(market.step()):
                    world.submit(snapshot)
            if not pending and world.idle() and not world.engine.batches.open_batches():
                break
            if elapsed > SESSION + timedelta(hours=1):
                break
            world.advance(timedelta(seconds=1))
            for line in stats.events:
                live.console.print(line)
            stats.events.clear()
            live.update(_progress(world, stats))
        live.update(_progress(world, stats))
    summary = _summary(world, keys, invoices)
    console.print(_summary_table(summary))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "invoices.json"
    path.write_text(json.dumps([_invoice_json(i) for i in invoices], indent=2))
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(
        f"{len(invoices)} mint invoices written to [bold]{path}[/]; "
        f"{stats.batches} batches, {stats.exchange_orders} exchange orders; "
        f"simulated {world.clock.now() - start_sim} in {time.perf_counter() - start_real:.1f} s"
    )
    return summary


def _perform(world: SimulatedWorld, action: Action, stats: DemoStats) -> None:
    if action.deposit is not None:
        world.deposit(*action.deposit)
    elif action.event is not None:
        if isinstance(action.event, NewIndexOrderRequest):
            stats.orders_sent += 1
        world.submit(action.event)


def _observe(command: Command, stats: DemoStats, invoices: list[MintInvoice]) -> None:
    from indexmaker.core.events import BatchEvent, PlaceExchangeOrder

    if isinstance(command, PlaceExchangeOrder):
        stats.exchange_orders += 1
    elif isinstance(command, BatchEvent) and command.kind == "created":
        stats.batches += 1
        stats.notional += command.notional
    elif isinstance(command, SendToClient):
        message = command.message
        who = command.client[1][:10]
        if isinstance(message, NewIndexOrderResponse):
            if message.status is RequestStatus.NEW:
                stats.accepted += 1
            else:
                stats.rejected += 1
                stats.events.append(
                    f"[red]rejected[/] {who} {message.client_order_id}: {message.reason}"
                )
        elif isinstance(message, IndexOrderFill):
            stats.fills += 1
        elif isinstance(message, MintInvoice):
            stats.minted += 1
            invoices.append(message)
            stats.events.append(
                f"[green]minted[/] {message.filled_quantity:.8f} {message.symbol} to {who}… "
                f"({message.client_order_id}): paid {message.amount_paid:,.2f}, "
                f"fees {message.management_fee + message.exchange_fee:,.2f}, "
                f"fill rate {message.fill_rate * 100:.4f}%"
            )


def _progress(world: SimulatedWorld, stats: DemoStats) -> Table:
    engine = world.engine
    table = Table(title=f"simulated time {rfc3339(world.clock.now())}", show_header=False)
    table.add_row(
        "orders sent / accepted / rejected",
        f"{stats.orders_sent} / {stats.accepted} / {stats.rejected}",
    )
    table.add_row("open updates", str(engine.orders.open_count()))
    table.add_row(
        "batches formed / open", f"{stats.batches} / {len(engine.batches.open_batches())}"
    )
    table.add_row("exchange orders sent", str(stats.exchange_orders))
    table.add_row("fill reports", str(stats.fills))
    table.add_row("minted", str(stats.minted))
    table.add_row("batched notional (USDC)", f"{round_usdc(stats.notional):,}")
    return table


def _summary(
    world: SimulatedWorld, keys: list[ClientKey], invoices: list[MintInvoice]
) -> dict[str, Any]:
    collateral = world.engine.collateral
    rows = []
    by_client: dict[str, list[MintInvoice]] = {}
    owner = {m.client_order_id: c for c, m in world.log.messages if isinstance(m, MintInvoice)}
    for invoice in invoices:
        by_client.setdefault(owner[invoice.client_order_id][1], []).append(invoice)
    for key in keys:
        ledger = collateral.ledger(key)
        mine = by_client.get(key[1], [])
        minted = {
            symbol: str(quantity)
            for (client, symbol), quantity in world.chain.minted.items()
            if client == key
        }
        rows.append(
            {
                "client": key[1],
                "deposited": str(ledger.deposited),
                "routing_fees": str(ledger.fees),
                "spent": str(round_usdc(ledger.spent)),
                "unspent": str(round_usdc(collateral.unspent(key))),
                "invoices": len(mine),
                "minted": minted,
            }
        )
    return {"clients": rows, "invoices": len(invoices)}


def _summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title="Session summary (USDC, 2 decimals shown; exact figures in the files)")
    for column in ("client", "deposited", "fees", "spent", "unspent", "mints", "index units"):
        table.add_column(column, justify="left" if column in ("client", "index units") else "right")
    for row in summary["clients"]:
        minted = ", ".join(f"{Decimal(q):.6f} {s}" for s, q in row["minted"].items()) or "-"
        table.add_row(
            row["client"][:8] + "…",
            f"{Decimal(row['deposited']):,.2f}",
            f"{Decimal(row['routing_fees']):,.2f}",
            f"{Decimal(row['spent']):,.2f}",
            f"{Decimal(row['unspent']):,.2f}",
            str(row["invoices"]),
            minted,
        )
    return table


def _invoice_json(invoice: MintInvoice) -> dict[str, Any]:
    return {
        "client_order_id": invoice.client_order_id,
        "payment_id": invoice.payment_id,
        "symbol": invoice.symbol,
        "filled_quantity": str(invoice.filled_quantity),
        "total_amount": str(invoice.total_amount),
        "amount_paid": str(invoice.amount_paid),
        "amount_remaining": str(invoice.amount_remaining),
        "management_fee": str(invoice.management_fee),
        "assets_value": str(invoice.assets_value),
        "exchange_fee": str(invoice.exchange_fee),
        "fill_rate": str(invoice.fill_rate),
        "lots": [
            {
                "asset": lot.asset,
                "lot_id": lot.lot_id,
                "price": str(lot.price),
                "quantity": str(lot.quantity),
                "fee": str(lot.fee),
            }
            for lot in invoice.lots
        ],
        "timestamp": rfc3339(invoice.timestamp),
    }


# ---------------------------------------------------------------- over real sockets
#
# `indexmaker demo` (the default since issue 3): the whole service on 127.0.0.1 with an
# ephemeral port and fast simulated delays, and the clients as SDK users over WebSockets,
# depositing through POST /sim/deposit. Wall-clock time, so figures vary run to run.

SOCKET_DEMO_DEADLINE = 50.0  # seconds of wall time for every client to finish


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
        ),
    )


def run_socket_demo(
    seed: int = 7, clients: int = 12, out_dir: Path = Path("out"), console: Console | None = None
) -> dict[str, Any]:
    import asyncio
    import logging

    logger = logging.getLogger("indexmaker")
    level = logger.level
    logger.setLevel(logging.ERROR)  # the service's own logs would drown the progress view
    try:
        return asyncio.run(_socket_demo(seed, clients, out_dir, console or Console()))
    finally:
        logger.setLevel(level)


async def _socket_demo(seed: int, clients: int, out_dir: Path, console: Console) -> dict[str, Any]:
    import asyncio

    from indexmaker.app.service import Service

    started = time.perf_counter()
    rng = random.Random(seed)
    service = Service(socket_demo_config())
    await service.start()
    url = service.server.url
    stats = SocketStats()
    runs = [ClientRun(n) for n in range(clients)]
    console.rule(
        f"[bold]Index Maker demo over WebSockets[/] — {url}, {clients} SDK clients, "
        f"indexes {', '.join(DEMO_INDEXES)}"
    )
    try:
        with Live(_socket_progress(stats, started), console=console, refresh_per_second=8) as live:
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
                    )
                )
                for n, run in enumerate(runs)
            ]
            done = asyncio.ensure_future(asyncio.wait(tasks, timeout=SOCKET_DEMO_DEADLINE))
            while not done.done():
                await asyncio.sleep(0.125)
                for line in stats.events:
                    live.console.print(line)
                stats.events.clear()
                live.update(_socket_progress(stats, started))
            _, late = done.result()
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for line in stats.events:
                live.console.print(line)
            live.update(_socket_progress(stats, started))
    finally:
        await service.stop()
    invoices = [inv for run in runs for inv in run.invoices]
    missing = [cid for run in runs for cid in run.missing]
    table = Table(title="Session summary (USDC, 2 decimals shown; exact figures in the files)")
    for column in (
        "client",
        "deposited",
        "orders",
        "mints",
        "paid",
        "returned",
        "fees",
        "index units",
    ):
        table.add_column(column, justify="left" if column in ("client", "index units") else "right")
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
    console.print(table)
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


async def _demo_client(
    url: str,
    server_address: str,
    run: ClientRun,
    seed: int,
    rng: random.Random,
    stats: SocketStats,
    never_funded: bool,
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
        symbol = rng.choice(DEMO_INDEXES)
        for k in range(rng.randint(2, 5)):
            if budget < 100:
                break
            size = min(budget, Decimal(int(budget * Decimal(rng.uniform(0.2, 0.7)))) + 50)
            budget -= size
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
            if run.n == 3 and k == 0:
                # Network trouble mid-order: the SDK reconnects and resumes, losing nothing.
                await asyncio.sleep(0.3)
                await client.drop_connection()
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
            stats.events.append(
                f"[green]minted[/] {invoice.filled_quantity:.8f} {invoice.symbol} to {who}… "
                f"({cid}): paid {invoice.amount_paid:,.2f}, fees "
                f"{invoice.management_fee + invoice.exchange_fee:,.2f}, fill rate "
                f"{invoice.fill_rate * 100:.4f}%"
            )
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
    return {
        "client_order_id": invoice.client_order_id,
        "payment_id": invoice.payment_id,
        "symbol": invoice.symbol,
        "filled_quantity": str(invoice.filled_quantity),
        "total_amount": str(invoice.total_amount),
        "amount_paid": str(invoice.amount_paid),
        "amount_remaining": str(invoice.amount_remaining),
        "management_fee": str(invoice.management_fee),
        "assets_value": str(invoice.assets_value),
        "exchange_fee": str(invoice.exchange_fee),
        "fill_rate": str(invoice.fill_rate),
        "lots": [
            {
                "asset": lot.symbol,
                "lot_id": lot.lot_id,
                "price": str(lot.price),
                "quantity": str(lot.assigned_quantity),
                "fee": str(lot.assigned_fee),
            }
            for lot in invoice.lots
        ],
        "timestamp": invoice.minted_at,
    }
