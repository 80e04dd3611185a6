"""The venue's limits as data: weights, pools from `exchangeInfo.rateLimits`, header feedback,
the clock offset, and the error-code table (binance-spot-api reference §4, §9).

Pools are the core's `RateLimiter` (sliding windows are at least as strict as Binance's fixed
calendar windows), fed by `X-MBX-USED-WEIGHT-*` / `X-MBX-ORDER-COUNT-*` headers and WS-API
`rateLimits`. A 429 blocks every pool until `Retry-After`; a 418 (ban) does the same and marks
the venue banned, so nothing retries into a longer ban.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from indexmaker.core.errors import (
    InvalidOrderError,
    NetworkError,
    NonRetryableError,
    RateLimitedError,
    RejectedError,
    RetryableError,
)
from indexmaker.core.venue_events import OrderLimitWindow
from indexmaker.engine.throttle import RateLimit, RateLimiter, kept_limit
from indexmaker.venues.binance.wire import INTERVAL_SECONDS, RateLimitInfo

_UNIT = {"S": "SECOND", "M": "MINUTE", "H": "HOUR", "D": "DAY"}

# Used before exchangeInfo is read: the docs' example values, which are the smallest seen.
DEFAULT_LIMITS = (
    RateLimitInfo("REQUEST_WEIGHT", "MINUTE", 1, 6000),
    RateLimitInfo("ORDERS", "SECOND", 10, 50),
    RateLimitInfo("ORDERS", "DAY", 1, 160_000),
)


class StatusUnknownError(RetryableError):
    """Timeout, 5xx, -1006 or -1007: the venue may have acted. Reconcile; never resend blindly."""


class VenueBannedError(RateLimitedError):
    """418: the IP is banned until `retry_after_ms` from now. Nothing may be sent until then."""


class OrderNotFoundError(NonRetryableError):
    """-2013 / -2011 unknown order (may be an order not yet visible: reconcile later);
    -2026 an order archived after ending CANCELED/EXPIRED with nothing executed."""


class ClockSkewError(RetryableError):
    """-1021: timestamp outside recvWindow; the clock offset was resynchronised."""


class VenueConfigError(NonRetryableError):
    """-1022 / -2014 / -2015: bad signature, key or permission. An operator must fix it."""


def pool_name(kind: str, interval: str, num: int) -> str:
    """`REQUEST_WEIGHT_1M`, `ORDERS_10S`, `ORDERS_1D` (the header suffixes' spelling)."""
    return f"{kind}_{num}{interval[0]}"


def _pools(rate_limits: Iterable[RateLimitInfo]) -> list[tuple[RateLimit, int]]:
    """(pool, the venue's stated limit) per usable rateLimits entry; each pool keeps
    `kept_limit` of the stated figure (HEADROOM_PERCENT, 90%: the rest stays unused so a
    concurrent process or a clock edge never tips us into a 429)."""
    pools = []
    for entry in rate_limits:
        seconds = INTERVAL_SECONDS.get(entry.interval)
        if seconds is None or entry.limit <= 0:
            continue
        name = pool_name(entry.rateLimitType, entry.interval, entry.intervalNum)
        interval = timedelta(seconds=seconds * entry.intervalNum)
        pools.append((RateLimit(name, kept_limit(entry.limit), interval), entry.limit))
    return pools


def limiter_from(rate_limits: Iterable[RateLimitInfo]) -> RateLimiter:
    """One pool per rateLimits entry (`_pools`)."""
    return RateLimiter([pool for pool, _stated in _pools(rate_limits)])


def order_windows(rate_limits: Iterable[RateLimitInfo]) -> tuple[OrderLimitWindow, ...]:
    """The ORDERS pools as the core's order budget (`VenueOrderLimits`): the same limits
    this adapter keeps, so the core never releases an order the adapter would hold back."""
    return tuple(
        OrderLimitWindow(pool.name, pool.limit, pool.interval, stated)
        for pool, stated in _pools(rate_limits)
        if pool.name.startswith("ORDERS")
    )


def weight_pools(limiter: RateLimiter) -> tuple[str, ...]:
    return tuple(r.name for r in limiter.limits if r.name.startswith("REQUEST_WEIGHT"))


def order_pools(limiter: RateLimiter) -> tuple[str, ...]:
    return tuple(r.name for r in limiter.limits if r.name.startswith("ORDERS"))


def observe_headers(limiter: RateLimiter, headers: Mapping[str, str], now: datetime) -> None:
    """Feed `X-MBX-USED-WEIGHT-1M: 42` / `X-MBX-ORDER-COUNT-10S: 3` into the matching pools."""
    known = {r.name for r in limiter.limits}
    for header, value in headers.items():
        upper = header.upper()
        if upper.startswith("X-MBX-USED-WEIGHT-"):
            kind, suffix = "REQUEST_WEIGHT", upper[len("X-MBX-USED-WEIGHT-") :]
        elif upper.startswith("X-MBX-ORDER-COUNT-"):
            kind, suffix = "ORDERS", upper[len("X-MBX-ORDER-COUNT-") :]
        else:
            continue
        name = f"{kind}_{suffix}"
        if name in known and value.isdigit():
            limiter.observe_used(name, int(value), now)


def observe_ws_rate_limits(
    limiter: RateLimiter, entries: Iterable[RateLimitInfo]
) -> list[tuple[str, int]]:
    """Feed a WS-API answer's `rateLimits` counts into the matching pools. Returns (pool,
    count) of those where the venue counted more than we had (another process on the
    account, a restart): what the core's order budget must hear too."""
    now = utcnow()
    known = {r.name for r in limiter.limits}
    raised = []
    for entry in entries:
        name = pool_name(entry.rateLimitType, entry.interval, entry.intervalNum)
        count = entry.count
        if name in known and count is not None and limiter.observe_used(name, count, now):
            raised.append((name, count))
    return raised


def utcnow() -> datetime:
    return datetime.now(UTC)


def depth_weight(limit: int) -> int:
    """GET /api/v3/depth weight by `limit` (rest-api.md)."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


class ClockOffset:
    """Venue time minus local time, from `GET /api/v3/time` round trips (ms).

    Resynchronised on start and on every -1021 (python-binance #746: an offset computed once
    drifts into daily errors)."""

    __slots__ = ("offset_ms", "round_trip_ms", "syncs")

    def __init__(self) -> None:
        self.offset_ms = 0
        self.round_trip_ms = 0
        self.syncs = 0

    def update(self, sent_ms: int, server_ms: int, received_ms: int) -> None:
        """Assume the server stamped its time halfway through the round trip."""
        self.round_trip_ms = received_ms - sent_ms
        self.offset_ms = server_ms - (sent_ms + received_ms) // 2
        self.syncs += 1

    def timestamp(self) -> int:
        """Venue time now, in ms, for signed requests' `timestamp`."""
        return local_ms() + self.offset_ms


def local_ms() -> int:
    return time.time_ns() // 1_000_000


def error_for(code: int, message: str, retry_after_ms: int = 0) -> Exception:
    """The project exception for a Binance error code (reference §9), one table per venue."""
    text = f"binance {code}: {message}"
    if code in (-1006, -1007):
        return StatusUnknownError(text)
    if code in (-1003, -1015):
        return RateLimitedError(text, retry_after_ms)
    if code == -1021:
        return ClockSkewError(text)
    if code in (-1022, -2014, -2015):
        return VenueConfigError(text)
    if code in (-2013, -2011, -2026):  # -2026: archived (ended unfilled, reference §9)
        return OrderNotFoundError(text)
    if code == -1013 or -1199 <= code <= -1100:
        return InvalidOrderError(text)
    if code == -2010:
        return RejectedError(text)
    if code in (-1000, -1001, -1008, -1016):
        return NetworkError(text)
    return RejectedError(text)
