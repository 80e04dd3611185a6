"""The SDK's connection to the server (SPEC §5): connect, reconnect, resume, read.

IndexMakerClient (client.py) adds the requests on top of it.

Resume: the SDK remembers the highest `server_seq` it received. After a dropped connection it
reconnects with backoff, asks the server for a challenge (`ChallengeRequest` → `Challenge`)
and sends a ResendRequest naming its cursor, signed over that challenge: this authenticates
the new session (SPEC §5) with a signature worth nothing anywhere else. The server resends
what was missed (`poss_dup`), and anything seen twice is dropped by server_seq. A request that
was in flight when the connection dropped is sent again on the new session with the same id
and nonce (client.py), so a server that had already taken it refuses the copy as a replay and
takes nothing twice (a cancel is not applied again); the waiter gets the original answer from
the resend. So is a request ACKed but not yet answered when the connection dropped, once the
new session has resumed without its answer: a server that died before making it durable lost
it, and takes the copy (issue 8's resend window). `resume_from` asks for a resend right at the first
connect (e.g. `watch`, or a client restarted with a cursor it saved).

Restarts: a server numbers its server_seqs from a per-start epoch (GET /info
`server_seq_start`), so a new run never reuses a number. On a reconnect the SDK compares that
epoch (and, for servers without one, notices a live message numbered at or below its cursor)
and emits `ServerRestarted`: what the old run held for a resend may be gone. A connection the
server closes ends with `Disconnected("closed by the server (CODE: REASON)")`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import aiohttp
from yarl import URL

from indexmaker.server.client_events import (
    Ack,
    Connected,
    Disconnected,
    Event,
    Fill,
    Invoice,
    NotConnected,
    SequenceGap,
    ServerRestarted,
    ServerSignatureError,
    Unverified,
    decode_message,
    verify_frame,
)
from indexmaker.server.client_http import fetch_server_info
from indexmaker.server.client_requests import DEFAULT_CHAIN_ID
from indexmaker.server.client_tracking import ReplyTracker
from indexmaker.server.signing import SignatureError, Signer


def _seq_start(info: dict[str, Any]) -> int | None:
    start = info.get("server_seq_start")
    return start if isinstance(start, int) and not isinstance(start, bool) else None


class ClientLink:
    """One client's connection to the server, kept open across drops."""

    def __init__(
        self,
        url: str,
        private_key: str | bytes,
        chain_id: int = DEFAULT_CHAIN_ID,
        server_address: str | None = None,
        *,
        reconnect: bool = True,
        reconnect_delay: float = 0.1,
        max_reconnect_delay: float = 2.0,
        request_timeout: float = 10.0,
        max_rate_limit_retries: int = 20,
        resume_from: int | None = None,
        heartbeat: float | None = 20.0,
        event_buffer: int = 100_000,
        extended: bool = True,
    ) -> None:
        self.url = url
        self.extended = extended
        self.chain_id = chain_id
        self._signer = Signer(private_key)
        self.address: Final = self._signer.address
        self.server_address = server_address.lower() if server_address else None
        self._reconnect = reconnect
        self._delays = (reconnect_delay, max_reconnect_delay)
        self._resume_gate: Callable[[], Awaitable[None]] | None = None
        self.request_timeout = request_timeout
        self._max_rate_retries = max_rate_limit_retries
        self._heartbeat = heartbeat
        self._tracking = ReplyTracker(resume_from)
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._closed = False
        self._sessions = 0
        self._reopened: list[asyncio.Future[None]] = []  # woken when a new session is resumed
        self._server_seq_start: int | None = None  # from GET /info: this server run's epoch
        self._close_reason: str | None = None  # the server's close frame on this session
        self.server_restarts = 0
        self._out_seq = 1  # next seq_num to send on this session
        self._in_seq = 0  # last seq_num received on this session
        self._send_lock = asyncio.Lock()
        self.unverified: list[Unverified] = []
        self._events: asyncio.Queue[Event | None] = asyncio.Queue(event_buffer)
        self.on_event: Callable[[Event], None] | None = None  # called for each event
        self.callback_errors: list[Exception] = []

    # ------------------------------------------------------------ lifecycle

    @property
    def last_server_seq(self) -> int | None:
        """Highest server_seq received: save it to resume a later client from here."""
        return self._tracking.cursor

    @property
    def invoices(self) -> dict[str, Invoice]:
        """The MintInvoices received, by client_order_id."""
        return self._tracking.invoices

    @property
    def fills(self) -> dict[str, list[Fill]]:
        """The fill reports received, by client_order_id, in arrival order."""
        return self._tracking.fills

    @property
    def duplicates_dropped(self) -> int:
        """Server messages received twice (resends after a reconnect) and dropped."""
        return self._tracking.duplicates_dropped

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def connect(self) -> None:
        """Open the first connection (raises if the server cannot be reached)."""
        try:
            if self.server_address is None:
                info = await fetch_server_info(self.url, self.request_timeout)
                self.server_address = str(info["server_address"]).lower()
                self._server_seq_start = _seq_start(info)
            if self._http is None:
                self._http = aiohttp.ClientSession()
            await self._open()
        except BaseException:
            await self.close()
            raise
        self._supervisor = asyncio.create_task(self._supervise(), name="indexmaker-client")

    async def close(self) -> None:
        self._closed = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        await self._teardown("client closed")
        if self._http is not None:
            await self._http.close()
            self._http = None
        self._tracking.fail(NotConnected("client closed"))
        self._emit(None)

    async def drop_connection(
        self, resume_when: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Close the current connection as if the network failed: the client reconnects and
        resumes (demos and tests of the resume path). `resume_when`, if given, is awaited
        after the teardown and before the first reconnect attempt (a demo holds the outage
        open until the server has something to resend); its errors are ignored."""
        ws = self._ws
        if ws is not None:
            self._resume_gate = resume_when
            await ws.close(code=1001, message=b"client dropped the connection")

    async def _open(self) -> None:
        assert self._http is not None
        url = URL(self.url)
        if self.extended:
            url = url.update_query(signing="full")  # every server frame signed whole
        ws = await self._http.ws_connect(
            url, heartbeat=self._heartbeat, timeout=aiohttp.ClientWSTimeout(ws_close=2)
        )
        self._ws, self._out_seq, self._in_seq = ws, 1, 0
        self._close_reason = None
        self._sessions += 1
        if self._sessions > 1:
            await self._check_restart()
        self._reader = asyncio.create_task(self._read(ws))
        resumed = self._tracking.cursor
        if resumed is None and self._sessions > 1:
            resumed = 0  # dropped before any stored response arrived: ask for all still held
        if resumed is not None:
            # Signed over a fresh challenge: it also authenticates the session.
            await self._resend_request(resumed)
        self._connected.set()
        waiting, self._reopened = self._reopened, []
        for future in waiting:
            if not future.done():
                future.set_result(None)
        self._emit(Connected(self._sessions, resumed))

    async def _check_restart(self) -> None:
        """On a reconnect: has the server restarted (a new server_seq epoch in GET /info)?"""
        try:
            start = _seq_start(await fetch_server_info(self.url, self.request_timeout))
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return  # best effort: the server_seq check in _on_frame still catches a restart
        known, cursor = self._server_seq_start, self._tracking.cursor
        self._server_seq_start = start
        if start is None:
            return
        if (known is not None and start != known) or (cursor is not None and 0 < cursor <= start):
            self._restarted(f"the server restarted (its server_seq now starts after {start})")

    def _restarted(self, reason: str) -> None:
        self.server_restarts += 1
        self._emit(ServerRestarted(reason, self._tracking.cursor))

    async def _teardown(self, reason: str) -> None:
        was_connected = self._ws is not None
        self._connected.clear()
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        self._tracking.lose_acks(reason, forget=True)
        if was_connected:
            self._emit(Disconnected(reason))

    async def _supervise(self) -> None:
        while not self._closed:
            reader = self._reader
            if reader is not None:
                await asyncio.wait({reader})  # never raises the reader's error; close() cancels
            reason = self._close_reason or "connection lost"
            await self._teardown(reason)
            if not self._reconnect:
                self._tracking.fail(NotConnected(reason))
                return
            gate, self._resume_gate = self._resume_gate, None
            if gate is not None:
                with contextlib.suppress(Exception):
                    await gate()
            delay = self._delays[0]
            while not self._closed:
                await asyncio.sleep(delay)
                try:
                    await self._open()
                    break
                except Exception as error:  # refused, reset, timed out, NAKed: try again
                    await self._teardown(f"reconnect failed: {type(error).__name__}")
                    delay = min(delay * 2, self._delays[1])

    async def _resend_request(self, last_server_seq: int) -> Ack:
        """Signed over a fresh server challenge (the request side, client.py)."""
        raise NotImplementedError

    async def events(self) -> AsyncIterator[Event]:
        """Every event in arrival order, until the client is closed."""
        while True:
            event = await self._events.get()
            if event is None:
                self._events.put_nowait(None)  # let other iterators end too
                return
            yield event

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    # ------------------------------------------------------------ incoming

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            while True:
                message = await ws.receive()
                if message.type == aiohttp.WSMsgType.TEXT:
                    self._on_frame(message.data)
                elif message.type == aiohttp.WSMsgType.BINARY:
                    self._on_frame(message.data.decode("utf-8", "replace"))
                elif message.type == aiohttp.WSMsgType.CLOSE:
                    # Keep the server's own words ("server shutting down", "too slow").
                    why = f": {message.extra}" if message.extra else ""
                    self._close_reason = f"closed by the server ({message.data}{why})"
                    break
                elif message.type in (
                    aiohttp.WSMsgType.ERROR,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                ):
                    break
        finally:
            if ws is self._ws:
                # At once, so waiting requests resend on the next session without delay.
                self._connected.clear()
                self._tracking.lose_acks("connection lost")

    def _on_frame(self, raw: str) -> None:
        assert self.server_address is not None
        try:
            frame = json.loads(raw)
            verify_frame(frame, self.server_address, full=self.extended)
            message = decode_message(frame)
        except (SignatureError, ValueError, KeyError, TypeError, AttributeError) as error:
            self._refuse(f"{type(error).__name__}: {error}", raw)
            return
        expected = self._in_seq + 1
        if message.seq_num != expected:
            self._emit(SequenceGap(expected, message.seq_num))
        self._in_seq = message.seq_num
        seq, cursor = message.server_seq, self._tracking.cursor
        if seq is not None and not message.poss_dup and cursor is not None and seq <= cursor:
            # Live messages are numbered upwards; one at or below the cursor means a server
            # that restarted its numbering: every new message would pass for a repeat.
            self._tracking.restart()
            self._restarted(f"the server restarted its numbering (server_seq {seq} <= {cursor})")
        if seq is not None and not self._tracking.first_time(seq):
            return  # a resend of what already came
        self._tracking.route(message)
        self._emit(message)

    def _refuse(self, reason: str, raw: str) -> None:
        event = Unverified(reason, raw)
        self.unverified.append(event)
        self._emit(event)
        # Whatever the waiting requests expected may be this frame: they cannot trust a reply.
        error = ServerSignatureError(f"server message refused: {reason}")
        self._tracking.fail(error, invoices=False)

    def _emit(self, event: Event | None) -> None:
        if event is not None and self.on_event is not None:
            try:
                self.on_event(event)
            except Exception as error:  # a user callback's bug must not kill the reader
                self.callback_errors.append(error)
        if self._events.full():
            self._events.get_nowait()  # nobody is reading: keep the newest
        self._events.put_nowait(event)
