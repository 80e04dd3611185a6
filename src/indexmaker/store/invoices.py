"""Mint invoices as a queryable table beside the outbox (issue 10: "mint invoices by client
and by time range").

Every `MintInvoice` the engine sends is already in the outbox inside a `SendToClient`; this
table keeps one row per invoice with the columns a query filters on (client, symbol, mint
time), written in the same transaction as the outbox row, so an invoice is queryable exactly
when it is durable. Rows are keyed by payment id (one mint per payment id): writing one twice
keeps the first. The SQL is the subset SQLite and PostgreSQL share; the store port reads it
(`SqlStore.invoices`, on a connection of its own, either backend).
"""

from __future__ import annotations

from collections.abc import Sequence

from indexmaker.core import codec
from indexmaker.core.events import Command, MintInvoice, SendToClient
from indexmaker.core.ids import client_key
from indexmaker.core.store_records import InvoiceQuery, StoredInvoice
from indexmaker.store.listing import Listing, time_key

INSERT = (
    "INSERT INTO invoices (payment_id, chain_id, address, client_order_id, symbol, minted_at, "
    "journal_seq, invoice) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (payment_id) DO NOTHING"
)
InvoiceRow = tuple[str, int, str, str, str, str, int, bytes]


def invoice_rows(journal_seq: int, commands: Sequence[Command]) -> list[InvoiceRow]:
    """The invoice rows among one journal entry's effects (usually none)."""
    rows: list[InvoiceRow] = []
    for command in commands:
        if isinstance(command, SendToClient) and isinstance(command.message, MintInvoice):
            invoice = command.message
            chain_id, address = command.client
            rows.append(
                (
                    str(invoice.payment_id),
                    int(chain_id),
                    str(address),
                    str(invoice.client_order_id),
                    str(invoice.symbol),
                    time_key(invoice.timestamp),
                    journal_seq,
                    codec.encode(command),
                )
            )
    return rows


def select(query: InvoiceQuery) -> tuple[str, list[object]]:
    """SQL and parameters for `query`, ordered by mint time then payment id."""
    listing = (
        Listing("minted_at, payment_id, invoice", "invoices")
        .client(query.client)
        .equal("symbol", query.symbol)
        .equal("client_order_id", query.client_order_id)
        .between("minted_at", query.since, query.until)
    )
    if query.after is not None:
        at, payment_id = query.after
        listing.where("(minted_at > ? OR (minted_at = ? AND payment_id > ?))", at, at, payment_id)
    return listing.build("minted_at, payment_id", query.limit)


def decode_row(minted_at: str, payment_id: str, blob: bytes) -> StoredInvoice:
    command = codec.decode(bytes(blob))
    if not (isinstance(command, SendToClient) and isinstance(command.message, MintInvoice)):
        raise ValueError(f"invoice {payment_id}: the stored record is not a MintInvoice")
    chain_id, address = command.client
    return StoredInvoice(client_key(chain_id, address), command.message, (minted_at, payment_id))
