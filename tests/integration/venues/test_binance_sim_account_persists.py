"""`EXCHANGE_SIM_URL`: the service's venue on a simulator that outlives it keeps trading on the
same account, so a restart (crash recovery) reconciles against the balances and orders it left,
as on the real exchange (a simulator the service starts itself keeps its account in a state
directory: tests/integration/binance_sim/test_state_dir.py)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from indexmaker.app.binance_wiring import binance_venue
from indexmaker.app.config import ConfigError
from indexmaker.core.events import ExchangeFill, PlaceExchangeOrder, VenueBalance
from indexmaker.core.ids import Asset, BatchId, ExchangeOrderId, instrument
from indexmaker.model.side import Side

from ..binance_sim.conftest import SimProcess
from .binance_peer import eventually
from .on_sim import Sink, exchange_sim

ETH = instrument("ETHUSDC")


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    with exchange_sim("--symbols", "ETHUSDC", "--seed", "9") as process:
        yield process


def eth_balance(sink: Sink) -> Decimal:
    balances = [e for e in sink.events if isinstance(e, VenueBalance) and e.asset == Asset("ETH")]
    assert balances, "no ETH balance reported"
    return balances[-1].free


async def test_a_restarted_venue_trades_on_the_same_account(
    sim: SimProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXCHANGE_SIM_URL", sim.url + "/")
    first, started = binance_venue(["ETHUSDC"])
    assert started is None  # nothing started: the running simulator is used
    sink = Sink()
    await first.start(sink)
    try:
        await eventually(lambda: any(isinstance(e, VenueBalance) for e in sink.events), 5)
        before = eth_balance(sink)
        depth = await first.rest.public(
            "/api/v3/depth", {"symbol": "ETHUSDC", "limit": 5}, weight=5
        )
        price = Decimal(depth["asks"][2][0])
        order = PlaceExchangeOrder(
            ExchangeOrderId("im-persist-1"), BatchId(1), ETH, Side.BUY, price, Decimal("0.01")
        )
        await first.place(order)
        await eventually(lambda: bool([e for e in sink.events if isinstance(e, ExchangeFill)]), 5)
    finally:
        await first.stop()

    again, started = binance_venue(["ETHUSDC"])  # the service restarted
    assert started is None
    resumed = Sink()
    await again.start(resumed)
    try:
        await eventually(lambda: any(isinstance(e, VenueBalance) for e in resumed.events), 5)
        # the account it left: 0.01 ETH bought, less the commission taken in ETH
        assert before < eth_balance(resumed) < before + Decimal("0.01")
        report = await again.order_status(order.order_id, ETH)  # its order is known there
        assert sum(fill.quantity for fill in report.fills) == Decimal("0.01")
    finally:
        await again.stop()


def test_exchange_sim_url_must_be_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_SIM_URL", "127.0.0.1:8090")
    with pytest.raises(ConfigError, match="EXCHANGE_SIM_URL: not an http"):
        binance_venue(["ETHUSDC"])
