"""FIX/JSON wire models (SPEC §5), wire-compatible with the reference protocol.

A frame is one flat JSON object: `standard_header`, `chain_id`, `address`, the body fields at the
top level, and `standard_trailer`. Incoming frames are untrusted: `parse_request` validates them
into a `ParsedRequest` (holding the core request of `core/events.py`) or a `WireError` that says
exactly what is wrong, and never raises. Unknown extra fields are ignored, as the reference does.

The outgoing half (core responses, ACK, NAK) lives in `encoding.py` to keep modules short; it is
re-exported here so the wire API has one import point. `ResendRequest` is ours (session.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final

import msgspec

from indexmaker.core.events import (
    CancelIndexOrderRequest,
    CancelQuoteRequest,
    ClientRequest,
    NewIndexOrderRequest,
    NewQuoteRequest,
)
from indexmaker.core.ids import ClientKey, ClientOrderId, ClientQuoteId, Symbol, client_key
from indexmaker.core.money import INDEX_TOKEN_DECIMALS, USDC_DECIMALS
from indexmaker.model.side import Side
from indexmaker.server.encoding import (
    MessageSigner,
    PreparedMessage,
    Stamp,
    encode_ack,
    encode_nak,
    encode_prepared,
    encode_response,
    prepare_ack,
    prepare_nak,
    prepare_response,
    response_body,
)
from indexmaker.server.wire_values import (
    ACK,
    CANCEL_INDEX_ORDER,
    CANCEL_INDEX_QUOTE,
    CANCEL_QUOTE_REQUEST,
    CHALLENGE,
    CHALLENGE_REQUEST,
    INDEX_ORDER_FILL,
    INDEX_QUOTE_RESPONSE,
    MINT_INVOICE,
    NAK,
    NEW_INDEX_ORDER,
    NEW_INDEX_QUOTE,
    NEW_QUOTE_REQUEST,
    REQUEST_TYPES,
    RESEND_REQUEST,
    UNSIGNED_REQUEST_TYPES,
    check_address,
    check_amount,
    check_id,
    check_nonce,
    check_symbol,
)

__all__ = [
    "ACK",
    "CANCEL_INDEX_ORDER",
    "CANCEL_INDEX_QUOTE",
    "CANCEL_QUOTE_REQUEST",
    "CHALLENGE",
    "CHALLENGE_REQUEST",
    "DEFAULT_LIMITS",
    "INDEX_ORDER_FILL",
    "INDEX_QUOTE_RESPONSE",
    "MINT_INVOICE",
    "NAK",
    "NEW_INDEX_ORDER",
    "NEW_INDEX_QUOTE",
    "NEW_QUOTE_REQUEST",
    "RESEND_REQUEST",
    "ChallengeRequest",
    "MessageSigner",
    "ParsedRequest",
    "PreparedMessage",
    "ResendRequest",
    "Stamp",
    "WireError",
    "WireHeader",
    "WireLimits",
    "WireTrailer",
    "encode_ack",
    "encode_nak",
    "encode_prepared",
    "encode_response",
    "parse_request",
    "prepare_ack",
    "prepare_nak",
    "prepare_response",
    "response_body",
]

U32_MAX: Final = 2**32 - 1
U32 = Annotated[int, msgspec.Meta(ge=0, le=U32_MAX)]
_ShortStr = Annotated[str, msgspec.Meta(max_length=128)]
_HexList = Annotated[list[Annotated[str, msgspec.Meta(max_length=256)]], msgspec.Meta(max_length=4)]


@dataclass(frozen=True, slots=True)
class WireLimits:
    """Edge limits; the composition root builds one from config."""

    max_frame_bytes: int = 16 * 1024
    allowed_chain_ids: frozenset[int] | None = None  # None: any u32


DEFAULT_LIMITS: Final = WireLimits()


# ---------------------------------------------------------------- incoming


class WireHeader(msgspec.Struct, frozen=True):
    msg_type: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    sender_comp_id: _ShortStr
    target_comp_id: _ShortStr
    seq_num: U32
    timestamp: Annotated[datetime, msgspec.Meta(tz=True)]


class WireTrailer(msgspec.Struct, frozen=True):
    # The reference requires both lists; defaults keep an empty trailer `{}` decodable.
    public_key: _HexList = msgspec.field(default_factory=list)
    signature: _HexList = msgspec.field(default_factory=list)


class _RequestFrame(msgspec.Struct, frozen=True):
    """Every request shape in one struct: one decode pass, then per-type checks."""

    standard_header: WireHeader
    chain_id: U32
    address: _ShortStr
    standard_trailer: WireTrailer | None = None
    client_order_id: Any = msgspec.UNSET
    client_quote_id: Any = msgspec.UNSET
    symbol: Any = msgspec.UNSET
    side: Any = msgspec.UNSET
    amount: Any = msgspec.UNSET
    min_proceeds: Any = msgspec.UNSET  # ours: a sell's floor in USDC (issue 12)
    last_server_seq: Any = msgspec.UNSET
    challenge: Any = msgspec.UNSET  # ours: the server nonce a ResendRequest is signed over
    nonce: Any = msgspec.UNSET  # ours: the client nonce of the extended signed text


_REQUEST_DECODER: Final = msgspec.json.Decoder(_RequestFrame)
_ANY_DECODER: Final = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class ResendRequest:
    """Ours: the client names the last server_seq it received; the rest is resent. Signed
    over the `challenge` the server issued to this session, so it authenticates the session
    and a captured copy is worth nothing on any other (SPEC §5 Authentication)."""

    client: ClientKey
    last_server_seq: int
    challenge: str = ""


@dataclass(frozen=True, slots=True)
class ChallengeRequest:
    """Ours, unsigned: asks the server for a fresh nonce (answered by a `Challenge`)."""

    client: ClientKey


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    msg_type: str
    seq_num: int
    timestamp: datetime
    sender_comp_id: str
    target_comp_id: str
    client: ClientKey  # (chain_id, lower-case address)
    signed_id: str  # the `id` of the signed text: client_order_id / client_quote_id / ...
    request: ClientRequest | ResendRequest | ChallengeRequest
    public_keys: tuple[str, ...] = ()
    signatures: tuple[str, ...] = ()
    nonce: str | None = None  # set: the frame is signed over the extended text (signing.py)
    frame: bytes | str = b""  # the frame as received (the extended text is derived from it)

    @property
    def needs_signature(self) -> bool:
        return self.msg_type not in UNSIGNED_REQUEST_TYPES


@dataclass(frozen=True, slots=True)
class WireError:
    """Why a frame was refused; becomes a NAK. Fields are best-effort reads of the frame."""

    reason: str
    ref_seq_num: int | None = None
    msg_type: str | None = None
    client: ClientKey | None = None


class _Invalid(Exception):
    """Internal: a field check failed; `parse_request` turns it into a WireError."""


def parse_request(
    frame: bytes | str, limits: WireLimits = DEFAULT_LIMITS
) -> ParsedRequest | WireError:
    """Validate one text frame. Never raises: every failure is a WireError with a reason."""
    try:
        if len(frame) > limits.max_frame_bytes:
            # Not even probed for a seq_num: oversized input gets no further CPU.
            return WireError(f"frame too large: {len(frame)} > {limits.max_frame_bytes} bytes")
        try:
            raw = _REQUEST_DECODER.decode(frame)
        except msgspec.ValidationError as exc:
            return WireError(f"invalid message: {exc}", ref_seq_num=_probe_seq_num(frame))
        except msgspec.DecodeError as exc:
            return WireError(f"malformed JSON: {exc}", ref_seq_num=_scan_seq_num(frame))
        return _validate(raw, limits, frame)
    except Exception as exc:  # untrusted input: a surprise is a NAK, not a crash
        return WireError(f"unreadable message ({type(exc).__name__})")


def _probe_seq_num(frame: bytes | str) -> int | None:
    """After a typed decode failed, read the header's seq_num if it is there and sane."""
    try:
        obj = _ANY_DECODER.decode(frame)
    except Exception:  # best effort only
        return None
    header = obj.get("standard_header") if isinstance(obj, dict) else None
    seq = header.get("seq_num") if isinstance(header, dict) else None
    if isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq <= U32_MAX:
        return seq
    return None


_SEQ_RE: Final = re.compile(
    rb'"standard_header"\s*:\s*\{[^{}]*?"seq_num"\s*:\s*([0-9]{1,10})[,}\s]'
)


def _scan_seq_num(frame: bytes | str) -> int | None:
    """The header's seq_num of a frame whose JSON does not parse (e.g. a broken body), read
    from the text: the NAK then still names the refused seq_num (SPEC §5)."""
    data = frame.encode("utf-8", "replace") if isinstance(frame, str) else frame
    match = _SEQ_RE.search(data[:4096])
    if match is None:
        return None
    seq = int(match.group(1))
    return seq if seq <= U32_MAX else None


def _validate(
    raw: _RequestFrame, limits: WireLimits, frame: bytes | str = b""
) -> ParsedRequest | WireError:
    header = raw.standard_header
    msg_type = header.msg_type
    err = WireError("", ref_seq_num=header.seq_num, msg_type=msg_type)
    # Quotes are answered for any chain id (SPEC §5: a front end's price ticker asks for
    # index tokens on the trading chain); orders only on a chain that takes deposits.
    if (
        limits.allowed_chain_ids is not None
        and raw.chain_id not in limits.allowed_chain_ids
        and msg_type not in UNSIGNED_REQUEST_TYPES
    ):
        return _with(err, f"chain_id: {raw.chain_id} is not served here")
    try:
        address = check_address(raw.address)
    except ValueError as exc:
        return _with(err, str(exc))
    client = client_key(raw.chain_id, address)
    err = WireError("", ref_seq_num=header.seq_num, msg_type=msg_type, client=client)
    if msg_type not in REQUEST_TYPES:
        return _with(err, f"unknown msg_type {msg_type!r}")
    try:
        signed_id, request = _body(raw, msg_type, client)
    except (_Invalid, ValueError) as exc:
        return _with(err, str(exc))
    nonce = None
    if raw.nonce is not msgspec.UNSET:
        try:
            nonce = check_nonce("nonce", raw.nonce)
        except ValueError as exc:
            return _with(err, str(exc))
    trailer = raw.standard_trailer
    return ParsedRequest(
        msg_type=msg_type,
        seq_num=header.seq_num,
        timestamp=header.timestamp,
        sender_comp_id=header.sender_comp_id,
        target_comp_id=header.target_comp_id,
        client=client,
        signed_id=signed_id,
        request=request,
        public_keys=tuple(trailer.public_key) if trailer else (),
        signatures=tuple(trailer.signature) if trailer else (),
        nonce=nonce,
        frame=frame,
    )


def _with(err: WireError, reason: str) -> WireError:
    return WireError(reason, err.ref_seq_num, err.msg_type, err.client)


def _required(raw: _RequestFrame, name: str) -> Any:
    value = getattr(raw, name)
    if value is msgspec.UNSET:
        raise _Invalid(f"{name}: missing")
    return value


def _side(value: Any) -> Side:
    if not isinstance(value, str) or len(value) > 8:
        raise _Invalid("side: expected one of 1/buy/b/bid or 2/sell/s/ask/a")
    try:
        return Side.parse(value)
    except ValueError:
        raise _Invalid(f"side: unknown side {value!r}") from None


def _body(
    raw: _RequestFrame, msg_type: str, client: ClientKey
) -> tuple[str, ClientRequest | ResendRequest | ChallengeRequest]:
    if msg_type == NEW_INDEX_ORDER:
        order_id = ClientOrderId(check_id("client_order_id", _required(raw, "client_order_id")))
        symbol = Symbol(check_symbol(_required(raw, "symbol")))
        side = _side(_required(raw, "side"))
        # A sell (redemption) names index units, 18 decimals; a buy USDC, 6 (SPEC §8).
        decimals = INDEX_TOKEN_DECIMALS if side is Side.SELL else USDC_DECIMALS
        amount = check_amount("amount", _required(raw, "amount"), decimals)
        floor = None
        if raw.min_proceeds is not msgspec.UNSET:
            if side is not Side.SELL:
                raise _Invalid("min_proceeds: only a sell (redemption) has a floor")
            floor = check_amount("min_proceeds", raw.min_proceeds)
        return order_id, NewIndexOrderRequest(client, order_id, symbol, side, amount, floor)
    if msg_type == CANCEL_INDEX_ORDER:
        order_id = ClientOrderId(check_id("client_order_id", _required(raw, "client_order_id")))
        symbol = Symbol(check_symbol(_required(raw, "symbol")))
        # The wire's cancel names no side: up to a sell's 18 decimals here; the engine
        # holds a buy's cancel to USDC's 6 (it knows the order's side).
        amount = check_amount("amount", _required(raw, "amount"), INDEX_TOKEN_DECIMALS)
        return order_id, CancelIndexOrderRequest(client, order_id, symbol, amount)
    if msg_type == NEW_QUOTE_REQUEST:
        quote_id = ClientQuoteId(check_id("client_quote_id", _required(raw, "client_quote_id")))
        symbol = Symbol(check_symbol(_required(raw, "symbol")))
        side = _side(_required(raw, "side"))
        # A sell quote names index units (18 decimals) like a sell order; a buy USDC.
        decimals = INDEX_TOKEN_DECIMALS if side is Side.SELL else USDC_DECIMALS
        amount = check_amount("amount", _required(raw, "amount"), decimals)
        return quote_id, NewQuoteRequest(client, quote_id, symbol, side, amount)
    if msg_type == CANCEL_QUOTE_REQUEST:
        quote_id = ClientQuoteId(check_id("client_quote_id", _required(raw, "client_quote_id")))
        symbol = Symbol(check_symbol(_required(raw, "symbol")))
        return quote_id, CancelQuoteRequest(client, quote_id, symbol)
    if msg_type == CHALLENGE_REQUEST:
        return "", ChallengeRequest(client)
    # RESEND_REQUEST: the signed id is the server's challenge (a nonce it issued).
    last = _required(raw, "last_server_seq")
    if not isinstance(last, int) or isinstance(last, bool) or not 0 <= last < 2**63:
        raise _Invalid("last_server_seq: expected a non-negative integer")
    if raw.challenge is msgspec.UNSET:
        raise _Invalid("challenge: missing (send a ChallengeRequest first; SPEC §5)")
    challenge = check_nonce("challenge", raw.challenge)
    return challenge, ResendRequest(client, last, challenge)
