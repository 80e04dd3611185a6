"""Shared pieces of the SDK, CLI and demo integration tests: a fast in-process service on an
ephemeral loopback port, a recorder of what the engine sent to each client, and a TCP proxy
the tests can cut to drop connections for real.

Fixture and helper names are prefixed (`sdk_`) so they never shadow a test module's own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from indexmaker.app.config import ServiceConfig, SimConfig
from indexmaker.app.service import Service
from indexmaker.core.events import ClientResponse, Command, SendToClient
from indexmaker.core.ids import ClientKey
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.throttle import RateLimit
from indexmaker.server.session import SessionConfig
from indexmaker.server.ws_server import ServerConfig

MS = timedelta(milliseconds=1)
# anvil's public test accounts 1-3 (account 0 is the service's own local test key).
TEST_KEYS = (
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
)


def sdk_fast_config(
    session: SessionConfig | None = None, bridge_delay: timedelta = 50 * MS
) -> ServiceConfig:
    """Simulated peers in milliseconds; the venue's order-rate cap out of the way."""
    return ServiceConfig(
        server=ServerConfig(
            host="127.0.0.1",
            port=0,
            allowed_chain_ids=frozenset({42161}),
            session=session or SessionConfig(),
        ),
        solver=SolverConfig(
            mint_idle=300 * MS,
            order_rate_limits=(RateLimit("orders_10s", 100_000, timedelta(seconds=10)),),
        ),
        sim=SimConfig(
            book_refresh=timedelta(seconds=1),
            exchange_latency=5 * MS,
            bridge_delay=bridge_delay,
            wallet_delay=30 * MS,
            mint_delay=20 * MS,
            deposit_endpoint=True,
        ),
    )


@dataclass
class SentLog:
    """Every client response the engine handed to the FIX server, in order."""

    messages: list[tuple[ClientKey, ClientResponse]] = field(default_factory=list)

    def __call__(self, command: Command) -> None:
        if isinstance(command, SendToClient):
            self.messages.append((command.client, command.message))

    def to(self, address: str) -> list[ClientResponse]:
        return [m for (_, a), m in self.messages if a == address.lower()]


async def sdk_start_service(config: ServiceConfig | None = None) -> tuple[Service, SentLog]:
    service = Service(config or sdk_fast_config())
    sent = SentLog()
    service.runtime.observers.append(sent)
    await service.start()
    assert service.server.url.startswith("ws://127.0.0.1:")
    return service, sent


@pytest.fixture
async def sdk_service() -> AsyncIterator[tuple[Service, SentLog]]:
    service, sent = await sdk_start_service()
    try:
        yield service, sent
    finally:
        await service.stop()


class TcpProxy:
    """A loopback TCP relay to `target`; `cut()` drops every connection and refuses new
    ones until `restore()`: a network failure, as the client sees it. `swallow("requests")`
    or `swallow("replies")` silently drops one direction's bytes until `restore()`: a link
    that dies mid-flight (the server took a request, its ACK never arrives; or the request
    never arrived)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.cuts = 0
        self._refusing = False
        self._swallowing: str | None = None  # "requests" | "replies"
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def url(self, path: str = "/ws") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def cut(self) -> None:
        self.cuts += 1
        self._refusing = True
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def swallow(self, direction: str) -> None:
        assert direction in ("requests", "replies")
        self._swallowing = direction

    def restore(self) -> None:
        self._refusing = False
        self._swallowing = None

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, "requests")),
            asyncio.create_task(self._pump(up_reader, writer, "replies")),
        ]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.transport.abort()
        await asyncio.gather(*pumps, return_exceptions=True)
        self._tasks.difference_update(pumps)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if self._swallowing == direction:
                    continue
                writer.write(data)
                await writer.drain()
