"""Journal compaction (issue 10; store/compaction.py): what deleting the journal behind the
spare snapshot costs each group commit, on SQLite and PostgreSQL, beside the same run with
compaction off (`keep_snapshots = 0`), and how large the journal and the file end.

Both sides write the same stream: 4 x SNAPSHOT_EVERY journal entries of market data (a
20-level `BookSnapshot` each, ~1.4 KB encoded like serve's idle books) in group commits of
GROUP entries, each waited for, with a 200 KB snapshot every SNAPSHOT_EVERY entries. With
compaction on, the commits after the second snapshot also delete up to 5,000 old entries
each. Figures: commit latency p50 / p99 / max per side, entries left in the journal and,
on SQLite, the file's size. Rounds alternate (off, on) and the best round of each is shown.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from bench_store import _backends

from indexmaker.core.events import BookSnapshot
from indexmaker.sim.replay_check import AAA
from indexmaker.store.sql import SqlStore
from indexmaker.store.sqlite import SqliteStore

AT = datetime(2026, 1, 1, tzinfo=UTC)
SNAPSHOT_EVERY = 5_000
GROUP = 250
ROUNDS = 2
BOOK = BookSnapshot(
    AAA,
    tuple((Decimal("9.9") - Decimal(n) / 100, Decimal(100 + n)) for n in range(20)),
    tuple((Decimal(10) + Decimal(n) / 100, Decimal(50 + n)) for n in range(20)),
)
STATE = bytes(range(256)) * 800  # a snapshot's pickle of ~200 KB


def _stream(store: SqlStore) -> tuple[list[float], int, int]:
    """Commit latencies (s), entries left, and the SQLite file size (0 elsewhere)."""
    latencies = []
    for _ in range(4 * SNAPSHOT_EVERY // GROUP):
        for _entry in range(GROUP):
            store.append(AT, BOOK)
        if store.last_seq % SNAPSHOT_EVERY == 0:
            store.save_snapshot(store.last_seq, "bench", STATE)
        started = time.perf_counter()
        store.commit()
        latencies.append(time.perf_counter() - started)
    for _ in range(8):  # let the last batches of compaction run with a few more commits
        store.append(AT, BOOK)
        store.commit()
    left = int(store._rows("SELECT COUNT(*) FROM journal")[0][0])
    size = store.path.stat().st_size if isinstance(store, SqliteStore) else 0
    store.close()
    return latencies, left, size


def _ms(latencies: list[float], q: float) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _line(name: str, side: str, latencies: list[float], left: int, size: int) -> str:
    mb = f", file {size / 1e6:.1f} MB" if size else ""
    return (
        f"{name} {side}: commit of {GROUP} entries p50 {statistics.median(latencies) * 1000:.2f}"
        f" ms, p99 {_ms(latencies, 0.99):.2f} ms, max {max(latencies) * 1000:.2f} ms; "
        f"journal {left:,} entries after {4 * SNAPSHOT_EVERY + 8:,}{mb}"
    )


def run() -> list[str]:
    lines = []
    with tempfile.TemporaryDirectory() as tmp, _backends(Path(tmp)) as backends:
        for name, opener in backends:
            if isinstance(opener, str):
                lines.append(f"{name}: {opener}")
                continue
            results: dict[int, list[tuple[list[float], int, int]]] = {0: [], 2: []}
            for _ in range(ROUNDS):
                for keep in (0, 2):
                    results[keep].append(_stream(_with_keep(opener, keep)))
            for keep, side in ((0, "compaction off"), (2, "keep_snapshots 2")):
                best = min(results[keep], key=lambda r: statistics.median(r[0]))
                lines.append(_line(name, side, *best))
    return lines


def _with_keep(opener: Callable[[], SqlStore], keep: int) -> SqlStore:
    store = opener()
    store.compaction.keep = keep
    return store


if __name__ == "__main__":
    for line in run():
        print(line)
