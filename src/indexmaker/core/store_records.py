"""What the store port's readers take and give back (core/ports.py `StorePort`): invoice
queries and rows, client messages with their rank, and the durable record of spent
signatures behind the FIX server's ledger. Plain values: the SQL lives in `indexmaker.store`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from indexmaker.core.events import MintInvoice, SendToClient
from indexmaker.core.ids import ClientKey
from indexmaker.core.redemption_events import RedemptionInvoice


@dataclass(frozen=True, slots=True)
class InvoiceQuery:
    """Filters of an invoice listing; `after` is the (minted_at key, payment id) of the last
    row already seen (keyset pagination: stable while new invoices arrive). Times are
    timezone-aware; `since` inclusive, `until` exclusive."""

    client: ClientKey | None = None
    symbol: str | None = None
    client_order_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: tuple[str, str] | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class StoredInvoice:
    client: ClientKey
    invoice: MintInvoice
    key: tuple[str, str]  # (minted_at key, payment id): the cursor of this row


@dataclass(frozen=True, slots=True)
class StoredRedemption:
    """A committed RedemptionInvoice (issue 12) and its client; listed by `InvoiceQuery`
    (times on the redemption's invoice time)."""

    client: ClientKey
    invoice: RedemptionInvoice
    key: tuple[str, str]  # (redeemed_at key, "<chain_id>:<address>:<client order id>")


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A committed client message (`SendToClient` outbox row) and its rank: 0 for the first
    client message ever committed (store/fix_outbox.py numbers it from the rank)."""

    rank: int
    at: datetime  # when the engine handled the input that caused it
    command: SendToClient


@dataclass(frozen=True, slots=True)
class OrderQuery:
    """Filters of an order listing (store/order_history.py); `after` is the journal seq of
    the last row already seen (keyset pagination). Times are timezone-aware; `since`
    inclusive, `until` exclusive, on the time the order was received."""

    client: ClientKey | None = None
    client_order_id: str | None = None
    symbol: str | None = None
    side: str | None = None  # "buy" | "sell"
    status: str | None = None  # order_history.STATUSES
    since: datetime | None = None
    until: datetime | None = None
    after: int | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class StoredOrder:
    """One index order as its client was told it went (SPEC §5 messages). Amounts in USDC
    for a buy and index units for a sell; `filled_quantity` in index units."""

    client: ClientKey
    client_order_id: str
    symbol: str
    side: str
    amount: Decimal
    status: str
    reason: str | None
    filled_quantity: Decimal
    collateral_spent: Decimal
    fill_rate: Decimal
    payment_id: str | None
    received_at: datetime
    updated_at: datetime
    journal_seq: int  # of its request: the arrival order and the cursor


@dataclass(frozen=True, slots=True)
class BatchQuery:
    """Filters of a batch listing (store/batch_history.py); `after` is the (journal seq,
    batch id) of the last row already seen. Times on creation, as in OrderQuery."""

    side: str | None = None
    status: str | None = None  # "created" | "completed"
    since: datetime | None = None
    until: datetime | None = None
    after: tuple[int, int] | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """One buy or sell batch as the query API lists it (store/batch_history.py): counts,
    notional in USDC, times in UTC, `details` as text."""

    side: str  # "buy" | "sell"
    batch_id: int
    status: str
    created_at: datetime
    completed_at: datetime | None
    order_count: int
    asset_count: int
    notional: Decimal  # USDC
    details: dict[str, str] = field(default_factory=dict)
    journal_seq: int = 0  # of the input that created it


class SpentStore(Protocol):
    """The durable record of spent signatures behind the FIX server's ledger (SPEC §5
    "Replay"; server/replay.py). `record` is durable against a crash of the process when it
    returns. A spent id is a (msg_type, id[, nonce]) tuple; r is the signature's r value."""

    def is_spent(self, address: str, spent_id: tuple[str, ...]) -> bool: ...

    def lookup(
        self, address: str, spent_id: tuple[str, ...], r: int
    ) -> tuple[bool, bytes | None, bool]: ...  # (spent, digest r signed before, compromised)

    def record(
        self,
        address: str,
        spent_id: tuple[str, ...],
        r: int,
        digest: bytes,
        request: object | None = None,
    ) -> None:
        """Spend it. `request`: the input the signature authorises; an engine input is made
        durable in the same commit as its journal entry (never one without the other),
        anything else at once."""

    def mark_compromised(self, address: str) -> None: ...

    def close(self) -> None: ...
