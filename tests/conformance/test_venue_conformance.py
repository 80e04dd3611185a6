"""What every venue adapter must do, stated against `VenuePort` (docs/adapters.md).

Runs once per harness in conftest.py. Only behaviour the port promises is asserted, so a
real connector passes the same tests against its venue (or the venue's simulator).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from indexmaker.core.errors import IndexMakerError, RateLimitedError
from indexmaker.core.events import (
    BookInvalid,
    BookSnapshot,
    BookUpdate,
    ExchangeFill,
    ExchangeOrderAccepted,
    ExchangeOrderClosed,
    ExchangeOrderStatus,
    PlaceExchangeOrder,
    RateLimitFeedback,
)
from indexmaker.core.ids import BatchId, ExchangeOrderId
from indexmaker.core.ports import OrderNotFound, VenuePort
from indexmaker.model.side import Side

from .conftest import D, Harness

_next = iter(range(1, 10_000))


def buy(h: Harness, price, quantity) -> PlaceExchangeOrder:  # type: ignore[no-untyped-def]
    oid = ExchangeOrderId(f"conf-{h.name}-{next(_next)}")
    return PlaceExchangeOrder(oid, BatchId(1), h.pair, Side.BUY, D(price), D(quantity))


def closed(h: Harness, order_id: ExchangeOrderId) -> list[ExchangeOrderClosed]:
    return [e for e in h.sink.of(ExchangeOrderClosed) if e.order_id == order_id]


def fills(h: Harness, order_id: ExchangeOrderId) -> dict[str, ExchangeFill]:
    return {str(e.trade_id): e for e in h.sink.of(ExchangeFill) if e.order_id == order_id}


async def settle(h: Harness, order: PlaceExchangeOrder, quantity=None) -> None:  # type: ignore[no-untyped-def]
    """Until the close has come and (when given) fills add up to `quantity`."""

    def done() -> bool:
        got = sum((f.quantity for f in fills(h, order.order_id).values()), D(0))
        return bool(closed(h, order.order_id)) and (quantity is None or got == quantity)

    await h.sink.wait_for(done)


def test_the_adapter_is_a_venue_port(harness: Harness) -> None:
    assert isinstance(harness.venue, VenuePort)
    assert harness.venue.venue


async def test_rules_name_the_instrument_filters(harness: Harness) -> None:
    rules = (await harness.venue.instruments())[harness.pair]
    assert rules.instrument == harness.pair
    assert rules.tick_size > 0 and rules.step_size > 0 and rules.min_notional > 0


async def test_a_book_subscription_starts_with_a_snapshot(harness: Harness) -> None:
    await harness.venue.subscribe_books([harness.pair])
    await harness.sink.wait_for(lambda: bool(harness.sink.of(BookSnapshot)))
    # the first book event is the snapshot (rules may come before it: docs/adapters.md)
    first = next(e for e in harness.sink.events if isinstance(e, (BookSnapshot, BookUpdate)))
    assert isinstance(first, BookSnapshot) and first.instrument == harness.pair
    assert first.asks[0][0] == harness.best_ask
    assert first.bids[0][0] < first.asks[0][0]  # not crossed
    assert [p for p, _ in first.asks] == sorted(p for p, _ in first.asks)  # best first


async def test_trades_show_in_the_book_as_updates(harness: Harness) -> None:
    await harness.venue.subscribe_books([harness.pair])
    # synchronised first: a snapshot taken after the trade already holds it, and the trade's
    # diff is then late (u <= the snapshot's id) and rightly never sent on
    await harness.sink.wait_for(lambda: bool(harness.sink.of(BookSnapshot)))
    order = buy(harness, harness.best_ask, "0.4")
    await harness.venue.place(order)
    await harness.sink.wait_for(lambda: bool(harness.sink.of(BookUpdate)))
    update = harness.sink.of(BookUpdate)[0]
    assert update.instrument == harness.pair
    assert (harness.best_ask, D("0.6")) in update.asks  # 1.0 at the best ask, 0.4 taken


async def test_an_ioc_order_that_crosses_fills_with_unique_trade_ids(harness: Harness) -> None:
    order = buy(harness, harness.far_price, "2.5")
    await harness.venue.place(order)
    await settle(harness, order, D("2.5"))
    got = fills(harness, order.order_id)
    assert len(got) >= 2  # two levels were crossed
    assert sum((f.quantity for f in got.values()), D(0)) == D("2.5")
    assert all(f.price <= order.price and f.commission >= 0 for f in got.values())
    assert all(f.instrument == harness.pair and f.commission_asset for f in got.values())
    # Cumulative quantities rise fill by fill and end at the order's filled quantity.
    cumulative = sorted(f.cumulative_quantity for f in got.values())
    assert cumulative[-1] == D("2.5") and len(set(cumulative)) == len(cumulative)
    assert len({f.venue_order_id for f in got.values()}) == 1
    assert harness.sink.of(ExchangeOrderAccepted)[0].order_id == order.order_id
    assert closed(harness, order.order_id)[-1].status is ExchangeOrderStatus.FILLED


async def test_an_ioc_order_larger_than_the_book_fills_partly_then_expires(
    harness: Harness,
) -> None:
    order = buy(harness, harness.far_price, harness.ask_depth + 1)
    await harness.venue.place(order)
    await settle(harness, order, harness.ask_depth)
    assert closed(harness, order.order_id)[-1].status is ExchangeOrderStatus.EXPIRED


async def test_an_ioc_order_that_does_not_cross_expires_unfilled(harness: Harness) -> None:
    order = buy(harness, harness.best_ask - D("1"), "1")
    await harness.venue.place(order)
    await settle(harness, order)
    assert not fills(harness, order.order_id)
    assert closed(harness, order.order_id)[-1].status is ExchangeOrderStatus.EXPIRED


async def test_an_order_breaking_a_filter_is_rejected_with_the_filter_named(
    harness: Harness,
) -> None:
    order = buy(harness, harness.best_ask + harness.tick / 2, "1")  # off the tick
    try:
        await harness.venue.place(order)
    except IndexMakerError:
        return  # refusing at once is as good as a pushed reject
    await settle(harness, order)
    final = closed(harness, order.order_id)[-1]
    assert final.status is ExchangeOrderStatus.REJECTED
    assert final.reason is not None and "PRICE_FILTER" in final.reason
    assert not fills(harness, order.order_id)


async def test_a_client_order_id_is_used_once(harness: Harness) -> None:
    order = buy(harness, harness.best_ask, "0.1")
    await harness.venue.place(order)
    with pytest.raises(IndexMakerError):
        await harness.venue.place(order)
    await settle(harness, order, D("0.1"))
    assert len(fills(harness, order.order_id)) == 1  # the repeat bought nothing


async def test_status_reports_the_same_fills_as_the_stream(harness: Harness) -> None:
    order = buy(harness, harness.far_price, "1.5")
    await harness.venue.place(order)
    await settle(harness, order, D("1.5"))
    report = await harness.venue.order_status(order.order_id, harness.pair)
    assert report.status is ExchangeOrderStatus.FILLED
    assert report.filled_quantity == D("1.5")
    streamed = fills(harness, order.order_id)
    # Same trade ids with the same fields: the core deduplicates one against the other.
    assert {str(f.trade_id): f for f in report.fills} == streamed


async def test_status_of_an_unknown_order_raises_not_found(harness: Harness) -> None:
    with pytest.raises(OrderNotFound):
        await harness.venue.order_status(ExchangeOrderId("never-sent"), harness.pair)


async def test_cancelling_a_closed_order_raises_not_found(harness: Harness) -> None:
    order = buy(harness, harness.best_ask, "0.1")
    await harness.venue.place(order)
    await settle(harness, order)
    with pytest.raises(OrderNotFound):
        await harness.venue.cancel(order.order_id, harness.pair)


async def test_a_live_order_can_be_cancelled(harness: Harness) -> None:
    if not harness.can_rest or harness.faults is None:
        pytest.skip(f"{harness.name}: orders never rest long enough to cancel")
    harness.faults.hold_next_order()
    order = buy(harness, harness.best_ask, "0.5")
    await harness.venue.place(order)
    await harness.sink.wait_for(lambda: bool(harness.sink.of(ExchangeOrderAccepted)))
    assert (
        await harness.venue.order_status(order.order_id, harness.pair)
    ).status is ExchangeOrderStatus.LIVE
    assert [r.order_id for r in await harness.venue.open_orders()] == [order.order_id]
    await harness.venue.cancel(order.order_id, harness.pair)
    await settle(harness, order)
    assert closed(harness, order.order_id)[-1].status is ExchangeOrderStatus.CANCELLED
    assert not fills(harness, order.order_id)
    assert await harness.venue.open_orders() == []


async def test_a_fill_reported_after_the_close_is_still_delivered(harness: Harness) -> None:
    if harness.faults is None:
        pytest.skip(f"{harness.name}: delivery order cannot be forced")
    harness.faults.close_before_last_fill()
    order = buy(harness, harness.far_price, "2.5")
    await harness.venue.place(order)
    await settle(harness, order, D("2.5"))
    own = [e for e in harness.sink.events if getattr(e, "order_id", None) == order.order_id]
    assert isinstance(own[-1], ExchangeFill)  # the close came first
    report = await harness.venue.order_status(order.order_id, harness.pair)
    assert report.filled_quantity == D("2.5")


async def test_a_repeated_fill_carries_the_same_trade_id_and_fields(harness: Harness) -> None:
    if harness.faults is None:
        pytest.skip(f"{harness.name}: repeats cannot be forced")
    harness.faults.repeat_fills()
    order = buy(harness, harness.far_price, "1.5")
    await harness.venue.place(order)
    await settle(harness, order, D("1.5"))
    distinct = set(fills(harness, order.order_id).values())
    assert sum((f.quantity for f in distinct), D(0)) == D("1.5") and len(distinct) >= 2
    assert await harness.faults.repeats_seen(len(distinct))  # the venue did repeat them
    # Whatever the adapter passed on (each once, or each repeat), a repeat is identical: the
    # core deduplicates by (instrument, trade id).
    own = [e for e in harness.sink.of(ExchangeFill) if e.order_id == order.order_id]
    assert set(own) == distinct


async def test_a_failed_placement_leaves_no_order_at_the_venue(harness: Harness) -> None:
    if harness.faults is None:
        pytest.skip(f"{harness.name}: failures cannot be forced")
    harness.faults.fail_next_place()
    order = buy(harness, harness.best_ask, "0.1")
    with pytest.raises(IndexMakerError):  # a network failure, or the venue's refusal
        await harness.venue.place(order)
    with pytest.raises(OrderNotFound):
        await harness.venue.order_status(order.order_id, harness.pair)


async def test_limit_headroom_falls_as_orders_are_placed(harness: Harness) -> None:
    before = {p.pool: p.remaining for p in harness.venue.limit_headroom()}
    assert before
    order = buy(harness, harness.best_ask, "0.1")
    await harness.venue.place(order)
    after = {p.pool: p.remaining for p in harness.venue.limit_headroom()}
    assert any(after[pool] < before[pool] for pool in before)


async def test_a_rate_limited_placement_is_fed_back_with_its_retry_after(
    harness: Harness,
) -> None:
    """On a 429 the adapter pushes `RateLimitFeedback` (venue, retry-after) before `place`
    raises `RateLimitedError`; the order never reached the venue."""
    if harness.faults is None or not harness.faults.rate_limit_next(timedelta(milliseconds=1500)):
        pytest.skip(f"{harness.name}: a 429 cannot be forced")
    order = buy(harness, harness.best_ask, "0.1")
    with pytest.raises(RateLimitedError) as refused:
        await harness.venue.place(order)
    # Binance states the moment the wait ends: what is left of it on arrival may be a bit less.
    assert 1000 <= refused.value.retry_after_ms <= 1500
    (feedback,) = harness.sink.of(RateLimitFeedback)
    assert feedback.venue == harness.venue.venue
    assert timedelta(seconds=1) <= feedback.retry_after <= timedelta(milliseconds=1500)
    assert feedback.reason
    with pytest.raises(OrderNotFound):
        await harness.venue.order_status(order.order_id, harness.pair)
    # The limit lifted: the same client order id is taken now and trades.
    await harness.venue.place(order)
    await settle(harness, order, D("0.1"))


async def test_an_invalid_book_sends_no_diffs_until_a_fresh_snapshot(harness: Harness) -> None:
    """A depth stream that drops makes the book `BookInvalid`; nothing for it follows until a
    new `BookSnapshot`, and the book rebuilt from there shows what traded meanwhile."""
    if harness.drop_stream is None or harness.restore_stream is None:
        pytest.skip(f"{harness.name}: a stream drop cannot be forced")
    await harness.venue.subscribe_books([harness.pair])
    await harness.sink.wait_for(lambda: bool(harness.sink.of(BookSnapshot)))
    await harness.drop_stream()
    await harness.sink.wait_for(lambda: bool(harness.sink.of(BookInvalid)), timeout=10)
    invalid = harness.sink.of(BookInvalid)[0]
    assert invalid.instrument == harness.pair and invalid.reason
    order = buy(harness, harness.best_ask, "0.4")  # a trade while the book is not trusted
    await harness.venue.place(order)
    await settle(harness, order, D("0.4"))
    await harness.restore_stream()
    book_events = (BookSnapshot, BookUpdate, BookInvalid)

    def after_invalid() -> list[BookSnapshot | BookUpdate | BookInvalid]:
        events = [e for e in harness.sink.events if isinstance(e, book_events)]
        return events[events.index(invalid) + 1 :]

    def rebuilt() -> dict[D, D]:
        asks: dict[D, D] = {}
        for event in after_invalid():
            if isinstance(event, BookSnapshot):
                asks = dict(event.asks)
            elif isinstance(event, BookUpdate):
                asks.update(event.asks)
        return {p: q for p, q in asks.items() if q}

    await harness.sink.wait_for(lambda: rebuilt().get(harness.best_ask) == D("0.6"), timeout=10)
    later = after_invalid()
    assert isinstance(later[0], BookSnapshot) and later[0].instrument == harness.pair
