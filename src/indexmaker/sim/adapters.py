"""Simulated adapters: carry out the engine's commands against the simulated venue and chain.

`SimulatedAdapters` is the synchronous form for the manual-clock world (tests, scenarios, the
in-process demo): each command yields the inputs its outcome produces and after how long.
`SimChainPort` and `SimBridge` put the same simulated chain behind the asynchronous chain and
bridge ports (`core/ports.py`) that `indexmaker serve`'s runtime drives; the venue's is
`sim/venue.py`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from indexmaker.core.clock import Clock, ManualClock
from indexmaker.core.events import (
    Alert,
    BatchEvent,
    BurnIndex,
    ClientResponse,
    Command,
    DepositObserved,
    EngineInput,
    EscrowIndex,
    HopCompleted,
    HopReport,
    HopState,
    MintIndex,
    PlaceExchangeOrder,
    QueryHop,
    RebalanceReport,
    ReleaseIndex,
    RouteCollateral,
    SendToClient,
    WithdrawCollateral,
)
from indexmaker.core.ids import ClientKey, TransferId
from indexmaker.core.ports import EventSink
from indexmaker.sim.chain import SimulatedChain
from indexmaker.sim.exchange import SimulatedExchange

Scheduled = list[tuple[timedelta, EngineInput]]


@dataclass(slots=True)
class CommandLog:
    messages: list[tuple[ClientKey, ClientResponse]] = field(default_factory=list)
    exchange_orders: list[PlaceExchangeOrder] = field(default_factory=list)
    routes: list[RouteCollateral] = field(default_factory=list)
    mints: list[MintIndex] = field(default_factory=list)
    burns: list[BurnIndex] = field(default_factory=list)
    payouts: list[WithdrawCollateral] = field(default_factory=list)
    escrows: list[EscrowIndex | ReleaseIndex] = field(default_factory=list)
    batches: list[BatchEvent] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    rebalances: list[RebalanceReport] = field(default_factory=list)

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
            case EscrowIndex():
                if log:
                    log.escrows.append(command)
                escrowed = self.chain.escrow(command)
                return [escrowed] if escrowed is not None else []
            case ReleaseIndex():
                if log:
                    log.escrows.append(command)
                self.chain.release(command)
            case BurnIndex():
                if log:
                    log.burns.append(command)
                burned = self.chain.burn(command)
                return [burned] if burned is not None else []
            case WithdrawCollateral():
                if log:
                    log.payouts.append(command)
                paid = self.chain.payout(command)
                return [paid] if paid is not None else []
            case BatchEvent():
                if log:
                    log.batches.append(command)
            case Alert():
                if log:
                    log.alerts.append(command)
            case RebalanceReport():
                if log:
                    log.rebalances.append(command)
        return []


# ---------------------------------------------------------------- the chain behind its ports


@dataclass(slots=True)
class ChainFaults:
    """Misbehaviour to switch on in tests; everything off by default."""

    transfer_error: Exception | None = None
    mint_error: Exception | None = None
    hangs: bool = False  # every call blocks until cancelled (a stuck RPC): nothing moves
    transfer_hangs_after_move: bool = False  # the hop moves, but the call never returns
    lose_hop_reports: bool = False  # the chain's completions never reach the sink
    status_error: Exception | None = None  # hop_status raises (the chain cannot be asked)


class SimChainPort:
    """`ChainPort` over `SimulatedChain`: answers arrive through the sink after the chain's
    configured delays; `deposit` plays a client's deposit into custody."""

    def __init__(self, chain: SimulatedChain, faults: ChainFaults | None = None) -> None:
        self.chain = chain
        self.faults = faults or ChainFaults()
        self.burns: list[BurnIndex] = []
        self.withdrawals: list[WithdrawCollateral] = []
        # Hops by transfer id (the key, as Custody.release's): (completion, when it lands).
        self.hops: dict[TransferId, tuple[HopCompleted, float]] = {}
        self._balances: dict[str, Decimal] = {}
        self._sink: EventSink | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, sink: EventSink) -> None:
        self._sink = sink

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def deposit(self, client: ClientKey, amount: Decimal) -> DepositObserved:
        """A client's deposit into custody on the source chain, pushed like a chain event."""
        event = self.chain.deposit(client, amount)
        self._credit(event.designation, amount)
        if self._sink is not None:
            await self._sink(event)
        return event

    async def transfer(self, command: RouteCollateral) -> None:
        await self._fault(self.faults.transfer_error)
        if command.transfer_id in self.hops:
            return  # a repeat of a key moves nothing, as the custody contract refuses it
        delay, done = self.chain.route(command)
        self.hops[command.transfer_id] = (done, self._loop_time() + delay.total_seconds())
        self._move(command)
        if not self.faults.lose_hop_reports:
            self._later(delay, done)
        if self.faults.transfer_hangs_after_move:
            await asyncio.Event().wait()  # the chain did it; our call never hears back

    async def hop_status(self, query: QueryHop) -> HopReport:
        if self.faults.status_error is not None:
            raise self.faults.status_error
        await asyncio.sleep(0)  # a query is a round trip: never answered synchronously
        hop = self.hops.get(query.transfer_id)
        if hop is None:
            return HopReport(query.transfer_id, HopState.NOT_FOUND, reason="no such transfer")
        done, lands_at = hop
        if self._loop_time() < lands_at:
            return HopReport(query.transfer_id, HopState.PENDING)
        return HopReport(query.transfer_id, HopState.DONE, done.amount_received, done.fee)

    async def mint(self, command: MintIndex) -> None:
        await self._fault(self.faults.mint_error)
        # A repeated payment id mints nothing, as the contract does; answered as the first.
        self._answer(command, self.chain.mint(command))

    async def burn(self, command: BurnIndex) -> None:
        await self._fault(None)
        burned = self.chain.burn(command)  # once per payment id, as the custody contract
        if burned is not None:
            self.burns.append(command)
        self._answer(command, burned)

    async def escrow(self, command: EscrowIndex) -> None:
        """The client's tokens into custody once per escrow id (or IndexEscrowFailed)."""
        await self._fault(None)
        self._answer(command, self.chain.escrow(command))

    async def release_index(self, command: ReleaseIndex) -> None:
        await self._fault(None)
        self.chain.release(command)

    async def withdraw(self, command: WithdrawCollateral) -> None:
        await self._fault(None)
        paid = self.chain.payout(command)  # once per withdrawal id, as custody's release
        if paid is not None:
            self.withdrawals.append(command)
            self._credit(command.source, -command.amount)
        self._answer(command, paid)

    def _answer(
        self,
        command: MintIndex | EscrowIndex | BurnIndex | WithdrawCollateral,
        outcome: tuple[timedelta, EngineInput] | None,
    ) -> None:
        """The chain's answer after its delay; a repeat's is the first outcome (a resend
        after a timeout or a restart is told what the first did, as by the contract)."""
        outcome = outcome or self.chain.again(command)
        if outcome is not None:
            self._later(*outcome)

    async def balance(self, designation: str) -> Decimal:
        return self._balances.get(designation, Decimal(0))

    @staticmethod
    def _loop_time() -> float:
        return asyncio.get_running_loop().time()

    def _credit(self, designation: str, amount: Decimal) -> None:
        self._balances[designation] = self._balances.get(designation, Decimal(0)) + amount

    def _move(self, command: RouteCollateral) -> None:
        self._credit(command.source, -command.amount)
        self._credit(command.destination, command.amount)

    async def _fault(self, error: Exception | None) -> None:
        if self.faults.hangs:
            await asyncio.Event().wait()
        if error is not None:
            raise error

    def _later(self, delay: timedelta, event: EngineInput) -> None:
        task = asyncio.create_task(self._push_after(delay, event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _push_after(self, delay: timedelta, event: EngineInput) -> None:
        await asyncio.sleep(delay.total_seconds())
        if self._sink is not None:
            await self._sink(event)


class SimBridge:
    """`BridgePort` for one named bridge of the simulated chain (Across-style terms)."""

    def __init__(self, name: str, chain: SimChainPort) -> None:
        self._name = name
        self._chain = chain

    @property
    def name(self) -> str:
        return self._name

    async def start(self, sink: EventSink) -> None:
        """The chain port pushes the relayer's fills; nothing of its own to start."""

    async def stop(self) -> None:
        """Nothing of its own to stop."""

    async def relay(self, command: RouteCollateral) -> None:
        await self._chain.transfer(command)

    async def hop_status(self, query: QueryHop) -> HopReport:
        return await self._chain.hop_status(query)
