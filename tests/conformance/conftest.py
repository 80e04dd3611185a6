"""Venue harnesses for the conformance suite.

A harness builds one venue adapter with a known instrument and tells the suite what that
venue can be made to do. Every test in this folder runs once per harness: the in-process
simulator, and the Binance connector against the Binance-wire simulator process
(`indexmaker exchange-sim`) over real loopback sockets.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import pytest

from indexmaker.app.binance_wiring import ExchangeSimProcess
from indexmaker.core.errors import NetworkError
from indexmaker.core.events import EngineInput, ExchangeFill
from indexmaker.core.ids import InstrumentId, instrument
from indexmaker.core.ports import VenuePort
from indexmaker.model.filters import InstrumentRules
from indexmaker.sim.exchange import SimulatedExchange
from indexmaker.sim.venue import SimVenue, VenueFaults

D = Decimal
PAIR = instrument("BTCUSDC")
# Asks 100.00 x 1, 100.10 x 2, 100.20 x 3; bids 99.90 x 1, 99.80 x 2.
ASKS = [(D("100.00"), D("1.000")), (D("100.10"), D("2.000")), (D("100.20"), D("3.000"))]
BIDS = [(D("99.90"), D("1.000")), (D("99.80"), D("2.000"))]
RULES = InstrumentRules(
    instrument=PAIR,
    base_asset="BTC",
    quote_asset="USDC",
    tick_size=D("0.01"),
    step_size=D("0.001"),
    min_qty=D("0.001"),
    min_notional=D("5"),
)


@dataclass
class Recorder:
    """The sink a venue pushes into; tests wait on it with a bounded timeout."""

    events: list[EngineInput] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, event: EngineInput) -> None:
        self.events.append(event)
        self._changed.set()

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(self, done: Callable[[], bool], timeout: float = 2.0) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                self._changed.clear()
                await self._changed.wait()


class FaultSwitch(Protocol):
    """What a harness can make its venue do; a test that needs it skips without one."""

    def fail_next_place(self) -> None:
        """The next `place` fails and the venue never takes the order."""

    def close_before_last_fill(self) -> None:
        """The next order's close reaches the adapter before its (last) fill."""

    def repeat_fills(self) -> None:
        """Every fill of the next order reaches the adapter more than once."""

    async def repeats_seen(self, distinct: int) -> bool:
        """Whether the `distinct` fills of that order did reach the adapter again."""
        ...

    def hold_next_order(self) -> None:
        """The next order stays live (cancellable) a while before it can match."""

    def rate_limit_next(self, retry_after: timedelta) -> bool:
        """The next `place` meets a 429 asking to wait `retry_after`; False if not possible."""
        ...


@dataclass
class SimFaults:
    """The in-process venue's `VenueFaults` behind the switch."""

    faults: VenueFaults
    sink: Recorder

    def fail_next_place(self) -> None:
        self.faults.place_error = NetworkError("connection reset")

    def close_before_last_fill(self) -> None:
        self.faults.fill_after_close = True

    def repeat_fills(self) -> None:
        self.faults.duplicate_fills = True

    async def repeats_seen(self, distinct: int) -> bool:
        return len(self.sink.of(ExchangeFill)) == 2 * distinct  # the adapter passes them on

    def hold_next_order(self) -> None:
        pass  # the resting harness matches every order after a delay

    def rate_limit_next(self, retry_after: timedelta) -> bool:
        self.faults.rate_limited, self.faults.retry_after = 1, retry_after
        return True


@dataclass
class ExchangeSimFaults:
    """The exchange-sim process's `/sim/faults` behind the switch (docs/exchange-sim.md)."""

    sim: ExchangeSimProcess
    venue: VenuePort

    def fail_next_place(self) -> None:
        # A definite refusal (-2010) before the matching engine: nothing executes.
        self.sim.admin("POST", {"reject_next_orders": 1})

    def close_before_last_fill(self) -> None:
        # The answer says FILLED without its fills (RESULT); the user stream brings them late.
        self.sim.admin("POST", {"result_next_orders": 1, "user_data_delay_ms": 300})

    def repeat_fills(self) -> None:
        pass  # Binance repeats every fill already: in the FULL answer and in the user stream

    async def repeats_seen(self, distinct: int) -> bool:
        orders = getattr(self.venue, "orders", None)  # the connector counts what it dropped
        for _ in range(200):  # bounded: the stream's copies follow the answer within 2 s
            if orders is not None and orders.duplicates >= distinct:
                return True
            await asyncio.sleep(0.01)
        return False

    def hold_next_order(self) -> None:
        self.sim.admin("POST", {"hold_next_orders": 1, "hold_ms": 5000})

    def rate_limit_next(self, retry_after: timedelta) -> bool:
        ms = int(retry_after.total_seconds() * 1000)
        self.sim.admin("POST", {"rate_limit_next_orders": 1, "rate_limit_ms": ms})
        return True


@dataclass
class Harness:
    """One venue adapter under test, started with `sink`, trading `pair`."""

    name: str
    venue: VenuePort
    sink: Recorder
    pair: InstrumentId
    best_ask: Decimal  # the book's best ask; a buy at it fills the first level
    ask_depth: Decimal  # quantity on all ask levels within `far_price`
    far_price: Decimal  # a buy limit that crosses every ask level
    can_rest: bool  # orders stay live long enough to be cancelled (after `hold_next_order`)
    faults: FaultSwitch | None  # None when the venue cannot be made to misbehave
    tick: Decimal = RULES.tick_size  # the pair's tick (a price off it breaks PRICE_FILTER)
    # Drop the pair's depth stream / bring it back; None when it cannot be forced.
    drop_stream: Callable[[], Awaitable[None]] | None = None
    restore_stream: Callable[[], Awaitable[None]] | None = None


def _sim(resting: bool) -> tuple[SimVenue, VenueFaults]:
    exchange = SimulatedExchange({PAIR: (list(BIDS), list(ASKS))}, rules={PAIR: RULES})
    faults = VenueFaults()
    delay = timedelta(milliseconds=200) if resting else timedelta(0)
    venue = SimVenue(exchange, timedelta(milliseconds=1), match_delay=delay, faults=faults)
    return venue, faults


HARNESSES: dict[str, Callable[[], tuple[VenuePort, VenueFaults | None, bool]]] = {
    "sim": lambda: (*_sim(False), False),
    "sim-resting": lambda: (*_sim(True), True),
}


class _ExchangeSim(ExchangeSimProcess):
    """`indexmaker exchange-sim` as a child process on a free loopback port, replaying the
    book above (frozen: a replay of one snapshot line never moves), stopped by PID."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory()
        book = Path(self._dir.name) / "book.jsonl"
        book.write_text(
            json.dumps(
                {
                    "symbol": PAIR.pair,
                    "lastUpdateId": 1,
                    "bids": [[str(p), str(q)] for p, q in BIDS],
                    "asks": [[str(p), str(q)] for p, q in ASKS],
                }
            )
            + "\n"
        )
        super().__init__("--replay", str(book))

    def stop(self) -> None:
        super().stop()
        self._dir.cleanup()


def _binance() -> tuple[VenuePort, _ExchangeSim]:
    """The Binance connector against the Binance-wire simulator over loopback sockets."""
    from indexmaker.venues.binance.rest import BinanceEndpoints
    from indexmaker.venues.binance.signing import Credentials, load_ed25519_pem
    from indexmaker.venues.binance.venue import BinanceVenue, BinanceVenueConfig
    from indexmaker.venues.binance_sim.config import (
        TEST_ED25519_API_KEY,
        TEST_ED25519_PRIVATE_PEM,
    )

    sim = _ExchangeSim()
    ws = sim.url.replace("http://", "ws://")
    endpoints = BinanceEndpoints(rest_url=sim.url, ws_api_url=f"{ws}/ws-api/v3", stream_url=ws)
    key = load_ed25519_pem(TEST_ED25519_PRIVATE_PEM.encode())
    credentials = Credentials(TEST_ED25519_API_KEY, ed25519_key=key)
    return BinanceVenue(BinanceVenueConfig(endpoints, pairs=(PAIR.pair,)), credentials), sim


@pytest.fixture(params=[*sorted(HARNESSES), "binance"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    sim: _ExchangeSim | None = None
    tick = RULES.tick_size
    sink = Recorder()
    faults: FaultSwitch | None = None
    if request.param == "binance":
        venue, sim = _binance()
        faults = ExchangeSimFaults(sim, venue)
        can_rest = True  # LIMIT IOC, held by the simulator's matching engine when asked
    else:
        venue, venue_faults, can_rest = HARNESSES[request.param]()
        if venue_faults is not None:
            faults = SimFaults(venue_faults, sink)
    drop = restore = None
    if sim is not None:
        exchange_sim = sim

        async def drop() -> None:
            # The simulator closes the pair's depth stream connections (docs/exchange-sim.md).
            await asyncio.to_thread(exchange_sim.admin, "POST", {"drop_streams": [PAIR.pair]})

        async def restore() -> None:
            pass  # the connector reconnects and resynchronises on its own
    elif isinstance(venue, SimVenue):
        sim_venue = venue

        async def drop() -> None:
            await sim_venue.invalidate_book(PAIR, "depth stream dropped")

        async def restore() -> None:
            await sim_venue.resync_book(PAIR)

    try:
        await venue.start(sink)
        if sim is not None:
            tick = (await venue.instruments())[PAIR].tick_size
        yield Harness(
            request.param,
            venue,
            sink,
            PAIR,
            ASKS[0][0],
            sum((q for _, q in ASKS), D(0)),
            ASKS[-1][0],
            can_rest,
            faults,
            tick,
            drop,
            restore,
        )
    finally:
        await venue.stop()
        if sim is not None:
            sim.stop()
