"""One collateral hop carried out in the background, keyed so that a retry never moves twice.

The runtime gives a port call a few seconds (RuntimeLimits.command_timeout); a hop waits for
a bridge fill or an exchange credit far longer. So `relay`/`transfer` only register the hop
and return; the hop runs as a task here and reports `HopCompleted`/`HopFailed` through the sink.

A hop that fails or stalls (its own timeout) is reported `HopStatusUnknown`, never
`HopFailed`: something may have moved. The router then asks (`hop_status`): DONE with what
arrived, PENDING while the hop runs, NOT_FOUND when nothing runs under that transfer id in this
process — the core resends it, which is safe because of the keys below.

A hop is keyed by `RouteCollateral.hop_key` (the deposit and the hop: the same for every retry
of that hop, across restarts), and every on-chain step of it is keyed on chain by that key
(custody release id, Across deposit nonce), so a retry after a failure or a restart finds what
the earlier attempt did and carries on from there. While a hop's task runs, a new transfer id
for the same hop (the router's retry, recovery's redo) only becomes the id its result is
reported under: the hop never runs twice at once.

Gas: what the hop's own transactions cost (gas used × effective gas price, in ETH) is
converted to USDC at the venue's ETHUSDC mid (chain/eth_price.py; a fixed `eth_usdc`
when none is known) and rounded up to the micro-USDC: the lot's fee (SPEC §1
"fees per hop").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from typing import Any

from indexmaker.core.chain_events import (
    HopCompleted,
    HopReport,
    HopState,
    HopStatusUnknown,
    QueryHop,
    RouteCollateral,
)
from indexmaker.core.ids import TransferId
from indexmaker.core.money import EXACT_CONTEXT, USDC_QUANTUM, exact_multiply, round_up_to_step
from indexmaker.core.ports import EventSink
from indexmaker.observability.logging import log_event

WEI_PER_ETH_EXP = 18
KEEP_DONE = 10_000  # completed hops remembered for status queries

# What a hop's work returns: (USDC that arrived for the lot, the hop's fee in USDC).
HopWork = Callable[[str, RouteCollateral], Awaitable[tuple[Decimal, Decimal]]]


def hop_key(command: RouteCollateral) -> str:
    """The key a hop's on-chain steps are made under (its transfer id when the core gave none)."""
    return command.hop_key or str(command.transfer_id)


def tx_hash(item: Any) -> str:
    """The transaction hash (0x-hex) of a receipt or a log."""
    return "0x" + bytes(item["transactionHash"]).hex()


def gas_cost_usdc(receipts: Iterable[Any], eth_usdc: Decimal) -> Decimal:
    """Σ gasUsed × effectiveGasPrice of `receipts` (wei), in USDC at `eth_usdc` USDC per ETH,
    rounded up to the micro-USDC (the issuer never pays a client's gas)."""
    wei = sum(int(r["gasUsed"]) * int(r["effectiveGasPrice"]) for r in receipts)
    eth = Decimal(wei).scaleb(-WEI_PER_ETH_EXP, context=EXACT_CONTEXT)  # any context: exact
    return round_up_to_step(exact_multiply(eth, eth_usdc), USDC_QUANTUM)


class HopRunner:
    """Runs each hop once at a time in the background under `timeout_s` (None: the hop's
    work bounds its own steps, as the Across bridge does); see the module doc."""

    def __init__(self, what: str, timeout_s: float | None) -> None:
        self.what, self.timeout_s = what, timeout_s
        self._sink: EventSink | None = None
        self._report_to: dict[str, TransferId] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running: dict[TransferId, str] = {}  # every id a running hop answers to
        self._done: dict[TransferId, tuple[Decimal, Decimal]] = {}

    def start(self, sink: EventSink) -> None:
        self._sink = sink

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def running(self) -> int:
        return len(self._tasks)

    def submit(self, command: RouteCollateral, work: HopWork) -> None:
        """Start the hop, or, when it already runs, report its result under this transfer id."""
        key = hop_key(command)
        self._report_to[key] = command.transfer_id
        self._running[command.transfer_id] = key
        if key in self._tasks:
            return
        self._tasks[key] = asyncio.create_task(self._run(key, command, work))

    def status(self, query: QueryHop) -> HopReport:
        """DONE (what arrived, the fee), PENDING while the hop runs, else NOT_FOUND."""
        tid = query.transfer_id
        if tid in self._done:
            received, fee = self._done[tid]
            return HopReport(tid, HopState.DONE, received, fee)
        if tid in self._running:
            return HopReport(tid, HopState.PENDING)
        return HopReport(
            tid,
            HopState.NOT_FOUND,
            reason=f"{self.what}: nothing runs under this id; its steps are keyed by the hop, "
            "so a resend cannot move twice",
        )

    async def _run(self, key: str, command: RouteCollateral, work: HopWork) -> None:
        try:
            received, fee = await asyncio.wait_for(work(key, command), self.timeout_s)
            tid = self._report_to[key]
            event: HopCompleted | HopStatusUnknown = HopCompleted(tid, received, fee)
            for answered in [t for t, k in self._running.items() if k == key]:
                self._done[answered] = (received, fee)
            while len(self._done) > KEEP_DONE:
                del self._done[next(iter(self._done))]
            log_event(f"{self.what}_hop_done", hop=key, received=str(received), fee=str(fee))
        except asyncio.CancelledError:
            self._forget(key)
            raise
        except TimeoutError:
            took = f"stalled for {self.timeout_s}s" if self.timeout_s else "timed out"
            reason = f"{self.what}: {took}"
            event = HopStatusUnknown(self._report_to[key], reason)
        except Exception as error:  # one hop's failure never stops the others
            event = HopStatusUnknown(self._report_to[key], f"{self.what}: {error}")
        if isinstance(event, HopStatusUnknown):
            log_event(f"{self.what}_hop_unknown", logging.WARNING, hop=key, reason=event.reason)
        self._forget(key)
        if self._sink is not None:
            await self._sink(event)

    def _forget(self, key: str) -> None:
        self._tasks.pop(key, None)
        self._report_to.pop(key, None)
        for tid in [t for t, k in self._running.items() if k == key]:
            del self._running[tid]
