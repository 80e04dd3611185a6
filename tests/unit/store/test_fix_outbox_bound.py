"""The store's client messages (the durable FIX outbox) on both backends, a real SQLite file
and a real PostgreSQL database: bounded to what a restart restores, and ranked (so numbered)
the same across journal compaction and their own deletion (store/fix_outbox.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from indexmaker.core.events import SendToClient, Tick
from indexmaker.core.store_records import StoredMessage
from indexmaker.sim.replay_check import lifecycle
from indexmaker.store.sql import SqlStore

AT = datetime(2026, 1, 1, tzinfo=UTC)
Opener = Callable[[int], SqlStore]


def _messages(count: int) -> list[SendToClient]:
    _, commands = lifecycle()
    found = [c for c in commands if isinstance(c, SendToClient)]
    assert len(found) >= count
    return found[:count]


def _write(store: SqlStore, messages: list[SendToClient], delivered: int, start: int = 0) -> None:
    """Message n caused by an input at AT + n seconds, one per entry; the first `delivered`
    marked done; a commit per entry (each may run a pass of the bound)."""
    for n, message in enumerate(messages, start):
        at = AT + timedelta(seconds=n)
        seq = store.append(at, Tick(at)).seq
        (item,) = store.add_effects(seq, [message])
        if n < delivered:
            store.mark_done([item.key])
        store.commit()


def _rows(store: SqlStore) -> int:
    return int(store._one("SELECT COUNT(*) FROM outbox WHERE kind = 'SendToClient'")[0])


def _restored(store: SqlStore, now: datetime) -> tuple[int, list[StoredMessage]]:
    """What serve's start rebuilds its FIX outbox from: a 10 s retention, the last 6."""
    return store.client_messages(now - timedelta(seconds=10), 6)


def test_ranks_and_times_survive_journal_compaction(open_keeping: Opener) -> None:
    messages = _messages(30)
    store = open_keeping(2)  # the journal is cut behind the older of two snapshots
    _write(store, messages[:20], delivered=20)
    for seq in (10, 20):
        store.save_snapshot(seq, "build", b"state")
        store.commit()
    store.commit()
    assert store.compacted_through == 10
    _write(store, messages[20:], delivered=30, start=20)
    store.close()

    store = open_keeping(2)
    now = AT + timedelta(seconds=29)
    total, kept = _restored(store, now)
    assert total == 30  # every message ever committed, journal compacted or not
    assert [m.rank for m in kept] == list(range(24, 30))
    assert [m.command for m in kept] == messages[24:30]
    assert [m.at for m in kept] == [AT + timedelta(seconds=n) for n in range(24, 30)]
    store.close()


def test_only_delivered_messages_a_restart_would_not_restore_are_deleted(
    open_keeping: Opener,
) -> None:
    messages = _messages(40)
    store = open_keeping(0)
    _write(store, messages[:30], delivered=30)
    now = AT + timedelta(seconds=29)
    before = _restored(store, now)
    store.bound_client_messages(timedelta(seconds=10), keep=6, every=0)
    store.commit()  # nothing buffered: no pass without a commit of its own
    _write(store, messages[30:], delivered=35, start=30)  # 35..39 not yet delivered
    # Passes at every commit: everything before the newest 6 that is delivered is gone,
    # never an undelivered one, and what a restart restores is unchanged.
    assert _rows(store) == 6
    store.close()

    store = open_keeping(0)
    later = AT + timedelta(seconds=39)
    total, kept = _restored(store, later)
    assert total == 40
    assert [m.rank for m in kept] == list(range(34, 40))
    assert [m.command for m in kept] == messages[34:40]
    assert before[0] == 30 and [m.rank for m in before[1]] == list(range(24, 30))
    assert store.pending() and {i.command for i in store.pending()} == set(messages[35:40])
    store.close()


def test_an_undelivered_message_stops_the_cut_and_ranks_stay(open_keeping: Opener) -> None:
    messages = _messages(24)
    store = open_keeping(0)
    store.bound_client_messages(timedelta(seconds=5), keep=100, every=0)
    _write(store, messages[:4], delivered=3)  # the fourth is never marked delivered
    _write(store, messages[4:], delivered=24, start=4)
    # Old enough (more than 5 s before the newest input): only the three before the
    # undelivered one may go, whatever follows it.
    assert _rows(store) == 21
    store.close()
    store = open_keeping(0)
    total, kept = store.client_messages(AT + timedelta(seconds=20), 100)
    assert total == 24
    assert [m.rank for m in kept] == list(range(20, 24))
    assert [m.command for m in kept] == messages[20:24]
    assert [i.command for i in store.pending()] == [messages[3]]
    store.close()


def test_a_full_batch_goes_on_at_the_next_commit(open_keeping: Opener) -> None:
    messages = _messages(12)
    store = open_keeping(0)
    _write(store, messages, delivered=12)
    store.bound_client_messages(timedelta(hours=1), keep=2, every=3600)  # the newest 2 kept
    assert store.messages is not None
    store.messages.batch = 4
    for n in range(3):  # an hour between passes, unless the last one was a full batch
        at = AT + timedelta(seconds=20 + n)
        store.append(at, Tick(at))
        store.commit()
    assert _rows(store) == 2 and store.messages.compacted == 10
    store.close()
    store = open_keeping(0)
    total, _ = store.client_messages(AT, 1)
    assert total == 12
    store.close()
