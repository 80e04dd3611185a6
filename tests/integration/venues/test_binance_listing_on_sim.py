"""Listing changes from exchangeInfo, against the exchange-sim process over loopback sockets:
a halted symbol leaves the rules and the books (unsubscribed), its open order is reconciled and
the operator alerted; trading again, it is resubscribed and its book comes back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest

from indexmaker.core.errors import NonRetryableError
from indexmaker.core.events import (
    BookInvalid,
    BookSnapshot,
    BookUpdate,
    ExchangeFill,
    ExchangeOrderClosed,
    InstrumentStatus,
    PlaceExchangeOrder,
    RulesUpdate,
)
from indexmaker.core.ids import BatchId, ExchangeOrderId, instrument
from indexmaker.model.side import Side
from indexmaker.venues.binance.limits import StatusUnknownError
from indexmaker.venues.binance.venue import BinanceVenue

from ..binance_sim.conftest import SimProcess
from .binance_peer import eventually
from .on_sim import Sink, connector_on, exchange_sim

BTC, ETH = instrument("BTCUSDC"), instrument("ETHUSDC")


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    with exchange_sim("--symbols", "BTCUSDC,ETHUSDC", "--seed", "5") as process:
        yield process


@pytest.fixture
async def venue(sim: SimProcess) -> AsyncIterator[tuple[BinanceVenue, Sink]]:
    # exchangeInfo every 0.2 s: the adapter's own refresher notices the change
    async with connector_on(sim, ("BTCUSDC", "ETHUSDC"), exchange_info_refresh_s=0.2) as running:
        yield running


async def test_halted_symbol_leaves_batches_is_reconciled_and_comes_back_when_trading(
    sim: SimProcess, venue: tuple[BinanceVenue, Sink]
) -> None:
    adapter, sink = venue
    await adapter.subscribe_books([BTC, ETH])
    await eventually(lambda: {e.instrument for e in sink.of(BookSnapshot)} == {BTC, ETH}, 10)
    # An order whose answer is lost (it executed): still open for us when the halt comes.
    depth = await adapter.rest.public("/api/v3/depth", {"symbol": "ETHUSDC", "limit": 5}, weight=5)
    price, quantity = (Decimal(v) for v in depth["asks"][0])
    sim.admin("POST", {"unknown_next_orders": 1, "drop_user_data": 10})
    lost = PlaceExchangeOrder(
        ExchangeOrderId("im-halt-1"), BatchId(1), ETH, Side.BUY, price, quantity
    )
    with pytest.raises(StatusUnknownError):
        await adapter.place(lost)
    assert not sink.of(ExchangeOrderClosed, lost.order_id)

    sim.admin("POST", {"symbol_status": {"ETHUSDC": "HALT"}})
    await eventually(lambda: any(e.instrument == ETH for e in sink.of(BookInvalid)), 5)
    halted_at = len(sink.events)
    assert ETH not in await adapter.instruments() and BTC in await adapter.instruments()
    assert any("ETHUSDC" in a and "HALT" in a for a in adapter.alerts)  # the operator is told
    assert sink.of(InstrumentStatus) == [InstrumentStatus(ETH, False, "HALT")]  # and the core
    # its open order was asked about: the fills it had, then the close
    await eventually(lambda: bool(sink.of(ExchangeOrderClosed, lost.order_id)), 5)
    assert sum(f.quantity for f in sink.of(ExchangeFill, lost.order_id)) == quantity
    assert adapter.market is not None and adapter.market.removed == {ETH.pair}
    with pytest.raises(NonRetryableError):  # nothing new is sent on it
        await adapter.place(
            PlaceExchangeOrder(
                ExchangeOrderId("im-halt-2"), BatchId(2), ETH, Side.BUY, price, quantity
            )
        )

    sim.admin("POST", {"symbol_status": {"ETHUSDC": "TRADING"}})
    await eventually(lambda: any(e.instrument == ETH for e in sink.of(RulesUpdate)[1:]), 5)
    # resubscribed: a fresh snapshot, then its diffs again (the market moves once trading)
    await eventually(
        lambda: any(
            isinstance(e, BookSnapshot) and e.instrument == ETH for e in sink.events[halted_at:]
        ),
        10,
    )
    await eventually(
        lambda: any(
            isinstance(e, BookUpdate) and e.instrument == ETH for e in sink.events[halted_at:]
        ),
        10,
    )
    assert ETH in await adapter.instruments() and not adapter.market.removed
    assert any("ETHUSDC" in a and "trading again" in a for a in adapter.alerts)
    assert sink.of(InstrumentStatus)[1:] == [InstrumentStatus(ETH, True, "TRADING")]
