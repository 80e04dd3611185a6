"""engine/solver.py: behaviour not covered by the scenarios (reject cool-down)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

from indexmaker.core.events import NewIndexOrderRequest
from indexmaker.core.ids import ClientOrderId, Symbol, client_key, instrument
from indexmaker.engine.engine import EngineSetup
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.index import Basket, BasketAsset
from indexmaker.model.side import Side
from indexmaker.sim.chain import SimulatedChain
from indexmaker.sim.exchange import Behaviour, SimulatedExchange
from indexmaker.sim.world import SimulatedWorld

AAA, BBB = instrument("AAAUSDC"), instrument("BBBUSDC")
ALICE = client_key(42161, "0x" + "a" * 40)


def _world() -> SimulatedWorld:
    basket = Basket(Symbol("IDX"), (BasketAsset(AAA, D(1)), BasketAsset(BBB, D(1))))
    books = {
        AAA: ([(D(9), D(1000))], [(D(10), D(1000))]),
        BBB: ([(D(19), D(1000))], [(D(20), D(1000))]),
    }
    exchange = SimulatedExchange(books, behaviour={BBB: Behaviour(reject="halted")})
    rules = {s: InstrumentRules(s, s.pair.removesuffix("USDC"), "USDC") for s in (AAA, BBB)}
    world = SimulatedWorld(EngineSetup({"IDX": basket}, rules=rules), exchange, SimulatedChain())
    world.deposit(ALICE, D(1000))
    world.advance(timedelta(seconds=5))  # two 2 s hops to the exchange
    world.submit(NewIndexOrderRequest(ALICE, ClientOrderId("A1"), Symbol("IDX"), Side.BUY, D(500)))
    return world


def _bbb_orders(world: SimulatedWorld) -> int:
    return sum(1 for order in world.log.exchange_orders if order.instrument == BBB)


def test_a_persistent_reject_backs_off_doubling() -> None:
    world = _world()
    world.advance(timedelta(milliseconds=200))
    assert _bbb_orders(world) == 1  # first try, rejected
    world.advance(timedelta(seconds=4.5))
    assert _bbb_orders(world) == 1  # 5 s cool-down: not re-sent every tick
    world.advance(timedelta(seconds=1))
    assert _bbb_orders(world) == 2  # retried after 5 s, rejected again
    world.advance(timedelta(seconds=9))
    assert _bbb_orders(world) == 2  # now 10 s
    world.advance(timedelta(seconds=1.5))
    assert _bbb_orders(world) == 3
    update = world.engine.orders.update(ALICE, ClientOrderId("A1"))
    assert update is not None and update.filled_quantity == 0


def test_a_fill_ends_the_cool_down() -> None:
    world = _world()
    world.advance(timedelta(milliseconds=200))
    world.exchange.behaviour[BBB] = Behaviour()  # the venue trades BBB again
    world.advance(timedelta(seconds=6))
    update = world.engine.orders.update(ALICE, ClientOrderId("A1"))
    minted = world.chain.minted.get((ALICE, Symbol("IDX")), D(0))
    assert (update is None and minted > 0) or (update is not None and update.filled_quantity > 0)
    assert world.engine.solver.executions.blocked_assets(world.clock.now()) == {}
