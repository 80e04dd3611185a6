"""Multi-window sliding-window rate limiter (venue request weight, order counts, client limits).

Time is an argument, never the wall clock. A window counts the weight admitted in the half-open
interval (now − interval, now]. Sliding windows are at least as strict as a venue's fixed
(calendar) windows of the same length, so staying inside ours keeps us inside theirs.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from indexmaker.core.errors import InvalidInputError

_COMPACT_AT = 1024  # expired entries kept before the live tail is moved down
HEADROOM_PERCENT = 90  # of a venue's stated limit that we use (kept_limit)


def kept_limit(stated: int, percent: int = HEADROOM_PERCENT) -> int:
    """What we use of a venue's stated limit: `percent` of it rounded down, at least 1. The
    rest stays unused, so another process on the account, a clock edge or the edge of the
    venue's fixed (calendar) window never tips us into a 429. Integer arithmetic: exact."""
    return max(1, stated * percent // 100)


@dataclass(frozen=True, slots=True)
class RateLimit:
    name: str  # e.g. "REQUEST_WEIGHT_1M", "ORDERS_10S"
    limit: int  # max total weight inside any window of `interval`
    interval: timedelta


class _Window:
    """Admitted weight as (time, running total) entries in time order.

    Running totals let `wait_for` find, by bisection, the entry whose expiry frees enough room;
    eviction only advances `head`, and the dead prefix is dropped in bulk, so every operation is
    amortised O(1) (O(log n) for the wait on a refusal). Entries at the same instant coalesce.
    """

    __slots__ = ("expired", "head", "interval", "limit", "name", "times", "total", "totals")

    def __init__(self, rule: RateLimit) -> None:
        self.name = rule.name
        self.limit = rule.limit
        self.interval = rule.interval
        self.times: list[datetime] = []
        self.totals: list[int] = []  # running total of weight through each entry
        self.head = 0  # first live entry
        self.total = 0  # weight ever admitted
        self.expired = 0  # weight of entries before `head`

    def evict(self, now: datetime) -> None:
        horizon = now - self.interval
        times = self.times
        head = self.head
        end = len(times)
        while head < end and times[head] <= horizon:
            head += 1
        if head != self.head:
            self.expired = self.totals[head - 1]
            self.head = head
            if head >= _COMPACT_AT and head * 2 >= end:
                del times[:head]
                del self.totals[:head]
                self.head = 0

    def used(self) -> int:
        return self.total - self.expired

    def add(self, now: datetime, weight: int) -> None:
        if weight <= 0:
            return
        self.total += weight
        times = self.times
        if len(times) > self.head and times[-1] >= now:
            # Same instant (or a clock that stepped back): charge the newest entry, which expires
            # no earlier than `now` would: never under-counts.
            self.totals[-1] = self.total
        else:
            times.append(now)
            self.totals.append(self.total)

    def wait_for(self, now: datetime, weight: int) -> timedelta:
        """How long until `weight` more fits (call after `evict(now)`)."""
        excess = self.used() + weight - self.limit
        if excess <= 0:
            return timedelta(0)
        # The first entry whose expiry frees at least `excess`.
        index = bisect_left(self.totals, self.expired + excess, lo=self.head)
        return self.times[index] + self.interval - now


class RateLimiter:
    """Several sliding windows checked together: a request is admitted only if all have room."""

    def __init__(self, limits: Sequence[RateLimit]) -> None:
        windows: dict[str, _Window] = {}
        for rule in limits:
            if rule.name in windows:
                raise InvalidInputError("limits", f"duplicate window {rule.name!r}")
            if rule.limit <= 0:
                raise InvalidInputError(rule.name, f"limit must be positive, got {rule.limit}")
            if rule.interval <= timedelta(0):
                raise InvalidInputError(rule.name, "interval must be positive")
            windows[rule.name] = _Window(rule)
        self._windows = windows
        self._all = tuple(windows.values())
        self._blocked_until: datetime | None = None

    def reconfigured(self, limits: Sequence[RateLimit], now: datetime) -> RateLimiter:
        """A limiter of `limits` that keeps what this one admitted: a window of a name this
        one has takes over its entries still live at `now` (orders already sent stay counted
        until they expire under the new interval), and a back-off in force stays. Raises
        InvalidInputError as the constructor does; this limiter is left unchanged."""
        fresh = RateLimiter(limits)
        for window in fresh._all:
            old = self._windows.get(window.name)
            if old is None:
                continue
            old.evict(now)
            window.times = old.times[old.head :]
            window.totals = [total - old.expired for total in old.totals[old.head :]]
            window.total = old.total - old.expired
        fresh._blocked_until = self._blocked_until
        return fresh

    @property
    def limits(self) -> list[RateLimit]:
        return [RateLimit(w.name, w.limit, w.interval) for w in self._all]

    @property
    def blocked_until(self) -> datetime | None:
        return self._blocked_until

    def _select(self, only: Collection[str] | None) -> tuple[_Window, ...]:
        if only is None:
            return self._all
        if isinstance(only, str):  # a lone name, not its characters
            only = (only,)
        try:
            return tuple(self._windows[name] for name in only)
        except KeyError as exc:
            raise InvalidInputError("only", f"unknown window {exc.args[0]!r}") from exc

    def try_acquire(
        self, now: datetime, weight: int = 1, only: Collection[str] | None = None
    ) -> timedelta | None:
        """Take `weight` from every window (or only the named ones) if all have room: None.
        Otherwise take nothing and return how long to wait before it would fit."""
        if weight < 0:
            raise InvalidInputError("weight", f"must be >= 0, got {weight}")
        windows = self._select(only)
        for window in windows:
            if weight > window.limit:
                raise InvalidInputError(
                    "weight", f"{weight} can never fit {window.name} (limit {window.limit})"
                )
        blocked = self._blocked_until
        if blocked is not None:
            if now < blocked:
                return blocked - now
            self._blocked_until = None
        wait = timedelta(0)
        for window in windows:
            window.evict(now)
            wait = max(wait, window.wait_for(now, weight))
        if wait > timedelta(0):
            return wait
        for window in windows:
            window.add(now, weight)
        return None

    def wait_time(self, now: datetime, weight: int = 1) -> timedelta | None:
        """How long until `weight` would fit every window (None: it fits now); takes nothing."""
        blocked = self._blocked_until
        if blocked is not None and now < blocked:
            return blocked - now
        wait = timedelta(0)
        for window in self._all:
            window.evict(now)
            wait = max(wait, window.wait_for(now, weight))
        return wait if wait > timedelta(0) else None

    def take(self, now: datetime, weight: int = 1) -> None:
        """Charge `weight` to every window without checking: right after `wait_time` said
        it fits (the caller checked several limiters before charging any)."""
        for window in self._all:
            window.add(now, weight)

    def headroom(self, now: datetime) -> dict[str, int]:
        """Weight each window could still admit now (0 everywhere while blocked)."""
        blocked = self._blocked_until is not None and now < self._blocked_until
        result: dict[str, int] = {}
        for window in self._all:
            window.evict(now)
            result[window.name] = 0 if blocked else max(0, window.limit - window.used())
        return result

    def observe_used(self, name: str, used: int, now: datetime) -> int:
        """Venue feedback (e.g. X-MBX-USED-WEIGHT-1M): never believe less usage than the venue
        reports. Usage we did not see (another process, a restart) is charged at `now`, the
        latest it can have happened, so it stays counted for a full interval. Returns that
        unseen usage (0: the venue counted no more than we did)."""
        window = self._windows.get(name)
        if window is None:
            raise InvalidInputError("name", f"unknown window {name!r}")
        if used < 0:
            raise InvalidInputError("used", f"must be >= 0, got {used}")
        window.evict(now)
        missing = used - window.used()
        if missing <= 0:
            return 0
        window.add(now, missing)
        return missing

    def block_until(self, until: datetime) -> None:
        """429 / Retry-After back-off: everything waits until then (an earlier time never
        shortens a block already in force)."""
        if self._blocked_until is None or until > self._blocked_until:
            self._blocked_until = until
