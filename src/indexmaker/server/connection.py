"""One session's socket, written through public APIs only, with bounded unsent bytes.

Two paths, in order. Fast: while nothing is queued and the transport's buffer is below its
high-water mark, a frame is written at once into the transport (asyncio's public
`Transport.write`), framed here as RFC 6455 §5.2 allows a server: one unmasked, uncompressed
text frame (`compress=False` on the session, so no extension applies). aiohttp writes its own
control frames (ping, pong, close) whole and synchronously too, so frames never interleave.
Slow: otherwise the frame is queued, and one writer task per backlogged connection hands the
queue to aiohttp's public `send_frame`, which waits for the transport to drain (back-pressure);
the task exists only while the queue is non-empty. Measured: a coroutine per frame (or a task
per burst) cost 30-50% of the quote round trip (docs/benchmarks.md), hence the fast path.

Bounds (SPEC §5: a client that stops reading is closed, never left open with messages
dropped). A connection's *unsent bytes* are its queue plus the transport's write buffer. A frame
is refused (`send` returns False, the caller closes the session with 1008) when it would take
the connection past `SendBudget.per_connection`, or when the server-wide total is spent and the
connection already holds more than `floor` (every connection keeps a small allowance, so one
hog cannot starve the rest, and the total stays below `total + sessions × floor`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from indexmaker.server.session_state import SessionState


def text_frame_header(size: int) -> bytes:
    """RFC 6455 §5.2 header of a final, unmasked text frame of `size` payload bytes."""
    if size < 126:
        return bytes((0x81, size))
    if size < 65_536:
        return bytes((0x81, 126)) + size.to_bytes(2, "big")
    return bytes((0x81, 127)) + size.to_bytes(8, "big")


def size_buffers(
    transport: asyncio.BaseTransport | None, high_water: int, socket_send_buffer: int | None
) -> None:
    """A small user-space buffer, so back-pressure reaches our queue (and the budget) early
    instead of hiding in the transport; and a bounded kernel send buffer (SO_SNDBUF), so a
    peer that never reads holds little outside the process either. Public asyncio API."""
    if isinstance(transport, asyncio.WriteTransport):
        transport.set_write_buffer_limits(high=high_water)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if socket_send_buffer is not None and sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, socket_send_buffer)


@dataclass(slots=True)
class SendBudget:
    """Unsent-byte limits shared by every connection of a server (bytes)."""

    per_connection: int = 1024 * 1024
    total: int = 64 * 1024 * 1024
    floor: int = 64 * 1024
    queued: int = 0  # bytes in every connection's queue right now

    def admits(self, connection_unsent: int, size: int) -> bool:
        after = connection_unsent + size
        if after > self.per_connection:
            return False
        return self.queued + size <= self.total or after <= self.floor


class Connection:
    """A session's socket: frames in order through one lazily started writer task."""

    __slots__ = (
        "_budget",
        "_drained",
        "_high_water",
        "_queue",
        "_queued",
        "_task",
        "_transport",
        "closing",
        "source",
        "state",
        "ws",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse,
        state: SessionState,
        budget: SendBudget,
        transport: asyncio.BaseTransport | None,
        source: str,
        high_water: int = 16 * 1024,
    ) -> None:
        self.ws = ws
        self.state = state
        self.source = source  # the peer's address: per-source caps and limits
        self.closing = False  # set once the server decided to close it: nothing more is sent
        self._budget = budget
        self._transport = transport
        self._high_water = high_water  # the transport's: above it, frames queue here
        self._queue: deque[bytes] = deque()
        self._queued = 0
        self._task: asyncio.Task[None] | None = None
        self._drained: asyncio.Event | None = None  # created by the first wait only

    def backlogged(self) -> bool:
        """More unsent than an eighth of the limit: the reader lets the writer catch up
        before it reads the next request, so a pipelining client is paced by what it reads
        back, and what its requests and the engine's answers add stays below the limit."""
        return self.unsent() > self._budget.per_connection // 8 and not self.closing

    async def drained(self) -> None:
        """Until the queue is empty or the connection is closing."""
        while self._queue and not self.closing:
            if self._drained is None:
                self._drained = asyncio.Event()
            self._drained.clear()
            await self._drained.wait()

    def _wake(self) -> None:
        if self._drained is not None:
            self._drained.set()

    def unsent(self) -> int:
        """Bytes written by us and not yet accepted by the kernel."""
        buffered = 0
        transport = self._transport
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            buffered = transport.get_write_buffer_size()
        return self._queued + buffered

    def fits(self, size: int) -> bool:
        return not self.closing and not self.ws.closed and self._budget.admits(self.unsent(), size)

    def send(self, frame: bytes, force: bool = False) -> bool:
        """Queue one text frame; False (nothing queued) when it does not fit the budget or the
        connection is closing. `force` skips the budget for a resend batch to a connection
        with nothing pending (bounded by the outbox's per-client capacity)."""
        if self.closing or self.ws.closed:
            return False
        size = len(frame)
        if not (force and self._queued == 0) and not self._budget.admits(self.unsent(), size):
            return False
        transport = self._transport
        if (
            self._task is None
            and not self._queue
            and isinstance(transport, asyncio.WriteTransport)
            and not transport.is_closing()
            and transport.get_write_buffer_size() < self._high_water
        ):
            transport.write(text_frame_header(size) + frame)  # the fast path (module doc)
            return True
        self._queue.append(frame)
        self._queued += size
        self._budget.queued += size
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return True

    async def _drain(self) -> None:
        try:
            while self._queue:  # also while closing: the close frame goes after these
                frame = self._queue.popleft()
                self._release(len(frame))
                # Uncompressed text: written into the transport at once (its buffer counts
                # from here on); awaits only while the transport is paused because the peer
                # is slow, which is the back-pressure we want.
                await self.ws.send_frame(frame, WSMsgType.TEXT)
        except (ConnectionError, RuntimeError):
            self.closing = True  # the peer is gone; the reader loop ends the session
            self.discard()
        finally:
            self._task = None
            self._wake()

    def discard(self) -> None:
        """Drop whatever is queued (the session is closing; the outbox keeps responses)."""
        self._budget.queued -= self._queued
        self._queued = 0
        self._queue.clear()
        self._wake()

    def _release(self, size: int) -> None:
        self._queued -= size
        self._budget.queued -= size

    async def flush(self) -> None:
        """Wait until everything queued was handed to the transport (orderly shutdown)."""
        task = self._task
        if task is not None:
            with contextlib.suppress(Exception):
                await task

    async def close(self, code: int, reason: str, grace: float, flush: bool = False) -> None:
        """Send a close frame and give the peer `grace` seconds to take what is already in the
        transport and answer; then abort, so a peer that never reads cannot keep the
        connection's buffers alive. `flush`: what is queued goes out first (within the
        grace; a slow reader's queue is dropped instead)."""
        self.closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        if flush:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.flush(), grace)
        self.discard()
        with contextlib.suppress(TimeoutError, ConnectionError, RuntimeError):
            await asyncio.wait_for(
                self.ws.close(code=code, message=reason.encode()[:120], drain=False), grace
            )
        transport = self._transport
        if not isinstance(transport, asyncio.WriteTransport):
            return
        while transport.get_write_buffer_size() and loop.time() < deadline:
            await asyncio.sleep(0.05)  # bounded by the grace
        if not transport.is_closing() or transport.get_write_buffer_size():
            transport.abort()
