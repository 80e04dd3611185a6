"""A redemption through the supervised runtime and the chain port (issue 12): the runtime
carries out EscrowIndex / BurnIndex / ReleaseIndex / the withdrawal hop / the payout through
`SimChainPort`, so a sell order placed on a running service is escrowed, sold, burned and paid.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from indexmaker.core.events import (
    BurnIndex,
    EscrowIndex,
    NewIndexOrderRequest,
    NewIndexOrderResponse,
    RequestStatus,
    WithdrawCollateral,
)
from indexmaker.core.ids import ClientOrderId
from indexmaker.core.redemption_events import RedemptionInvoice
from indexmaker.model.side import Side

from .test_runtime_faults import ALICE, IDX, Rig, build

D = Decimal


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    made = build()
    await made.runtime.start()
    yield made
    await made.runtime.stop()


def _redemptions(rig: Rig) -> list[RedemptionInvoice]:
    return [m for _, m in rig.sent if isinstance(m, RedemptionInvoice)]


async def test_a_sell_is_escrowed_burned_and_paid_through_the_chain_port(
    rig: Rig,
) -> None:
    await rig.order()
    await rig.until(lambda: bool(rig.invoices()))
    minted = rig.invoices()[0].filled_quantity
    sell = minted / 2
    rig.runtime.submit(NewIndexOrderRequest(ALICE, ClientOrderId("s-1"), IDX, Side.SELL, sell))
    await rig.until(lambda: bool(_redemptions(rig)))
    invoice = _redemptions(rig)[0]
    chain = rig.chain.chain
    escrows = rig.of(EscrowIndex)
    assert [(e.client, e.quantity) for e in escrows] == [(ALICE, sell)]
    burns = rig.of(BurnIndex)
    assert burns and all(b.escrow_id == escrows[0].escrow_id for b in burns)
    # What was burned came out of custody; what was not sold went back to the client.
    assert chain.burned[IDX] == invoice.redeemed_quantity == sum(b.quantity for b in burns)
    assert chain.custody[IDX] == 0
    assert chain.minted[(ALICE, IDX)] == minted - invoice.redeemed_quantity
    assert invoice.redeemed_quantity + invoice.returned_quantity == sell
    payouts = rig.of(WithdrawCollateral)
    assert [p.amount for p in payouts] == [invoice.net_paid] and invoice.net_paid > 0
    assert [(w.address, w.amount) for w in rig.chain.withdrawals] == [(ALICE[1], invoice.net_paid)]
    assert invoice.payout_tx is not None


async def test_a_sell_of_tokens_the_client_does_not_hold_is_rejected_with_the_reason(
    rig: Rig,
) -> None:
    rig.runtime.submit(NewIndexOrderRequest(ALICE, ClientOrderId("s-9"), IDX, Side.SELL, D(3)))

    def rejected() -> list[NewIndexOrderResponse]:
        return [
            m
            for _, m in rig.sent
            if isinstance(m, NewIndexOrderResponse) and m.status is RequestStatus.REJECTED
        ]

    await rig.until(lambda: bool(rejected()))
    assert "not moved into custody: the client holds 0 IDX, not 3" in (rejected()[0].reason or "")
    assert not rig.of(BurnIndex) and not rig.of(WithdrawCollateral)
