"""core/journal.py: the in-memory journal and the null journal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from indexmaker.core.events import MintConfirmed, Tick
from indexmaker.core.ids import PaymentId
from indexmaker.core.journal import JournalEntry, MemoryJournal, NullJournal

T0 = datetime(2025, 10, 1, tzinfo=UTC)


def test_memory_journal_numbers_entries_in_order() -> None:
    journal = MemoryJournal()
    first = journal.append(T0, Tick(T0))
    second = journal.append(T0 + timedelta(seconds=1), MintConfirmed(PaymentId("P1")))
    assert first == JournalEntry(1, T0, Tick(T0))
    assert second.seq == 2
    assert list(journal.entries()) == [first, second]
    assert len(journal) == 2


def test_memory_journal_entries_is_a_fresh_iterator() -> None:
    journal = MemoryJournal()
    journal.append(T0, Tick(T0))
    assert len(list(journal.entries())) == 1
    assert len(list(journal.entries())) == 1


def test_null_journal_keeps_nothing() -> None:
    journal = NullJournal()
    entry = journal.append(T0, Tick(T0))
    assert entry.seq == 0 and entry.event == Tick(T0)
    assert list(journal.entries()) == []
