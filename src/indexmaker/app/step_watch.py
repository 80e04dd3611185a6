"""What the runtime (runtime.py) watches of each engine step and reports as health: which
order books reach the engine and when, how many book events it applied, how long steps take
(metrics), the engine's orders counted by state now and then, and the health judgement of
those figures (health.py). Read on the event loop between steps only, so it never races the
engine's worker thread.
"""

from __future__ import annotations

from collections import Counter

from indexmaker.app.health import HealthLimits, HealthReport, judge
from indexmaker.core.events import BookSnapshot, BookUpdate, EngineInput
from indexmaker.core.ports import VenuePort
from indexmaker.engine.engine import Engine
from indexmaker.observability.metrics import ServiceMetrics

STATE_SAMPLE_PERIOD = 1.0  # seconds between counts of orders by state (metrics)


class StepWatch:
    """Per-step figures of one engine (module docstring); `metrics` None: health only."""

    def __init__(
        self,
        engine: Engine,
        venue: VenuePort,
        limits: HealthLimits,
        metrics: ServiceMetrics | None,
    ) -> None:
        self._engine = engine
        self._venue = venue
        self._limits = limits
        self._metrics = metrics
        self._book_seen: dict[str, float] = {}  # instrument → loop time its book last came
        self.book_events = 0  # book snapshots and updates the engine applied (demo figures)
        self._states_sampled = float("-inf")

    def books_seen(self) -> int:
        """How many instruments' books have reached the engine since start."""
        return len(self._book_seen)

    def after_step(self, event: EngineInput, seconds: float, queue_depth: int, now: float) -> None:
        """One step of `seconds` on `event` is done at loop time `now`."""
        if isinstance(event, BookSnapshot | BookUpdate):
            self._book_seen[str(event.instrument)] = now
            self.book_events += 1
        metrics = self._metrics
        if metrics is not None:
            metrics.observe_step(type(event).__name__, seconds, queue_depth)
            if now - self._states_sampled >= STATE_SAMPLE_PERIOD:
                # Between steps the engine is idle, so reading it here cannot race the worker.
                self._states_sampled = now
                metrics.set_order_states(
                    Counter(u.status.value for u in self._engine.orders.all_updates())
                )
                metrics.not_trading.set(len(self._engine.listings.not_trading))

    def report(
        self,
        now: float,
        *,
        engine_alive: bool,
        step_seconds: float,
        loop_lag: float,
        queue_depth: int,
        queue_capacity: int,
    ) -> HealthReport:
        """The health judgement at loop time `now` (and its figures to the metrics)."""
        ages = {key: now - seen for key, seen in self._book_seen.items()}
        report = judge(
            self._limits,
            engine_alive=engine_alive,
            step_seconds=step_seconds,
            loop_lag=loop_lag,
            queue_depth=queue_depth,
            queue_capacity=queue_capacity,
            book_ages=ages,
        )
        if self._metrics is not None:
            self._metrics.observe_health(report, ages, self._venue.limit_headroom())
        return report
