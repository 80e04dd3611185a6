"""Mint and redemption invoices as queryable tables beside the outbox (issue 10: "mint
invoices by client and by time range"; issue 12: redemption invoices the same way).

Every `MintInvoice` and `RedemptionInvoice` the engine sends is already in the outbox inside
a `SendToClient`; these tables keep one row per invoice with the columns a query filters on
(client, symbol, client order id, invoice time), written in the same transaction as the
outbox row, so an invoice is queryable exactly when it is durable. A mint invoice is keyed by
its payment id (one mint per payment id), a redemption invoice by its order (one per sell
order: `<chain_id>:<address>:<client order id>`); writing one twice keeps the first. The SQL
is the subset SQLite and PostgreSQL share; the store port reads it (`SqlStore.invoices` and
`SqlStore.redemptions`, on a connection of their own, either backend).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from indexmaker.core import codec
from indexmaker.core.events import Command, MintInvoice, SendToClient
from indexmaker.core.ids import ClientKey, client_key
from indexmaker.core.redemption_events import RedemptionInvoice
from indexmaker.core.store_records import InvoiceQuery
from indexmaker.store.listing import Listing, time_key

InvoiceRow = tuple[str, int, str, str, str, str, int, bytes]


@dataclass(frozen=True, slots=True)
class InvoiceTable:
    name: str
    key: str  # the unique text column: the second half of the cursor
    at: str  # the invoice time column (store/listing.py time_key text)
    kind: type[MintInvoice] | type[RedemptionInvoice]

    @property
    def insert(self) -> str:
        return (
            f"INSERT INTO {self.name} ({self.key}, chain_id, address, client_order_id, "
            f"symbol, {self.at}, journal_seq, invoice) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            f"ON CONFLICT ({self.key}) DO NOTHING"
        )

    def rows(self, journal_seq: int, commands: Sequence[Command]) -> list[InvoiceRow]:
        """This table's rows among one journal entry's effects (usually none)."""
        rows: list[InvoiceRow] = []
        for command in commands:
            if isinstance(command, SendToClient) and isinstance(command.message, self.kind):
                invoice = command.message
                chain_id, address = command.client
                rows.append(
                    (
                        row_key(invoice, command.client),
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

    def select(self, query: InvoiceQuery) -> tuple[str, list[object]]:
        """SQL and parameters for `query`, ordered by invoice time then key."""
        listing = (
            Listing(f"{self.at}, {self.key}, invoice", self.name)
            .client(query.client)
            .equal("symbol", query.symbol)
            .equal("client_order_id", query.client_order_id)
            .between(self.at, query.since, query.until)
        )
        if query.after is not None:
            at, key = query.after
            listing.where(f"({self.at} > ? OR ({self.at} = ? AND {self.key} > ?))", at, at, key)
        return listing.build(f"{self.at}, {self.key}", query.limit)

    def decode(self, at: str, key: str, blob: bytes) -> tuple[ClientKey, Any, tuple[str, str]]:
        """(client, invoice, cursor key) of one selected row."""
        command = codec.decode(bytes(blob))
        if not (isinstance(command, SendToClient) and isinstance(command.message, self.kind)):
            raise ValueError(f"{self.name} {key}: the stored record is not a {self.kind.__name__}")
        chain_id, address = command.client
        return client_key(chain_id, address), command.message, (at, key)


def row_key(invoice: MintInvoice | RedemptionInvoice, client: ClientKey) -> str:
    if isinstance(invoice, MintInvoice):
        return str(invoice.payment_id)
    return f"{int(client[0])}:{client[1]}:{invoice.client_order_id}"


MINTS = InvoiceTable("invoices", "payment_id", "minted_at", MintInvoice)
REDEMPTIONS = InvoiceTable("redemption_invoices", "invoice_key", "redeemed_at", RedemptionInvoice)
