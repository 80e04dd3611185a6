"""The Python client SDK of the FIX/JSON WebSocket protocol (SPEC §5), on aiohttp.

    async with IndexMakerClient("ws://127.0.0.1:3000/ws", private_key) as client:
        quote = await client.quote("SY100", "buy", Decimal(1000))
        accepted = await client.new_order("SY100", "buy", Decimal(1000))
        invoice = await client.wait_minted(accepted.client_order_id, timeout=60)

Requests are signed with the wallet key exactly as the server checks them. By default
(`extended=True`) over the extended text: every field of the frame plus a fresh client nonce
(signing.py), so no field can be changed after signing and no signature can be spent twice;
the session is opened with `?signing=full` and every server frame must be signed over its
whole content too. `extended=False` signs the reference text {"msg_type":…,"id":…} (EIP-191)
and accepts server frames signed the same way. Quotes are unsigned, as in the reference.
Requests go one at a time: each waits for its ACK/NAK before the next is sent, because only an
ACKed message consumes a seq_num (after a NAK the next message reuses it). A rate-limit NAK is
retried after its hint.

Every server frame is verified against the server's address (given, or read from GET /info)
before anything in it is believed; a frame that fails is surfaced as `Unverified`, changes no
state, and fails the requests waiting at that moment with ServerSignatureError.

Resume: the SDK remembers the highest `server_seq` it received. After a dropped connection it
reconnects with backoff, asks the server for a challenge (`ChallengeRequest` → `Challenge`)
and sends a ResendRequest naming its cursor, signed over that challenge: this authenticates
the new session (SPEC §5) with a signature worth nothing anywhere else. The server resends
what was missed (`poss_dup`), and anything seen twice is dropped by server_seq. A request that
was in flight when the connection dropped is sent again on the new session (an order the
server had already taken then gets a duplicate-id rejection after its original acceptance,
which is what the waiter receives). `resume_from` asks for a resend right at the first
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
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import aiohttp
from yarl import URL

from indexmaker.core.ids import client_key
from indexmaker.model.side import Side
from indexmaker.server.client_events import (
    Ack,
    CancelResponse,
    Challenge,
    ClientError,
    Connected,
    Disconnected,
    Event,
    Fill,
    Invoice,
    InvoiceLot,
    Nak,
    NakError,
    NotConnected,
    OrderResponse,
    Position,
    Quote,
    QuoteStatus,
    RequestRejected,
    SequenceGap,
    ServerMessage,
    ServerRestarted,
    ServerSignatureError,
    Unverified,
    decode_message,
    signed_id_of,
    verify_frame,
)
from indexmaker.server.client_http import fetch_server_info, http_base, sim_deposit
from indexmaker.server.client_requests import (
    DEFAULT_CHAIN_ID,
    DEFAULT_URL,
    amount_text,
    new_id,
    parse_side,
    request_body,
)
from indexmaker.server.client_tracking import ConnectionLost, ReplyTracker
from indexmaker.server.encoding import PreparedMessage, Stamp, encode_prepared
from indexmaker.server.signing import SignatureError, Signer
from indexmaker.server.wire_values import (
    CANCEL_INDEX_ORDER,
    CANCEL_INDEX_QUOTE,
    CANCEL_QUOTE_REQUEST,
    CHALLENGE,
    CHALLENGE_REQUEST,
    INDEX_QUOTE_RESPONSE,
    NEW_INDEX_ORDER,
    NEW_INDEX_QUOTE,
    NEW_QUOTE_REQUEST,
    RESEND_REQUEST,
    UNSIGNED_REQUEST_TYPES,
    check_id,
)

# The events and errors live in client_events.py, request building in client_requests.py,
# reply tracking in client_tracking.py; this module is the SDK's one import point.
__all__ = [
    "DEFAULT_CHAIN_ID",
    "DEFAULT_URL",
    "Ack",
    "CancelResponse",
    "Challenge",
    "ClientError",
    "Connected",
    "Disconnected",
    "Event",
    "Fill",
    "IndexMakerClient",
    "Invoice",
    "InvoiceLot",
    "Nak",
    "NakError",
    "NotConnected",
    "OrderResponse",
    "Position",
    "Quote",
    "QuoteStatus",
    "RequestRejected",
    "SequenceGap",
    "ServerMessage",
    "ServerRestarted",
    "ServerSignatureError",
    "Unverified",
    "amount_text",
    "decode_message",
    "fetch_server_info",
    "http_base",
    "new_id",
    "parse_side",
    "request_body",
    "signed_id_of",
    "sim_deposit",
    "verify_frame",
]

# ---------------------------------------------------------------- the client


def _seq_start(info: dict[str, Any]) -> int | None:
    start = info.get("server_seq_start")
    return start if isinstance(start, int) and not isinstance(start, bool) else None


class IndexMakerClient:
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

    async def __aenter__(self) -> IndexMakerClient:
        await self.connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

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

    # ------------------------------------------------------------ requests

    async def new_order(
        self,
        symbol: str,
        side: Side | str,
        amount: Decimal | int | str,
        client_order_id: str | None = None,
    ) -> OrderResponse:
        """Send a signed NewIndexOrder; the server's acceptance or rejection (NakError on NAK)."""
        cid = check_id("client_order_id", client_order_id or new_id("o"))
        body = request_body("client_order_id", cid, symbol, side, amount)
        response = await self._call(NEW_INDEX_ORDER, cid, body, NEW_INDEX_ORDER)
        assert isinstance(response, OrderResponse)
        return response

    async def cancel(
        self, symbol: str, client_order_id: str, amount: Decimal | int | str
    ) -> CancelResponse:
        """Take up to `amount` of not-yet-engaged collateral off the order."""
        cid = check_id("client_order_id", client_order_id)
        body = request_body("client_order_id", cid, symbol, amount=amount)
        response = await self._call(CANCEL_INDEX_ORDER, cid, body, CANCEL_INDEX_ORDER)
        assert isinstance(response, CancelResponse)
        return response

    async def quote(
        self,
        symbol: str,
        side: Side | str,
        amount: Decimal | int | str,
        client_quote_id: str | None = None,
    ) -> Quote:
        """How many index units `amount` buys (RequestRejected if the quote is refused)."""
        qid = check_id("client_quote_id", client_quote_id or new_id("q"))
        body = request_body("client_quote_id", qid, symbol, side, amount)
        answer = self._tracking.waiter(INDEX_QUOTE_RESPONSE, qid)
        try:
            status = await self._call(NEW_QUOTE_REQUEST, qid, body, NEW_INDEX_QUOTE)
            assert isinstance(status, QuoteStatus)
            if status.status != "new":
                raise RequestRejected(f"quote {qid}", status.reason)
            quote = await asyncio.wait_for(asyncio.shield(answer), self.request_timeout)
        finally:
            self._tracking.drop_waiter(INDEX_QUOTE_RESPONSE, qid, answer)
        assert isinstance(quote, Quote)
        return quote

    async def cancel_quote(self, symbol: str, client_quote_id: str) -> QuoteStatus:
        qid = check_id("client_quote_id", client_quote_id)
        body = request_body("client_quote_id", qid, symbol)
        response = await self._call(CANCEL_QUOTE_REQUEST, qid, body, CANCEL_INDEX_QUOTE)
        assert isinstance(response, QuoteStatus)
        return response

    async def resume(self, last_server_seq: int) -> Ack:
        """Ask for everything after `last_server_seq` (signed over a server challenge: it
        authenticates the session for this key's private responses)."""
        if self._tracking.cursor is None:
            self._tracking.cursor = last_server_seq
        if self._closed or self._http is None:
            raise NotConnected("client is not connected")
        async with self._send_lock:
            return await self._resend_request(last_server_seq)

    async def _resend_request(self, last_server_seq: int) -> Ack:
        """ChallengeRequest → Challenge, then a ResendRequest signed over that challenge."""
        answer = self._tracking.waiter(CHALLENGE, "")
        try:
            await self._exchange(CHALLENGE_REQUEST, "", {})
            challenge = await asyncio.wait_for(asyncio.shield(answer), self.request_timeout)
        except TimeoutError:
            raise TimeoutError("no Challenge from the server") from None
        finally:
            self._tracking.drop_waiter(CHALLENGE, "", answer)
        assert isinstance(challenge, Challenge)
        body = {"last_server_seq": last_server_seq, "challenge": challenge.challenge}
        return await self._exchange(RESEND_REQUEST, challenge.challenge, body)

    async def wait_minted(self, client_order_id: str, timeout: float | None = None) -> Invoice:
        """The MintInvoice of that order (at once if it already came)."""
        return await self._tracking.wait_invoice(client_order_id, timeout)

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

    async def _call(
        self, msg_type: str, signed_id: str, body: dict[str, Any], answer_type: str
    ) -> ServerMessage:
        """Send, wait for the ACK, then for the business answer of that id."""
        answer = self._tracking.waiter(answer_type, signed_id)
        try:
            await self._request(msg_type, signed_id, body)
            return await asyncio.wait_for(asyncio.shield(answer), self.request_timeout)
        except TimeoutError:
            raise TimeoutError(f"no {answer_type} answer for {signed_id}") from None
        finally:
            self._tracking.drop_waiter(answer_type, signed_id, answer)

    async def _request(self, msg_type: str, signed_id: str, body: dict[str, Any]) -> Ack:
        if self._closed or self._http is None:
            raise NotConnected("client is not connected")
        async with self._send_lock:
            while True:
                if not self._connected.is_set():
                    if not self._reconnect or self._supervisor is None:
                        raise NotConnected("connection lost")
                    await asyncio.wait_for(self._connected.wait(), self.request_timeout)
                try:
                    return await self._exchange(msg_type, signed_id, body)
                except ConnectionLost:
                    if not self._reconnect or self._closed:
                        raise NotConnected("connection lost") from None
                    await asyncio.sleep(0)  # the supervisor reconnects; then resend

    async def _exchange(self, msg_type: str, signed_id: str, body: dict[str, Any]) -> Ack:
        """One frame on the current session until ACK; rate-limit NAKs are waited out."""
        for _attempt in range(self._max_rate_retries + 1):
            ws = self._ws
            if ws is None:
                raise ConnectionLost("no connection")
            seq = self._out_seq
            future = self._tracking.expect_ack(seq)
            try:
                await ws.send_str(self._frame(msg_type, seq, signed_id, body))
                reply = await asyncio.wait_for(future, self.request_timeout)
            except (ConnectionError, aiohttp.ClientError) as error:
                raise ConnectionLost(str(error)) from None
            except TimeoutError:
                raise TimeoutError(f"no ACK for {msg_type} seq {seq}") from None
            finally:
                self._tracking.forget_ack(seq)
            if isinstance(reply, Ack):
                self._out_seq = seq + 1
                return reply
            wait = reply.retry_after
            if wait is None:
                raise NakError(reply.reason, reply.ref_seq_num)
            await asyncio.sleep(wait)
        raise NakError(f"still rate limited after {self._max_rate_retries} retries", seq)

    def _frame(self, msg_type: str, seq: int, signed_id: str, body: dict[str, Any]) -> str:
        stamp = Stamp(seq, datetime.now(UTC), sender_comp_id="CLIENT", target_comp_id="SERVER")
        client = client_key(self.chain_id, self.address)
        if msg_type in UNSIGNED_REQUEST_TYPES:
            # Quotes carry empty trailer lists, as the reference's front end sends them.
            message = PreparedMessage(
                msg_type, signed_id, body, {"public_key": [], "signature": []}
            )
            return encode_prepared(message, client, stamp).decode()
        if self.extended:
            # A fresh nonce per frame (a retry too): every signature is spent exactly once.
            message = PreparedMessage(msg_type, signed_id, {**body, "nonce": new_id("n")}, {})
            return encode_prepared(message, client, stamp, full=self._signer).decode()
        trailer = self._signer.trailer_for(msg_type, signed_id)
        message = PreparedMessage(msg_type, signed_id, body, trailer)
        return encode_prepared(message, client, stamp).decode()

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
