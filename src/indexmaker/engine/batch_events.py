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


def waiting_detail(waiting: int, orders: int) -> dict[str, str]:
    """`orders_waiting`: how many of a batch's `orders` (queued last) the order budget does
    not admit now, of `waiting` queued in all; nothing when every one goes out now."""
    mine = min(waiting, orders)
    return {"orders_waiting": str(mine)} if mine > 0 else {}


def batch_created(
    batch_id: BatchId,
    orders: int,
    exchange_orders: int,
    notional: Decimal,
    side: Side,
    waiting: int = 0,
) -> BatchEvent:
    """A batch formed: `orders` client orders in it, `exchange_orders` sent for it. `waiting`:
    orders queued that the order budget does not admit now (engine/order_budget.py); those
    of this batch (the last ones queued) go out in a later window, and the notice says how
    many (`orders_waiting`): one line per batch, not a refusal per order."""
    details = _side(side) | waiting_detail(waiting, exchange_orders)
    return BatchEvent(
        batch_id,
        "created",
        order_count=orders,
        asset_count=exchange_orders,
        notional=round_usdc(notional),
        details=details,
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
