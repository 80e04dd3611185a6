"""Gas in USDC at the venue's ETHUSDC mid (issue 11), against a real exchange-sim process over
its REST API; the fixed price only when the venue knows none."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from indexmaker.app.binance_wiring import ExchangeSimProcess, binance_venue
from indexmaker.chain.eth_price import VenueEthPrice
from indexmaker.chain.hops import gas_cost_usdc
from indexmaker.venues.binance.rest import BinanceRest

FALLBACK = Decimal(3000)


@pytest.fixture
async def venue() -> AsyncIterator[tuple[BinanceRest, ExchangeSimProcess]]:
    connector, sim = binance_venue(["ETHUSDC"], ["--indexes", "SYAZ"])  # SYAZ lists ETHUSDC
    assert sim is not None
    try:
        yield connector.rest, sim
    finally:
        await connector.rest.close()
        sim.stop()


def _ticker(sim: ExchangeSimProcess, symbol: str) -> dict[str, Any]:
    url = f"{sim.url}/api/v3/ticker/bookTicker?symbol={symbol}"
    with urllib.request.urlopen(url, timeout=10) as answer:
        ticker: dict[str, Any] = json.loads(answer.read())
        return ticker


async def test_gas_is_priced_at_the_venues_ethusdc_mid(
    venue: tuple[BinanceRest, ExchangeSimProcess],
) -> None:
    rest, sim = venue
    price = VenueEthPrice(rest, FALLBACK)
    mid = await price.eth_usdc()
    ticker = _ticker(sim, "ETHUSDC")
    bid, ask = Decimal(ticker["bidPrice"]), Decimal(ticker["askPrice"])
    assert price.source == "venue"
    assert bid <= mid <= ask and mid == (bid + ask) / 2 and mid != FALLBACK
    # 21,000 gas at 1 gwei = 0.000021 ETH, charged at that mid, rounded up to the micro-USDC.
    receipt = {"gasUsed": 21_000, "effectiveGasPrice": 10**9}
    fee = gas_cost_usdc([receipt], mid)
    assert fee >= Decimal("0.000021") * mid and fee - Decimal("0.000021") * mid < Decimal("1e-6")
    assert fee != gas_cost_usdc([receipt], FALLBACK)


async def test_without_a_venue_price_the_fixed_one_is_used(
    venue: tuple[BinanceRest, ExchangeSimProcess],
) -> None:
    rest, sim = venue
    unlisted = VenueEthPrice(rest, FALLBACK, pair="DOGEUSDC")  # not listed by this venue
    assert await unlisted.eth_usdc() == FALLBACK and unlisted.source == "fallback"
    sim.stop()  # the venue is gone: a failed request is no price either
    down = VenueEthPrice(rest, FALLBACK)
    assert await down.eth_usdc() == FALLBACK and down.source == "fallback"
