"""The FIX/JSON WebSocket server (SPEC §5) on aiohttp: an adapter of the core.

Per frame: parse → admit (session, seq, timestamp, rate limits) → signature → authorise (one
use, key sound, session cap) → ACK → the engine (frame_handler.py). Business responses from
the engine are signed once, stored in the outbox for resend and fanned out to every eligible
session of the client (session.py says which). Frames are queued per connection and written
through aiohttp's public API (connection.py), so one slow client never holds up the
others or the engine; a client whose unsent bytes pass the limit is closed (1008), and a
frame is numbered only once it is queued.

Cost bounds against hostile peers (SPEC §5 "Authentication", "Limits"; issue 8):
- every frame counts: a refused one (unreadable, invalid, out of sequence, unauthorised) costs
  its session and source a little and is a strike; a session that strikes out is closed;
- unauthenticated connections are capped per source address and in total, and closed when idle
  (unauthenticated.py).

A session opened with `?signing=full` gets every frame signed over its whole content
(signing.py); `require_extended_signatures` refuses requests signed the reference way.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from aiohttp import WSMsgType, web

from indexmaker.core.clock import Clock
from indexmaker.core.events import ClientRequest, ClientResponse
from indexmaker.core.ids import ClientKey
from indexmaker.observability.logging import bind, bound, log_event, unbind
from indexmaker.server.balance_gate import BalanceGate
from indexmaker.server.connection import Connection, SendBudget, size_buffers
from indexmaker.server.frame_handler import TOO_SLOW, FrameHandler
from indexmaker.server.listener import Handshakes, listen
from indexmaker.server.messages import prepare_response
from indexmaker.server.server_config import ServerConfig
from indexmaker.server.session import SessionHub, server_seq_epoch
from indexmaker.server.signing import Signer
from indexmaker.server.unauthenticated import UnauthenticatedSessions
from indexmaker.server.wire_values import (
    CANCEL_QUOTE_REQUEST,
    NEW_QUOTE_REQUEST,
)

__all__ = ["FixServer", "ServerConfig"]  # ServerConfig lives in server_config.py

QUOTE_TYPES = frozenset({NEW_QUOTE_REQUEST, CANCEL_QUOTE_REQUEST})
HARD_FRAME_CAP_FACTOR = 4  # connection-closing cap, as a multiple of max_frame_bytes
TRANSPORT_HIGH_WATER = 16 * 1024  # bytes in a transport's buffer before it pauses us


class FixServer:
    def __init__(
        self,
        config: ServerConfig,
        submit: Callable[[ClientRequest], None],
        clock: Clock,
        signer: Signer,
        hub: SessionHub | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        # Numbered from this start's epoch: a restart never reuses a server_seq (SPEC §5).
        hub = hub or SessionHub(
            config.session,
            last_server_seq=server_seq_epoch(clock.now()),
            full_signer=signer,
        )
        self._connections: dict[str, Connection] = {}
        self._budget = SendBudget(
            config.send_buffer_limit, config.send_buffer_total, config.send_buffer_floor
        )
        self._unauthenticated = UnauthenticatedSessions(
            hub.guard,
            self._connections,
            self._close,
            config.unauthenticated_idle,
            config.max_unauthenticated_sessions,
        )
        self._frames = FrameHandler(
            config, hub, signer, clock, submit, self._unauthenticated, self._close
        )
        self._sweeper: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._handshakes = Handshakes(
            config.max_connections_per_source, config.unauthenticated_idle.total_seconds()
        )
        self._accepting = True
        self._background: set[asyncio.Future[None]] = set()
        self.app = web.Application()
        self.app.router.add_get(config.path, self._endpoint(None))
        if config.quote_path:
            self.app.router.add_get(config.quote_path, self._endpoint(QUOTE_TYPES))
        if config.order_path:
            self.app.router.add_get(config.order_path, self._endpoint(None, exclude=QUOTE_TYPES))
        # Set by the composition root: (healthy, details) and (body, content type).
        self.health: Callable[[], tuple[bool, dict[str, object]]] | None = None
        self.metrics: Callable[[], tuple[bytes, str]] | None = None
        self.app.router.add_get("/health", self._health)
        self.app.router.add_get("/metrics", self._metrics)

    @property
    def _signer(self) -> Signer:
        """Who signs what the server sends, its replies to frames as well (one signer)."""
        signer: Signer = self._frames.signer
        return signer

    @_signer.setter
    def _signer(self, signer: Signer) -> None:
        self._frames.signer = signer

    @property
    def hub(self) -> SessionHub:
        """The sessions and their numbering; the frames' way in uses the same one (a test
        may put another in its place)."""
        hub: SessionHub = self._frames.hub
        return hub

    @hub.setter
    def hub(self, hub: SessionHub) -> None:
        self._frames.hub = hub

    @property
    def balance_gate(self) -> BalanceGate | None:
        """Anti-bot: new orders need a minimum balance on the client's chain (set by the
        composition root; balance_gate.py)."""
        gate: BalanceGate | None = self._frames.balance_gate
        return gate

    @balance_gate.setter
    def balance_gate(self, gate: BalanceGate | None) -> None:
        self._frames.balance_gate = gate

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, handle_signals=False)
        await self._runner.setup()
        try:
            self._listener = await listen(
                self._runner,
                self.config.host,
                self.config.port,
                self._refused_source,
                self._handshakes,
            )
        except OSError:  # port taken, address not ours: nothing was served, nothing to stop
            await self._runner.cleanup()
            self._runner = None
            raise
        self._sweeper = asyncio.get_running_loop().create_task(self._unauthenticated.sweep())
        log_event("fix_listening", url=self.url)

    @property
    def url(self) -> str:
        return f"ws://{self.config.host}:{self.bound_port}{self.config.path}"

    @property
    def bound_port(self) -> int:
        if self._listener is not None and self._listener.sockets:
            return int(self._listener.sockets[0].getsockname()[1])
        return self.config.port

    def _refused_source(self, source: str) -> bool:
        """A source whose sessions keep striking out: aborted at accept (listener.py)."""
        return self.hub.guard.refusing(source, self._clock.now()) is not None

    async def stop(self, reason: str = "server shutting down") -> None:
        """Stop accepting, flush what is queued, close every session with a reason."""
        self._accepting = False
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for connection in list(self._connections.values()):
            await connection.flush()
            await connection.close(1001, reason, self.config.close_grace.total_seconds())
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._listener is not None:
            self._listener.close()
        if self._runner is not None:
            await self._runner.cleanup()
        log_event("fix_stopped", reason=reason)

    def session_count(self) -> int:
        return len(self._connections)

    def unauthenticated_count(self) -> int:
        return len(self._unauthenticated)

    def unsent_bytes(self) -> int:
        """Bytes queued across every connection (not yet handed to a transport)."""
        return self._budget.queued

    # ------------------------------------------------------------------ engine → clients

    def deliver(
        self, client: ClientKey, response: ClientResponse, server_seq: int | None = None
    ) -> None:
        """Number, keep and send a business response (`server_seq`: its durable number)."""
        prepared = prepare_response(response, self._signer)
        now = self._clock.now()
        for session_id, frame in self.hub.deliver(client, prepared, now, server_seq):
            connection = self._connections.get(session_id)
            if connection is not None and not connection.send(frame):
                # Too far behind: un-number the frame and close; the outbox keeps the response.
                connection.state.out_seq -= 1
                self._close(connection, 1008, TOO_SLOW, flush=False)

    def restore(
        self, client: ClientKey, response: ClientResponse, at: datetime, server_seq: int
    ) -> None:
        """A response an earlier life of the process sent (or was about to): kept for resend
        under its number, sent to nobody now (store/fix_outbox.py)."""
        self.hub.restore(client, prepare_response(response, self._signer), at, server_seq)

    # ------------------------------------------------------------------ clients → engine

    def _endpoint(
        self, only: frozenset[str] | None, exclude: frozenset[str] = frozenset()
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._session(request, only, exclude)

        return handler

    async def _health(self, _request: web.Request) -> web.Response:
        """200 with the figures when healthy, 503 naming what is out of bounds otherwise."""
        healthy, details = (True, {"status": "ok"}) if self.health is None else self.health()
        body = {**details, "sessions": len(self._connections)}
        return web.json_response(body, status=200 if healthy else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        if self.metrics is None:
            return web.Response(status=404, text="no metrics")
        body, content_type = self.metrics()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    async def _session(
        self, request: web.Request, only: frozenset[str] | None, exclude: frozenset[str]
    ) -> web.StreamResponse:
        if not self._accepting:
            return web.Response(status=503, text="not accepting sessions")
        source = request.remote or ""
        guard = self.hub.guard
        if guard.refusing(source, self._clock.now()) is not None:
            return web.Response(status=429, text="too many refused frames from this address")
        if guard.unauthenticated_connections(source) >= self.config.max_connections_per_source:
            return web.Response(status=429, text="too many unauthenticated connections")
        full = self.hub.open_sessions() >= self.config.max_sessions  # closing ones left it
        if not self._unauthenticated.make_room(full):
            return web.Response(status=503, text="not accepting sessions")
        ws = web.WebSocketResponse(
            heartbeat=self.config.heartbeat.total_seconds(),
            # Frames over max_frame_bytes get a NAK from parse_request and the session stays
            # open; only beyond this hard cap does aiohttp close the connection (1009).
            max_msg_size=self.config.max_frame_bytes * HARD_FRAME_CAP_FACTOR,
            decode_text=False,
            compress=False,  # small JSON frames; uncompressed frames are written synchronously
            timeout=self.config.close_grace.total_seconds(),
            writer_limit=TRANSPORT_HIGH_WATER,  # aiohttp waits for a drain this often
        )
        await ws.prepare(request)
        self._handshakes.upgraded(request.transport)  # the session rules take over
        size_buffers(request.transport, TRANSPORT_HIGH_WATER, self.config.socket_send_buffer)
        session_id = f"s{next(self._ids)}"
        full = request.query.get("signing") == "full"
        state = self.hub.open_session(session_id, full_signing=full, source=source)
        connection = Connection(
            ws, state, self._budget, request.transport, source, TRANSPORT_HIGH_WATER
        )
        self._connections[session_id] = connection
        self._unauthenticated.opened(connection)
        # Every event this session's task logs names the session, its peer and (once a
        # request named one) its client: bound once, not per frame (binding costs µs).
        client: ClientKey | None = None
        with bound(session=session_id, source=source):
            log_event("session_opened", logging.DEBUG)
            try:
                async for message in ws:
                    if message.type == WSMsgType.ERROR:
                        break
                    if connection.closing:
                        # Frames parsed from the last read before it was closed (a flood
                        # packs thousands into one read): dropped here, before any work.
                        continue
                    if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                        frames = self._frames
                        pending = frames.on_frame(connection, message.data, only, exclude)
                        if pending is not None:  # an order waiting for its balance read
                            await frames.after_balance(connection, pending)
                        if state.client is not None and state.client != client:
                            client = state.client
                            bind(client=client[1], chain_id=client[0])
                        if connection.backlogged():
                            # Read no further request until our replies are on their way:
                            # what a client's own requests can queue here stays near the floor.
                            await connection.drained()
            finally:
                log_event("session_ended", logging.DEBUG, frames_out=state.out_seq)
                unbind("client", "chain_id")
                connection.closing = True
                connection.discard()
                self._connections.pop(session_id, None)
                self._unauthenticated.release(connection)
                self.hub.close_session(session_id)
        return ws

    # ------------------------------------------------------------------ connection bounds

    def _close(self, connection: Connection, code: int, reason: str, flush: bool = True) -> None:
        """Stop sending to the session now (it leaves fan-out at once) and close it, after
        what is queued (`flush`) or dropping it (a reader too slow for it)."""
        if connection.closing:
            return
        connection.closing = True
        if not flush:
            connection.discard()  # its queued bytes are released now, not after the handshake
        session_id = connection.state.session_id
        self.hub.close_session(session_id)
        self._unauthenticated.release(connection)  # room for others at once
        log_event(
            "session_closed",
            logging.WARNING,
            session=connection.state.session_id,
            code=code,
            reason=reason,
        )
        closing = asyncio.ensure_future(
            connection.close(code, reason, self.config.close_grace.total_seconds(), flush)
        )
        self._background.add(closing)
        closing.add_done_callback(self._background.discard)
