"""Lots below the cost of their route are held on their chain, merged with the client's next
lot there and routed as one hop once they cover it (issue 11, engine/route_holds.py)."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest

from indexmaker.core.clock import ManualClock
from indexmaker.core.codec import encode
from indexmaker.core.events import (
    Alert,
    Command,
    HopCompleted,
    NewIndexOrderRequest,
    NewIndexOrderResponse,
    RouteCollateral,
    RouteCostQuoted,
    SendToClient,
)
from indexmaker.core.ids import ClientKey, ClientOrderId, Symbol, TransferId
from indexmaker.engine.collateral import ClientLedger, CollateralLot
from indexmaker.engine.engine import (
    EXCHANGE_ACCOUNT,
    SOURCE_CHAIN,
    TRADING_CHAIN,
    Engine,
    EngineSetup,
)
from indexmaker.engine.route_holds import merge_lots
from indexmaker.model.side import Side
from indexmaker.query import views

from .test_engine import ALICE, BASKETS, RULES, deposit_event

D = Decimal
BOB = ClientKey((42161, "0x" + "b" * 40))
ACROSS_COST, WALLET_COST = D("0.85"), D("0.210001")  # route from 42161: 1.060001


def engine() -> Engine:
    return Engine(EngineSetup(BASKETS, rules=RULES), ManualClock())


def quoted() -> Engine:
    e = engine()
    assert e.handle(RouteCostQuoted(SOURCE_CHAIN, "across", ACROSS_COST)) == []
    assert e.handle(RouteCostQuoted(TRADING_CHAIN, "wallet", WALLET_COST)) == []
    return e


def routes(commands: list[Command]) -> list[RouteCollateral]:
    return [c for c in commands if isinstance(c, RouteCollateral)]


def held(e: Engine, client: ClientKey = ALICE) -> list[CollateralLot]:
    return [lot for lot in e.collateral.ledger(client).lots if lot.below_cost]


def state(e: Engine) -> list[object]:
    """Every lot and hold as text: what replay must rebuild exactly."""
    lots = [
        (c, lot.name, repr(lot.gross), repr(lot.fee), lot.location, lot.held, lot.below_cost)
        for c in e.collateral.clients()
        for lot in e.collateral.ledger(c).lots
    ]
    holds = [(lot.client, lot.name) for lot in e.route_holds.held()]
    return [lots, holds, e.router.in_flight()]


def test_a_deposit_below_the_route_cost_is_held_not_in_transit() -> None:
    e = quoted()
    out = e.handle(deposit_event(ALICE, 1, D("0.5"), SOURCE_CHAIN))
    assert routes(out) == []  # no Across deposit
    (alert,) = [c for c in out if isinstance(c, Alert)]
    assert alert.code == "collateral_held"
    (lot,) = held(e)
    assert lot.held == f"held: below the route's cost 1.060001 USDC on {SOURCE_CHAIN}"
    assert lot.held in alert.message
    position = e.collateral.position(ALICE)
    assert (position.held, position.unconfirmed, position.ready) == (D("0.5"), 0, 0)
    # The query API (/v1/collateral): the figure apart, the lot's status.
    answer = views.client_collateral(e, ALICE)
    assert answer is not None and (answer.held, answer.unconfirmed) == (D("0.5"), 0)
    assert answer.lots[0].held == lot.held
    assert answer.model_dump(mode="json")["held"] == "0.500000"


def test_held_lots_are_merged_with_the_next_deposit_and_routed_as_one_hop() -> None:
    e = quoted()
    e.handle(deposit_event(ALICE, 1, D("0.5"), SOURCE_CHAIN))
    e.handle(deposit_event(ALICE, 2, D("0.3"), SOURCE_CHAIN))  # 0.8: still below
    assert len(held(e)) == 2 and e.collateral.position(ALICE).held == D("0.8")
    # Another client's lot there is no help to Alice.
    assert routes(e.handle(deposit_event(BOB, 3, D("0.5"), SOURCE_CHAIN))) == []
    (route,) = routes(e.handle(deposit_event(ALICE, 4, D("0.260002"), SOURCE_CHAIN)))
    # One hop of the combined amount, under a key no single deposit's hop had.
    name = f"{SOURCE_CHAIN}#1+{SOURCE_CHAIN}#2+{SOURCE_CHAIN}#4"
    assert (route.amount, route.hop_key) == (D("1.060002"), f"{name}:across")
    assert held(e) == [] and [lot.name for lot in e.collateral.ledger(ALICE).lots] == [name]
    position = e.collateral.position(ALICE)
    assert (position.held, position.unconfirmed) == (0, D("1.060002"))
    assert [lot.name for lot in held(e, BOB)] == [f"{SOURCE_CHAIN}#3"]
    # Across charges 0.75; what arrives (0.310002) pays the wallet hop: ready, to the unit.
    (wallet,) = routes(e.handle(HopCompleted(route.transfer_id, D("0.310002"), D("0.75"))))
    assert (wallet.amount, wallet.hop_key) == (D("0.310002"), f"{name}:wallet")
    e.handle(HopCompleted(wallet.transfer_id, D("0.100001"), D("0.210001")))
    (lot,) = e.collateral.ledger(ALICE).lots
    assert lot.ready and lot.location == EXCHANGE_ACCOUNT
    assert (lot.gross, lot.fee, lot.net) == (D("1.060002"), D("0.960001"), D("0.100001"))
    assert e.collateral.unspent(ALICE) == D("0.100001")


def test_a_deposit_above_the_cost_is_routed_at_once_and_alone() -> None:
    e = quoted()
    (route,) = routes(e.handle(deposit_event(ALICE, 1, D("1.060001") + D("1e-6"), SOURCE_CHAIN)))
    assert route.hop_key == f"{SOURCE_CHAIN}#1:across" and held(e) == []


def test_exactly_the_cost_is_held_nothing_would_be_left() -> None:
    e = quoted()
    assert routes(e.handle(deposit_event(ALICE, 1, D("1.060001"), TRADING_CHAIN))) != []
    assert routes(e.handle(deposit_event(ALICE, 2, WALLET_COST, TRADING_CHAIN))) == []
    assert e.collateral.position(ALICE).held == WALLET_COST


def test_without_a_quote_everything_is_routed_as_before() -> None:
    e = engine()
    (route,) = routes(e.handle(deposit_event(ALICE, 1, D("0.000001"), SOURCE_CHAIN)))
    assert route.amount == D("0.000001") and route.hop_key == f"{SOURCE_CHAIN}#1:across"


def test_a_hop_that_delivers_less_than_the_next_hop_costs_leaves_a_held_lot_there() -> None:
    e = quoted()
    (route,) = routes(e.handle(deposit_event(ALICE, 1, D("2"), SOURCE_CHAIN)))
    # Gas spiked: only 0.2 arrived on 8453, below the wallet hop's 0.210001.
    assert routes(e.handle(HopCompleted(route.transfer_id, D("0.2"), D("1.8")))) == []
    (lot,) = held(e)
    assert (lot.location, lot.net) == (TRADING_CHAIN, D("0.2"))
    assert lot.held == f"held: below the route's cost 0.210001 USDC on {TRADING_CHAIN}"
    # Nothing at all arrived: the lot is still there, held (its fees on record), never sent.
    (route,) = routes(e.handle(deposit_event(BOB, 2, D("2"), SOURCE_CHAIN)))
    assert routes(e.handle(HopCompleted(route.transfer_id, D(0), D(2)))) == []
    (bob,) = held(e, BOB)
    assert (bob.net, bob.fee) == (0, D(2)) and e.collateral.ledger(BOB).fees == D(2)
    # Alice's next deposit on 8453 joins the lot that arrived there: one wallet hop.
    (wallet,) = routes(e.handle(deposit_event(ALICE, 3, D("0.5"), TRADING_CHAIN)))
    assert wallet.amount == D("0.7")
    assert wallet.hop_key == f"{SOURCE_CHAIN}#1+{TRADING_CHAIN}#3:wallet"


def test_a_lower_quote_routes_what_it_now_covers_in_the_order_held() -> None:
    e = quoted()
    e.handle(deposit_event(ALICE, 1, D("0.9"), SOURCE_CHAIN))
    e.handle(deposit_event(BOB, 2, D("0.5"), SOURCE_CHAIN))
    e.handle(deposit_event(BOB, 3, D("0.5"), SOURCE_CHAIN))
    assert e.handle(RouteCostQuoted(SOURCE_CHAIN, "across", D("0.9"))) == []  # 1.110001
    # Still held: their status names the cost they are below now.
    assert {lot.held for lot in held(e) + held(e, BOB)} == {
        f"held: below the route's cost 1.110001 USDC on {SOURCE_CHAIN}"
    }
    out = routes(e.handle(RouteCostQuoted(SOURCE_CHAIN, "across", D("0.5"))))  # 0.710001
    assert [(r.client, r.amount) for r in out] == [(ALICE, D("0.9")), (BOB, D(1))]
    assert out[1].hop_key == f"{SOURCE_CHAIN}#2+{SOURCE_CHAIN}#3:across"
    assert held(e) == held(e, BOB) == []


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (RouteCostQuoted(EXCHANGE_ACCOUNT, "wallet", D(1)), "source"),
        (RouteCostQuoted(SOURCE_CHAIN, "wallet", D(1)), "bridge"),
        (RouteCostQuoted(SOURCE_CHAIN, "across", D(-1)), "cost"),
        (RouteCostQuoted(SOURCE_CHAIN, "across", D("NaN")), "cost"),
        (RouteCostQuoted(SOURCE_CHAIN, "across", D(10) ** 15), "cost"),
    ],
)
def test_a_bad_quote_is_refused_and_changes_nothing(event: RouteCostQuoted, field: str) -> None:
    e = quoted()
    e.handle(deposit_event(ALICE, 1, D("0.5"), SOURCE_CHAIN))
    before = state(e), e.route_holds.quoted(SOURCE_CHAIN)
    (alert,) = e.handle(event)
    assert isinstance(alert, Alert) and alert.code == "InvalidInputError"
    assert f"RouteCostQuoted: {field}: " in alert.message
    assert (state(e), e.route_holds.quoted(SOURCE_CHAIN)) == before


def _story(e: Engine) -> list[Command]:
    out: list[Command] = []
    out += e.handle(RouteCostQuoted(SOURCE_CHAIN, "across", D("0.333333")))
    out += e.handle(RouteCostQuoted(TRADING_CHAIN, "wallet", D("0.1")))
    out += e.handle(deposit_event(ALICE, 1, D("0.1"), SOURCE_CHAIN))
    out += e.handle(deposit_event(ALICE, 2, D("0.2"), SOURCE_CHAIN))
    out += e.handle(deposit_event(BOB, 3, D("0.05"), TRADING_CHAIN))
    out += e.handle(deposit_event(ALICE, 4, D("0.2"), SOURCE_CHAIN))
    (route,) = routes(out)
    out += e.handle(HopCompleted(route.transfer_id, D("0.05"), D("0.45")))
    out += e.handle(deposit_event(ALICE, 5, D("0.1"), TRADING_CHAIN))
    out += e.handle(RouteCostQuoted(TRADING_CHAIN, "wallet", D("0.04")))
    return out


def test_replay_rebuilds_the_same_holds_merges_and_commands() -> None:
    first = engine()
    commands = _story(first)
    assert len(routes(commands)) == 3  # 42161's merged lot, then both 8453 groups
    again = engine()
    # Under a coarse context too: every sum of the holds is exact.
    with localcontext() as ctx:
        ctx.prec = 3
        replayed = again.replay(first.journal.entries())
    assert [encode(c) for c in replayed] == [encode(c) for c in commands]
    assert state(again) == state(first)


def test_a_restored_snapshot_merges_its_own_held_lots() -> None:
    e = quoted()
    e.handle(deposit_event(ALICE, 1, D("0.5"), SOURCE_CHAIN))
    e.handle(deposit_event(ALICE, 2, D("0.5"), SOURCE_CHAIN))
    restored = engine()
    restored.restore(e.snapshot())
    assert state(restored) == state(e)
    (route,) = routes(restored.handle(deposit_event(ALICE, 3, D("0.5"), SOURCE_CHAIN)))
    # The holds and the ledger share their lots after a restore: one merged lot remains.
    assert route.amount == D("1.5")
    (lot,) = restored.collateral.ledger(ALICE).lots
    assert lot.name == f"{SOURCE_CHAIN}#1+{SOURCE_CHAIN}#2+{SOURCE_CHAIN}#3"


def test_sums_are_exact_under_a_coarse_context() -> None:
    e = quoted()
    with localcontext() as ctx:
        ctx.prec = 4
        e.handle(deposit_event(ALICE, 1, D("0.123457"), SOURCE_CHAIN))
        e.handle(deposit_event(ALICE, 2, D("0.936544"), SOURCE_CHAIN))  # 1.060001: held
        assert e.collateral.position(ALICE).held == D("1.060001")
        (route,) = routes(e.handle(deposit_event(ALICE, 3, D("0.000001"), SOURCE_CHAIN)))
    assert route.amount == D("1.060002")
    assert route.transfer_id == TransferId("T1")


def test_a_buy_waiting_for_collateral_names_what_is_held() -> None:
    e = quoted()
    e.handle(deposit_event(ALICE, 1, D("0.5"), SOURCE_CHAIN))
    request = NewIndexOrderRequest(ALICE, ClientOrderId("A1"), Symbol("IDX"), Side.BUY, D(20))
    (response,) = [c.message for c in e.handle(request) if isinstance(c, SendToClient)]
    assert isinstance(response, NewIndexOrderResponse)
    assert response.reason == (
        "waiting for collateral: need 20, ready 0, in transit 0, held 0.5 (below the route's "
        "cost); refused if not ready within 0:30:00"
    )


def test_a_merge_of_many_dust_lots_has_a_name_of_bounded_length() -> None:
    """Forty dust deposits merge into one lot whose name (and hop key) names the first and the
    last lot and their count, not all forty: a client's many tiny deposits cannot grow a hop key
    (and every journal record carrying it) without bound."""
    ledger = ClientLedger()
    lots = [
        CollateralLot(BOB, seq, D("0.01"), SOURCE_CHAIN, available=D("0.01"), origin=SOURCE_CHAIN)
        for seq in range(1, 41)
    ]
    ledger.lots.extend(lots)
    merged = merge_lots(ledger, lots)
    assert merged.name == f"{SOURCE_CHAIN}#1+38 more+{SOURCE_CHAIN}#40"
    assert merged.gross == D("0.40") and ledger.lots == [merged]


def test_dust_deposits_held_together_raise_one_alert_not_one_each() -> None:
    """300 deposits of 1 micro-USDC each (a few cents of gas on a real chain) are held as one
    group with one `collateral_held` alert; every lot still shows its held status."""
    e = quoted()
    out = [
        c
        for seq in range(1, 301)
        for c in e.handle(deposit_event(ALICE, seq, D("0.000001"), SOURCE_CHAIN))
    ]
    assert [c.code for c in out if isinstance(c, Alert)] == ["collateral_held"]
    assert routes(out) == [] and len(held(e)) == 300
    assert e.collateral.position(ALICE).held == D("0.000300")
