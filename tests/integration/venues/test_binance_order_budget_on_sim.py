"""The venue's order windows reach the core (SPEC §6, engine/order_budget.py): against an
exchange-sim process started with `--orders-10s 20`, the Binance adapter reads exchangeInfo's
ORDERS rateLimits, pushes them as `VenueOrderLimits` (90% kept: 18) and the engine fed the
adapter's events uses them as its order budget; orders another connection of the account sent
reach the core's budget through the WS-API's order counts (`RateLimitFeedback`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from indexmaker.core.clock import ManualClock
from indexmaker.core.events import (
    OrderLimitWindow,
    PlaceExchangeOrder,
    RateLimitFeedback,
    RulesUpdate,
    VenueOrderLimits,
)
from indexmaker.core.ids import BatchId, ExchangeOrderId, Symbol, instrument
from indexmaker.core.money import money_context, round_up_to_step
from indexmaker.engine.engine import Engine, EngineSetup
from indexmaker.engine.throttle import RateLimit
from indexmaker.model.index import Basket, BasketAsset
from indexmaker.model.side import Side
from indexmaker.venues.binance.venue import BinanceVenue

from ..binance_sim.conftest import SimProcess
from .binance_peer import eventually
from .on_sim import connector_on, exchange_sim

PAIRS = ("BTCUSDC", "ETHUSDC")
BTC = instrument("BTCUSDC")
TEN_S, DAY = timedelta(seconds=10), timedelta(days=1)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    with exchange_sim("--symbols", ",".join(PAIRS), "--seed", "5", "--orders-10s", "20") as p:
        yield p


async def _resting_buy(adapter: BinanceVenue, n: int, tag: str) -> PlaceExchangeOrder:
    """A LIMIT IOC buy 50 ticks under the best ask: it expires unfilled (counted by the venue)."""
    depth = await adapter.rest.public("/api/v3/depth", {"symbol": "BTCUSDC", "limit": 5}, weight=5)
    rules = adapter.instruments_state.rules[BTC]
    price = Decimal(depth["asks"][0][0]) - 50 * rules.tick_size
    quantity = round_up_to_step(Decimal(20) / price, rules.step_size)
    return PlaceExchangeOrder(
        ExchangeOrderId(f"im-budget-{tag}-{n}"), BatchId(1), BTC, Side.BUY, price, quantity
    )


async def test_the_venues_order_windows_become_the_cores_budget(sim: SimProcess) -> None:
    async with connector_on(sim, PAIRS) as (_adapter, sink):
        (stated,) = sink.of(VenueOrderLimits)
    assert stated.windows == (
        OrderLimitWindow("ORDERS_10S", 18, TEN_S, 20),
        OrderLimitWindow("ORDERS_1D", 144_000, DAY, 160_000),
    )
    # The statement comes before any rule: nothing can be released under the old budget.
    kinds = [type(e) for e in sink.events]
    assert kinds.index(VenueOrderLimits) < kinds.index(RulesUpdate)
    baskets = {"BTC": Basket(Symbol("BTC"), (BasketAsset(BTC, Decimal(1)),))}
    engine = Engine(EngineSetup(baskets), ManualClock())
    assert engine.tracker.limiter.limits[0] == RateLimit("ORDERS_10S", 100, TEN_S)
    with money_context():
        for event in sink.events:
            engine.handle(event)
    assert engine.tracker.limiter.limits == [
        RateLimit("ORDERS_10S", 18, TEN_S),
        RateLimit("ORDERS_1D", 144_000, DAY),
    ]


async def test_orders_sent_by_another_connection_reach_the_core(sim: SimProcess) -> None:
    async with connector_on(sim, PAIRS) as (ours, sink), connector_on(sim, PAIRS) as (other, _):
        for n in range(5):  # another process on the same account
            await other.place(await _resting_buy(other, n, "other"))
        await ours.place(await _resting_buy(ours, 0, "ours"))
        await eventually(lambda: sink.of(RateLimitFeedback))
    # The venue counted the other's 5 and our 1 where we had counted 1, in both windows.
    told = [(f.window, f.used) for f in sink.of(RateLimitFeedback)]
    assert told == [("ORDERS_10S", 6), ("ORDERS_1D", 6)]


async def test_a_change_of_the_venues_limits_is_followed_keeping_what_was_counted() -> None:
    # A process of its own (no other test's orders in its counts), and the same market on a
    # second one stating 30 orders per 10 s: exchangeInfo read there is the venue changing
    # its limits while we run.
    args = ("--symbols", ",".join(PAIRS), "--seed", "5")
    with (
        exchange_sim(*args, "--orders-10s", "20") as sim,
        exchange_sim(*args, "--orders-10s", "30") as other,
    ):
        async with connector_on(sim, PAIRS) as (adapter, sink):
            await adapter.place(await _resting_buy(adapter, 0, "change"))
            await adapter.refresh_instruments()  # the same limits: nothing told again
            assert len(sink.of(VenueOrderLimits)) == 1
            adapter.rest.endpoints = replace(adapter.rest.endpoints, rest_url=other.url)
            await adapter.refresh_instruments()
            room = adapter.rest.limiter.headroom(datetime.now(UTC))
            assert adapter.ws_api is not None  # the WS-API shares the one set of pools
            assert adapter.ws_api.limiter is adapter.rest.limiter
    _first, changed = sink.of(VenueOrderLimits)
    assert changed.windows[0] == OrderLimitWindow("ORDERS_10S", 27, TEN_S, 30)
    assert room["ORDERS_10S"] == 26  # 27 kept of 30, the order sent before still counted
