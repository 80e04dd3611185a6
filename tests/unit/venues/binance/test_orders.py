"""Order bookkeeping on recorded Binance answers and executionReports (no sockets)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from indexmaker.core.errors import InvalidOrderError
from indexmaker.core.events import (
    ExchangeFill,
    ExchangeOrderAccepted,
    ExchangeOrderClosed,
    ExchangeOrderStatus,
    PlaceExchangeOrder,
)
from indexmaker.core.ids import BatchId, ExchangeOrderId, VenueOrderId, instrument
from indexmaker.model.side import Side
from indexmaker.venues.binance.orders import OrderBookkeeping

D = Decimal
PAIR = instrument("BTCUSDC")
OID = ExchangeOrderId("im-7")


def order() -> PlaceExchangeOrder:
    return PlaceExchangeOrder(OID, BatchId(1), PAIR, Side.BUY, D("50000.10"), D("0.00200"))


def books() -> OrderBookkeeping:
    keeper = OrderBookkeeping()
    keeper.track(order())
    return keeper


def fill(
    trade: int, qty: str, commission: str = "0.02", asset: str = "USDC"
) -> dict[str, str | int]:
    return {
        "price": "50000.00",
        "qty": qty,
        "commission": commission,
        "commissionAsset": asset,
        "tradeId": trade,
    }


ANSWER = {
    "symbol": "BTCUSDC",
    "orderId": 28,
    "clientOrderId": "im-7",
    "status": "EXPIRED",
    "expiryReason": "UNFILLED_IOC_QUANTITY_EXPIRED",
    "fills": [fill(11, "0.00100"), fill(12, "0.00050")],
}


def report(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {"e": "executionReport", "s": "BTCUSDC", "c": "im-7", "i": 28}
    base.update(fields)
    return base


def test_params_are_plain_decimal_text_with_our_client_order_id() -> None:
    keeper = books()
    params = keeper.place_params(
        PlaceExchangeOrder(OID, BatchId(1), PAIR, Side.SELL, D("1E-7"), D("1.0E+1"))
    )
    assert params["price"] == "0.0000001"
    assert params["quantity"] == "10"
    assert params["newClientOrderId"] == "im-7"
    assert params["timeInForce"] == "IOC"
    with pytest.raises(InvalidOrderError):
        keeper.track(order())  # tracked once


def test_full_answer_gives_accept_fills_and_close_once() -> None:
    keeper = books()
    events = keeper.on_order_answer(ANSWER)
    assert isinstance(events[0], ExchangeOrderAccepted)
    fills = [e for e in events if isinstance(e, ExchangeFill)]
    assert [
        (f.trade_id, f.quantity, f.cumulative_quantity, f.commission, f.commission_asset)
        for f in fills
    ] == [
        ("11", D("0.00100"), D("0.00100"), D("0.02"), "USDC"),
        ("12", D("0.00050"), D("0.00150"), D("0.02"), "USDC"),
    ]
    assert all(f.venue_order_id == VenueOrderId("28") for f in fills)
    closed = events[-1]
    assert isinstance(closed, ExchangeOrderClosed)
    assert (closed.status, closed.reason, closed.cumulative_quantity) == (
        ExchangeOrderStatus.EXPIRED,
        "UNFILLED_IOC_QUANTITY_EXPIRED",
        D("0.00150"),
    )
    assert keeper.on_order_answer(ANSWER) == []  # a repeat adds nothing


def test_stream_reports_of_the_same_trades_are_deduplicated_and_late_fill_delivered() -> None:
    keeper = books()
    keeper.on_order_answer(ANSWER)
    same = report(
        x="TRADE", X="PARTIALLY_FILLED", t=11, l="0.00100", L="50000.00", n="0.02", N="USDC"
    )
    assert keeper.on_execution_report(same) == []
    assert keeper.duplicates == 1
    # a trade the answer did not carry, reported after the close, still opens a lot
    late = report(x="TRADE", X="FILLED", t=13, l="0.00050", L="50000.00", n="0", N="USDC")
    events = keeper.on_execution_report(late)
    assert [type(e) for e in events] == [ExchangeFill]


def test_stream_first_then_answer_gives_each_trade_once() -> None:
    keeper = books()
    new = keeper.on_execution_report(report(x="NEW", X="NEW"))
    assert [type(e) for e in new] == [ExchangeOrderAccepted]
    keeper.on_execution_report(
        report(x="TRADE", X="PARTIALLY_FILLED", t=11, l="0.00100", L="50000.00", n="0.02", N="USDC")
    )
    events = keeper.on_order_answer(ANSWER)
    assert [e.trade_id for e in events if isinstance(e, ExchangeFill)] == ["12"]


def test_commission_passed_on_as_charged_and_unknown_order_reported_as_never_seen() -> None:
    keeper = books()
    events = keeper.on_order_answer(
        {"clientOrderId": "im-7", "status": "FILLED", "fills": [fill(1, "0.002", "0.0001", "BNB")]}
    )
    f = next(e for e in events if isinstance(e, ExchangeFill))
    assert (f.quantity, f.commission, f.commission_asset) == (D("0.002"), D("0.0001"), "BNB")
    fresh = OrderBookkeeping()
    fresh.track(order())
    report_ = fresh.report(OID, None)
    assert report_.status is None
    assert report_.cumulative_quantity == 0


def test_reject_closes_without_accept() -> None:
    keeper = books()
    events = keeper.on_rejected(OID, "binance -1013: Filter failure: LOT_SIZE")
    assert len(events) == 1
    closed = events[0]
    assert isinstance(closed, ExchangeOrderClosed)
    assert closed.status is ExchangeOrderStatus.REJECTED
    assert closed.reason == "binance -1013: Filter failure: LOT_SIZE"
    assert keeper.on_execution_report(report(x="EXPIRED", X="EXPIRED")) == []


def test_unknown_orders_are_ignored() -> None:
    keeper = books()
    assert keeper.on_execution_report(report(c="someone-else", x="NEW", X="NEW")) == []
