"""core/codec.py: every input, command and client message round-trips through its versioned
codec exactly (every Decimal digit, times, instrument ids, enums)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from indexmaker.core.codec import (
    COMMAND_TYPES,
    INPUT_TYPES,
    RESPONSE_TYPES,
    decode,
    decode_entry,
    decode_input,
    encode,
    encode_entry,
)
from indexmaker.core.errors import InvalidInputError
from indexmaker.core.events import (
    Alert,
    BatchEvent,
    BookInvalid,
    BookSnapshot,
    BookUpdate,
    BurnConfirmed,
    BurnFailed,
    BurnIndex,
    CancelIndexOrderRequest,
    CancelIndexOrderResponse,
    CancelIndexQuoteResponse,
    CancelQuoteRequest,
    CollateralPosition,
    DepositObserved,
    EscrowIndex,
    ExchangeFill,
    ExchangeOrderAccepted,
    ExchangeOrderClosed,
    ExchangeOrderReport,
    ExchangeOrderStatus,
    ExchangeOrderStatusUnknown,
    FillStatus,
    HopCompleted,
    HopFailed,
    HopReport,
    HopState,
    HopStatusUnknown,
    IndexEscrowed,
    IndexEscrowFailed,
    IndexOrderFill,
    IndexQuoteResponse,
    InstrumentStatus,
    InvoiceLot,
    MintConfirmed,
    MintFailed,
    MintIndex,
    MintInvoice,
    NewIndexOrderRequest,
    NewIndexOrderResponse,
    NewIndexQuoteResponse,
    NewQuoteRequest,
    OrderLimitWindow,
    PlaceExchangeOrder,
    QueryExchangeOrder,
    QueryHop,
    RateLimitFeedback,
    ReleaseIndex,
    RequestStatus,
    ResumeRoutes,
    RouteCollateral,
    RouteCostQuoted,
    RulesUpdate,
    SendToClient,
    Tick,
    TradePrint,
    VenueBalance,
    VenueOrderLimits,
    WithdrawalCompleted,
    WithdrawalFailed,
    WithdrawCollateral,
)
from indexmaker.core.ids import (
    Address,
    Asset,
    BatchId,
    ClientOrderId,
    ClientQuoteId,
    Designation,
    ExchangeOrderId,
    PaymentId,
    Symbol,
    TradeId,
    TransferId,
    TxHash,
    Venue,
    VenueOrderId,
    WithdrawalId,
    client_key,
    instrument,
)
from indexmaker.core.journal import JournalEntry
from indexmaker.core.rebalance_events import (
    RebalanceAssetLine,
    RebalanceIndex,
    RebalanceReport,
    RebalanceWeight,
)
from indexmaker.core.redemption_events import (
    RedemptionBurn,
    RedemptionFill,
    RedemptionInvoice,
    RedemptionLot,
)
from indexmaker.core.redemption_events import RedemptionStatus as RS
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.side import Side

D = Decimal
T = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
ALICE = client_key(42161, "0x" + "a" * 40)
BTC = instrument("BTCUSDC")
OID = ExchangeOrderId("im-7")
# 34 significant digits: a codec that goes through float loses them.
LONG = D("0.1234567890123456789012345678901234")
INVOICE = MintInvoice(
    ClientOrderId("A1"),
    PaymentId("P1"),
    Symbol("SY100"),
    LONG,
    D("1000"),
    D("999.5"),
    D("0.5"),
    D("1.5"),
    D("998.5"),
    D("1"),
    D("0.9995"),
    (
        InvoiceLot(
            BTC, 3, D("110000"), D("0.001"), D("0.11"), D("0.002"), D("0.001"), D("0.22"), T, T
        ),
        InvoiceLot(instrument("ETHUSDC"), 4, D("4000"), D("0.1"), D("0.4")),
    ),
    T,
    CollateralPosition(ALICE, D("0"), D("1.000001"), D("0"), D("999.5")),
)
RESPONSES = [
    NewIndexOrderResponse(ClientOrderId("A1"), RequestStatus.NEW),
    CancelIndexOrderResponse(ClientOrderId("A1"), RequestStatus.REJECTED, "nothing to cancel"),
    IndexOrderFill(ClientOrderId("A1"), LONG, D("1"), D("2"), D("0.5"), FillStatus.IN_PROGRESS),
    INVOICE,
    NewIndexQuoteResponse(ClientQuoteId("Q1"), RequestStatus.NEW),
    IndexQuoteResponse(ClientQuoteId("Q1"), D("1.5"), D("1.25"), D("666.6")),
    CancelIndexQuoteResponse(ClientQuoteId("Q1"), RequestStatus.CANCELED),
    RedemptionFill(ClientOrderId("S1"), D("25"), LONG, D("991.5"), D("0.5"), RS.IN_PROGRESS, "x"),
    RedemptionInvoice(
        ClientOrderId("S1"),
        Symbol("SY100"),
        D("25"),
        D("24"),
        D("1"),
        (RedemptionBurn(PaymentId("R1-B2"), D("24"), TxHash("0x" + "ef" * 32)),),
        (RedemptionLot(BTC, 3, LONG, D("100000"), D("110000.01"), D("0.11"), D("-1.25")),),
        D("40.35"),
        D("39.7"),
        D("161.09"),
        D("992.5"),
        D("0.9925"),
        D("0"),
        D("1"),
        D("990.5075"),
        None,
        D("-9.4925"),
        T,
    ),
]
SAMPLES = [
    NewIndexOrderRequest(ALICE, ClientOrderId("A1"), Symbol("SY100"), Side.BUY, D("1000.000001")),
    CancelIndexOrderRequest(ALICE, ClientOrderId("A1"), Symbol("SY100"), D("5")),
    NewQuoteRequest(ALICE, ClientQuoteId("Q1"), Symbol("SY100"), Side.SELL, D("10")),
    CancelQuoteRequest(ALICE, ClientQuoteId("Q1"), Symbol("SY100")),
    BookSnapshot(BTC, ((D("109999.99"), LONG),), ((D("110000.01"), D("2")),)),
    BookUpdate(BTC, asks=((D("110000.01"), D("0")),)),
    BookInvalid(BTC, "sequence gap: expected 11, got 13"),
    TradePrint(BTC, D("110000"), D("0.5")),
    RulesUpdate(InstrumentRules(BTC, "BTC", "USDC", tick_size=D("0.01"), step_size=D("0.00001"))),
    InstrumentStatus(BTC, False, "delisted"),
    RateLimitFeedback(Venue("binance"), "weight_1m", 1180, timedelta(seconds=7.5), "429"),
    VenueOrderLimits(
        Venue("binance"),
        (
            OrderLimitWindow("ORDERS_10S", 45, timedelta(seconds=10), 50),
            OrderLimitWindow("ORDERS_1D", 144_000, timedelta(days=1), 160_000),
        ),
    ),
    VenueBalance(Venue("binance"), Asset("BTC"), D("1.00000001"), D("0.5"), T),
    ExchangeOrderAccepted(OID, BTC, VenueOrderId("123456789"), T),
    ExchangeFill(
        OID,
        BTC,
        VenueOrderId("123456789"),
        TradeId("991"),
        D("110000.01"),
        LONG,
        LONG,
        D("0.00000012"),
        Asset("BTC"),
        T,
    ),
    ExchangeOrderClosed(OID, BTC, ExchangeOrderStatus.EXPIRED, None, VenueOrderId("1"), LONG, T),
    ExchangeOrderStatusUnknown(OID, BTC, "timeout after 10s"),
    ExchangeOrderReport(OID, BTC, ExchangeOrderStatus.FILLED, D("1"), VenueOrderId("1"), T),
    ExchangeOrderReport(OID, BTC, None, D("0"), reason="order does not exist"),
    DepositObserved(
        ALICE,
        9,
        D("1000"),
        Designation("EVM:ARBITRUM:USDC"),
        TxHash("0x" + "ab" * 32),
        3,
        123456,
        12,
    ),
    RouteCostQuoted(Designation("EVM:ARBITRUM:USDC"), "across", D("0.734102"), "gas 250000"),
    HopCompleted(TransferId("T1"), D("998.5"), D("1.5")),
    HopFailed(TransferId("T1"), "bridge paused"),
    HopStatusUnknown(TransferId("T1"), "hop timed out after 5.0s"),
    HopReport(TransferId("T1"), HopState.DONE, D("998.5"), D("1.5")),
    HopReport(TransferId("T2"), HopState.NOT_FOUND, reason="no such transfer"),
    ResumeRoutes("EVM:ARBITRUM:USDC#1", "operator"),
    ResumeRoutes(None, "restart"),
    MintConfirmed(PaymentId("P1")),
    MintFailed(PaymentId("P1"), "nonce too low", retryable=True),
    BurnConfirmed(PaymentId("B1")),
    BurnConfirmed(PaymentId("B2"), TxHash("0x" + "12" * 32)),
    IndexEscrowed(PaymentId("R1"), TxHash("0x" + "34" * 32), 31_415_926),
    IndexEscrowFailed(PaymentId("R1"), "the client holds 3 SY100, not 25"),
    EscrowIndex(PaymentId("R1"), ALICE, Symbol("SY100"), LONG),
    ReleaseIndex(PaymentId("R1"), ALICE, Symbol("SY100"), D("1.5")),
    NewIndexOrderRequest(ALICE, ClientOrderId("S1"), Symbol("SY100"), Side.SELL, LONG, D("3.5")),
    BurnFailed(PaymentId("B1"), "reverted", retryable=False),
    WithdrawalCompleted(WithdrawalId("W1"), TxHash("0x" + "cd" * 32), D("0.1")),
    WithdrawalFailed(WithdrawalId("W1"), "insufficient custody balance"),
    Tick(T),
    PlaceExchangeOrder(OID, BatchId(2), BTC, Side.BUY, D("111100.01"), D("0.00009")),
    QueryExchangeOrder(OID, BTC),
    QueryHop(TransferId("T1"), "across", D("1000")),
    RouteCollateral(
        TransferId("T1"),
        ALICE,
        "across",
        Designation("EVM:ARBITRUM:USDC"),
        Designation("EVM:BASE:USDC"),
        D("1000"),
        "EVM:ARBITRUM:USDC#1:across",
        from_block=123_456_789,
    ),
    MintIndex(PaymentId("P1"), ALICE, Symbol("SY100"), LONG),
    BurnIndex(PaymentId("B1"), ALICE, Symbol("SY100"), D("1")),
    WithdrawCollateral(
        WithdrawalId("W1"), ALICE, Designation("EVM:BASE:USDC"), Address("0x" + "a" * 40), D("5")
    ),
    BatchEvent(BatchId(2), "created", 3, 81, D("1000"), {"orders_with_fills": "3"}),
    Alert("late_fill", "fill t9 of im-7 after batch 2 completed"),
    RebalanceIndex(
        Symbol("SY100"),
        "curator-7",
        (RebalanceWeight(BTC, D("12.5")), RebalanceWeight(instrument("ETHUSDC"), D("0"))),
        datetime(2026, 1, 2, tzinfo=UTC),
    ),
    RebalanceReport(
        Symbol("SY100"),
        2,
        "round",
        3,
        LONG,
        D("0.95"),
        D("0.9"),
        D("1234.5"),
        D("1.2345"),
        D("-0.5"),
        D("5.9"),
        D("10"),
        4,
        (
            RebalanceAssetLine(
                BTC, D("2"), D("1.5"), D("0.5"), D("0.5"), D(0), D("-0.1"), D("50000"), D(1), D(2)
            ),
        ),
        "on target",
    ),
    *(SendToClient(ALICE, message) for message in RESPONSES),
    *RESPONSES,
]


def test_every_record_of_the_contract_has_a_sample() -> None:
    sampled = {type(s) for s in SAMPLES}
    assert set(INPUT_TYPES) | set(COMMAND_TYPES) | set(RESPONSE_TYPES) <= sampled


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
def test_round_trip_is_exact(record: object) -> None:
    data = encode(record)  # type: ignore[arg-type]
    wire = json.loads(data)
    assert wire["v"] == 1 and wire["type"] == type(record).__name__
    assert decode(data) == record
    # A second trip gives the same bytes: the encoding is canonical (replay compares bytes).
    assert encode(decode(data)) == data


def test_decimals_travel_as_strings_with_every_digit() -> None:
    wire = json.loads(encode(TradePrint(BTC, LONG, D("1E+3"))))
    assert wire["data"] == {
        "instrument": ["binance", "BTCUSDC"],
        "price": str(LONG),
        "quantity": "1E+3",
    }


def test_journal_entry_keeps_sequence_and_time() -> None:
    entry = JournalEntry(17, T, Tick(T + timedelta(seconds=1)))
    assert decode_entry(encode_entry(entry)) == entry


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b'{"v": 2, "type": "Tick", "data": {"now": "2026-01-02T03:04:05Z"}}', "codec version 2"),
        (b'{"v": 1, "type": "Nope", "data": {}}', "unknown record 'Nope'"),
        (b'{"v": 1, "type": "Tick", "data": {"now": 5}}', "Tick"),
        (b'{"v": 1, "type": "MintIndex", "data": {}}', "MintIndex"),
        (b"[1, 2]", "envelope"),
    ],
)
def test_bad_records_are_refused_naming_the_problem(data: bytes, fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=fragment):
        decode(data)


def test_a_command_is_not_an_engine_input() -> None:
    with pytest.raises(InvalidInputError, match="not an engine input"):
        decode_input(encode(QueryExchangeOrder(OID, BTC)))
    assert decode_input(encode(Tick(T))) == Tick(T)


def test_a_route_command_journalled_before_its_lower_bound_decodes_without_one() -> None:
    """RouteCollateral.from_block (issue 11) came later: an older record has none and reads
    as 0, the adapter's "not known" (it searches from its chain's first block)."""
    old = (
        b'{"v": 1, "type": "RouteCollateral", "data": {"transfer_id": "T1", "client": '
        b'[42161, "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"], "bridge": "across", '
        b'"source": "EVM:ARBITRUM:USDC", "destination": "EVM:BASE:USDC", "amount": "1000", '
        b'"hop_key": "EVM:ARBITRUM:USDC#1:across"}}'
    )
    command = decode(old)
    assert isinstance(command, RouteCollateral)
    assert (command.hop_key, command.from_block) == ("EVM:ARBITRUM:USDC#1:across", 0)
