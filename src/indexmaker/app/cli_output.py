"""How the `indexmaker` client commands print what the service answers: fill lines, a mint
invoice's figures, a field's text, an order named in its units (a buy in USDC, a sell in
index units, SPEC §3). Plain lines, whole, on a terminal or not."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexmaker.server.client_requests import parse_side

if TYPE_CHECKING:
    from indexmaker.server.client import Invoice


def fill_line(fill: Any) -> str:
    held = f"; waits: {fill.reason_code}: {fill.reason}" if getattr(fill, "reason", None) else ""
    return (
        f"fill {fill.client_order_id}: {fill.status}, filled {fill.filled_quantity:f}, "
        f"spent {fill.collateral_spent:f}, remaining {fill.collateral_remaining:f}, "
        f"fill rate {fill.fill_rate:f}{held}"
    )


# A mint Invoice's figures, in the order they are shown.
MINT_INVOICE_FIELDS = (
    "payment_id",
    "total_amount",
    "amount_paid",
    "assets_value",
    "exchange_fee",
    "management_fee",
    "amount_remaining",
    "fill_rate",
    "minted_at",
    "basket_version",
)


def field_text(value: Any) -> str:
    """A Decimal in plain notation ("0", not "0E-18"), anything else as it prints."""
    return f"{value:f}" if isinstance(value, Decimal) else str(value)


def print_fields(record: Any, names: tuple[str, ...]) -> None:
    """`  name: value` for each field of an invoice (mint or redemption), in `names` order."""
    for name in names:
        print(f"  {name}: {field_text(getattr(record, name))}")


def print_invoice(invoice: Invoice, tag: str = "") -> None:
    print(f"minted {invoice.filled_quantity} {invoice.symbol} for {invoice.client_order_id}{tag}")
    print_fields(invoice, MINT_INVOICE_FIELDS)
    fees = sum((lot.assigned_fee for lot in invoice.lots), Decimal(0))
    print(f"  lots: {len(invoice.lots)} (fees {fees:f})")
    # What `indexmaker verify-invoice` checks against the chain (none on the simulated chain).
    print(f"  invoice_hash: {invoice.invoice_hash or '(none: simulated chain)'}")
    print(f"  mint_tx_hash: {invoice.mint_tx_hash or '(none: simulated chain)'}", flush=True)


def print_event(event: Any, tag: str = "", reconnecting: bool = False) -> None:
    """One server event as `order --wait` and `watch` print it: fills, invoices (mint and
    redemption), order and cancel statuses, the connection's news; nothing for others.
    `tag` follows the first line (e.g. " (resent)"); `reconnecting`: say the SDK reconnects."""
    from indexmaker.app.cli_redeem import show_redemption_event
    from indexmaker.server.client import (
        CancelResponse,
        Connected,
        Disconnected,
        Fill,
        Invoice,
        OrderResponse,
        ServerRestarted,
        Unverified,
    )

    if isinstance(event, Fill):
        print(fill_line(event) + tag, flush=True)
    elif isinstance(event, Invoice):
        print_invoice(event, tag)
    elif show_redemption_event(event, tag):  # a sell's fills and invoice
        pass
    elif isinstance(event, OrderResponse | CancelResponse):
        what = "order" if isinstance(event, OrderResponse) else "cancel"
        why = f": {event.reason}" if event.reason else ""
        print(f"{what} {event.client_order_id} {event.status}{why}{tag}", flush=True)
    elif isinstance(event, Connected) and event.session > 1:
        print(f"reconnected; resumed after server_seq {event.resumed_from}", flush=True)
    elif isinstance(event, Disconnected | Unverified):
        again = " (reconnecting)" if reconnecting else ""
        print(f"{type(event).__name__.lower()}: {event.reason}{again}", flush=True)
    elif isinstance(event, ServerRestarted):
        print(
            f"server restarted: {event.reason}; what it held for a resend may be "
            "gone, so check open orders",
            flush=True,
        )


def save_invoices(path: Path, invoices: Sequence[Any]) -> None:
    """Write the invoices' bodies as received (one: the body; more: a list of them) to
    `path`, for `indexmaker verify-invoice FILE`; CliError naming the file when it cannot
    be written."""
    from indexmaker.app.cli_client import CliError

    bodies = [i.body for i in invoices]
    text = json.dumps(bodies[0] if len(bodies) == 1 else bodies, indent=2) + "\n"
    try:
        path.write_text(text)
    except OSError as exc:
        raise CliError(f"--invoice-out: cannot write {path} ({exc.strerror})", 2) from None
    print(f"  saved to {path} (indexmaker verify-invoice {path} checks it)", flush=True)


def order_text(args: argparse.Namespace) -> str:
    """`buy SY100 for 1000 USDC`, or `sell 0.5 SY100`: a sell names index units (SPEC §3)."""
    if parse_side(args.side).value == "sell":
        return f"sell {args.amount} {args.symbol}"
    return f"buy {args.symbol} for {args.amount} USDC"
