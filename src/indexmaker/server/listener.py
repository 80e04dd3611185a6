"""The listening socket, with a gate at TCP accept for sources that are being refused.

A source whose sessions keep striking out (guard.py) is refused new connections for a while.
Refusing it with an HTTP 429 costs a request parse and a response per attempt, and a hostile
peer reconnects in a loop: measured at 50 reconnecting sockets, those refusals were a large
share of the server's CPU (docs/benchmarks.md, issue 8). The gate aborts such a connection in
`connection_made`, before aiohttp sees a byte: no parse, no response, a reset. Any other
connection is handed to aiohttp's own protocol with the public `Transport.set_protocol`
before it can receive data, so it costs one `getpeername` more.

aiohttp's low-level server (`AppRunner.server`) is a protocol factory, served here with
`loop.create_server` as its documentation does; the runner's `cleanup` still shuts down the
connections it handled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web


class SourceGate(asyncio.Protocol):
    """Decides at accept time: abort (a refused source) or hand over to `handler`."""

    __slots__ = ("_handler", "_refused")

    def __init__(
        self, handler: Callable[[], asyncio.BaseProtocol], refused: Callable[[str], bool]
    ) -> None:
        self._handler = handler
        self._refused = refused

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        source = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if self._refused(source):
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


async def listen(
    runner: web.BaseRunner, host: str, port: int, refused: Callable[[str], bool]
) -> asyncio.Server:
    """Serve `runner` (set up) on host:port behind a SourceGate; close the returned server
    before `runner.cleanup()`."""
    handler = runner.server
    if handler is None:
        raise RuntimeError("the runner is not set up")
    return await asyncio.get_running_loop().create_server(
        lambda: SourceGate(handler, refused), host, port, backlog=128
    )
