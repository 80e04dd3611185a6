"""Rebalancing (issue 12): the next basket version, refused proposals, the price band."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from indexmaker.core.errors import InvalidInputError
from indexmaker.core.events import ExchangeFill, MintInvoice, NewIndexOrderRequest
from indexmaker.core.ids import Asset, ClientOrderId, Symbol, TradeId, VenueOrderId, instrument
from indexmaker.core.money import money_context, round_rate, round_usdc
from indexmaker.core.rebalance_events import RebalanceIndex, RebalanceWeight
from indexmaker.core.redemption_events import RedemptionInvoice
from indexmaker.model.index import Basket, BasketAsset
from indexmaker.model.rebalance import rebased_basket
from indexmaker.model.side import Side
from indexmaker.sim.exchange import Behaviour
from indexmaker.sim.scenario import Scenario, ScenarioRun, build, duration

D = Decimal
IDX = Symbol("IDX")
AAA, BBB, CCC = instrument("AAAUSDC"), instrument("BBBUSDC"), instrument("CCCUSDC")


def _basket() -> Basket:
    return Basket(IDX, (BasketAsset(AAA, D(2)), BasketAsset(BBB, D(1))))


def test_the_next_version_keeps_the_index_value_at_the_cut_over_mids() -> None:
    mids = {AAA: D("10"), BBB: D("20"), CCC: D("3")}
    weights = (RebalanceWeight(AAA, D(1)), RebalanceWeight(CCC, D(3)))  # relative: 25% / 75%
    with money_context():
        new = rebased_basket(_basket(), weights, mids)
    assert new.version == 2 and new.symbol == IDX
    assert [(a.instrument, a.quantity, a.weight) for a in new.assets] == [
        (AAA, D(1), D(25)),  # 0.25 x 40 / 10
        (CCC, D(10), D(75)),  # 0.75 x 40 / 3
    ]
    assert new.index_price(mids) == _basket().index_price(mids) == D(40)


def test_quantities_round_down_to_18_decimals() -> None:
    mids = {AAA: D("10"), BBB: D("20"), CCC: D("3")}
    with money_context():
        new = rebased_basket(_basket(), (RebalanceWeight(CCC, D(1)),), mids)
    (only,) = new.assets
    assert only.quantity == D("13.333333333333333333")  # 40 / 3, floored
    assert only.quantity * mids[CCC] <= D(40)


@pytest.mark.parametrize(
    ("weights", "reason"),
    [
        ((RebalanceWeight(AAA, D(-1)), RebalanceWeight(BBB, D(2))), "weight -1"),
        ((RebalanceWeight(AAA, D(1)), RebalanceWeight(AAA, D(2))), "named twice"),
        ((RebalanceWeight(AAA, D(0)),), "every weight is 0"),
        ((RebalanceWeight(AAA, D("NaN")),), "weight NaN"),
        ((RebalanceWeight(instrument("ZZZUSDC"), D(1)),), "no mid price for binance:ZZZUSDC"),
    ],
)
def test_bad_weights_are_refused_naming_the_field(
    weights: tuple[RebalanceWeight, ...], reason: str
) -> None:
    mids = {AAA: D("10"), BBB: D("20")}
    with money_context(), pytest.raises(InvalidInputError) as raised:
        rebased_basket(_basket(), weights, mids)
    assert raised.value.field == "weights" and reason in str(raised.value)


def _world(rules: dict[str, Any] | None = None, **config: str) -> ScenarioRun:
    state = build(Scenario("rebalance", Path("rebalance"), world_data(rules, **config)))
    alice = state.client("alice")
    state.world.deposit(alice, D("1010.0075"))
    state.world.submit(
        NewIndexOrderRequest(alice, ClientOrderId("A1"), IDX, Side.BUY, D("1010.0075"))
    )
    state.world.advance(duration("4s"))
    assert state.world.engine.solver.holdings.units_of(IDX) == D(25)
    return state


def world_data(rules: dict[str, Any] | None = None, **config: str) -> dict[str, Any]:
    """IDX = 2 AAA + 1 BBB; books of AAA, BBB and CCC 300 deep around mids 10, 20 and 5."""
    return {
        "rules": rules or {},
        "config": {"price_threshold": "0", "fee_factor": "1.001", **config},
        "exchange": {"fee_rate": "0.001", "latency": "20ms"},
        "indexes": {"IDX": {"AAAUSDC": "2", "BBBUSDC": "1"}},
        "books": {
            "AAAUSDC": {"bids": [["9.9", "300"]], "asks": [["10.1", "300"]]},
            "BBBUSDC": {"bids": [["19.9", "300"]], "asks": [["20.1", "300"]]},
            "CCCUSDC": {"bids": [["4.95", "300"]], "asks": [["5.05", "300"]]},
        },
        "bridges": {"across": {"fixed_fee": "1.5", "delay": "1s"}},
    }


def _proposal(**extra: Any) -> RebalanceIndex:
    weights = (
        RebalanceWeight(AAA, D(25)),
        RebalanceWeight(BBB, D(50)),
        RebalanceWeight(CCC, D(25)),
    )
    return RebalanceIndex(IDX, "p1", weights, **extra)


def test_a_stale_or_unpriced_proposal_changes_nothing() -> None:
    with money_context():
        state = _world()
        world = state.world
        stale = _proposal(deadline=world.clock.now() - timedelta(seconds=1))
        world.submit(stale)
        world.submit(RebalanceIndex(Symbol("NOPE"), "p2", _proposal().weights))
        world.submit(RebalanceIndex(IDX, "p3", (RebalanceWeight(instrument("ZZZUSDC"), D(1)),)))
        world.advance(duration("2s"))
        codes = [(a.code, a.message.split(":")[1].strip()) for a in world.log.alerts]
        assert codes == [
            ("InvalidInputError", "deadline"),
            ("InvalidInputError", "symbol"),
            ("InvalidInputError", "weights"),
        ]
        assert world.engine.baskets[IDX].version == 1
        assert world.log.rebalances == []
        assert all(o.batch_id == 1 for o in world.log.exchange_orders)


def test_an_asset_whose_mid_left_the_price_band_waits_and_resumes() -> None:
    with money_context():
        state = _world(rebalance_interval="1s")
        world = state.world
        world.submit(_proposal())
        # AAA (to sell) jumps 5% above its cut-over mid 10: outside the 2% band, it waits.
        book = world.exchange.books[AAA]
        book.apply_snapshot([(D("10.4"), D(300))], [(D("10.6"), D(300))])
        for snapshot in world.exchange.snapshots():
            if snapshot.instrument == AAA:
                world.submit(snapshot)
        world.advance(duration("3s"))
        assert not any(o.instrument == AAA and o.batch_id > 1 for o in world.log.exchange_orders)
        assert [r.kind for r in world.log.rebalances] == ["started"]
        # Back inside the band (mid 10.1, 1% off): the round sells AAA at the bid.
        book.apply_snapshot([(D("10"), D(300))], [(D("10.2"), D(300))])
        for snapshot in world.exchange.snapshots():
            if snapshot.instrument == AAA:
                world.submit(snapshot)
        world.advance(duration("2s"))
        sells = [o for o in world.log.exchange_orders if o.side is Side.SELL]
        assert [(o.instrument, o.price, o.quantity) for o in sells] == [(AAA, D(10), D(25))]
        assert world.engine.solver.holdings.held_of(IDX, AAA) == D(25)


def test_issuer_inventory_nobody_uses_is_taken_before_the_venue() -> None:
    with money_context():
        state = _world(rebalance_interval="1s")
        world = state.world
        engine = world.engine
        # 20 CCC of issuer inventory (as a late fill leaves it), bought at 4.9 with fee 0.01.
        lot = engine.inventory.open_lot(
            CCC, TradeId("late-1"), D("4.9"), D(20), D("0.01"), world.clock.now(), None
        )
        world.submit(_proposal())  # sell 25 AAA, buy 50 CCC (as scenario 15)
        world.advance(duration("3s"))
        # Round 1 sold 25 AAA @ 9.9 (cash 247.5 - 0.2475); round 2 took the 20 idle CCC at
        # their cost (98 + 0.01) and sent only the rest to the venue.
        assert lot.free == 0 and lot.assigned == D(20)
        cash_after_round_1 = D("247.5") - D("0.2475")
        budget = (cash_after_round_1 - D(98) - D("0.01")) / D("1.001")
        venue = [o for o in world.log.exchange_orders if o.instrument == CCC]
        assert len(venue) == 1 and venue[0].quantity <= budget / D("5.05")
        assert venue[0].quantity > 0
        held = engine.solver.holdings.held_of(IDX, CCC)
        assert held == D(20) + venue[0].quantity
        ccc = next(a for a in world.log.rebalances[-1].assets if a.instrument == CCC)
        assert ccc.crossed == D(20) and ccc.bought == venue[0].quantity


def test_a_late_sell_fill_of_a_closed_round_is_a_sale() -> None:
    with money_context():
        state = _world(rebalance_interval="30s")
        world = state.world
        world.exchange.behaviour[AAA] = Behaviour(fill_ratio=D("0.4"))
        world.submit(_proposal())
        world.advance(duration("1s"))  # round 1: 10 of 25 AAA sold @ 9.9, then closed
        (order,) = [o for o in world.log.exchange_orders if o.side is Side.SELL]
        holdings = world.engine.solver.holdings
        cash = holdings.cash_of(IDX)
        assert holdings.held_of(IDX, AAA) == D(40)
        late = ExchangeFill(
            order.order_id,
            AAA,
            VenueOrderId("v-late"),
            TradeId("t-late"),
            D("9.9"),
            D(1),
            D(11),
            D("0.0099"),
            Asset("USDC"),
            world.clock.now(),
        )
        world.submit(late)
        assert holdings.held_of(IDX, AAA) == D(39)  # sold, not bought
        assert holdings.cash_of(IDX) == cash + D("9.9") - D("0.0099")


def test_an_asset_the_venue_refused_waits_out_its_cool_down() -> None:
    with money_context():
        state = _world(rebalance_interval="1s", reject_cooldown="4s")
        world = state.world
        world.exchange.behaviour[AAA] = Behaviour(reject="-2010 insufficient balance")
        world.submit(_proposal())
        world.advance(duration("3s"))  # rounds 1 s apart, but AAA cools down for 4 s
        sells = [o for o in world.log.exchange_orders if o.side is Side.SELL]
        assert len(sells) == 1
        assert [a.code for a in world.log.alerts] == ["exchange_reject"]
        world.exchange.behaviour.clear()
        world.advance(duration("3s"))
        sells = [o for o in world.log.exchange_orders if o.side is Side.SELL]
        assert len(sells) == 2 and sells[1].quantity == D(25)
        assert world.engine.solver.holdings.held_of(IDX, AAA) == D(25)


def test_pacing_is_per_asset_and_each_tranche_is_capped() -> None:
    """AAA (to sell 25) is capped at 99 USDC a round: 99 / 9.9 = 10 per tranche, 2 s apart
    (its own pacing); CCC (to buy) is not held back by AAA's pacing: it buys at the tick after
    the round whose sales pay it."""
    with money_context():
        rules = {"CCCUSDC": {"step_size": "0.001"}}
        state = _world(rules, rebalance_interval="2s", rebalance_max_tranche="99")
        world = state.world
        world.submit(_proposal())
        start = world.clock.now()
        seen: list[tuple[timedelta, Side, Any, Decimal, Decimal]] = []
        for _ in range(30):  # 3 s, tick by tick: when each order went out
            world.advance(duration("0.1s"))
            for order in world.log.exchange_orders[len(seen) + 2 :]:  # after alice's buy
                seen.append(
                    (
                        world.clock.now() - start,
                        order.side,
                        order.instrument,
                        order.price,
                        order.quantity,
                    )
                )
        aaa = [(t, q) for t, side, i, _, q in seen if i == AAA]
        ccc = [(t, p, q) for t, side, i, p, q in seen if i == CCC]
        # Every AAA tranche is the cap, 10 @ 9.9 (AAA has no LOT_SIZE step), never more.
        assert [q for _, q in aaa] == [D(10), D(10)]
        assert all(side is Side.SELL for _, side, i, _, _ in seen if i == AAA)
        # Its second tranche waits its 2 s after the first closed (20 ms later).
        assert aaa[1][0] - aaa[0][0] >= timedelta(seconds=2, milliseconds=20)
        # CCC goes the next tick after round 1 closed, paid by its sales: 99 - 0.099 = 98.901;
        # 98.901 / 1.001 / 5.05 = 19.5647..., down to the step: 19.564 (the cap allows 19.6).
        assert ccc[0] == (aaa[0][0] + timedelta(milliseconds=100), D("5.05"), D("19.564"))
        # After AAA's second tranche (cash 0.0040018 + 98.901), CCC buys again at the next
        # tick, while AAA waits: (98.901 + 0.0040018) / 1.001 / 5.05 = 19.5656... -> 19.565.
        assert ccc[1] == (aaa[1][0] + timedelta(milliseconds=100), D("5.05"), D("19.565"))
        holdings = world.engine.solver.holdings
        assert holdings.held_of(IDX, AAA) == D(30)
        assert holdings.held_of(IDX, CCC) == D("19.564") + D("19.565")


def test_the_tranche_cap_counts_only_what_goes_to_the_exchange() -> None:
    """Review (issue 12 #4): the cap of 99 USDC a round (10 AAA at 9.9) is meant for the
    venue. carol's buy of 10 units of version 2 (1 AAA each) forms in the round's tick and
    takes 10 of the 25 AAA to sell by crossing, at the mid 10, no fee; the round still sends
    the venue a full tranche, 10 @ 9.9. (It sized the sale 10 before: all crossed, nothing
    for the venue that round.)"""
    with money_context():
        state = _world(rebalance_interval="2s", rebalance_max_tranche="99")
        world = state.world
        carol = state.client("carol")
        world.deposit(carol, D("404.903"))  # 10 units x 40.3 x 1.001 + the bridge's 1.5
        world.advance(duration("4s"))  # ready before the round's tick
        start = len(world.log.exchange_orders)
        world.submit(_proposal())
        world.submit(NewIndexOrderRequest(carol, ClientOrderId("C1"), IDX, Side.BUY, D("404.903")))
        world.advance(duration("100ms"))
        aaa = [o for o in world.log.exchange_orders[start:] if o.instrument == AAA]
        assert [(o.side, o.price, o.quantity) for o in aaa] == [(Side.SELL, D("9.9"), D(10))]
        rebalance = world.engine.rebalance.active.get(IDX)
        assert rebalance is not None and rebalance.assets[AAA].crossed == D(-10)  # given
        world.advance(duration("3s"))
        (invoice,) = [m for m in world.log.for_client(carol) if isinstance(m, MintInvoice)]
        assert invoice.filled_quantity == D(10)
        crossed = [lot for lot in invoice.lots if lot.asset == AAA]
        assert [(lot.quantity, lot.price, lot.fee) for lot in crossed] == [(D(10), D(10), 0)]


def _move_book(state: ScenarioRun, symbol: Any, bid: str, ask: str) -> None:
    world = state.world
    world.exchange.books[symbol].apply_snapshot([(D(bid), D(300))], [(D(ask), D(300))])
    for snapshot in world.exchange.snapshots():
        if snapshot.instrument == symbol:
            world.submit(snapshot)


@pytest.mark.parametrize("base_commission", [False, True])
def test_buys_are_grossed_up_for_a_base_asset_commission(base_commission: bool) -> None:
    """A venue taking a buy's commission in the bought asset (Binance without BNB, SPEC §6):
    the round sends need / (1 - rate), rounded down onto the step, so the asset ends within one
    LOT_SIZE step of its target instead of short by the commission.

    Cut-over at the mids AAA 10, BBB 20, CCC 5: targets AAA 25, BBB 25, CCC 50 (as scenario
    15). The books then move within the 2% band: AAA 10.05/10.25, CCC 4.9/5.0. Round 1 sells
    25 AAA @ 10.05 = 251.25 (fee 0.25125, in USDC: a sell's commission is in the quote): cash
    250.99875. Round 2 buys CCC @ 5.0: need 50 / 0.999 = 50.0500500..., down to the step
    0.001: 50.05, costing 250.25 (cash / 1.001 = 250.748... pays it, no scaling); the venue
    keeps 50.05 x 0.001 = 0.05005 CCC: 49.99995 arrive, 0.00005 short (< the 0.001 step).
    Without the rate in the rules (the old sizing) 50 are sent and 49.95 arrive: 0.05 short.
    """
    ccc_rules = {"step_size": "0.001", "buy_base_commission": "0.001" if base_commission else "0"}
    with money_context():
        state = _world({"CCCUSDC": ccc_rules}, rebalance_interval="1s")
        world = state.world
        world.exchange.behaviour[CCC] = Behaviour(commission_in_base=True)
        world.submit(_proposal())
        _move_book(state, AAA, "10.05", "10.25")
        _move_book(state, CCC, "4.9", "5.0")
        world.advance(duration("1s"))
        rebalance_orders = [o for o in world.log.exchange_orders if o.batch_id > 1]
        sent = D("50.05") if base_commission else D(50)
        assert [(o.instrument, o.side, o.price, o.quantity) for o in rebalance_orders] == [
            (AAA, Side.SELL, D("10.05"), D(25)),
            (CCC, Side.BUY, D("5.0"), sent),
        ]
        end = world.log.rebalances[-1]
        assert end.kind == "completed"
        assert end.reason == "on target (what is left is below min_asset_volley)"
        ccc = next(a for a in end.assets if a.instrument == CCC)
        arrived = sent - sent * D("0.001")
        assert (ccc.target, ccc.held, ccc.bought) == (D(50), arrived, arrived)
        assert ccc.left == (D("0.00005") if base_commission else D("0.05"))
        # Tracking error = |left| x mid / value (AAA 25 x 10.15, BBB 25 x 20, CCC held x 4.95,
        # cash 250.99875 - sent x 5.0).
        value = D(25) * D("10.15") + D(500) + arrived * D("4.95") + D("250.99875") - sent * 5
        assert end.cash == D("250.99875") - sent * 5
        assert end.accuracy == round_rate(1 - ccc.left * D("4.95") / value)
        assert end.left_value == round_usdc(ccc.left * D("4.95"))


def test_the_cut_over_while_clients_buy_and_sell_names_each_basket_version() -> None:
    """The cut-over rule (docs/decisions.md): a buy batch open at the cut-over keeps basket
    version 1 (bob: 2 AAA + 1 BBB per unit, invoice version 1); a buy formed after it buys
    version 2 (carol: 1 AAA + 1 BBB + 2 CCC, invoice version 2); a redemption during the rounds
    sells the holdings pro rata and names version 2, and no round opens beside its batch.
    Tranches of 99 USDC 2 s apart keep the rounds going while carol buys and alice sells."""
    with money_context():
        state = _world(rebalance_interval="2s", rebalance_max_tranche="99")
        world = state.world
        bob, carol, alice = state.client("bob"), state.client("carol"), state.client("alice")
        world.deposit(bob, D("1010.0075"))
        world.submit(NewIndexOrderRequest(bob, ClientOrderId("B1"), IDX, Side.BUY, D("1010.0075")))
        for _ in range(100):  # until bob's batch is at the venue, its fills 20 ms away
            world.advance(duration("100ms"))
            if any(b.batch_id == 2 and b.kind == "created" for b in world.log.batches):
                break
        assert not any(b.batch_id == 2 and b.kind == "completed" for b in world.log.batches)
        world.submit(_proposal())  # version 2 while bob's version-1 batch is open
        assert world.engine.baskets[IDX].version == 2
        world.deposit(carol, D("1010.0075"))
        world.submit(
            NewIndexOrderRequest(carol, ClientOrderId("C1"), IDX, Side.BUY, D("1010.0075"))
        )
        world.advance(duration("3s"))
        world.submit(NewIndexOrderRequest(alice, ClientOrderId("S1"), IDX, Side.SELL, D(10)))
        world.advance(duration("30s"))

        def invoice(client: Any, kind: type) -> Any:
            (found,) = [m for m in world.log.for_client(client) if isinstance(m, kind)]
            return found

        def per_asset(lots: Any) -> dict[Any, Decimal]:
            totals: dict[Any, Decimal] = {}
            for lot in lots:
                totals[lot.asset] = totals.get(lot.asset, D(0)) + lot.quantity
            return totals

        # bob: 1008.5075 / 1.001 / 40.3 = 25 units of version 1 (P = 2 x 10.1 + 20.1).
        bobs = invoice(bob, MintInvoice)
        assert (bobs.basket_version, bobs.filled_quantity) == (1, D(25))
        assert per_asset(bobs.lots) == {AAA: D(50), BBB: D(25)}
        # carol: version 2 costs the same P = 10.1 + 20.1 + 2 x 5.05 = 40.3: 25 units.
        carols = invoice(carol, MintInvoice)
        assert (carols.basket_version, carols.filled_quantity) == (2, D(25))
        assert per_asset(carols.lots) == {AAA: D(25), BBB: D(25), CCC: D(50)}
        # alice's redemption, during the rebalance (it completes later), names version 2.
        redeemed = invoice(alice, RedemptionInvoice)
        assert (redeemed.basket_version, redeemed.redeemed_quantity) == (2, D(10))
        kinds = [(r.kind, r.round) for r in world.log.rebalances]
        assert kinds[0] == ("started", 0) and kinds[-1][0] == "completed"
        # No round opens while the redemption's sell batch is open.
        events = world.log.batches
        sell = [n for n, b in enumerate(events) if b.details.get("side") == "sell"]
        assert len(sell) == 2
        between = events[sell[0] : sell[1]]
        assert not [
            b for b in between if b.details.get("side") == "rebalance" and b.kind == "created"
        ]
        # The rounds went on through both: the end counts every unit (25 + 25 + 25 - 10) and
        # comes after alice's sale; it stops when the sales' cash cannot buy min_asset_volley.
        end = world.log.rebalances[-1]
        assert end.units == D(65)
        assert [b.kind for b in events[sell[1] :] if b.details.get("side") == "rebalance"]
        assert end.reason == "sales spent: what is left to buy stays underweight"
        assert end.cash / D("1.001") < D(5)
        assert [a.left for a in end.assets if a.instrument != CCC] == [0, 0]
