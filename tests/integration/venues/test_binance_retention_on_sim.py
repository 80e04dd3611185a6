"""The simulator's bounded order storage seen through the connector over real sockets: an
order archived by the venue (ended unfilled, -2026) or forgotten by its count bound (-2013)
reconciles as not found; the recent ones still answer."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from indexmaker.core.events import ExchangeOrderClosed, ExchangeOrderStatus
from indexmaker.core.money import round_up_to_step
from indexmaker.core.ports import OrderNotFound
from indexmaker.model.side import Side

from ..binance_sim.conftest import SimProcess, rest
from .on_sim import connector_on, exchange_sim
from .test_binance_venue_on_sim import BTC, order, top


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    args = ("--symbols", "BTCUSDC", "--seed", "11", "--archive-after-s", "0")
    with exchange_sim(*args, "--keep-closed-orders", "3") as process:
        yield process


async def test_archived_and_forgotten_orders_reconcile_as_not_found(sim: SimProcess) -> None:
    async with connector_on(sim, ("BTCUSDC",), {"freeze": ["BTCUSDC"]}) as (adapter, sink):
        asks, tick, step = await top(adapter)
        quantity = round_up_to_step(Decimal(20) / asks[0][0], step)
        unfilled = order(Side.BUY, asks[0][0] - 50 * tick, quantity)  # expires at once
        await adapter.place(unfilled)
        assert sink.of(ExchangeOrderClosed, unfilled.order_id)[0].status is (
            ExchangeOrderStatus.EXPIRED
        )
        # archived as it closed (window 0): the venue's answer, then the connector's
        status, _, body = rest(
            sim, "GET", "/api/v3/order", symbol="BTCUSDC", origClientOrderId=unfilled.order_id
        )
        assert (status, body["code"]) == (400, -2026)
        with pytest.raises(OrderNotFound):
            await adapter.order_status(unfilled.order_id, BTC)
        filled = [order(Side.BUY, asks[0][0] + 50 * tick, quantity) for _ in range(4)]
        for placed in filled:  # each fills through the asks: kept, not archived
            await adapter.place(placed)
        report = await adapter.order_status(filled[-1].order_id, BTC)
        assert report.status is ExchangeOrderStatus.FILLED and report.filled_quantity == quantity
        with pytest.raises(OrderNotFound):  # the oldest of four, past the bound of three
            await adapter.order_status(filled[0].order_id, BTC)
