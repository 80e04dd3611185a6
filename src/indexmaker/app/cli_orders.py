"""The `indexmaker` client commands' work once their input is checked (app/cli_client.py):
`quote`, `order` (and its `--wait` for the invoice or the rejection), `cancel`, `watch` and
the simulated chain's `deposit`, through the SDK (server/client.py). Each returns its exit
status; what the server refuses comes back to cli_client's runner as the SDK's errors."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import TYPE_CHECKING

from indexmaker.app.cli_client import CliError
from indexmaker.app.cli_output import order_text, print_event, save_invoices
from indexmaker.server.client_requests import parse_side

if TYPE_CHECKING:
    from indexmaker.server.client import Event, IndexMakerClient


async def deposit(args: argparse.Namespace) -> int:
    from indexmaker.server.client import sim_deposit

    result = await sim_deposit(args.url, args.address, args.amount, timeout=args.timeout)
    print(
        f"deposited {result['amount']} USDC to {result['address']} "
        f"(simulated chain, deposit #{result['seq_num']})"
    )
    return 0


async def quote(client: IndexMakerClient, args: argparse.Namespace) -> int:
    answer = await client.quote(args.symbol, args.side, args.amount)
    print(f"quote {answer.client_quote_id}: {order_text(args)}")
    print(f"  quantity_possible:     {answer.quantity_possible:f}")
    if answer.quantity_fillable_now is not None:
        print(f"  quantity_fillable_now: {answer.quantity_fillable_now:f}")
    if answer.index_price is not None:
        print(f"  index_price:           {answer.index_price:f}")
    if answer.expected_proceeds is not None:  # a sell's: USDC the units should pay
        print(f"  expected_proceeds:     {answer.expected_proceeds:f} USDC")
    return 0


async def order(client: IndexMakerClient, args: argparse.Namespace) -> int:
    from indexmaker.server.client import Ack, Invoice, Nak, OrderEnded, OrderResponse, new_id
    from indexmaker.server.client_redemption import RedemptionInvoice

    cid = args.client_order_id or new_id("o")

    def show(event: Event) -> None:
        if isinstance(event, Ack):
            print(f"ACK  seq {event.ref_seq_num}", flush=True)
        elif isinstance(event, Nak):
            print(f"NAK  seq {event.ref_seq_num}: {event.reason}", flush=True)
        elif getattr(event, "client_order_id", cid) != cid:
            return  # another order's news
        elif isinstance(event, OrderResponse):
            if event.accepted:
                # The reason of an accepted order is news: what it waits for, or why a sell
                # reduced less than asked (SPEC §3).
                why = f" ({event.reason})" if event.reason else ""
                print(f"accepted {cid}: {order_text(args)}{why}")
        elif not isinstance(event, Invoice | RedemptionInvoice):  # the end is printed below
            print_event(event, reconnecting=True)

    client.on_event = show
    try:
        response = await client.new_order(
            args.symbol, args.side, args.amount, cid, min_proceeds=args.min_proceeds
        )
        if not response.accepted:
            raise CliError(f"order {cid} rejected: {response.reason}")
        if not args.wait:
            print("(fills follow; `indexmaker watch` shows them, `--wait` waits for the invoice)")
            return 0
        selling = parse_side(args.side).value == "sell"
        wait = client.wait_redeemed if selling else client.wait_minted
        try:
            invoice: Invoice | RedemptionInvoice = await wait(cid, args.wait_timeout)
        except OrderEnded as ended:  # done as asked: it reduced the other side (SPEC §3)
            print(f"ended {cid}: {ended.reason}")
            return 0
    finally:
        client.on_event = None  # our own close at the end is no news
    print_event(invoice)
    if args.invoice_out is not None:
        save_invoices(args.invoice_out, [invoice])
    return 0


async def cancel(client: IndexMakerClient, args: argparse.Namespace) -> int:
    response = await client.cancel(args.symbol, args.client_order_id, args.amount)
    if response.status != "canceled":
        raise CliError(f"cancel of {response.client_order_id} rejected: {response.reason}")
    if response.reason:  # a sell's cancel says how many index units it took off
        print(f"canceled {response.client_order_id}: {response.reason}")
    else:
        print(f"canceled {args.amount} USDC of {response.client_order_id}")
    return 0


async def watch(client: IndexMakerClient, args: argparse.Namespace) -> int:
    from indexmaker.server.client import Invoice, ServerMessage

    print(f"watching {client.address} on {client.url} (Ctrl-C stops)", flush=True)
    skipped = 0
    invoices: list[Invoice] = []  # mint invoices seen, for --invoice-out

    async def loop() -> None:
        nonlocal skipped
        async for event in client.events():
            if isinstance(event, ServerMessage) and event.poss_dup and not args.history:
                skipped += 1
                continue
            tag = " (resent)" if isinstance(event, ServerMessage) and event.poss_dup else ""
            print_event(event, tag)
            if isinstance(event, Invoice) and args.invoice_out is not None:
                invoices.append(event)
                save_invoices(args.invoice_out, invoices)

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(loop(), args.duration)
    if skipped:
        print(f"({skipped} earlier messages not shown; --history shows them)")
    return 0
