"""The one place every input passes before it changes any ledger.

The core is deterministic, so its whole state is a function of the inputs it was given
and when: the journal of (time, input) is enough to rebuild it by replay. The durability
issue plugs a persistent journal (SQLite/PostgreSQL) in behind this protocol.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
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


class Store(Journal, Protocol):
    """The store port: a durable journal plus the outbox of effects (docs/decisions.md).

    `append` and `add_effects` only buffer; `commit` makes everything buffered durable in one
    transaction (a group commit), in order, so what survives a crash is always a prefix of the
    journal. An effect leaves the process only after the commit that holds it.
    """

    @property
    def last_seq(self) -> int: ...

    def add_effects(self, journal_seq: int, commands: Sequence[Command]) -> list[OutboxItem]: ...

    def mark_done(self, keys: Iterable[str]) -> None: ...

    def pending(self) -> list[OutboxItem]: ...

    def effects(self) -> Iterator[OutboxItem]: ...

    def get_meta(self, name: str) -> str | None: ...

    def set_meta(self, name: str, value: str) -> None: ...

    @property
    def dirty(self) -> bool: ...

    def commit(self) -> None: ...

    def close(self) -> None: ...
