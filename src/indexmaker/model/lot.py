"""Inventory lots: what one execution bought, and who it was assigned to."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from indexmaker.core.ids import BatchId, ClientOrderId, InstrumentId, LotId, TradeId
from indexmaker.core.money import exact_sub


@dataclass(frozen=True, slots=True)
class LotAssignment:
    lot_id: LotId
    asset: InstrumentId
    client_order_id: ClientOrderId
    quantity: Decimal
    price: Decimal
    fee: Decimal  # this assignment's pro-rata share of the lot's fee
    # Facts of the lot at the time of the assignment, for invoices (the reference's lot shape).
    lot_quantity: Decimal = Decimal(0)
    lot_fee: Decimal = Decimal(0)
    lot_remaining: Decimal = Decimal(0)  # not yet assigned to anyone after this assignment
    opened_at: datetime | None = None
    assigned_at: datetime | None = None

    @property
    def cost(self) -> Decimal:
        return self.quantity * self.price + self.fee


@dataclass(slots=True)
class Lot:
    """One execution. `assigned` + `disposed` never exceed `quantity`; `redeemed` never
    exceeds `assigned`."""

    lot_id: LotId
    asset: InstrumentId
    trade_id: TradeId
    price: Decimal
    quantity: Decimal
    fee: Decimal
    opened_at: datetime
    assigned: Decimal = Decimal(0)
    disposed: Decimal = Decimal(0)
    fee_assigned: Decimal = Decimal(0)
    # Of `assigned` (backing of index units), what redemptions sold since (FIFO disposal).
    redeemed: Decimal = Decimal(0)
    reserved_by: BatchId | None = None  # the batch allowed to assign it right now
    assignments: list[LotAssignment] = field(default_factory=list)

    @property
    def free(self) -> Decimal:
        # Exact: a 34-digit difference can round up, and taking it over-assigns the lot.
        return exact_sub(self.quantity, self.assigned, self.disposed)
