"""The engine's order budget: how many exchange orders it may send, and when (SPEC §6).

SPEC §6: "The venue's limits are data read from its own answers (exchangeInfo rateLimits,
used-weight and order-count headers, Retry-After)". The budget starts as
`[solver] order_rate_limits`; a venue that states its order-count windows
(`VenueOrderLimits`, pushed by its adapter at start) replaces them, unless that setting was
given explicitly (`SolverConfig.venue_order_limits` False: the setting is an override). Every
exchange order of every kind of batch (buys, sells, rebalance rounds) waits in the tracker's
queue until the budget admits it, so a batch of more assets than one window allows goes out
over several windows, in the order it was planned, and the adapter never has to refuse one.
No new batch forms while the budget admits no order at all (`OrderTracker.has_room`): its
collateral is not engaged, nor its prices set, for orders that could not leave.

Feedback (`RateLimitFeedback`): the venue's own count of a window never counts less than
ours (another process on the account); a back-off (429 / 418 `Retry-After`) stops every
order until then, with one alert when the back-off starts, not one per refused order.
"""

from __future__ import annotations

from datetime import datetime

from indexmaker.core.errors import InvalidInputError
from indexmaker.core.events import Alert, Command, RateLimitFeedback, VenueOrderLimits
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.throttle import RateLimit
from indexmaker.engine.tracker import OrderTracker


def venue_order_limits(
    tracker: OrderTracker, event: VenueOrderLimits, config: SolverConfig, now: datetime
) -> None:
    """The venue's windows become the order budget (see the module). Raises
    InvalidInputError for a statement without windows or with a window that cannot be
    (non-positive limit or interval, a name twice): the budget is then unchanged."""
    if not config.venue_order_limits:
        return  # the operator's [solver] order_rate_limits win
    if not event.windows:
        raise InvalidInputError("windows", f"{event.venue} stated no order window")
    for window in event.windows:
        if not 0 < window.limit <= window.stated:
            raise InvalidInputError(
                window.name, f"limit {window.limit} must be in 1..{window.stated} (stated)"
            )
    limits = [RateLimit(w.name, w.limit, w.interval) for w in event.windows]
    tracker.use_limits(limits, now)


def rate_limit_feedback(
    tracker: OrderTracker, event: RateLimitFeedback, now: datetime
) -> list[Command]:
    """The venue's count of a window we keep wins over ours (a window we do not keep, e.g.
    request weight, is the adapter's alone: ignored); a back-off pauses every order until
    then. Returns the one alert of a back-off that starts now (none while one is in force)."""
    limiter = tracker.limiter
    kept = {rule.name for rule in limiter.limits}
    if event.window in kept and event.used is not None:
        limiter.observe_used(event.window, event.used, now)
    if event.retry_after is None:
        return []
    blocked = limiter.blocked_until
    limiter.block_until(now + event.retry_after)
    if blocked is not None and blocked > now:
        return []  # the same back-off, told again by every order it refused
    return [
        Alert(
            "rate_limited",
            f"{event.venue} asks to wait {event.retry_after}: {event.reason or ''}",
        )
    ]
