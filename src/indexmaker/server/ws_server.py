"""The FIX/JSON WebSocket server (SPEC §5) on aiohttp: an adapter of the core.

Per frame: parse → admit (session, seq, timestamp, rate limits) → signature → authorise (one
use, key sound, session cap) → ACK → the engine. Business responses from the engine are signed
once, stored in the outbox for resend and fanned out to every eligible session of the client
(session.py says which). Frames are written without waiting, so one slow client never holds up
the others or the engine; a client too far behind is closed.

A session opened with `?signing=full` gets every frame signed over its whole content
(signing.py); `require_extended_signatures` refuses requests signed the reference way.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from aiohttp import WSMsgType, web

from indexmaker.core.clock import Clock
from indexmaker.core.events import ClientRequest, ClientResponse
from indexmaker.core.ids import ClientKey
from indexmaker.observability.logging import log_event
from indexmaker.server.encoding import (
    PreparedMessage,
    Stamp,
    encode_prepared,
    prepare_ack,
    prepare_challenge,
    prepare_nak,
)
from indexmaker.server.messages import (
    ChallengeRequest,
    ParsedRequest,
    ResendRequest,
    WireError,
    WireLimits,
    parse_request,
    prepare_response,
)
from indexmaker.server.session import (
    SessionConfig,
    SessionHub,
    SessionState,
    server_seq_epoch,
)
from indexmaker.server.signing import SignatureError, Signer, verify_request
from indexmaker.server.wire_values import (
    CANCEL_QUOTE_REQUEST,
    NEW_QUOTE_REQUEST,
)

QUOTE_TYPES = frozenset({NEW_QUOTE_REQUEST, CANCEL_QUOTE_REQUEST})
NOT_AUTHORISED = "Not authorised"
HARD_FRAME_CAP_FACTOR = 4  # connection-closing cap, as a multiple of max_frame_bytes


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 3000
    path: str = "/ws"  # every message type
    quote_path: str | None = None  # optional quote-only endpoint (reference deployment)
    order_path: str | None = None  # optional order-only endpoint
    max_frame_bytes: int = 16 * 1024
    heartbeat: timedelta = timedelta(seconds=20)  # idle ping; no pong in time closes
    max_sessions: int = 10_000
    send_buffer_limit: int = 4 * 1024 * 1024  # unsent bytes before a slow session is closed
    allowed_chain_ids: frozenset[int] | None = None
    # Refuse requests signed over the reference text {"msg_type","id"} (SPEC §5 Replay).
    require_extended_signatures: bool = False
    # Also accept signatures over sha256(text): the reference's test client signs that way.
    accept_legacy_sha256: bool = False
    session: SessionConfig = field(default_factory=SessionConfig)


class _Connection:
    """One session's socket. Frames are written synchronously, in order, straight into the
    transport (uncompressed text frames need no await); a session whose unsent bytes pile
    up past the limit is too slow and is closed; the outbox keeps its responses for a resend."""

    def __init__(self, ws: web.WebSocketResponse, state: SessionState, limit: int) -> None:
        self.ws = ws
        self.state = state
        self.limit = limit
        writer = getattr(ws, "_writer", None)
        # aiohttp writes an uncompressed frame synchronously in WebSocketWriter; use that
        # directly instead of a task per frame (measured: most of the per-request cost).
        self._write = getattr(writer, "_write_websocket_frame", None)
        self._transport = getattr(writer, "transport", None)
        self._pending: set[asyncio.Task[None]] = set()

    def send(self, frame: bytes) -> bool:
        """Write one text frame now; False when the peer is too far behind or gone."""
        if self.ws.closed:
            return False
        transport = self._transport
        if transport is not None and transport.get_write_buffer_size() > self.limit:
            return False
        if self._write is not None:
            self._write(frame, WSMsgType.TEXT, 0)
            return True
        task = asyncio.ensure_future(self.ws.send_frame(frame, WSMsgType.TEXT))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return True

    async def flush(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


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
        self._submit = submit
        self._clock = clock
        self._signer = signer
        # Numbered from this start's epoch: a restart never reuses a server_seq (SPEC §5).
        self.hub = hub or SessionHub(
            config.session,
            last_server_seq=server_seq_epoch(clock.now()),
            full_signer=signer,
        )
        self._limits = WireLimits(config.max_frame_bytes, config.allowed_chain_ids)
        self._connections: dict[str, _Connection] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._accepting = True
        self._background: set[asyncio.Future[bool]] = set()
        self.app = web.Application()
        self.app.router.add_get(config.path, self._endpoint(None))
        if config.quote_path:
            self.app.router.add_get(config.quote_path, self._endpoint(QUOTE_TYPES))
        if config.order_path:
            self.app.router.add_get(config.order_path, self._endpoint(None, exclude=QUOTE_TYPES))
        self.app.router.add_get("/health", self._health)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        try:
            await site.start()
        except OSError:  # port taken, address not ours: nothing was served, nothing to stop
            await self._runner.cleanup()
            self._runner = None
            raise
        log_event("fix_listening", url=self.url)

    @property
    def url(self) -> str:
        return f"ws://{self.config.host}:{self.bound_port}{self.config.path}"

    @property
    def bound_port(self) -> int:
        if self._runner is not None:
            for site in self._runner.sites:
                server = getattr(site, "_server", None)
                sockets = getattr(server, "sockets", None)
                if sockets:
                    return int(sockets[0].getsockname()[1])
        return self.config.port

    async def stop(self, reason: str = "server shutting down") -> None:
        """Stop accepting, flush what is queued, close every session with a reason."""
        self._accepting = False
        for connection in list(self._connections.values()):
            await connection.flush()
            await connection.ws.close(code=1001, message=reason.encode())
        if self._runner is not None:
            await self._runner.cleanup()
        log_event("fix_stopped", reason=reason)

    def session_count(self) -> int:
        return len(self._connections)

    # ------------------------------------------------------------------ engine → clients

    def deliver(self, client: ClientKey, response: ClientResponse) -> None:
        prepared = prepare_response(response, self._signer)
        for session_id, frame in self.hub.deliver(client, prepared, self._clock.now()):
            connection = self._connections.get(session_id)
            if connection is not None and not connection.send(frame):
                # Too far behind: close it; the outbox keeps its responses for a resend.
                log_event("session_too_slow", logging.WARNING, session=session_id)
                closing = asyncio.ensure_future(connection.ws.close(code=1008, message=b"too slow"))
                self._background.add(closing)
                closing.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------ clients → engine

    def _endpoint(
        self, only: frozenset[str] | None, exclude: frozenset[str] = frozenset()
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._session(request, only, exclude)

        return handler

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "sessions": len(self._connections)})

    async def _session(
        self, request: web.Request, only: frozenset[str] | None, exclude: frozenset[str]
    ) -> web.StreamResponse:
        if not self._accepting or len(self._connections) >= self.config.max_sessions:
            return web.Response(status=503, text="not accepting sessions")
        ws = web.WebSocketResponse(
            heartbeat=self.config.heartbeat.total_seconds(),
            # Frames over max_frame_bytes get a NAK from parse_request and the session stays
            # open; only beyond this hard cap does aiohttp close the connection (1009).
            max_msg_size=self.config.max_frame_bytes * HARD_FRAME_CAP_FACTOR,
            decode_text=False,
            compress=False,  # small JSON frames; uncompressed frames are written synchronously
        )
        await ws.prepare(request)
        session_id = f"s{next(self._ids)}"
        full = request.query.get("signing") == "full"
        state = self.hub.open_session(session_id, full_signing=full)
        connection = _Connection(ws, state, self.config.send_buffer_limit)
        self._connections[session_id] = connection
        try:
            async for message in ws:
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    self._on_frame(connection, message.data, only, exclude)
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            self._connections.pop(session_id, None)
            self.hub.close_session(session_id)
        return ws

    def _on_frame(
        self,
        connection: _Connection,
        data: bytes,
        only: frozenset[str] | None,
        exclude: frozenset[str],
    ) -> None:
        now = self._clock.now()
        state = connection.state
        parsed = parse_request(data, self._limits)
        if isinstance(parsed, WireError):
            self._nak(connection, parsed.ref_seq_num, parsed.reason, parsed.client)
            return
        if (only is not None and parsed.msg_type not in only) or parsed.msg_type in exclude:
            reason = f"{parsed.msg_type} is not served here"
            self._nak(connection, parsed.seq_num, reason, parsed.client)
            return
        verdict = self.hub.admit(state, parsed, now)
        if verdict is not None:
            self._nak(connection, parsed.seq_num, verdict.reason, parsed.client)
            return
        authenticated = False
        if parsed.needs_signature:
            verified = verify_request(
                parsed,
                require_extended=self.config.require_extended_signatures,
                accept_legacy_sha256=self.config.accept_legacy_sha256,
            )
            if isinstance(verified, SignatureError):
                reason = NOT_AUTHORISED
                if self.config.require_extended_signatures and parsed.nonce is None:
                    reason = f"{NOT_AUTHORISED}: {verified}"
                self._nak(connection, parsed.seq_num, reason, parsed.client)
                return
            verdict = self.hub.authorise(state, parsed, verified)
            if verdict is not None:
                if verdict.compromised:
                    # The operator must know: this wallet's private key is public now.
                    log_event(
                        "client_key_compromised",
                        logging.ERROR,
                        address=parsed.client[1],
                        chain_id=parsed.client[0],
                        session=state.session_id,
                    )
                self._nak(connection, parsed.seq_num, verdict.reason, parsed.client)
                return
            authenticated = True
        self.hub.accept(state, parsed, authenticated)
        ack = prepare_ack(parsed.seq_num, self._signer)
        self._send(connection, ack, parsed.client, Stamp(state.next_out_seq(), now))
        self._dispatch(connection, parsed)

    def _dispatch(self, connection: _Connection, parsed: ParsedRequest) -> None:
        request = parsed.request
        if isinstance(request, ChallengeRequest):
            challenge = secrets.token_urlsafe(18)  # 144 bits, 24 characters
            self.hub.issue_challenge(connection.state, challenge)
            message = prepare_challenge(challenge, self._signer)
            stamp = Stamp(connection.state.next_out_seq(), self._clock.now())
            self._send(connection, message, parsed.client, stamp)
            return
        if isinstance(request, ResendRequest):
            frames, complete = self.hub.resend(
                connection.state, request.last_server_seq, self._clock.now(), request.client
            )
            for frame in frames:
                connection.send(frame)
            if not complete:
                self._nak(
                    connection,
                    parsed.seq_num,
                    "resend incomplete: some responses expired; reconcile your orders",
                    parsed.client,
                )
            return
        self._submit(request)

    def _send(
        self,
        connection: _Connection,
        message: PreparedMessage,
        client: ClientKey | None,
        stamp: Stamp,
    ) -> None:
        full = self.hub.full_signer_for(connection.state)
        connection.send(encode_prepared(message, client, stamp, full))

    def _nak(
        self,
        connection: _Connection,
        refused_seq_num: int | None,
        reason: str,
        client: ClientKey | None = None,
    ) -> None:
        """A NAK of a frame that did not advance the sequence (SPEC §5): `ref_seq_num` is the
        last accepted seq_num, where reference clients continue; the refused one is named in
        the reason and in `refused_seq_num`."""
        state = connection.state
        if refused_seq_num is not None and not reason.startswith("Invalid sequence number"):
            reason = f"{reason} (seq_num {refused_seq_num} refused)"
        nak = prepare_nak(state.last_in_seq, reason, self._signer, refused_seq_num)
        stamp = Stamp(state.next_out_seq(), self._clock.now())
        self._send(connection, nak, client or state.client, stamp)
