"""The query API's durable listings (issue 10): mint and redemption invoices, and every
order and every batch the store kept, closed and old ones included, also after a restart,
read through the store port (`invoices`, `redemptions`, `orders`, `batches`) on a
connection of their own in a worker thread. Keyset pages (the cursor is the last row's sort
key: stable while new rows arrive) and filters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from indexmaker.core.ports import StorePort
from indexmaker.core.store_records import (
    BatchQuery,
    InvoiceQuery,
    OrderQuery,
    StoredBatch,
    StoredOrder,
)
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


Q = TypeVar("Q")
R = TypeVar("R")
T = TypeVar("T")


class Unavailable(Exception):
    """What this service cannot answer as configured (503, saying why)."""


def order_record(row: StoredOrder) -> models.OrderRecord:
    return views.client_view(models.OrderRecord, row)


def _batch_record(row: StoredBatch) -> models.BatchRecord:
    return views.build(models.BatchRecord, row)


def _store(store: StorePort | None) -> StorePort:
    if store is None:
        raise Unavailable("kept by the durable store only: [store] backend is memory")
    return store


Handler = Callable[[dict[str, Any]], Awaitable[BaseModel]]


def _listing(
    store: StorePort | None,
    read: Callable[[StorePort, Q], list[R]],
    query: Callable[[dict[str, Any], Any], Q],
    cursor: tuple[type, ...],
    item: Callable[[R], T],
    key: Callable[[R], tuple[object, ...]],
) -> Callable[[dict[str, Any]], Awaitable[models.Page[T]]]:
    """A route handler of one keyset-paged listing: `query(values, after)` builds the
    store's query from the checked parameters and the decoded cursor (the last row's sort
    `key`, of `cursor` types); it asks for limit + 1 rows (is there a next page?), read by
    `read` in a worker thread (the store's own connection)."""

    async def handler(values: dict[str, Any]) -> models.Page[T]:
        after = values.get("cursor")
        asked = query(values, None if after is None else decode_cursor(after, cursor))
        rows = await asyncio.to_thread(read, _store(store), asked)
        limit = values["limit"]
        more = len(rows) > limit
        rows = rows[:limit]
        return models.Page(
            items=[item(r) for r in rows],
            next_cursor=encode_cursor(key(rows[-1])) if more else None,
        )

    return handler


def _common(values: dict[str, Any]) -> dict[str, Any]:
    """The filters every listing has: its time range and its page size (+ 1)."""
    return {"since": values.get("from"), "until": values.get("to"), "limit": values["limit"] + 1}


def _invoice_query(values: dict[str, Any], after: Any) -> InvoiceQuery:
    return InvoiceQuery(
        client=views.client_of(values), symbol=values.get("symbol"), after=after, **_common(values)
    )


def handlers(store: StorePort | None) -> tuple[Handler, Handler, Handler, Handler]:
    """(mint invoices, redemption invoices, order history, batch history) route handlers
    over `store` (None: each answers 503)."""

    def invoice_listing(read: Callable[[StorePort, InvoiceQuery], list[Any]], view: Any) -> Handler:
        # Both invoice kinds page by (invoice time key, row key): store/invoices.py.
        def item(row: Any) -> Any:
            return view(row.client, row.invoice)

        return _listing(store, read, _invoice_query, (str, str), item, lambda r: r.key)

    invoices = invoice_listing(lambda s, q: s.invoices(q), views.invoice)
    redemptions = invoice_listing(lambda s, q: s.redemptions(q), views.redemption)
    orders = _listing(
        store,
        lambda s, q: s.orders(q),
        lambda v, after: OrderQuery(
            client=views.client_of(v),
            symbol=v.get("symbol"),
            side=v.get("side"),
            status=v.get("status"),
            after=None if after is None else after[0],
            **_common(v),
        ),
        (int,),
        order_record,
        lambda r: (r.journal_seq,),
    )
    batches = _listing(
        store,
        lambda s, q: s.batches(q),
        lambda v, after: BatchQuery(
            side=v.get("side"), status=v.get("status"), after=after, **_common(v)
        ),
        (int, int),
        _batch_record,
        lambda r: (r.journal_seq, r.batch_id),
    )
    return invoices, redemptions, orders, batches
