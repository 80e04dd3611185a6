"""Who pays for a frame (SPEC §5 "Limits", "Authentication"; issue 8): pure, time an argument.

Every frame, even an unreadable one, is charged to its session. A request for a client the
session is authenticated for is charged to that client and the global window; anything else
(unsigned frames naming an address anyone can claim, signatures that fail) to the guard's
per-source and all-unauthenticated windows (guard.py) and the global window. A signed request
is charged to its client only once its signature verified and was authorised
(`charge_verified`), so forged frames naming a victim never consume the victim's window.
A refusal takes nothing from the scopes that refused it; its hint is rounded up, so retrying
exactly then is admitted.

Per-client limiters are kept least-recently-used first and the oldest are forgotten beyond
`max_tracked_clients`: O(1) per message, whatever the number of clients ever seen.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from indexmaker.core.errors import retry_after_ms
from indexmaker.core.ids import ClientKey
from indexmaker.engine.throttle import RateLimit, RateLimiter
from indexmaker.server.guard import Guard


@dataclass(frozen=True, slots=True)
class RateLimited:
    """A refusal over a window: the NAK's reason (with the hint) and the hint itself."""

    reason: str
    retry_after: timedelta


class Quotas:
    """The client and global windows, and the guard for unauthenticated traffic."""

    def __init__(
        self,
        weights: Mapping[str, int],
        client_limits: Sequence[RateLimit],
        global_limits: Sequence[RateLimit],
        max_tracked_clients: int,
        guard: Guard,
        unreadable_weight: int,
    ) -> None:
        self._weights = weights
        self._client_rules = tuple(client_limits)
        self._max_clients = max_tracked_clients
        self._global = RateLimiter(global_limits)
        # Least recently charged first: the oldest are forgotten beyond max_tracked_clients.
        self._clients: OrderedDict[ClientKey, RateLimiter] = OrderedDict()
        self._unreadable_weight = unreadable_weight
        self.guard = guard

    def weight(self, msg_type: str) -> int:
        return self._weights.get(msg_type, 1)

    def admit(
        self,
        session: RateLimiter,
        source: str,
        client: ClientKey,
        msg_type: str,
        signed: bool,
        authenticated: bool,
        now: datetime,
    ) -> RateLimited | None:
        """Check every scope that pays for this request, then charge them all, or none.
        A signed request is checked against its client and the global window here but
        charged there only by `charge_verified`."""
        weight = self.weight(msg_type)
        known = signed or authenticated
        waits: list[tuple[timedelta, str]] = []
        for scope, limiter in (
            ("session", session),
            ("client", self._clients.get(client) if known else None),
            ("global", self._global),
        ):
            wait = limiter.wait_time(now, weight) if limiter is not None else None
            if wait is not None:
                waits.append((wait, scope))
        if not known:
            anonymous = self.guard.wait_time(source, now, weight)
            if anonymous is not None:
                waits.append(anonymous)
        if waits:
            wait, scope = max(waits)
            millis = retry_after_ms(wait)
            return RateLimited(
                f"Rate limit exceeded ({scope}): retry after {millis} ms",
                timedelta(milliseconds=millis),
            )
        session.take(now, weight)  # every scope has room (evicted just above)
        if signed:
            return None
        if known:
            self._client(client).take(now, weight)
        else:
            self.guard.take(source, now, weight)
        self._global.take(now, weight)
        return None

    def charge_verified(self, client: ClientKey, msg_type: str, now: datetime) -> None:
        """A signed request whose signature verified and was authorised: its client pays."""
        weight = self.weight(msg_type)
        self._client(client).take(now, weight)
        self._global.take(now, weight)

    def refused(
        self, session: RateLimiter, strikes: RateLimiter, source: str, now: datetime
    ) -> bool:
        """A frame refused for what it is costs its session and source a little and is a
        strike; True when the session has struck out."""
        session.take(now, self._unreadable_weight)
        self.guard.take(source, now, self._unreadable_weight)
        return strikes.try_acquire(now) is not None

    def tracked_clients(self) -> int:
        return len(self._clients)

    def _client(self, client: ClientKey) -> RateLimiter:
        limiters = self._clients
        limiter = limiters.get(client)
        if limiter is not None:
            limiters.move_to_end(client)
            return limiter
        while len(limiters) >= self._max_clients:
            # Only authenticated clients get a limiter, so this takes many real signers;
            # the least recently active is forgotten (O(1)) rather than rescanning them all.
            limiters.popitem(last=False)
        limiter = RateLimiter(self._client_rules)
        limiters[client] = limiter
        return limiter
