"""Everything that crosses the core's boundary, as frozen records.

Inputs (`*Request`, venue, chain and clock events) go into `Engine.handle`; outputs are
commands the adapters carry out (`Send*`, `Place*`, `Mint*`, `Route*`). The core never
calls the outside world: it returns these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum

from indexmaker.core.ids import (
    BatchId,
    ClientKey,
    ClientOrderId,
    ClientQuoteId,
    Designation,
    ExchangeOrderId,
    PaymentId,
    Symbol,
    TradeId,
    TransferId,
)
from indexmaker.model.side import Side

# ---------------------------------------------------------------- client requests (FIX in)


@dataclass(frozen=True, slots=True)
class NewIndexOrderRequest:
    client: ClientKey
    client_order_id: ClientOrderId
    symbol: Symbol
    side: Side
    amount: Decimal  # collateral (USDC), not index units


@dataclass(frozen=True, slots=True)
class CancelIndexOrderRequest:
    client: ClientKey
    client_order_id: ClientOrderId
    symbol: Symbol
    amount: Decimal


@dataclass(frozen=True, slots=True)
class NewQuoteRequest:
    client: ClientKey
    client_quote_id: ClientQuoteId
    symbol: Symbol
    side: Side
    amount: Decimal


@dataclass(frozen=True, slots=True)
class CancelQuoteRequest:
    client: ClientKey
    client_quote_id: ClientQuoteId
    symbol: Symbol


ClientRequest = (
    NewIndexOrderRequest | CancelIndexOrderRequest | NewQuoteRequest | CancelQuoteRequest
)

# ---------------------------------------------------------------- client responses (FIX out)


class RequestStatus(Enum):
    NEW = "new"
    REJECTED = "rejected"
    CANCELED = "canceled"


class FillStatus(Enum):
    COLLATERAL_READY = "collateral ready"
    IN_PROGRESS = "in progress"
    MINTABLE = "mintable"
    FULLY_MINTABLE = "fully mintable"


@dataclass(frozen=True, slots=True)
class NewIndexOrderResponse:
    client_order_id: ClientOrderId
    status: RequestStatus
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CancelIndexOrderResponse:
    client_order_id: ClientOrderId
    status: RequestStatus
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class IndexOrderFill:
    client_order_id: ClientOrderId
    filled_quantity: Decimal
    collateral_spent: Decimal
    collateral_remaining: Decimal
    fill_rate: Decimal
    status: FillStatus


@dataclass(frozen=True, slots=True)
class InvoiceLot:
    """One inventory lot behind a mint: what this order took of it, and the lot itself."""

    asset: Symbol
    lot_id: int
    price: Decimal
    quantity: Decimal  # assigned to this order
    fee: Decimal  # this order's share of the lot's fee
    original_quantity: Decimal | None = None
    remaining_quantity: Decimal | None = None  # unassigned after this order's last take
    original_fee: Decimal | None = None
    created_at: datetime | None = None
    assigned_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MintInvoice:
    client_order_id: ClientOrderId
    payment_id: PaymentId
    symbol: Symbol
    filled_quantity: Decimal
    total_amount: Decimal  # collateral the order brought
    amount_paid: Decimal  # assets_value + exchange_fee
    amount_remaining: Decimal  # returned to the client's ready balance
    management_fee: Decimal  # routing fees of the collateral used
    assets_value: Decimal
    exchange_fee: Decimal
    fill_rate: Decimal
    lots: tuple[InvoiceLot, ...]
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class NewIndexQuoteResponse:
    client_quote_id: ClientQuoteId
    status: RequestStatus
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class IndexQuoteResponse:
    client_quote_id: ClientQuoteId
    quantity_possible: Decimal
    quantity_fillable_now: Decimal
    index_price: Decimal


@dataclass(frozen=True, slots=True)
class CancelIndexQuoteResponse:
    client_quote_id: ClientQuoteId
    status: RequestStatus
    reason: str | None = None


ClientResponse = (
    NewIndexOrderResponse
    | CancelIndexOrderResponse
    | IndexOrderFill
    | MintInvoice
    | NewIndexQuoteResponse
    | IndexQuoteResponse
    | CancelIndexQuoteResponse
)

# ---------------------------------------------------------------- market data in


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    symbol: Symbol
    bids: tuple[tuple[Decimal, Decimal], ...]  # (price, quantity), best first
    asks: tuple[tuple[Decimal, Decimal], ...]


@dataclass(frozen=True, slots=True)
class BookUpdate:
    """Level changes; quantity 0 removes the level."""

    symbol: Symbol
    bids: tuple[tuple[Decimal, Decimal], ...] = ()
    asks: tuple[tuple[Decimal, Decimal], ...] = ()


@dataclass(frozen=True, slots=True)
class TradePrint:
    symbol: Symbol
    price: Decimal
    quantity: Decimal


# ---------------------------------------------------------------- exchange orders


class ExchangeOrderStatus(Enum):
    PENDING = "pending"  # tracked, command emitted, no answer yet
    LIVE = "live"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_STATUSES


_FINAL_STATUSES = frozenset(
    {
        ExchangeOrderStatus.FILLED,
        ExchangeOrderStatus.CANCELLED,
        ExchangeOrderStatus.EXPIRED,
        ExchangeOrderStatus.REJECTED,
    }
)


@dataclass(frozen=True, slots=True)
class PlaceExchangeOrder:
    """Command: send a LIMIT IOC order."""

    order_id: ExchangeOrderId
    batch_id: BatchId
    symbol: Symbol
    side: Side
    price: Decimal
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class ExchangeOrderAccepted:
    order_id: ExchangeOrderId


@dataclass(frozen=True, slots=True)
class ExchangeFill:
    order_id: ExchangeOrderId
    trade_id: TradeId
    price: Decimal
    quantity: Decimal
    fee: Decimal  # in USDC (adapters convert commissions in other assets)


@dataclass(frozen=True, slots=True)
class ExchangeOrderClosed:
    """The order will not fill further: filled, cancelled, expired (IOC rest) or rejected."""

    order_id: ExchangeOrderId
    status: ExchangeOrderStatus
    reason: str | None = None


# ---------------------------------------------------------------- chain and collateral


@dataclass(frozen=True, slots=True)
class DepositObserved:
    """A client's deposit into custody on the source chain."""

    client: ClientKey
    seq_num: int  # the custody contract's deposit sequence number
    amount: Decimal
    designation: Designation


@dataclass(frozen=True, slots=True)
class RouteCollateral:
    """Command: move collateral one hop (a bridge) between designations."""

    transfer_id: TransferId
    client: ClientKey
    bridge: str
    source: Designation
    destination: Designation
    amount: Decimal


@dataclass(frozen=True, slots=True)
class HopCompleted:
    transfer_id: TransferId
    amount_received: Decimal
    fee: Decimal


@dataclass(frozen=True, slots=True)
class HopFailed:
    transfer_id: TransferId
    reason: str


@dataclass(frozen=True, slots=True)
class MintIndex:
    """Command: mint index tokens to the client (the contract refuses a repeated payment_id)."""

    payment_id: PaymentId
    client: ClientKey
    symbol: Symbol
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class MintConfirmed:
    payment_id: PaymentId


@dataclass(frozen=True, slots=True)
class SendToClient:
    """Command: deliver a response to every open session of a client."""

    client: ClientKey
    message: ClientResponse


# ---------------------------------------------------------------- time


@dataclass(frozen=True, slots=True)
class Tick:
    """The solver's heartbeat; `now` comes from the injected clock."""

    now: datetime


@dataclass(frozen=True, slots=True)
class BatchEvent:
    """Operator-facing notice of a batch's progress (for logs, progress and metrics)."""

    batch_id: BatchId
    kind: str  # "created" | "completed"
    order_count: int
    asset_count: int
    notional: Decimal
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Alert:
    """Operator-facing notice of something that failed locally (the service goes on)."""

    code: str  # e.g. "exchange_reject", "unknown_order", "overspend_prevented"
    message: str


Command = SendToClient | PlaceExchangeOrder | RouteCollateral | MintIndex | BatchEvent | Alert

EngineInput = (
    ClientRequest
    | BookSnapshot
    | BookUpdate
    | TradePrint
    | ExchangeOrderAccepted
    | ExchangeFill
    | ExchangeOrderClosed
    | DepositObserved
    | HopCompleted
    | HopFailed
    | MintConfirmed
    | Tick
)
