"""Client index orders: one order per (client, symbol), a FIFO queue of updates.

Each update has its own client_order_id, collateral, fills and mint invoice. All
amounts here are USDC collateral except `filled_quantity` (index units).

An update's status changes in one place, `OrderUpdate.move_to`, along `TRANSITIONS` (SPEC §3);
anything else raises `IllegalTransition` naming both states. Its `spent` figure is the
collateral reservation's (owned by the collateral manager), never a copy.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum

from indexmaker.core.errors import InvariantViolation
from indexmaker.core.holds import HoldCode
from indexmaker.core.ids import BatchId, ClientKey, ClientOrderId, PaymentId, Symbol
from indexmaker.model.collateral import Reservation
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


_FAILURES = (
    OrderStatus.INVALID_SYMBOL,
    OrderStatus.INVALID_ORDER,
    OrderStatus.INVALID_COLLATERAL,
    OrderStatus.INTERNAL_ERROR,
)
_S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.OPEN: frozenset({_S.MANAGE_COLLATERAL, _S.CANCELLED, *_FAILURES}),
    _S.MANAGE_COLLATERAL: frozenset({_S.READY, _S.CANCELLED, *_FAILURES}),
    # READY → READY: settled again after a cancel took part of it.
    _S.READY: frozenset(
        {
            _S.READY,
            _S.ENGAGED,
            _S.PARTLY_MINTABLE,
            _S.FULLY_MINTABLE,
            _S.SERVICE_UNAVAILABLE,
            _S.CANCELLED,
            *_FAILURES,
        }
    ),
    _S.ENGAGED: frozenset({_S.READY, _S.PARTLY_MINTABLE, _S.FULLY_MINTABLE, _S.INTERNAL_ERROR}),
    _S.SERVICE_UNAVAILABLE: frozenset({_S.READY, _S.CANCELLED, *_FAILURES}),
    _S.PARTLY_MINTABLE: frozenset({_S.PARTLY_MINTABLE, _S.FULLY_MINTABLE, _S.MINTING}),
    _S.FULLY_MINTABLE: frozenset({_S.FULLY_MINTABLE, _S.MINTING}),
    _S.MINTING: frozenset({_S.MINTED}),
    **{done: frozenset() for done in _DONE},
}


class IllegalTransition(InvariantViolation):
    """A status change the transition table does not allow (an engine bug, never input)."""

    def __init__(self, client_order_id: ClientOrderId, state: OrderStatus, to: OrderStatus):
        allowed = ", ".join(s.value for s in sorted(TRANSITIONS[state], key=lambda s: s.value))
        super().__init__(
            f"{client_order_id}: no transition {state.value} → {to.value} "
            f"(from {state.value}: {allowed or 'none, it is final'})"
        )
        self.state = state
        self.to = to


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
    _status: OrderStatus = OrderStatus.OPEN  # changed only by move_to
    management_fee: Decimal = ZERO  # routing fees of the collateral reserved for it
    engaged: Decimal = ZERO  # collateral engaged in the in-flight batch
    batch_id: BatchId | None = None
    engaged_quantity: Decimal = ZERO  # index units sized for the in-flight batch
    # Index units engaged over the update's batches, each counted once: units of a batch that
    # did not fill leave this sum when their collateral is engaged again (SPEC §3 fill rate).
    units_engaged: Decimal = ZERO
    # Collateral left over because execution beat the limit price (SPEC §3): returned with the
    # invoice, never engaged again.
    change: Decimal = ZERO
    assets_value: Decimal = ZERO
    exchange_fee: Decimal = ZERO
    # Exact Σ quantity × price and Σ fee shares (USDC) of every lot piece allocated to it, over
    # all its batches: each allocation charges what round_cost_down of these totals grew by,
    # so an order split into other batches or steps is charged the same (issue 10).
    bought_value: Decimal = ZERO
    bought_fees: Decimal = ZERO
    # The collateral manager's reservation for this update, once reserved: the one ledger of
    # what it spent (assets_value + exchange_fee may differ from it in the 34th digit).
    reservation: Reservation | None = None
    filled_quantity: Decimal = ZERO
    lots: list[LotAssignment] = field(default_factory=list)
    last_fill_at: datetime | None = None
    payment_id: PaymentId | None = None
    reason: str | None = None
    # The hold the client was last told while it waits outside a batch (told once per code).
    notice: HoldCode | None = None
    basket_version: int = 1  # of the basket its latest batch bought (engine/rebalance.py)

    @property
    def status(self) -> OrderStatus:
        return self._status

    def move_to(self, status: OrderStatus) -> None:
        """The one place a status changes. Raises IllegalTransition outside `TRANSITIONS`."""
        if status not in TRANSITIONS[self._status]:
            raise IllegalTransition(self.client_order_id, self._status, status)
        self._status = status

    @property
    def spent(self) -> Decimal:
        """Collateral spent on assets and exchange fees (the reservation's figure)."""
        reservation = self.reservation
        return reservation.spent if reservation is not None else ZERO

    @property
    def net_amount(self) -> Decimal:
        """Collateral usable for assets and exchange fees."""
        return self.amount - self.management_fee

    @property
    def remaining(self) -> Decimal:
        """Not spent and not engaged: what the next batch may engage, or a cancel remove."""
        return self.net_amount - self.spent - self.engaged

    @property
    def engageable(self) -> Decimal:
        """What the next batch may engage: not spent, not engaged, not change (USDC)."""
        left = self.net_amount - self.spent - self.engaged - self.change
        return left if left > 0 else ZERO

    @property
    def fill_rate(self) -> Decimal:
        """Index units filled / index units engaged (SPEC §3); 0 before any engagement."""
        engaged = self.units_engaged
        return self.filled_quantity / engaged if engaged > 0 else ZERO


@dataclass(slots=True)
class IndexOrder:
    client: ClientKey
    symbol: Symbol
    side: Side
    updates: deque[OrderUpdate] = field(default_factory=deque)

    @property
    def arrival(self) -> int:
        return self.updates[0].arrival if self.updates else 0
