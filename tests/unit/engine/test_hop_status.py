"""A hop whose outcome is unknown (the chain call timed out) is asked about by transfer id
before anything is resent: done completes it once, pending waits, not found resends it
under the same id (docs/adapters.md)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from indexmaker.core.clock import ManualClock
from indexmaker.core.events import (
    Alert,
    Command,
    HopCompleted,
    HopFailed,
    HopReport,
    HopState,
    HopStatusUnknown,
    QueryHop,
    RouteCollateral,
    Tick,
)
from indexmaker.core.ids import Designation, TransferId
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.engine import Engine, EngineSetup

from .test_engine import ALICE, BASKETS, RULES, deposit_event, fingerprint

D = Decimal
T1 = TransferId("T1")


def routed() -> tuple[Engine, RouteCollateral]:
    engine = Engine(EngineSetup(BASKETS, rules=RULES), ManualClock())
    (route,) = engine.handle(deposit_event(ALICE, 1, D("100"), Designation("EVM:ARBITRUM:USDC")))
    assert isinstance(route, RouteCollateral) and route.transfer_id == T1
    assert route.from_block == 1  # the deposit's block (deposit_event's: its seq): issue 11
    return engine, route


def test_an_unknown_hop_is_queried_by_its_transfer_id_and_never_resent_on_a_guess() -> None:
    engine, route = routed()
    (query,) = engine.handle(HopStatusUnknown(T1, "hop timed out after 5.0s"))
    assert query == QueryHop(T1, route.bridge, route.amount)
    # The chain could not be asked: asked again, still nothing resent.
    assert engine.handle(HopStatusUnknown(T1, "status query failed")) == [query]


def test_a_hop_that_happened_completes_once_and_is_not_repeated() -> None:
    engine, route = routed()
    engine.handle(HopStatusUnknown(T1, "timed out"))
    (next_hop,) = engine.handle(HopReport(T1, HopState.DONE, D("99.5"), D("0.5")))
    # Done counts as the completion: the lot goes on to its next hop, from what arrived.
    assert isinstance(next_hop, RouteCollateral) and next_hop.transfer_id == "T2"
    assert next_hop.amount == D("99.5") and next_hop.source == route.destination
    before = fingerprint(engine)
    # The chain's own completion arriving afterwards is the same news: no alert, no change.
    assert engine.handle(HopCompleted(T1, D("99.5"), D("0.5"))) == []
    assert engine.handle(HopReport(T1, HopState.DONE, D("99.5"), D("0.5"))) == []
    assert engine.handle(HopReport(T1, HopState.NOT_FOUND)) == []
    assert fingerprint(engine) == before


def test_a_pending_hop_waits_for_its_completion() -> None:
    engine, _ = routed()
    engine.handle(HopStatusUnknown(T1, "timed out"))
    assert engine.handle(HopReport(T1, HopState.PENDING)) == []
    (next_hop,) = engine.handle(HopCompleted(T1, D("99.5"), D("0.5")))
    assert isinstance(next_hop, RouteCollateral) and next_hop.transfer_id == "T2"


def test_a_hop_that_provably_did_not_happen_is_resent_under_the_same_id_then_given_up() -> None:
    engine, route = routed()
    engine.handle(HopStatusUnknown(T1, "timed out"))
    (resend,) = engine.handle(HopReport(T1, HopState.NOT_FOUND, reason="no such transfer"))
    assert resend == route  # the same key: a late original and the resend cannot both move
    engine.handle(HopStatusUnknown(T1, "timed out"))
    (resend,) = engine.handle(HopReport(T1, HopState.NOT_FOUND))
    assert resend == route
    engine.handle(HopStatusUnknown(T1, "timed out"))
    (alert,) = engine.handle(HopReport(T1, HopState.NOT_FOUND, reason="no such transfer"))
    assert isinstance(alert, Alert) and alert.code == "route_failed"
    assert "T1" in alert.message and "no such transfer" in alert.message
    assert engine.handle(HopStatusUnknown(T1, "timed out")) == []  # no longer in flight


def test_a_given_up_lot_stays_the_clients_is_named_and_the_next_deposit_resumes_it() -> None:
    engine, route = routed()
    for _ in range(2):
        engine.handle(HopStatusUnknown(T1, "across: 3 deposits expired unfilled"))
        engine.handle(HopReport(T1, HopState.NOT_FOUND))
    engine.handle(HopStatusUnknown(T1, "across: 3 deposits expired unfilled"))
    (alert,) = engine.handle(HopReport(T1, HopState.NOT_FOUND, reason="expired unfilled"))
    # The alert names the lot, where it waits and how it resumes.
    assert isinstance(alert, Alert) and alert.code == "route_failed"
    assert "lot EVM:ARBITRUM:USDC#1 of client" in alert.message and ALICE[1] in alert.message
    assert "(100 USDC) waits at EVM:ARBITRUM:USDC after the across hop" in alert.message
    assert "on the next deposit" in alert.message
    # Still the client's: in transit (unconfirmed), held at the source chain.
    (lot,) = engine.collateral.ledger(ALICE).lots
    assert not lot.ready and lot.location == route.source and "gave up" in lot.held
    assert engine.collateral.position(ALICE).unconfirmed == D(100)
    assert engine.router.given_up() == [lot]
    # The next deposit routes itself and resumes the given-up hop: the same hop key (the
    # adapter carries on from its earlier on-chain steps), a new transfer id, fresh tries.
    new, resumed = engine.handle(deposit_event(ALICE, 2, D("50"), route.source))
    assert isinstance(new, RouteCollateral) and new.amount == D(50)
    assert isinstance(resumed, RouteCollateral) and resumed.transfer_id not in (T1, new.transfer_id)
    assert (resumed.hop_key, resumed.amount, resumed.bridge) == (
        route.hop_key,
        route.amount,
        route.bridge,
    )
    assert lot.held == "" and engine.router.given_up() == []
    # Resumed once only: a third deposit has nothing more to resume.
    (third,) = engine.handle(deposit_event(ALICE, 3, D("10"), route.source))
    assert third.hop_key != route.hop_key
    # The resumed hop completes: the lot goes on to the next hop from what arrived.
    (next_hop,) = engine.handle(HopCompleted(resumed.transfer_id, D("99.5"), D("0.5")))
    assert isinstance(next_hop, RouteCollateral) and next_hop.source == route.destination


def test_a_refused_hop_given_up_after_its_retries_is_held_and_resumed_too() -> None:
    engine, route = routed()
    failed = T1
    for _ in range(2):
        (retry,) = engine.handle(HopFailed(failed, "refused"))
        assert isinstance(retry, RouteCollateral)
        failed = retry.transfer_id
    (alert,) = engine.handle(HopFailed(failed, "refused"))
    assert isinstance(alert, Alert) and f"{failed} failed for good: refused; lot" in alert.message
    _, resumed = engine.handle(deposit_event(ALICE, 2, D("50"), route.source))
    assert isinstance(resumed, RouteCollateral) and resumed.hop_key == route.hop_key


def test_a_done_report_without_an_amount_is_refused_without_a_change() -> None:
    engine, _ = routed()
    before = fingerprint(engine)
    (alert,) = engine.handle(HopReport(T1, HopState.DONE))
    assert isinstance(alert, Alert) and "amount_received" in alert.message
    assert fingerprint(engine) == before


def pending(interval: int = 30, alert: int = 600) -> tuple[Engine, ManualClock, QueryHop]:
    """T1 timed out and the chain answered PENDING; its completion push is then lost."""
    clock = ManualClock()
    config = SolverConfig(
        hop_query_interval=timedelta(seconds=interval), hop_pending_alert=timedelta(seconds=alert)
    )
    engine = Engine(EngineSetup(BASKETS, rules=RULES, config=config), clock)
    engine.handle(deposit_event(ALICE, 1, D("100"), Designation("EVM:ARBITRUM:USDC")))
    (query,) = engine.handle(HopStatusUnknown(T1, "timed out"))
    assert engine.handle(HopReport(T1, HopState.PENDING)) == []
    return engine, clock, query


def asked(engine: Engine, clock: ManualClock) -> list[Command]:
    """The questions and alerts of one tick now."""
    return [c for c in engine.handle(Tick(clock.now())) if isinstance(c, QueryHop | Alert)]


def test_a_pending_hop_is_asked_about_again_after_the_interval_until_it_completes() -> None:
    engine, clock, query = pending()
    clock.advance(timedelta(seconds=29.9))
    assert asked(engine, clock) == []  # not before the interval
    clock.advance(timedelta(seconds=0.1))
    assert asked(engine, clock) == [query]  # the same question, never a resend
    clock.advance(timedelta(seconds=60))
    assert asked(engine, clock) == []  # one question out: its answer re-arms
    engine.handle(HopReport(T1, HopState.PENDING))
    clock.advance(timedelta(seconds=30))
    assert asked(engine, clock) == [query]
    (next_hop,) = engine.handle(HopReport(T1, HopState.DONE, D("99.5"), D("0.5")))
    assert isinstance(next_hop, RouteCollateral) and next_hop.transfer_id == "T2"
    assert engine.pending_hops.asking() == []
    clock.advance(timedelta(minutes=10))
    assert asked(engine, clock) == []


def test_a_hop_pending_too_long_is_alerted_once_and_no_longer_asked_about() -> None:
    engine, clock, _ = pending(interval=30, alert=60)
    questions = 0
    alerts: list[Alert] = []
    for _ in range(20):  # 10 simulated minutes; the chain keeps saying PENDING
        clock.advance(timedelta(seconds=30))
        for command in asked(engine, clock):
            if isinstance(command, QueryHop):
                questions += 1
                engine.handle(HopReport(T1, HopState.PENDING))
            else:
                alerts.append(command)
    assert questions == 1  # at 30 s; at 60 s it has been pending for the alert's time
    assert [a.code for a in alerts] == ["hop_pending"] and "T1" in alerts[0].message
    # A late completion still completes it, and the watch ends.
    (next_hop,) = engine.handle(HopCompleted(T1, D("99.5"), D("0.5")))
    assert isinstance(next_hop, RouteCollateral) and engine.pending_hops.asking() == []


def test_a_pending_hop_that_completes_by_its_push_is_not_asked_about_again() -> None:
    engine, clock, _ = pending()
    engine.handle(HopCompleted(T1, D("99.5"), D("0.5")))
    clock.advance(timedelta(minutes=5))
    assert asked(engine, clock) == []


def test_an_interval_longer_than_the_alert_time_is_refused() -> None:
    with pytest.raises(ValueError, match="hop_query_interval"):
        SolverConfig(
            hop_query_interval=timedelta(minutes=5), hop_pending_alert=timedelta(minutes=1)
        )
