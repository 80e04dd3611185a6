"""Liveness of the live service: event-loop lag, engine progress, queue depth, book age.

`LoopLagMonitor` measures how late the event loop wakes a sleeper (what a FIX frame waiting
to be read also suffers); `HealthLimits` bounds every figure; `HealthReport` says which are
out of bounds. `/health` answers 503 when any is (server/ws_server.py).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class HealthLimits:
    """When the service stops being healthy. Defaults suit the simulated peers."""

    max_loop_lag: timedelta = timedelta(milliseconds=250)
    max_queue_fill: float = 0.8  # share of the input queue's capacity
    max_book_age: timedelta = timedelta(seconds=60)
    max_step: timedelta = timedelta(seconds=5)  # one engine step running longer is stuck


@dataclass(frozen=True, slots=True)
class HealthReport:
    engine_alive: bool
    engine_step_seconds: float  # how long the current step has run (0 when idle)
    loop_lag_seconds: float  # worst lag over the monitor's window
    queue_depth: int
    queue_capacity: int
    book_age_seconds: float | None  # oldest subscribed book (None before the first)
    stalest_book: str | None
    problems: tuple[str, ...] = field(default=())

    @property
    def healthy(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {
            "status": "ok" if self.healthy else "unhealthy",
            "problems": list(self.problems),
            "engine_alive": self.engine_alive,
            "engine_step_ms": round(self.engine_step_seconds * 1000, 3),
            "loop_lag_ms": round(self.loop_lag_seconds * 1000, 3),
            "queue_depth": self.queue_depth,
            "queue_capacity": self.queue_capacity,
            "book_age_s": None
            if self.book_age_seconds is None
            else round(self.book_age_seconds, 3),
            "stalest_book": self.stalest_book,
        }


def judge(
    limits: HealthLimits,
    *,
    engine_alive: bool,
    step_seconds: float,
    loop_lag: float,
    queue_depth: int,
    queue_capacity: int,
    book_ages: dict[str, float],
) -> HealthReport:
    """A report naming every figure that is out of bounds."""
    problems: list[str] = []
    if not engine_alive:
        problems.append("engine task is not running")
    if step_seconds > limits.max_step.total_seconds():
        problems.append(f"engine step running for {step_seconds:.1f}s")
    if loop_lag > limits.max_loop_lag.total_seconds():
        problems.append(f"event loop lag {loop_lag * 1000:.0f}ms")
    if queue_capacity and queue_depth > limits.max_queue_fill * queue_capacity:
        problems.append(f"input queue {queue_depth}/{queue_capacity}")
    stalest = max(book_ages, key=lambda k: (book_ages[k], k)) if book_ages else None
    age = book_ages[stalest] if stalest is not None else None
    if age is not None and age > limits.max_book_age.total_seconds():
        problems.append(f"book {stalest} is {age:.0f}s old")
    return HealthReport(
        engine_alive,
        step_seconds,
        loop_lag,
        queue_depth,
        queue_capacity,
        age,
        stalest,
        tuple(problems),
    )


class LoopLagMonitor:
    """Sleeps `interval` over and over and records how late each wake-up was."""

    def __init__(self, interval: timedelta = timedelta(milliseconds=20), window: int = 250) -> None:
        self.interval = interval.total_seconds()
        self.samples: deque[float] = deque(maxlen=window)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def worst(self) -> float:
        return max(self.samples, default=0.0)

    def quantile(self, q: float) -> float:
        if not self.samples:
            return 0.0
        ordered = sorted(self.samples)
        return ordered[min(int(q * len(ordered)), len(ordered) - 1)]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.interval)
            self.samples.append(max(loop.time() - started - self.interval, 0.0))
