"""model/order.py: the order update's state machine and its one `spent` figure."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from indexmaker.core.errors import InvariantViolation
from indexmaker.core.ids import ClientOrderId, Symbol, client_key
from indexmaker.model.collateral import Reservation
from indexmaker.model.order import TRANSITIONS, IllegalTransition, OrderStatus, OrderUpdate
from indexmaker.model.side import Side

S = OrderStatus


def update() -> OrderUpdate:
    return OrderUpdate(
        client=client_key(1, "0x" + "1" * 40),
        client_order_id=ClientOrderId("A1"),
        symbol=Symbol("SY100"),
        side=Side.BUY,
        amount=Decimal(100),
        received_at=datetime(2025, 10, 1, tzinfo=UTC),
        arrival=1,
    )


def test_the_table_names_every_status_and_final_states_lead_nowhere() -> None:
    assert set(TRANSITIONS) == set(OrderStatus)
    for status in OrderStatus:
        assert (TRANSITIONS[status] == frozenset()) is status.is_done, status


def test_the_happy_path_of_spec_section_3() -> None:
    u = update()
    path = [S.MANAGE_COLLATERAL, S.READY, S.ENGAGED, S.READY, S.ENGAGED, S.PARTLY_MINTABLE]
    path += [S.FULLY_MINTABLE, S.MINTING, S.MINTED]
    for status in path:
        u.move_to(status)
        assert u.status is status


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], S.READY),  # collateral is checked first
        ([S.MANAGE_COLLATERAL, S.READY], S.MINTING),  # nothing filled, nothing to mint
        ([S.MANAGE_COLLATERAL, S.READY, S.ENGAGED], S.CANCELLED),  # engaged is never released
        ([S.MANAGE_COLLATERAL, S.READY, S.FULLY_MINTABLE, S.MINTING], S.READY),
        ([S.MANAGE_COLLATERAL, S.READY, S.FULLY_MINTABLE, S.MINTING, S.MINTED], S.MINTED),
        ([S.CANCELLED], S.OPEN),
    ],
)
def test_an_illegal_transition_raises_naming_both_states_and_changes_nothing(
    path: list[OrderStatus], illegal: OrderStatus
) -> None:
    u = update()
    for status in path:
        u.move_to(status)
    before = u.status
    with pytest.raises(IllegalTransition) as raised:
        u.move_to(illegal)
    assert isinstance(raised.value, InvariantViolation)  # the engine turns it into an alert
    message = str(raised.value)
    assert f"A1: no transition {before.value} → {illegal.value}" in message
    assert u.status is before


def test_a_final_state_says_it_is_final() -> None:
    u = update()
    u.move_to(S.CANCELLED)
    with pytest.raises(IllegalTransition, match="from Cancelled: none, it is final"):
        u.move_to(S.READY)


def test_spent_is_the_reservations_figure_not_a_copy() -> None:
    u = update()
    assert u.spent == 0 and u.fill_rate == 0
    reservation = Reservation(gross=Decimal(100), fee=Decimal(1))
    u.reservation = reservation
    u.management_fee = reservation.fee
    reservation.spent = Decimal("49.5")  # only the collateral manager does this
    assert u.spent == Decimal("49.5")
    assert u.remaining == Decimal("49.5")


def test_fill_rate_is_units_filled_over_units_engaged_not_collateral() -> None:
    # SPEC §3: 24.9 of 25 engaged units filled → 0.996, whatever the collateral spent.
    u = update()
    u.units_engaged = Decimal(25)
    u.filled_quantity = Decimal("24.9")
    assert u.fill_rate == Decimal("0.996")
    # Change (execution below the limit) is neither engageable nor counted against the rate.
    u.reservation = Reservation(gross=Decimal(100), fee=Decimal(0))
    u.reservation.spent = Decimal("97")
    u.change = Decimal("2")
    assert u.remaining == Decimal(3) and u.engageable == Decimal(1)
