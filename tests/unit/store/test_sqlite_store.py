"""The SQLite store: migrations, group commit, what survives a reopen, crash points."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from indexmaker.core import codec
from indexmaker.core.events import ClientResponse, SendToClient, Tick
from indexmaker.core.ids import ClientKey
from indexmaker.sim.replay_check import lifecycle
from indexmaker.store.crash import CrashPoints
from indexmaker.store.migrations import LATEST, MIGRATIONS, SchemaError
from indexmaker.store.sqlite import SqliteStore

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_new_database_gets_every_migration_once(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "db").close()
    SqliteStore(tmp_path / "db").close()  # reopening applies nothing twice
    db = sqlite3.connect(tmp_path / "db")
    versions = db.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert versions == [(m.version,) for m in MIGRATIONS] and versions[-1] == (LATEST,)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_database_from_a_newer_build_is_refused(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "db").close()
    db = sqlite3.connect(tmp_path / "db")
    db.execute("INSERT INTO schema_migrations VALUES (99, 'future', 'x')")
    db.commit()
    with pytest.raises(SchemaError, match=f"version 99 is newer than this build's {LATEST}"):
        SqliteStore(tmp_path / "db")


def test_only_committed_inputs_survive_and_numbering_continues(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db")
    store.append(AT, Tick(AT))
    store.append(AT, Tick(AT))
    store.commit()
    store.append(AT, Tick(AT))  # buffered, never committed: lost like in a crash
    assert store.dirty
    store._db.close()  # no final commit, as after kill -9

    reopened = SqliteStore(tmp_path / "db")
    assert [e.seq for e in reopened.entries()] == [1, 2]
    assert reopened.append(AT, Tick(AT)).seq == 3


def test_a_whole_lifecycle_journal_reads_back_byte_for_byte(tmp_path: Path) -> None:
    entries, _ = lifecycle()
    store = SqliteStore(tmp_path / "db")
    for entry in entries:
        store.append(entry.at, entry.event)
    store.commit()
    store.close()
    back = list(SqliteStore(tmp_path / "db").entries())
    assert [codec.encode_entry(e) for e in back] == [codec.encode_entry(e) for e in entries]


def test_outbox_items_stay_pending_until_marked_done_and_committed(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db")
    seq = store.append(AT, Tick(AT)).seq
    client = ClientKey((1, "0xabc"))
    message = SendToClient(client, _any_response())
    first, second = store.add_effects(seq, [message, message])
    assert (first.key, second.key) == (f"{seq}.0", f"{seq}.1")
    store.commit()
    store.mark_done([first.key])
    store._db.close()  # the done mark was never committed

    reopened = SqliteStore(tmp_path / "db")
    assert [i.key for i in reopened.pending()] == [first.key, second.key]
    reopened.mark_done([first.key])
    reopened.set_meta("server_seq", "41")
    reopened.close()
    again = SqliteStore(tmp_path / "db")
    assert [i.key for i in again.pending()] == [second.key]
    assert again.pending()[0].command == message
    assert again.get_meta("server_seq") == "41"


def _any_response() -> ClientResponse:
    _, commands = lifecycle()
    return next(c.message for c in commands if isinstance(c, SendToClient))


CRASHER = """
import sys
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
    store.commit()
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
    with pytest.raises(ValueError, match="INDEXMAKER_CRASH_AT: expected <point>:<n>"):
        CrashPoints("commit:0")
