"""The query API's durable listings (issue 10): every order and every batch the store kept,
closed and old ones included, also after a restart, read through `StorePort.orders` and
`StorePort.batches` on a connection of their own in a worker thread. Keyset pages (the
cursor is the last row's journal position: stable while new rows arrive) and filters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from indexmaker.core.ports import StorePort
from indexmaker.core.store_records import BatchQuery, OrderQuery, StoredBatch, StoredOrder
from indexmaker.query import models, views
from indexmaker.query.params import PAGING, Param, decode_cursor, encode_cursor
from indexmaker.store.batch_history import COMPLETED, CREATED
from indexmaker.store.order_history import STATUSES

ORDER_PARAMS = (
    Param("symbol", "str", "an index, e.g. SY100"),
    Param("side", "enum", "buy or sell (a redemption)", choices=("buy", "sell")),
    Param("status", "enum", "the state its client was told", choices=STATUSES),
    Param("from", "time", "received at or after (ISO 8601 with timezone)"),
    Param("to", "time", "received before (ISO 8601 with timezone)"),
    *PAGING,
)
BATCH_PARAMS = (
    Param("side", "enum", "buy, or sell (redemptions)", choices=("buy", "sell")),
    Param("status", "enum", "created (in flight) or completed", choices=(CREATED, COMPLETED)),
    Param("from", "time", "created at or after (ISO 8601 with timezone)"),
    Param("to", "time", "created before (ISO 8601 with timezone)"),
    *PAGING,
)


class Unavailable(Exception):
    """What this service cannot answer as configured (503, saying why)."""


def order_record(row: StoredOrder) -> models.OrderRecord:
    return models.OrderRecord(
        chain_id=row.client[0],
        address=row.client[1],
        client_order_id=row.client_order_id,
        symbol=row.symbol,
        side=row.side,
        status=row.status,
        reason=row.reason,
        amount=row.amount,
        filled_quantity=row.filled_quantity,
        collateral_spent=row.collateral_spent,
        fill_rate=row.fill_rate,
        payment_id=row.payment_id,
        received_at=row.received_at,
        updated_at=row.updated_at,
    )


def _batch_record(row: StoredBatch) -> models.BatchRecord:
    return models.BatchRecord(
        batch_id=row.batch_id,
        side=row.side,
        status=row.status,
        created_at=row.created_at,
        completed_at=row.completed_at,
        order_count=row.order_count,
        asset_count=row.asset_count,
        notional=row.notional,
        details=row.details,
    )


def _store(store: StorePort | None) -> StorePort:
    if store is None:
        raise Unavailable("history is kept by the durable store: [store] backend is memory")
    return store


def handlers(
    store: StorePort | None,
) -> tuple[
    Callable[[dict[str, Any]], Awaitable[BaseModel]],
    Callable[[dict[str, Any]], Awaitable[BaseModel]],
]:
    """(order history, batch history) route handlers over `store` (None: 503 each)."""

    async def orders(values: dict[str, Any]) -> models.Page[models.OrderRecord]:
        after = values.get("cursor")
        query = OrderQuery(
            client=views.client_of(values),
            symbol=values.get("symbol"),
            side=values.get("side"),
            status=values.get("status"),
            since=values.get("from"),
            until=values.get("to"),
            after=None if after is None else decode_cursor(after, (int,))[0],
            limit=values["limit"] + 1,  # one more: is there a next page?
        )
        rows = await asyncio.to_thread(_store(store).orders, query)
        more = len(rows) > values["limit"]
        rows = rows[: values["limit"]]
        return models.Page(
            items=[order_record(r) for r in rows],
            next_cursor=encode_cursor((rows[-1].journal_seq,)) if more else None,
        )

    async def batches(values: dict[str, Any]) -> models.Page[models.BatchRecord]:
        after = values.get("cursor")
        query = BatchQuery(
            side=values.get("side"),
            status=values.get("status"),
            since=values.get("from"),
            until=values.get("to"),
            after=None if after is None else decode_cursor(after, (int, int)),
            limit=values["limit"] + 1,
        )
        rows = await asyncio.to_thread(_store(store).batches, query)
        more = len(rows) > values["limit"]
        rows = rows[: values["limit"]]
        last = (rows[-1].journal_seq, rows[-1].batch_id) if rows else None
        return models.Page(
            items=[_batch_record(r) for r in rows],
            next_cursor=encode_cursor(last) if more and last else None,
        )

    return orders, batches
