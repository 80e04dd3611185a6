"""Durable store (issue 10): what the SQLite journal and outbox cost.

- lifecycle: every input of the fixed full lifecycle (`sim/replay_check.py`: deposits, hops,
  orders, batches, fills, mints) handled by an engine whose journal is the SQLite store, with
  one durable commit before each input's effects (as `serve` does when effects leave one by
  one), against the same engine journalling nowhere: the milliseconds added per step.
- writes/s: durable commits of 1 and of 64 journal entries (group commit).
- market data: book diffs through the engine with the store on (committed every 1,000 diffs,
  i.e. every 25 ms at 40k diffs/s, tighter than serve's 100 ms) against the store off.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from indexmaker.core.clock import ManualClock
from indexmaker.core.events import BookSnapshot, BookUpdate, Tick
from indexmaker.core.journal import NullJournal
from indexmaker.engine.engine import Engine
from indexmaker.sim.replay_check import AAA, lifecycle, setup
from indexmaker.store.sqlite import SqliteStore

EFFECTS = (
    "SendToClient",
    "PlaceExchangeOrder",
    "QueryExchangeOrder",
    "RouteCollateral",
    "MintIndex",
)
AT = datetime(2026, 1, 1, tzinfo=UTC)


def _lifecycle_ms(directory: Path, durable: bool) -> tuple[float, int, int]:
    entries, _ = lifecycle()
    store = SqliteStore(directory / f"life-{time.monotonic_ns()}.sqlite3") if durable else None
    clock = ManualClock()
    engine = Engine(setup(), clock, store or NullJournal())
    steps = commits = 0
    started = time.perf_counter()
    for entry in entries:
        clock.set(entry.at)
        commands = engine.handle(entry.event)
        effects = [c for c in commands if type(c).__name__ in EFFECTS]
        steps += 1
        if store is not None:
            store.add_effects(store.last_seq, effects)
            if effects:
                store.commit()
                commits += 1
    elapsed = time.perf_counter() - started
    if store is not None:
        store.close()
    return elapsed * 1000, steps, commits


def _commits_per_second(directory: Path, group: int, seconds: float = 1.0) -> tuple[float, float]:
    store = SqliteStore(directory / f"w{group}-{time.monotonic_ns()}.sqlite3")
    latencies = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(group):
            store.append(AT, Tick(AT))
        started = time.perf_counter()
        store.commit()
        latencies.append(time.perf_counter() - started)
    store.close()
    return len(latencies) / sum(latencies), statistics.median(latencies) * 1000


def _diffs_per_second(directory: Path, durable: bool, diffs: int = 20_000) -> float:
    store = SqliteStore(directory / f"md-{time.monotonic_ns()}.sqlite3") if durable else None
    engine = Engine(setup(), ManualClock(), store or NullJournal())
    engine.handle(
        BookSnapshot(AAA, ((Decimal("9.9"), Decimal(500)),), ((Decimal(10), Decimal(300)),))
    )
    updates = [
        BookUpdate(
            AAA,
            bids=((Decimal("9.9") - Decimal(n % 20) / 100, Decimal(100 + n % 7)),),
            asks=((Decimal(10) + Decimal(n % 20) / 100, Decimal(200 + n % 5)),),
        )
        for n in range(diffs)
    ]
    started = time.perf_counter()
    for n, update in enumerate(updates, 1):
        engine.handle(update)
        if store is not None and n % 1000 == 0:
            store.commit()
    if store is not None:
        store.commit()
    elapsed = time.perf_counter() - started
    if store is not None:
        store.close()
    return diffs / elapsed


def run() -> list[str]:
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        base, durable = [], []
        for _ in range(3):
            ms, steps, _ = _lifecycle_ms(directory, durable=False)
            base.append(ms)
            ms, steps, commits = _lifecycle_ms(directory, durable=True)
            durable.append(ms)
        off, on = statistics.median(base), statistics.median(durable)
        lines.append(
            f"lifecycle ({steps} inputs, {commits} durable commits): store off {off:.1f} ms, "
            f"SQLite {on:.1f} ms; added {(on - off) / commits:.2f} ms per committed step "
            f"(goal < 5 ms), {(on - off) / steps:.2f} ms per input"
        )
        for group in (1, 64):
            rate, p50 = _commits_per_second(directory, group)
            lines.append(
                f"durable commits of {group} entr{'y' if group == 1 else 'ies'}: "
                f"{rate:,.0f} commits/s ({rate * group:,.0f} entries/s), p50 {p50:.2f} ms"
            )
        offs, ons = [], []
        for _ in range(3):
            offs.append(_diffs_per_second(directory, durable=False))
            ons.append(_diffs_per_second(directory, durable=True))
        off_rate, on_rate = statistics.median(offs), statistics.median(ons)
        lines.append(
            f"market data through the engine: store off {off_rate:,.0f} diffs/s, SQLite "
            f"{on_rate:,.0f} diffs/s (x{on_rate / off_rate:.2f}; goal >= x0.90)"
        )
    return lines


if __name__ == "__main__":
    for line in run():
        print(line)
