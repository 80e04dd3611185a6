"""The live service loop: one asyncio task owns the engine; adapters feed it through a queue.

Commands the engine returns are carried out by the simulated venue and chain in real time
(their answers come back after the configured delays via the event loop), and client
messages go to the delivery callback (the FIX server).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from indexmaker.core.events import (
    Alert,
    BatchEvent,
    ClientResponse,
    Command,
    EngineInput,
    MintIndex,
    PlaceExchangeOrder,
    SendToClient,
    Tick,
)
from indexmaker.core.ids import ClientKey
from indexmaker.engine.engine import Engine
from indexmaker.observability.logging import log_event
from indexmaker.sim.adapters import SimulatedAdapters
from indexmaker.sim.market import MarketSimulator

Deliver = Callable[[ClientKey, ClientResponse], None]


class SystemClock:
    """The wall clock, for the live service only (the core gets it injected)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class Runtime:
    def __init__(
        self,
        engine: Engine,
        adapters: SimulatedAdapters,
        market: MarketSimulator | None = None,
        book_refresh: timedelta = timedelta(seconds=5),
    ) -> None:
        self.engine = engine
        self.adapters = adapters
        self.market = market
        self.book_refresh = book_refresh
        self.deliver: Deliver | None = None
        self.observers: list[Callable[[Command], None]] = []
        self._queue: asyncio.Queue[EngineInput] = asyncio.Queue()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def submit(self, event: EngineInput) -> None:
        self._queue.put_nowait(event)

    async def start(self) -> None:
        for snapshot in self.adapters.exchange.snapshots():
            self.submit(snapshot)
        self._tasks = [
            asyncio.create_task(self._engine_loop(), name="engine"),
            asyncio.create_task(self._ticker(), name="ticker"),
        ]
        if self.market is not None:
            self._tasks.append(asyncio.create_task(self._market_loop(), name="market"))

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drain(self) -> None:
        """Wait until every queued input has been handled (tests and shutdown)."""
        while not self._queue.empty():
            await asyncio.sleep(0.001)

    async def _ticker(self) -> None:
        period = self.engine.setup.config.tick.total_seconds()
        while not self._stopping.is_set():
            await asyncio.sleep(period)
            self.submit(Tick(self.engine.clock.now()))

    async def _market_loop(self) -> None:
        assert self.market is not None
        while not self._stopping.is_set():
            await asyncio.sleep(self.book_refresh.total_seconds())
            for snapshot in self.adapters.exchange.replace_books(self.market.step()):
                self.submit(snapshot)

    async def _engine_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            event = await self._queue.get()
            try:
                commands = self.engine.handle(event)
            except Exception as error:  # the engine contains its own; this is the last guard
                log_event(
                    "engine_crash_contained",
                    logging.ERROR,
                    input=type(event).__name__,
                    error=repr(error),
                )
                continue
            for command in commands:
                self._carry_out(command, loop)

    def _carry_out(self, command: Command, loop: asyncio.AbstractEventLoop) -> None:
        for observer in self.observers:
            observer(command)
        if isinstance(command, SendToClient):
            if self.deliver is not None:
                self.deliver(command.client, command.message)
            return
        if isinstance(command, BatchEvent):
            log_event(
                f"batch_{command.kind}",
                batch=command.batch_id,
                orders=command.order_count,
                assets=command.asset_count,
                notional=command.notional,
            )
        elif isinstance(command, Alert):
            log_event("alert", logging.WARNING, code=command.code, message=command.message)
        elif isinstance(command, MintIndex):
            log_event(
                "mint",
                payment=command.payment_id,
                symbol=command.symbol,
                quantity=command.quantity,
                address=command.client[1],
            )
        elif isinstance(command, PlaceExchangeOrder):
            log_event(
                "exchange_order",
                level=logging.DEBUG,
                order=command.order_id,
                instrument=str(command.instrument),
                price=command.price,
                quantity=command.quantity,
            )
        for delay, event in self.adapters.carry_out(command):
            loop.call_later(delay.total_seconds(), self.submit, event)
