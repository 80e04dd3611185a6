"""`indexmaker demo`: a realistic trading session on the simulated adapters.

Three published indexes (SY100 with 81 assets, SYAI, SYL2) on synthetic Binance-like books
that move every 30 simulated seconds; a dozen clients deposit USDC on the source chain,
send dozens of orders of very different sizes (plus amendments, cancels, a replay and an
order whose collateral never comes), and the solver batches, fills and mints them. Time is
simulated and exact: the same seed gives the same session, figure for figure.

`indexmaker demo --in-process` runs this; the default socket demo is demo_sockets.py.
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
from indexmaker.app.demo_rebalance import busiest, rebalance_summary, run_rebalance
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
from indexmaker.engine.economics import issuer_position
from indexmaker.engine.engine import EngineSetup
from indexmaker.model.index import load_bundled_index
from indexmaker.model.side import Side
from indexmaker.sim.chain import BridgeTerms, SimulatedChain
from indexmaker.sim.exchange import SimulatedExchange
from indexmaker.sim.market import MarketSimulator, reference_prices
from indexmaker.sim.world import SimulatedWorld

SESSION = timedelta(hours=2)
BOOK_REFRESH = timedelta(seconds=30)


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
        for k, size in enumerate(order_sizes(rng, wealth)):
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
    console = console or demo_console()
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
    heading(
        console,
        f"[bold]Index Maker demo[/] — {len(DEMO_INDEXES)} indexes, "
        f"{sum(len(b.assets) for b in baskets.values())} assets, {clients} clients",
    )
    with LiveView(console, _progress(world, stats)) as live:
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
                live.print(line)
            stats.events.clear()
            live.update(_progress(world, stats))
        live.update(_progress(world, stats))
    summary = _summary(world, keys, invoices)
    show_table(console, _summary_table(summary))
    console.print(issuer_line(summary["issuer"]))
    # Issue 12: after the buys, the curator reweights an index and its holdings follow.
    report = run_rebalance(world, console, busiest(world.engine, DEMO_INDEXES))
    if report is not None:
        summary["rebalance"] = rebalance_summary(report)
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
            stats.events.append(minted_line(message, who))


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
    engine = world.engine
    delivered = sum((invoice.assets_value for invoice in invoices), ZERO)
    issuer = issuer_summary(issuer_position(engine.inventory, engine.market), delivered)
    return {"clients": rows, "invoices": len(invoices), "issuer": issuer}


def _summary_table(summary: dict[str, Any]) -> Table:
    table = summary_table(
        ("client", "deposited", "fees", "spent", "unspent", "mints", "index units")
    )
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
    lots = ((lot.asset.pair, lot.lot_id, lot.price, lot.quantity, lot.fee) for lot in invoice.lots)
    return invoice_json(invoice, lots, rfc3339(invoice.timestamp))
