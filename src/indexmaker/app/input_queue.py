"""The engine's one bounded input queue (runtime.py). Venue and chain adapters `put` into it
and wait while it is full (back-pressure); a client request `offer`ed to a full queue is
refused to its client at once with a reason instead of piling up, anything else is dropped
and logged. Ticks are coalesced: at most one waits in the queue. `put_count` counts what was
queued, in queue order (an adapter waits until the engine has handled that many)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from indexmaker.core.events import (
    CancelIndexOrderRequest,
    CancelIndexOrderResponse,
    CancelIndexQuoteResponse,
    CancelQuoteRequest,
    ClientResponse,
    EngineInput,
    NewIndexOrderRequest,
    NewIndexOrderResponse,
    NewIndexQuoteResponse,
    NewQuoteRequest,
    RequestStatus,
    Tick,
)
from indexmaker.core.ids import ClientKey
from indexmaker.observability.logging import log_event

BUSY = "service busy: input queue full, try again"


class InputQueue:
    """The bounded queue of engine inputs (module docstring); `size` inputs at most; `refuse`
    answers a client whose request found it full."""

    def __init__(self, size: int, refuse: Callable[[ClientKey, ClientResponse], None]) -> None:
        self._queue: asyncio.Queue[EngineInput] = asyncio.Queue(size)
        self._refuse = refuse  # how a refusal reaches its client
        self.put_count = 0
        self._tick_pending = False

    async def put(self, event: EngineInput) -> None:
        """An adapter's input; waits while the queue is full (back-pressure)."""
        await self._queue.put(event)
        self.put_count += 1  # no await since the put: the queue position of `event`

    def offer(self, event: EngineInput) -> bool:
        """Queue `event` now. When the queue is full a client request is refused to its
        client with the reason, anything else is dropped and logged; False then."""
        try:
            self._queue.put_nowait(event)
            self.put_count += 1
            return True
        except asyncio.QueueFull:
            refusal = _busy_response(event)
            if refusal is not None:
                self._refuse(refusal[0], refusal[1])
            log_event("input_refused", logging.WARNING, input=type(event).__name__, reason=BUSY)
            return False

    def offer_tick(self, at: datetime) -> None:
        """A Tick at `at`, unless one already waits or the queue is full (a full queue is
        worked off first; the next tick comes anyway)."""
        if self._tick_pending:
            return
        try:
            self._queue.put_nowait(Tick(at))
            self.put_count += 1
            self._tick_pending = True
        except asyncio.QueueFull:
            pass

    def took_tick(self) -> None:
        """The waiting Tick is being handled: the next one may be queued."""
        self._tick_pending = False

    async def get(self) -> EngineInput:
        return await self._queue.get()

    def get_nowait(self) -> EngineInput:
        return self._queue.get_nowait()

    def empty(self) -> bool:
        return self._queue.empty()

    def qsize(self) -> int:
        return self._queue.qsize()


def _busy_response(event: EngineInput) -> tuple[ClientKey, ClientResponse] | None:
    rejected = RequestStatus.REJECTED
    match event:
        case NewIndexOrderRequest():
            return event.client, NewIndexOrderResponse(event.client_order_id, rejected, BUSY)
        case CancelIndexOrderRequest():
            return event.client, CancelIndexOrderResponse(event.client_order_id, rejected, BUSY)
        case NewQuoteRequest():
            return event.client, NewIndexQuoteResponse(event.client_quote_id, rejected, BUSY)
        case CancelQuoteRequest():
            return event.client, CancelIndexQuoteResponse(event.client_quote_id, rejected, BUSY)
    return None
