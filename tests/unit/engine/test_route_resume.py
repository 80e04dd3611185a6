"""A given-up collateral hop is routed again (issue 11): `route_retry_after` later on the
core's clock, by a `ResumeRoutes` input (the operator's, one lot or every one; the restart's),
always under its hop key, once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from indexmaker.core.clock import ManualClock
from indexmaker.core.events import (
    Alert,
    Command,
    HopCompleted,
    HopFailed,
    ResumeRoutes,
    RouteCollateral,
    Tick,
)
from indexmaker.core.ids import Designation
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.engine import Engine, EngineSetup
from indexmaker.engine.route_resume import given_up_view

from .test_engine import ALICE, BASKETS, BOB, RULES, deposit_event, fingerprint

D = Decimal
ARB = Designation("EVM:ARBITRUM:USDC")
RETRY = timedelta(minutes=5)


def routes(commands: list[Command]) -> list[RouteCollateral]:
    return [c for c in commands if isinstance(c, RouteCollateral)]


def alerts(commands: list[Command], code: str) -> list[Alert]:
    return [c for c in commands if isinstance(c, Alert) and c.code == code]


def give_up(engine: Engine, route: RouteCollateral) -> Alert:
    """Refuse `route` until the router gives it up; the route_failed alert."""
    failed = route
    for _ in range(2):
        (failed,) = routes(engine.handle(HopFailed(failed.transfer_id, "refused")))
    (alert,) = engine.handle(HopFailed(failed.transfer_id, "pool paused"))
    assert isinstance(alert, Alert) and alert.code == "route_failed"
    return alert


def given_up_engine(lots: int = 1) -> tuple[Engine, ManualClock, list[RouteCollateral]]:
    clock = ManualClock()
    config = SolverConfig(route_retry_after=RETRY)
    engine = Engine(EngineSetup(BASKETS, rules=RULES, config=config), clock)
    firsts = []
    for n, client in enumerate((ALICE, BOB)[:lots], start=1):
        (route,) = engine.handle(deposit_event(client, n, D(100 * n), ARB))
        firsts.append(route)
    for route in firsts:  # a deposit resumes the given-up: both deposited first
        give_up(engine, route)
    return engine, clock, firsts


def test_the_alert_names_every_way_the_lot_resumes() -> None:
    clock = ManualClock()
    config = SolverConfig(route_retry_after=RETRY)
    engine = Engine(EngineSetup(BASKETS, rules=RULES, config=config), clock)
    (route,) = engine.handle(deposit_event(ALICE, 1, D(100), ARB))
    alert = give_up(engine, route)
    at = (clock.now() + RETRY).isoformat()
    assert "pool paused; lot EVM:ARBITRUM:USDC#1 of client" in alert.message
    assert f"routed again at {at} ([solver] route_retry_after)" in alert.message
    assert "on the next deposit, when the service restarts" in alert.message
    assert "`indexmaker routes resume --lot EVM:ARBITRUM:USDC#1`" in alert.message
    (view,) = given_up_view(engine)
    assert view["lot"] == "EVM:ARBITRUM:USDC#1" and view["amount"] == "100"
    assert view["reason"] == "pool paused" and view["retry_at"] == at
    assert view["given_up_at"] == clock.now().isoformat() and "gave up" in str(view["waits"])


def test_a_given_up_hop_is_routed_again_after_route_retry_after_once() -> None:
    engine, clock, (route,) = given_up_engine()
    clock.advance(RETRY - timedelta(seconds=1))
    assert routes(engine.handle(Tick(clock.now()))) == []
    clock.advance(timedelta(seconds=1))
    out = engine.handle(Tick(clock.now()))
    (resumed,) = routes(out)
    # The same hop (its key: the bridge adapter carries on from the chain), a new id.
    assert (resumed.hop_key, resumed.amount, resumed.source) == (
        route.hop_key,
        route.amount,
        route.source,
    )
    assert resumed.transfer_id != route.transfer_id
    (note,) = alerts(out, "route_resumed")
    assert "lot EVM:ARBITRUM:USDC#1 resumed (300 s after it was given up)" in note.message
    assert engine.router.given_up() == [] and given_up_view(engine) == []
    (lot,) = engine.collateral.ledger(ALICE).lots
    assert lot.held == "" and not lot.ready
    clock.advance(RETRY * 3)
    assert routes(engine.handle(Tick(clock.now()))) == []  # once
    # Given up again, it backs off again from that time.
    give_up(engine, resumed)
    clock.advance(RETRY - timedelta(seconds=1))
    assert routes(engine.handle(Tick(clock.now()))) == []
    clock.advance(timedelta(seconds=1))
    (again,) = routes(engine.handle(Tick(clock.now())))
    assert again.hop_key == route.hop_key
    (next_hop,) = routes(engine.handle(HopCompleted(again.transfer_id, D("99.5"), D("0.5"))))
    assert next_hop.source == route.destination


def test_resume_routes_one_lot_by_name_or_every_lot() -> None:
    engine, _, (first, second) = given_up_engine(lots=2)
    out = engine.handle(ResumeRoutes("EVM:ARBITRUM:USDC#2", "operator"))
    (resumed,) = routes(out)
    assert resumed.hop_key == second.hop_key and resumed.client == BOB
    (note,) = alerts(out, "route_resumed")
    assert note.message.startswith("lot EVM:ARBITRUM:USDC#2 resumed (operator)")
    assert [v["lot"] for v in given_up_view(engine)] == ["EVM:ARBITRUM:USDC#1"]
    (rest,) = routes(engine.handle(ResumeRoutes(None, "operator")))
    assert rest.hop_key == first.hop_key
    # Nothing given up any more: every-lot is no news, a named lot is refused.
    assert engine.handle(ResumeRoutes(None, "operator")) == []
    before = fingerprint(engine)
    (alert,) = engine.handle(ResumeRoutes("EVM:ARBITRUM:USDC#1", "operator"))
    assert alert.code == "InvalidInputError"
    assert "lot: EVM:ARBITRUM:USDC#1 is not a given-up lot (given up: none)" in alert.message
    assert fingerprint(engine) == before


def test_an_unknown_lot_is_refused_naming_the_given_up_ones_nothing_changed() -> None:
    engine, _, _ = given_up_engine()
    before = fingerprint(engine)
    (alert,) = engine.handle(ResumeRoutes("EVM:ARBITRUM:USDC#7", "operator"))
    assert isinstance(alert, Alert)
    assert "EVM:ARBITRUM:USDC#7 is not a given-up lot (given up: EVM:ARBITRUM:USDC#1)" in (
        alert.message
    )
    assert fingerprint(engine) == before and len(engine.router.given_up()) == 1


def test_replay_gives_the_same_lots_up_and_resumes_them_at_the_same_tick() -> None:
    engine, clock, _ = given_up_engine(lots=2)
    engine.handle(ResumeRoutes("EVM:ARBITRUM:USDC#1", "operator"))
    clock.advance(RETRY)
    live = engine.handle(Tick(clock.now()))
    entries = list(engine.journal.entries())  # type: ignore[attr-defined]
    again = Engine(EngineSetup(BASKETS, rules=RULES, config=engine.setup.config), ManualClock())
    replayed = again.replay(entries[:-1])
    assert [v["lot"] for v in given_up_view(again)] == ["EVM:ARBITRUM:USDC#2"]
    assert routes(replayed)[-1].hop_key.startswith("EVM:ARBITRUM:USDC#1")
    assert again.replay(entries[-1:]) == live
    assert fingerprint(again) == fingerprint(engine)


def test_lots_held_below_their_route_s_cost_are_listed_apart() -> None:
    from indexmaker.core.events import RouteCostQuoted
    from indexmaker.engine.route_resume import held_view

    engine = Engine(EngineSetup(BASKETS, rules=RULES), ManualClock())
    engine.handle(RouteCostQuoted(ARB, "across", D("0.85")))
    engine.handle(RouteCostQuoted(Designation("EVM:BASE:USDC"), "wallet", D("0.21")))
    assert routes(engine.handle(deposit_event(ALICE, 1, D("0.5"), ARB))) == []
    (view,) = held_view(engine)
    assert (view["lot"], view["amount"], view["location"]) == (
        "EVM:ARBITRUM:USDC#1",
        "0.5",
        "EVM:ARBITRUM:USDC",
    )
    assert view["waits"].startswith("held: below the route's cost")
    assert given_up_view(engine) == []  # not given up: the next deposit moves it
