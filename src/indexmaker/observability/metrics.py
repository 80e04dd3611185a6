"""Prometheus metrics of the live service (prometheus-client), served at `GET /metrics`.

One registry per service (never the process-global one), so tests and several services in
one process do not share counters. The runtime feeds it as it goes (steps, commands,
health); figures it cannot see (orders by state, FIX sessions) are read when scraped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from indexmaker.core.events import Alert, BatchEvent, Command
from indexmaker.core.ports import LimitHeadroom

if TYPE_CHECKING:
    from indexmaker.app.health import HealthReport

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
STEP_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.orders = Gauge(
            "indexmaker_orders", "Index order updates by state", ["state"], registry=r
        )
        self.batches_in_flight = Gauge(
            "indexmaker_batches_in_flight", "Batches created and not completed", registry=r
        )
        self.batch_latency = Histogram(
            "indexmaker_batch_latency_seconds",
            "Batch creation to completion (wall clock)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.book_age = Gauge(
            "indexmaker_book_age_seconds",
            "Seconds since the instrument's book last changed",
            ["instrument"],
            registry=r,
        )
        self.limiter_headroom = Gauge(
            "indexmaker_limiter_headroom",
            "Requests left in the venue's rate-limit pool",
            ["venue_pool"],
            registry=r,
        )
        self.loop_lag = Gauge(
            "indexmaker_loop_lag_seconds", "Worst event-loop lag over the last window", registry=r
        )
        self.queue_depth = Gauge(
            "indexmaker_queue_depth", "Inputs waiting for the engine", ["queue"], registry=r
        )
        self.fix_sessions = Gauge("indexmaker_fix_sessions", "Open FIX sessions", registry=r)
        self.engine_steps = Histogram(
            "indexmaker_engine_step_seconds",
            "Time the engine took for one input",
            ["input"],
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self.commands = Counter(
            "indexmaker_commands", "Commands the engine emitted", ["command"], registry=r
        )
        self.failures = Counter(
            "indexmaker_command_failures",
            "Port calls that failed or timed out",
            ["call"],
            registry=r,
        )
        self.healthy = Gauge("indexmaker_healthy", "1 when /health is ok", registry=r)
        self.alerts = Counter(
            "indexmaker_alerts", "Operator alerts the engine raised", ["code"], registry=r
        )
        self.not_trading = Gauge(
            "indexmaker_instruments_not_trading",
            "Instruments the venue does not trade now (halted, delisted)",
            registry=r,
        )
        self._batch_started: dict[int, float] = {}
        self._states_seen: set[str] = set()
        self._clock: Callable[[], float] | None = None
        self.session_count: Callable[[], int] | None = None

    def use_clock(self, clock: Callable[[], float]) -> None:
        """Monotonic seconds for batch latency (the event loop's time)."""
        self._clock = clock

    # ------------------------------------------------------------------ fed by the runtime

    def observe_step(self, input_name: str, seconds: float, queue_depth: int) -> None:
        self.engine_steps.labels(input_name).observe(seconds)
        self.queue_depth.labels("engine").set(queue_depth)

    def observe_command(self, command: Command) -> None:
        self.commands.labels(type(command).__name__).inc()
        if isinstance(command, Alert):
            self.alerts.labels(command.code).inc()
        if isinstance(command, BatchEvent) and self._clock is not None:
            now = self._clock()
            if command.kind == "created":
                self._batch_started[command.batch_id] = now
            elif command.kind == "completed":
                started = self._batch_started.pop(command.batch_id, None)
                if started is not None:
                    self.batch_latency.observe(now - started)
            self.batches_in_flight.set(len(self._batch_started))

    def command_failed(self, call: str) -> None:
        self.failures.labels(call.split(" ")[0]).inc()

    def observe_health(
        self,
        report: HealthReport,
        book_ages: Mapping[str, float],
        headroom: Sequence[LimitHeadroom],
    ) -> None:
        self.loop_lag.set(report.loop_lag_seconds)
        self.queue_depth.labels("engine").set(report.queue_depth)
        self.healthy.set(1 if report.healthy else 0)
        for instrument, age in book_ages.items():
            self.book_age.labels(instrument).set(age)
        for pool in headroom:
            self.limiter_headroom.labels(pool.pool).set(pool.remaining)

    # ------------------------------------------------------------------ scrape

    def set_order_states(self, counts: Mapping[str, int]) -> None:
        # States no longer present drop to 0 rather than keep their last count.
        for state in self._states_seen - counts.keys():
            self.orders.labels(state).set(0)
        for state, count in counts.items():
            self.orders.labels(state).set(count)
        self._states_seen |= counts.keys()

    def render(self) -> bytes:
        if self.session_count is not None:
            self.fix_sessions.set(self.session_count())
        return generate_latest(self.registry)
