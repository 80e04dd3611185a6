"""Batches as a queryable table (issue 10: "batches", also completed ones, also after a
restart), written by the store from the engine's `BatchEvent`s of each journal entry.

The engine forgets a batch once it completes; its `created` and `completed` notices (buy
batches, solver.py; sell batches, redemptions.py with `details["side"] = "sell"`) are the
record: one row per (side, batch id), inserted when created, completed in place, in the same
transaction as the journal entry that caused them. Notional is exact decimal text (USDC);
times are `store/invoices.py`'s sortable UTC text. The SQL is the subset both backends share.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from indexmaker.core.events import BatchEvent, Command
from indexmaker.core.store_records import BatchQuery, StoredBatch
from indexmaker.store.listing import Listing, from_time_key, time_key

Statement = tuple[str, tuple[object, ...]]
CREATED = "created"
COMPLETED = "completed"
INSERT = (
    "INSERT INTO batches (side, batch_id, status, created_at, completed_at, order_count, "
    "asset_count, notional, details, journal_seq) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, ?) "
    "ON CONFLICT (side, batch_id) DO NOTHING"
)
COMPLETE = (
    "UPDATE batches SET status = ?, completed_at = ?, order_count = ?, asset_count = ?, "
    "notional = ?, details = ? WHERE side = ? AND batch_id = ?"
)


def side_of(event: BatchEvent) -> str:
    return event.details.get("side", "buy")


def batch_rows(journal_seq: int, at: datetime, commands: Sequence[Command]) -> list[Statement]:
    """The writes one journal entry's batch notices make (usually none)."""
    when = time_key(at)
    rows: list[Statement] = []
    for event in commands:
        if not isinstance(event, BatchEvent):
            continue
        details = json.dumps(dict(sorted(event.details.items())))
        counts = (event.order_count, event.asset_count, str(event.notional), details)
        if event.kind == CREATED:
            rows.append((INSERT, (side_of(event), int(event.batch_id), CREATED, when, *counts,
                                  journal_seq)))  # fmt: skip
        elif event.kind == COMPLETED:
            rows.append((COMPLETE, (COMPLETED, when, *counts, side_of(event), int(event.batch_id))))
    return rows


COLUMNS = (
    "side, batch_id, status, created_at, completed_at, order_count, asset_count, notional, "
    "details, journal_seq"
)


def select(query: BatchQuery) -> tuple[str, list[object]]:
    """SQL and parameters for `query`, in creation (journal) order."""
    listing = (
        Listing(COLUMNS, "batches")
        .equal("side", query.side)
        .equal("status", query.status)
        .between("created_at", query.since, query.until)
    )
    if query.after is not None:
        seq, batch_id = query.after
        listing.where("(journal_seq > ? OR (journal_seq = ? AND batch_id > ?))", seq, seq, batch_id)
    return listing.build("journal_seq, batch_id", query.limit)


def decode_row(row: Sequence[object]) -> StoredBatch:
    side, batch_id, status, created_at, completed_at, orders, assets, notional, details, seq = row
    return StoredBatch(
        side=str(side),
        batch_id=int(str(batch_id)),
        status=str(status),
        created_at=from_time_key(str(created_at)),
        completed_at=None if completed_at is None else from_time_key(str(completed_at)),
        order_count=int(str(orders)),
        asset_count=int(str(assets)),
        notional=Decimal(str(notional)),
        details=dict(json.loads(str(details))),
        journal_seq=int(str(seq)),
    )
