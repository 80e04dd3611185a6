"""Stand-ins for the venue port's records (`core/ports.py`, issue #6) while it has not landed.

`venue.py` imports the real ones when `indexmaker.core.ports` exists and these otherwise; the
shapes are the port's own (field names and order), so nothing else changes when it lands.
Delete this module once `core/ports.py` is on main.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from indexmaker.core.errors import NonRetryableError
from indexmaker.core.events import EngineInput, ExchangeFill, ExchangeOrderStatus
from indexmaker.core.ids import ExchangeOrderId, InstrumentId, VenueOrderId

EventSink = Callable[[EngineInput], Awaitable[None]]


class OrderNotFound(NonRetryableError):
    """The venue does not know this client order id (never arrived, or long forgotten)."""


@dataclass(frozen=True, slots=True)
class OrderReport:
    order_id: ExchangeOrderId
    instrument: InstrumentId
    status: ExchangeOrderStatus
    filled_quantity: Decimal
    fills: tuple[ExchangeFill, ...] = ()
    reason: str | None = None
    venue_order_id: VenueOrderId | None = None


@dataclass(frozen=True, slots=True)
class LimitHeadroom:
    pool: str
    used: int
    limit: int
    retry_at: datetime | None = None

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)
