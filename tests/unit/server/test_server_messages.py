"""parse_request and the encoders: every message type, every refusal reason."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from indexmaker.app.cli_output import fill_line
from indexmaker.core.events import (
    CancelIndexOrderRequest,
    CancelIndexOrderResponse,
    CancelIndexQuoteResponse,
    CancelQuoteRequest,
    CollateralPosition,
    FillStatus,
    IndexOrderFill,
    IndexQuoteResponse,
    InvoiceLot,
    MintInvoice,
    NewIndexOrderRequest,
    NewIndexOrderResponse,
    NewIndexQuoteResponse,
    NewQuoteRequest,
    RequestStatus,
)
from indexmaker.core.holds import HoldCode
from indexmaker.core.ids import (
    ChainId,
    ClientOrderId,
    ClientQuoteId,
    PaymentId,
    Symbol,
    client_key,
    instrument,
)
from indexmaker.model.side import Side
from indexmaker.server.client_events import Fill, Invoice, decode_message
from indexmaker.server.messages import (
    ParsedRequest,
    ResendRequest,
    Stamp,
    WireError,
    WireLimits,
    encode_ack,
    encode_nak,
    encode_response,
    parse_request,
)
from indexmaker.server.signing import Signer, signing_text, verify_text

from .wire_helpers import TEST_ADDRESS, TEST_KEY, dumps, frame

CLIENT = client_key(1, TEST_ADDRESS)
NOW = datetime(2025, 10, 1, tzinfo=UTC)


def ok(obj: Any, limits: WireLimits | None = None) -> ParsedRequest:
    result = parse_request(dumps(obj), limits) if limits else parse_request(dumps(obj))
    assert isinstance(result, ParsedRequest), result
    return result


def refused(obj: Any, limits: WireLimits | None = None) -> WireError:
    data = obj if isinstance(obj, bytes | str) else dumps(obj)
    result = parse_request(data, limits) if limits else parse_request(data)
    assert isinstance(result, WireError), result
    return result


# ---------------------------------------------------------------- accepted


def test_new_index_order_becomes_core_request() -> None:
    parsed = ok(frame("NewIndexOrder", seq=7))
    assert parsed.seq_num == 7 and parsed.msg_type == "NewIndexOrder"
    assert parsed.client == (ChainId(1), TEST_ADDRESS.lower())
    assert parsed.timestamp == NOW
    assert parsed.signed_id == "O-1" and parsed.needs_signature
    assert len(parsed.public_keys) == 1 and len(parsed.signatures) == 1
    assert parsed.request == NewIndexOrderRequest(
        CLIENT, ClientOrderId("O-1"), Symbol("SY100"), Side.BUY, Decimal("1000")
    )


def test_cancel_index_order() -> None:
    parsed = ok(frame("CancelIndexOrder"))
    assert parsed.request == CancelIndexOrderRequest(
        CLIENT, ClientOrderId("O-1"), Symbol("SY100"), Decimal("250.5")
    )
    # The cancel names no side: a sell's index units may have 18 decimals (the engine holds
    # a buy's cancel to 6), 19 are refused here.
    units = "0.123456789012345678"
    sell_units = ok(frame("CancelIndexOrder", amount=units)).request
    assert isinstance(sell_units, CancelIndexOrderRequest) and sell_units.amount == Decimal(units)
    assert "more than 18 decimals" in refused(frame("CancelIndexOrder", amount=units + "9")).reason


def test_quote_requests_need_no_trailer() -> None:
    parsed = ok(frame("NewQuoteRequest", sign=False))
    assert not parsed.needs_signature and parsed.public_keys == ()
    assert parsed.request == NewQuoteRequest(
        CLIENT, ClientQuoteId("Q-1"), Symbol("SY100"), Side.BUY, Decimal("10")
    )
    cancel = ok(frame("CancelQuoteRequest", sign=False))
    assert cancel.request == CancelQuoteRequest(CLIENT, ClientQuoteId("Q-1"), Symbol("SY100"))


def test_resend_request_is_signed_over_the_server_challenge() -> None:
    parsed = ok(frame("ResendRequest", last_server_seq=42))
    assert parsed.request == ResendRequest(CLIENT, 42, "challenge-1")
    assert parsed.signed_id == "challenge-1" and parsed.needs_signature
    # Without a challenge it is refused: a signature over the seq could be replayed.
    missing = refused({k: v for k, v in frame("ResendRequest").items() if k != "challenge"})
    assert missing.reason.startswith("challenge: missing")


@pytest.mark.parametrize(
    ("text", "side"),
    [("1", Side.BUY), ("BID", Side.BUY), ("b", Side.BUY), ("2", Side.SELL), ("Ask", Side.SELL)],
)
def test_side_spellings(text: str, side: Side) -> None:
    request = ok(frame("NewIndexOrder", side=text)).request
    assert isinstance(request, NewIndexOrderRequest) and request.side is side


@pytest.mark.parametrize("amount", ["1", "0.000001", "1000.123456", "1.50000000", "007"])
def test_amounts_accepted(amount: str) -> None:
    request = ok(frame("NewIndexOrder", amount=amount)).request
    assert isinstance(request, NewIndexOrderRequest)
    assert request.amount == Decimal(amount)


def test_str_frames_timestamp_offsets_and_extra_fields_are_fine() -> None:
    obj = frame("NewQuoteRequest", sign=False, timestamp="2025-10-01T02:00:00+02:00", extra=[1])
    parsed = parse_request(json.dumps(obj))
    assert isinstance(parsed, ParsedRequest) and parsed.timestamp == NOW


def test_allowed_chain_ids() -> None:
    limits = WireLimits(allowed_chain_ids=frozenset({1, 8453}))
    assert ok(frame("NewIndexOrder"), limits).client[0] == 1
    err = refused(frame("NewIndexOrder", chain_id=5), limits)
    assert err.reason == "chain_id: 5 is not served here" and err.ref_seq_num == 1
    # Quotes are answered for any chain id (SPEC §5).
    assert ok(frame("NewQuoteRequest", sign=False, chain_id=5), limits).client[0] == 5


# ---------------------------------------------------------------- refused


def _without(obj: dict[str, Any], *path: str) -> dict[str, Any]:
    target = obj
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return obj


NOT_STR = "expected a string, got"
BAD_ADDRESS = "address: expected 0x followed by 40 hex digits"
BAD_LAST = "last_server_seq: expected a non-negative integer"


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        (frame("Heartbeat", sign=False), "unknown msg_type 'Heartbeat'"),
        (_without(frame("NewIndexOrder"), "amount"), "amount: missing"),
        (_without(frame("NewIndexOrder"), "client_order_id"), "client_order_id: missing"),
        (_without(frame("CancelIndexOrder"), "symbol"), "symbol: missing"),
        (_without(frame("NewQuoteRequest"), "side"), "side: missing"),
        (frame("NewIndexOrder", amount=1000), "amount: expected a decimal string, got number"),
        (frame("NewIndexOrder", amount="1.0000001"), "amount: more than 6 decimals"),
        (frame("NewIndexOrder", amount="0"), "amount: must be greater than 0"),
        (frame("NewIndexOrder", amount="0.000000"), "amount: must be greater than 0"),
        (frame("NewIndexOrder", amount="1" * 16), "amount: too large"),
        (frame("NewIndexOrder", amount="1" * 41), "amount: longer than 40 characters"),
        (frame("NewIndexOrder", side="up"), "side: unknown side 'up'"),
        (frame("NewIndexOrder", side=1), "side: expected one of 1/buy/b/bid or 2/sell/s/ask/a"),
        (frame("NewIndexOrder", symbol="SY 100"), "symbol: 1-32 letters, digits, '.', '_' or '-'"),
        (frame("NewIndexOrder", symbol=None), "symbol: expected a string, got null"),
        (
            frame("NewIndexOrder", client_order_id='a"b'),
            "client_order_id: 1-64 printable ASCII characters, no spaces, quotes or backslashes",
        ),
        (
            frame("NewIndexOrder", client_order_id=7),
            "client_order_id: expected a string, got number",
        ),
        (
            frame("NewIndexOrder", address="0x1234"),
            BAD_ADDRESS,
        ),
        (
            frame("NewIndexOrder", address="0x" + "g" * 40),
            BAD_ADDRESS,
        ),
        (
            frame("ResendRequest", last_server_seq=-1),
            "last_server_seq: expected a non-negative integer",
        ),
        (
            frame("ResendRequest", last_server_seq="1"),
            "last_server_seq: expected a non-negative integer",
        ),
    ],
)
def test_specific_reasons(obj: dict[str, Any], reason: str) -> None:
    err = refused(obj)
    assert err.reason == reason
    assert err.ref_seq_num == 1


@pytest.mark.parametrize(
    "amount",
    ["-1", "+1", "1e3", "1E-3", "NaN", "nan", "Infinity", "inf", " 1", "1 ", ".5", "5.", ""],
)
def test_amount_tricks_refused(amount: str) -> None:
    err = refused(frame("NewIndexOrder", amount=amount))
    assert err.reason.startswith("amount: ") and "not a plain decimal" in err.reason


def test_envelope_type_errors_keep_the_seq_num() -> None:
    err = refused(frame("NewIndexOrder", seq=5, chain_id="1"))
    assert err.ref_seq_num == 5
    assert "chain_id" in err.reason and "Expected `int`" in err.reason
    err = refused(_without(frame("NewIndexOrder", seq=9), "chain_id"))
    assert err.ref_seq_num == 9 and "chain_id" in err.reason
    err = refused(frame("NewIndexOrder", seq=3, chain_id=2**32))
    assert err.ref_seq_num == 3 and "chain_id" in err.reason


def test_header_problems() -> None:
    naive = refused(frame("NewIndexOrder", timestamp="2025-10-01T00:00:00"))
    assert "timezone" in naive.reason and naive.ref_seq_num == 1
    assert "timestamp" in refused(frame("NewIndexOrder", timestamp="yesterday")).reason
    bad_seq = refused(frame("NewIndexOrder", seq=-1))
    assert bad_seq.ref_seq_num is None and "seq_num" in bad_seq.reason
    obj = frame("NewIndexOrder")
    obj["standard_header"]["seq_num"] = True
    assert refused(obj).ref_seq_num is None
    assert "standard_header" in refused(_without(frame("NewIndexOrder"), "standard_header")).reason


def test_unreadable_frames() -> None:
    assert refused(b"{not json").reason.startswith("malformed JSON")
    assert refused(b"[1, 2]").reason.startswith("invalid message")
    assert refused(b"\xff\xfe").ref_seq_num is None
    assert refused(b"[" * 5000 + b"]" * 5000).reason  # deep nesting: no crash
    big = refused(b" " * 20_000, WireLimits(max_frame_bytes=16_384))
    assert big.reason == "frame too large: 20000 > 16384 bytes" and big.ref_seq_num is None


def test_trailer_shapes() -> None:
    assert ok(frame("NewIndexOrder", sign=False, standard_trailer={})).public_keys == ()
    err = refused(
        frame("NewIndexOrder", sign=False, standard_trailer={"public_key": "0x04", "signature": []})
    )
    assert "public_key" in err.reason


def test_wire_error_carries_the_client_once_known() -> None:
    err = refused(frame("NewIndexOrder", amount="x"))
    assert err.client == CLIENT and err.msg_type == "NewIndexOrder"


# ---------------------------------------------------------------- encoding


STAMP = Stamp(seq_num=3, timestamp=NOW)


def decode(data: bytes) -> dict[str, Any]:
    obj = json.loads(data)
    assert list(obj)[:3] == ["standard_header", "chain_id", "address"]
    assert list(obj)[-1] == "standard_trailer"
    return obj  # type: ignore[no-any-return]


def body(obj: dict[str, Any]) -> dict[str, Any]:
    skip = {"standard_header", "chain_id", "address", "standard_trailer"}
    return {k: v for k, v in obj.items() if k not in skip}


def test_header_shape() -> None:
    obj = decode(encode_ack(7, CLIENT, STAMP))
    assert obj["standard_header"] == {
        "msg_type": "ACK",
        "sender_comp_id": "SERVER",
        "target_comp_id": "CLIENT",
        "seq_num": 3,
        "timestamp": "2025-10-01T00:00:00.000Z",
    }
    assert obj["chain_id"] == 1 and obj["address"] == TEST_ADDRESS.lower()
    assert body(obj) == {"ref_seq_num": 7}
    assert obj["standard_trailer"] == {"public_key": [], "signature": []}


def test_nak_for_an_unknown_client() -> None:
    obj = decode(encode_nak(None, "malformed JSON", None, STAMP))
    assert body(obj) == {"ref_seq_num": 0, "reason": "malformed JSON"}
    assert obj["chain_id"] == 0 and obj["address"] == "0x" + "0" * 40


def test_resend_stamp_fields() -> None:
    stamp = Stamp(seq_num=1, timestamp=NOW, server_seq=99, poss_dup=True)
    header = decode(encode_ack(1, CLIENT, stamp))["standard_header"]
    assert header["server_seq"] == 99 and header["poss_dup"] is True


OID, QID = ClientOrderId("O-1"), ClientQuoteId("Q-1")


@pytest.mark.parametrize(
    ("response", "msg_type", "expected"),
    [
        (
            NewIndexOrderResponse(OID, RequestStatus.NEW),
            "NewIndexOrder",
            {"status": "new", "client_order_id": "O-1"},
        ),
        (
            NewIndexOrderResponse(OID, RequestStatus.REJECTED, "duplicate client_order_id"),
            "NewIndexOrder",
            {"status": "rejected", "client_order_id": "O-1", "reason": "duplicate client_order_id"},
        ),
        (
            CancelIndexOrderResponse(OID, RequestStatus.CANCELED),
            "CancelIndexOrder",
            {"status": "canceled", "client_order_id": "O-1"},
        ),
        (
            NewIndexQuoteResponse(QID, RequestStatus.NEW),
            "NewIndexQuote",
            {"status": "new", "client_quote_id": "Q-1"},
        ),
        (
            CancelIndexQuoteResponse(QID, RequestStatus.REJECTED, "no such quote"),
            "CancelIndexQuote",
            {"status": "rejected", "client_quote_id": "Q-1", "reason": "no such quote"},
        ),
        (
            IndexOrderFill(
                OID,
                Decimal("0.5"),
                Decimal("1E+3"),
                Decimal("0.000000"),
                Decimal("0.99995"),
                FillStatus.FULLY_MINTABLE,
            ),
            "IndexOrderFill",
            {
                "client_order_id": "O-1",
                "filled_quantity": "0.5",
                "collateral_spent": "1000",
                "collateral_remaining": "0.000000",
                "fill_rate": "0.99995",
                "status": "fully mintable",
            },
        ),
        (  # a ready buy held outside a batch says why, as a redemption fill does
            IndexOrderFill(
                OID,
                Decimal(0),
                Decimal(0),
                Decimal("1000"),
                Decimal(0),
                FillStatus.IN_PROGRESS,
                "BBBUSDC has no ask",
                HoldCode.NO_PRICE,
            ),
            "IndexOrderFill",
            {
                "client_order_id": "O-1",
                "filled_quantity": "0",
                "collateral_spent": "0",
                "collateral_remaining": "1000",
                "fill_rate": "0",
                "status": "in progress",
                "reason": "BBBUSDC has no ask",
                "reason_code": "no_price",
            },
        ),
        (
            IndexQuoteResponse(QID, Decimal("1.25"), Decimal("1E-18"), Decimal("800")),
            "IndexQuoteResponse",
            {
                "client_quote_id": "Q-1",
                "quantity_possible": "1.25",
                "quantity_fillable_now": "0.000000000000000001",
                "index_price": "800",
            },
        ),
    ],
)
def test_responses(response: Any, msg_type: str, expected: dict[str, Any]) -> None:
    obj = decode(encode_response(response, CLIENT, STAMP))
    assert obj["standard_header"]["msg_type"] == msg_type
    assert body(obj) == expected


def test_a_held_buys_fill_reaches_the_sdk_and_the_cli_with_its_reason() -> None:
    fill = IndexOrderFill(
        OID,
        Decimal(0),
        Decimal(0),
        Decimal(1000),
        Decimal(0),
        FillStatus.IN_PROGRESS,
        "BBBUSDC has no ask",
        HoldCode.NO_PRICE,
    )
    decoded = decode_message(json.loads(encode_response(fill, CLIENT, STAMP)))
    assert isinstance(decoded, Fill)
    assert (decoded.reason, decoded.reason_code) == ("BBBUSDC has no ask", "no_price")
    assert fill_line(decoded).endswith("fill rate 0; waits: no_price: BBBUSDC has no ask")
    plain = dataclasses.replace(fill, reason=None, reason_code=None)
    assert fill_line(decode_message(json.loads(encode_response(plain, CLIENT, STAMP)))).endswith(
        "fill rate 0"
    )


def test_mint_invoice_with_lots() -> None:
    invoice = MintInvoice(
        client_order_id=OID,
        payment_id=PaymentId("P-1"),
        symbol=Symbol("SY100"),
        filled_quantity=Decimal("1.2"),
        total_amount=Decimal("1000"),
        amount_paid=Decimal("998.5"),
        amount_remaining=Decimal("1.5"),
        management_fee=Decimal("0.1"),
        assets_value=Decimal("997.5"),
        exchange_fee=Decimal("1"),
        fill_rate=Decimal("0.9999"),
        lots=(
            InvoiceLot(
                instrument("BTCUSDC"),
                17,
                Decimal("60000"),
                Decimal("0.01"),
                Decimal("0.6"),
                original_quantity=Decimal("0.05"),
                remaining_quantity=Decimal("0.02"),
                original_fee=Decimal("3"),
                created_at=datetime(2025, 10, 1, 12, 29, tzinfo=UTC),
                assigned_at=datetime(2025, 10, 1, 12, 29, 30, tzinfo=UTC),
            ),
            InvoiceLot(instrument("ETHUSDC"), 18, Decimal("3000"), Decimal("0.1"), Decimal("0.3")),
        ),
        timestamp=datetime(2025, 10, 1, 12, 30, tzinfo=UTC),
    )
    obj = body(decode(encode_response(invoice, CLIENT, STAMP)))
    # The reference's SolverOrderAssetLot shape, so its clients parse our invoices.
    assert obj["lots"][0] == {
        "lot_id": "17",
        "symbol": "BTCUSDC",
        "price": "60000",
        "original_quantity": "0.05",
        "remaining_quantity": "0.02",
        "original_fee": "3",
        "assigned_quantity": "0.01",
        "assigned_fee": "0.6",
        "created_timestamp": "2025-10-01T12:29:00.000Z",
        "assigned_timestamp": "2025-10-01T12:29:30.000Z",
    }
    # Without the lot's own facts the lot line still has every field the reference requires.
    assert set(obj["lots"][1]) == set(obj["lots"][0])
    assert len(obj["lots"]) == 2
    # The reference's MintInvoiceBody names for the same figures.
    assert obj["index_id"] == "SY100"
    assert obj["total_collateral"] == "1000"
    assert obj["collateral_spent"] == obj["engaged_collateral"] == "998.5"
    assert obj["timestamp"] == "2025-10-01T12:30:00.000Z"
    assert list(obj)[:11] == [
        "client_order_id",
        "payment_id",
        "symbol",
        "filled_quantity",
        "total_amount",
        "amount_paid",
        "amount_remaining",
        "management_fee",
        "assets_value",
        "exchange_fee",
        "fill_rate",
    ]
    assert obj["amount_paid"] == "998.5"


def mint_invoice(payment_id: str, position: CollateralPosition | None = None) -> MintInvoice:
    """A minted invoice of 1 SY100 for 9 USDC of 10, with `position` when given."""
    return MintInvoice(
        client_order_id=OID,
        payment_id=PaymentId(payment_id),
        symbol=Symbol("SY100"),
        filled_quantity=Decimal("1"),
        total_amount=Decimal("10"),
        amount_paid=Decimal("9"),
        amount_remaining=Decimal("1"),
        management_fee=Decimal("0"),
        assets_value=Decimal("9"),
        exchange_fee=Decimal("0"),
        fill_rate=Decimal("1"),
        lots=(),
        timestamp=datetime(2025, 10, 1, 12, 30, tzinfo=UTC),
        position=position,
    )


def test_mint_invoice_position_shows_what_is_held_below_the_route_cost() -> None:
    position = CollateralPosition(
        CLIENT, Decimal(0), Decimal("1.5"), Decimal(0), Decimal(9), held=Decimal("0.5")
    )
    invoice = mint_invoice("P-3", position=position)
    frame = json.loads(encode_response(invoice, CLIENT, STAMP))
    side_cr = body(frame)["position"]["side_cr"]
    # The reference's fields as before, ours beside them.
    assert (side_cr["unconfirmed_balance"], side_cr["held_balance"]) == ("0", "0.5")
    decoded = decode_message(frame)
    assert isinstance(decoded, Invoice) and decoded.position is not None
    assert (decoded.position.held, decoded.position.ready) == (Decimal("0.5"), Decimal("1.5"))
    # A server without the field (older) reads as nothing held.
    del side_cr["held_balance"]
    older = decode_message(frame)
    assert isinstance(older, Invoice) and older.position is not None
    assert older.position.held == 0


def test_signed_responses_verify_as_the_spec_says() -> None:
    signer = Signer(TEST_KEY)
    fill = IndexOrderFill(OID, Decimal(1), Decimal(1), Decimal(1), Decimal(1), FillStatus.MINTABLE)
    obj = decode(encode_response(fill, CLIENT, STAMP, signer))
    trailer = obj["standard_trailer"]
    verify_text(
        signing_text("IndexOrderFill", "O-1"),
        trailer["signature"][0],
        trailer["public_key"][0],
        TEST_ADDRESS,
    )
    ack = decode(encode_ack(12, CLIENT, STAMP, signer))["standard_trailer"]
    verify_text(signing_text("ACK", "12"), ack["signature"][0], ack["public_key"][0], TEST_ADDRESS)
    nak = decode(encode_nak(None, "x", None, STAMP, signer))["standard_trailer"]
    verify_text(signing_text("NAK", "0"), nak["signature"][0], nak["public_key"][0], TEST_ADDRESS)


def test_encode_response_refuses_non_responses() -> None:
    with pytest.raises(TypeError):
        encode_response("nope", CLIENT, STAMP)  # type: ignore[arg-type]


def test_mint_invoice_names_the_invoice_hash_and_mint_tx_when_minted_on_chain() -> None:
    invoice = mint_invoice("P-2")
    assert "invoice_hash" not in body(decode(encode_response(invoice, CLIENT, STAMP)))
    on_chain = replace(invoice, invoice_hash="0x" + "12" * 32, mint_tx_hash="0x" + "34" * 32)
    obj = body(decode(encode_response(on_chain, CLIENT, STAMP)))
    assert (obj["invoice_hash"], obj["mint_tx_hash"]) == ("0x" + "12" * 32, "0x" + "34" * 32)
