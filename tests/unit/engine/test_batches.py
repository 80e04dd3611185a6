"""engine/batches.py: allocation of lots to a batch's entries (SPEC §4 "Allocation of fills").

Basket IDX = 2 AAA + 1 BBB. Two entries: U1 sized 10 index units, U2 sized 30, so the batch
demands AAA 80 and BBB 40; each entry contributes 1/4 and 3/4 of every asset.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from indexmaker.core.ids import (
    BatchId,
    ClientOrderId,
    ExchangeOrderId,
    Symbol,
    TradeId,
    client_key,
    instrument,
)
from indexmaker.engine.batches import BatchManager
from indexmaker.engine.inventory import InventoryManager
from indexmaker.engine.strategy import BatchPlan, PlannedAssetOrder, PlannedEntry
from indexmaker.model.collateral import Reservation
from indexmaker.model.index import Basket, BasketAsset
from indexmaker.model.lot import Lot
from indexmaker.model.order import OrderStatus, OrderUpdate
from indexmaker.model.side import Side

D = Decimal
NOW = datetime(2025, 10, 1, tzinfo=UTC)
AAA, BBB = instrument("AAAUSDC"), instrument("BBBUSDC")
IDX_SYMBOL = Symbol("IDX")
IDX = Basket(IDX_SYMBOL, (BasketAsset(AAA, D(2)), BasketAsset(BBB, D(1))))
BASKETS = {IDX_SYMBOL: IDX}


def update(cid: str, amount: str = "100000") -> OrderUpdate:
    return OrderUpdate(
        client=client_key(1, "0x" + "a" * 40),
        client_order_id=ClientOrderId(cid),
        symbol=IDX_SYMBOL,
        side=Side.BUY,
        amount=D(amount),
        received_at=NOW,
        arrival=1,
        _status=OrderStatus.READY,
    )


def plan(*sized: tuple[OrderUpdate, str]) -> BatchPlan:
    entries = tuple(PlannedEntry(u, D(q), D("40.40"), D("40.40") * D(q)) for u, q in sized)
    total = sum((D(q) for _, q in sized), D(0))
    orders = (
        PlannedAssetOrder(AAA, D("10.10"), 2 * total, 2 * total, D(0)),
        PlannedAssetOrder(BBB, D("20.20"), total, total, D(0)),
    )
    return BatchPlan(entries, orders, (), total * D("40.40"))


def fill(
    inv: InventoryManager, batch_id: BatchId, asset: Symbol, qty: str, price: str, fee: str
) -> Lot:
    return inv.open_lot(
        asset, TradeId(f"{asset}-{qty}-{price}"), D(price), D(qty), D(fee), NOW, batch_id
    )


def test_create_without_inventory_allocates_nothing() -> None:
    inv = InventoryManager()
    bm = BatchManager(inv)
    u1, u2 = update("U1"), update("U2")
    batch, allocations = bm.create(plan((u1, "10"), (u2, "30")), BASKETS, NOW)
    assert allocations == []
    assert batch.batch_id == 1
    assert batch.positions[AAA].demand == D(80) and batch.positions[BBB].demand == D(40)
    assert batch.engaged == D("1616")  # 40.40 × 40
    assert bm.in_flight() == D("1616")
    assert bm.get(BatchId(1)) is batch and bm.open_batches() == [batch]


def test_allocation_pro_rata_fill_ratio_min_over_assets_fifo_lots() -> None:
    inv = InventoryManager()
    bm = BatchManager(inv)
    u1, u2 = update("U1"), update("U2")
    batch, _ = bm.create(plan((u1, "10"), (u2, "30")), BASKETS, NOW)

    # AAA 40 @ 10 (fee 0.4): AAA at 1/2, BBB at 0 → the fill ratio (min) stays 0.
    a1 = fill(inv, batch.batch_id, AAA, "40", "10", "0.4")
    assert bm.on_lot(batch, a1) == []

    # BBB 10 @ 20 (fee 0.2): BBB at 1/4 → ratio min(1/2, 1/4) = 1/4.
    b1 = fill(inv, batch.batch_id, BBB, "10", "20", "0.2")
    first, second = bm.on_lot(batch, b1)
    # U1: 1/4 × 10 = 2.5 index units: AAA 5 (fee 0.4 × 5/40 = 0.05), BBB 2.5 (0.2 × 2.5/10 = 0.05).
    assert first.entry.update is u1
    assert first.quantity == D("2.5")
    assert first.assets_value == D(100)  # 5 × 10 + 2.5 × 20
    assert first.exchange_fee == D("0.10")
    # U2: 7.5 units: AAA 15 (0.15), BBB 7.5 (the rest of b1: 0.2 − 0.05 = 0.15).
    assert second.entry.update is u2
    assert second.quantity == D("7.5")
    assert second.assets_value == D(300)  # 15 × 10 + 7.5 × 20
    assert second.exchange_fee == D("0.30")
    assert [(a.asset, a.lot_id, a.quantity) for a in second.assignments] == [
        (AAA, a1.lot_id, D(15)),
        (BBB, b1.lot_id, D("7.5")),
    ]
    assert b1.free == 0 and a1.free == D(20)

    # BBB 30 @ 21 (fee 0.63): BBB full (40/40), AAA 1/2 → ratio 1/2: each entry takes another 1/4.
    b2 = fill(inv, batch.batch_id, BBB, "30", "21", "0.63")
    first, second = bm.on_lot(batch, b2)
    # U1: AAA 5 from a1 (0.05); BBB 2.5 FIFO: b1 is used up, so from b2 at 21
    # (fee 0.63 × 2.5/30 = 0.0525).
    assert first.quantity == D("2.5")
    assert first.assets_value == D("102.5")  # 50 + 52.5
    assert first.exchange_fee == D("0.1025")
    # U2: AAA 15 (a1's last 15: 0.4 − 0.25 = 0.15), BBB 7.5 at 21 (0.63 × 7.5/30 = 0.1575).
    assert second.assets_value == D("307.5")  # 150 + 157.5
    assert second.exchange_fee == D("0.3075")
    assert a1.free == 0 and a1.fee_assigned == D("0.4")
    assert batch.entries().__next__().ratio == D("0.5")
    # Collateral spent per entry = Σ value + fee share.
    assert first.entry.spent == D("100.10") + D("102.6025")


def test_partial_progress_never_goes_backwards() -> None:
    inv = InventoryManager()
    bm = BatchManager(inv)
    batch, _ = bm.create(plan((update("U1"), "10")), BASKETS, NOW)
    bm.on_lot(batch, fill(inv, batch.batch_id, BBB, "10", "20", "0"))
    assert bm.on_lot(batch, fill(inv, batch.batch_id, AAA, "10", "10", "0"))  # ratio 1/2
    # More BBB alone cannot raise the ratio while AAA stays at 1/2.
    assert bm.on_lot(batch, fill(inv, batch.batch_id, BBB, "1", "20", "0")) == []


def test_carry_over_released_on_completion_and_used_by_next_batch() -> None:
    inv = InventoryManager()
    bm = BatchManager(inv)
    u1 = update("U1")
    batch, _ = bm.create(plan((u1, "10")), BASKETS, NOW)  # needs AAA 20, BBB 10
    bm.add_order(batch, AAA, ExchangeOrderId("im-1"))
    bm.add_order(batch, BBB, ExchangeOrderId("im-2"))
    assert batch.open_orders == 2
    # AAA fills 30 (more than needed), BBB only 5 → ratio 1/2: U1 takes AAA 10, BBB 5.
    bm.on_lot(batch, fill(inv, batch.batch_id, AAA, "30", "10", "0"))
    (allocation,) = bm.on_lot(batch, fill(inv, batch.batch_id, BBB, "5", "20", "0"))
    assert allocation.quantity == D(5)
    assert inv.free_quantity(AAA) == 0  # still held by the batch
    assert not bm.on_order_closed(batch)
    assert bm.on_order_closed(batch)
    assert bm.complete(batch, NOW) == []  # nobody counted on its surplus
    assert bm.get(batch.batch_id) is None and bm.completed == 1 and bm.in_flight() == 0
    # The unallocated 20 AAA carry over, unreserved.
    assert inv.free_quantity(AAA) == D(20) and inv.free_quantity(BBB) == 0

    # Next batch: U2 sized 5 needs AAA 10 and BBB 5; AAA comes from the carried lot at once.
    u2 = update("U2")
    batch2, allocations = bm.create(plan((u2, "5")), BASKETS, NOW)
    assert batch2.batch_id == 2
    assert allocations == []  # BBB still missing
    assert batch2.positions[AAA].received == D(20)
    assert inv.free_quantity(AAA) == 0  # reserved by batch 2
    (allocation,) = bm.on_lot(batch2, fill(inv, batch2.batch_id, BBB, "5", "20", "0"))
    assert allocation.quantity == D(5)
    assert allocation.assets_value == D(200)  # AAA 10 × 10 + BBB 5 × 20


def test_a_batch_counting_on_an_open_batchs_surplus_waits_for_its_lots() -> None:
    """engine/carry.py: batch 2 counts the 10 AAA batch 1 bought beyond its demand (padding
    still in flight): it buys no AAA, stays open after its own order closes, and takes the
    lot when batch 1 completes."""
    inv = InventoryManager()
    bm = BatchManager(inv)
    batch1, _ = bm.create(plan((update("U1"), "10")), BASKETS, NOW)  # AAA 20, BBB 10
    bm.add_order(batch1, AAA, ExchangeOrderId("im-1"))
    bm.add_order(batch1, BBB, ExchangeOrderId("im-2"))
    bm.on_lot(batch1, fill(inv, batch1.batch_id, AAA, "30", "10", "0"))  # 10 AAA surplus
    u2 = update("U2")
    entries = (PlannedEntry(u2, D(5), D("40.40"), D("202")),)
    orders = (  # AAA 10 counted as carried (batch 1's surplus), BBB 5 bought
        PlannedAssetOrder(AAA, D("10.10"), D(0), D(10), D(10)),
        PlannedAssetOrder(BBB, D("20.20"), D(5), D(5), D(0)),
    )
    batch2, allocations = bm.create(BatchPlan(entries, orders, (), D(202)), BASKETS, NOW)
    assert allocations == [] and batch2.waiting_on == {batch1.batch_id}
    assert batch2.positions[AAA].counted == D(10) and batch2.positions[AAA].received == 0
    bm.add_order(batch2, BBB, ExchangeOrderId("im-3"))
    assert bm.on_lot(batch2, fill(inv, batch2.batch_id, BBB, "5", "20", "0")) == []
    assert not bm.on_order_closed(batch2)  # its order is done, batch 1 is not
    assert not batch2.done
    bm.on_lot(batch1, fill(inv, batch1.batch_id, BBB, "10", "20", "0"))
    bm.on_order_closed(batch1)
    assert bm.on_order_closed(batch1)
    ((waiter, handed),) = bm.complete(batch1, NOW)
    assert waiter is batch2 and waiter.done
    (allocation,) = handed
    assert allocation.entry.update is u2 and allocation.quantity == D(5)
    assert allocation.assets_value == D(200)  # AAA 10 × 10 (batch 1's lot) + BBB 5 × 20
    assert batch2.positions[AAA].received == D(10) and inv.free_quantity(AAA) == 0


def test_carried_lots_alone_fill_at_creation() -> None:
    inv = InventoryManager()
    inv.open_lot(AAA, TradeId("x"), D("10"), D(20), D("0.2"), NOW, None)
    inv.open_lot(BBB, TradeId("y"), D("20"), D(10), D("0.2"), NOW, None)
    bm = BatchManager(inv)
    u = update("U1")
    _, allocations = bm.create(plan((u, "10")), BASKETS, NOW)
    (allocation,) = allocations
    # Everything at once: 10 units, value 20 × 10 + 10 × 20 = 400, fees 0.2 + 0.2.
    assert allocation.quantity == D(10)
    assert allocation.assets_value == D(400) and allocation.exchange_fee == D("0.4")


def test_overspend_guard_scales_the_step_down() -> None:
    inv = InventoryManager()
    bm = BatchManager(inv)
    poor = update("U1", amount="50")  # owns only 50 USDC
    batch, _ = bm.create(plan((poor, "10")), BASKETS, NOW)
    bm.on_lot(batch, fill(inv, batch.batch_id, AAA, "20", "10", "0"))
    (allocation,) = bm.on_lot(batch, fill(inv, batch.batch_id, BBB, "10", "20", "0"))
    # Full ratio would cost 20 × 10 + 10 × 20 = 400 > 50 → step scaled by 50/400 = 1/8:
    # 1.25 units, AAA 2.5, BBB 1.25, value exactly 25 + 25 = 50.
    assert allocation.quantity == D("1.25")
    assert allocation.assets_value == D(50) and allocation.exchange_fee == 0
    assert allocation.entry.ratio == D("0.125")


def test_overspend_guard_counts_the_worst_fee_rate() -> None:
    inv = InventoryManager()
    bm = BatchManager(inv)
    poor = update("U1", amount="404")
    batch, _ = bm.create(plan((poor, "10")), BASKETS, NOW)
    # Fee rate 1% on both lots: 400 of assets cost 404 with fees: exactly affordable.
    bm.on_lot(batch, fill(inv, batch.batch_id, AAA, "20", "10", "2"))
    (allocation,) = bm.on_lot(batch, fill(inv, batch.batch_id, BBB, "10", "20", "2"))
    assert allocation.quantity == D(10)
    assert allocation.assets_value + allocation.exchange_fee == D(404)


def test_nothing_affordable_allocates_nothing() -> None:
    inv = InventoryManager()
    bm = BatchManager(inv)
    broke = update("U1", amount="10")
    broke.assets_value = D(10)
    broke.reservation = Reservation(gross=D(10), fee=D(0), spent=D(10))  # all spent
    batch, _ = bm.create(plan((broke, "10")), BASKETS, NOW)
    bm.on_lot(batch, fill(inv, batch.batch_id, AAA, "20", "10", "0"))
    assert bm.on_lot(batch, fill(inv, batch.batch_id, BBB, "10", "20", "0")) == []
