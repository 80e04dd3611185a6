"""How the `indexmaker` client commands print what the service answers: fill lines, a mint
invoice's figures, a field's text, an order named in its units (a buy in USDC, a sell in
index units, SPEC §3). Plain lines, whole, on a terminal or not."""

from __future__ import annotations

import argparse
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from indexmaker.server.client_requests import parse_side

if TYPE_CHECKING:
    from indexmaker.server.client import Invoice


def fill_line(fill: Any) -> str:
    return (
        f"fill {fill.client_order_id}: {fill.status}, filled {fill.filled_quantity:f}, "
        f"spent {fill.collateral_spent:f}, remaining {fill.collateral_remaining:f}, "
        f"fill rate {fill.fill_rate:f}"
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
    print(f"  lots: {len(invoice.lots)} (fees {fees:f})", flush=True)


def order_text(args: argparse.Namespace) -> str:
    """`buy SY100 for 1000 USDC`, or `sell 0.5 SY100`: a sell names index units (SPEC §3)."""
    if parse_side(args.side).value == "sell":
        return f"sell {args.amount} {args.symbol}"
    return f"buy {args.symbol} for {args.amount} USDC"
