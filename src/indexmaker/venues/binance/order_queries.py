"""Asking Binance about orders (reconciliation, docs/adapters.md): one order's status and
fills by our client order id, and the account's open orders, over the WebSocket API.

Split from venue.py (the `VenuePort` composition) along its responsibility: these read the
venue's view of orders; the venue object only delegates to them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

from indexmaker.core.events import EngineInput, ExchangeOrderStatus
from indexmaker.core.ids import ExchangeOrderId, InstrumentId, Pair, Venue
from indexmaker.core.money import dec
from indexmaker.core.ports import OrderNotFound, OrderReport
from indexmaker.venues.binance.limits import OrderNotFoundError
from indexmaker.venues.binance.orders import OrderBookkeeping
from indexmaker.venues.binance.ws_api import BinanceWsApi

Push = Callable[[EngineInput], Awaitable[None]]


async def order_status(
    ws_api: BinanceWsApi,
    orders: OrderBookkeeping,
    push: Push,
    order_id: ExchangeOrderId,
    instrument: InstrumentId,
) -> OrderReport:
    """Reconcile by our client order id (`order.status`, then `myTrades` for its fills):
    fills not seen yet are pushed first; the report lists every fill the venue knows.
    Raises OrderNotFound when the venue has no such order (-2013); other WS-API errors
    (NetworkError, StatusUnknownError, RateLimitedError) propagate."""
    pair = instrument.pair
    try:
        answer = await ws_api.request(
            "order.status", {"symbol": pair, "origClientOrderId": order_id}, weight=4
        )
    except OrderNotFoundError as exc:
        raise OrderNotFound(order_id) from exc
    tracked = orders.orders.get(order_id)
    if tracked is None:  # not ours this run (a restart): adopt it for reconciliation
        tracked = orders.adopt(order_id, instrument, answer)
    if answer.get("orderId") is not None and _dec(answer.get("executedQty", "0")) > 0:
        trades = await ws_api.request(
            "myTrades", {"symbol": pair, "orderId": answer["orderId"]}, weight=5
        )
        for event in orders.on_trades(order_id, list(trades)):
            await push(event)
    for event in orders.on_order_answer(answer):
        await push(event)
    report = orders.report(order_id, answer)
    return OrderReport(
        order_id,
        instrument,
        report.status or ExchangeOrderStatus.REJECTED,
        _dec(answer.get("executedQty", "0")),
        tuple(tracked.fills),
        None,
        report.venue_order_id,
    )


async def open_orders(ws_api: BinanceWsApi, venue: Venue) -> list[OrderReport]:
    """Every open order of the account (`openOrders.status`, weight 80) as LIVE reports of
    `venue`, with the quantity executed so far."""
    answer = await ws_api.request("openOrders.status", {}, weight=80)
    reports = []
    for row in answer:
        instrument = InstrumentId(venue, Pair(str(row["symbol"])))
        reports.append(
            OrderReport(
                ExchangeOrderId(str(row["clientOrderId"])),
                instrument,
                ExchangeOrderStatus.LIVE,
                _dec(row.get("executedQty", "0")),
            )
        )
    return reports


def _dec(value: object) -> Decimal:
    return dec(str(value))
