"""The engine wired to in-process simulated adapters on a manual clock.

Commands the engine emits are carried out by the simulated exchange and chain; their
answers come back as engine inputs after a configured latency. Time moves only when the
caller advances it, so every run is exactly repeatable.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from indexmaker.core.clock import ManualClock
from indexmaker.core.events import Command, EngineInput, Tick
from indexmaker.core.ids import ClientKey
from indexmaker.engine.engine import Engine, EngineSetup
from indexmaker.sim.adapters import CommandLog, SimulatedAdapters
from indexmaker.sim.chain import SimulatedChain
from indexmaker.sim.exchange import SimulatedExchange

WorldLog = CommandLog  # the world's record of every command, by kind


class SimulatedWorld:
    def __init__(
        self,
        setup: EngineSetup,
        exchange: SimulatedExchange,
        chain: SimulatedChain,
        clock: ManualClock | None = None,
        exchange_latency: timedelta = timedelta(milliseconds=20),
    ) -> None:
        self.clock = clock or ManualClock()
        self.engine = Engine(setup, self.clock)
        self.exchange = exchange
        self.chain = chain
        self.adapters = SimulatedAdapters(exchange, chain, exchange_latency, clock=self.clock)
        self.log = self.adapters.log
        self.on_command: Callable[[Command], None] | None = None
        self._due: list[tuple[object, int, EngineInput]] = []
        self._seq = itertools.count()
        for snapshot in exchange.snapshots():
            self.submit(snapshot)
        limits = exchange.stated_order_limits()  # as a connector says at start
        if limits is not None:
            self.submit(limits)

    def submit(self, event: EngineInput) -> None:
        """Hand one input to the engine now and carry out what it commands."""
        for command in self.engine.handle(event):
            self._carry_out(command)

    def schedule(self, delay: timedelta, event: EngineInput) -> None:
        heapq.heappush(self._due, (self.clock.now() + delay, next(self._seq), event))

    def advance(self, duration: timedelta) -> None:
        """Run the solver tick by tick for `duration`, delivering due venue/chain events."""
        tick = self.engine.setup.config.tick
        end = self.clock.now() + duration
        while self.clock.now() < end:
            self.clock.advance(min(tick, end - self.clock.now()))
            self._deliver_due()
            self.submit(Tick(self.clock.now()))

    def run_until(self, done: Callable[[], bool], limit: timedelta) -> bool:
        tick = self.engine.setup.config.tick
        end = self.clock.now() + limit
        while self.clock.now() < end:
            if done():
                return True
            self.advance(tick)
        return done()

    def idle(self) -> bool:
        """No order left, nothing in flight anywhere."""
        return self.engine.orders.open_count() == 0 and not self._due

    def _deliver_due(self) -> None:
        now = self.clock.now()
        while self._due and self._due[0][0] <= now:  # type: ignore[operator]
            _, _, event = heapq.heappop(self._due)
            self.submit(event)

    def _carry_out(self, command: Command) -> None:
        if self.on_command is not None:
            self.on_command(command)
        for delay, event in self.adapters.carry_out(command):
            self.schedule(delay, event)

    def deposit(self, client: ClientKey, amount: Decimal) -> None:
        self.submit(self.chain.deposit(client, amount))
