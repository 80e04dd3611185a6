"""Outgoing FIX/JSON frames: core responses, ACK and NAK, in the reference's shapes.

`prepare_*` fixes a message's body and trailer (the signature covers only msg_type and id, so a
response is signed once); `encode_prepared` adds the per-session header. Fan-out to several
sessions and resends (session.py) therefore re-encode without re-signing.

Kept from the reference: responses carry `chain_id` and `address`; `reason` is present only on
rejections; amounts are plain decimal strings; the trailer is always present (lists may be
empty); sender/target comp ids default to "SERVER"/"CLIENT". Ours, beyond it (its clients skip
unknown fields): `standard_header.server_seq` on stored business responses,
`standard_header.poss_dup` on resends, `quantity_fillable_now`/`index_price` on quotes,
`refused_seq_num` on NAKs, and the `Challenge` message. On a session opened with
`?signing=full` every frame is signed over its whole content instead (`FullSigner`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

import msgspec

from indexmaker.core.clock import rfc3339
from indexmaker.core.events import (
    CancelIndexOrderResponse,
    CancelIndexQuoteResponse,
    ClientResponse,
    CollateralPosition,
    IndexOrderFill,
    IndexQuoteResponse,
    MintInvoice,
    NewIndexOrderResponse,
    NewIndexQuoteResponse,
)
from indexmaker.core.ids import ClientKey
from indexmaker.core.invoice_terms import invoice_terms
from indexmaker.core.redemption_events import RedemptionFill, RedemptionInvoice
from indexmaker.server.redemption_wire import redemption_body
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
    ZERO_ADDRESS,
    fmt_decimal,
)


@dataclass(frozen=True, slots=True)
class Stamp:
    """Per-session header values of one outgoing frame."""

    seq_num: int
    timestamp: datetime
    sender_comp_id: str = "SERVER"  # the reference's constants
    target_comp_id: str = "CLIENT"
    server_seq: int | None = None  # set on stored business responses (resend cursor)
    poss_dup: bool = False  # set when resent


@dataclass(frozen=True, slots=True)
class PreparedMessage:
    """A response with its body and trailer fixed; only the header differs per session."""

    msg_type: str
    signed_id: str
    body: dict[str, Any]
    trailer: dict[str, list[str]]


class MessageSigner(Protocol):
    """What `prepare_response` needs from signing.Signer (structural: no import cycle)."""

    def trailer_for(self, msg_type: str, signed_id: str) -> dict[str, list[str]]: ...


class FullSigner(Protocol):
    """Signs a frame over its whole content (signing.Signer.sign_full)."""

    def sign_full(self, frame: dict[str, Any]) -> dict[str, list[str]]: ...


_EMPTY_TRAILER: Final[dict[str, list[str]]] = {"public_key": [], "signature": []}


def _status(
    client_id_field: str, client_id: str, status: str, reason: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, client_id_field: client_id}
    if reason is not None:
        body["reason"] = reason
    return body


def response_body(response: ClientResponse) -> tuple[str, str, dict[str, Any]]:
    """(msg_type, signed id, body fields) of a core response, in the reference's field names."""
    match response:
        case NewIndexOrderResponse(client_order_id=cid, status=st, reason=reason):
            return NEW_INDEX_ORDER, cid, _status("client_order_id", cid, st.value, reason)
        case CancelIndexOrderResponse(client_order_id=cid, status=st, reason=reason):
            return CANCEL_INDEX_ORDER, cid, _status("client_order_id", cid, st.value, reason)
        case NewIndexQuoteResponse(client_quote_id=qid, status=st, reason=reason):
            return NEW_INDEX_QUOTE, qid, _status("client_quote_id", qid, st.value, reason)
        case CancelIndexQuoteResponse(client_quote_id=qid, status=st, reason=reason):
            return CANCEL_INDEX_QUOTE, qid, _status("client_quote_id", qid, st.value, reason)
        case IndexOrderFill():
            return INDEX_ORDER_FILL, response.client_order_id, _fill_body(response)
        case MintInvoice():
            return MINT_INVOICE, response.client_order_id, _invoice_body(response)
        case RedemptionFill() | RedemptionInvoice():
            return redemption_body(response)
        case IndexQuoteResponse():
            body = {
                "client_quote_id": response.client_quote_id,
                "quantity_possible": fmt_decimal(response.quantity_possible),
                # Beyond the reference (SPEC §4): what one batch could fill, and P.
                "quantity_fillable_now": fmt_decimal(response.quantity_fillable_now),
                "index_price": fmt_decimal(response.index_price),
            }
            if response.expected_proceeds is not None:  # a sell quote's (issue 12)
                body["expected_proceeds"] = fmt_decimal(response.expected_proceeds)
            return INDEX_QUOTE_RESPONSE, response.client_quote_id, body
    raise TypeError(f"not a client response: {type(response).__name__}")


def _fill_body(fill: IndexOrderFill) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client_order_id": fill.client_order_id,
        "filled_quantity": fmt_decimal(fill.filled_quantity),
        "collateral_spent": fmt_decimal(fill.collateral_spent),
        "collateral_remaining": fmt_decimal(fill.collateral_remaining),
        "fill_rate": fmt_decimal(fill.fill_rate),
        "status": fill.status.value,
    }
    if fill.reason is not None:  # a hold (issue 12 review #5), as a RedemptionFill's
        body["reason"] = fill.reason
    if fill.reason_code is not None:
        body["reason_code"] = fill.reason_code.value
    return body


def _invoice_body(inv: MintInvoice) -> dict[str, Any]:
    """The terms (core/invoice_terms.py: what the on-chain invoice hash covers), then what is
    fixed only at delivery."""
    return {
        **invoice_terms(inv),
        "timestamp": rfc3339(inv.timestamp),
        **({"position": _position_body(inv.position, inv)} if inv.position else {}),
        **({"invoice_hash": inv.invoice_hash} if inv.invoice_hash else {}),
        **({"mint_tx_hash": inv.mint_tx_hash} if inv.mint_tx_hash else {}),
    }


def _position_body(position: CollateralPosition, inv: MintInvoice) -> dict[str, Any]:
    """The reference's CollateralPosition: a credit side (deposits and what became of them)
    and a debit side (withdrawals: none here). Lots are not itemised (empty lists); the
    times are the invoice's, as the position is reported at the mint."""
    at = rfc3339(inv.timestamp)
    zero = "0"

    def side(unconfirmed: str, ready: str, preauth: str, spent: str, held: str) -> dict[str, Any]:
        return {
            "unconfirmed_balance": unconfirmed,
            "ready_balance": ready,
            "preauth_balance": preauth,
            "spent_balance": spent,
            # Ours, beside the reference's: below the route's cost, waiting on its chain.
            "held_balance": held,
            "open_lots": [],
            "closed_lots": [],
            "created_timestamp": at,
            "last_update_timestamp": at,
        }

    return {
        "chain_id": position.client[0],
        "address": position.client[1],
        "side_cr": side(
            fmt_decimal(position.unconfirmed),
            fmt_decimal(position.ready),
            fmt_decimal(position.preauth),
            fmt_decimal(position.spent),
            fmt_decimal(position.held),
        ),
        "side_dr": side(zero, zero, zero, zero, zero),
        "created_timestamp": at,
        "last_update_timestamp": at,
    }


def prepare_response(response: ClientResponse, signer: MessageSigner | None) -> PreparedMessage:
    msg_type, signed_id, body = response_body(response)
    trailer = signer.trailer_for(msg_type, signed_id) if signer else _EMPTY_TRAILER
    return PreparedMessage(msg_type, signed_id, body, trailer)


def prepare_ack(ref_seq_num: int, signer: MessageSigner | None) -> PreparedMessage:
    sid = str(ref_seq_num)
    trailer = signer.trailer_for(ACK, sid) if signer else _EMPTY_TRAILER
    return PreparedMessage(ACK, sid, {"ref_seq_num": ref_seq_num}, trailer)


def prepare_nak(
    ref_seq_num: int | None,
    reason: str,
    signer: MessageSigner | None,
    refused_seq_num: int | None = None,
) -> PreparedMessage:
    """`ref_seq_num`: the session's last accepted seq_num (SPEC §5; 0 before any), which is
    where reference clients continue from; `refused_seq_num` (ours): the refused frame's own,
    when it could be read. The signature covers the ref only, so it is cached per ref."""
    ref = ref_seq_num if ref_seq_num is not None else 0
    trailer = signer.trailer_for(NAK, str(ref)) if signer else _EMPTY_TRAILER
    body: dict[str, Any] = {"ref_seq_num": ref, "reason": reason}
    if refused_seq_num is not None:
        body["refused_seq_num"] = refused_seq_num
    return PreparedMessage(NAK, str(ref), body, trailer)


def prepare_challenge(challenge: str, signer: MessageSigner | None) -> PreparedMessage:
    trailer = signer.trailer_for(CHALLENGE, challenge) if signer else _EMPTY_TRAILER
    return PreparedMessage(CHALLENGE, challenge, {"challenge": challenge}, trailer)


_ENCODER: Final = msgspec.json.Encoder()


def encode_prepared(
    message: PreparedMessage,
    client: ClientKey | None,
    stamp: Stamp,
    full: FullSigner | None = None,
) -> bytes:
    header: dict[str, Any] = {
        "msg_type": message.msg_type,
        "sender_comp_id": stamp.sender_comp_id,
        "target_comp_id": stamp.target_comp_id,
        "seq_num": stamp.seq_num,
        "timestamp": rfc3339(stamp.timestamp),
    }
    if stamp.server_seq is not None:
        header["server_seq"] = stamp.server_seq
    if stamp.poss_dup:
        header["poss_dup"] = True
    chain_id, address = client if client is not None else (0, ZERO_ADDRESS)
    frame: dict[str, Any] = {"standard_header": header, "chain_id": chain_id, "address": address}
    frame.update(message.body)
    frame["standard_trailer"] = full.sign_full(frame) if full is not None else message.trailer
    return _ENCODER.encode(frame)


def encode_response(
    response: ClientResponse, client: ClientKey, stamp: Stamp, signer: MessageSigner | None = None
) -> bytes:
    return encode_prepared(prepare_response(response, signer), client, stamp)


def encode_ack(
    ref_seq_num: int, client: ClientKey | None, stamp: Stamp, signer: MessageSigner | None = None
) -> bytes:
    return encode_prepared(prepare_ack(ref_seq_num, signer), client, stamp)


def encode_nak(
    ref_seq_num: int | None,
    reason: str,
    client: ClientKey | None,
    stamp: Stamp,
    signer: MessageSigner | None = None,
) -> bytes:
    return encode_prepared(prepare_nak(ref_seq_num, reason, signer), client, stamp)
