"""Orders as the store keeps them (issue 10's query API: closed and old orders, also after a
restart), on both backends: the whole lifecycle (buys minted, a cancel, redemptions) handled
by an engine journalling into a real store, then read back after a reopen with filters and
keyset pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import ROUND_FLOOR, Decimal

from indexmaker.app.runtime import EFFECTS
from indexmaker.core.clock import ManualClock
from indexmaker.core.events import (
    CancelIndexOrderResponse,
    MintInvoice,
    NewIndexOrderRequest,
    RequestStatus,
    SendToClient,
)
from indexmaker.core.redemption_events import RedemptionInvoice
from indexmaker.core.store_records import InvoiceQuery, OrderQuery
from indexmaker.engine.engine import Engine
from indexmaker.sim.replay_check import lifecycle, setup
from indexmaker.store.order_history import CANCELED, FILLING, MINTED, REDEEMED, REJECTED
from indexmaker.store.sql import SqlStore


def _handled(open_store: Callable[[], SqlStore]) -> list[SendToClient]:
    """The lifecycle's inputs handled again by an engine journalling into the store, with
    their effects in its outbox (as the runtime does); the client messages they caused."""
    entries, _ = lifecycle()
    store = open_store()
    clock = ManualClock()
    engine = Engine(setup(), clock, store)
    sent: list[SendToClient] = []
    for entry in entries:
        clock.set(entry.at)
        commands = engine.handle(entry.event)
        store.add_effects(store.last_seq, [c for c in commands if isinstance(c, EFFECTS)])
        sent += [c for c in commands if isinstance(c, SendToClient)]
        store.commit()
    store.close()
    return sent


def test_every_order_is_kept_with_the_state_its_client_was_told(
    open_store: Callable[[], SqlStore],
) -> None:
    sent = _handled(open_store)
    requests = [e.event for e in lifecycle()[0] if isinstance(e.event, NewIndexOrderRequest)]
    store = open_store()  # a restart: read back from the database only
    rows = store.orders(OrderQuery(limit=1000))
    assert [(r.client, r.client_order_id) for r in rows] == [
        (q.client, q.client_order_id) for q in requests
    ]
    by_id = {(r.client, r.client_order_id): r for r in rows}
    minted = [(c.client, c.message) for c in sent if isinstance(c.message, MintInvoice)]
    assert minted
    for client, invoice in minted:
        row = by_id[(client, invoice.client_order_id)]
        assert (row.status, row.payment_id) == (MINTED, str(invoice.payment_id))
        assert row.filled_quantity == invoice.filled_quantity
        assert row.collateral_spent == invoice.amount_paid
    canceled = [
        (c.client, c.message.client_order_id)
        for c in sent
        if isinstance(c.message, CancelIndexOrderResponse)
        and c.message.status is RequestStatus.CANCELED
    ]
    redeemed = [(c.client, c.message) for c in sent if isinstance(c.message, RedemptionInvoice)]
    assert redeemed
    for client, redemption in redeemed:
        row = by_id[(client, redemption.client_order_id)]
        assert row.status == REDEEMED and row.side == "sell"
        assert row.filled_quantity == redemption.redeemed_quantity
        # Its rate as redeemed, what it was paid, and no acceptance's stale "waiting for".
        rate = redemption.redeemed_quantity / redemption.quantity
        rate = rate.quantize(Decimal("1e-12"), ROUND_FLOOR)
        assert row.fill_rate == rate > 0 and row.reason is None
        assert row.collateral_spent == redemption.net_paid
    for client, invoice in minted:
        assert by_id[(client, invoice.client_order_id)].reason is None
    assert canceled
    for key in canceled:  # a partial cancel: the rest went on and was minted
        done = key in {(client, invoice.client_order_id) for client, invoice in minted}
        assert by_id[key].status == (MINTED if done else CANCELED)
    assert {r.status for r in rows} <= {MINTED, REDEEMED, CANCELED, REJECTED, FILLING}
    store.close()


def test_orders_page_and_filter_by_client_status_and_time(
    open_store: Callable[[], SqlStore],
) -> None:
    _handled(open_store)
    store = open_store()
    every = store.orders(OrderQuery(limit=1000))
    pages, after = [], None
    while True:
        page = store.orders(OrderQuery(after=after, limit=3))
        pages += page
        if len(page) < 3:
            break
        after = page[-1].journal_seq
    assert pages == every
    client = every[0].client
    mine = store.orders(OrderQuery(client=client, limit=1000))
    assert mine and {r.client for r in mine} == {client}
    assert len(mine) == sum(1 for r in every if r.client == client)
    minted = store.orders(OrderQuery(status=MINTED, limit=1000))
    assert minted and all(r.status == MINTED for r in minted)
    sells = store.orders(OrderQuery(side="sell", limit=1000))
    assert sells and {r.side for r in sells} == {"sell"}
    later = every[-1].received_at
    recent = store.orders(OrderQuery(since=later, limit=1000))
    assert recent and all(r.received_at >= later for r in recent)
    assert store.orders(OrderQuery(until=every[0].received_at, limit=5)) == []
    assert store.orders(OrderQuery(since=later + timedelta(days=1))) == []
    store.close()


def test_redemption_invoices_are_listed_by_client_and_time_in_keyset_pages(
    open_store: Callable[[], SqlStore],
) -> None:
    sent = _handled(open_store)
    redeemed = [(c.client, c.message) for c in sent if isinstance(c.message, RedemptionInvoice)]
    store = open_store()  # a restart: read back from the database only
    pages, after = [], None
    for _ in range(len(redeemed) + 1):  # bounded
        page = store.redemptions(InvoiceQuery(after=after, limit=1))
        pages += page
        if not page:
            break
        after = page[-1].key
    assert sorted((r.client, r.invoice) for r in pages) == sorted(redeemed)
    times = [r.invoice.timestamp for r in pages]
    assert times == sorted(times)
    client, first = redeemed[0]
    mine = store.redemptions(InvoiceQuery(client=client, client_order_id=first.client_order_id))
    assert [(r.client, r.invoice) for r in mine] == [(client, first)]
    assert store.redemptions(InvoiceQuery(since=times[-1] + timedelta(seconds=1))) == []
    assert store.invoices(InvoiceQuery(client_order_id=first.client_order_id)) == []
    store.close()
