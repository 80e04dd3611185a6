"""Issuer inventory left by padding to the venue minimum (README "4. Fills": lots nobody could
use are issuer inventory that the next batch of that asset uses first), with buy batches in
turn and with batches that overlap because the venue answers slower than a solver tick.

Orders worth less than an asset's venue minimum each buy that minimum; the next batch should
take the surplus before buying again, so at the end the issuer holds less than one minimum
per asset. With overlapping batches it does not (the flaky bought/delivered ratio of
tests/integration/test_demo_sockets.py under load): a batch planned while another is in
flight sees only filled, unreserved lots (engine/solver.py `_plan_buy`: `free_quantity`), so
each open batch pads the asset to the minimum again. Known defect in engine/ (owner this
session: h12sell); the strict xfail turns red once it is fixed, to be removed then.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest

from indexmaker.core.events import NewIndexOrderRequest
from indexmaker.core.ids import ClientOrderId, Symbol, client_key, instrument
from indexmaker.core.money import money_context
from indexmaker.engine.engine import EngineSetup
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.index import Basket, BasketAsset
from indexmaker.model.side import Side
from indexmaker.sim.chain import SimulatedChain
from indexmaker.sim.exchange import SimulatedExchange
from indexmaker.sim.world import SimulatedWorld

AAA, BBB = instrument("AAAUSDC"), instrument("BBBUSDC")
MIN_NOTIONAL = D(100)  # USDC: each order below (60 USDC over two assets) buys this much


def _leftover(latency: timedelta) -> dict[str, D]:
    """Four 60 USDC orders 150 ms apart (a batch each); the issuer's free inventory per asset
    at its purchase price (USDC) once everything is minted."""
    basket = Basket(Symbol("IDX"), (BasketAsset(AAA, D(1)), BasketAsset(BBB, D(1))))
    books = {
        AAA: ([(D(9), D(1000))], [(D(10), D(1000))]),
        BBB: ([(D(19), D(1000))], [(D(20), D(1000))]),
    }
    rules = {
        s: InstrumentRules(
            s, s.pair.removesuffix("USDC"), "USDC", step_size=D("0.001"), min_notional=MIN_NOTIONAL
        )
        for s in (AAA, BBB)
    }
    setup = EngineSetup({"IDX": basket}, rules=rules)
    exchange = SimulatedExchange(books, rules=rules)
    world = SimulatedWorld(setup, exchange, SimulatedChain(), exchange_latency=latency)
    clients = [client_key(42161, "0x" + c * 40) for c in "abcd"]
    for client in clients:
        world.deposit(client, D(1000))
    world.advance(timedelta(seconds=5))  # collateral at the exchange
    for n, client in enumerate(clients):
        order = NewIndexOrderRequest(client, ClientOrderId(f"o{n}"), Symbol("IDX"), Side.BUY, D(60))
        world.submit(order)
        world.advance(timedelta(milliseconds=150))
    world.advance(timedelta(seconds=20))
    for n, client in enumerate(clients):  # every order minted whole
        assert world.engine.orders.update(client, ClientOrderId(f"o{n}")) is None
    inventory = world.engine.inventory
    return {
        asset.pair: sum((lot.free * lot.price for lot in inventory.lots(asset)), D(0))
        for asset in (AAA, BBB)
    }


@pytest.mark.parametrize(
    "latency_ms",
    [
        20,  # each batch filled before the next tick: batches in turn
        pytest.param(
            400,  # the venue answers after four ticks: batches overlap
            marks=pytest.mark.xfail(
                strict=True, reason="overlapping batches each pad to the minimum (engine/)"
            ),
        ),
    ],
)
def test_padding_leaves_less_than_one_venue_minimum_per_asset(latency_ms: int) -> None:
    with money_context():
        leftover = _leftover(timedelta(milliseconds=latency_ms))
    assert all(D(0) <= value < MIN_NOTIONAL for value in leftover.values()), leftover
