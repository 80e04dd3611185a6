"""The Binance venue adapter against the exchange-sim process over real loopback sockets:
order lifecycle (fill, partial fill + IOC expiry, no cross, reject), status unknown then
reconcile, fills deduplicated across answer and user stream, pacing below the ORDERS limit,
a delisted symbol, user data over the WebSocket API with an Ed25519 logon."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest

from indexmaker.core.errors import NonRetryableError, RateLimitedError
from indexmaker.core.events import (
    BookInvalid,
    BookSnapshot,
    ExchangeFill,
    ExchangeOrderAccepted,
    ExchangeOrderClosed,
    ExchangeOrderStatus,
    ExchangeOrderStatusUnknown,
    PlaceExchangeOrder,
    RulesUpdate,
)
from indexmaker.core.ids import BatchId, ExchangeOrderId, InstrumentId, instrument
from indexmaker.core.money import round_down_to_step, round_up_to_step
from indexmaker.core.ports import VenuePort
from indexmaker.model.side import Side
from indexmaker.venues.binance.limits import StatusUnknownError
from indexmaker.venues.binance.venue import BinanceVenue

from ..binance_sim.conftest import SimProcess
from .binance_peer import eventually
from .on_sim import Sink, connector_on, exchange_sim

PAIRS = ("BTCUSDC", "ETHUSDC")
BTC = instrument("BTCUSDC")
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    with exchange_sim("--symbols", ",".join(PAIRS), "--seed", "11") as process:
        yield process


@pytest.fixture
async def venue(sim: SimProcess) -> AsyncIterator[tuple[BinanceVenue, Sink]]:
    # a still book: prices known to the test
    async with connector_on(sim, PAIRS, {"freeze": list(PAIRS)}) as running:
        yield running


def order(
    side: Side, price: Decimal, quantity: Decimal, pair: InstrumentId = BTC
) -> PlaceExchangeOrder:
    return PlaceExchangeOrder(
        ExchangeOrderId(f"im-t{next(_ids)}-{id(price) % 10_000}"),
        BatchId(1),
        pair,
        side,
        price,
        quantity,
    )


async def top(adapter: BinanceVenue) -> tuple[list[tuple[Decimal, Decimal]], Decimal, Decimal]:
    """The asks (5 levels), the tick and the step of BTCUSDC, from REST."""
    depth = await adapter.rest.public("/api/v3/depth", {"symbol": "BTCUSDC", "limit": 5}, weight=5)
    rules = adapter.instruments_state.rules[BTC]
    asks = [(Decimal(p), Decimal(q)) for p, q in depth["asks"]]
    return asks, rules.tick_size, rules.step_size


async def test_is_a_venue_port_with_rules_and_books(venue: tuple[BinanceVenue, Sink]) -> None:
    adapter, sink = venue
    assert isinstance(adapter, VenuePort)
    rules = await adapter.instruments()
    assert set(rules) == {instrument(p) for p in PAIRS}
    assert {e.instrument for e in sink.of(RulesUpdate)} == set(rules)
    # The account's taker rate (the sim's default 0.1%, GET /api/v3/account), which Binance
    # takes in the base asset of a buy, reaches the core with every instrument's rules.
    assert {e.rules.buy_base_commission for e in sink.of(RulesUpdate)} == {Decimal("0.001")}
    await adapter.subscribe_books([BTC])
    await eventually(lambda: bool(sink.of(BookSnapshot)), 10)
    snapshot = sink.of(BookSnapshot)[0]
    assert snapshot.instrument == BTC and snapshot.bids and snapshot.asks


async def test_crossing_ioc_fills_once_per_trade_id_across_answer_and_stream(
    venue: tuple[BinanceVenue, Sink],
) -> None:
    adapter, sink = venue
    asks, _, step = await top(adapter)
    half = round_down_to_step(asks[1][1] / 2, step)
    wanted = asks[0][1] + half  # takes level 1 and half of level 2
    placed = order(Side.BUY, asks[2][0], wanted)
    await adapter.place(placed)
    closed = sink.of(ExchangeOrderClosed, placed.order_id)
    assert closed and closed[0].status is ExchangeOrderStatus.FILLED
    fills = sink.of(ExchangeFill, placed.order_id)
    assert len(fills) >= 2
    assert len({f.trade_id for f in fills}) == len(fills)
    assert sum(f.quantity for f in fills) == wanted
    # the user stream reports the same trades: they must not be delivered twice
    await eventually(lambda: adapter.orders.duplicates >= len(fills), 5)
    assert len(sink.of(ExchangeFill, placed.order_id)) == len(fills)
    assert len(sink.of(ExchangeOrderAccepted, placed.order_id)) == 1


async def test_ioc_larger_than_the_levels_fills_partly_then_expires(
    venue: tuple[BinanceVenue, Sink],
) -> None:
    adapter, sink = venue
    asks, _, _ = await top(adapter)
    placed = order(Side.BUY, asks[0][0], asks[0][1] * 3)
    await adapter.place(placed)
    closed = sink.of(ExchangeOrderClosed, placed.order_id)[0]
    assert closed.status is ExchangeOrderStatus.EXPIRED
    assert closed.cumulative_quantity == asks[0][1]


async def test_ioc_that_does_not_cross_expires_unfilled(venue: tuple[BinanceVenue, Sink]) -> None:
    adapter, sink = venue
    asks, tick, step = await top(adapter)
    placed = order(
        Side.BUY, asks[0][0] - 50 * tick, round_up_to_step(Decimal(20) / asks[0][0], step)
    )
    await adapter.place(placed)
    closed = sink.of(ExchangeOrderClosed, placed.order_id)[0]
    assert closed.status is ExchangeOrderStatus.EXPIRED
    assert not sink.of(ExchangeFill, placed.order_id)


async def test_rejected_order_closes_rejected_and_raises(
    sim: SimProcess, venue: tuple[BinanceVenue, Sink]
) -> None:
    adapter, sink = venue
    asks, _, _ = await top(adapter)
    sim.admin("POST", {"reject_next_orders": 1})
    placed = order(Side.BUY, asks[0][0], asks[0][1])
    with pytest.raises(NonRetryableError):
        await adapter.place(placed)
    assert sink.of(ExchangeOrderClosed, placed.order_id)[0].status is ExchangeOrderStatus.REJECTED


@pytest.mark.parametrize("mode", ["5xx", "-1007"])
async def test_unknown_outcome_is_reconciled_by_client_order_id(
    sim: SimProcess, venue: tuple[BinanceVenue, Sink], mode: str
) -> None:
    adapter, sink = venue
    asks, _, _ = await top(adapter)
    sim.admin("POST", {"unknown_next_orders": 1, "unknown_mode": mode, "drop_user_data": 10})
    placed = order(Side.BUY, asks[0][0], asks[0][1])
    with pytest.raises(StatusUnknownError):
        await adapter.place(placed)
    assert not sink.of(ExchangeOrderClosed, placed.order_id)  # unknown is not a failure
    assert sink.of(ExchangeOrderStatusUnknown, placed.order_id)
    report = await adapter.order_status(placed.order_id, BTC)
    assert report.status is ExchangeOrderStatus.FILLED
    assert report.filled_quantity == asks[0][1]
    fills = sink.of(ExchangeFill, placed.order_id)
    assert sum(f.quantity for f in fills) == asks[0][1]
    assert [f.trade_id for f in report.fills] == [f.trade_id for f in fills]
    # the missing fills came before the close
    kinds = [type(e) for e in sink.events if getattr(e, "order_id", None) == placed.order_id]
    assert kinds.index(ExchangeOrderClosed) > kinds.index(ExchangeFill)


async def test_orders_paced_below_the_venue_limit_never_see_a_429(
    venue: tuple[BinanceVenue, Sink],
) -> None:
    adapter, _ = venue
    asks, tick, step = await top(adapter)
    adapter.rest.max_wait = adapter.rest.max_wait * 0  # refuse locally instead of waiting
    refused = 0
    for _ in range(60):  # the simulator allows 50 orders per 10 s
        try:
            await adapter.place(
                order(
                    Side.BUY,
                    asks[0][0] - 50 * tick,
                    round_up_to_step(Decimal(20) / asks[0][0], step),
                )
            )
        except RateLimitedError as exc:
            assert "local" in str(exc)  # our limiter said no; the venue never did
            refused += 1
    assert refused >= 10
    assert adapter.rest.banned_until_ms == 0


async def test_delisted_symbol_is_invalidated_and_refused(
    sim: SimProcess, venue: tuple[BinanceVenue, Sink]
) -> None:
    adapter, sink = venue
    await adapter.subscribe_books([instrument("ETHUSDC")])
    await eventually(lambda: bool(sink.of(BookSnapshot)), 10)
    sim.admin("POST", {"delist": ["ETHUSDC"]})
    await adapter.refresh_instruments()
    assert instrument("ETHUSDC") not in await adapter.instruments()
    assert any(e.instrument == instrument("ETHUSDC") for e in sink.of(BookInvalid))
    assert any("ETHUSDC" in alert for alert in adapter.alerts)
    placed = order(Side.BUY, Decimal("1"), Decimal("1"), instrument("ETHUSDC"))
    with pytest.raises(NonRetryableError):
        await adapter.place(placed)
