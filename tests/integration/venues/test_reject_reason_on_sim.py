"""An exchange order refused before it left the process keeps its real reason (issue 12
review: /v1/exchange-orders showed `"reason": "im-46"`, the order id, for orders our own
rate limiter refused). The core's order goes through the command runner to the Binance
adapter on an exchange-sim process whose ORDERS pool our limiter has used up; the adapter
cannot say whether it was placed, the core asks, the venue does not know it, and the order
closes rejected naming the local rate limit."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest

from indexmaker.app.command_runner import CommandRunner
from indexmaker.app.runtime_config import RuntimeLimits
from indexmaker.core.clock import ManualClock
from indexmaker.core.errors import RateLimitedError
from indexmaker.core.events import (
    BookSnapshot,
    DepositObserved,
    ExchangeOrderReport,
    ExchangeOrderStatus,
    ExchangeOrderStatusUnknown,
    NewIndexOrderRequest,
    PlaceExchangeOrder,
    QueryExchangeOrder,
    Tick,
)
from indexmaker.core.ids import (
    BatchId,
    ClientOrderId,
    ExchangeOrderId,
    Symbol,
    TxHash,
    client_key,
    instrument,
)
from indexmaker.core.money import round_up_to_step
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.engine import EXCHANGE_ACCOUNT, Engine, EngineSetup
from indexmaker.model.index import Basket, BasketAsset
from indexmaker.model.side import Side

from ..binance_sim.conftest import SimProcess
from .binance_peer import eventually
from .on_sim import connector_on, exchange_sim

BTC = instrument("BTCUSDC")
IDX = Symbol("IDX")
ALICE = client_key(8453, "0x" + "a" * 40)
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    with exchange_sim("--symbols", "BTCUSDC", "--seed", "12") as process:
        yield process


async def test_an_order_our_rate_limiter_refused_closes_with_that_reason(sim: SimProcess) -> None:
    async with connector_on(sim, ("BTCUSDC",), {"freeze": ["BTCUSDC"]}) as (adapter, sink):
        await adapter.subscribe_books([BTC])
        await eventually(lambda: bool(sink.of(BookSnapshot)), 10)
        rules = adapter.instruments_state.rules[BTC]
        clock = ManualClock()
        engine = Engine(
            EngineSetup(
                {IDX: Basket(IDX, (BasketAsset(BTC, Decimal("0.001")),))},
                SolverConfig(),
                rules={BTC: rules},
            ),
            clock,
        )
        engine.handle(sink.of(BookSnapshot)[-1])
        engine.handle(
            DepositObserved(ALICE, 1, Decimal(1000), EXCHANGE_ACCOUNT, TxHash("0x01"), 0, 1, 12)
        )
        engine.handle(
            NewIndexOrderRequest(ALICE, ClientOrderId("A1"), IDX, Side.BUY, Decimal(1000))
        )
        clock.advance(timedelta(milliseconds=100))
        placed = [c for c in engine.handle(Tick(clock.now())) if isinstance(c, PlaceExchangeOrder)]
        assert len(placed) == 1

        # Use up the ORDERS pool with resting orders far below the book; refuse, never wait.
        snapshot = sink.of(BookSnapshot)[-1]
        low = snapshot.bids[-1][0] * Decimal("0.9")
        low -= low % rules.tick_size
        adapter.rest.max_wait = adapter.rest.max_wait * 0
        for _ in range(80):  # the simulator allows 50 orders per 10 s
            resting = PlaceExchangeOrder(
                ExchangeOrderId(f"im-r{next(_ids)}"),
                BatchId(99),
                BTC,
                Side.BUY,
                low,
                round_up_to_step(Decimal(20) / low, rules.step_size),
            )
            try:
                await adapter.place(resting)
            except RateLimitedError:
                break
        else:
            raise AssertionError("the local limiter never refused")

        inputs = sink.__class__()
        runner = CommandRunner(
            adapter,
            None,  # type: ignore[arg-type]  # no chain command is carried out here
            {},
            RuntimeLimits(query_attempts=1),
            inputs,
            lambda *_: None,
        )
        runner.carry_out(placed[0])
        await eventually(lambda: bool(inputs.of(ExchangeOrderStatusUnknown)), 10)
        (unknown,) = inputs.of(ExchangeOrderStatusUnknown)
        assert "binance: local rate limit" in unknown.reason
        queries = [c for c in engine.handle(unknown) if isinstance(c, QueryExchangeOrder)]
        assert [q.order_id for q in queries] == [placed[0].order_id]

        runner.carry_out(queries[0])
        await eventually(lambda: bool(inputs.of(ExchangeOrderReport)), 10)
        (report,) = inputs.of(ExchangeOrderReport)
        assert report.status is None  # the venue never saw it
        engine.handle(report)
        await runner.stop()

        tracked = engine.tracker.get(placed[0].order_id)
        assert tracked is not None and tracked.status is ExchangeOrderStatus.REJECTED
        assert tracked.reason is not None
        assert "binance: local rate limit" in tracked.reason
        assert "the venue does not know the order" in tracked.reason
