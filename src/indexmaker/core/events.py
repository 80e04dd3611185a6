"""Everything that crosses the core's boundary, as frozen records.

Inputs (`*Request`, venue, chain and clock events) go into `Engine.handle`; outputs are
commands the adapters carry out (`Send*`, `Place*`, `Query*`, `Mint*`, `Burn*`, `Route*`,
`Withdraw*`). The core never calls the outside world: it returns these. Client messages live
here; venue records in `venue_events`, chain records in `chain_events` (re-exported here).
Every record has a versioned msgspec codec in `core/codec.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum

from indexmaker.core.chain_events import (
    BurnConfirmed,
    BurnFailed,
    BurnIndex,
    ChainCommand,
    ChainInput,
    DepositObserved,
    EscrowIndex,
    HopCompleted,
    HopFailed,
    HopReport,
    HopState,
    HopStatusUnknown,
    IndexEscrowed,
    IndexEscrowFailed,
    MintConfirmed,
    MintFailed,
    MintIndex,
    QueryHop,
    ReleaseIndex,
    ResumeRoutes,
    RouteCollateral,
    RouteCostQuoted,
    WithdrawalCompleted,
    WithdrawalFailed,
    WithdrawCollateral,
)
from indexmaker.core.holds import HoldCode
from indexmaker.core.ids import (
    BatchId,
    ClientKey,
    ClientOrderId,
    ClientQuoteId,
    InstrumentId,
    PaymentId,
    Symbol,
)
from indexmaker.core.rebalance_events import RebalanceIndex, RebalanceReport
from indexmaker.core.redemption_events import RedemptionFill, RedemptionInvoice
from indexmaker.core.venue_events import (
    BookInvalid,
    BookSnapshot,
    BookUpdate,
    ExchangeFill,
    ExchangeOrderAccepted,
    ExchangeOrderClosed,
    ExchangeOrderReport,
    ExchangeOrderStatus,
    ExchangeOrderStatusUnknown,
    InstrumentStatus,
    OrderLimitWindow,
    PlaceExchangeOrder,
    QueryExchangeOrder,
    RateLimitFeedback,
    RulesUpdate,
    TradePrint,
    VenueBalance,
    VenueCommand,
    VenueInput,
    VenueOrderLimits,
)
from indexmaker.model.side import Side

__all__ = [
    "Alert",
    "BatchEvent",
    "BookInvalid",
    "BookSnapshot",
    "BookUpdate",
    "BurnConfirmed",
    "BurnFailed",
    "BurnIndex",
    "CancelIndexOrderRequest",
    "CancelIndexOrderResponse",
    "CancelIndexQuoteResponse",
    "CancelQuoteRequest",
    "ChainCommand",
    "ChainInput",
    "ClientRequest",
    "ClientResponse",
    "Command",
    "DepositObserved",
    "EngineInput",
    "EscrowIndex",
    "ExchangeFill",
    "ExchangeOrderAccepted",
    "ExchangeOrderClosed",
    "ExchangeOrderReport",
    "ExchangeOrderStatus",
    "ExchangeOrderStatusUnknown",
    "FillStatus",
    "HopCompleted",
    "HopFailed",
    "HopReport",
    "HopState",
    "HopStatusUnknown",
    "IndexEscrowFailed",
    "IndexEscrowed",
    "IndexOrderFill",
    "IndexQuoteResponse",
    "InstrumentStatus",
    "InvoiceLot",
    "MintConfirmed",
    "MintFailed",
    "MintIndex",
    "MintInvoice",
    "NewIndexOrderRequest",
    "NewIndexOrderResponse",
    "NewIndexQuoteResponse",
    "NewQuoteRequest",
    "OrderLimitWindow",
    "PlaceExchangeOrder",
    "QueryExchangeOrder",
    "QueryHop",
    "RateLimitFeedback",
    "RebalanceIndex",
    "RebalanceReport",
    "RedemptionFill",
    "RedemptionInvoice",
    "ReleaseIndex",
    "RequestStatus",
    "ResumeRoutes",
    "RouteCollateral",
    "RouteCostQuoted",
    "RulesUpdate",
    "SendToClient",
    "Tick",
    "TradePrint",
    "VenueBalance",
    "VenueCommand",
    "VenueInput",
    "VenueOrderLimits",
    "WithdrawCollateral",
    "WithdrawalCompleted",
    "WithdrawalFailed",
]

# ---------------------------------------------------------------- client requests (FIX in)


@dataclass(frozen=True, slots=True)
class NewIndexOrderRequest:
    client: ClientKey
    client_order_id: ClientOrderId
    symbol: Symbol
    side: Side
    # A buy's amount is collateral (USDC); a sell's (a redemption) is index units.
    amount: Decimal
    # Sell only (an extension; reference clients omit it): the least USDC the client is to be
    # paid, net of the exchange, redemption and withdrawal fees (engine/sell_proceeds.py).
    # None: no floor beyond price_threshold.
    min_proceeds: Decimal | None = None


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
    # Why a ready buy is not in this batch (issue 12 review #5, as RedemptionFill): for
    # people (may name figures of the moment) and a stable code (core/holds.py).
    reason: str | None = None
    reason_code: HoldCode | None = None


@dataclass(frozen=True, slots=True)
class InvoiceLot:
    """One inventory lot behind a mint: what this order took of it, and the lot itself."""

    asset: InstrumentId
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
class CollateralPosition:
    """A client's collateral balances (USDC) right after a mint: the reference's `position`
    (its credit side; SPEC §5 MintInvoice). Lots are not itemised here."""

    client: ClientKey
    unconfirmed: Decimal  # deposited, still on its way to the exchange
    ready: Decimal  # at the exchange, reserved by no order
    preauth: Decimal  # reserved by open order updates, not yet spent
    spent: Decimal  # spent on index orders, all time
    held: Decimal = Decimal(0)  # waiting on its chain: below the route's cost (not in transit)


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
    position: CollateralPosition | None = None  # the client's collateral after this mint
    # The hash of the invoice's terms recorded on chain with the mint (engine/invoices.py
    # `invoice_hash`), and the mint's transaction hash (None on the simulated chain).
    invoice_hash: str | None = None
    mint_tx_hash: str | None = None
    basket_version: int = 1  # the index's basket version these units were bought on


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
    # A sell quote's (issue 12): USDC the quantity_possible units would pay the client at
    # least, net of every fee (engine/sell_proceeds.py `least_net`, the figure a floor is
    # checked against); None for a buy quote.
    expected_proceeds: Decimal | None = None


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
    | RedemptionFill
    | RedemptionInvoice
)


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


Command = SendToClient | VenueCommand | ChainCommand | BatchEvent | Alert | RebalanceReport

EngineInput = ClientRequest | VenueInput | ChainInput | Tick | RebalanceIndex
