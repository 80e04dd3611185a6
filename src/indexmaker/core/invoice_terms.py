"""A mint invoice's terms as they appear on the wire, and the hash recorded on chain with the
mint (SPEC §5 MintInvoice, §7; issue 11 `verify-invoice`).

The terms are the invoice body's fields (the reference's names, Decimals in positional
notation, times RFC 3339 in milliseconds) except those not fixed when the mint is asked for:
`timestamp`, `position`, `invoice_hash` and `mint_tx_hash`. The FIX server writes exactly
these fields into every MintInvoice body (server/encoding.py), so anyone holding the body —
a client's saved file — recomputes the hash from it alone: SHA-256 of its canonical JSON
(keys sorted, no spaces, ASCII). A file edited after minting no longer hashes to what custody
recorded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from indexmaker.core.clock import rfc3339
from indexmaker.core.events import InvoiceLot, MintInvoice

# The body's fields that are terms, in the order the body lists them.
TERM_FIELDS: Final = (
    "client_order_id",
    "payment_id",
    "symbol",
    "filled_quantity",
    "total_amount",
    "amount_paid",
    "amount_remaining",
    "management_fee",
    "assets_value",
    "exchange_fee",
    "fill_rate",
    "index_id",
    "total_collateral",
    "collateral_spent",
    "engaged_collateral",
    "lots",
    "basket_version",
)


def wire_decimal(value: Decimal) -> str:
    """Decimal to the wire: positional notation always ("1E+3" would break clients)."""
    return format(value, "f")


def invoice_terms(inv: MintInvoice) -> dict[str, Any]:
    """The terms of `inv` as body fields (TERM_FIELDS, in that order)."""
    paid = wire_decimal(inv.amount_paid)
    return {
        "client_order_id": inv.client_order_id,
        "payment_id": inv.payment_id,
        "symbol": inv.symbol,
        "filled_quantity": wire_decimal(inv.filled_quantity),
        "total_amount": wire_decimal(inv.total_amount),
        "amount_paid": paid,
        "amount_remaining": wire_decimal(inv.amount_remaining),
        "management_fee": wire_decimal(inv.management_fee),
        "assets_value": wire_decimal(inv.assets_value),
        "exchange_fee": wire_decimal(inv.exchange_fee),
        "fill_rate": wire_decimal(inv.fill_rate),
        # The reference's names for the same figures, so its clients parse our invoices
        # unchanged (its MintInvoiceBody requires them; at mint, engaged = spent = paid).
        "index_id": inv.symbol,
        "total_collateral": wire_decimal(inv.total_amount),
        "collateral_spent": paid,
        "engaged_collateral": paid,
        "lots": [_lot_terms(lot, inv.timestamp) for lot in inv.lots],
        # issue 12: the basket version the units were bought on is a term (a rebalance
        # changes what a unit holds), so the on-chain hash covers it.
        "basket_version": inv.basket_version,
    }


def _lot_terms(lot: InvoiceLot, at: datetime) -> dict[str, Any]:
    """The reference's SolverOrderAssetLot shape; `assigned_*` is this order's share. A lot
    without its own times takes `at` (inventory always records them)."""
    return {
        "lot_id": str(lot.lot_id),
        "symbol": lot.asset.pair,
        "price": wire_decimal(lot.price),
        "original_quantity": wire_decimal(_or(lot.original_quantity, lot.quantity)),
        "remaining_quantity": wire_decimal(_or(lot.remaining_quantity, Decimal(0))),
        "original_fee": wire_decimal(_or(lot.original_fee, lot.fee)),
        "assigned_quantity": wire_decimal(lot.quantity),
        "assigned_fee": wire_decimal(lot.fee),
        "created_timestamp": rfc3339(lot.created_at or at),
        "assigned_timestamp": rfc3339(lot.assigned_at or at),
    }


def _or(value: Decimal | None, default: Decimal) -> Decimal:
    return default if value is None else value


def terms_hash(body: Mapping[str, Any]) -> str:
    """0x + SHA-256 (hex) of the canonical JSON of `body`'s TERM_FIELDS (a MintInvoice body
    as sent, or `invoice_terms`). Raises KeyError naming a missing term field."""
    terms = {name: body[name] for name in TERM_FIELDS}
    text = json.dumps(terms, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "0x" + hashlib.sha256(text.encode()).hexdigest()
