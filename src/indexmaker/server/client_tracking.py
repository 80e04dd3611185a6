"""Who in the SDK waits for which reply, and which server messages already arrived.

The connection (client.py) sends frames and reads them; this module matches what arrives to
what is waited for: the ACK/NAK of a frame by its seq_num, a request's business answer by
(message type, client id), a MintInvoice or a RedemptionInvoice by client_order_id. It also
keeps the resume cursor (the highest server_seq received) and drops what a resend delivers
twice, by server_seq.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

from indexmaker.server.client_events import (
    Ack,
    CancelResponse,
    Challenge,
    Fill,
    Invoice,
    Nak,
    OrderResponse,
    Quote,
    QuoteStatus,
    ServerMessage,
)
from indexmaker.server.client_redemption import RedemptionInvoice
from indexmaker.server.redemption_wire import REDEMPTION_INVOICE
from indexmaker.server.wire_values import (
    CANCEL_INDEX_ORDER,
    CANCEL_INDEX_QUOTE,
    CHALLENGE,
    INDEX_QUOTE_RESPONSE,
    NEW_INDEX_ORDER,
    NEW_INDEX_QUOTE,
)

# Waiter key of a rejection that comes after an order was accepted (not a wire type).
ORDER_REJECTED = "order rejected"

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
        self._invoice_waiters: dict[str, list[asyncio.Future[Invoice]]] = {}
        self.invoices: dict[str, Invoice] = {}
        self.fills: dict[str, list[Fill]] = {}
        self.redemptions: dict[str, RedemptionInvoice] = {}
        # Rejections no request waited for: an order refused after its acceptance (a sell
        # whose index tokens never reached custody, issue 12). They end that order.
        self.rejections: dict[str, OrderResponse] = {}

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

    async def wait_invoice(self, client_order_id: str, timeout: float | None) -> Invoice:
        if client_order_id in self.invoices:
            return self.invoices[client_order_id]
        future: asyncio.Future[Invoice] = asyncio.get_running_loop().create_future()
        self._invoice_waiters.setdefault(client_order_id, []).append(future)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise TimeoutError(f"no MintInvoice for {client_order_id} within {timeout} s") from None
        finally:
            waiters = self._invoice_waiters.get(client_order_id, [])
            if future in waiters:
                waiters.remove(future)

    def fail(self, error: Exception, *, invoices: bool = True) -> None:
        """Fail everything waiting (the ACKs, the answers, and the invoices if `invoices`)."""
        futures: list[asyncio.Future[Any]] = list(self._acks.values())
        for queue in self._waiters.values():
            futures.extend(queue)
        if invoices:
            for waiters in self._invoice_waiters.values():
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
                if not taken and isinstance(message, OrderResponse) and not message.accepted:
                    self.rejections[message.client_order_id] = message
                    self._resolve(ORDER_REJECTED, message.client_order_id, message)
            case QuoteStatus():
                msg_type = CANCEL_INDEX_QUOTE if message.cancel else NEW_INDEX_QUOTE
                self._resolve(msg_type, message.client_quote_id, message)
            case Quote():
                self._resolve(INDEX_QUOTE_RESPONSE, message.client_quote_id, message)
            case Fill():
                self.fills.setdefault(message.client_order_id, []).append(message)
            case RedemptionInvoice():
                self.redemptions[message.client_order_id] = message
                self._resolve(REDEMPTION_INVOICE, message.client_order_id, message)
            case Invoice():
                self.invoices[message.client_order_id] = message
                for waiter in self._invoice_waiters.pop(message.client_order_id, []):
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
