"""Limits on traffic nobody has authenticated yet (SPEC §5 "Authentication", "Limits"): pure.

Anyone can open sockets and claim any address in an unsigned frame, so what such traffic may
cost is bounded by who *sends* it, never by the address it names:

- per connection source (the peer's IP): a cap on open unauthenticated connections and sliding
  windows on the weight of unauthenticated frames;
- all unauthenticated traffic together: windows below the global ones, so authenticated
  clients always keep a share of the global window;
- per session: *strikes*, frames refused for what they are (unreadable, invalid, unauthorised,
  out of sequence); a session that keeps sending such frames is closed, so garbage costs a
  bounded number of NAKs per connection; a source whose sessions keep striking out has its
  new connections reset at TCP accept for a while (listener.py; a reconnect loop of garbage
  would otherwise cost a handshake per twenty frames).

Per-source state is pruned: a source with no open connection and empty windows is forgotten,
and at most `max_tracked_sources` are kept (the oldest idle go first), so the cost per
message does not grow with the number of sources ever seen.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from indexmaker.engine.throttle import RateLimit, RateLimiter

_SEC, _MIN = timedelta(seconds=1), timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """Defaults sit below SessionConfig's global windows (2,000 / 10 s, 100,000 / min)."""

    source_limits: tuple[RateLimit, ...] = (
        RateLimit("source_10s", 500, 10 * _SEC),
        RateLimit("source_1m", 10_000, _MIN),
    )
    anonymous_limits: tuple[RateLimit, ...] = (
        RateLimit("anonymous_10s", 1_000, 10 * _SEC),
        RateLimit("anonymous_1m", 50_000, _MIN),
    )
    strike_limit: RateLimit = field(default_factory=lambda: RateLimit("strikes_10s", 20, 10 * _SEC))
    # Sessions of one source closed for striking out: past this, the source's new connections
    # are reset at TCP accept (listener.py; HTTP 429 if it passed accept) until the window frees.
    strike_out_limit: RateLimit = field(
        default_factory=lambda: RateLimit("strike_outs_1m", 3, _MIN)
    )
    unreadable_weight: int = 1  # what a frame that cannot be parsed costs against the windows
    max_tracked_sources: int = 10_000


class _Source:
    __slots__ = ("connections", "limiter", "strike_outs")

    def __init__(self, limiter: RateLimiter, strike_outs: RateLimiter) -> None:
        self.limiter = limiter
        self.strike_outs = strike_outs
        self.connections = 0  # open unauthenticated connections from this source


class Guard:
    """Per-source and all-anonymous windows and connection counts; time is an argument."""

    def __init__(self, config: GuardConfig | None = None) -> None:
        self.config = config or GuardConfig()
        self._anonymous = RateLimiter(self.config.anonymous_limits)
        self._sources: OrderedDict[str, _Source] = OrderedDict()  # least recently used first

    # ------------------------------------------------------------ connections

    def unauthenticated_connections(self, source: str) -> int:
        entry = self._sources.get(source)
        return entry.connections if entry is not None else 0

    def connection_opened(self, source: str) -> None:
        self._source(source).connections += 1

    def struck_out(self, source: str, now: datetime) -> None:
        """A session of this source was closed for its refused frames."""
        self._source(source).strike_outs.take(now, 1)

    def refusing(self, source: str, now: datetime) -> timedelta | None:
        """How long this source's new connections are still refused (None: accepted)."""
        entry = self._sources.get(source)
        return entry.strike_outs.wait_time(now, 1) if entry is not None else None

    def connection_released(self, source: str) -> None:
        """The connection closed or authenticated: it no longer counts against its source."""
        entry = self._sources.get(source)
        if entry is not None and entry.connections > 0:
            entry.connections -= 1

    # ------------------------------------------------------------ traffic

    def wait_time(self, source: str, now: datetime, weight: int) -> tuple[timedelta, str] | None:
        """How long until `weight` of unauthenticated traffic from `source` fits (and which
        scope refuses it); None: it fits now. Takes nothing."""
        waits = []
        source_wait = self._source(source).limiter.wait_time(now, weight)
        if source_wait is not None:
            waits.append((source_wait, "source"))
        anonymous_wait = self._anonymous.wait_time(now, weight)
        if anonymous_wait is not None:
            waits.append((anonymous_wait, "unauthenticated"))
        return max(waits) if waits else None

    def take(self, source: str, now: datetime, weight: int) -> None:
        """Charge unauthenticated traffic (after `wait_time` said it fits, or regardless for
        frames that were refused anyway: they cost us work too)."""
        self._source(source).limiter.take(now, weight)
        self._anonymous.take(now, weight)

    def new_strike_counter(self) -> RateLimiter:
        return RateLimiter((self.config.strike_limit,))

    # ------------------------------------------------------------ bookkeeping

    def tracked_sources(self) -> int:
        return len(self._sources)

    def _source(self, source: str) -> _Source:
        entry = self._sources.get(source)
        if entry is not None:
            self._sources.move_to_end(source)
            return entry
        if len(self._sources) >= self.config.max_tracked_sources:
            self._prune()
        entry = _Source(
            RateLimiter(self.config.source_limits),
            RateLimiter((self.config.strike_out_limit,)),
        )
        self._sources[source] = entry
        return entry

    def _prune(self) -> None:
        # Least recently seen first. A source with open connections is kept (its count must
        # stay right) and moved back; an idle one is forgotten: if its windows were not empty
        # yet, its next frame starts fresh windows. At most one pass over the table.
        for _ in range(len(self._sources)):
            if len(self._sources) < self.config.max_tracked_sources:
                return
            key, entry = next(iter(self._sources.items()))
            if entry.connections:
                self._sources.move_to_end(key)
            else:
                del self._sources[key]
