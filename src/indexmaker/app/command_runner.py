"""Carrying out the engine's commands through the ports, each in isolation.

Every port call runs in its own task under the runtime's timeout, and whatever goes wrong
comes back as an input the core understands (docs/adapters.md): a placement that fails or
times out is `ExchangeOrderStatusUnknown` (the core then queries the order by client order
id), a hop that times out or fails without a definite refusal is `HopStatusUnknown` (the
router asks the chain or bridge by transfer id before any resend; a definite refusal is
`HopFailed`), a failed mint, burn or withdrawal is `MintFailed`,
`BurnFailed`, `WithdrawalFailed` (retryable: the core resends with the same idempotency key).
An escrow refused outright (`NonRetryableError`: the client did not approve or hold the
tokens) is `IndexEscrowFailed`; an escrow or a release whose call failed otherwise is tried
again here under the same escrow id (the chain moves it at most once), `query_attempts` times
backing off, then left to the operator (`escrow_unknown` / `release_failed`) and to recovery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from indexmaker.core.errors import NonRetryableError
from indexmaker.core.events import (
    Alert,
    BatchEvent,
    BurnFailed,
    BurnIndex,
    ClientResponse,
    Command,
    EngineInput,
    EscrowIndex,
    ExchangeOrderReport,
    ExchangeOrderStatusUnknown,
    HopFailed,
    HopStatusUnknown,
    IndexEscrowFailed,
    MintFailed,
    MintIndex,
    PlaceExchangeOrder,
    QueryExchangeOrder,
    QueryHop,
    RebalanceReport,
    ReleaseIndex,
    RouteCollateral,
    SendToClient,
    WithdrawalFailed,
    WithdrawCollateral,
)
from indexmaker.core.ids import ClientKey
from indexmaker.core.ports import (
    BridgePort,
    ChainPort,
    EventSink,
    OrderNotFound,
    OrderReport,
    VenuePort,
)
from indexmaker.observability.logging import bound, log_event, mask_secrets
from indexmaker.observability.metrics import ServiceMetrics

if TYPE_CHECKING:
    from indexmaker.app.runtime_config import RuntimeLimits

Deliver = Callable[[ClientKey, ClientResponse], None]
ZERO = Decimal(0)
T = TypeVar("T")


class CommandRunner:
    """Carries out commands through the venue, chain and bridge ports; failures become
    inputs pushed into `put` (the engine's queue)."""

    def __init__(
        self,
        venue: VenuePort,
        chain: ChainPort,
        bridges: Mapping[str, BridgePort],
        limits: RuntimeLimits,
        put: EventSink,
        deliver: Deliver,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.venue = venue
        self.chain = chain
        self.bridges = bridges
        self.limits = limits
        self.put = put
        self.deliver = deliver
        self.metrics = metrics
        self.tasks: set[asyncio.Task[None]] = set()

    async def stop(self) -> None:
        """Cancel the port calls still running."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def carry_out(self, command: Command) -> None:
        """Carry out one command: a client message at once, a port call in its own task.

        A port call runs with the command's client, order, batch, instrument, transfer or
        payment bound as log context (the task inherits it), so whatever its adapter logs
        names them. A client message is not bound: thousands go out per tick, and delivery
        names the client itself when it fails."""
        if self.metrics is not None:
            self.metrics.observe_command(command)
        if isinstance(command, SendToClient):
            self.deliver(command.client, command.message)
            return
        with bound(**command_context(command)):
            self._start(command)

    def _start(self, command: Command) -> None:
        match command:
            case PlaceExchangeOrder():
                log_event(
                    "exchange_order",
                    logging.DEBUG,
                    side=command.side.value,
                    price=command.price,
                    quantity=command.quantity,
                )
                self._spawn(self._place(command))
            case QueryExchangeOrder():
                self._spawn(self._query(command))
            case RouteCollateral():
                self._spawn(self._route(command))
            case QueryHop():
                self._spawn(self._query_hop(command))
            case BurnIndex():
                self._spawn(self._burn(command))
            case WithdrawCollateral():
                self._spawn(self._withdraw(command))
            case EscrowIndex():
                self._spawn(self._escrow(command))
            case ReleaseIndex():
                self._spawn(self._release_index(command))
            case MintIndex():
                log_event("mint", symbol=command.symbol, quantity=command.quantity)
                self._spawn(self._mint(command))
            case BatchEvent():
                # details as fields of their own: side, orders_waiting (the order budget)...
                fields: dict[str, Any] = {**command.details, "orders": command.order_count}
                fields.update(assets=command.asset_count, notional=command.notional)
                log_event(f"batch_{command.kind}", logging.INFO, **fields)
            case Alert():
                log_event("alert", logging.WARNING, code=command.code, message=command.message)
            case RebalanceReport():
                log_event(
                    f"rebalance_{command.kind}",
                    symbol=command.symbol,
                    version=command.version,
                    round=command.round,
                    progression=command.progression,
                    accuracy=command.accuracy,
                    cost_bps=command.cost_bps,
                    traded=command.traded,
                    left_value=command.left_value,
                    reason=command.reason,
                )
            case _:
                log_event("command_not_carried_out", logging.ERROR, command=type(command).__name__)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _call(self, what: str, coro: Coroutine[Any, Any, None]) -> str | None:
        """Run one port call under the timeout; the reason it failed, or None."""
        try:
            await asyncio.wait_for(coro, self.limits.command_timeout.total_seconds())
            return None
        except TimeoutError:
            reason = f"{what} timed out after {self.limits.command_timeout.total_seconds()}s"
        except Exception as error:
            reason = f"{what} failed: {mask_secrets(str(error))}"
            if isinstance(error, NonRetryableError):
                reason = f"{what} refused: {mask_secrets(str(error))}"
        if self.metrics is not None:
            self.metrics.command_failed(what)
        return reason

    async def _place(self, command: PlaceExchangeOrder) -> None:
        reason = await self._call("place", self.venue.place(command))
        if reason is None:
            return
        # Never "failed": the venue may have the order. The core asks it before anything else.
        log_event("order_status_unknown", logging.WARNING, reason=reason)
        await self.put(ExchangeOrderStatusUnknown(command.order_id, command.instrument, reason))

    async def _query(self, command: QueryExchangeOrder) -> None:
        """Ask the venue, backing off; its fills then its report. A venue that does not know
        the order answers with status None. A venue that cannot be asked leaves the order
        unknown: after `unknown_retry` the core is told again and queries again."""
        order_id, instrument = command.order_id, command.instrument
        try:
            report, reason = await self._ask(
                lambda: self.venue.order_status(order_id, instrument), "status query"
            )
        except OrderNotFound as missing:
            await self.put(
                ExchangeOrderReport(order_id, instrument, None, ZERO, reason=not_known(missing))
            )
            return
        if report is None:
            unknown = ExchangeOrderStatusUnknown(order_id, instrument, reason)
            await self._still_unknown("order_still_unknown", "query", unknown)
            return
        for event in report_inputs(report):
            await self.put(event)
        log_event("order_reconciled", status=report.status.value)

    async def _ask(
        self, ask: Callable[[], Coroutine[Any, Any, T]], what: str
    ) -> tuple[T | None, str]:
        """(answer, "") from up to `query_attempts` tries, backing off 2ⁿ × `query_backoff`;
        (None, the last reason) when none answered. `OrderNotFound` is an answer: it is
        raised to the caller at once."""
        limits = self.limits
        reason = "no answer"
        for attempt in range(limits.query_attempts):
            if attempt:
                await asyncio.sleep(limits.query_backoff.total_seconds() * 2 ** (attempt - 1))
            try:
                return await asyncio.wait_for(ask(), limits.command_timeout.total_seconds()), ""
            except OrderNotFound:
                raise
            except Exception as error:
                reason = f"{what} failed: {mask_secrets(repr(error))}"
        return None, reason

    async def _still_unknown(self, event: str, metric: str, unknown: EngineInput) -> None:
        """Nothing answered: wait `unknown_retry`, then tell the core again (it asks again)."""
        log_event(event, logging.ERROR, reason=getattr(unknown, "reason", None))
        if self.metrics is not None:
            self.metrics.command_failed(metric)
        await asyncio.sleep(self.limits.unknown_retry.total_seconds())
        await self.put(unknown)

    async def _route(self, command: RouteCollateral) -> None:
        """A definite refusal is `HopFailed` (nothing moved: the router may retry under a new
        id); a timeout or any other failure may have moved the amount, so it is
        `HopStatusUnknown` and the router asks before anything is resent."""
        bridge = self.bridges.get(command.bridge)
        call = bridge.relay(command) if bridge is not None else self.chain.transfer(command)
        try:
            await asyncio.wait_for(call, self.limits.command_timeout.total_seconds())
            return
        except NonRetryableError as error:
            reason = f"hop {command.bridge} refused: {mask_secrets(str(error))}"
            log_event("hop_failed", logging.WARNING, reason=reason)
            await self.put(HopFailed(command.transfer_id, reason))
            return
        except TimeoutError:
            reason = f"hop timed out after {self.limits.command_timeout.total_seconds()}s"
        except Exception as error:
            reason = f"hop failed: {mask_secrets(repr(error))}"
        if self.metrics is not None:
            self.metrics.command_failed(f"hop {command.bridge}")
        log_event("hop_status_unknown", logging.WARNING, reason=reason)
        await self.put(HopStatusUnknown(command.transfer_id, reason))

    async def _query_hop(self, command: QueryHop) -> None:
        """Ask the chain or bridge what became of the hop, backing off; its `HopReport`.
        One that cannot be asked leaves the hop unknown: after `unknown_retry` the core is
        told again and asks again (nothing is ever resent on a guess)."""
        bridge = self.bridges.get(command.bridge)
        port: ChainPort | BridgePort = bridge if bridge is not None else self.chain
        report, reason = await self._ask(lambda: port.hop_status(command), "hop status query")
        if report is None:
            unknown = HopStatusUnknown(command.transfer_id, reason)
            await self._still_unknown("hop_still_unknown", "hop query", unknown)
            return
        log_event("hop_reconciled", state=report.state.value)
        await self.put(report)

    async def _mint(self, command: MintIndex) -> None:
        reason = await self._call("mint", self.chain.mint(command))
        if reason is not None:  # the core resends the same payment id; the contract dedups
            log_event("mint_failed", logging.WARNING, reason=reason)
            await self.put(MintFailed(command.payment_id, reason, retryable=True))

    async def _burn(self, command: BurnIndex) -> None:
        reason = await self._call("burn", self.chain.burn(command))
        if reason is not None:
            await self.put(BurnFailed(command.payment_id, reason, retryable=True))

    async def _withdraw(self, command: WithdrawCollateral) -> None:
        reason = await self._call("withdraw", self.chain.withdraw(command))
        if reason is not None:
            await self.put(WithdrawalFailed(command.withdrawal_id, reason, retryable=True))

    async def _escrow(self, command: EscrowIndex) -> None:
        final, reason = await self._persist("escrow", lambda: self.chain.escrow(command))
        if final:
            await self.put(IndexEscrowFailed(command.escrow_id, reason))
        elif reason:  # the tokens may be in custody: never reported failed on a guess
            log_event("escrow_unknown", logging.ERROR, reason=reason)

    async def _release_index(self, command: ReleaseIndex) -> None:
        final, reason = await self._persist("release", lambda: self.chain.release_index(command))
        if reason:
            log_event("release_failed", logging.ERROR, reason=reason, final=final)

    async def _persist(
        self, what: str, call: Callable[[], Coroutine[Any, Any, None]]
    ) -> tuple[bool, str]:
        """Run `call` until it succeeds: (False, "") once done; (True, reason) at once on a
        definite refusal; (False, the last reason) after `query_attempts` other failures,
        backing off 2ⁿ × `query_backoff` (each try under the same key)."""
        reason = ""
        for attempt in range(self.limits.query_attempts):
            if attempt:
                await asyncio.sleep(self.limits.query_backoff.total_seconds() * 2 ** (attempt - 1))
            try:
                await asyncio.wait_for(call(), self.limits.command_timeout.total_seconds())
                return False, ""
            except NonRetryableError as error:
                return True, f"{what} refused: {mask_secrets(str(error))}"
            except TimeoutError:
                reason = f"{what} timed out after {self.limits.command_timeout.total_seconds()}s"
            except Exception as error:
                reason = f"{what} failed: {mask_secrets(repr(error))}"
            if self.metrics is not None:
                self.metrics.command_failed(what)
        return False, reason


def not_known(missing: OrderNotFound) -> str:
    """The report reason of an order the venue does not know. Adapters word `OrderNotFound`
    differently (Binance's carries only the client order id), so the reason says what it means
    and keeps the adapter's words; the core puts the cause the status was unknown before it."""
    detail = mask_secrets(str(missing))  # an adapter error may quote a keyed URL
    return (
        f"the venue does not know the order ({detail})"
        if detail
        else "the venue does not know the order"
    )


def report_inputs(report: OrderReport) -> list[EngineInput]:
    """The venue's fills, then its report (docs/adapters.md). The core deduplicates fills by
    (instrument, trade id) and ignores a report on a settled order, so repeating what the
    stream already said is harmless."""
    summary = ExchangeOrderReport(
        report.order_id,
        report.instrument,
        report.status,
        report.filled_quantity,
        report.venue_order_id,
        reason=report.reason,
    )
    return [*report.fills, summary]


def command_context(command: Command) -> dict[str, Any]:
    """The log context a command names: client, order, batch, instrument, transfer,
    payment, withdrawal (whichever it has)."""
    context: dict[str, Any] = {}
    client = getattr(command, "client", None)
    if client is not None:
        context["client"] = client[1]
    for name, field in _CONTEXT_FIELDS:
        value = getattr(command, field, None)
        if value is not None:
            context[name] = value if isinstance(value, str | int) else str(value)
    return context


_CONTEXT_FIELDS = (
    ("order", "order_id"),
    ("batch", "batch_id"),
    ("instrument", "instrument"),
    ("transfer", "transfer_id"),
    ("payment", "payment_id"),
    ("withdrawal", "withdrawal_id"),
    ("escrow", "escrow_id"),
)
