"""The venue side of the event contract in the engine: commissions in any asset, late fills,
status unknown → reconcile, order reports, rules updates, invalid books, rate-limit feedback,
and mint failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from indexmaker.core.clock import ManualClock
from indexmaker.core.events import (
    Alert,
    BookInvalid,
    BookSnapshot,
    DepositObserved,
    ExchangeFill,
    ExchangeOrderReport,
    ExchangeOrderStatus,
    ExchangeOrderStatusUnknown,
    InstrumentStatus,
    MintFailed,
    MintIndex,
    NewIndexOrderRequest,
    PlaceExchangeOrder,
    QueryExchangeOrder,
    RateLimitFeedback,
    RulesUpdate,
    Tick,
)
from indexmaker.core.ids import (
    Asset,
    ClientOrderId,
    PaymentId,
    Symbol,
    TradeId,
    TxHash,
    Venue,
    VenueOrderId,
    client_key,
    instrument,
)
from indexmaker.core.money import money_context
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.engine import EXCHANGE_ACCOUNT, Engine, EngineSetup
from indexmaker.engine.throttle import RateLimit
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.index import Basket, BasketAsset
from indexmaker.model.order import OrderStatus
from indexmaker.model.side import Side
from indexmaker.sim.chain import SimulatedChain
from indexmaker.sim.exchange import Behaviour, SimulatedExchange
from indexmaker.sim.world import SimulatedWorld

D = Decimal
ALICE = client_key(8453, "0x" + "a" * 40)
AAA, BNB = instrument("AAAUSDC"), instrument("BNBUSDC")
IDX = Symbol("IDX")
BASKETS = {"IDX": Basket(IDX, (BasketAsset(AAA, D("1")),))}
# Known rules with every filter disabled (SPEC §6: a symbol without known rules is not traded).
RULES = {AAA: InstrumentRules(AAA, "AAA", "USDC")}
BOOKS = {AAA: ([(D("9.9"), D("1000"))], [(D("10"), D("1000"))])}


def started_engine(config: SolverConfig | None = None) -> tuple[Engine, ManualClock]:
    """Alice's order of 1000 is engaged: one AAA order placed (im-1)."""
    clock = ManualClock()
    engine = Engine(EngineSetup(BASKETS, config or SolverConfig(), rules=RULES), clock)
    engine.handle(BookSnapshot(AAA, *(tuple(side) for side in BOOKS[AAA])))
    engine.handle(DepositObserved(ALICE, 1, D("1000"), EXCHANGE_ACCOUNT, TxHash("0x01"), 0, 1, 12))
    engine.handle(NewIndexOrderRequest(ALICE, ClientOrderId("A1"), IDX, Side.BUY, D("1000")))
    clock.advance(timedelta(milliseconds=100))
    placed = [c for c in engine.handle(Tick(clock.now())) if isinstance(c, PlaceExchangeOrder)]
    assert [p.order_id for p in placed] == ["im-1"]
    return engine, clock


def fill(
    trade: str, quantity: str, commission: str, asset: str, order: str = "im-1"
) -> ExchangeFill:
    return ExchangeFill(
        order, AAA, VenueOrderId("v1"), TradeId(trade), D("10"), D(quantity), D(quantity),
        D(commission), Asset(asset), datetime(2025, 10, 1, tzinfo=UTC),
    )  # fmt: skip


def test_base_asset_commission_reduces_the_lot_and_costs_what_was_paid() -> None:
    engine, _ = started_engine()
    engine.handle(fill("t1", "10", "0.01", "AAA"))
    (lot,) = engine.inventory.lots(AAA)
    assert lot.quantity == D("9.99")  # what actually arrived in the account
    assert lot.fee == D("0.1")  # the commission's value at the fill price
    assert lot.quantity * lot.price + lot.fee == D("100")  # exactly the USDC paid


def test_quote_commission_is_the_fee_and_another_asset_is_priced_in_usdc() -> None:
    engine, _ = started_engine()
    engine.handle(fill("t1", "1", "0.01", "USDC"))
    engine.handle(BookSnapshot(BNB, ((D("599"), D("1")),), ((D("601"), D("1")),)))
    engine.handle(fill("t2", "1", "0.0001", "BNB"))
    first, second = engine.inventory.lots(AAA)
    assert (first.quantity, first.fee) == (D("1"), D("0.01"))
    assert (second.quantity, second.fee) == (D("1"), D("0.0600"))  # 0.0001 BNB at mid 600


def test_unpriced_commission_asset_still_opens_the_lot_and_alerts() -> None:
    engine, _ = started_engine()
    out = engine.handle(fill("t1", "1", "0.5", "XYZ"))
    assert [a.code for a in out if isinstance(a, Alert)] == ["commission_unpriced"]
    (lot,) = engine.inventory.lots(AAA)
    assert (lot.quantity, lot.fee) == (D("1"), D("0"))


def test_late_fill_after_the_batch_completed_opens_a_lot_the_next_batch_uses() -> None:
    world = SimulatedWorld(
        EngineSetup(BASKETS, rules=RULES),
        SimulatedExchange(dict(BOOKS), behaviour={AAA: Behaviour(fill_ratio=D("0.5"))}),
        SimulatedChain(),
    )
    world.submit(DepositObserved(ALICE, 1, D("1000"), EXCHANGE_ACCOUNT, TxHash("0x1"), 0, 1, 12))
    world.submit(NewIndexOrderRequest(ALICE, ClientOrderId("A1"), IDX, Side.BUY, D("1000")))
    world.advance(timedelta(milliseconds=200))  # batch 1 placed, half filled, closed
    engine = world.engine
    assert engine.batches.get(1) is None  # type: ignore[arg-type]
    first = world.log.exchange_orders[0]
    late = fill("late-1", "5", "0.05", "USDC", order=first.order_id)
    world.submit(late)
    assert [a.code for a in world.log.alerts] == ["late_fill"]
    lot = next(lot for lot in engine.inventory.lots(AAA) if lot.trade_id == "late-1")
    assert lot.quantity == D("5") and lot.reserved_by is None
    world.submit(late)  # the same trade again: recognised, not a second lot
    assert [lot.trade_id for lot in engine.inventory.lots(AAA)].count(TradeId("late-1")) == 1
    world.run_until(lambda: engine.orders.open_count() == 0, timedelta(seconds=30))
    assert lot.free == 0 and lot.assigned == D("5")  # the next batch used it first


def test_status_unknown_asks_the_venue_and_its_report_settles_the_order() -> None:
    engine, _ = started_engine()
    out = engine.handle(ExchangeOrderStatusUnknown("im-1", AAA, "timeout"))  # type: ignore[arg-type]
    assert out == [QueryExchangeOrder("im-1", AAA)]  # type: ignore[arg-type]
    tracked = engine.tracker.get("im-1")  # type: ignore[arg-type]
    assert tracked is not None and tracked.status is ExchangeOrderStatus.UNKNOWN
    engine.handle(fill("t1", "100", "0", "USDC"))
    engine.handle(
        ExchangeOrderReport("im-1", AAA, ExchangeOrderStatus.EXPIRED, D("100"))  # type: ignore[arg-type]
    )
    assert tracked.status is ExchangeOrderStatus.EXPIRED
    assert engine.batches.open_batches() == []  # the batch completed on the report


def test_a_report_of_an_order_the_venue_never_saw_closes_it_rejected() -> None:
    engine, _ = started_engine()
    engine.handle(ExchangeOrderStatusUnknown("im-1", AAA, "connection reset"))  # type: ignore[arg-type]
    out = engine.handle(ExchangeOrderReport("im-1", AAA, None, D("0")))  # type: ignore[arg-type]
    assert [a.code for a in out if isinstance(a, Alert)] == ["exchange_reject"]
    update = engine.orders.update(ALICE, ClientOrderId("A1"))
    assert update is not None and update.status is OrderStatus.READY and update.spent == 0


def test_an_order_the_venue_never_saw_keeps_why_its_status_was_unknown() -> None:
    """The place's own failure is the cause (issue 12 review: /v1/exchange-orders showed only
    the order id); the venue's "no such order" follows it."""
    engine, _ = started_engine()
    why = "place refused: binance: local rate limit"
    engine.handle(ExchangeOrderStatusUnknown("im-1", AAA, why))  # type: ignore[arg-type]
    out = engine.handle(
        ExchangeOrderReport("im-1", AAA, None, D("0"), reason="the venue does not know it")  # type: ignore[arg-type]
    )
    tracked = engine.tracker.get("im-1")  # type: ignore[arg-type]
    assert tracked is not None and tracked.status is ExchangeOrderStatus.REJECTED
    assert tracked.reason == f"{why}; the venue does not know it"
    (alert,) = [a for a in out if isinstance(a, Alert) and a.code == "exchange_reject"]
    assert why in alert.message


def test_report_of_more_fills_than_received_alerts() -> None:
    engine, _ = started_engine()
    out = engine.handle(
        ExchangeOrderReport("im-1", AAA, ExchangeOrderStatus.FILLED, D("3"))  # type: ignore[arg-type]
    )
    assert "fills_missing" in [a.code for a in out if isinstance(a, Alert)]


def test_rules_update_replaces_the_instruments_rules() -> None:
    engine, _ = started_engine()
    rules = InstrumentRules(AAA, "AAA", "USDC", tick_size=D("0.1"))
    engine.handle(RulesUpdate(rules))
    assert engine.solver.rules[AAA] is rules


def test_an_invalid_book_stops_pricing_until_the_next_snapshot() -> None:
    engine, _ = started_engine()
    engine.handle(BookInvalid(AAA, "sequence gap"))
    assert engine.market.limit_price(AAA, Side.BUY, D("0.01")) is None
    engine.handle(BookSnapshot(AAA, ((D("9"), D("1")),), ((D("11"), D("1")),)))
    assert engine.market.limit_price(AAA, Side.BUY, D("0")) == D("11")


def test_rate_limit_feedback_charges_usage_and_blocks_orders() -> None:
    config = SolverConfig(order_rate_limits=(RateLimit("orders_10s", 10, timedelta(seconds=10)),))
    engine, clock = started_engine(config)
    engine.handle(RateLimitFeedback(Venue("binance"), "orders_10s", 10))
    assert engine.tracker.limiter.headroom(clock.now()) == {"orders_10s": 0}
    out = engine.handle(
        RateLimitFeedback(Venue("binance"), retry_after=timedelta(seconds=30), reason="429")
    )
    assert [a.code for a in out if isinstance(a, Alert)] == ["rate_limited"]
    assert engine.tracker.limiter.blocked_until == clock.now() + timedelta(seconds=30)


def test_a_failed_mint_is_retried_with_the_same_payment_id_then_left_to_the_operator() -> None:
    engine, clock = started_engine(SolverConfig(price_threshold=D(0)))
    tracked = engine.tracker.get("im-1")  # type: ignore[arg-type]
    assert tracked is not None
    quantity = tracked.command.quantity  # 998.004 / 10: the whole order at the limit
    engine.handle(fill("t1", str(quantity), str(D(1000) - quantity * 10), "USDC"))
    engine.handle(
        ExchangeOrderReport("im-1", AAA, ExchangeOrderStatus.FILLED, quantity)  # type: ignore[arg-type]
    )
    clock.advance(timedelta(milliseconds=100))
    mints = [c for c in engine.handle(Tick(clock.now())) if isinstance(c, MintIndex)]
    assert [m.payment_id for m in mints] == ["P1"]
    retries = []
    for _ in range(2):
        retries += engine.handle(MintFailed(PaymentId("P1"), "nonce too low"))
    assert retries == [mints[0], mints[0]]
    (alert,) = engine.handle(MintFailed(PaymentId("P1"), "nonce too low"))
    assert isinstance(alert, Alert) and alert.code == "mint_failed" and "3 attempt" in alert.message
    update = engine.orders.update(ALICE, ClientOrderId("A1"))
    assert update is not None and update.status is OrderStatus.MINTING


def test_a_fill_whose_cumulative_quantity_skips_an_execution_starts_a_reconciliation() -> None:
    engine, _ = started_engine()
    first = fill("t1", "10", "0", "USDC")
    engine.handle(first)
    skipped = ExchangeFill(
        first.order_id, AAA, VenueOrderId("v1"), TradeId("t3"), D("10"), D("5"), D("20"),
        D("0"), Asset("USDC"), first.event_time,
    )  # fmt: skip
    out = engine.handle(skipped)  # t2 (5 units) never arrived: 10 + 5 received, venue says 20
    assert [a.code for a in out if isinstance(a, Alert)] == ["fills_missing"]
    assert QueryExchangeOrder("im-1", AAA) in out  # type: ignore[arg-type]
    again = ExchangeFill(
        first.order_id, AAA, VenueOrderId("v1"), TradeId("t4"), D("10"), D("1"), D("21"),
        D("0"), Asset("USDC"), first.event_time,
    )  # fmt: skip
    assert not [c for c in engine.handle(again) if isinstance(c, QueryExchangeOrder)]  # once


def test_a_venue_charging_commission_in_the_base_asset_is_booked_at_what_arrived() -> None:
    exchange = SimulatedExchange(
        dict(BOOKS), behaviour={AAA: Behaviour(commission_in_base=True, splits=2)}
    )
    world = SimulatedWorld(EngineSetup(BASKETS, rules=RULES), exchange, SimulatedChain())
    fills: list[ExchangeFill] = []
    execute = exchange.execute

    def recording(order: PlaceExchangeOrder, now: datetime) -> list[object]:
        events = execute(order, now)
        fills.extend(e for e in events if isinstance(e, ExchangeFill))
        return events  # type: ignore[return-value]

    exchange.execute = recording  # type: ignore[method-assign,assignment]
    world.submit(DepositObserved(ALICE, 1, D("1000"), EXCHANGE_ACCOUNT, TxHash("0x1"), 0, 1, 12))
    world.submit(NewIndexOrderRequest(ALICE, ClientOrderId("A1"), IDX, Side.BUY, D("1000")))
    world.advance(timedelta(seconds=1))
    assert fills and all(f.commission_asset == "AAA" for f in fills)
    update = world.engine.orders.update(ALICE, ClientOrderId("A1"))
    assert update is not None
    # Lots open in fill order (ids 1, 2, …); the update's assignments describe them.
    lots = {a.lot_id: a for a in update.lots}
    assert sorted(lots) == list(range(1, len(fills) + 1))
    with money_context():  # the engine's 34 digits, not the default 28
        for lot_id, f in enumerate(fills, start=1):
            lot = lots[lot_id]
            assert lot.lot_quantity == f.quantity - f.commission  # what reached the account
            assert lot.lot_quantity * lot.price + lot.lot_fee == f.quantity * f.price  # paid
    with money_context():
        arrived = sum((a.lot_quantity for a in lots.values()), D(0))
        assert update.filled_quantity <= arrived  # never more index units than arrived


def test_listing_changes_alert_the_operator_once_per_change_and_are_counted() -> None:
    engine, _ = started_engine()
    halted = engine.handle(InstrumentStatus(AAA, False, "HALT"))
    assert [(a.code, a.message) for a in halted if isinstance(a, Alert)] == [
        ("instrument_halted", "binance:AAAUSDC: HALT at the venue; taken out of new batches")
    ]
    assert engine.handle(InstrumentStatus(AAA, False, "HALT")) == []  # nothing new
    assert engine.listings.not_trading == {AAA: "HALT"}
    delisted = engine.handle(InstrumentStatus(AAA, False, "delisted"))
    assert [a.code for a in delisted if isinstance(a, Alert)] == ["instrument_halted"]
    back = engine.handle(InstrumentStatus(AAA, True, "TRADING"))
    assert [(a.code, a.message) for a in back if isinstance(a, Alert)] == [
        ("instrument_trading", "binance:AAAUSDC: trading again (was delisted)")
    ]
    assert engine.listings.not_trading == {}
    assert engine.handle(InstrumentStatus(BNB, True, "TRADING")) == []  # never stopped
