"""engine/absorption.py: sell legs below the venue minimum taken by the issuer (issue 12).

Index IDX = 4 AAA + 1 BBB, threshold 0: sell limits are the best bids AAA 9.9 and BBB 19.9,
mids 9.95 and 19.95. Sold alone, a leg goes to the venue from u × quantity × limit >= 5:
AAA from u = 5 / 39.6 = 0.12626..., BBB from u = 5 / 19.9 = 0.25125628... units. Below the
first both legs are absorbed (39.8 + 19.95 = 59.75 USDC per unit at the mids), between the
two only BBB (19.95 per unit).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import ROUND_UP, Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest

from indexmaker.core.events import NewIndexOrderRequest, NewIndexOrderResponse, RedemptionFill
from indexmaker.core.holds import HoldCode
from indexmaker.core.ids import ClientKey, ClientOrderId, Symbol, instrument
from indexmaker.core.money import money_context
from indexmaker.core.redemption_events import RedemptionStatus
from indexmaker.engine.absorption import absorb_refusal, absorbed_inventory
from indexmaker.engine.crossing import cross
from indexmaker.engine.strategy import BatchPlan, PlannedAssetOrder
from indexmaker.model.side import Side
from indexmaker.sim.scenario import Scenario, ScenarioRun, build

D = Decimal
IDX = Symbol("IDX")
AAA, BBB = instrument("AAAUSDC"), instrument("BBBUSDC")


def _world(**config: str) -> ScenarioRun:
    data: dict[str, Any] = {
        # min_order 1: the sells studied here (0.03 units, 1.785 USDC at the bids) are
        # below the default minimum of 10 (sell_size.py), not below this one.
        "config": {"price_threshold": "0", "fee_factor": "1.001", "min_order": "1", **config},
        "exchange": {"fee_rate": "0.001", "latency": "20ms"},
        "indexes": {"IDX": {"AAAUSDC": "4", "BBBUSDC": "1"}},
        "books": {
            "AAAUSDC": {"bids": [["9.9", "100"]], "asks": [["10", "300"]]},
            "BBBUSDC": {"bids": [["19.9", "100"]], "asks": [["20", "100"]]},
        },
        "bridges": {"across": {"delay": "1s"}, "withdraw": {"delay": "1s"}},
    }
    state = build(Scenario("absorption", Path("absorption"), data))
    state.world.advance(timedelta(milliseconds=100))  # the books reach the engine
    return state


def _bought(state: ScenarioRun, name: str) -> ClientKey:
    """`name` buys 25 units (net 1501.5 = 25 x 60 x 1.001), minted within 8 s."""
    client = state.client(name)
    state.world.deposit(client, D(1503))
    order = NewIndexOrderRequest(client, ClientOrderId(f"buy-{name}"), IDX, Side.BUY, D(1503))
    state.world.submit(order)
    state.world.advance(timedelta(seconds=8))
    return client


def _refusal(state: ScenarioRun, units: str) -> str | None:
    engine = state.world.engine
    basket = engine.baskets[IDX]
    return absorb_refusal(
        basket, D(units), engine.market, engine.solver.rules, engine.solver.config
    )


@pytest.mark.parametrize(
    ("units", "refused"),
    [
        ("0.066778242677824267", False),  # all absorbed: 3.98999... <= 3.99
        ("0.07", True),  # all absorbed: 0.07 x 59.75 = 4.1825
        ("0.14", False),  # AAA 5.544 at the venue; BBB 0.14 x 19.95 = 2.793 absorbed
        ("0.2", False),  # BBB 3.99: exactly the bound
        ("0.25", True),  # BBB 4.9875
        ("0.251256281407035176", False),  # BBB 5.0000000... at its limit: to the venue
        ("1000", False),
    ],
)
def test_a_sell_is_refused_only_where_the_issuer_would_absorb_more_than_the_bound(
    units: str, refused: bool
) -> None:
    with money_context():
        state = _world(max_issuer_absorb="3.99")
        reason = _refusal(state, units)
    assert (reason is not None) == refused
    if reason is not None:
        assert reason.endswith(
            "above max_issuer_absorb 3.99: sell at most 0.066778242677824267 or at least "
            "0.251256281407035176 units"
        )


@pytest.mark.parametrize("prec", [6, 12, 28])
def test_the_refusal_is_the_same_under_any_decimal_context(prec: int) -> None:
    with money_context():
        state = _world(max_issuer_absorb="3.99")
        expected = _refusal(state, "0.21")
        with localcontext() as ctx:
            ctx.prec, ctx.rounding = prec, ROUND_UP
            got = _refusal(state, "0.21")
    assert expected is not None and got == expected


def test_no_refusal_when_absorption_is_off_or_the_bound_covers_every_size() -> None:
    with money_context():
        assert _refusal(_world(max_issuer_absorb="0"), "0.07") is None
        # The most one sell could need: just below AAA's breakpoint, 0.1262 x 59.75 = 7.54.
        assert _refusal(_world(max_issuer_absorb="7.55"), "0.126") is None
        assert _refusal(_world(max_issuer_absorb="7.5"), "0.126") is not None


def test_with_absorption_off_a_small_leg_waits_as_before() -> None:
    with money_context():
        state = _world(max_issuer_absorb="0")
        world = state.world
        client = _bought(state, "alice")
        world.submit(NewIndexOrderRequest(client, ClientOrderId("S1"), IDX, Side.SELL, D("0.2")))
        world.advance(timedelta(seconds=5))
        redemption = world.engine.redemptions.get(client, ClientOrderId("S1"))
    assert redemption is not None and redemption.sold == 0
    assert redemption.notice == (RedemptionStatus.ESCROWED, HoldCode.BELOW_MINIMUM)
    assert world.engine.inventory.absorbed_notional == 0


def _absorbed_held(state: ScenarioRun) -> Decimal:
    engine = state.world.engine
    return absorbed_inventory(engine.inventory.absorbed_free(), engine.market)


def test_the_bound_caps_the_issuers_absorbed_inventory_until_buys_use_it() -> None:
    # alice and bob each sell 0.03 units in the same tick. Alone each is absorbed whole for
    # 0.03 x 59.75 = 1.7925 <= 2 (accepted); together the legs are still below the venue
    # minimum (0.06 x 39.6 = 2.376 AAA), 3.585 > 2: the batch takes alice only. bob's later
    # batch would raise the issuer's absorbed inventory (1.7925 at the mids) to 3.585 > 2:
    # he waits, told why, however many ticks pass (a bound per batch let every batch absorb
    # 2 more). carol's buy takes the absorbed lots first (carry-over): then bob's is absorbed.
    with money_context():
        state = _world(max_issuer_absorb="2")
        world = state.world
        names = ("alice", "bob")
        for name in names:
            _bought(state, name)
        start = len(world.log.batches)
        for name in names:
            client = state.client(name)
            sell = NewIndexOrderRequest(client, ClientOrderId("S"), IDX, Side.SELL, D("0.03"))
            world.submit(sell)
        world.advance(timedelta(seconds=30))
        engine = world.engine
        alice, bob = (engine.redemptions.get(state.client(n), ClientOrderId("S")) for n in names)
        assert alice is not None and bob is not None
        assert (alice.sold, bob.sold) == (D("0.03"), 0)
        assert bob.notice == (RedemptionStatus.ESCROWED, HoldCode.OVER_ABSORB_LIMIT)
        (told,) = [m for _, m in world.log.messages if isinstance(m, RedemptionFill) and m.reason]
        assert told.reason == (
            "legs below the venue minimum worth 1.7925 USDC and the issuer's absorbed "
            "inventory of 1.7925 USDC at the mids exceed max_issuer_absorb 2; waits for buys "
            "of those assets, the books or more redemptions"
        )
        created = [b for b in world.log.batches[start:] if b.kind == "created"]
        assert [(b.order_count, b.asset_count) for b in created] == [(1, 0)]
        assert _absorbed_held(state) == D("1.7925")
        alices = engine.inventory.absorbed_free()
        assert [(lot.asset, lot.free) for lot in alices] == [(AAA, D("0.12")), (BBB, D("0.03"))]
        _bought(state, "carol")  # her batch takes alice's absorbed lots first (carry-over)
        assert bob.sold == D("0.03")  # then bob's legs fit under the cap
        bobs = engine.inventory.absorbed_free()
        assert [(lot.asset, lot.free) for lot in bobs] == [(AAA, D("0.12")), (BBB, D("0.03"))]
        assert {lot.lot_id for lot in alices}.isdisjoint(lot.lot_id for lot in bobs)
    assert not [o for o in world.log.exchange_orders if o.side is Side.SELL]
    # The three buys took AAA's asks (300 at 10): no mid, bob's AAA leg taken at its limit
    # 9.9 (absorb_price): 1.7925 + 0.12 x 9.9 + 0.03 x 19.95.
    assert engine.inventory.absorbed_notional == D("1.7925") + D("1.7865")


def test_a_buy_of_the_same_tick_takes_an_absorbed_leg_first() -> None:
    with money_context():
        state = _world()
        engine = state.world.engine
        rules = dict(engine.solver.rules)
        buy = BatchPlan((), (PlannedAssetOrder(BBB, D(20), D(1), D(1), D(0)),), (), D(20))
        absorbed = PlannedAssetOrder(BBB, D("19.9"), D(0), D("0.2"), D(0), Side.SELL, D("0.2"))
        sell = BatchPlan((), (absorbed,), (), D(0))
        bought, sold, crossings = cross(buy, sell, engine.market, rules, D(5))
        # The buy's rest, 0.8 x 20 = 16, is an order the venue takes: crossed 0.2 at 19.95.
        assert [(c.instrument, c.quantity, c.price) for c in crossings] == [
            (BBB, D("0.2"), D("19.95"))
        ]
        assert bought.asset_orders[0].quantity == D("0.8")
        assert sold.asset_orders[0].absorbed == 0
        # A buy whose rest would be below the venue minimum leaves the leg to the issuer.
        small = replace(buy, asset_orders=(PlannedAssetOrder(BBB, D(20), D("0.3"), D(0), D(0)),))
        _, kept, none = cross(small, sell, engine.market, rules, D(5))
        assert none == [] and kept.asset_orders[0].absorbed == D("0.2")


def test_a_sell_refused_at_acceptance_changes_nothing() -> None:
    with money_context():
        state = _world(max_issuer_absorb="1")
        world = state.world
        client = state.client("alice")
        world.submit(NewIndexOrderRequest(client, ClientOrderId("S"), IDX, Side.SELL, D("0.05")))
        world.advance(timedelta(seconds=1))
        engine = world.engine
    (response,) = [m for _, m in world.log.messages if isinstance(m, NewIndexOrderResponse)]
    assert response.status.value == "rejected"
    assert response.reason is not None and "max_issuer_absorb 1" in response.reason
    assert world.log.escrows == [] and engine.redemptions.open_redemptions() == []
    assert engine.redemptions.get(client, ClientOrderId("S")) is None


def test_a_flipped_sell_too_small_for_the_venue_and_the_issuer_is_not_redeemed() -> None:
    # alice's 10 USDC buy waits for collateral (none deposited). Her sell of 0.4 units
    # reduces it by all 10 USDC (0.4 units weigh 0.4 x 60 x 1.001 = 24.024 at the buy
    # limits) and would flip the rest, 0.4 - 10 / 60.06 = 0.233499833499833499... units, into
    # a redemption: BBB 0.2335 x 19.9 = 4.65 < 5 absorbed for 4.66 > 3.99. Not redeemed.
    with money_context():
        state = _world(max_issuer_absorb="3.99")
        world = state.world
        client = state.client("alice")
        world.submit(NewIndexOrderRequest(client, ClientOrderId("B"), IDX, Side.BUY, D(10)))
        world.submit(NewIndexOrderRequest(client, ClientOrderId("S"), IDX, Side.SELL, D("0.4")))
        world.advance(timedelta(seconds=1))
        engine = world.engine
    answers = [m for _, m in world.log.messages if isinstance(m, NewIndexOrderResponse)]
    flip = answers[-1]
    assert flip.client_order_id == "S" and flip.status.value == "new"
    assert flip.reason is not None
    assert flip.reason.startswith(
        "reduced the buy by 10 USDC; the other 0.233499833499833499 index units were not "
        "redeemed: a sell of 0.233499833499833499 IDX needs the issuer to take 4.658321 USDC"
    )
    assert "max_issuer_absorb 3.99" in flip.reason
    assert world.log.escrows == [] and engine.redemptions.open_redemptions() == []
    assert engine.orders.find(client, IDX) is None  # the buy was reduced to nothing


def test_a_sell_whose_legs_outgrow_the_bound_as_the_books_move_waits_then_sells() -> None:
    # 0.2 units are accepted (BBB absorbed for 0.2 x 19.95 = 3.99, the bound). Before the
    # batch forms BBB's ask moves to 20.1: mid 20, 0.2 x 20 = 4 > 3.99: it waits, told why;
    # back at 20, it sells.
    with money_context():
        state = _world(max_issuer_absorb="3.99")
        world = state.world
        client = _bought(state, "alice")
        world.submit(NewIndexOrderRequest(client, ClientOrderId("S"), IDX, Side.SELL, D("0.2")))
        _set_book(state, BBB, [("19.9", "100")], [("20.1", "100")])
        world.advance(timedelta(seconds=2))
        redemption = world.engine.redemptions.get(client, ClientOrderId("S"))
        assert redemption is not None and redemption.sold == 0
        told = [m.reason for _, m in world.log.messages if isinstance(m, RedemptionFill)]
        assert told[-1] == (
            "legs below the venue minimum worth 4 USDC exceed max_issuer_absorb 3.99; "
            "waits for the books or more redemptions"
        )
        _set_book(state, BBB, [("19.9", "100")], [("20", "100")])
        world.advance(timedelta(seconds=2))
    assert redemption.sold == D("0.2")
    assert world.engine.inventory.absorbed_notional == D("3.99")


def _set_book(
    state: ScenarioRun, symbol: Any, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
) -> None:
    exchange = state.world.exchange
    book = exchange.books[symbol]
    book.apply_snapshot([(D(p), D(q)) for p, q in bids], [(D(p), D(q)) for p, q in asks])
    for snapshot in exchange.snapshots():
        if snapshot.instrument == symbol:
            state.world.submit(snapshot)
