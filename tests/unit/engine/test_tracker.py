"""engine/tracker.py: exchange orders tracked before sending, rate-limited release, fills."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from indexmaker.core.events import (
    ExchangeFill,
    ExchangeOrderClosed,
    ExchangeOrderStatus,
    PlaceExchangeOrder,
)
from indexmaker.core.ids import (
    Asset,
    BatchId,
    ExchangeOrderId,
    TradeId,
    VenueOrderId,
    instrument,
)
from indexmaker.engine.throttle import RateLimit, RateLimiter
from indexmaker.engine.tracker import (
    EXCHANGE_TRANSITIONS,
    IllegalExchangeTransition,
    OrderTracker,
)
from indexmaker.model.side import Side

D = Decimal
T0 = datetime(2025, 10, 1, tzinfo=UTC)
BTC = instrument("BTCUSDC")


def tracker(limit: int = 2, seconds: int = 10) -> OrderTracker:
    return OrderTracker(RateLimiter([RateLimit("ORDERS", limit, timedelta(seconds=seconds))]))


def place(t: OrderTracker, qty: str = "1", batch: int = 1) -> PlaceExchangeOrder:
    command = PlaceExchangeOrder(t.new_order_id(), BatchId(batch), BTC, Side.BUY, D("100"), D(qty))
    t.enqueue(command, T0)
    return command


def fill(
    order_id: ExchangeOrderId, trade: str, qty: str, price: str = "99", fee: str = "0.01"
) -> ExchangeFill:
    return ExchangeFill(
        order_id,
        BTC,
        VenueOrderId("1"),
        TradeId(trade),
        D(price),
        D(qty),
        D(qty),
        D(fee),
        Asset("USDC"),
        T0,
    )


def test_order_ids_are_sequential() -> None:
    t = tracker()
    assert [t.new_order_id() for _ in range(3)] == ["im-1", "im-2", "im-3"]


def test_tracked_before_sent() -> None:
    t = tracker()
    command = place(t)
    tracked = t.get(command.order_id)
    assert tracked is not None
    assert tracked.status is ExchangeOrderStatus.PENDING and not tracked.sent
    assert tracked.created_at == T0 and tracked.batch_id == 1
    assert t.queued() == 1 and t.open_orders() == [tracked]


def test_rate_limiter_gates_release_fifo() -> None:
    t = tracker(limit=2, seconds=10)
    commands = [place(t) for _ in range(5)]
    # Two admitted now, in order; the rest wait.
    assert t.release(T0) == commands[:2]
    assert t.queued() == 3
    assert t.release(T0 + timedelta(seconds=9, milliseconds=999)) == []
    # The window is (now − 10 s, now]: the T0 entries expire at T0 + 10 s exactly.
    assert t.release(T0 + timedelta(seconds=10)) == commands[2:4]
    assert t.release(T0 + timedelta(seconds=20)) == commands[4:]
    assert t.queued() == 0
    sent = t.get(commands[2].order_id)
    assert sent is not None and sent.sent and sent.sent_at == T0 + timedelta(seconds=10)
    assert t.release(T0 + timedelta(seconds=30)) == []


def test_accepted_goes_live() -> None:
    t = tracker()
    command = place(t)
    tracked = t.on_accepted(command.order_id)
    assert tracked is not None and tracked.status is ExchangeOrderStatus.LIVE
    assert t.on_accepted(ExchangeOrderId("nope")) is None


def test_fill_accumulates_and_dedups_trade_id() -> None:
    t = tracker()
    command = place(t, qty="1")
    first = t.on_fill(fill(command.order_id, "t1", "0.4", fee="0.04"))
    assert first is not None
    assert first.status is ExchangeOrderStatus.LIVE  # a fill before the ack means it is live
    assert t.on_fill(fill(command.order_id, "t1", "0.4", fee="0.04")) is None  # replayed
    second = t.on_fill(fill(command.order_id, "t2", "0.6", fee="0.06"))
    assert second is not None
    assert second.filled == D(1) and second.commission == D("0.10")
    assert second.trade_ids == {TradeId("t1"), TradeId("t2")}


def test_overfill_and_bad_fills_refused() -> None:
    t = tracker()
    command = place(t, qty="1")
    assert t.on_fill(fill(command.order_id, "t1", "0.7")) is not None
    assert t.on_fill(fill(command.order_id, "t2", "0.300001")) is None  # 1.000001 > 1
    assert t.on_fill(fill(command.order_id, "t3", "0")) is None
    assert t.on_fill(fill(command.order_id, "t4", "0.1", price="0")) is None
    assert t.on_fill(fill(command.order_id, "t5", "0.1", fee="-0.01")) is None
    assert t.on_fill(fill(ExchangeOrderId("other"), "t6", "0.1")) is None
    tracked = t.get(command.order_id)
    assert tracked is not None and tracked.filled == D("0.7")
    # A refused trade id is not remembered: the corrected report still counts.
    assert t.on_fill(fill(command.order_id, "t2", "0.3")) is not None


def test_closing() -> None:
    t = tracker()
    command = place(t)
    oid = command.order_id
    # A non-final status is not a close.
    assert t.on_closed(ExchangeOrderClosed(oid, BTC, ExchangeOrderStatus.LIVE)) is None
    closed = t.on_closed(
        ExchangeOrderClosed(oid, BTC, ExchangeOrderStatus.REJECTED, "PRICE_FILTER")
    )
    assert closed is not None
    assert closed.status is ExchangeOrderStatus.REJECTED and closed.reason == "PRICE_FILTER"
    # Final is final: neither a second close nor an accept changes it.
    assert t.on_closed(ExchangeOrderClosed(oid, BTC, ExchangeOrderStatus.FILLED)) is None
    assert t.on_accepted(oid) is None
    assert closed.status is ExchangeOrderStatus.REJECTED
    assert (
        t.on_closed(ExchangeOrderClosed(ExchangeOrderId("x"), BTC, ExchangeOrderStatus.FILLED))
        is None
    )
    assert t.open_orders() == []


def test_forget_batch_drops_only_final_orders_of_that_batch() -> None:
    t = tracker(limit=10)
    done = place(t, batch=1)
    live = place(t, batch=1)
    other = place(t, batch=2)
    t.on_closed(ExchangeOrderClosed(done.order_id, BTC, ExchangeOrderStatus.EXPIRED))
    t.on_closed(ExchangeOrderClosed(other.order_id, BTC, ExchangeOrderStatus.FILLED))
    t.forget_batch(BatchId(1))
    # Final orders of the batch are retired, not forgotten: a late fill is still recognised.
    assert t.get(done.order_id) is not None
    assert [o.order_id for o in t.open_orders()] == [live.order_id]
    assert t.get(live.order_id) is not None
    assert t.get(other.order_id) is not None


def test_unknown_order_reconciles_to_live_then_closes() -> None:
    t = tracker()
    oid = place(t).order_id
    tracked = t.on_unknown(oid)
    assert tracked is not None and tracked.status is ExchangeOrderStatus.UNKNOWN
    assert t.on_unknown(oid) is tracked  # another timeout while reconciling
    assert t.on_accepted(oid) is tracked and tracked.status is ExchangeOrderStatus.LIVE
    assert t.on_closed(ExchangeOrderClosed(oid, BTC, ExchangeOrderStatus.EXPIRED)) is tracked
    assert tracked.status is ExchangeOrderStatus.EXPIRED
    assert t.on_unknown(oid) is None  # final orders are not reopened by venue input


@pytest.mark.parametrize("final", [s for s in ExchangeOrderStatus if s.is_final])
def test_final_exchange_order_refuses_any_move_naming_its_state(
    final: ExchangeOrderStatus,
) -> None:
    t = tracker()
    oid = place(t).order_id
    tracked = t.on_closed(ExchangeOrderClosed(oid, BTC, final))
    assert tracked is not None
    for to in ExchangeOrderStatus:
        with pytest.raises(IllegalExchangeTransition, match=f"{final.value} → {to.value}") as err:
            tracked.move_to(to)
        assert err.value.state is final and "none, it is final" in str(err.value)
    assert tracked.status is final


def test_exchange_transition_table_has_no_way_back_to_pending() -> None:
    t = tracker()
    for state, targets in EXCHANGE_TRANSITIONS.items():
        assert ExchangeOrderStatus.PENDING not in targets, state
    live = t.on_accepted(place(t).order_id)
    assert live is not None
    with pytest.raises(IllegalExchangeTransition, match="live → pending") as err:
        live.move_to(ExchangeOrderStatus.PENDING)
    assert err.value.state is ExchangeOrderStatus.LIVE
    assert live.status is ExchangeOrderStatus.LIVE
