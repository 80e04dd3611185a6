"""Journal compaction: the journal must not grow forever (issue 10; docs/decisions.md,
"Journal compaction behind the spare snapshot").

The store keeps the `keep` newest engine snapshots (any build). Once `keep` of them are
durable, every journal entry at or before the oldest kept one is deleted: a restart restores
any kept snapshot and replays only what follows it, so nothing it needs is gone. Deletes run
in the store's writer thread inside the next group commits' transactions, at most `batch`
entries each (a range of the primary key): no long lock and no fsync of their own, and a
kill between two batches leaves a journal that still starts right after a kept snapshot.
How far the journal was cut is the meta value `journal_compacted_through`, written in the
same transaction as each batch's delete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

# The newest and one spare (restorable if the newest cannot be read); 0: never compact.
KEEP_SNAPSHOTS = 2
# Entries deleted per group commit at most: bounded lock time per transaction, and still
# far above the rate market data adds entries (a commit runs every commit_interval).
COMPACT_BATCH = 5_000
FLOOR_META = "journal_compacted_through"


class Dialect(Protocol):
    def sql(self, statement: str) -> str: ...


class JournalCompacted(Exception):
    """Entries a reader asked for were deleted by compaction (restore a kept snapshot)."""


@dataclass(slots=True)
class Compaction:
    """What the writer thread knows: the kept snapshots' seqs and how far the journal was
    cut. `plan` + `apply` run inside one transaction; `committed` only once it is durable."""

    keep: int = KEEP_SNAPSHOTS
    batch: int = COMPACT_BATCH
    snapshots: list[int] = field(default_factory=list)  # kept snapshots' seqs, ascending
    floor: int = 0  # every entry with seq <= floor is deleted (durably)

    def target(self, snapshots: list[int]) -> int:
        """The seq compaction may delete up to with these snapshots kept (0: nothing)."""
        if self.keep == 0 or len(snapshots) < self.keep:
            return 0
        return snapshots[-self.keep]

    def write(
        self, cursor: Any, dialect: Dialect, snapshot: tuple[int, str] | None
    ) -> tuple[list[int], int]:
        """In the caller's transaction, after the group's rows: drop snapshots beyond the
        kept ones (when the group holds a new one, `snapshot` = (seq, build)) and delete one
        batch of entries behind the oldest kept snapshot. Returns (kept seqs, new floor)
        for `committed`."""
        sql = dialect.sql
        snapshots = self.snapshots
        if snapshot is not None:
            seq, fingerprint = snapshot
            snapshots = sorted({*snapshots, seq})
            if self.keep:
                snapshots = snapshots[-self.keep :]
                cursor.execute(sql("DELETE FROM snapshots WHERE seq < ?"), (snapshots[0],))
            else:  # no compaction: only a build's newest snapshot is ever read
                cursor.execute(
                    sql("DELETE FROM snapshots WHERE fingerprint = ? AND seq < ?"),
                    (fingerprint, seq),
                )
        floor = self.floor
        target = self.target(snapshots)
        if target > floor:
            floor = min(target, floor + self.batch)
            # Journal seqs are gapless: a key range of at most `batch` rows.
            cursor.execute(sql("DELETE FROM journal WHERE seq <= ?"), (floor,))
            cursor.execute(
                sql(
                    "INSERT INTO meta (name, value) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
                ),
                (FLOOR_META, str(floor)),
            )
        return snapshots, floor

    def committed(self, state: tuple[list[int], int]) -> None:
        self.snapshots, self.floor = state

    @property
    def pending(self) -> bool:
        """Entries behind the oldest kept snapshot are still to be deleted."""
        return self.target(self.snapshots) > self.floor
