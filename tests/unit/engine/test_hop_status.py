"""A hop whose outcome is unknown (the chain call timed out) is asked about by transfer id
before anything is resent: done completes it once, pending waits, not found resends it
under the same id (docs/adapters.md)."""

from __future__ import annotations

from decimal import Decimal

from indexmaker.core.clock import ManualClock
from indexmaker.core.events import (
    Alert,
    HopCompleted,
    HopReport,
    HopState,
    HopStatusUnknown,
    QueryHop,
    RouteCollateral,
)
from indexmaker.core.ids import Designation, TransferId
from indexmaker.engine.engine import Engine, EngineSetup

from .test_engine import ALICE, BASKETS, RULES, deposit_event, fingerprint

D = Decimal
T1 = TransferId("T1")


def routed() -> tuple[Engine, RouteCollateral]:
    engine = Engine(EngineSetup(BASKETS, rules=RULES), ManualClock())
    (route,) = engine.handle(deposit_event(ALICE, 1, D("100"), Designation("EVM:ARBITRUM:USDC")))
    assert isinstance(route, RouteCollateral) and route.transfer_id == T1
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


def test_a_done_report_without_an_amount_is_refused_without_a_change() -> None:
    engine, _ = routed()
    before = fingerprint(engine)
    (alert,) = engine.handle(HopReport(T1, HopState.DONE))
    assert isinstance(alert, Alert) and "amount_received" in alert.message
    assert fingerprint(engine) == before
