"""Durable store (issue 10): what the journal and outbox cost, on SQLite and PostgreSQL,
each beside a same-run baseline with the store off.

- lifecycle, one at a time: every input of the fixed full lifecycle (`sim/replay_check.py`:
  deposits, hops, orders, batches, fills, mints) handled by an engine whose journal is the
  store, each input waiting until the previous one's effects have left, i.e. its commit is
  durable (a lone order on a quiet service); against the same engine journalling nowhere:
  the milliseconds added per committed step (the commit's wait: mostly the disk's flush).
  (`serve` waits the same way when an effect waits: app/group_commit.py.)
- writes/s: durable commits of 1 and of 64 journal entries (group commit), one after the
  other, each waited for.
- market data: book diffs for three instruments through the engine at 40k diffs/s of
  simulated time, a solver tick every 1,000 diffs (25 ms) and, with the store on, a group
  commit asked for every 4,000 (100 ms: serve's `[store] commit_interval` while only market
  data arrives; the engine does not wait for it, as in serve), books journalled at tick
  granularity; against the store off.

PostgreSQL is Debian's package started here on 127.0.0.1 with fsync on (store/pgserver.py),
skipped with the reason where it is not installed. Store on and off alternate, five rounds
each (nine for market data), and the best round of each is compared: on a shared machine
the best round is the one least disturbed by other work, for both sides alike. Market data
also gives the median ratio of adjacent rounds (a round is only ~0.5 s, and one lucky
round of either side moved the best-round ratio by ±0.3 under load).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from indexmaker.core.clock import ManualClock
from indexmaker.core.events import BookSnapshot, BookUpdate, Tick
from indexmaker.core.journal import NullJournal
from indexmaker.engine.engine import Engine
from indexmaker.sim.replay_check import AAA, BBB, CCC, lifecycle, setup
from indexmaker.store import pgserver
from indexmaker.store.postgres import PostgresStore
from indexmaker.store.sql import SqlStore
from indexmaker.store.sqlite import SqliteStore

EFFECTS = (
    "SendToClient",
    "PlaceExchangeOrder",
    "QueryExchangeOrder",
    "RouteCollateral",
    "MintIndex",
)
AT = datetime(2026, 1, 1, tzinfo=UTC)
Opener = Callable[[], SqlStore]
ROUNDS = 5
MD_ROUNDS = 9


def _lifecycle_ms(open_store: Opener | None) -> tuple[float, int, int]:
    entries, _ = lifecycle()
    store = open_store() if open_store is not None else None
    clock = ManualClock()
    engine = Engine(setup(), clock, store or NullJournal(), compact_market=store is not None)
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


def _commits_per_second(
    open_store: Opener, group: int, seconds: float = 1.0
) -> tuple[float, float]:
    store = open_store()
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


def _diffs_per_second(open_store: Opener | None, diffs: int = 60_000) -> float:
    store = open_store() if open_store is not None else None
    clock = ManualClock(AT)
    engine = Engine(setup(), clock, store or NullJournal(), compact_market=store is not None)
    instruments = (AAA, BBB, CCC)
    for instrument in instruments:
        engine.handle(
            BookSnapshot(
                instrument, ((Decimal("9.9"), Decimal(500)),), ((Decimal(10), Decimal(300)),)
            )
        )
    updates = [
        BookUpdate(
            instruments[n % 3],
            bids=((Decimal("9.9") - Decimal(n % 20) / 100, Decimal(100 + n % 7)),),
            asks=((Decimal(10) + Decimal(n % 20) / 100, Decimal(200 + n % 5)),),
        )
        for n in range(diffs)
    ]
    started = time.perf_counter()
    for n, update in enumerate(updates, 1):
        engine.handle(update)
        if n % 1000 == 0:
            clock.advance(timedelta(milliseconds=25))
            engine.handle(Tick(clock.now()))
            if store is not None and n % 4000 == 0:
                store.commit_later()  # serve does not wait for a commit of market data
    if store is not None:
        store.commit()
    elapsed = time.perf_counter() - started
    if store is not None:
        store.close()
    return diffs / elapsed


@contextmanager
def _backends(directory: Path) -> Iterator[list[tuple[str, Opener | str]]]:
    """(name, opener of a fresh database) per backend, or (name, why it is skipped)."""
    counter = iter(range(1_000_000))
    backends: list[tuple[str, Opener | str]] = [
        ("SQLite", lambda: SqliteStore(directory / f"db-{next(counter)}.sqlite3"))
    ]
    why = pgserver.unavailable()
    if why is not None:
        backends.append(("PostgreSQL", f"skipped: {why}"))
        yield backends
        return
    pg_dir = Path(tempfile.mkdtemp(prefix="indexmaker-bench-pg-"))
    try:
        server = pgserver.start(pg_dir, durable=True)
        backends.append(
            ("PostgreSQL", lambda: PostgresStore(server.create_database(f"b{next(counter)}")))
        )
        yield backends
    finally:
        pgserver.stop(pg_dir)
        shutil.rmtree(pg_dir, ignore_errors=True)


def run() -> list[str]:
    lines = []
    with tempfile.TemporaryDirectory() as tmp, _backends(Path(tmp)) as backends:
        for name, opener in backends:
            if isinstance(opener, str):
                lines.append(f"{name}: {opener}")
                continue
            base, durable = [], []
            for _ in range(ROUNDS):  # alternated, so both see the same machine
                ms, steps, _ = _lifecycle_ms(None)
                base.append(ms)
                ms, steps, commits = _lifecycle_ms(opener)
                durable.append(ms)
            off, on = min(base), min(durable)
            lines.append(
                f"{name} lifecycle one at a time ({steps} inputs, {commits} durable commits): "
                f"store off {off:.1f} ms, on {on:.1f} ms; added {(on - off) / commits:.2f} ms "
                f"per committed step (goal < 5 ms on SQLite), {(on - off) / steps:.2f} ms per input"
            )
            for group in (1, 64):
                rate, p50 = _commits_per_second(opener, group)
                lines.append(
                    f"{name} durable commits of {group} entr{'y' if group == 1 else 'ies'}: "
                    f"{rate:,.0f} commits/s ({rate * group:,.0f} entries/s), p50 {p50:.2f} ms"
                )
            offs, ons = [], []
            for _ in range(MD_ROUNDS):
                offs.append(_diffs_per_second(None))
                ons.append(_diffs_per_second(opener))
            off_rate, on_rate = max(offs), max(ons)
            # Each on round beside the off round just before it: their ratio's median is
            # steadier on a shared machine than one lucky round of either side.
            paired = statistics.median(on / off for on, off in zip(ons, offs, strict=True))
            lines.append(
                f"{name} market data through the engine: store off {off_rate:,.0f} diffs/s, "
                f"on {on_rate:,.0f} diffs/s (best rounds x{on_rate / off_rate:.2f}); median of "
                f"{MD_ROUNDS} paired rounds x{paired:.2f} (goal >= x0.90)"
            )
    return lines


if __name__ == "__main__":
    for line in run():
        print(line)
