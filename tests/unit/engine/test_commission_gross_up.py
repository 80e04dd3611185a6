"""A venue that takes a buy's commission in the base asset (SPEC §6: the lot holds quantity −
commission) is grossed up in sizing, so what arrives covers the order and it mints at once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from indexmaker.core.errors import InvalidInputError
from indexmaker.core.events import (
    DepositObserved,
    MintInvoice,
    NewIndexOrderRequest,
)
from indexmaker.core.ids import ClientOrderId, Symbol, TxHash, client_key, instrument
from indexmaker.engine.engine import EXCHANGE_ACCOUNT, EngineSetup
from indexmaker.model.filters import InstrumentRules, gross_up_for_commission, lot_cover
from indexmaker.model.index import Basket, BasketAsset
from indexmaker.model.side import Side
from indexmaker.sim.chain import SimulatedChain
from indexmaker.sim.exchange import Behaviour, SimulatedExchange
from indexmaker.sim.world import SimulatedWorld

D = Decimal
ALICE = client_key(8453, "0x" + "a" * 40)
AAA, BBB = instrument("AAAUSDC"), instrument("BBBUSDC")
IDX = Symbol("IDX")
BASKETS = {"IDX": Basket(IDX, (BasketAsset(AAA, D("2")), BasketAsset(BBB, D("1"))))}
BOOKS = {
    AAA: ([(D("9.99"), D("1000"))], [(D("10"), D("1000"))]),
    BBB: ([(D("19.99"), D("1000"))], [(D("20"), D("1000"))]),
}


def rules(rate: str) -> dict[object, InstrumentRules]:
    return {
        s: InstrumentRules(
            s,
            s.pair.removesuffix("USDC"),
            "USDC",
            tick_size=D("0.01"),
            step_size=D("0.001"),
            buy_base_commission=D(rate),
        )
        for s in (AAA, BBB)
    }


def run(rate: str) -> tuple[SimulatedWorld, MintInvoice | None]:
    """A 1000 USDC buy on a venue charging 0.1% in the base asset; rules carry `rate`."""
    behaviour = {s: Behaviour(commission_in_base=True) for s in (AAA, BBB)}
    exchange = SimulatedExchange(dict(BOOKS), behaviour=behaviour)
    setup = EngineSetup(BASKETS, rules=rules(rate))  # type: ignore[arg-type]
    world = SimulatedWorld(setup, exchange, SimulatedChain())
    world.submit(DepositObserved(ALICE, 1, D("1000"), EXCHANGE_ACCOUNT, TxHash("0x1"), 0, 1, 12))
    world.submit(NewIndexOrderRequest(ALICE, ClientOrderId("A1"), IDX, Side.BUY, D("1000")))
    world.advance(timedelta(seconds=2))  # well within the 10 s idle rule
    invoices = [m for m in world.log.for_client(ALICE) if isinstance(m, MintInvoice)]
    return world, (invoices[-1] if invoices else None)


def test_base_asset_commission_is_grossed_up_and_the_order_mints_at_once() -> None:
    world, invoice = run("0.001")
    assert invoice is not None, "not minted at once"
    assert invoice.fill_rate >= D("0.9999")
    assert world.chain.minted[(ALICE, IDX)] == invoice.filled_quantity
    # One batch, and what arrived of each leg (sent less the commission) covers the mint.
    assert len(world.log.exchange_orders) == 2
    for order in world.log.exchange_orders:
        minted = sum((lot.quantity for lot in invoice.lots if lot.asset == order.instrument), D(0))
        assert order.quantity * (1 - D("0.001")) >= minted > 0
    # The client pays the commission as the exchange fee; the invoice adds up.
    assert invoice.exchange_fee > 0
    assert invoice.amount_paid == invoice.assets_value + invoice.exchange_fee
    assert invoice.amount_paid + invoice.amount_remaining <= D("1000")


def test_without_the_rate_the_lots_come_short_and_the_mint_waits() -> None:
    _, invoice = run("0")
    assert invoice is None  # ~99.9% filled: waits the idle rule (the bug this fixes)


def test_gross_up_rounds_up_onto_the_lot_grid_and_leaves_sells_alone() -> None:
    r = rules("0.001")[AAA]
    sent = lot_cover(r, gross_up_for_commission(r, Side.BUY, D("50")))
    assert sent == D("50.051")  # 50 / 0.999 = 50.05005… → up to the 0.001 step
    assert sent - sent * D("0.001") >= D("50")
    assert gross_up_for_commission(r, Side.SELL, D("50")) == D("50")
    assert gross_up_for_commission(rules("0")[AAA], Side.BUY, D("50")) == D("50")


def test_a_commission_rate_of_one_or_more_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="buy_base_commission"):
        rules("1")
