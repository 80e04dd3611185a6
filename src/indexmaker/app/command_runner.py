"""Carrying out the engine's commands through the ports, each in isolation.

Every port call runs in its own task under the runtime's timeout, and whatever goes wrong
comes back as an input the core understands (docs/adapters.md): a placement that fails or
times out is `ExchangeOrderStatusUnknown` (the core then queries the order by client order
id), a failed hop is `HopFailed`, a failed mint, burn or withdrawal is `MintFailed`,
`BurnFailed`, `WithdrawalFailed` (retryable: the core resends with the same idempotency key).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from indexmaker.core.errors import NonRetryableError
from indexmaker.core.events import (
    Alert,
    BatchEvent,
    BurnFailed,
    BurnIndex,
    ClientResponse,
    Command,
    EngineInput,
    ExchangeOrderReport,
    ExchangeOrderStatusUnknown,
    HopFailed,
    MintFailed,
    MintIndex,
    PlaceExchangeOrder,
    QueryExchangeOrder,
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
from indexmaker.observability.logging import bound, log_event
from indexmaker.observability.metrics import ServiceMetrics

if TYPE_CHECKING:
    from indexmaker.app.runtime import RuntimeLimits

Deliver = Callable[[ClientKey, ClientResponse], None]
ZERO = Decimal(0)


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
        """Carry out one command: a client message at once, a port call in its own task."""
        if self.metrics is not None:
            self.metrics.observe_command(command)
        match command:
            case SendToClient():
                self.deliver(command.client, command.message)
            case PlaceExchangeOrder():
                log_event(
                    "exchange_order",
                    logging.DEBUG,
                    order=command.order_id,
                    batch=command.batch_id,
                    instrument=str(command.instrument),
                    price=command.price,
                    quantity=command.quantity,
                )
                self._spawn(self._place(command))
            case QueryExchangeOrder():
                self._spawn(self._query(command))
            case RouteCollateral():
                self._spawn(self._route(command))
            case BurnIndex():
                self._spawn(self._burn(command))
            case WithdrawCollateral():
                self._spawn(self._withdraw(command))
            case MintIndex():
                log_event(
                    "mint",
                    payment=command.payment_id,
                    symbol=command.symbol,
                    quantity=command.quantity,
                    client=command.client[1],
                )
                self._spawn(self._mint(command))
            case BatchEvent():
                log_event(
                    f"batch_{command.kind}",
                    batch=command.batch_id,
                    orders=command.order_count,
                    assets=command.asset_count,
                    notional=command.notional,
                )
            case Alert():
                log_event("alert", logging.WARNING, code=command.code, message=command.message)
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
            reason = f"{what} failed: {error}"
            if isinstance(error, NonRetryableError):
                reason = f"{what} refused: {error}"
        if self.metrics is not None:
            self.metrics.command_failed(what)
        return reason

    async def _place(self, command: PlaceExchangeOrder) -> None:
        with bound(
            order=command.order_id, batch=command.batch_id, instrument=str(command.instrument)
        ):
            await self._place_bound(command)

    async def _place_bound(self, command: PlaceExchangeOrder) -> None:
        reason = await self._call("place", self.venue.place(command))
        if reason is None:
            return
        # Never "failed": the venue may have the order. The core asks it before anything else.
        log_event("order_status_unknown", logging.WARNING, reason=reason)
        await self.put(ExchangeOrderStatusUnknown(command.order_id, command.instrument, reason))

    async def _query(self, command: QueryExchangeOrder) -> None:
        with bound(order=command.order_id, instrument=str(command.instrument)):
            await self._query_bound(command)

    async def _query_bound(self, command: QueryExchangeOrder) -> None:
        """Ask the venue, backing off; its fills then its report. A venue that does not know
        the order answers with status None. A venue that cannot be asked leaves the order
        unknown: after `unknown_retry` the core is told again and queries again."""
        limits = self.limits
        reason = "no answer"
        for attempt in range(limits.query_attempts):
            if attempt:
                await asyncio.sleep(limits.query_backoff.total_seconds() * 2 ** (attempt - 1))
            try:
                report = await asyncio.wait_for(
                    self.venue.order_status(command.order_id, command.instrument),
                    limits.command_timeout.total_seconds(),
                )
            except OrderNotFound as missing:
                await self.put(
                    ExchangeOrderReport(
                        command.order_id, command.instrument, None, ZERO, reason=str(missing)
                    )
                )
                return
            except Exception as error:
                reason = f"status query failed: {error!r}"
                continue
            for event in report_inputs(report):
                await self.put(event)
            log_event("order_reconciled", order=command.order_id, status=report.status.value)
            return
        log_event("order_still_unknown", logging.ERROR, order=command.order_id, reason=reason)
        if self.metrics is not None:
            self.metrics.command_failed("query")
        await asyncio.sleep(limits.unknown_retry.total_seconds())
        await self.put(ExchangeOrderStatusUnknown(command.order_id, command.instrument, reason))

    async def _route(self, command: RouteCollateral) -> None:
        bridge = self.bridges.get(command.bridge)
        call = bridge.relay(command) if bridge is not None else self.chain.transfer(command)
        reason = await self._call(f"hop {command.bridge}", call)
        if reason is not None:
            log_event("hop_failed", logging.WARNING, transfer=command.transfer_id, reason=reason)
            await self.put(HopFailed(command.transfer_id, reason))

    async def _mint(self, command: MintIndex) -> None:
        reason = await self._call("mint", self.chain.mint(command))
        if reason is not None:  # the core resends the same payment id; the contract dedups
            log_event("mint_failed", logging.WARNING, payment=command.payment_id, reason=reason)
            await self.put(MintFailed(command.payment_id, reason, retryable=True))

    async def _burn(self, command: BurnIndex) -> None:
        reason = await self._call("burn", self.chain.burn(command))
        if reason is not None:
            await self.put(BurnFailed(command.payment_id, reason, retryable=True))

    async def _withdraw(self, command: WithdrawCollateral) -> None:
        reason = await self._call("withdraw", self.chain.withdraw(command))
        if reason is not None:
            await self.put(WithdrawalFailed(command.withdrawal_id, reason, retryable=True))


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
