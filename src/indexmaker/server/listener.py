"""The listening socket, with a gate at TCP accept for sources that are being refused.

A source whose sessions keep striking out (guard.py) is refused new connections for a while.
Refusing it with an HTTP 429 costs a request parse and a response per attempt, and a hostile
peer reconnects in a loop: measured at 50 reconnecting sockets, those refusals were a large
share of the server's CPU (docs/benchmarks.md, issue 8). The gate aborts such a connection in
`connection_made`, before aiohttp sees a byte: no parse, no response, a reset. Any other
connection is handed to aiohttp's own protocol with the public `Transport.set_protocol`
before it can receive data, so it costs one `getpeername` more.

Until its WebSocket upgrade a connection is "in handshake" (`Handshakes`): at most
`per_source` of them per address (more are reset at accept) and each is closed at `deadline`
unless upgraded by then. Without this, a peer that sends request headers but never the blank
line ending them (slowloris) held its socket and file descriptor for ever: the per-source cap
and idle deadline of unauthenticated sessions start only at the upgrade (issue 8). Plain HTTP
requests on this port (/health, /metrics, /info) are closed at the deadline too.

aiohttp's low-level server (`AppRunner.server`) is a protocol factory, served here with
`loop.create_server` as its documentation does; the runner's `cleanup` still shuts down the
connections it handled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web


class Handshakes:
    """Connections not yet upgraded, per source address: capped, and closed at a deadline."""

    def __init__(self, per_source: int, deadline_seconds: float) -> None:
        self.per_source = per_source
        self.deadline = deadline_seconds
        self._pending: dict[str, set[asyncio.BaseTransport]] = {}

    def admit(self, source: str, transport: asyncio.BaseTransport) -> bool:
        """Whether `transport` may start its handshake; if so its deadline is armed."""
        pending = self._pending.setdefault(source, set())
        if len(pending) >= self.per_source:
            pending.difference_update([t for t in pending if t.is_closing()])  # gone meanwhile
            if len(pending) >= self.per_source:
                return False
        pending.add(transport)
        asyncio.get_running_loop().call_later(self.deadline, self._expire, source, transport)
        return True

    def upgraded(self, transport: asyncio.BaseTransport | None) -> None:
        """`transport` is a WebSocket session now: the session rules take over."""
        if transport is None:
            return
        source = _source(transport)
        pending = self._pending.get(source)
        if pending is not None:
            pending.discard(transport)
            if not pending:
                del self._pending[source]

    def in_handshake(self, source: str) -> int:
        return len(self._pending.get(source, ()))

    def _expire(self, source: str, transport: asyncio.BaseTransport) -> None:
        pending = self._pending.get(source)
        if pending is None or transport not in pending:
            return  # upgraded
        self.upgraded(transport)
        transport.close()


class SourceGate(asyncio.Protocol):
    """Decides at accept time: abort (a refused source, or one with too many connections in
    handshake) or hand over to `handler`."""

    __slots__ = ("_handler", "_handshakes", "_refused")

    def __init__(
        self,
        handler: Callable[[], asyncio.BaseProtocol],
        refused: Callable[[str], bool],
        handshakes: Handshakes | None = None,
    ) -> None:
        self._handler = handler
        self._refused = refused
        self._handshakes = handshakes

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        source = _source(transport)
        if self._refused(source) or (
            self._handshakes is not None and not self._handshakes.admit(source, transport)
        ):
            # A reset, not a close: nothing is owed to it (connection_lost follows).
            if isinstance(transport, asyncio.WriteTransport):
                transport.abort()
            else:
                transport.close()
            return
        protocol = self._handler()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        return None  # only an aborted connection ends here; the rest left for aiohttp's


def _source(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


async def listen(
    runner: web.BaseRunner,
    host: str,
    port: int,
    refused: Callable[[str], bool],
    handshakes: Handshakes | None = None,
) -> asyncio.Server:
    """Serve `runner` (set up) on host:port behind a SourceGate; close the returned server
    before `runner.cleanup()`."""
    handler = runner.server
    if handler is None:
        raise RuntimeError("the runner is not set up")
    return await asyncio.get_running_loop().create_server(
        lambda: SourceGate(handler, refused, handshakes), host, port, backlog=128
    )
