"""Client index orders: one order per (client, symbol), a FIFO queue of updates.

Each update has its own client_order_id, collateral, fills and mint invoice. All
amounts here are USDC collateral except `filled_quantity` (index units).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum

from indexmaker.core.ids import BatchId, ClientKey, ClientOrderId, PaymentId, Symbol
from indexmaker.model.lot import LotAssignment
from indexmaker.model.side import Side

ZERO = Decimal(0)


class OrderStatus(Enum):
    OPEN = "Open"
    MANAGE_COLLATERAL = "ManageCollateral"
    READY = "Ready"
    ENGAGED = "Engaged"
    PARTLY_MINTABLE = "PartlyMintable"
    FULLY_MINTABLE = "FullyMintable"
    MINTING = "Minting"  # mint command sent, waiting for the chain's confirmation
    MINTED = "Minted"
    CANCELLED = "Cancelled"
    INVALID_SYMBOL = "InvalidSymbol"
    INVALID_ORDER = "InvalidOrder"
    INVALID_COLLATERAL = "InvalidCollateral"
    SERVICE_UNAVAILABLE = "ServiceUnavailable"
    INTERNAL_ERROR = "InternalError"

    @property
    def is_done(self) -> bool:
        return self in _DONE


_DONE = frozenset(
    {
        OrderStatus.MINTED,
        OrderStatus.CANCELLED,
        OrderStatus.INVALID_SYMBOL,
        OrderStatus.INVALID_ORDER,
        OrderStatus.INVALID_COLLATERAL,
        OrderStatus.INTERNAL_ERROR,
    }
)


@dataclass(slots=True)
class OrderUpdate:
    """One NewIndexOrder: the unit the solver engages, fills and mints."""

    client: ClientKey
    client_order_id: ClientOrderId
    symbol: Symbol
    side: Side
    amount: Decimal  # collateral the client committed (gross, before routing fees)
    received_at: datetime
    arrival: int  # global arrival sequence: engagement is FIFO by this
    status: OrderStatus = OrderStatus.OPEN
    management_fee: Decimal = ZERO  # routing fees of the collateral reserved for it
    engaged: Decimal = ZERO  # collateral engaged in the in-flight batch
    batch_id: BatchId | None = None
    engaged_quantity: Decimal = ZERO  # index units sized for the in-flight batch
    assets_value: Decimal = ZERO
    exchange_fee: Decimal = ZERO
    # Accumulated with exactly the amounts the collateral reservation is charged, so the two
    # ledgers agree to the last digit (assets_value + exchange_fee may differ in the 34th).
    spent: Decimal = ZERO
    filled_quantity: Decimal = ZERO
    lots: list[LotAssignment] = field(default_factory=list)
    last_fill_at: datetime | None = None
    payment_id: PaymentId | None = None
    reason: str | None = None

    @property
    def net_amount(self) -> Decimal:
        """Collateral usable for assets and exchange fees."""
        return self.amount - self.management_fee

    @property
    def remaining(self) -> Decimal:
        """Not spent and not engaged: what the next batch may engage, or a cancel remove."""
        return self.net_amount - self.spent - self.engaged

    @property
    def fill_rate(self) -> Decimal:
        net = self.net_amount
        return self.spent / net if net > 0 else ZERO


@dataclass(slots=True)
class IndexOrder:
    client: ClientKey
    symbol: Symbol
    side: Side
    updates: deque[OrderUpdate] = field(default_factory=deque)

    @property
    def arrival(self) -> int:
        return self.updates[0].arrival if self.updates else 0
