"""The sell side on the wire (issue 12): a sell's index units and optional floor, and the
redemption responses' bodies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from indexmaker.app.cli_redeem import show_redemption_event
from indexmaker.core.events import IndexQuoteResponse, NewIndexOrderRequest, NewQuoteRequest
from indexmaker.core.ids import (
    ClientOrderId,
    ClientQuoteId,
    PaymentId,
    Symbol,
    TxHash,
    client_key,
    instrument,
)
from indexmaker.core.redemption_events import (
    RedemptionBurn,
    RedemptionFill,
    RedemptionInvoice,
    RedemptionLot,
    RedemptionStatus,
)
from indexmaker.model.side import Side
from indexmaker.server.client_events import Quote, decode_message
from indexmaker.server.client_redemption import RedemptionInvoice as SdkRedemptionInvoice
from indexmaker.server.client_redemption import RedemptionLotSold
from indexmaker.server.messages import (
    ParsedRequest,
    Stamp,
    WireError,
    encode_response,
    parse_request,
)

from .wire_helpers import TEST_ADDRESS, dumps, frame

D = Decimal
CLIENT = client_key(1, TEST_ADDRESS)
STAMP = Stamp(seq_num=3, timestamp=datetime(2025, 10, 1, tzinfo=UTC))


def parse(**overrides: Any) -> ParsedRequest | WireError:
    return parse_request(dumps(frame("NewIndexOrder", **overrides)))


def test_a_sell_names_index_units_with_18_decimals_and_an_optional_floor() -> None:
    parsed = parse(side="sell", amount="2.000000000000000001", min_proceeds="79.5")
    assert isinstance(parsed, ParsedRequest)
    assert parsed.request == NewIndexOrderRequest(
        CLIENT,
        ClientOrderId("O-1"),
        Symbol("SY100"),
        Side.SELL,
        D("2.000000000000000001"),
        D("79.5"),
    )
    plain = parse(side="2", amount="3")  # a reference client: no floor
    assert isinstance(plain, ParsedRequest) and isinstance(plain.request, NewIndexOrderRequest)
    assert plain.request.min_proceeds is None


def test_sell_and_floor_refusals_name_the_field() -> None:
    cases = [
        (
            {"side": "buy", "min_proceeds": "1"},
            "min_proceeds: only a sell (redemption) has a floor",
        ),
        ({"side": "sell", "amount": "1.0000000000000000001"}, "amount: more than 18 decimals"),
        ({"side": "sell", "amount": "1", "min_proceeds": "0.0000001"}, "more than 6 decimals"),
        ({"side": "sell", "amount": "1", "min_proceeds": 5}, "min_proceeds: expected a decimal"),
        ({"side": "buy", "amount": "1.0000001"}, "amount: more than 6 decimals"),
    ]
    for overrides, reason in cases:
        refused = parse(**overrides)
        assert isinstance(refused, WireError), overrides
        assert reason in refused.reason, (refused.reason, reason)


def body(data: bytes) -> dict[str, Any]:
    obj = json.loads(data)
    skip = {"standard_header", "chain_id", "address", "standard_trailer"}
    assert obj["standard_header"]["seq_num"] == 3
    return {"msg_type": obj["standard_header"]["msg_type"]} | {
        k: v for k, v in obj.items() if k not in skip
    }


def test_redemption_fill_and_invoice_bodies(capsys: pytest.CaptureFixture[str]) -> None:
    fill = RedemptionFill(
        ClientOrderId("S1"), D("25"), D("12.5"), D("495.75"), D("0.5"), RedemptionStatus.QUEUED, "w"
    )
    assert body(encode_response(fill, CLIENT, STAMP)) == {
        "msg_type": "IndexRedemptionFill",
        "client_order_id": "S1",
        "quantity": "25",
        "sold_quantity": "12.5",
        "proceeds": "495.75",
        "fill_rate": "0.5",
        "status": "queued",
        "reason": "w",
    }
    invoice = RedemptionInvoice(
        ClientOrderId("S1"),
        Symbol("IDX"),
        D("25"),
        D("25"),
        D("0"),
        (RedemptionBurn(PaymentId("R1-B2"), D("25"), TxHash("0xab")),),
        (RedemptionLot(instrument("AAAUSDC"), 1, D("50"), D("10"), D("9.9"), D("0.495"), D("-5")),),
        D("39.85"),
        D("39.7"),
        D("37.64"),
        D("992.5"),
        D("0.9925"),
        D("0"),
        D("1"),
        D("990.5075"),
        None,
        D("-9.4925"),
        datetime(2025, 10, 1, tzinfo=UTC),
        basket_version=2,  # sold after a rebalance: the holdings of version 2
    )
    got = body(encode_response(invoice, CLIENT, STAMP))
    assert got["basket_version"] == 2  # every invoice names its basket version (issue 12)
    assert got["msg_type"] == "RedemptionInvoice"
    assert got["burns"] == [{"payment_id": "R1-B2", "quantity": "25", "tx_hash": "0xab"}]
    assert got["lots"][0] == {
        "asset": "AAAUSDC",
        "lot_id": 1,
        "quantity": "50",
        "cost_price": "10",
        "sale_price": "9.9",
        "fee": "0.495",
        "pnl": "-5",
        "crossed": False,
    }
    assert (got["net_paid"], got["payout_tx"], got["slippage_bps"]) == ("990.5075", None, "37.64")
    assert got["timestamp"].startswith("2025-10-01T00:00:00")
    # The SDK keeps each lot as a typed record (review found it kept only their count), and
    # the CLI prints them.
    decoded = decode_message(json.loads(encode_response(invoice, CLIENT, STAMP)))
    assert isinstance(decoded, SdkRedemptionInvoice)
    assert decoded.basket_version == 2
    assert decoded.lots == (
        RedemptionLotSold("AAAUSDC", 1, D("50"), D("10"), D("9.9"), D("0.495"), D("-5")),
    )
    assert show_redemption_event(decoded, " (resent)")  # as `indexmaker watch` shows it
    printed = capsys.readouterr().out
    assert printed.startswith("redeemed 25 IDX for S1 (resent)\n")
    assert "  lots sold: 1\n" in printed
    assert "  basket_version: 2\n" in printed
    assert "  lot AAAUSDC #1: 50 at 9.9 (cost 10), fee 0.495, pnl -5 USDC\n" in printed


def test_a_sell_quote_names_index_units_and_its_answer_the_expected_proceeds() -> None:
    parsed = parse_request(
        dumps(frame("NewQuoteRequest", sign=False, side="sell", amount="2.000000000000000001"))
    )
    assert isinstance(parsed, ParsedRequest)
    assert parsed.request == NewQuoteRequest(
        CLIENT, ClientQuoteId("Q-1"), Symbol("SY100"), Side.SELL, D("2.000000000000000001")
    )
    too_fine = parse_request(
        dumps(frame("NewQuoteRequest", sign=False, side="s", amount="1.0000000000000000001"))
    )
    assert isinstance(too_fine, WireError) and "amount: more than 18 decimals" in too_fine.reason
    buy = parse_request(dumps(frame("NewQuoteRequest", sign=False, amount="1.0000001")))
    assert isinstance(buy, WireError) and "amount: more than 6 decimals" in buy.reason
    answer = IndexQuoteResponse(ClientQuoteId("Q-1"), D(40), D(30), D("39.303"), D("1567.413053"))
    assert body(encode_response(answer, CLIENT, STAMP)) == {
        "msg_type": "IndexQuoteResponse",
        "client_quote_id": "Q-1",
        "quantity_possible": "40",
        "quantity_fillable_now": "30",
        "index_price": "39.303",
        "expected_proceeds": "1567.413053",
    }
    # The client SDK reads it back.
    decoded = decode_message(json.loads(encode_response(answer, CLIENT, STAMP)))
    assert isinstance(decoded, Quote) and decoded.expected_proceeds == D("1567.413053")
