"""engine/engine.py: Engine.handle end to end over the in-process simulated world.

World: IDX = 2 AAA + 1 BBB (asks AAA 10 ×100 and 10.05 ×100, BBB 20 ×100), ONLYA = 1 AAA.
Limits 10.10 / 20.20 → P(IDX) = 40.40. The Across hop charges a fixed 0.5 USDC, the wallet hop
nothing, so a deposit of 1012.52 nets 1012.02 → usable 1010 → q = 25 IDX in the first batch.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from indexmaker.core.clock import ManualClock
from indexmaker.core.events import (
    Alert,
    BookSnapshot,
    CancelIndexOrderRequest,
    CancelIndexOrderResponse,
    CancelQuoteRequest,
    Command,
    DepositObserved,
    ExchangeFill,
    ExchangeOrderClosed,
    ExchangeOrderStatus,
    FillStatus,
    HopCompleted,
    HopFailed,
    IndexOrderFill,
    IndexQuoteResponse,
    MintConfirmed,
    MintIndex,
    MintInvoice,
    NewIndexOrderRequest,
    NewIndexOrderResponse,
    NewIndexQuoteResponse,
    NewQuoteRequest,
    PlaceExchangeOrder,
    RequestStatus,
    RouteCollateral,
    SendToClient,
    Tick,
    TradePrint,
)
from indexmaker.core.holds import HoldCode
from indexmaker.core.ids import (
    Asset,
    BatchId,
    ClientKey,
    ClientOrderId,
    ClientQuoteId,
    Designation,
    ExchangeOrderId,
    InstrumentId,
    PaymentId,
    Symbol,
    TradeId,
    TransferId,
    TxHash,
    VenueOrderId,
    client_key,
    instrument,
)
from indexmaker.core.invoice_terms import terms_hash
from indexmaker.core.money import round_index_down, round_rate
from indexmaker.engine.engine import EXCHANGE_ACCOUNT, Engine, EngineSetup
from indexmaker.engine.invoices import invoice_hash
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.index import Basket, BasketAsset
from indexmaker.model.order import OrderStatus
from indexmaker.model.side import Side
from indexmaker.server.encoding import response_body
from indexmaker.sim.chain import BridgeTerms, SimulatedChain
from indexmaker.sim.exchange import Behaviour, SimulatedExchange
from indexmaker.sim.world import SimulatedWorld

D = Decimal
ALICE = client_key(42161, "0x" + "a" * 40)
BOB = client_key(42161, "0x" + "b" * 40)
AAA, BBB = instrument("AAAUSDC"), instrument("BBBUSDC")
IDX, ONLYA = Symbol("IDX"), Symbol("ONLYA")
# Known rules with every filter disabled (SPEC §6: a symbol without known rules is not traded).
RULES = {s: InstrumentRules(s, s.pair.removesuffix("USDC"), "USDC") for s in (AAA, BBB)}
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def deposit_event(
    client: ClientKey, seq: int, amount: Decimal, designation: Designation
) -> DepositObserved:
    return DepositObserved(client, seq, amount, designation, TxHash(f"0x{seq:064x}"), 0, seq, 12)


BASKETS = {
    "IDX": Basket(IDX, (BasketAsset(AAA, D("2")), BasketAsset(BBB, D("1")))),
    "ONLYA": Basket(ONLYA, (BasketAsset(AAA, D("1")),)),
}


def books() -> dict[
    InstrumentId, tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]
]:
    return {
        AAA: ([(D("9.9"), D("100"))], [(D("10"), D("100")), (D("10.05"), D("100"))]),
        BBB: ([(D("19.9"), D("100"))], [(D("20"), D("100"))]),
    }


def world(
    behaviour: dict[Symbol, Behaviour] | None = None, chain_kind: type = SimulatedChain
) -> SimulatedWorld:
    exchange = SimulatedExchange(books(), behaviour=behaviour)
    chain = chain_kind(
        bridges={"across": BridgeTerms(D("0.5"), D("0")), "wallet": BridgeTerms(D("0"), D("0"))}
    )
    return SimulatedWorld(EngineSetup(BASKETS, rules=RULES), exchange, chain)


def order(client: ClientKey, cid: str, amount: str, symbol: Symbol = IDX) -> NewIndexOrderRequest:
    return NewIndexOrderRequest(client, ClientOrderId(cid), symbol, Side.BUY, D(amount))


def fingerprint(engine: Engine) -> str:
    """Every ledger the engine keeps, as text (repr keeps Decimal exponents too)."""
    collateral = engine.collateral
    parts: list[object] = [
        list(engine.orders.all_updates()),
        [o.symbol for o in engine.orders.active_orders()],
        [
            (c, collateral.ledger(c))
            for c in collateral.clients()
            if collateral.ledger(c).lots
            or collateral.ledger(c).reservations
            or collateral.ledger(c).deposited
        ],
        [(a, engine.inventory.lots(a)) for a in engine.inventory.assets()],
        engine.tracker.open_orders(),
        engine.tracker.queued(),
        engine.quotes.pending(),
        engine.router.in_flight(),
        [(b.batch_id, b.engaged) for b in engine.batches.open_batches()],
        [(s, repr(engine.market.book(s)), engine.market.prices(s)) for s in (AAA, BBB)],
    ]
    return repr(parts)


def messages(commands: list[Command]) -> list[object]:
    return [c.message for c in commands if isinstance(c, SendToClient)]


# ---------------------------------------------------------------- end to end


def test_order_end_to_end_first_batch_exact_and_mint() -> None:
    w = world()
    w.deposit(ALICE, D("1012.52"))
    w.submit(order(ALICE, "A1", "1012.52"))
    w.advance(timedelta(seconds=60))

    # Collateral went source → Across (−0.5) → trading chain → exchange.
    assert [(r.bridge, r.amount) for r in w.log.routes] == [
        ("across", D("1012.52")),
        ("wallet", D("1012.02")),
    ]
    # First batch: q = 25 → AAA 50 @ 10.10 and BBB 25 @ 20.20.
    first_two = w.log.exchange_orders[:2]
    assert [(o.batch_id, o.instrument, o.price, o.quantity) for o in first_two] == [
        (1, AAA, D("10.10"), D(50)),
        (1, BBB, D("20.20"), D(25)),
    ]
    out = w.log.for_client(ALICE)
    # Accepted at once with what it waits for: the deposit is still on its two hops.
    assert out[0] == NewIndexOrderResponse(
        ClientOrderId("A1"),
        RequestStatus.NEW,
        "waiting for collateral: need 1012.52, ready 0, in transit 1012.52; refused if not "
        "ready within 0:30:00",
    )
    assert out[1] == IndexOrderFill(
        ClientOrderId("A1"), D(0), D(0), D("1012.02"), D(0), FillStatus.COLLATERAL_READY
    )
    # Fills at 10 and 20 with the 0.1% fee: 50 × 10 + 25 × 20 = 1000 of assets, fee 0.5 + 0.5.
    # Spent 1001 of 1012.02: every engaged unit filled (25 of 25), so the fill rate is 1 and
    # the 11.02 the limit price reserved but execution did not cost is change (SPEC §3).
    assert out[2] == IndexOrderFill(
        ClientOrderId("A1"), D(25), D("1001"), D("11.02"), D(1), FillStatus.FULLY_MINTABLE
    )
    # No second batch for the change: two exchange orders in all, minted after batch 1.
    assert len(w.log.exchange_orders) == 2
    # The last message is the invoice; it was minted exactly what it reports.
    invoice = out[-1]
    assert isinstance(invoice, MintInvoice)
    assert invoice.client_order_id == "A1" and invoice.payment_id == "P1"
    assert invoice.total_amount == D("1012.52") and invoice.management_fee == D("0.5")
    assert (invoice.amount_paid, invoice.amount_remaining) == (D("1001"), D("11.02"))
    assert (invoice.assets_value, invoice.exchange_fee) == (D("1000"), D("1"))
    assert (invoice.filled_quantity, invoice.fill_rate) == (D(25), D(1))
    assert w.chain.minted[(ALICE, IDX)] == invoice.filled_quantity
    aaa = sum((lot.quantity for lot in invoice.lots if lot.asset == AAA), D(0))
    bbb = sum((lot.quantity for lot in invoice.lots if lot.asset == BBB), D(0))
    # Basket proportions are backed exactly (up to the context's last digits).
    assert abs(aaa - 2 * bbb) < D("1e-20")
    assert abs(bbb - invoice.filled_quantity) < D("1e-17")
    # The order is gone; the change is the client's ready collateral again.
    engine = w.engine
    assert engine.orders.open_count() == 0
    ledger = engine.collateral.ledger(ALICE)
    assert ledger.reservations == {}
    assert abs(ledger.ready_available() - invoice.amount_remaining) <= D("0.000001")
    assert engine.collateral.unspent(ALICE) == ledger.deposited - ledger.fees - ledger.spent
    assert w.log.alerts == []


def test_quote_answered_on_next_tick() -> None:
    w = world()
    w.submit(NewQuoteRequest(ALICE, ClientQuoteId("Q1"), IDX, Side.BUY, D("1012.02")))
    w.advance(timedelta(milliseconds=100))
    assert w.log.for_client(ALICE) == [
        NewIndexQuoteResponse(ClientQuoteId("Q1"), RequestStatus.NEW),
        # 1012.02 / 1.002 / 40.40 = 25; the books hold 100 IDX worth → 25 fillable now.
        IndexQuoteResponse(ClientQuoteId("Q1"), D(25), D(25), D("40.40")),
    ]


def test_collateral_timeout_fails_the_order_with_a_reason() -> None:
    clock = ManualClock()
    engine = Engine(EngineSetup(BASKETS, rules=RULES), clock)
    engine.handle(order(ALICE, "A1", "100"))
    clock.advance(timedelta(minutes=29, seconds=59))
    assert messages(engine.handle(Tick(clock.now()))) == []
    clock.advance(timedelta(seconds=1))
    (rejection,) = messages(engine.handle(Tick(clock.now())))
    assert isinstance(rejection, NewIndexOrderResponse)
    assert rejection.status is RequestStatus.REJECTED
    assert (
        rejection.reason is not None and "collateral not ready within 0:30:00" in rejection.reason
    )
    assert "need 100" in rejection.reason
    assert engine.orders.open_count() == 0


def ready_engine() -> tuple[Engine, ManualClock]:
    """Books known, Alice has 1000 ready at the exchange and a READY order A1 of 1000."""
    clock = ManualClock()
    engine = Engine(EngineSetup(BASKETS, rules=RULES), clock)
    for symbol, (bids, asks) in books().items():
        engine.handle(BookSnapshot(symbol, tuple(bids), tuple(asks)))
    engine.handle(deposit_event(ALICE, 1, D("1000"), EXCHANGE_ACCOUNT))
    engine.handle(order(ALICE, "A1", "1000"))
    update = engine.orders.update(ALICE, ClientOrderId("A1"))
    assert update is not None and update.status is OrderStatus.READY
    return engine, clock


def test_cancel_and_opposite_side_reduce_then_remove() -> None:
    engine, _ = ready_engine()
    ledger = engine.collateral.ledger(ALICE)
    out = engine.handle(CancelIndexOrderRequest(ALICE, ClientOrderId("A1"), IDX, D("400")))
    assert messages(out) == [CancelIndexOrderResponse(ClientOrderId("A1"), RequestStatus.CANCELED)]
    update = engine.orders.update(ALICE, ClientOrderId("A1"))
    assert update is not None and update.amount == D(600)
    assert ledger.reservations[ClientOrderId("A1")].gross == D(600)
    assert ledger.ready_available() == D(400)
    # An opposite-side order reduces too: a sell of 2 index units weighs 2 × P × fee_factor
    # at the buy limit P = 2 × 10.1 + 1 × 20.2 = 40.4: 80.9616 USDC (600 → 519.0384).
    sell = NewIndexOrderRequest(ALICE, ClientOrderId("S1"), IDX, Side.SELL, D("2"))
    # The sell is used up there: it ends at once with a final report (issue 12 review).
    assert messages(engine.handle(sell)) == [
        NewIndexOrderResponse(
            ClientOrderId("S1"), RequestStatus.NEW, "reduced the buy by 80.9616 USDC"
        ),
        CancelIndexOrderResponse(
            ClientOrderId("S1"),
            RequestStatus.CANCELED,
            "done: nothing left to sell (reduced the buy by 80.9616 USDC; none of its index "
            "units sold)",
        ),
    ]
    assert update.amount == D("519.0384") and ledger.ready_available() == D("480.9616")
    # Cancelling the rest removes the order and frees all the collateral.
    engine.handle(CancelIndexOrderRequest(ALICE, ClientOrderId("A1"), IDX, D("519.0384")))
    assert engine.orders.open_count() == 0
    assert ledger.reservations == {} and ledger.ready_available() == D(1000)
    assert engine.collateral.unspent(ALICE) == D(1000)


def test_a_buy_cancel_beyond_usdc_decimals_is_refused_with_no_change() -> None:
    # The wire's cancel names no side and admits a sell's 18 decimals; a buy's names USDC.
    engine, _ = ready_engine()
    ledger = engine.collateral.ledger(ALICE)
    out = engine.handle(CancelIndexOrderRequest(ALICE, ClientOrderId("A1"), IDX, D("1.0000001")))
    assert messages(out) == [
        CancelIndexOrderResponse(
            ClientOrderId("A1"),
            RequestStatus.REJECTED,
            "amount: at most 6 decimals (USDC) for a buy",
        )
    ]
    update = engine.orders.update(ALICE, ClientOrderId("A1"))
    assert update is not None and update.amount == D(1000)
    assert ledger.reservations[ClientOrderId("A1")].gross == D(1000)


def test_sell_beyond_the_unengaged_part_while_engaged_reduces_it_and_says_why() -> None:
    # SPEC §3. Only 10 BBB visible: A1 (1000) is cut to q = 10, engaged 40.40 × 10 × 1.002 =
    # 404.808, so 595.192 is not engaged. A sell of 1000 index units (40,480.8 USDC at the buy
    # limit) reduces those 595.192 and says why the other units were not redeemed (no flip
    # while something is engaged); the engaged part stays in its batch.
    engine, clock = ready_engine()
    engine.handle(BookSnapshot(BBB, ((D("19.9"), D("100")),), ((D("20"), D("10")),)))
    engine.handle(Tick(clock.now()))
    update = engine.orders.update(ALICE, ClientOrderId("A1"))
    assert update is not None and update.status is OrderStatus.ENGAGED
    assert update.engaged == D("404.808")
    sell = NewIndexOrderRequest(ALICE, ClientOrderId("S1"), IDX, Side.SELL, D("1000"))
    (response, final) = messages(engine.handle(sell))
    left = round_index_down(D(1000) - D("595.192") / (D("40.4") * D("1.002")))
    assert final == CancelIndexOrderResponse(
        ClientOrderId("S1"),
        RequestStatus.CANCELED,
        f"done: the other {left} index units are not sold (reduced the buy by 595.192 USDC; "
        "none of its index units sold)",
    )
    assert response == NewIndexOrderResponse(
        ClientOrderId("S1"),
        RequestStatus.NEW,
        f"reduced the buy by 595.192 USDC (all not yet engaged); the other {left} index units "
        "were not redeemed: collateral engaged in a batch is released only when the batch "
        "completes",
    )
    assert engine.redemptions.open_redemptions() == []  # nothing flipped
    assert update.amount == D("404.808") and update.remaining == 0
    assert update.status is OrderStatus.ENGAGED
    assert engine.collateral.ledger(ALICE).ready_available() == D("595.192")


# ---------------------------------------------------------------- bad inputs


BAD_CLIENT_REQUESTS: list[tuple[object, str]] = [
    (order(ALICE, "X1", "100", symbol=Symbol("NOPE")), "unknown symbol NOPE"),
    (order(ALICE, "X2", "0"), "amount must be > 0"),
    (order(ALICE, "X3", "-5"), "amount must be > 0"),
    (order(ALICE, "X4", "NaN"), "amount must be > 0"),
    (order(ALICE, "A1", "100"), "duplicate client_order_id A1"),
    (
        NewIndexOrderRequest(BOB, ClientOrderId("B1"), IDX, Side.SELL, D("1e-19")),
        "amount 1E-19 has more than 18 decimals",
    ),
    (
        NewIndexOrderRequest(BOB, ClientOrderId("B2"), IDX, Side.SELL, D("1"), D("-1")),
        "min_proceeds must be >= 0",
    ),
    (
        NewIndexOrderRequest(BOB, ClientOrderId("B3"), IDX, Side.SELL, D("1"), D("0.0000001")),
        "min_proceeds 1E-7 has more than 6 decimals",
    ),
    (
        NewIndexOrderRequest(BOB, ClientOrderId("B4"), IDX, Side.BUY, D("100"), D("1")),
        "min_proceeds applies to a sell (redemption) only",
    ),
    (
        CancelIndexOrderRequest(ALICE, ClientOrderId("A9"), IDX, D("1")),
        "no open order A9 for IDX",
    ),
    (
        CancelIndexOrderRequest(ALICE, ClientOrderId("A1"), IDX, D("NaN")),
        "amount must be > 0",
    ),
    (
        NewQuoteRequest(ALICE, ClientQuoteId("Q1"), Symbol("NOPE"), Side.BUY, D("1")),
        "unknown symbol NOPE",
    ),
    (
        NewQuoteRequest(ALICE, ClientQuoteId("Q2"), IDX, Side.BUY, D("NaN")),
        "amount must be > 0",
    ),
    (CancelQuoteRequest(ALICE, ClientQuoteId("Q9"), IDX), "no open quote Q9 for IDX"),
]


@pytest.mark.parametrize(("request_", "reason"), BAD_CLIENT_REQUESTS)
def test_bad_request_rejected_with_reason_and_no_state_change(
    request_: object, reason: str
) -> None:
    engine, _ = ready_engine()
    before = fingerprint(engine)
    out = engine.handle(request_)  # type: ignore[arg-type]
    (response,) = messages(out)
    assert len(out) == 1
    assert response.status is RequestStatus.REJECTED  # type: ignore[attr-defined]
    assert response.reason == reason  # type: ignore[attr-defined]
    assert fingerprint(engine) == before


BAD_INPUTS: list[tuple[object, str]] = [
    (deposit_event(ALICE, 2, D("5"), Designation("EVM:NOWHERE:USDC")), "InvalidInputError"),
    (deposit_event(ALICE, 2, D("-5"), EXCHANGE_ACCOUNT), "InvariantViolation"),
    (deposit_event(ALICE, 2, D("NaN"), EXCHANGE_ACCOUNT), "InvariantViolation"),
    (BookSnapshot(AAA, ((D("-1"), D("1")),), ()), "InvalidInputError"),
    (TradePrint(AAA, D("10"), D("0")), "InvalidInputError"),
    (HopCompleted(TransferId("T42"), D("1"), D("0")), "unknown_transfer"),
    (HopFailed(TransferId("T42"), "timeout"), "route_failed"),
    (
        ExchangeFill(
            ExchangeOrderId("im-99"),
            AAA,
            VenueOrderId("1"),
            TradeId("t1"),
            D("10"),
            D("1"),
            D("1"),
            D("0"),
            Asset("USDC"),
            T0,
        ),
        "unknown_order_fill",
    ),
    (
        ExchangeOrderClosed(ExchangeOrderId("im-99"), AAA, ExchangeOrderStatus.FILLED),
        "unknown_order_close",
    ),
    (MintConfirmed(PaymentId("P42")), "unknown_mint"),
]


@pytest.mark.parametrize(("event", "code"), BAD_INPUTS)
def test_bad_input_becomes_an_alert_with_no_state_change(event: object, code: str) -> None:
    engine, _ = ready_engine()
    before = fingerprint(engine)
    out = engine.handle(event)  # type: ignore[arg-type]
    assert len(out) == 1 and isinstance(out[0], Alert)
    assert out[0].code == code and out[0].message
    assert fingerprint(engine) == before


def test_repeated_deposit_is_ignored() -> None:
    engine, _ = ready_engine()
    before = fingerprint(engine)
    assert engine.handle(deposit_event(ALICE, 1, D("1000"), EXCHANGE_ACCOUNT)) == []
    assert fingerprint(engine) == before


# ---------------------------------------------------------------- adapter failures contained


def test_exchange_reject_is_an_alert_and_affects_only_the_orders_involved() -> None:
    w = world({BBB: Behaviour(reject="Filter failure: LOT_SIZE")})
    w.deposit(ALICE, D("1012.52"))
    w.deposit(BOB, D("101.5"))  # net 101 → usable 100.798… of AAA
    w.submit(order(ALICE, "A1", "1012.52"))
    w.submit(order(BOB, "B1", "101.5", symbol=ONLYA))
    w.advance(timedelta(seconds=30))
    rejects = [a for a in w.log.alerts if a.code == "exchange_reject"]
    assert rejects and all("BBBUSDC" in a.message and "LOT_SIZE" in a.message for a in rejects)
    # Alice's IDX order cannot fill without BBB: no fill beyond "collateral ready", no mint;
    # while BBB cools down she is told so (once each time it holds her, issue 12 review #5).
    alice_fills = [m for m in w.log.for_client(ALICE) if isinstance(m, IndexOrderFill)]
    assert [f.status for f in alice_fills[:1]] == [FillStatus.COLLATERAL_READY]
    held = alice_fills[1:]
    assert held and all(f.reason_code is HoldCode.COOLING_DOWN for f in held), held
    assert all(f.filled_quantity == 0 and f.reason and "BBBUSDC" in f.reason for f in held)
    update = w.engine.orders.update(ALICE, ClientOrderId("A1"))
    assert update is not None and update.spent == 0
    assert update.status in (OrderStatus.READY, OrderStatus.ENGAGED)
    # Bob's AAA-only order went through to the mint.
    assert any(isinstance(m, MintInvoice) for m in w.log.for_client(BOB))
    assert (ALICE, IDX) not in w.chain.minted
    for client in (ALICE, BOB):
        ledger = w.engine.collateral.ledger(client)
        assert w.engine.collateral.unspent(client) == ledger.deposited - ledger.fees - ledger.spent


def test_bad_hop_report_is_an_alert_and_the_route_still_completes() -> None:
    clock = ManualClock()
    engine = Engine(EngineSetup(BASKETS, rules=RULES), clock)
    (route,) = engine.handle(deposit_event(ALICE, 1, D("100"), Designation("EVM:ARBITRUM:USDC")))
    assert isinstance(route, RouteCollateral) and route.transfer_id == "T1"
    before = fingerprint(engine)
    (alert,) = engine.handle(HopCompleted(TransferId("T1"), D("100.5"), D("0")))
    assert isinstance(alert, Alert) and alert.code == "RouteError"
    assert fingerprint(engine) == before
    (next_hop,) = engine.handle(HopCompleted(TransferId("T1"), D("99.5"), D("0.5")))
    assert next_hop.amount == D("99.5")  # type: ignore[union-attr]
    assert engine.handle(HopCompleted(TransferId("T2"), D("99.5"), D("0"))) == []
    ledger = engine.collateral.ledger(ALICE)
    assert ledger.ready_available() == D("100") and ledger.fees == D("0.5")
    assert engine.collateral.unspent(ALICE) == D("99.5")


def test_failed_hops_retried_then_alert() -> None:
    engine = Engine(EngineSetup(BASKETS, rules=RULES), ManualClock())
    engine.handle(deposit_event(ALICE, 1, D("100"), Designation("EVM:ARBITRUM:USDC")))
    (retry,) = engine.handle(HopFailed(TransferId("T1"), "relayer down"))
    assert retry.transfer_id == "T2"  # type: ignore[union-attr]
    (retry,) = engine.handle(HopFailed(TransferId("T2"), "relayer down"))
    assert retry.transfer_id == "T3"  # type: ignore[union-attr]
    (alert,) = engine.handle(HopFailed(TransferId("T3"), "relayer down"))
    assert isinstance(alert, Alert) and alert.code == "route_failed"
    assert "relayer down" in alert.message


# ---------------------------------------------------------------- journal replay


def test_journal_replay_reproduces_commands_and_state() -> None:
    w = world({AAA: Behaviour(fill_ratio=D("0.5"), splits=2)})
    recorded: list[Command] = []
    w.on_command = recorded.append
    w.deposit(ALICE, D("1012.52"))
    w.deposit(BOB, D("500"))
    w.submit(order(ALICE, "A1", "600"))
    w.submit(order(ALICE, "A2", "412.52"))
    w.submit(order(BOB, "B1", "500", symbol=ONLYA))
    w.submit(NewQuoteRequest(BOB, ClientQuoteId("Q1"), IDX, Side.BUY, D("100")))
    w.submit(order(BOB, "B2", "0"))  # rejected
    w.advance(timedelta(seconds=3))
    w.submit(CancelIndexOrderRequest(ALICE, ClientOrderId("A2"), IDX, D("12.52")))
    w.advance(timedelta(seconds=40))
    assert recorded, "the scenario produced commands"
    assert any(isinstance(c, PlaceExchangeOrder) for c in recorded)

    entries = list(w.engine.journal.entries())
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert any(isinstance(c, SendToClient) and isinstance(c.message, MintInvoice) for c in recorded)
    # The replaying engine's clock never moves: each entry's journalled time drives it.
    fresh = Engine(EngineSetup(BASKETS, rules=RULES), ManualClock())
    replayed = fresh.replay(entries)
    assert replayed == recorded
    assert repr(replayed) == repr(recorded)  # same digits and exponents, not just equal values
    assert fingerprint(fresh) == fingerprint(w.engine)
    assert list(fresh.journal.entries()) == []  # a replay is not journalled again


def test_every_input_is_journalled_even_when_refused() -> None:
    engine, _ = ready_engine()
    before = len(list(engine.journal.entries()))
    engine.handle(order(ALICE, "X", "0"))
    engine.handle(MintConfirmed(PaymentId("nope")))
    entries = list(engine.journal.entries())
    assert len(entries) == before + 2
    assert entries[-1].event == MintConfirmed(PaymentId("nope"))


def test_batch_ids_sequence() -> None:
    w = world()
    w.deposit(ALICE, D("1012.52"))
    w.submit(order(ALICE, "A1", "1012.52"))
    w.advance(timedelta(seconds=30))
    created = [b.batch_id for b in w.log.batches if b.kind == "created"]
    completed = [b.batch_id for b in w.log.batches if b.kind == "completed"]
    assert created == completed == [BatchId(i) for i in range(1, len(created) + 1)]


def test_partly_mintable_order_stays_mintable_after_a_cancel_of_its_unfilled_part() -> None:
    # 3000.5 deposited, 0.5 Across fee: net 3000 → q = 3000 / 1.002 / 40.40 ≈ 74.11 (no cut).
    # BBB fills only 99.5%: fill rate 0.995 → partly mintable, minted after 10 s idle. The
    # unfilled 0.5% (~15 USDC) is more than the minimum order, but it was engaged, not fresh:
    # a cancel of 1 USDC meanwhile must not send the update back to Ready (SPEC §3).
    w = world({BBB: Behaviour(fill_ratio=D("0.995"))})
    w.deposit(ALICE, D("3000.5"))
    w.submit(order(ALICE, "A1", "3000.5"))
    w.advance(timedelta(seconds=5))
    update = w.engine.orders.update(ALICE, ClientOrderId("A1"))
    assert update is not None and update.status is OrderStatus.PARTLY_MINTABLE
    rate = update.fill_rate  # ~0.995 (the venue rounds the partial fill to its own units)
    assert D("0.99") < rate < D("0.9999") and update.engageable > 10
    w.submit(CancelIndexOrderRequest(ALICE, ClientOrderId("A1"), IDX, D("1")))
    assert update.status is OrderStatus.PARTLY_MINTABLE
    w.advance(timedelta(seconds=12))
    invoice = w.log.for_client(ALICE)[-1]
    assert isinstance(invoice, MintInvoice) and invoice.fill_rate == round_rate(rate)
    assert len({o.batch_id for o in w.log.exchange_orders}) == 1  # never engaged again
    assert w.log.alerts == []


def test_the_mint_carries_the_invoice_terms_hash_and_the_invoice_names_the_mint_tx() -> None:
    sent: list[MintIndex] = []

    class TxChain(SimulatedChain):
        """Confirms each mint with a transaction hash, as a real chain does."""

        def mint(self, command: MintIndex) -> tuple[timedelta, MintConfirmed] | None:
            sent.append(command)
            result = super().mint(command)
            assert result is not None
            return result[0], MintConfirmed(command.payment_id, TxHash("0x" + "ab" * 32))

    w = world(chain_kind=TxChain)
    w.deposit(ALICE, D("1012.52"))
    w.submit(order(ALICE, "A1", "1012.52"))
    w.advance(timedelta(seconds=60))
    invoice = w.log.for_client(ALICE)[-1]
    assert isinstance(invoice, MintInvoice)
    (command,) = sent
    # The hash sent to the chain is the hash of the invoice's terms, which the client can
    # recompute from the invoice it received (time, position, hashes left out).
    assert command.invoice_hash == invoice.invoice_hash == invoice_hash(invoice)
    assert invoice.invoice_hash is not None and len(invoice.invoice_hash) == 66
    assert invoice.mint_tx_hash == "0x" + "ab" * 32
    # Any change to a term changes the hash.
    assert invoice_hash(replace(invoice, filled_quantity=D(24))) != invoice.invoice_hash
    assert invoice_hash(replace(invoice, timestamp=invoice.timestamp + timedelta(1))) == (
        invoice.invoice_hash
    )
    # ... from the body alone, as the FIX server sent it and a client saved it (lots and all).
    body = json.loads(json.dumps(response_body(invoice)[2]))
    assert invoice.lots and terms_hash(body) == invoice.invoice_hash
    edited_lots = [{**body["lots"][0], "price": "1"}, *body["lots"][1:]]
    assert terms_hash({**body, "lots": edited_lots}) != invoice.invoice_hash
    # The basket version is a term: the same units on another basket are another invoice.
    assert body["basket_version"] == 1
    assert terms_hash({**body, "basket_version": 2}) != invoice.invoice_hash
    assert invoice_hash(replace(invoice, basket_version=2)) != invoice.invoice_hash
