from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexmaker.core.errors import InvalidInputError
from indexmaker.engine.throttle import RateLimit, RateLimiter

T0 = datetime(2025, 10, 1, tzinfo=UTC)
S = timedelta(seconds=1)
MS = timedelta(milliseconds=1)


def limiter(limit: int = 3, seconds: int = 10) -> RateLimiter:
    return RateLimiter([RateLimit("W", limit, timedelta(seconds=seconds))])


def test_admits_up_to_the_limit_then_says_how_long_to_wait() -> None:
    rl = limiter()
    assert rl.try_acquire(T0) is None
    assert rl.try_acquire(T0, 2) is None
    assert rl.try_acquire(T0) == 10 * S
    assert rl.try_acquire(T0 + 9 * S) == 1 * S
    assert rl.try_acquire(T0 + 10 * S, 3) is None  # the window is (now - 10 s, now]


def test_wait_is_until_enough_weight_expires() -> None:
    rl = limiter()
    assert rl.try_acquire(T0) is None
    assert rl.try_acquire(T0 + 3 * S) is None
    assert rl.try_acquire(T0 + 4 * S) is None
    # 2 more needs the first two entries gone: the one at t0 + 3 s expires at t0 + 13 s.
    assert rl.try_acquire(T0 + 5 * S, 2) == 8 * S
    assert rl.try_acquire(T0 + 5 * S, 1) == 5 * S
    assert rl.try_acquire(T0 + 13 * S, 2) is None


def test_refusal_takes_nothing_from_any_window() -> None:
    rl = RateLimiter(
        [
            RateLimit("ORDERS_10S", 2, timedelta(seconds=10)),
            RateLimit("REQUEST_WEIGHT_1M", 100, timedelta(minutes=1)),
        ]
    )
    assert rl.try_acquire(T0) is None
    assert rl.try_acquire(T0) is None
    assert rl.try_acquire(T0, 1) == 10 * S
    assert rl.headroom(T0) == {"ORDERS_10S": 0, "REQUEST_WEIGHT_1M": 98}
    # Only the weight window: an order-free request still goes through.
    assert rl.try_acquire(T0, 20, only=["REQUEST_WEIGHT_1M"]) is None
    assert rl.try_acquire(T0, 20, only="REQUEST_WEIGHT_1M") is None
    assert rl.headroom(T0 + 10 * S) == {"ORDERS_10S": 2, "REQUEST_WEIGHT_1M": 58}
    assert rl.headroom(T0 + 60 * S) == {"ORDERS_10S": 2, "REQUEST_WEIGHT_1M": 100}


def test_the_longest_wait_of_all_windows_is_returned() -> None:
    rl = RateLimiter(
        [RateLimit("A", 1, timedelta(seconds=10)), RateLimit("B", 1, timedelta(seconds=60))]
    )
    assert rl.try_acquire(T0) is None
    assert rl.try_acquire(T0 + 1 * S) == 59 * S
    assert rl.try_acquire(T0 + 1 * S, only=["A"]) == 9 * S


def test_weight_that_can_never_fit_raises() -> None:
    rl = RateLimiter(
        [RateLimit("SMALL", 5, timedelta(seconds=1)), RateLimit("BIG", 50, timedelta(seconds=1))]
    )
    with pytest.raises(InvalidInputError):
        rl.try_acquire(T0, 6)
    assert rl.try_acquire(T0, 6, only=["BIG"]) is None
    with pytest.raises(InvalidInputError):
        rl.try_acquire(T0, -1)
    with pytest.raises(InvalidInputError):
        rl.try_acquire(T0, 1, only=["NOPE"])


def test_zero_weight_always_fits_unless_blocked() -> None:
    rl = limiter(limit=1)
    assert rl.try_acquire(T0) is None
    assert rl.try_acquire(T0, 0) is None
    rl.block_until(T0 + 2 * S)
    assert rl.try_acquire(T0, 0) == 2 * S


def test_invalid_configuration() -> None:
    with pytest.raises(InvalidInputError):
        RateLimiter([RateLimit("A", 1, S), RateLimit("A", 2, S)])
    with pytest.raises(InvalidInputError):
        RateLimiter([RateLimit("A", 0, S)])
    with pytest.raises(InvalidInputError):
        RateLimiter([RateLimit("A", 1, timedelta(0))])


def test_observe_used_never_believes_less_than_the_venue() -> None:
    rl = limiter(limit=10, seconds=60)
    assert rl.try_acquire(T0, 2) is None
    rl.observe_used("W", 1, T0 + 1 * S)  # venue saw less than we did: keep ours
    assert rl.headroom(T0 + 1 * S) == {"W": 8}
    rl.observe_used("W", 7, T0 + 1 * S)  # another process used 5 more
    assert rl.headroom(T0 + 1 * S) == {"W": 3}
    assert rl.try_acquire(T0 + 1 * S, 4) == 59 * S  # our 2 at t0 expiring make room
    rl.observe_used("W", 12, T0 + 2 * S)  # over the limit: wait for the unseen usage to expire
    assert rl.headroom(T0 + 2 * S) == {"W": 0}
    assert rl.try_acquire(T0 + 2 * S, 1) == 59 * S  # needs the 5 charged at t0 + 1 s gone
    with pytest.raises(InvalidInputError):
        rl.observe_used("NOPE", 1, T0)
    with pytest.raises(InvalidInputError):
        rl.observe_used("W", -1, T0)


def test_block_until_makes_everything_wait() -> None:
    rl = limiter()
    rl.block_until(T0 + 30 * S)
    rl.block_until(T0 + 5 * S)  # an earlier hint never shortens a block in force
    assert rl.blocked_until == T0 + 30 * S
    assert rl.try_acquire(T0 + 10 * S) == 20 * S
    assert rl.try_acquire(T0 + 10 * S, only=[]) == 20 * S
    assert rl.headroom(T0 + 10 * S) == {"W": 0}
    assert rl.try_acquire(T0 + 30 * S) is None
    assert rl.blocked_until is None
    assert rl.headroom(T0 + 30 * S) == {"W": 2}


def test_clock_stepping_back_never_undercounts() -> None:
    rl = limiter(limit=2)
    assert rl.try_acquire(T0 + 5 * S) is None
    assert rl.try_acquire(T0 + 4 * S) is None  # charged at t0 + 5 s, the later instant
    assert rl.try_acquire(T0 + 14 * S) == 1 * S


def test_long_run_matches_brute_force() -> None:
    """Thousands of entries: exercises the bulk compaction of expired entries."""
    window = timedelta(seconds=1)
    rl = RateLimiter([RateLimit("W", 100, window)])
    admitted: list[datetime] = []
    now = T0
    for i in range(20_000):
        now += MS * (1 + i % 3)
        if rl.try_acquire(now) is None:
            admitted.append(now)
    assert len(admitted) == 4_000  # 40 s of 100 per second
    # Expired entries are dropped in bulk, so memory stays bounded by the live window.
    assert len(rl._windows["W"].times) < 2 * 1024 + 100
    # Every window of one second holds at most 100 admissions (two-pointer sweep).
    start = 0
    for end, t in enumerate(admitted):
        while admitted[start] <= t - window:
            start += 1
        assert end - start + 1 <= 100


# ---------------------------------------------------------------- properties

LIMITS = [
    RateLimit("FAST", 5, timedelta(milliseconds=100)),
    RateLimit("SLOW", 12, timedelta(milliseconds=1000)),
]
steps = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=150),  # ms to advance
        st.integers(min_value=0, max_value=5),  # weight
        st.sampled_from([None, ("FAST",), ("SLOW",)]),
    ),
    max_size=120,
)


def _used(history: list[tuple[datetime, int]], at: datetime, interval: timedelta) -> int:
    return sum(w for t, w in history if at - interval < t <= at)


@settings(max_examples=200)
@given(steps)
def test_never_admits_more_than_the_limit_and_waits_are_exact(
    sequence: list[tuple[int, int, tuple[str, ...] | None]],
) -> None:
    rl = RateLimiter(LIMITS)
    history: dict[str, list[tuple[datetime, int]]] = {rule.name: [] for rule in LIMITS}
    now = T0
    for advance, weight, only in sequence:
        now += advance * MS
        chosen = [r for r in LIMITS if only is None or r.name in only]
        wait = rl.try_acquire(now, weight, only)
        if wait is None:
            for rule in chosen:
                history[rule.name].append((now, weight))
                assert _used(history[rule.name], now, rule.interval) <= rule.limit
        else:
            assert wait > timedelta(0)
            fits_at = now + wait
            # It fits after the wait, and not a microsecond earlier.
            assert all(
                _used(history[r.name], fits_at, r.interval) + weight <= r.limit for r in chosen
            )
            just_before = fits_at - timedelta(microseconds=1)
            assert any(
                _used(history[r.name], just_before, r.interval) + weight > r.limit for r in chosen
            )
        assert rl.headroom(now) == {
            r.name: r.limit - _used(history[r.name], now, r.interval) for r in LIMITS
        }


def test_reconfigured_keeps_what_was_admitted_in_windows_of_the_same_name() -> None:
    rl = RateLimiter([RateLimit("W", 100, 10 * S), RateLimit("D", 1000, 100 * S)])
    assert rl.try_acquire(T0, 4) is None
    assert rl.try_acquire(T0 + 5 * S, 3) is None
    rl.block_until(T0 + 7 * S)
    fresh = rl.reconfigured([RateLimit("W", 9, 10 * S), RateLimit("X", 5, 10 * S)], T0 + 6 * S)
    assert fresh.limits == [RateLimit("W", 9, 10 * S), RateLimit("X", 5, 10 * S)]
    assert fresh.blocked_until == T0 + 7 * S  # a back-off in force stays
    # W keeps the 7 sent (9 - 7 = 2 left once the block is over); X starts empty.
    assert fresh.headroom(T0 + 7 * S) == {"W": 2, "X": 5}
    assert fresh.try_acquire(T0 + 7 * S, 3) == 3 * S  # the 4 of t0 expire at t0 + 10 s
    assert fresh.headroom(T0 + 10 * S) == {"W": 6, "X": 5}
    assert rl.limits[0] == RateLimit("W", 100, 10 * S)  # the old limiter is untouched
    with pytest.raises(InvalidInputError):
        rl.reconfigured([RateLimit("W", 0, 10 * S)], T0)
