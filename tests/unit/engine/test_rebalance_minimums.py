"""A rebalance of small holdings that cannot trade (issue 12 review): every sell leg below
min_asset_volley, so nothing can be sold to fund the buys. It used to end at once, round 0,
"completed" with reason "sales spent" though nothing was sold; now it says why (naming
min_asset_volley) in a `waiting` report and one operator alert, stays open (never
`completed` off target) looking again every rebalance_interval, and after rebalance_ttl ends
as "stopped: below minimums"."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from indexmaker.core.events import NewIndexOrderRequest
from indexmaker.core.ids import ClientOrderId
from indexmaker.core.money import money_context
from indexmaker.core.rebalance_events import RebalanceIndex, RebalanceWeight
from indexmaker.model.side import Side
from indexmaker.sim.scenario import Scenario, build, duration

from .test_rebalance import AAA, BBB, CCC, IDX, world_data

D = Decimal


def test_a_rebalance_whose_sell_legs_are_all_below_the_minimum_waits_then_stops() -> None:
    data = world_data(rebalance_interval="1s", rebalance_ttl="10s")
    with money_context():
        state = build(Scenario("small-rebalance", Path("small-rebalance"), data))
        world = state.world
        alice = state.client("alice")
        world.deposit(alice, D("12.2"))  # about 0.265 units: 5.3 USDC of AAA, 5.3 of BBB
        world.submit(NewIndexOrderRequest(alice, ClientOrderId("A1"), IDX, Side.BUY, D("12.2")))
        world.advance(duration("4s"))
        placed = len(world.log.exchange_orders)
        # 1 : 1 : 2 → sell half the AAA and half the BBB (each about 2.65 USDC, below the
        # default min_asset_volley of 5 USDC), buy about 5.3 USDC of CCC with the proceeds.
        weights = (
            RebalanceWeight(AAA, D(1)),
            RebalanceWeight(BBB, D(1)),
            RebalanceWeight(CCC, D(2)),
        )
        world.submit(RebalanceIndex(IDX, "p1", weights))
        world.advance(duration("5s"))
        assert [r.kind for r in world.log.rebalances] == ["started", "waiting"]
        waiting = world.log.rebalances[-1]
        assert waiting.reason is not None and "min_asset_volley 5 USDC" in waiting.reason
        assert "sales spent" not in waiting.reason and waiting.traded == 0
        (alert,) = [a for a in world.log.alerts if a.code == "rebalance_below_minimum"]
        assert "IDX v2" in alert.message and "min_asset_volley" in alert.message
        (rebalance,) = world.engine.rebalance.active.values()
        assert not rebalance.done and rebalance.waiting == waiting.reason
        assert len(world.log.exchange_orders) == placed  # nothing sent below the minimum
        # Past rebalance_ttl it ends, saying so: stopped below the minimums, not on target.
        world.advance(duration("7s"))
        assert [r.kind for r in world.log.rebalances] == ["started", "waiting", "completed"]
        end = world.log.rebalances[-1]
        assert end.reason is not None
        assert end.reason.startswith("stopped: below minimums (expired after 0:00:10; every")
        assert rebalance.done and not world.engine.rebalance.active
        assert len([a for a in world.log.alerts if a.code == "rebalance_below_minimum"]) == 1
