"""engine/collateral.py: the per-client ledger and the hop-by-hop router."""

from __future__ import annotations

from decimal import Decimal

import pytest

from indexmaker.core.errors import InsufficientFundsError, InvalidInputError, InvariantViolation
from indexmaker.core.events import RouteCollateral
from indexmaker.core.ids import ClientOrderId, Designation, TransferId, client_key
from indexmaker.core.money import USDC_LIMIT, exact_add, money_context
from indexmaker.engine.collateral import ClientLedger, CollateralLot, CollateralManager
from indexmaker.engine.collateral_router import CollateralRouter, Hop, RouteError
from indexmaker.engine.route_holds import merge_lots

D = Decimal
ALICE = client_key(42161, "0x" + "a" * 40)
BOB = client_key(42161, "0x" + "b" * 40)
SRC = Designation("EVM:ARBITRUM:USDC")
MID = Designation("EVM:BASE:USDC")
EX = Designation("BINANCE:ACCOUNT:USDC")
O1, O2, O3 = ClientOrderId("O1"), ClientOrderId("O2"), ClientOrderId("O3")


def ready_lot(
    manager: CollateralManager, seq: int, gross: str, fee: str = "0", client: object = ALICE
) -> CollateralLot:
    lot = manager.on_deposit(client, seq, D(gross), SRC)  # type: ignore[arg-type]
    assert lot is not None
    if D(fee):
        manager.on_hop(lot, EX, D(fee), "across")
    manager.mark_ready(lot)
    return lot


def snapshot(manager: CollateralManager) -> str:
    return repr([(c, manager.ledger(c)) for c in manager.clients()])


def conserved(manager: CollateralManager, client: object = ALICE) -> bool:
    """unspent = deposited − routing fees − spent, exactly."""
    ledger = manager.ledger(client)  # type: ignore[arg-type]
    return manager.unspent(client) == ledger.deposited - ledger.fees - ledger.spent  # type: ignore[arg-type]


# ---------------------------------------------------------------- deposits and hops


def test_deposit_creates_an_unready_lot() -> None:
    m = CollateralManager()
    lot = m.on_deposit(ALICE, 1, D("100"), SRC)
    assert lot is not None
    assert (lot.gross, lot.available, lot.fee, lot.ready, lot.location) == (
        D(100),
        D(100),
        0,
        False,
        SRC,
    )
    ledger = m.ledger(ALICE)
    assert ledger.deposited == D(100)
    assert ledger.in_transit() == D(100)
    assert ledger.ready_available() == 0


def test_deposit_deduplicated_by_sequence_number() -> None:
    m = CollateralManager()
    assert m.on_deposit(ALICE, 7, D("100"), SRC) is not None
    before = snapshot(m)
    # The chain re-delivers seq 7 (even with another amount): ignored, nothing changes.
    assert m.on_deposit(ALICE, 7, D("100"), SRC) is None
    assert m.on_deposit(ALICE, 7, D("5"), SRC) is None
    assert snapshot(m) == before
    assert m.ledger(ALICE).deposited == D(100)
    # Seq numbers are per custody contract (designation): the same number elsewhere is new.
    assert m.on_deposit(ALICE, 7, D("1"), MID) is not None
    assert m.on_deposit(ALICE, 8, D("1"), SRC) is not None
    assert m.ledger(ALICE).deposited == D(102)


@pytest.mark.parametrize("amount", ["0", "-1", "NaN", "Infinity"])
def test_non_positive_deposit_refused_and_not_remembered(amount: str) -> None:
    m = CollateralManager()
    with pytest.raises(InvariantViolation):
        m.on_deposit(ALICE, 1, D(amount), SRC)
    assert m.ledger(ALICE).deposited == 0
    assert m.ledger(ALICE).lots == []


def test_a_deposit_the_route_cannot_carry_exactly_is_refused_whole() -> None:
    """10^15 USDC and more (a local token minted at will: 10^70) is refused naming the limit;
    nothing is credited or remembered. Just below it is an ordinary lot, exact to the micro."""
    m = CollateralManager()
    for amount in (USDC_LIMIT, D("1e70")):
        with pytest.raises(
            InvalidInputError, match=r"^amount: deposit #1 of \d+ USDC .* not below"
        ):
            m.on_deposit(ALICE, 1, amount, SRC)
    assert (m.ledger(ALICE).deposited, m.ledger(ALICE).lots) == (0, [])
    most = USDC_LIMIT - D("0.000001")
    lot = m.on_deposit(ALICE, 1, most, SRC)
    assert lot is not None and m.ledger(ALICE).deposited == most == D("999999999999999.999999")


def test_hop_fees_accumulate_on_lot_and_ledger() -> None:
    m = CollateralManager()
    lot = m.on_deposit(ALICE, 1, D("100"), SRC)
    assert lot is not None
    m.on_hop(lot, MID, D("0.5"), "across")
    m.on_hop(lot, EX, D("0.25"), "wallet")
    assert lot.fee == D("0.75") and lot.net == D("99.25")
    assert lot.location == EX and lot.hops == ["across", "wallet"]
    assert m.ledger(ALICE).fees == D("0.75")
    assert conserved(m)  # 100 − 0.75 − 0 = 99.25 = lot net


@pytest.mark.parametrize("fee", ["-0.01", "100.01"])
def test_impossible_hop_fee_refused_without_change(fee: str) -> None:
    m = CollateralManager()
    lot = m.on_deposit(ALICE, 1, D("100"), SRC)
    assert lot is not None
    before = snapshot(m)
    with pytest.raises(InvariantViolation):
        m.on_hop(lot, MID, D(fee), "across")
    assert snapshot(m) == before


def test_whole_lot_as_fee_is_allowed() -> None:
    m = CollateralManager()
    lot = m.on_deposit(ALICE, 1, D("1"), SRC)
    assert lot is not None
    m.on_hop(lot, MID, D("1"), "across")
    assert lot.net == 0


# ---------------------------------------------------------------- reserve


def test_reserve_fifo_across_lots_with_fee_pro_rata() -> None:
    m = CollateralManager()
    a = ready_lot(m, 1, "100", "1")
    b = ready_lot(m, 2, "50", "0.5")
    r1 = m.reserve(ALICE, O1, D("120"))
    # All of lot a (last taker: its whole fee 1) + 20 of lot b (0.5 × 20/50 = 0.2).
    assert r1.gross == D(120) and r1.fee == D("1.2") and r1.net == D("118.8")
    assert a.available == 0 and a.fee_charged == D(1)
    assert b.available == D(30) and b.fee_charged == D("0.2")
    assert m.ledger(ALICE).lots == [b]  # fully reserved ready lots leave the list
    r2 = m.reserve(ALICE, O2, D("30"))
    # Lot b's last 30: remainder of its fee, 0.5 − 0.2 = 0.3 (= 0.5 × 30/50 here too).
    assert r2.fee == D("0.3")
    assert r1.fee + r2.fee == D("1.5") == m.ledger(ALICE).fees
    assert conserved(m)


def test_last_taker_gets_the_fee_remainder_exactly() -> None:
    with money_context():
        m = CollateralManager()
        lot = ready_lot(m, 1, "3", "1")
        fees = [m.reserve(ALICE, ClientOrderId(f"O{i}"), D(1)).fee for i in range(3)]
    # 1 × 1/3 rounded down to the USDC grid of allocation totals (18 decimals), never above
    # the share; on that grid the reservation's net and change sum exactly (issue 10).
    third = D("0." + "3" * 18)
    assert fees[0] == third and fees[1] == third
    # The last taker gets 1 − 2 × third: the shares sum to the lot's fee with no dust.
    assert fees[2] == D("0." + "3" * 17 + "4")
    assert exact_add(*fees) == D(1) and lot.fee_charged == D(1)


def test_reserve_skips_lots_still_in_transit() -> None:
    m = CollateralManager()
    transit = m.on_deposit(ALICE, 1, D("500"), SRC)
    assert transit is not None
    ready = ready_lot(m, 2, "100")
    assert m.ledger(ALICE).ready_available() == D(100)
    m.reserve(ALICE, O1, D("60"))
    assert transit.available == D(500) and ready.available == D(40)


def test_insufficient_funds_leaves_ledger_unchanged() -> None:
    m = CollateralManager()
    ready_lot(m, 1, "100", "1")
    ready_lot(m, 2, "50", "0.5")
    m.on_deposit(ALICE, 3, D("1000"), SRC)  # in transit: not reservable
    before = snapshot(m)
    with pytest.raises(InsufficientFundsError):
        m.reserve(ALICE, O1, D("150.000001"))
    assert snapshot(m) == before
    assert O1 not in m.ledger(ALICE).reservations
    # Exactly what is ready still works afterwards.
    assert m.reserve(ALICE, O1, D("150")).fee == D("1.5")


def test_reserve_refuses_repeat_and_non_positive() -> None:
    m = CollateralManager()
    ready_lot(m, 1, "100")
    m.reserve(ALICE, O1, D("10"))
    before = snapshot(m)
    with pytest.raises(InvariantViolation):
        m.reserve(ALICE, O1, D("10"))
    with pytest.raises(InvariantViolation):
        m.reserve(ALICE, O2, D("0"))
    assert snapshot(m) == before


def test_clients_are_separate() -> None:
    m = CollateralManager()
    ready_lot(m, 1, "100", client=ALICE)
    with pytest.raises(InsufficientFundsError):
        m.reserve(BOB, O1, D("1"))


# ---------------------------------------------------------------- spend, release, reduce


def test_spend_up_to_net_and_no_further() -> None:
    m = CollateralManager()
    ready_lot(m, 1, "100", "1")
    m.reserve(ALICE, O1, D("100"))  # net 99
    m.spend(ALICE, O1, D("60"))
    m.spend(ALICE, O1, D("39"))  # exactly the net
    with pytest.raises(InvariantViolation):
        m.spend(ALICE, O1, D("0.000001"))
    assert m.ledger(ALICE).reservations[O1].spent == D(99)
    assert m.ledger(ALICE).spent == D(99)
    assert conserved(m)  # 100 − 1 − 99 = 0
    assert m.unspent(ALICE) == 0


def test_spend_refuses_negative_and_unknown() -> None:
    m = CollateralManager()
    ready_lot(m, 1, "100")
    m.reserve(ALICE, O1, D("50"))
    with pytest.raises(InvariantViolation):
        m.spend(ALICE, O1, D("-1"))
    with pytest.raises(InvariantViolation):
        m.spend(ALICE, O2, D("1"))
    assert m.ledger(ALICE).spent == 0


def test_release_returns_change_as_fee_free_ready_lot() -> None:
    m = CollateralManager()
    ready_lot(m, 1, "100", "1")
    m.reserve(ALICE, O1, D("100"))  # net 99
    m.spend(ALICE, O1, D("90"))
    change = m.release(ALICE, O1)
    assert change == D(9)  # 99 − 90
    ledger = m.ledger(ALICE)
    assert O1 not in ledger.reservations
    (lot,) = ledger.lots
    assert (lot.seq_num, lot.gross, lot.fee, lot.ready, lot.available) == (-1, D(9), 0, True, D(9))
    assert conserved(m)
    # The change is reservable again, with no second routing fee.
    assert m.reserve(ALICE, O2, D(9)).fee == 0
    assert m.release(ALICE, O1) == 0  # a second release is a no-op


def test_release_fully_spent_adds_no_lot() -> None:
    m = CollateralManager()
    ready_lot(m, 1, "10")
    m.reserve(ALICE, O1, D("10"))
    m.spend(ALICE, O1, D("10"))
    assert m.release(ALICE, O1) == 0
    assert m.ledger(ALICE).lots == []


def test_reduce_returns_unspent_part() -> None:
    m = CollateralManager()
    ready_lot(m, 1, "100", "1")
    m.reserve(ALICE, O1, D("100"))  # gross 100, fee 1, net 99
    m.spend(ALICE, O1, D("40"))
    m.reduce(ALICE, O1, D("59"))  # all that is unspent: 99 − 40
    reservation = m.ledger(ALICE).reservations[O1]
    assert reservation.gross == D(41) and reservation.fee == D(1) and reservation.net == D(40)
    assert m.ledger(ALICE).ready_available() == D(59)
    assert conserved(m)
    before = snapshot(m)
    with pytest.raises(InvariantViolation):
        m.reduce(ALICE, O1, D("0.000001"))  # nothing unspent left
    with pytest.raises(InvariantViolation):
        m.reduce(ALICE, O1, D("0"))
    with pytest.raises(InvariantViolation):
        m.reduce(ALICE, O2, D("1"))
    assert snapshot(m) == before


def test_unspent_is_conserved_through_a_life() -> None:
    m = CollateralManager()
    lot = m.on_deposit(ALICE, 1, D("1000"), SRC)
    assert lot is not None
    assert m.unspent(ALICE) == D(1000)
    m.on_hop(lot, MID, D("0.5"), "across")
    assert m.unspent(ALICE) == D("999.5")
    m.mark_ready(lot)
    ready_lot(m, 2, "3", "1")
    assert m.unspent(ALICE) == D("1001.5")  # 999.5 + 2
    m.reserve(ALICE, O1, D("700"))
    m.reserve(ALICE, O2, D("1"))
    assert conserved(m)
    m.spend(ALICE, O1, D("123.456789"))
    m.reduce(ALICE, O1, D("100"))
    m.spend(ALICE, O2, D("0.2"))
    m.release(ALICE, O2)
    m.reserve(ALICE, O3, D("2"))
    assert conserved(m)
    # deposited 1003, fees 1.5, spent 123.656789 → 877.843211
    assert m.unspent(ALICE) == D("877.843211")


# ---------------------------------------------------------------- router


def router(max_attempts: int = 3) -> CollateralRouter:
    return CollateralRouter([Hop("across", SRC, MID), Hop("wallet", MID, EX)], EX, max_attempts)


def test_can_route() -> None:
    r = router()
    assert r.can_route(SRC) and r.can_route(MID) and r.can_route(EX)
    assert not r.can_route(Designation("EVM:ETHEREUM:USDC"))
    # A cycle that never reaches the destination ends, refused.
    a, b = Designation("A"), Designation("B")
    looping = CollateralRouter([Hop("x", a, b), Hop("y", b, a)], EX)
    assert not looping.can_route(a)


def test_multi_hop_route() -> None:
    m = CollateralManager()
    r = router()
    lot = m.on_deposit(ALICE, 1, D("100"), SRC)
    assert lot is not None
    first = r.start(lot)
    # The hop key names the deposit and the hop: the same for every retry of it.
    key = f"{SRC}#1:across"
    assert first == RouteCollateral(TransferId("T1"), ALICE, "across", SRC, MID, D(100), key)
    assert r.in_flight() == 1
    result = r.on_completed(TransferId("T1"), D("99.5"))
    assert result is not None
    got_lot, hop, fee = result
    assert got_lot is lot and hop == Hop("across", SRC, MID) and fee == D("0.5")
    m.on_hop(lot, hop.destination, fee, hop.bridge)
    # The next hop moves what arrived.
    key = f"{SRC}#1:wallet"
    second = r.start(lot)
    assert second == RouteCollateral(TransferId("T2"), ALICE, "wallet", MID, EX, D("99.5"), key)
    result = r.on_completed(TransferId("T2"), D("99.5"))
    assert result is not None
    assert result[1] == Hop("wallet", MID, EX) and result[2] == 0
    assert r.in_flight() == 0


def test_start_at_destination_needs_no_hop() -> None:
    m = CollateralManager()
    lot = m.on_deposit(ALICE, 1, D("5"), EX)
    assert lot is not None
    assert router().start(lot) is None


def test_start_moves_the_net_of_earlier_fees() -> None:
    m = CollateralManager()
    lot = m.on_deposit(ALICE, 1, D("100"), MID)
    assert lot is not None
    lot.fee = D("0.5")
    command = router().start(lot)
    assert command is not None and command.amount == D("99.5") and command.bridge == "wallet"


def test_start_without_route() -> None:
    m = CollateralManager()
    lot = m.on_deposit(ALICE, 1, D("5"), Designation("NOWHERE"))
    assert lot is not None
    with pytest.raises(RouteError):
        router().start(lot)


def test_failed_hop_retried_up_to_max_attempts() -> None:
    m = CollateralManager()
    r = router(max_attempts=3)
    lot = m.on_deposit(ALICE, 1, D("100"), SRC)
    assert lot is not None
    first = r.start(lot)
    assert first is not None
    second = r.on_failed(first.transfer_id)
    assert second is not None
    # Same hop, same amount, new id.
    assert (second.transfer_id, second.bridge, second.amount) == (
        TransferId("T2"),
        "across",
        D(100),
    )
    third = r.on_failed(second.transfer_id)
    assert third is not None and third.transfer_id == TransferId("T3")
    # ... and the same hop key: an adapter keyed on it never moves the collateral twice.
    assert first.hop_key == second.hop_key == third.hop_key == f"{SRC}#1:across"
    assert r.on_failed(third.transfer_id) is None  # three attempts made: given up
    assert r.in_flight() == 0


def test_a_hop_from_the_deposit_chain_starts_its_look_ups_at_the_deposit_block() -> None:
    """Issue 11: a hop's adapter searches the chain for its earlier steps from a lower bound,
    the lot's deposit block, carried by every attempt of the hop (a retry, a resume after it
    was given up); a hop from another chain carries none (0: that block is not of its chain)."""
    m = CollateralManager()
    r = router(max_attempts=2)
    lot = m.on_deposit(ALICE, 1, D("100"), SRC, block=123_456)
    assert lot is not None and lot.block == 123_456
    first = r.start(lot)
    assert first is not None and first.from_block == 123_456
    second = r.on_failed(first.transfer_id)
    assert second is not None and second.from_block == 123_456
    assert r.on_failed(second.transfer_id) is None  # given up
    (resumed,) = r.resume()
    assert resumed.hop_key == first.hop_key and resumed.from_block == 123_456
    result = r.on_completed(resumed.transfer_id, D("99.5"))
    assert result is not None
    m.on_hop(lot, result[1].destination, result[2], result[1].bridge)
    onward = r.start(lot)
    assert onward is not None and onward.source == MID and onward.from_block == 0


def test_a_merged_lot_starts_its_look_ups_at_its_earliest_deposit() -> None:
    """Held small deposits merged into one lot (route_holds.py): its hop's lower bound is the
    earliest of their deposit blocks."""
    ledger = ClientLedger()
    m = CollateralManager()
    lots = [
        m.on_deposit(ALICE, seq, D("0.5"), SRC, block=block) for seq, block in ((2, 90), (3, 70))
    ]
    assert all(lot is not None for lot in lots)
    ledger.lots = [lot for lot in lots if lot is not None]
    merged = merge_lots(ledger, ledger.lots)
    assert merged.block == 70
    command = router().start(merged)
    assert command is not None and command.from_block == 70


def test_single_attempt_router_gives_up_at_once() -> None:
    m = CollateralManager()
    r = router(max_attempts=1)
    lot = m.on_deposit(ALICE, 1, D("100"), SRC)
    assert lot is not None
    first = r.start(lot)
    assert first is not None
    assert r.on_failed(first.transfer_id) is None


def test_unknown_transfer() -> None:
    r = router()
    assert r.on_completed(TransferId("T99"), D("1")) is None
    assert r.on_failed(TransferId("T99")) is None


def test_completion_twice_is_unknown_the_second_time() -> None:
    m = CollateralManager()
    r = router()
    lot = m.on_deposit(ALICE, 1, D("100"), SRC)
    assert lot is not None
    first = r.start(lot)
    assert first is not None
    assert r.on_completed(first.transfer_id, D("100")) is not None
    assert r.on_completed(first.transfer_id, D("100")) is None


@pytest.mark.parametrize("received", ["100.000001", "-1", "NaN", "Infinity"])
def test_impossible_completion_refused_and_transfer_kept(received: str) -> None:
    m = CollateralManager()
    r = router()
    lot = m.on_deposit(ALICE, 1, D("100"), SRC)
    assert lot is not None
    first = r.start(lot)
    assert first is not None
    with pytest.raises(RouteError):
        r.on_completed(first.transfer_id, D(received))
    # Validate first, then mutate: the transfer is still in flight and can complete properly.
    assert r.in_flight() == 1
    result = r.on_completed(first.transfer_id, D("99"))
    assert result is not None and result[2] == D(1)


def test_expected_fee_for_a_quote() -> None:
    # SPEC §4: a quote deducts the routing fees the order would be charged.
    m = CollateralManager()
    elsewhere = client_key(8453, "0x" + "c" * 40)
    assert m.expected_fee(ALICE, D(500)) == 0  # nothing routed yet: no fee known
    ready_lot(m, 1, "1000", "2")  # Alice: 1000 ready, 2 of routing fees
    ready_lot(m, 2, "3000", "3", client=BOB)  # Bob, same chain: 3 on 3000
    # Covered by Alice's ready lot: its fee pro rata, as reserve would charge it: 2 × 400/1000.
    assert m.expected_fee(ALICE, D(400)) == D("0.8")
    # 1000 from the lot (2) + 1000 more at the chain's observed rate (5 / 4000): 2 + 1.25.
    assert m.expected_fee(ALICE, D(2000)) == D("3.25")
    # A client without collateral on the same chain: the chain's rate; another chain: none yet.
    assert m.expected_fee(client_key(42161, "0x" + "d" * 40), D(800)) == D(1)
    assert m.expected_fee(elsewhere, D(800)) == 0
    # Reserved collateral is no longer there to be reserved: the rest goes at the chain rate.
    m.reserve(ALICE, O1, D(1000))
    assert m.expected_fee(ALICE, D(400)) == D("0.5")
