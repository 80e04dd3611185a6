"""Balances over the wire: the Binance venue on the exchange-sim process reports every balance
at start (`account.status`), a deposit (`balanceUpdate` + `outboundAccountPosition`) and a
trade's effect, as `VenueBalance`s, to the unit (the core's check of them against its lots:
tests/unit/engine/test_balances.py)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest

from indexmaker.core.events import ExchangeFill, PlaceExchangeOrder, VenueBalance
from indexmaker.core.ids import Asset, BatchId, ExchangeOrderId, instrument
from indexmaker.model.side import Side
from indexmaker.venues.binance.venue import BinanceVenue

from ..binance_sim.conftest import SimProcess
from .binance_peer import eventually
from .on_sim import Sink, connector_on, exchange_sim

BTC = instrument("BTCUSDC")
USDC, BTC_ASSET = Asset("USDC"), Asset("BTC")


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    with exchange_sim("--symbols", "BTCUSDC", "--seed", "3") as process:
        yield process


@pytest.fixture
async def venue(sim: SimProcess) -> AsyncIterator[tuple[BinanceVenue, Sink]]:
    async with connector_on(sim, ("BTCUSDC",), {"freeze": ["BTCUSDC"]}) as running:
        yield running


def last(sink: Sink, asset: Asset) -> VenueBalance | None:
    found = [e for e in sink.of(VenueBalance) if e.asset == asset]
    return found[-1] if found else None


def deposit(sim: SimProcess, amount: str) -> None:
    body = json.dumps({"coin": "USDC", "amount": amount, "account": "main"}).encode()
    request = urllib.request.Request(f"{sim.url}/sim/deposit", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


async def test_balances_at_start_after_a_deposit_and_after_a_trade(
    sim: SimProcess, venue: tuple[BinanceVenue, Sink]
) -> None:
    adapter, sink = venue
    await eventually(lambda: last(sink, USDC) is not None and last(sink, BTC_ASSET) is not None, 5)
    usdc, btc = last(sink, USDC), last(sink, BTC_ASSET)
    assert usdc is not None and btc is not None and usdc.free > 0 and btc.free > 0

    deposit(sim, "1234.5")  # credited after its confirmations: balanceUpdate, then position
    await eventually(lambda: last(sink, USDC) != usdc, 10)
    credited = last(sink, USDC)
    assert credited is not None and credited.free == usdc.free + Decimal("1234.5")

    depth = await adapter.rest.public("/api/v3/depth", {"symbol": "BTCUSDC", "limit": 5}, weight=5)
    price, quantity = (Decimal(v) for v in depth["asks"][0])
    order = PlaceExchangeOrder(
        ExchangeOrderId("im-bal-1"), BatchId(1), BTC, Side.BUY, price, quantity
    )
    await adapter.place(order)
    fills = [f for f in sink.of(ExchangeFill) if f.order_id == order.order_id]
    # The buyer pays the commission in the base asset: the account gains quantity − commission
    # of BTC and pays Σ price × quantity of USDC, exactly as the fills say.
    gained = sum(
        (f.quantity - f.commission for f in fills if f.commission_asset == "BTC"), Decimal(0)
    )
    paid = sum((f.price * f.quantity for f in fills), Decimal(0))
    await eventually(lambda: last(sink, BTC_ASSET) != btc, 5)
    await eventually(lambda: last(sink, USDC) != credited, 5)
    after_btc, after_usdc = last(sink, BTC_ASSET), last(sink, USDC)
    assert after_btc is not None and after_usdc is not None
    assert after_btc.free + after_btc.locked == btc.free + btc.locked + gained
    assert after_usdc.free + after_usdc.locked == credited.free + credited.locked - paid
