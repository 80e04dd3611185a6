"""engine/index_orders.py: the client order ledger (SPEC §3)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from indexmaker.core.events import CancelIndexOrderRequest, NewIndexOrderRequest
from indexmaker.core.ids import ClientKey, ClientOrderId, Symbol, client_key
from indexmaker.engine.index_orders import IndexOrderManager, OrderRejected
from indexmaker.model.collateral import Reservation
from indexmaker.model.order import OrderStatus, OrderUpdate
from indexmaker.model.side import Side

D = Decimal
NOW = datetime(2025, 10, 1, tzinfo=UTC)
ALICE = client_key(42161, "0x" + "a" * 40)
BOB = client_key(42161, "0x" + "b" * 40)
SY100 = Symbol("SY100")
SYAI = Symbol("SYAI")


def walk(update: OrderUpdate, *states: OrderStatus) -> None:
    """Move an update along legal transitions (the only way its status changes)."""
    for state in states:
        update.move_to(state)


def new(
    client: ClientKey, cid: str, amount: str, side: Side = Side.BUY, symbol: Symbol = SY100
) -> NewIndexOrderRequest:
    return NewIndexOrderRequest(client, ClientOrderId(cid), symbol, side, D(amount))


def add(m: IndexOrderManager, request: NewIndexOrderRequest) -> OrderUpdate:
    m.check_new(request)
    return m.add(request, NOW)


def cancel(
    client: ClientKey, cid: str, amount: str, symbol: Symbol = SY100
) -> CancelIndexOrderRequest:
    return CancelIndexOrderRequest(client, ClientOrderId(cid), symbol, D(amount))


# ---------------------------------------------------------------- new orders


def test_add_creates_order_and_update() -> None:
    m = IndexOrderManager()
    update = add(m, new(ALICE, "A1", "1000"))
    assert (update.status, update.amount, update.arrival, update.received_at) == (
        OrderStatus.OPEN,
        D(1000),
        1,
        NOW,
    )
    order = m.find(ALICE, SY100)
    assert order is not None and list(order.updates) == [update]
    assert m.update(ALICE, ClientOrderId("A1")) is update
    assert m.open_count() == 1
    assert m.is_active(update)


def test_duplicate_client_order_id_rejected() -> None:
    m = IndexOrderManager()
    add(m, new(ALICE, "A1", "1000"))
    with pytest.raises(OrderRejected, match="duplicate client_order_id A1"):
        m.check_new(new(ALICE, "A1", "5"))
    # Also for another symbol: ids are per client.
    with pytest.raises(OrderRejected, match="duplicate"):
        m.check_new(new(ALICE, "A1", "5", symbol=SYAI))
    # Another client may use the same id.
    m.check_new(new(BOB, "A1", "10"))


def test_duplicate_rejected_after_a_rejection_and_after_removal() -> None:
    m = IndexOrderManager()
    with pytest.raises(OrderRejected) as info:
        m.check_new(new(ALICE, "A1", "0"))
    assert info.value.reason == "amount must be > 0"
    assert info.value.status is OrderStatus.INVALID_ORDER
    m.reject_id(ALICE, ClientOrderId("A1"))
    with pytest.raises(OrderRejected, match="duplicate"):
        m.check_new(new(ALICE, "A1", "10"))
    # A finished (removed) update's id is still never reusable.
    update = add(m, new(ALICE, "A2", "10"))
    m.remove(update)
    with pytest.raises(OrderRejected, match="duplicate"):
        m.check_new(new(ALICE, "A2", "10"))


@pytest.mark.parametrize("amount", ["0", "-1", "NaN", "sNaN", "Infinity"])
def test_bad_amount_rejected(amount: str) -> None:
    m = IndexOrderManager()
    with pytest.raises(OrderRejected):
        m.check_new(new(ALICE, "A1", amount))


def test_updates_for_same_symbol_queue_on_one_order() -> None:
    m = IndexOrderManager()
    u1 = add(m, new(ALICE, "A1", "100"))
    u2 = add(m, new(ALICE, "A2", "50"))
    order = m.find(ALICE, SY100)
    assert order is not None and list(order.updates) == [u1, u2]
    assert order.arrival == 1
    assert (u1.arrival, u2.arrival) == (1, 2)


# ---------------------------------------------------------------- activation


def test_one_active_order_per_client_fifo() -> None:
    m = IndexOrderManager()
    a_sy100 = add(m, new(ALICE, "A1", "100"))
    b_sy100 = add(m, new(BOB, "B1", "100"))
    a_syai = add(m, new(ALICE, "A2", "100", symbol=SYAI))
    active = m.active_orders()
    # One per client, in arrival order; Alice's SYAI order waits behind her SY100 order.
    assert [(o.client, o.symbol) for o in active] == [(ALICE, SY100), (BOB, SY100)]
    assert m.is_active(a_sy100) and m.is_active(b_sy100) and not m.is_active(a_syai)
    m.remove(a_sy100)
    assert m.find(ALICE, SY100) is None
    # Her next order starts; engagement order is still by arrival (Bob's 2 before her 3).
    assert [(o.client, o.symbol) for o in m.active_orders()] == [(BOB, SY100), (ALICE, SYAI)]
    assert m.is_active(a_syai)


def test_arrival_order_follows_first_remaining_update() -> None:
    m = IndexOrderManager()
    a1 = add(m, new(ALICE, "A1", "100"))  # 1
    add(m, new(BOB, "B1", "100"))  # 2
    add(m, new(ALICE, "A2", "100"))  # 3
    m.remove(a1)
    # Alice's order now arrives with A2 (3), after Bob's (2).
    assert [o.client for o in m.active_orders()] == [BOB, ALICE]


def test_all_updates_and_removal_of_last_client_order() -> None:
    m = IndexOrderManager()
    u = add(m, new(ALICE, "A1", "100"))
    assert list(m.all_updates()) == [u]
    m.remove(u)
    assert m.open_count() == 0
    assert m.active_orders() == []
    m.remove(u)  # idempotent


# ---------------------------------------------------------------- cancel


def test_cancel_takes_newest_first() -> None:
    m = IndexOrderManager()
    u1 = add(m, new(ALICE, "A1", "100"))
    u2 = add(m, new(ALICE, "A2", "50"))
    order = m.check_cancel(cancel(ALICE, "A1", "70"))
    reductions = m.reduce(order, D("70"))
    # 50 from A2 (newest, removed entirely), then 20 from A1.
    assert [(r.update.client_order_id, r.amount, r.removed) for r in reductions] == [
        ("A2", D(50), True),
        ("A1", D(20), False),
    ]
    assert u2.status is OrderStatus.CANCELLED
    assert m.update(ALICE, ClientOrderId("A2")) is None
    assert u1.amount == D(80) and u1.status is OrderStatus.OPEN
    assert list(order.updates) == [u1]


def test_cancel_more_than_there_is_takes_all() -> None:
    m = IndexOrderManager()
    add(m, new(ALICE, "A1", "100"))
    order = m.check_cancel(cancel(ALICE, "A1", "1000"))
    (reduction,) = m.reduce(order, D("1000"))
    assert reduction.amount == D(100) and reduction.removed
    assert m.find(ALICE, SY100) is None
    assert m.open_count() == 0


def test_cancel_only_not_yet_engaged_collateral() -> None:
    m = IndexOrderManager()
    u1 = add(m, new(ALICE, "A1", "100"))
    u2 = add(m, new(ALICE, "A2", "100"))
    # A1 is engaged: net 100 − fee 1 − spent 9 − engaged 60 = 30 left to cancel.
    walk(u1, OrderStatus.MANAGE_COLLATERAL, OrderStatus.READY, OrderStatus.ENGAGED)
    u1.management_fee = D(1)
    u1.assets_value = D(9)
    u1.reservation = Reservation(gross=D(100), fee=D(1), spent=D(9))
    u1.engaged = D(60)
    # A2 is being minted: nothing of it can be cancelled.
    walk(
        u2,
        OrderStatus.MANAGE_COLLATERAL,
        OrderStatus.READY,
        OrderStatus.FULLY_MINTABLE,
        OrderStatus.MINTING,
    )
    order = m.find(ALICE, SY100)
    assert order is not None
    assert m.reducible(order) == D(30)
    (reduction,) = m.reduce(order, D(50))
    assert (reduction.update, reduction.amount, reduction.removed) == (u1, D(30), False)
    assert u1.amount == D(70) and u1.remaining == 0
    assert m.reducible(order) == 0
    with pytest.raises(OrderRejected, match="nothing to cancel"):
        m.check_cancel(cancel(ALICE, "A1", "1"))


def test_cancel_of_ready_update_without_fills_removes_it() -> None:
    m = IndexOrderManager()
    u = add(m, new(ALICE, "A1", "100"))
    walk(u, OrderStatus.MANAGE_COLLATERAL, OrderStatus.READY)
    u.management_fee = D("0.5")
    order = m.find(ALICE, SY100)
    assert order is not None
    # remaining = 100 − 0.5 = 99.5; taking it all leaves only the fee paid on the way.
    (reduction,) = m.reduce(order, D("99.5"))
    assert reduction.amount == D("99.5") and reduction.removed
    assert u.status is OrderStatus.CANCELLED and u.amount == D("0.5")


def test_cancel_rejections() -> None:
    m = IndexOrderManager()
    add(m, new(ALICE, "A1", "100"))
    with pytest.raises(OrderRejected, match="no open order A9"):
        m.check_cancel(cancel(ALICE, "A9", "1"))
    with pytest.raises(OrderRejected, match="no open order"):
        m.check_cancel(cancel(ALICE, "A1", "1", symbol=SYAI))
    with pytest.raises(OrderRejected, match="no open order"):
        m.check_cancel(cancel(BOB, "A1", "1"))
    with pytest.raises(OrderRejected, match="amount must be > 0"):
        m.check_cancel(cancel(ALICE, "A1", "0"))


@pytest.mark.parametrize("amount", ["NaN", "Infinity"])
def test_cancel_refuses_non_finite_amount(amount: str) -> None:
    m = IndexOrderManager()
    add(m, new(ALICE, "A1", "100"))
    with pytest.raises(OrderRejected):
        m.check_cancel(cancel(ALICE, "A1", amount))


# ---------------------------------------------------------------- opposite side


def test_sell_terms_are_index_units_and_a_usdc_floor() -> None:
    # A sell names index units (18 decimals) and an optional floor in USDC (6 decimals); it
    # needs no buy order (a redemption), and a buy may not carry a floor.
    m = IndexOrderManager()
    m.check_new(new(ALICE, "S1", "0.000000000000000001", Side.SELL))
    with pytest.raises(OrderRejected, match="more than 18 decimals"):
        m.check_new(new(ALICE, "S2", "0.0000000000000000001", Side.SELL))
    floor = NewIndexOrderRequest(ALICE, ClientOrderId("S3"), SY100, Side.SELL, D(1), D("0.5"))
    m.check_new(floor)
    for bad, reason in (("-1", "min_proceeds must be >= 0"), ("0.1234567", "more than 6")):
        request = NewIndexOrderRequest(ALICE, ClientOrderId("S4"), SY100, Side.SELL, D(1), D(bad))
        with pytest.raises(OrderRejected, match=reason):
            m.check_new(request)
    buy = NewIndexOrderRequest(ALICE, ClientOrderId("A1"), SY100, Side.BUY, D(100), D(1))
    with pytest.raises(OrderRejected, match="min_proceeds applies to a sell"):
        m.check_new(buy)


def test_order_terms_checked_before_acceptance() -> None:
    # SPEC §3: a deposit chain, at most 6 decimals, at least the minimum order (buys).
    m = IndexOrderManager(min_order=D("10"), deposit_chains={42161: "Arbitrum", 8453: "Base"})
    elsewhere = client_key(99999, "0x" + "c" * 40)
    with pytest.raises(OrderRejected) as info:
        m.check_new(new(elsewhere, "X1", "1000"))
    assert info.value.reason == (
        "chain_id 99999 takes no deposits here; supported: 8453 (Base), 42161 (Arbitrum)"
    )
    with pytest.raises(OrderRejected, match=r"^amount 9.999999 is below the minimum order of 10$"):
        m.check_new(new(ALICE, "X2", "9.999999"))
    with pytest.raises(OrderRejected, match=r"^amount 0.000001 is below the minimum order"):
        m.check_new(new(ALICE, "X3", "0.000001"))
    with pytest.raises(OrderRejected, match=r"^amount 10.0000001 has more than 6 decimals$"):
        m.check_new(new(ALICE, "X4", "10.0000001"))
    m.check_new(new(ALICE, "X5", "10"))  # exactly the minimum is accepted
    m.check_new(new(ALICE, "X6", "10.000000000"))  # trailing zeros are not decimals
    assert m.open_count() == 0  # checks never mutate
