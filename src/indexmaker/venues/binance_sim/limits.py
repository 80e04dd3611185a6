"""Request weight and order-count limits in fixed calendar windows, 429 then 418 bans.

Binance's rules (rest-api.md "LIMITS", faqs/order_count_decrement.md): weight per IP per
minute, raw requests per IP per 5 minutes, orders per account per 10 s and per UTC day.
Windows are calendar-aligned (a minute resets at :00), not sliding. An order counts +1 when
accepted; its first fill takes 1 back (the unfilled-order count, floor 0); cancels and expiry
give nothing back. Requests over a limit get 429 with Retry-After; an IP that keeps sending
through 429s is banned (418), for 2 minutes first, doubling up to 3 days.

State stays bounded: an account's pending decrements are settled as they fall due (at most a
second of fills is held), and once more than `MAX_IPS` addresses are known, those with nothing
left to remember (windows over, no ban and no escalated ban length) are forgotten; a forgotten
address starts afresh, as it would after its windows end.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from indexmaker.venues.binance_sim.config import LimitConfig
from indexmaker.venues.binance_sim.errors import ApiError

MINUTE = 60_000
SECOND = 1_000
DAY = 86_400_000
MAX_IPS = 1024  # addresses remembered before idle ones are swept


@dataclass(slots=True)
class _Window:
    length_ms: int
    start: int = -1
    count: int = 0

    def current(self, now: int) -> int:
        start = now - now % self.length_ms
        if start != self.start:
            self.start, self.count = start, 0
        return self.count

    def reset_in(self, now: int) -> int:
        return self.start + self.length_ms - now


@dataclass(slots=True)
class _Ip:
    weight: _Window = field(default_factory=lambda: _Window(MINUTE))
    raw: _Window = field(default_factory=lambda: _Window(5 * MINUTE))
    refusals: _Window = field(default_factory=lambda: _Window(MINUTE))
    banned_until: int = 0
    next_ban_ms: int = 0

    def idle(self, now: int) -> bool:
        """Nothing to remember: every window over, never banned (no escalation to keep)."""
        return (
            self.next_ban_ms == 0
            and now >= self.weight.start + self.weight.length_ms
            and now >= self.raw.start + self.raw.length_ms
            and now >= self.refusals.start + self.refusals.length_ms
        )


DECREMENT_DELAY_MS = 1_000  # the unfilled-order decrement "arrives after a short delay"


@dataclass(slots=True)
class _Account:
    ten_s: _Window = field(default_factory=lambda: _Window(10 * SECOND))
    day: _Window = field(default_factory=lambda: _Window(DAY))
    pending: deque[int] = field(default_factory=deque)  # due times, in order, not yet applied

    def settle(self, now: int) -> None:
        pending = self.pending
        due = 0
        while pending and pending[0] <= now:
            pending.popleft()
            due += 1
        if due:
            for window in (self.ten_s, self.day):
                window.count = max(window.current(now) - due, 0)


class Limiter:
    def __init__(self, config: LimitConfig) -> None:
        self.config = config
        self._ips: dict[str, _Ip] = {}
        self._accounts: dict[str, _Account] = {}
        self._sweep_at = MAX_IPS  # sweep idle addresses when this many are known

    def rate_limits(self) -> list[dict[str, object]]:
        """exchangeInfo `rateLimits`."""
        c = self.config
        return [
            _limit("REQUEST_WEIGHT", "MINUTE", 1, c.weight_per_minute),
            _limit("ORDERS", "SECOND", 10, c.orders_per_10s),
            _limit("ORDERS", "DAY", 1, c.orders_per_day),
            _limit("RAW_REQUESTS", "MINUTE", 5, c.raw_requests_per_5m),
        ]

    def charge(self, ip: str, weight: int, now: int) -> int:
        """Count one request of `weight` for `ip`; returns the weight used in the minute.

        Raises ApiError 418 while banned, 429 (-1003) over a limit (and bans repeat offenders).
        """
        state = self._ips.get(ip)
        if state is None:
            if len(self._ips) >= self._sweep_at:
                self._sweep(now)
            state = self._ips[ip] = _Ip()
        if state.banned_until > now:
            raise _banned(state.banned_until, now)
        used = state.weight.current(now)
        raw = state.raw.current(now)
        c = self.config
        if used + weight > c.weight_per_minute or raw + 1 > c.raw_requests_per_5m:
            refusals = state.refusals.current(now) + 1
            state.refusals.count = refusals
            if refusals > c.refusals_before_ban:
                ban = state.next_ban_ms or c.first_ban_seconds * 1000
                state.banned_until = now + ban
                state.next_ban_ms = min(ban * 2, c.max_ban_seconds * 1000)
                raise _banned(state.banned_until, now)
            window = state.weight if used + weight > c.weight_per_minute else state.raw
            raise ApiError(
                -1003,
                f"Too much request weight used; current limit is {c.weight_per_minute} request "
                "weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid "
                "polling the API.",
                status=429,
                retry_after=_seconds(window.reset_in(now)),
            )
        state.weight.count = used + weight
        state.raw.count = raw + 1
        return state.weight.count

    def _sweep(self, now: int) -> None:
        """Forget idle addresses; the next sweep waits until twice as many are known again
        (amortised O(1) per new address, whatever the traffic)."""
        for ip in [ip for ip, state in self._ips.items() if state.idle(now)]:
            del self._ips[ip]
        self._sweep_at = max(MAX_IPS, 2 * len(self._ips))

    @property
    def known_ips(self) -> int:
        return len(self._ips)

    def used_weight(self, ip: str, now: int) -> int:
        state = self._ips.get(ip)
        return state.weight.current(now) if state else 0

    def charge_order(self, account: str, now: int) -> tuple[int, int]:
        """+1 unfilled order in both windows; 429 (-1015) when either is full."""
        state = self._accounts.setdefault(account, _Account())
        state.settle(now)
        ten, day = state.ten_s.current(now), state.day.current(now)
        c = self.config
        if ten + 1 > c.orders_per_10s:
            raise _too_many_orders(c.orders_per_10s, "10 SECOND", state.ten_s.reset_in(now))
        if day + 1 > c.orders_per_day:
            raise _too_many_orders(c.orders_per_day, "1 DAY", state.day.reset_in(now))
        state.ten_s.count, state.day.count = ten + 1, day + 1
        return state.ten_s.count, state.day.count

    def order_counts(self, account: str, now: int) -> tuple[int, int]:
        state = self._accounts.setdefault(account, _Account())
        state.settle(now)
        return state.ten_s.current(now), state.day.current(now)

    def first_fill(self, account: str, now: int) -> None:
        """An order's first fill gives one order back (never below 0), a moment later."""
        state = self._accounts.setdefault(account, _Account())
        state.settle(now)  # what fell due is applied now, so only the last second is held
        state.pending.append(now + DECREMENT_DELAY_MS)

    def ws_rate_limits(self, ip: str, account: str | None, now: int) -> list[dict[str, object]]:
        """The `rateLimits` array of a WS-API response (web-socket-api.md)."""
        c = self.config
        out = [
            dict(
                _limit("REQUEST_WEIGHT", "MINUTE", 1, c.weight_per_minute),
                count=self.used_weight(ip, now),
            )
        ]
        if account is not None:
            ten, day = self.order_counts(account, now)
            out.append(dict(_limit("ORDERS", "SECOND", 10, c.orders_per_10s), count=ten))
            out.append(dict(_limit("ORDERS", "DAY", 1, c.orders_per_day), count=day))
        return out


def _limit(kind: str, interval: str, num: int, limit: int) -> dict[str, object]:
    return {"rateLimitType": kind, "interval": interval, "intervalNum": num, "limit": limit}


def _seconds(ms: int) -> int:
    return max(math.ceil(ms / 1000), 1)


def _banned(until: int, now: int) -> ApiError:
    return ApiError(
        -1003,
        f"Way too much request weight used; IP banned until {until}. Please use WebSocket "
        "Streams for live updates to avoid bans.",
        status=418,
        retry_after=_seconds(until - now),
    )


def _too_many_orders(limit: int, interval: str, reset_ms: int) -> ApiError:
    return ApiError(
        -1015,
        f"Too many new orders; current limit is {limit} orders per {interval}.",
        status=429,
        retry_after=_seconds(reset_ms),
    )
