"""Who in the SDK waits for which reply, and which server messages already arrived.

The connection (client.py) sends frames and reads them; this module matches what arrives to
what is waited for: the ACK/NAK of a frame by its seq_num, a request's business answer by
(message type, client id), the end of an order by client_order_id (its MintInvoice or
RedemptionInvoice, or a rejection that follows its acceptance). It also
keeps the resume cursor (the highest server_seq received) and drops what a resend delivers
twice, by server_seq.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

from indexmaker.server.client_events import (
    ORDER_DONE,
    Ack,
    CancelResponse,
    Challenge,
    Fill,
    Invoice,
    Nak,
    OrderEnded,
    OrderResponse,
    Quote,
    QuoteStatus,
    RequestRejected,
    ServerMessage,
)
from indexmaker.server.client_redemption import RedemptionInvoice
from indexmaker.server.redemption_wire import REDEMPTION_INVOICE
from indexmaker.server.wire_values import (
    CANCEL_INDEX_ORDER,
    CANCEL_INDEX_QUOTE,
    CHALLENGE,
    INDEX_QUOTE_RESPONSE,
    MINT_INVOICE,
    NEW_INDEX_ORDER,
    NEW_INDEX_QUOTE,
)

# server_seqs remembered for dedupe; a resend never reaches further back than this.
_SEEN_LIMIT = 100_000


class ConnectionLost(Exception):
    """The session under a request ended; the request is sent again on the next one."""


class ReplyTracker:
    def __init__(self, resume_from: int | None = None) -> None:
        # Resume cursor: the highest server_seq received (None: ask for no resend).
        self.cursor = resume_from
        self._seen: set[int] = set()
        self._seen_order: deque[int] = deque()
        self.duplicates_dropped = 0
        self._acks: dict[int, asyncio.Future[Ack | Nak]] = {}
        self._waiters: dict[tuple[str, str], deque[asyncio.Future[ServerMessage]]] = {}
        # Who waits for the end of an order: (MINT_INVOICE or REDEMPTION_INVOICE, its id).
        self._end_waiters: dict[tuple[str, str], list[asyncio.Future[ServerMessage]]] = {}
        self.invoices: dict[str, Invoice] = {}
        self.fills: dict[str, list[Fill]] = {}
        self.redemptions: dict[str, RedemptionInvoice] = {}
        # Rejections no request waited for: an order refused after its acceptance (a buy
        # whose collateral never became ready, a sell whose index tokens never reached
        # custody, issue 12). They end that order.
        # orders ended without an invoice: rejected after their ACK, or ended "done: …"
        self.rejections: dict[str, OrderResponse | CancelResponse] = {}

    # ------------------------------------------------------------ ACK/NAK by seq_num

    def expect_ack(self, seq: int) -> asyncio.Future[Ack | Nak]:
        future: asyncio.Future[Ack | Nak] = asyncio.get_running_loop().create_future()
        self._acks[seq] = future
        return future

    def forget_ack(self, seq: int) -> None:
        self._acks.pop(seq, None)

    def lose_acks(self, reason: str, *, forget: bool = False) -> None:
        """The session ended: frames waiting for their ACK are to be resent."""
        for future in self._acks.values():
            if not future.done():
                future.set_exception(ConnectionLost(reason))
        if forget:
            self._acks.clear()

    # ------------------------------------------------------------ business answers

    def waiter(self, msg_type: str, ident: str) -> asyncio.Future[ServerMessage]:
        future: asyncio.Future[ServerMessage] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault((msg_type, ident), deque()).append(future)
        return future

    def drop_waiter(self, msg_type: str, ident: str, future: asyncio.Future[Any]) -> None:
        queue = self._waiters.get((msg_type, ident))
        if queue is not None:
            with contextlib.suppress(ValueError):
                queue.remove(future)
            if not queue:
                del self._waiters[(msg_type, ident)]
        if not future.done():
            future.cancel()
        elif not future.cancelled():
            future.exception()  # retrieved: an error nobody awaits any more is not a bug

    async def wait_end(
        self, kind: str, client_order_id: str, timeout: float | None
    ) -> Invoice | RedemptionInvoice:
        """The invoice of kind MINT_INVOICE or REDEMPTION_INVOICE that ends this order, at once
        if it already came. Raises RequestRejected with the server's reason if the order was
        rejected after its acceptance, TimeoutError if neither comes within `timeout` s."""
        kept: dict[str, Invoice] | dict[str, RedemptionInvoice]
        kept = self.invoices if kind == MINT_INVOICE else self.redemptions
        end: ServerMessage | None = kept.get(client_order_id) or self.rejections.get(
            client_order_id
        )
        if end is None:
            future: asyncio.Future[ServerMessage] = asyncio.get_running_loop().create_future()
            waiters = self._end_waiters.setdefault((kind, client_order_id), [])
            waiters.append(future)
            try:
                end = await asyncio.wait_for(future, timeout)
            except TimeoutError:
                raise TimeoutError(f"no {kind} for {client_order_id} within {timeout} s") from None
            finally:
                with contextlib.suppress(ValueError):
                    waiters.remove(future)
                if not waiters:
                    self._end_waiters.pop((kind, client_order_id), None)
        if isinstance(end, OrderResponse):
            raise RequestRejected(f"order {client_order_id}", end.reason)
        if isinstance(end, CancelResponse):
            raise OrderEnded(client_order_id, end.reason)
        assert isinstance(end, Invoice | RedemptionInvoice)
        return end

    def fail(self, error: Exception, *, invoices: bool = True) -> None:
        """Fail everything waiting (the ACKs, the answers, and the invoices if `invoices`)."""
        futures: list[asyncio.Future[Any]] = list(self._acks.values())
        for queue in self._waiters.values():
            futures.extend(queue)
        if invoices:
            for waiters in self._end_waiters.values():
                futures.extend(waiters)
        for future in futures:
            if not future.done():
                future.set_exception(error)

    # ------------------------------------------------------------ incoming

    def first_time(self, server_seq: int) -> bool:
        """Whether this server_seq is new (then remembered); a repeat is counted and dropped."""
        if server_seq in self._seen:
            self.duplicates_dropped += 1
            return False
        self._seen.add(server_seq)
        self._seen_order.append(server_seq)
        if len(self._seen_order) > _SEEN_LIMIT:
            self._seen.discard(self._seen_order.popleft())
        if self.cursor is None or server_seq > self.cursor:
            self.cursor = server_seq
        return True

    def restart(self) -> None:
        """The server's numbering started again: forget what was seen and the cursor."""
        self._seen.clear()
        self._seen_order.clear()
        self.cursor = None

    def route(self, message: ServerMessage) -> None:
        """Hand a verified, new message to whoever waits for it; keep fills and invoices."""
        match message:
            case Ack():
                future = self._acks.get(message.ref_seq_num)
                if future is not None and not future.done():
                    future.set_result(message)
            case Nak():
                # A NAK names the last accepted seq (SPEC §5); the refused one is ours.
                refused = message.refused_seq_num
                future = self._acks.get(message.ref_seq_num if refused is None else refused)
                if future is not None and not future.done():
                    future.set_result(message)
            case Challenge():
                self._resolve(CHALLENGE, "", message)
            case OrderResponse() | CancelResponse():
                msg_type = (
                    NEW_INDEX_ORDER if isinstance(message, OrderResponse) else CANCEL_INDEX_ORDER
                )
                taken = self._resolve(msg_type, message.client_order_id, message)
                if not taken and (_rejected(message) or _done(message)):
                    self.rejections[message.client_order_id] = message
                    self._end(MINT_INVOICE, message.client_order_id, message)
                    self._end(REDEMPTION_INVOICE, message.client_order_id, message)
            case QuoteStatus():
                msg_type = CANCEL_INDEX_QUOTE if message.cancel else NEW_INDEX_QUOTE
                taken = self._resolve(msg_type, message.client_quote_id, message)
                if not taken and not message.cancel and message.status == "rejected":
                    # Refused when it came to be priced (a sell too small at the bids then):
                    # the answer awaited is this refusal.
                    self._resolve(INDEX_QUOTE_RESPONSE, message.client_quote_id, message)
            case Quote():
                self._resolve(INDEX_QUOTE_RESPONSE, message.client_quote_id, message)
            case Fill():
                self.fills.setdefault(message.client_order_id, []).append(message)
            case RedemptionInvoice():
                self.redemptions[message.client_order_id] = message
                self._end(REDEMPTION_INVOICE, message.client_order_id, message)
            case Invoice():
                self.invoices[message.client_order_id] = message
                self._end(MINT_INVOICE, message.client_order_id, message)

    def _end(self, kind: str, client_order_id: str, message: ServerMessage) -> None:
        """Hand the end of an order to every one waiting for it."""
        for waiter in self._end_waiters.pop((kind, client_order_id), []):
            if not waiter.done():
                waiter.set_result(message)

    def _resolve(self, msg_type: str, ident: str, message: ServerMessage) -> bool:
        """Hand `message` to the first live waiter of (msg_type, ident); False if none."""
        queue = self._waiters.get((msg_type, ident))
        while queue:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(message)
                return True
        return False


def _rejected(message: OrderResponse | CancelResponse) -> bool:
    """An unsolicited NewIndexOrder answer `rejected`: the order was refused after its ACK."""
    return isinstance(message, OrderResponse) and not message.accepted


def _done(message: OrderResponse | CancelResponse) -> bool:
    """An unsolicited CancelIndexOrder answer `canceled` whose reason starts "done: ": the
    server ended an order that has nothing left to do, without an invoice (SPEC §3: a buy
    used up reducing the client's sell; engine/opposite_side.py's final report)."""
    return (
        isinstance(message, CancelResponse)
        and message.status == "canceled"
        and (message.reason or "").startswith(ORDER_DONE)
    )
