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

The connection, its resume and restart handling and the reading of server frames are
client_link.py's.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp

from indexmaker.core.ids import client_key
from indexmaker.core.money import INDEX_TOKEN_DECIMALS
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
    OrderEnded,
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
from indexmaker.server.client_link import ClientLink
from indexmaker.server.client_redemption import (
    RedemptionBurn,
    RedemptionFill,
    RedemptionInvoice,
    RedemptionLotSold,
)
from indexmaker.server.client_requests import (
    DEFAULT_CHAIN_ID,
    DEFAULT_URL,
    amount_text,
    new_id,
    parse_side,
    request_body,
)
from indexmaker.server.client_tracking import ConnectionLost
from indexmaker.server.encoding import PreparedMessage, Stamp, encode_prepared
from indexmaker.server.redemption_wire import REDEMPTION_INVOICE
from indexmaker.server.wire_values import (
    CANCEL_INDEX_ORDER,
    CANCEL_INDEX_QUOTE,
    CANCEL_QUOTE_REQUEST,
    CHALLENGE,
    CHALLENGE_REQUEST,
    INDEX_QUOTE_RESPONSE,
    MINT_INVOICE,
    NEW_INDEX_ORDER,
    NEW_INDEX_QUOTE,
    NEW_QUOTE_REQUEST,
    REPLAYED_SIGNATURE,
    RESEND_REQUEST,
    UNSIGNED_REQUEST_TYPES,
    check_id,
)

# After a reconnect, how long the resume's resent frames get to bring an ACKed request's
# answer before the request is sent again (a copy the server already took costs a strike).
RESUME_SETTLE = 0.05  # seconds

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
    "OrderEnded",
    "OrderResponse",
    "Position",
    "Quote",
    "QuoteStatus",
    "RedemptionBurn",
    "RedemptionFill",
    "RedemptionInvoice",
    "RedemptionLotSold",
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


class IndexMakerClient(ClientLink):
    """The SDK: signed requests over a ClientLink (see the module docstring)."""

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> IndexMakerClient:
        await self.connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ requests

    async def new_order(
        self,
        symbol: str,
        side: Side | str,
        amount: Decimal | int | str,
        client_order_id: str | None = None,
        min_proceeds: Decimal | int | str | None = None,
    ) -> OrderResponse:
        """Send a signed NewIndexOrder; the server's acceptance or rejection (NakError on NAK).

        A sell's `amount` is index units (its tokens must be approved to custody first) and
        `min_proceeds` the least USDC it is to be paid (issue 12; a buy has none). Before each
        sell batch, what all its units would pay at P, the index's value at the sell limit
        prices (best bid × (1 − price_threshold)), net of the exchange fee (at most
        fee_factor − 1 of the sale), the redemption fee and the expected withdrawal fee, must
        reach it, else nothing is sold (`stopped`); a sell quote's `expected_proceeds` is that
        figure. A redemption sold in full is paid at least `min_proceeds` unless a withdrawal
        fee rose after the check (the proceeds are paid anyway; the invoice shows the fee)."""
        cid = check_id("client_order_id", client_order_id or new_id("o"))
        body = request_body("client_order_id", cid, symbol, side, amount)
        if min_proceeds is not None:
            body["min_proceeds"] = amount_text(min_proceeds)
        response = await self._call(NEW_INDEX_ORDER, cid, body, NEW_INDEX_ORDER)
        assert isinstance(response, OrderResponse)
        return response

    async def cancel(
        self, symbol: str, client_order_id: str, amount: Decimal | int | str
    ) -> CancelResponse:
        """Take up to `amount` of not-yet-engaged collateral off the order."""
        cid = check_id("client_order_id", client_order_id)
        body = request_body("client_order_id", cid, symbol)
        # No side on the wire: a sell's index units may have 18 decimals; the server holds a
        # buy's cancel to USDC's 6.
        body["amount"] = amount_text(amount, decimals=INDEX_TOKEN_DECIMALS)
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
        """How many index units `amount` (USDC) buys; for a sell, `amount` is index units and
        the Quote's `expected_proceeds` the USDC they should pay (RequestRejected if the quote
        is refused)."""
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
        if isinstance(quote, QuoteStatus):  # refused when it came to be priced
            raise RequestRejected(f"quote {qid}", quote.reason)
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
        body = self._with_nonce(RESEND_REQUEST, body)
        return await self._exchange(RESEND_REQUEST, challenge.challenge, body)

    async def wait_minted(self, client_order_id: str, timeout: float | None = None) -> Invoice:
        """The MintInvoice of a buy order (at once if it already came).

        Raises RequestRejected with the server's reason if the order is rejected after its
        acceptance (e.g. its collateral was not ready within the service's collateral
        timeout), OrderEnded if the server ends it with nothing to mint (used up reducing the
        client's sell, SPEC §3), TimeoutError if none comes within `timeout` seconds."""
        invoice = await self._tracking.wait_end(MINT_INVOICE, client_order_id, timeout)
        assert isinstance(invoice, Invoice)
        return invoice

    async def wait_redeemed(
        self, client_order_id: str, timeout: float | None = None
    ) -> RedemptionInvoice:
        """The RedemptionInvoice of a sell order (at once if it already came).

        Raises RequestRejected with the server's reason if the order is rejected after its
        acceptance (e.g. the index tokens to sell never reached custody), OrderEnded if the
        server ends it with nothing to redeem (used up reducing the client's buy, SPEC §3),
        TimeoutError if none comes within `timeout` seconds."""
        invoice = await self._tracking.wait_end(REDEMPTION_INVOICE, client_order_id, timeout)
        assert isinstance(invoice, RedemptionInvoice)
        return invoice

    async def _call(
        self, msg_type: str, signed_id: str, body: dict[str, Any], answer_type: str
    ) -> ServerMessage:
        """Send, wait for the ACK, then for the business answer of that id. If the connection
        drops after the ACK and the new session resumes without the answer, the request is
        sent again (same id and nonce): a server that took it refuses the copy as a replay
        (the answer still comes), one that died before making it durable takes it now."""
        answer = self._tracking.waiter(answer_type, signed_id)
        body = self._with_nonce(msg_type, body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_timeout
        try:
            await self._request(msg_type, signed_id, body)
            while True:
                reopened = loop.create_future()
                self._reopened.append(reopened)
                await asyncio.wait(
                    (answer, reopened), timeout=max(0.0, deadline - loop.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )  # fmt: skip
                reopened.cancel()
                if answer.done():
                    return answer.result()
                if not reopened.done() or reopened.cancelled():
                    raise TimeoutError
                await asyncio.sleep(RESUME_SETTLE)  # the resume's resent frames come first
                if not answer.done():
                    await self._request(msg_type, signed_id, body, resend=True)
                deadline = loop.time() + self.request_timeout  # a new session, a new wait
        except TimeoutError:
            raise TimeoutError(f"no {answer_type} answer for {signed_id}") from None
        finally:
            self._tracking.drop_waiter(answer_type, signed_id, answer)

    async def _request(
        self, msg_type: str, signed_id: str, body: dict[str, Any], resend: bool = False
    ) -> Ack | None:
        """Send until ACKed, resending on the next session after a drop: None when a resend
        was refused as a replay, i.e. the server had accepted the first copy (its answer then
        comes with the resume). A resend carries the first copy's nonce, so the server never
        takes one request twice (a cancel re-signed with a fresh nonce would cancel again)."""
        if self._closed or self._http is None:
            raise NotConnected("client is not connected")
        body = self._with_nonce(msg_type, body)
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
                    resend = True
                    await asyncio.sleep(0)  # the supervisor reconnects; then resend
                except NakError as nak:
                    if resend and nak.reason.startswith(REPLAYED_SIGNATURE):
                        return None  # spent by the copy the drop hid from us: it was taken
                    raise

    def _with_nonce(self, msg_type: str, body: dict[str, Any]) -> dict[str, Any]:
        """The request's body with its nonce (extended signing, signed types): one per
        request, kept by rate-limit retries and resends alike."""
        if not self.extended or msg_type in UNSIGNED_REQUEST_TYPES or "nonce" in body:
            return body
        return {**body, "nonce": new_id("n")}

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
            # The body carries the request's nonce (_with_nonce): a signature is spent once.
            message = PreparedMessage(msg_type, signed_id, self._with_nonce(msg_type, body), {})
            return encode_prepared(message, client, stamp, full=self._signer).decode()
        trailer = self._signer.trailer_for(msg_type, signed_id)
        message = PreparedMessage(msg_type, signed_id, body, trailer)
        return encode_prepared(message, client, stamp).decode()
