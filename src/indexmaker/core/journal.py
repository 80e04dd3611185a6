"""The one place every input passes before it changes any ledger.

The core is deterministic, so its whole state is a function of the inputs it was given
and when: the journal of (time, input) is enough to rebuild it by replay. The durable store
(`core.ports.StorePort`: SQLite or PostgreSQL, `indexmaker.store`) is such a journal.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from indexmaker.core.events import Command, EngineInput


@dataclass(frozen=True, slots=True)
class JournalEntry:
    seq: int
    at: datetime
    event: EngineInput


class Journal(Protocol):
    def append(self, at: datetime, event: EngineInput) -> JournalEntry: ...

    def entries(self) -> Iterator[JournalEntry]: ...


class MemoryJournal:
    """Keeps every entry in memory (tests, scenarios, the demo)."""

    def __init__(self) -> None:
        self._entries: list[JournalEntry] = []

    def append(self, at: datetime, event: EngineInput) -> JournalEntry:
        entry = JournalEntry(len(self._entries) + 1, at, event)
        self._entries.append(entry)
        return entry

    def entries(self) -> Iterator[JournalEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


class NullJournal:
    """Records nothing: for benchmarks that measure the core alone."""

    def append(self, at: datetime, event: EngineInput) -> JournalEntry:
        return JournalEntry(0, at, event)

    def entries(self) -> Iterator[JournalEntry]:
        return iter(())


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One effect the engine asked for, under its idempotency key ("<journal seq>.<index>")."""

    key: str
    journal_seq: int
    command: Command
