"""The store port's readers on both backends (a real SQLite file, a real PostgreSQL
database): mint invoices by client and time with keyset pages, and the client messages the
FIX outbox is rebuilt from, with their ranks, after a reopen."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from indexmaker.core.events import MintInvoice, SendToClient, Tick
from indexmaker.core.store_records import InvoiceQuery
from indexmaker.sim.replay_check import lifecycle
from indexmaker.store.sql import SqlStore

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _invoice_messages() -> list[SendToClient]:
    _, commands = lifecycle()
    found = [
        c for c in commands if isinstance(c, SendToClient) and isinstance(c.message, MintInvoice)
    ]
    assert len({c.client for c in found}) >= 3
    return found


def _filled(open_store: Callable[[], SqlStore]) -> tuple[list[SendToClient], list[datetime]]:
    """Each invoice one second after the last, one per journal entry, then a reopen."""
    messages = _invoice_messages()
    store = open_store()
    stamped = []
    for n, command in enumerate(messages):
        at = AT + timedelta(seconds=n)
        assert isinstance(command.message, MintInvoice)
        stamped.append(replace(command, message=replace(command.message, timestamp=at)))
        seq = store.append(at, Tick(at)).seq
        store.add_effects(seq, [stamped[-1]])
    store.close()
    return stamped, [AT + timedelta(seconds=n) for n in range(len(messages))]


def test_invoices_by_client_and_time_page_without_gaps(
    open_store: Callable[[], SqlStore],
) -> None:
    stamped, times = _filled(open_store)
    store = open_store()
    pages, after = [], None
    while True:
        page = store.invoices(InvoiceQuery(after=after, limit=2))
        pages.append(page)
        if len(page) < 2:
            break
        after = page[-1].key
    listed = [row.invoice.payment_id for page in pages for row in page]
    assert listed == [c.message.payment_id for c in stamped]  # type: ignore[union-attr]
    client = stamped[1].client
    mine = store.invoices(InvoiceQuery(client=client))
    assert {r.client for r in mine} == {client}
    assert len(mine) == sum(1 for c in stamped if c.client == client)
    window = store.invoices(InvoiceQuery(since=times[1], until=times[3]))
    assert [r.invoice.timestamp for r in window] == times[1:3]
    with pytest.raises(ValueError, match="naive"):
        store.invoices(InvoiceQuery(since=datetime(2026, 1, 1)))
    store.close()


def test_client_messages_are_counted_and_the_recent_ones_kept_with_their_ranks(
    open_store: Callable[[], SqlStore],
) -> None:
    stamped, times = _filled(open_store)
    store = open_store()
    total, kept = store.client_messages(times[2], limit=2)
    assert total == len(stamped)
    assert [m.rank for m in kept] == [len(stamped) - 2, len(stamped) - 1]
    assert [m.command for m in kept] == stamped[-2:]
    assert [m.at for m in kept] == times[-2:]
    total, kept = store.client_messages(times[-1] + timedelta(seconds=1), limit=5)
    assert total == len(stamped) and kept == []
    store.close()
