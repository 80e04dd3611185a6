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
from datetime import UTC, datetime

from indexmaker.core import codec
from indexmaker.core.events import Command, MintInvoice, SendToClient
from indexmaker.core.ids import client_key
from indexmaker.core.store_records import InvoiceQuery, StoredInvoice

# Fixed width, UTC, microseconds always: text order is time order (both backends).
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

INSERT = (
    "INSERT INTO invoices (payment_id, chain_id, address, client_order_id, symbol, minted_at, "
    "journal_seq, invoice) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (payment_id) DO NOTHING"
)
InvoiceRow = tuple[str, int, str, str, str, str, int, bytes]


def time_key(at: datetime) -> str:
    """`at` (timezone-aware) as the table's sortable text. ValueError for a naive time."""
    if at.tzinfo is None:
        raise ValueError("a naive datetime has no place on the time line (give a timezone)")
    return at.astimezone(UTC).strftime(TIME_FORMAT)


def from_time_key(key: str) -> datetime:
    """The datetime (UTC) of a `time_key` text."""
    return datetime.strptime(key, TIME_FORMAT).replace(tzinfo=UTC)


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
    where: list[str] = []
    params: list[object] = []
    if query.client is not None:
        where.append("chain_id = ? AND address = ?")
        params += [int(query.client[0]), str(query.client[1])]
    if query.symbol is not None:
        where.append("symbol = ?")
        params.append(query.symbol)
    if query.client_order_id is not None:
        where.append("client_order_id = ?")
        params.append(query.client_order_id)
    if query.since is not None:
        where.append("minted_at >= ?")
        params.append(time_key(query.since))
    if query.until is not None:
        where.append("minted_at < ?")
        params.append(time_key(query.until))
    if query.after is not None:
        where.append("(minted_at > ? OR (minted_at = ? AND payment_id > ?))")
        params += [query.after[0], query.after[0], query.after[1]]
    sql = "SELECT minted_at, payment_id, invoice FROM invoices"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY minted_at, payment_id LIMIT ?"
    params.append(query.limit)
    return sql, params


def decode_row(minted_at: str, payment_id: str, blob: bytes) -> StoredInvoice:
    command = codec.decode(bytes(blob))
    if not (isinstance(command, SendToClient) and isinstance(command.message, MintInvoice)):
        raise ValueError(f"invoice {payment_id}: the stored record is not a MintInvoice")
    chain_id, address = command.client
    return StoredInvoice(client_key(chain_id, address), command.message, (minted_at, payment_id))
