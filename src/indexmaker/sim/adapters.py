"""Simulated adapters: carry out the engine's commands against the simulated venue and chain.

Each command yields the inputs its outcome produces and after how long; the caller decides
how time passes (a manual clock in tests and the demo, the event loop in `indexmaker serve`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from indexmaker.core.clock import Clock, ManualClock
from indexmaker.core.events import (
    Alert,
    BatchEvent,
    ClientResponse,
    Command,
    EngineInput,
    MintIndex,
    PlaceExchangeOrder,
    RouteCollateral,
    SendToClient,
)
from indexmaker.core.ids import ClientKey
from indexmaker.sim.chain import SimulatedChain
from indexmaker.sim.exchange import SimulatedExchange

Scheduled = list[tuple[timedelta, EngineInput]]


@dataclass(slots=True)
class CommandLog:
    messages: list[tuple[ClientKey, ClientResponse]] = field(default_factory=list)
    exchange_orders: list[PlaceExchangeOrder] = field(default_factory=list)
    routes: list[RouteCollateral] = field(default_factory=list)
    mints: list[MintIndex] = field(default_factory=list)
    batches: list[BatchEvent] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)

    def for_client(self, client: ClientKey) -> list[ClientResponse]:
        return [m for c, m in self.messages if c == client]


class SimulatedAdapters:
    def __init__(
        self,
        exchange: SimulatedExchange,
        chain: SimulatedChain,
        exchange_latency: timedelta = timedelta(milliseconds=20),
        keep_log: bool = True,
        clock: Clock | None = None,
    ) -> None:
        self.clock: Clock = clock if clock is not None else ManualClock()
        self.exchange = exchange
        self.chain = chain
        self.exchange_latency = exchange_latency
        self.log = CommandLog()
        self._keep_log = keep_log

    def carry_out(self, command: Command) -> Scheduled:
        log = self.log if self._keep_log else None
        match command:
            case SendToClient():
                if log:
                    log.messages.append((command.client, command.message))
            case PlaceExchangeOrder():
                if log:
                    log.exchange_orders.append(command)
                latency = self.exchange_latency
                # The venue's clock: the events happen when the order arrives there.
                at = self.clock.now() + latency
                return [(latency, event) for event in self.exchange.execute(command, at)]
            case RouteCollateral():
                if log:
                    log.routes.append(command)
                return [self.chain.route(command)]
            case MintIndex():
                if log:
                    log.mints.append(command)
                result = self.chain.mint(command)
                return [result] if result is not None else []
            case BatchEvent():
                if log:
                    log.batches.append(command)
            case Alert():
                if log:
                    log.alerts.append(command)
        return []
