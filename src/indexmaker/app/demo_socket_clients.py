"""The clients of `indexmaker demo` over sockets (app/demo_sockets.py): each an SDK user
over WebSockets with its own throw-away wallet, quoting, depositing through POST
/sim/deposit, ordering, and now and then amending, cancelling, replaying an id or losing its
connection; what they saw is counted in `SocketStats`."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from indexmaker.app.demo_common import DEMO_INDEXES, ZERO, minted_line, order_sizes

SOCKET_DEMO_DEADLINE = 50.0  # seconds of wall time for every client to finish
OUTAGE_LIMIT = 20.0  # seconds the dropped client waits for something to be resent to it

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


async def run_demo_client(
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
