"""The store on both backends (SQLite, PostgreSQL): migrations, group commit, what survives
a reopen, snapshots, crash points."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from indexmaker.core import codec
from indexmaker.core.events import ClientResponse, SendToClient, Tick
from indexmaker.core.ids import ClientKey
from indexmaker.sim.replay_check import lifecycle
from indexmaker.store.crash import CrashPoints
from indexmaker.store.migrations import LATEST, MIGRATIONS, SchemaError
from indexmaker.store.sql import SqlStore
from indexmaker.store.sqlite import SqliteStore

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _abandon(store: SqlStore) -> None:
    """Drop the connection without the final commit, as a kill -9 does."""
    store._db.close()


def _sql(store: SqlStore, statement: str) -> list[tuple[object, ...]]:
    return store._rows(statement)


def test_a_new_database_gets_every_migration_once(open_store: Callable[[], SqlStore]) -> None:
    open_store().close()
    store = open_store()  # reopening applies nothing twice
    versions = _sql(store, "SELECT version FROM schema_migrations ORDER BY version")
    assert versions == [(m.version,) for m in MIGRATIONS]
    assert versions[-1] == (LATEST,)
    store.close()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "db").close()
    assert sqlite3.connect(tmp_path / "db").execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_database_from_a_newer_build_is_refused(open_store: Callable[[], SqlStore]) -> None:
    store = open_store()
    store._db.execute("INSERT INTO schema_migrations VALUES (99, 'future', 'x')")
    store.close()
    with pytest.raises(SchemaError, match=f"version 99 is newer than this build's {LATEST}"):
        open_store()


def test_only_committed_inputs_survive_and_numbering_continues(
    open_store: Callable[[], SqlStore],
) -> None:
    store = open_store()
    store.append(AT, Tick(AT))
    store.append(AT, Tick(AT))
    store.commit()
    store.append(AT, Tick(AT))  # buffered, never committed: lost like in a crash
    assert store.dirty
    _abandon(store)

    reopened = open_store()
    assert [e.seq for e in reopened.entries()] == [1, 2]
    assert [e.seq for e in reopened.entries(after=1)] == [2]
    assert reopened.append(AT, Tick(AT)).seq == 3
    reopened.close()


def test_a_whole_lifecycle_journal_reads_back_byte_for_byte(
    open_store: Callable[[], SqlStore],
) -> None:
    entries, _ = lifecycle()
    store = open_store()
    for entry in entries:
        store.append(entry.at, entry.event)
    store.commit()
    store.close()
    back = list(open_store().entries())
    assert [codec.encode_entry(e) for e in back] == [codec.encode_entry(e) for e in entries]


def test_outbox_items_stay_pending_until_marked_done_and_committed(
    open_store: Callable[[], SqlStore],
) -> None:
    store = open_store()
    seq = store.append(AT, Tick(AT)).seq
    client = ClientKey((1, "0xabc"))
    message = SendToClient(client, _any_response())
    first, second = store.add_effects(seq, [message, message])
    assert (first.key, second.key) == (f"{seq}.0", f"{seq}.1")
    store.commit()
    store.mark_done([first.key])
    _abandon(store)  # the done mark was never committed

    reopened = open_store()
    assert [i.key for i in reopened.pending()] == [first.key, second.key]
    reopened.mark_done([first.key])
    reopened.set_meta("server_seq", "41")
    reopened.close()
    again = open_store()
    assert [i.key for i in again.pending()] == [second.key]
    assert again.pending()[0].command == message
    assert again.get_meta("server_seq") == "41"
    again.close()


def test_closing_twice_is_harmless_and_drops_nothing(open_store: Callable[[], SqlStore]) -> None:
    store = open_store()
    store.append(AT, Tick(AT))
    store.close()
    store.save_snapshot(1, "b", b"late")  # a second stop snapshots again: nothing to write to
    store.close()
    assert [e.seq for e in open_store().entries()] == [1]


def test_effects_keep_their_order_past_ten_per_input(open_store: Callable[[], SqlStore]) -> None:
    store = open_store()
    seq = store.append(AT, Tick(AT)).seq
    message = SendToClient(ClientKey((1, "0xabc")), _any_response())
    store.add_effects(seq, [message] * 12)
    store.close()
    keys = [i.key for i in open_store().effects()]
    assert keys == [f"{seq}.{n}" for n in range(12)]  # 1.10 after 1.9, not after 1.1


def test_the_newest_snapshot_of_the_build_is_kept_with_its_commit(
    open_store: Callable[[], SqlStore],
) -> None:
    store = open_store()
    store.append(AT, Tick(AT))
    store.save_snapshot(1, "build-a", b"one")
    store.commit()
    store.append(AT, Tick(AT))
    store.save_snapshot(2, "build-a", b"two")
    _abandon(store)  # the second snapshot was never committed
    reopened = open_store()
    assert reopened.latest_snapshot("build-a") == (1, b"one")
    assert reopened.latest_snapshot("build-b") is None  # another build's is never read
    reopened.append(AT, Tick(AT))
    reopened.save_snapshot(2, "build-a", b"\x00two\xff")
    reopened.close()
    assert open_store().latest_snapshot("build-a") == (2, b"\x00two\xff")


def test_a_failed_commit_is_written_again_first_by_the_next(tmp_path: Path) -> None:
    """A group whose transaction failed (here: another connection holds the write lock)
    is not lost: the next commit writes it before its own group, so the journal stays a
    gapless prefix."""
    store = SqliteStore(tmp_path / "db")
    store._db.execute("PRAGMA busy_timeout = 20")  # give up on the lock at once
    blocker = sqlite3.connect(tmp_path / "db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    store.append(AT, Tick(AT))
    store.append(AT, Tick(AT))
    failed = store.commit_later()
    store.append(AT, Tick(AT))  # buffered while the commit is in the writer thread
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        failed.result(timeout=30)
    blocker.execute("ROLLBACK")
    blocker.close()
    store.commit()
    assert [e.seq for e in store.entries()] == [1, 2, 3]
    assert store.commits == 1
    store.close()


def _any_response() -> ClientResponse:
    _, commands = lifecycle()
    return next(c.message for c in commands if isinstance(c, SendToClient))


CRASHER = """
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from indexmaker.core.events import Tick
from indexmaker.store.crash import CrashPoints
from indexmaker.store.sqlite import SqliteStore
at = datetime(2026, 1, 1, tzinfo=UTC)
store = SqliteStore(Path(sys.argv[1]), CrashPoints(sys.argv[2]))
for group in range(5):
    for _ in range(3):
        store.append(at, Tick(at))
    if sys.argv[3:] == ["later"]:
        store.commit_later()  # pipelined: the next group is buffered during this commit
    else:
        store.commit()
store.close()
"""


@pytest.mark.parametrize(("point", "kept"), [("commit:2", 6), ("before_commit:2", 3)])
def test_a_sigkill_keeps_exactly_the_committed_groups(
    tmp_path: Path, point: str, kept: int
) -> None:
    db = tmp_path / "db"
    done = subprocess.run([sys.executable, "-c", CRASHER, str(db), point], timeout=60)
    assert done.returncode == -9  # killed, no handler ran
    assert [e.seq for e in SqliteStore(db).entries()] == list(range(1, kept + 1))


def test_the_crash_point_spec_is_checked() -> None:
    for bad in ("commit:0", "commit:Tick#x", "nowhere:3", "commit"):
        with pytest.raises(ValueError, match="INDEXMAKER_CRASH_AT: expected <point>:<n>"):
            CrashPoints(bad)


@pytest.mark.parametrize("mode", ["wait", "later"])
def test_a_durable_crash_point_counts_across_restarts(tmp_path: Path, mode: str) -> None:
    """`commit:Tick#n` is the commit holding the n-th Tick ever journalled, whichever life of
    the process gets there (groups of 3 here), also when each commit is asked for without
    waiting (the writer thread commits while the next group is buffered)."""
    db = tmp_path / "db"
    first = subprocess.run(
        [sys.executable, "-c", CRASHER, str(db), "commit:Tick#4", mode], timeout=60
    )
    assert first.returncode == -9
    assert SqliteStore(db).last_seq == 6  # the 2nd group held the 4th tick
    again = subprocess.run(
        [sys.executable, "-c", CRASHER, str(db), "before_commit:Tick#11", mode], timeout=60
    )
    assert again.returncode == -9
    assert SqliteStore(db).last_seq == 9  # 10-12 were buffered, never durable


def test_a_durable_effect_point_is_the_nth_effect_of_its_kind() -> None:
    points = CrashPoints("effect:SendToClient#2")
    points.counted("effect", "SendToClient", "1.0")
    points.counted("effect", "MintIndex", "1.1")
    points.counted("effect", "SendToClient", "2.0")
    points.hit("effect", "1.0")  # the first one left: alive
    points.hit("commit")
    assert points._effect_key == "2.0"


def test_a_chain_step_point_is_checked() -> None:
    for bad in ("chain:across_deposited", "chain:nowhere#1", "chain:across_deposited#0"):
        with pytest.raises(ValueError, match="INDEXMAKER_CRASH_AT: expected chain:<step>#<n>"):
            CrashPoints(bad)
    points = CrashPoints("chain:wallet_released#1")
    assert not points.durable  # counted in this life only; the store's points stay off
    points.hit("commit", span=(0, 5))
    points.hit("effect", "1.0")  # alive: neither is a chain step


CHAIN_STEPPER = """
import sys
from indexmaker.store.crash import CrashPoints
points = CrashPoints(sys.argv[1])
for step in ["across_released", "across_deposited"] * 3:
    points.step(step)
    print(step, flush=True)
"""


@pytest.mark.parametrize(
    ("spec", "reached"),
    [
        ("chain:across_deposited#2", ["across_released", "across_deposited", "across_released"]),
        ("chain:across_released#1", []),
        ("chain:across_filled#1", ["across_released", "across_deposited"] * 3),  # never reached
    ],
)
def test_a_chain_step_point_kills_at_the_nth_time_the_step_is_reached(
    spec: str, reached: list[str]
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHAIN_STEPPER, spec], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.split() == reached
    assert done.returncode == (0 if len(reached) == 6 else -9)
