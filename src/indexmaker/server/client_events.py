"""What the SDK hands its user: errors, typed events, and how a server frame becomes one.

A frame is verified against the server's address before `decode_message` turns it into a
typed event (`verify_frame`): on a `?signing=full` session the signature must cover the whole
frame (signing.full_text), so nothing in it can have been altered; otherwise it covers
{"msg_type":…,"id":…} (SPEC §5). The wire constants and the signature primitives come from
wire_values.py and signing.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from indexmaker.server.redemption_wire import REDEMPTION_TYPES
from indexmaker.server.signing import SignatureError, full_text, signing_text, verify_text
from indexmaker.server.wire_values import (
    ACK,
    CANCEL_INDEX_ORDER,
    CANCEL_INDEX_QUOTE,
    CHALLENGE,
    INDEX_ORDER_FILL,
    INDEX_QUOTE_RESPONSE,
    MINT_INVOICE,
    NAK,
    NEW_INDEX_ORDER,
    NEW_INDEX_QUOTE,
)

_RETRY_RE: Final = re.compile(r"retry after (\d+) ms")
_ORDER_ID_TYPES: Final = frozenset(
    {NEW_INDEX_ORDER, CANCEL_INDEX_ORDER, INDEX_ORDER_FILL, MINT_INVOICE, *REDEMPTION_TYPES}
)
_QUOTE_ID_TYPES: Final = frozenset({NEW_INDEX_QUOTE, INDEX_QUOTE_RESPONSE, CANCEL_INDEX_QUOTE})


# ---------------------------------------------------------------- errors


class ClientError(Exception):
    """Root of the SDK's errors."""


class NakError(ClientError):
    """The server refused a frame (NAK); `reason` names the field or rule."""

    def __init__(self, reason: str, ref_seq_num: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.ref_seq_num = ref_seq_num


class RequestRejected(ClientError):
    """The business answer was `rejected` (unknown symbol, duplicate id, …)."""

    def __init__(self, what: str, reason: str | None) -> None:
        super().__init__(f"{what} rejected: {reason or 'no reason given'}")
        self.reason = reason


class OrderEnded(ClientError):
    """The server ended an order without an invoice: nothing was left for it to do (SPEC §3:
    a buy used up reducing the client's open sell). `reason` says what it did instead."""

    def __init__(self, client_order_id: str, reason: str | None) -> None:
        super().__init__(f"order {client_order_id} ended: {reason or 'no reason given'}")
        self.client_order_id = client_order_id
        self.reason = reason


# The reason prefix of the unsolicited CancelIndexOrder response that ends such an order
# (engine/opposite_side.py writes it).
ORDER_DONE = "done: "


class ServerSignatureError(ClientError):
    """A server frame did not verify against the server's address: it was not believed."""


class NotConnected(ClientError):
    """No connection (and reconnecting is off, or the client is closed)."""


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerMessage:
    """Header values every verified server message carries."""

    seq_num: int = 0  # the session's outgoing seq
    server_seq: int | None = None  # stored business responses only (the resume cursor)
    poss_dup: bool = False  # resent after a reconnect
    timestamp: str = ""


@dataclass(frozen=True, slots=True)
class Ack(ServerMessage):
    ref_seq_num: int


@dataclass(frozen=True, slots=True)
class Nak(ServerMessage):
    ref_seq_num: int  # the session's last accepted seq_num (SPEC §5)
    reason: str
    refused_seq_num: int | None = None  # the refused frame's own seq_num, when readable

    @property
    def retry_after(self) -> float | None:
        """Seconds to wait, when this is a rate-limit refusal."""
        match = _RETRY_RE.search(self.reason)
        return int(match.group(1)) / 1000 if match else None


@dataclass(frozen=True, slots=True)
class Challenge(ServerMessage):
    """A nonce issued to this session: a ResendRequest signed over it authenticates it."""

    challenge: str


@dataclass(frozen=True, slots=True)
class OrderResponse(ServerMessage):
    """NewIndexOrder: the order was accepted (`new`) or rejected."""

    client_order_id: str
    status: str
    reason: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status == "new"


@dataclass(frozen=True, slots=True)
class CancelResponse(ServerMessage):
    client_order_id: str
    status: str  # canceled | rejected
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Fill(ServerMessage):
    client_order_id: str
    filled_quantity: Decimal
    collateral_spent: Decimal
    collateral_remaining: Decimal
    fill_rate: Decimal
    status: str  # collateral ready | in progress | mintable | fully mintable
    reason: str | None = None  # why a ready buy waits outside a batch (for people)
    reason_code: str | None = None  # its stable code (core/holds.HoldCode values)


@dataclass(frozen=True, slots=True)
class InvoiceLot:
    lot_id: str
    symbol: str
    price: Decimal
    assigned_quantity: Decimal
    assigned_fee: Decimal


@dataclass(frozen=True, slots=True)
class Position:
    """The client's collateral balances after a mint (USDC; MintInvoice `position.side_cr`)."""

    unconfirmed: Decimal
    ready: Decimal
    preauth: Decimal
    spent: Decimal
    held: Decimal = Decimal(0)  # below the route's cost on its chain (absent from older servers)


@dataclass(frozen=True, slots=True)
class Invoice(ServerMessage):
    """MintInvoice: what the minted index tokens cost, lot by lot."""

    client_order_id: str
    payment_id: str
    symbol: str
    filled_quantity: Decimal
    total_amount: Decimal
    amount_paid: Decimal
    amount_remaining: Decimal
    management_fee: Decimal
    assets_value: Decimal
    exchange_fee: Decimal
    fill_rate: Decimal
    lots: tuple[InvoiceLot, ...]
    minted_at: str
    position: Position | None = None
    invoice_hash: str | None = None  # the hash of its terms recorded on chain with the mint
    mint_tx_hash: str | None = None  # the mint's transaction on the trading chain
    basket_version: int = 1  # the index's basket version the units were bought on
    # The body as received (the frame without its header and trailer): what a client saves
    # and `indexmaker verify-invoice` checks against the chain (core/invoice_terms.py).
    body: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class QuoteStatus(ServerMessage):
    """NewIndexQuote (or CancelIndexQuote): the quote request's status."""

    client_quote_id: str
    status: str
    reason: str | None = None
    cancel: bool = False


@dataclass(frozen=True, slots=True)
class Quote(ServerMessage):
    """IndexQuoteResponse: index units the amount buys (a sell quote: the units redeemed and
    the USDC they should pay), now and at most."""

    client_quote_id: str
    quantity_possible: Decimal
    quantity_fillable_now: Decimal | None = None
    index_price: Decimal | None = None
    expected_proceeds: Decimal | None = None  # a sell quote's: USDC the units should pay


@dataclass(frozen=True, slots=True)
class Unverified:
    """A frame whose signature failed: surfaced, never believed."""

    reason: str
    raw: str


@dataclass(frozen=True, slots=True)
class SequenceGap:
    """The server's per-session seq_num skipped or repeated (should never happen)."""

    expected: int
    received: int


@dataclass(frozen=True, slots=True)
class Connected:
    session: int  # 1 for the first connection, +1 per reconnect
    resumed_from: int | None  # the last_server_seq named in the ResendRequest


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str  # the server's close code and reason when it closed us, else what failed


@dataclass(frozen=True, slots=True)
class ServerRestarted:
    """The server restarted since this client last heard from it: responses it had kept for
    a resend may be gone (reconcile open orders); later messages are not taken for repeats."""

    reason: str
    last_server_seq: int | None  # the client's cursor when the restart was noticed


# A ServerMessage: Ack, Nak, Challenge, OrderResponse, CancelResponse, Fill, Invoice,
# QuoteStatus, Quote.
Event = ServerMessage | Unverified | SequenceGap | Connected | Disconnected | ServerRestarted


# ---------------------------------------------------------------- decoding


def _dec(body: dict[str, Any], name: str) -> Decimal:
    value = body.get(name)
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected a decimal string")
    return Decimal(value)


def _opt_dec(body: dict[str, Any], name: str) -> Decimal | None:
    return _dec(body, name) if name in body else None


def wire_body(frame: dict[str, Any]) -> dict[str, Any]:
    """A frame's body fields: the frame without its header and trailer."""
    return {k: v for k, v in frame.items() if k not in ("standard_header", "standard_trailer")}


def _meta(header: dict[str, Any]) -> dict[str, Any]:
    return {
        "seq_num": int(header.get("seq_num", 0)),
        "server_seq": header.get("server_seq"),
        "poss_dup": bool(header.get("poss_dup", False)),
        "timestamp": str(header.get("timestamp", "")),
    }


def _position(value: Any) -> Position | None:
    if not isinstance(value, dict) or not isinstance(value.get("side_cr"), dict):
        return None
    side = value["side_cr"]
    return Position(
        _dec(side, "unconfirmed_balance"),
        _dec(side, "ready_balance"),
        _dec(side, "preauth_balance"),
        _dec(side, "spent_balance"),
        _dec(side, "held_balance") if "held_balance" in side else Decimal(0),
    )


def decode_message(frame: dict[str, Any]) -> ServerMessage:
    """A verified frame's typed event (ValueError/KeyError on a malformed one)."""
    header = frame["standard_header"]
    msg_type = header["msg_type"]
    meta = _meta(header)
    if msg_type == ACK:
        return Ack(int(frame["ref_seq_num"]), **meta)
    if msg_type == NAK:
        refused = frame.get("refused_seq_num")
        refused = int(refused) if refused is not None else None
        return Nak(int(frame["ref_seq_num"]), str(frame.get("reason", "")), refused, **meta)
    if msg_type == CHALLENGE:
        return Challenge(str(frame["challenge"]), **meta)
    if msg_type == NEW_INDEX_ORDER:
        return OrderResponse(frame["client_order_id"], frame["status"], frame.get("reason"), **meta)
    if msg_type == CANCEL_INDEX_ORDER:
        cid = frame["client_order_id"]
        return CancelResponse(cid, frame["status"], frame.get("reason"), **meta)
    if msg_type == INDEX_ORDER_FILL:
        return Fill(
            frame["client_order_id"],
            _dec(frame, "filled_quantity"),
            _dec(frame, "collateral_spent"),
            _dec(frame, "collateral_remaining"),
            _dec(frame, "fill_rate"),
            str(frame["status"]),
            frame.get("reason"),
            frame.get("reason_code"),
            **meta,
        )
    if msg_type == MINT_INVOICE:
        lots = tuple(
            InvoiceLot(
                str(lot["lot_id"]),
                str(lot["symbol"]),
                _dec(lot, "price"),
                _dec(lot, "assigned_quantity"),
                _dec(lot, "assigned_fee"),
            )
            for lot in frame.get("lots", [])
        )
        return Invoice(
            frame["client_order_id"],
            str(frame["payment_id"]),
            str(frame["symbol"]),
            _dec(frame, "filled_quantity"),
            _dec(frame, "total_amount"),
            _dec(frame, "amount_paid"),
            _dec(frame, "amount_remaining"),
            _dec(frame, "management_fee"),
            _dec(frame, "assets_value"),
            _dec(frame, "exchange_fee"),
            _dec(frame, "fill_rate"),
            lots,
            str(frame.get("timestamp", "")),
            _position(frame.get("position")),
            frame.get("invoice_hash"),
            frame.get("mint_tx_hash"),
            int(frame.get("basket_version", 1)),
            wire_body(frame),
            **meta,
        )
    if msg_type in REDEMPTION_TYPES:  # sell orders (issue 12): client_redemption.py
        from indexmaker.server.client_redemption import decode_redemption

        return decode_redemption(msg_type, frame, meta)
    if msg_type in (NEW_INDEX_QUOTE, CANCEL_INDEX_QUOTE):
        qid = frame["client_quote_id"]
        cancel = msg_type == CANCEL_INDEX_QUOTE
        return QuoteStatus(qid, frame["status"], frame.get("reason"), cancel, **meta)
    if msg_type == INDEX_QUOTE_RESPONSE:
        return Quote(
            frame["client_quote_id"],
            _dec(frame, "quantity_possible"),
            _opt_dec(frame, "quantity_fillable_now"),
            _opt_dec(frame, "index_price"),
            _opt_dec(frame, "expected_proceeds"),
            **meta,
        )
    raise ValueError(f"unknown msg_type {msg_type!r}")


def signed_id_of(frame: dict[str, Any]) -> str:
    """The `id` a server message's signature covers (SPEC §5)."""
    msg_type = frame["standard_header"]["msg_type"]
    if msg_type in (ACK, NAK):
        return str(frame["ref_seq_num"])
    if msg_type == CHALLENGE:
        return str(frame["challenge"])
    if msg_type in _ORDER_ID_TYPES:
        return str(frame["client_order_id"])
    if msg_type in _QUOTE_ID_TYPES:
        return str(frame["client_quote_id"])
    raise ValueError(f"no signed id known for msg_type {msg_type!r}")


def verify_frame(frame: dict[str, Any], server_address: str, *, full: bool = False) -> None:
    """Raise SignatureError unless the frame is signed by `server_address`'s key: over its
    whole content when `full` (a `?signing=full` session), else over {msg_type, id}."""
    trailer = frame.get("standard_trailer") or {}
    keys, signatures = trailer.get("public_key") or [], trailer.get("signature") or []
    if not keys or not signatures:
        raise SignatureError("unsigned server message")
    if full:
        text = full_text(frame)
    else:
        text = signing_text(str(frame["standard_header"]["msg_type"]), signed_id_of(frame))
    verify_text(text, str(signatures[0]), str(keys[0]), server_address)
