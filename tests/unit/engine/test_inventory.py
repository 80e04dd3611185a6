"""engine/inventory.py: FIFO lots, assignment with fee sharing, reservation, disposal."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from indexmaker.core.errors import InvariantViolation
from indexmaker.core.ids import BatchId, ClientOrderId, Symbol, TradeId, instrument
from indexmaker.core.money import money_context
from indexmaker.engine.inventory import InventoryManager
from indexmaker.model.lot import Lot

D = Decimal
NOW = datetime(2025, 10, 1, tzinfo=UTC)
BTC = instrument("BTCUSDC")
ETH = instrument("ETHUSDC")
A1, A2, A3 = ClientOrderId("A1"), ClientOrderId("A2"), ClientOrderId("A3")


def lot(
    inv: InventoryManager, qty: str, price: str = "10", fee: str = "0", asset: Symbol = BTC
) -> Lot:
    return inv.open_lot(asset, TradeId(f"t-{qty}-{price}"), D(price), D(qty), D(fee), NOW, None)


def test_open_lot_numbers_lots_and_keeps_fifo() -> None:
    inv = InventoryManager()
    first = lot(inv, "1")
    second = lot(inv, "2", asset=ETH)
    third = lot(inv, "3")
    assert (first.lot_id, second.lot_id, third.lot_id) == (1, 2, 3)
    assert inv.lots(BTC) == [first, third]
    assert inv.assets() == [BTC, ETH]
    assert first.free == D(1) and first.opened_at == NOW


@pytest.mark.parametrize(
    ("qty", "price", "fee"), [("0", "1", "0"), ("1", "0", "0"), ("1", "1", "-0.1")]
)
def test_open_lot_refuses_bad_execution(qty: str, price: str, fee: str) -> None:
    inv = InventoryManager()
    with pytest.raises(InvariantViolation):
        lot(inv, qty, price, fee)
    assert inv.lots(BTC) == []


def test_free_quantity_and_reservation() -> None:
    inv = InventoryManager()
    lot(inv, "1.5")
    b = lot(inv, "2.5")
    b.reserved_by = BatchId(9)
    assert inv.free_quantity(BTC) == D("1.5")
    assert inv.free_quantity(BTC, unreserved_only=False) == D(4)
    taken = inv.reserve_free(BTC, BatchId(1))
    assert [x.reserved_by for x in taken] == [BatchId(1)]  # b was already held by batch 9
    assert inv.free_quantity(BTC) == 0
    inv.release([*taken, b])
    assert inv.free_quantity(BTC) == D(4)
    assert inv.free_quantity(ETH) == 0


def test_assign_shares_fee_pro_rata_and_last_taker_gets_remainder() -> None:
    inv = InventoryManager()
    x = lot(inv, "3", "20", "1")
    first = inv.assign(x, A1, D(1))
    second = inv.assign(x, A2, D(1))
    third = inv.assign(x, A3, D(1))
    share = D("0." + "3" * 34)  # 1/3 to 34 digits rounded down, whatever the caller's context
    assert first.fee == share and second.fee == share
    assert third.fee == D("0." + "3" * 33 + "4")  # exactly the rest
    assert first.fee + second.fee + third.fee == D(1)
    assert x.assigned == D(3) and x.free == 0 and x.fee_assigned == D(1)
    assert [a.client_order_id for a in x.assignments] == [A1, A2, A3]
    # cost = 1 × 20 + fee
    assert first.cost == D(20) + share
    assert (first.lot_id, first.asset, first.price) == (x.lot_id, BTC, D(20))


def test_assign_exact_pro_rata() -> None:
    inv = InventoryManager()
    x = lot(inv, "40", "10", "0.4")
    # 0.4 × 5/40 = 0.05 and 0.4 × 15/40 = 0.15; the last 20 takes 0.4 − 0.2 = 0.2.
    assert inv.assign(x, A1, D(5)).fee == D("0.05")
    assert inv.assign(x, A2, D(15)).fee == D("0.15")
    assert inv.assign(x, A3, D(20)).fee == D("0.2")


def test_assign_refuses_more_than_free_and_non_positive() -> None:
    inv = InventoryManager()
    x = lot(inv, "1", "10", "0.01")
    inv.assign(x, A1, D("0.4"))
    with pytest.raises(InvariantViolation):
        inv.assign(x, A2, D("0.600001"))
    with pytest.raises(InvariantViolation):
        inv.assign(x, A2, D("0"))
    assert x.assigned == D("0.4") and len(x.assignments) == 1


def test_assign_after_disposal_does_not_take_the_disposed_fee() -> None:
    inv = InventoryManager()
    x = lot(inv, "4", "10", "1")
    assert inv.dispose(BTC, D(1)) == D(1)
    # The last 3 units carry their own share 1 × 3/4, not the disposed unit's 0.25 too.
    assert inv.assign(x, A1, D(3)).fee == D("0.75")


def test_dispose_fifo_skips_reserved() -> None:
    inv = InventoryManager()
    a = lot(inv, "2")
    held = lot(inv, "5")
    held.reserved_by = BatchId(1)
    c = lot(inv, "3")
    assert inv.dispose(BTC, D(4)) == D(4)
    assert (a.disposed, held.disposed, c.disposed) == (D(2), 0, D(2))
    # Only 1 free unreserved unit left: disposing 10 disposes 1.
    assert inv.dispose(BTC, D(10)) == D(1)
    assert inv.free_quantity(BTC) == 0


def test_used_lots_leave_the_front_of_the_queue() -> None:
    inv = InventoryManager()
    a = lot(inv, "1")
    b = lot(inv, "1")
    inv.assign(a, A1, D(1))
    assert inv.free_quantity(BTC) == D(1)
    assert inv.lots(BTC) == [b]  # a was fully used and unreserved
    # A fully used lot still held by a batch stays until released.
    inv.assign(b, A1, D(1))
    b2 = lot(inv, "1")
    b2.reserved_by = BatchId(3)
    inv.assign(b2, A1, D(1))
    inv.free_quantity(BTC)
    assert inv.lots(BTC) == [b2]
    inv.release([b2])
    inv.free_quantity(BTC)
    assert inv.lots(BTC) == []


def test_taking_what_is_free_never_assigns_beyond_the_lot() -> None:
    """Regression (hypothesis): quantity − assigned rounded up in the 34th digit, so taking
    `free` assigned 1.386…668 of a 1.386…667 lot. The remainder is now exact."""
    with money_context():
        inv = InventoryManager()
        x = inv.open_lot(BTC, TradeId("t"), D(20), D("4.16") / 3, D("0.001"), NOW, None)
        assert x.quantity == D("1.386666666666666666666666666666667")
        inv.assign(x, A1, D("0.0004622554941117565708776246749695000"))
        rest = x.free
        # The exact remainder has more digits than the context; a 34-digit one rounded up.
        assert rest == D("1.3862044111725549100957890419916975")
        assert rest < D("1.386204411172554910095789041991698")
        inv.assign(x, A2, rest)
        assert x.assigned == x.quantity and x.free == 0
        assert sum((a.quantity for a in x.assignments), D(0)) <= x.quantity
        # The last taker gets exactly the fee not yet assigned: the shares add up to the fee.
        assert x.fee_assigned == x.fee


def test_fee_share_rounds_down_never_above_the_fee_left() -> None:
    with money_context():
        inv = InventoryManager()
        x = lot(inv, "3", "20", "2")
        first = inv.assign(x, A1, D(1))
        # 2/3 to 34 digits rounded down (half-even gives …667, above the exact share).
        assert first.fee == D("0.6666666666666666666666666666666666")
        second = inv.assign(x, A2, D(1))
        # Cumulative: 4/3 rounded down (1.33…3, 33 decimals) less what the first got.
        assert second.fee == D("0." + "6" * 33 + "4")
        assert first.fee + second.fee <= x.fee
        assert inv.assign(x, A3, D(1)).fee == D("0." + "6" * 32 + "70")  # exactly the rest
        assert x.fee_assigned == x.fee


def test_fee_shares_of_a_lot_do_not_depend_on_how_it_was_cut() -> None:
    """Issue 10: one taker's fee of a lot is the same in one piece or in several."""
    with money_context():
        whole, cut = InventoryManager(), InventoryManager()
        x, y = lot(whole, "3", "20", "2"), lot(cut, "3", "20", "2")
        one = whole.assign(x, A1, D("2.5")).fee
        pieces = [cut.assign(y, A1, D(q)).fee for q in ("0.7", "1", "0.8")]
        assert sum(pieces, D(0)) == one
        assert whole.assign(x, A2, D("0.5")).fee == cut.assign(y, A2, D("0.5")).fee
