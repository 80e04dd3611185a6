"""Session protocol state: seq numbers, timestamp window, limits, fan-out and resend."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from indexmaker.core.errors import RateLimitedError, retry_after_ms
from indexmaker.core.events import FillStatus, IndexOrderFill, IndexQuoteResponse
from indexmaker.core.ids import ClientOrderId, ClientQuoteId, client_key
from indexmaker.engine.throttle import RateLimit
from indexmaker.server.guard import GuardConfig
from indexmaker.server.messages import ParsedRequest, parse_request, prepare_response
from indexmaker.server.session import (
    Outbox,
    Rejected,
    ResendBatch,
    SessionConfig,
    SessionHub,
)
from indexmaker.server.signing import Verified

from .wire_helpers import TEST_ADDRESS, dumps, frame

NOW = datetime(2025, 10, 1, tzinfo=UTC)
CLIENT = client_key(1, TEST_ADDRESS)
OTHER = client_key(1, "0x" + "ab" * 20)


def req(msg_type: str = "NewQuoteRequest", seq: int = 1, **kw: Any) -> ParsedRequest:
    parsed = parse_request(dumps(frame(msg_type, seq=seq, sign=False, **kw)))
    assert isinstance(parsed, ParsedRequest), parsed
    return parsed


def step(hub: SessionHub, session: Any, parsed: ParsedRequest, now: datetime = NOW) -> Any:
    verdict = hub.admit(session, parsed, now)
    if verdict is None:
        hub.accept(session, parsed, authenticated=parsed.needs_signature, now=now)
    return verdict


def fill(order_id: str = "O-1") -> Any:
    return prepare_response(
        IndexOrderFill(
            ClientOrderId(order_id),
            Decimal(1),
            Decimal(1),
            Decimal(0),
            Decimal(1),
            FillStatus.FULLY_MINTABLE,
        ),
        None,
    )


def quote() -> Any:
    response = IndexQuoteResponse(ClientQuoteId("Q-1"), Decimal(1), Decimal(1), Decimal(1))
    return prepare_response(response, None)


# ---------------------------------------------------------------- sequence and time


def test_first_is_one_then_plus_one_and_refusals_do_not_advance() -> None:
    hub = SessionHub()
    s = hub.open_session("s1")
    bad = hub.admit(s, req(seq=2), NOW)
    assert bad == Rejected("Invalid sequence number: 2; Last valid: 0")
    assert step(hub, s, req(seq=1)) is None
    assert isinstance(hub.admit(s, req(seq=1), NOW), Rejected)  # repeat
    assert isinstance(hub.admit(s, req(seq=3), NOW), Rejected)  # gap
    assert step(hub, s, req(seq=2)) is None
    assert s.last_in_seq == 2 and s.expected_seq == 3


def test_admit_alone_does_not_advance() -> None:
    hub = SessionHub()
    s = hub.open_session("s1")
    assert hub.admit(s, req(seq=1), NOW) is None
    # e.g. the signature then failed: no accept(), so seq 1 is still expected
    assert hub.admit(s, req(seq=1), NOW) is None


@pytest.mark.parametrize(("offset", "ok"), [(0, True), (60, True), (-60, True), (61, False)])
def test_timestamp_window(offset: int, ok: bool) -> None:
    hub = SessionHub()
    s = hub.open_session("s1")
    verdict = hub.admit(s, req(), NOW + timedelta(seconds=offset))
    assert (verdict is None) is ok
    if not ok:
        assert verdict is not None and verdict.reason.startswith("Timestamp too far off")


def test_out_seq_is_per_session() -> None:
    hub = SessionHub()
    a, b = hub.open_session("a"), hub.open_session("b")
    assert [a.next_out_seq(), a.next_out_seq(), b.next_out_seq()] == [1, 2, 1]
    with pytest.raises(ValueError):
        hub.open_session("a")


def verified(r: int = 1, digest: bytes = b"d1") -> Verified:
    return Verified(r, digest)


def test_session_carries_several_clients_and_caps_authenticated_sessions() -> None:
    hub = SessionHub(SessionConfig(max_sessions_per_client=1))
    s1, s2 = hub.open_session("s1"), hub.open_session("s2")
    assert step(hub, s1, req()) is None
    assert step(hub, s1, req(seq=2, address="0x" + "ab" * 20)) is None  # a second client
    assert step(hub, s2, req()) is None  # unsigned quotes never count against the cap
    order = req("NewIndexOrder")
    assert hub.authorise(s1, order, verified()) is None
    hub.accept(s1, order, authenticated=True)
    assert s1.is_authenticated(CLIENT) and not s1.is_authenticated(OTHER)
    second = req("NewIndexOrder", seq=2, client_order_id="O-2")
    assert hub.authorise(s2, second, verified(2, b"d2")) == Rejected(
        "too many sessions for this client"
    )
    hub.close_session("s1")
    assert hub.authorise(s2, second, verified(2, b"d2")) is None


def test_unsigned_sessions_naming_a_client_do_not_lock_it_out() -> None:
    # Issue 8: eight sessions each sending one unsigned quote naming a victim.
    hub = SessionHub()
    for n in range(8):
        assert step(hub, hub.open_session(f"squat{n}"), req()) is None
    victim = hub.open_session("victim")
    order = req("NewIndexOrder")
    assert hub.admit(victim, order, NOW) is None
    assert hub.authorise(victim, order, verified()) is None


# ---------------------------------------------------------------- rate limits


def limited(**kw: Any) -> SessionHub:
    return SessionHub(SessionConfig(**kw))


def test_orders_weigh_more_than_quotes() -> None:
    hub = limited(session_limits=(RateLimit("s", 20, timedelta(seconds=10)),))
    s = hub.open_session("s")
    assert step(hub, s, req("NewIndexOrder", seq=1)) is None  # 10
    assert step(hub, s, req("NewQuoteRequest", seq=2)) is None  # 15
    verdict = hub.admit(s, req("NewIndexOrder", seq=3), NOW)  # 25 > 20
    assert verdict is not None and verdict.retry_after == timedelta(seconds=10)
    assert verdict.reason == "Rate limit exceeded (session): retry after 10000 ms"
    assert step(hub, s, req("NewQuoteRequest", seq=3)) is None  # 20: quotes still fit
    later = NOW + timedelta(seconds=10)
    assert (
        step(hub, s, req("NewIndexOrder", seq=4, timestamp="2025-10-01T00:00:10Z"), later) is None
    )


def test_client_limit_spans_sessions_and_global_spans_clients() -> None:
    hub = limited(
        client_limits=(RateLimit("c", 20, timedelta(seconds=1)),),
        global_limits=(RateLimit("g", 30, timedelta(seconds=1)),),
    )
    a, b, c = hub.open_session("a"), hub.open_session("b"), hub.open_session("c")
    assert step(hub, a, req("NewIndexOrder")) is None  # client 10, global 10
    assert step(hub, b, req("NewIndexOrder")) is None  # client 20, global 20
    verdict = hub.admit(a, req(seq=2), NOW)  # a quote on an authenticated session: client pays
    assert verdict is not None and "(client)" in verdict.reason
    other = "0x" + "ab" * 20
    assert step(hub, c, req("NewIndexOrder", address=other)) is None  # global 30
    verdict = hub.admit(c, req(seq=2, address=other), NOW)
    assert verdict is not None and "(global)" in verdict.reason


def test_forged_signatures_never_charge_the_named_client() -> None:
    # Issue 8: thirty forged-signature orders naming a victim, then the victim's own order.
    hub = limited(client_limits=(RateLimit("c", 20, timedelta(seconds=10)),))
    for n in range(30):
        forger = hub.open_session(f"f{n}")
        assert hub.admit(forger, req("NewIndexOrder"), NOW) is None  # the signature is next
        assert not hub.refused(forger, NOW)  # ...and fails: the forger's session/source pay
    victim = hub.open_session("victim")
    assert step(hub, victim, req("NewIndexOrder")) is None
    assert step(hub, victim, req("NewIndexOrder", seq=2)) is None  # 20 of 20: all its own
    assert "(client)" in hub.admit(victim, req(seq=3), NOW).reason  # type: ignore[union-attr]


def test_unauthenticated_traffic_has_its_own_windows_below_the_global_one() -> None:
    guard = GuardConfig(
        source_limits=(RateLimit("src", 1_000, timedelta(seconds=10)),),
        anonymous_limits=(RateLimit("anon", 50, timedelta(seconds=10)),),
    )
    hub = limited(
        global_limits=(RateLimit("g", 100, timedelta(seconds=10)),), unauthenticated=guard
    )
    refusals = []
    for n in range(30):  # thirty anonymous sessions, one unsigned quote (weight 5) each
        verdict = step(hub, hub.open_session(f"anon{n}", source=f"10.0.0.{n}"), req())
        refusals.append(verdict is not None and "(unauthenticated)" in verdict.reason)
    assert refusals.count(False) == 10 and all(refusals[10:])
    # An authenticated client still has the rest of the global window.
    honest = hub.open_session("honest", source="10.0.1.1")
    for seq in range(1, 6):
        assert step(hub, honest, req("NewIndexOrder", seq=seq)) is None
    assert "(global)" in hub.admit(honest, req(seq=6), NOW).reason  # type: ignore[union-attr]


def test_per_source_window_limits_unauthenticated_traffic_of_one_peer() -> None:
    guard = GuardConfig(source_limits=(RateLimit("src", 10, timedelta(seconds=10)),))
    hub = limited(unauthenticated=guard)
    sessions = [hub.open_session(f"s{n}", source="10.9.9.9") for n in range(3)]
    assert step(hub, sessions[0], req()) is None
    assert step(hub, sessions[1], req()) is None
    verdict = hub.admit(sessions[2], req(), NOW)
    assert verdict is not None and "(source)" in verdict.reason
    assert step(hub, hub.open_session("elsewhere", source="10.1.1.1"), req()) is None


def test_refused_frames_cost_their_session_and_strike_it_out() -> None:
    guard = GuardConfig(strike_limit=RateLimit("strikes", 3, timedelta(seconds=10)))
    hub = limited(
        session_limits=(RateLimit("s", 10, timedelta(seconds=10)),), unauthenticated=guard
    )
    s = hub.open_session("s", source="10.0.0.1")
    assert [hub.refused(s, NOW) for _ in range(4)] == [False, False, False, True]
    assert step(hub, s, req(), NOW) is None  # 4 of 10 spent on garbage: a quote (5) fits...
    verdict = hub.admit(s, req(seq=2), NOW)  # ...a second does not
    assert verdict is not None and "(session)" in verdict.reason


def test_client_limiters_are_bounded_least_recently_used_first() -> None:
    hub = limited(max_tracked_clients=3)
    clients = ["0x" + f"{n:02x}" * 20 for n in range(1, 11)]
    for n, address in enumerate(clients):
        assert step(hub, hub.open_session(f"s{n}"), req("NewIndexOrder", address=address)) is None
        assert hub.tracked_clients() <= 3
    assert hub.tracked_clients() == 3


def test_quote_answers_are_not_stored_and_the_outbox_is_bounded_in_total() -> None:
    hub = limited(outbox_total=5)
    for _ in range(50):
        hub.deliver(OTHER, quote(), NOW)
    assert len(hub.outbox) == 0
    for n in range(8):
        hub.deliver(client_key(1, "0x" + f"{n + 1:02x}" * 20), fill(f"o{n}"), NOW)
    assert len(hub.outbox) == 5
    first = client_key(1, "0x" + "01" * 20)
    assert hub.outbox.since(first, 0, NOW) == ResendBatch((), complete=False)
    last = client_key(1, "0x" + "08" * 20)
    # Quote answers were numbered (1-50) but not kept; the fills are 51-58.
    assert [r.server_seq for r in hub.outbox.since(last, 0, NOW).responses] == [58]


def test_a_refusal_charges_nothing() -> None:
    hub = limited(
        session_limits=(RateLimit("s", 100, timedelta(seconds=1)),),
        global_limits=(RateLimit("g", 10, timedelta(seconds=1)),),
    )
    s = hub.open_session("s")
    assert step(hub, s, req("NewIndexOrder")) is None
    for _ in range(5):
        assert hub.admit(s, req("NewIndexOrder", seq=2), NOW) is not None
    assert s.limiter.headroom(NOW) == {"s": 90}


# ---------------------------------------------------------------- fan-out and resend


def decoded(data: bytes) -> dict[str, Any]:
    return json.loads(data)  # type: ignore[no-any-return]


def test_fan_out_respects_authentication() -> None:
    hub = SessionHub()
    signed, unsigned, stranger = (hub.open_session(n) for n in ("signed", "unsigned", "x"))
    hub.accept(signed, req("NewIndexOrder"), authenticated=True)
    hub.accept(unsigned, req("NewQuoteRequest"), authenticated=False)
    hub.accept(stranger, req(address="0x" + "ab" * 20), authenticated=False)
    frames = hub.deliver(CLIENT, fill(), NOW)
    assert [sid for sid, _ in frames] == ["signed"]
    header = decoded(frames[0][1])["standard_header"]
    assert header["server_seq"] == 1 and header["seq_num"] == 1
    # A quote response goes to the session that asked for that quote only.
    frames = hub.deliver(CLIENT, quote(), NOW)
    assert [sid for sid, _ in frames] == ["unsigned"]
    assert decoded(frames[0][1])["standard_header"]["seq_num"] == 1
    assert hub.deliver(CLIENT, quote(), NOW) == []  # answered: its asker is forgotten


def test_reconnect_resends_what_was_missed() -> None:
    hub = SessionHub()
    old = hub.open_session("old")
    hub.accept(old, req("NewIndexOrder"), authenticated=True)
    received = [
        decoded(f)["standard_header"]["server_seq"] for _, f in hub.deliver(CLIENT, fill("a"), NOW)
    ]
    hub.close_session("old")
    assert hub.deliver(CLIENT, fill("b"), NOW) == []  # nobody listening
    hub.deliver(OTHER, fill("z"), NOW)  # another client's: never resent here
    hub.deliver(CLIENT, fill("c"), NOW)
    new = hub.open_session("new")
    hub.accept(new, req("ResendRequest", last_server_seq=received[-1]), authenticated=True)
    frames, complete = hub.resend(new, received[-1], NOW)
    assert complete
    objs = [decoded(f) for f in frames]
    assert [o["client_order_id"] for o in objs] == ["b", "c"]
    assert [o["standard_header"]["seq_num"] for o in objs] == [1, 2]
    assert all(o["standard_header"]["poss_dup"] for o in objs)
    assert [o["standard_header"]["server_seq"] for o in objs] == [2, 4]
    # Naming the last one acknowledges everything: nothing left to resend.
    frames, _ = hub.resend(new, 4, NOW)
    assert frames == []


def test_resend_withholds_private_responses_from_unauthenticated_sessions() -> None:
    hub = SessionHub()
    hub.deliver(CLIENT, fill(), NOW)
    hub.deliver(CLIENT, quote(), NOW)
    s = hub.open_session("s")
    assert hub.resend(s, 0, NOW) == ([], True)  # not bound yet
    hub.accept(s, req(), authenticated=False)
    assert hub.resend(s, 0, NOW) == ([], True)  # an unsigned quote authenticates nothing
    hub.accept(s, req("NewIndexOrder", seq=2), authenticated=True)
    frames, _ = hub.resend(s, 0, NOW)
    kinds = [decoded(f)["standard_header"]["msg_type"] for f in frames]
    assert kinds == ["IndexOrderFill"]  # the quote answer was never stored


def test_outbox_eviction_makes_a_resend_incomplete() -> None:
    box = Outbox(capacity=2, retention=timedelta(hours=1))
    for _ in range(3):
        box.store(CLIENT, fill(), NOW)
    batch = box.since(CLIENT, 0, NOW)
    assert [r.server_seq for r in batch.responses] == [2, 3] and not batch.complete
    assert box.since(CLIENT, 1, NOW).complete
    aged = box.since(CLIENT, 1, NOW + timedelta(hours=2))
    assert aged.responses == () and not aged.complete
    assert box.last_server_seq == 3


def test_outbox_seq_is_server_wide_and_survives_restart() -> None:
    box = Outbox(capacity=10, retention=timedelta(hours=1), last_server_seq=41)
    assert box.store(CLIENT, fill(), NOW).server_seq == 42
    assert box.store(OTHER, fill(), NOW).server_seq == 43
    box.acknowledge(CLIENT, 42)
    assert box.since(CLIENT, 0, NOW).responses == ()


def test_outbox_held_after_counts_what_a_resume_would_resend_per_client() -> None:
    box = Outbox(capacity=10, retention=timedelta(hours=1))
    box.store(CLIENT, fill(), NOW)
    box.store(OTHER, fill(), NOW)
    box.store(CLIENT, fill(), NOW)
    assert (box.held_after(CLIENT, 0), box.held_after(CLIENT, 1), box.held_after(CLIENT, 3)) == (
        2,
        1,
        0,
    )
    box.acknowledge(CLIENT, 3)
    assert box.held_after(CLIENT, 0) == 0 and box.held_after(OTHER, 0) == 1


def test_retry_hint_is_rounded_up_and_waiting_exactly_that_long_is_admitted() -> None:
    # Two quotes of weight 5 fill a 10 / 10 s window at t0; refused at t0 + 1.6 ms, the next
    # quote fits at t0 + 10 s: 9,998.4 ms later. Rounded to nearest, the hint (9,998 ms)
    # was refused again; rounded up (9,999 ms) it is admitted.
    hub = limited(session_limits=(RateLimit("s", 10, timedelta(seconds=10)),))
    s = hub.open_session("s")
    assert step(hub, s, req(seq=1)) is None
    assert step(hub, s, req(seq=2)) is None
    refused_at = NOW + timedelta(microseconds=1_600)
    verdict = hub.admit(s, req(seq=3), refused_at)
    assert verdict is not None
    assert verdict.reason == "Rate limit exceeded (session): retry after 9999 ms"
    assert verdict.retry_after == timedelta(milliseconds=9_999)
    assert hub.admit(s, req(seq=3), refused_at + timedelta(milliseconds=9_998)) is not None
    assert step(hub, s, req(seq=3), refused_at + verdict.retry_after) is None


@pytest.mark.parametrize(
    ("wait", "millis"),
    [
        (timedelta(microseconds=1), 1),
        (timedelta(microseconds=999), 1),
        (timedelta(milliseconds=1), 1),
        (timedelta(microseconds=1_001), 2),
        (timedelta(seconds=9, microseconds=998_600), 9_999),
        (timedelta(days=1, microseconds=1), 86_400_001),
    ],
)
def test_retry_after_ms_rounds_up(wait: timedelta, millis: int) -> None:
    assert retry_after_ms(wait) == millis
    assert RateLimitedError.after("x", wait).retry_after_ms == millis
    assert timedelta(milliseconds=millis) >= wait


def test_per_source_state_is_bounded_whatever_the_number_of_sources_seen() -> None:
    guard = GuardConfig(max_tracked_sources=50)
    hub = limited(unauthenticated=guard)
    held = hub.open_session("held", source="10.0.0.0")
    hub.guard.connection_opened("10.0.0.0")  # an open connection: never forgotten
    assert step(hub, held, req()) is None
    for n in range(1, 500):
        step(hub, hub.open_session(f"s{n}", source=f"10.0.{n // 250}.{n % 250}"), req())
        assert hub.guard.tracked_sources() <= 50
    assert hub.guard.unauthenticated_connections("10.0.0.0") == 1
