"""The live runtime's settings (runtime.py, command_runner.py), its wall clock, and which
commands reach the outside world (committed to the store before they leave, issue 10)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from indexmaker.app.health import HealthLimits
from indexmaker.core.events import (
    BurnIndex,
    EscrowIndex,
    MintIndex,
    PlaceExchangeOrder,
    QueryExchangeOrder,
    QueryHop,
    ReleaseIndex,
    RouteCollateral,
    SendToClient,
    WithdrawCollateral,
)

# Commands that reach the outside world (issue 10: committed before they leave); the others
# (Alert, BatchEvent) are only logged.
EFFECTS = (
    SendToClient,
    PlaceExchangeOrder,
    QueryExchangeOrder,
    RouteCollateral,
    QueryHop,
    MintIndex,
    BurnIndex,
    WithdrawCollateral,
    EscrowIndex,
    ReleaseIndex,
)


class SystemClock:
    """The wall clock, for the live service only (the core gets it injected)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RuntimeLimits:
    """How the runtime carries out the core's commands: each port call's timeout, the input
    queue's size (inputs), status-query retries, tick offloading and pacing, health limits."""

    command_timeout: timedelta = timedelta(seconds=5)
    queue_size: int = 10_000
    query_attempts: int = 5  # status queries of one QueryExchangeOrder, backing off
    query_backoff: timedelta = timedelta(milliseconds=200)
    unknown_retry: timedelta = timedelta(seconds=30)  # before asking the core to query again
    offload_ticks: bool = True  # run ticks in the engine's worker thread
    # With offload_ticks: the event loop gets a turn at least this often during a tick
    # (app/handoff.py); None lets the GIL's switch interval alone decide (5 ms turns).
    tick_slice: timedelta | None = timedelta(milliseconds=2)
    watchdog_period: timedelta = timedelta(seconds=1)
    health: HealthLimits = field(default_factory=HealthLimits)
