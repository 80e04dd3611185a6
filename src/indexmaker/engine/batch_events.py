"""Operator notices of a batch's life, one constructor for both sides (buy and sell batches).

Shapes: `BatchEvent` (core/events.py), notional in USDC rounded to 6 decimals half-even. A sell
batch's notice says so in its details (`side: sell`); a buy batch's has no side, as before
the sell side existed (logs and metrics read it that way).
"""

from __future__ import annotations

from decimal import Decimal

from indexmaker.core.events import BatchEvent
from indexmaker.core.ids import BatchId
from indexmaker.core.money import round_usdc
from indexmaker.model.side import Side


def _side(side: Side) -> dict[str, str]:
    return {"side": "sell"} if side is Side.SELL else {}


def batch_created(
    batch_id: BatchId, orders: int, exchange_orders: int, notional: Decimal, side: Side
) -> BatchEvent:
    """A batch formed: `orders` client orders in it, `exchange_orders` sent for it."""
    return BatchEvent(
        batch_id,
        "created",
        order_count=orders,
        asset_count=exchange_orders,
        notional=round_usdc(notional),
        details=_side(side),
    )


def batch_completed(
    batch_id: BatchId, orders: int, assets: int, notional: Decimal, with_fills: int, side: Side
) -> BatchEvent:
    """A batch completed: `with_fills` of its `orders` got something."""
    return BatchEvent(
        batch_id,
        "completed",
        order_count=orders,
        asset_count=assets,
        notional=round_usdc(notional),
        details=_side(side) | {"orders_with_fills": str(with_fills)},
    )
