"""The signature ledger over its durable record (a real SQLite file, a real PostgreSQL
database): memory stays within its bounds while nothing it forgot becomes spendable again,
also for a new ledger (a restart)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from indexmaker.core.events import NewIndexOrderRequest
from indexmaker.core.ids import ClientKey, ClientOrderId, Symbol
from indexmaker.model.side import Side
from indexmaker.server.replay import COMPROMISED, SignatureLedger
from indexmaker.store import sql
from indexmaker.store.sql import SqlStore

AT = datetime(2026, 1, 1, tzinfo=UTC)


def ledger(open_store: Callable[[], SqlStore], max_keys: int = 2) -> SignatureLedger:
    store = open_store()  # the store creates the schema (migrations)
    signatures = SignatureLedger(max_keys, max_spent=2, max_r=2)
    signatures.durable = store.spent_signatures()
    store.close()  # the record keeps a connection of its own
    return signatures


def test_evicted_keys_and_ids_stay_spent(open_store: Callable[[], SqlStore]) -> None:
    signatures = ledger(open_store)
    signatures.spend("0xvictim", ("NewIndexOrder", "a"), 1, b"d1")
    for n in range(3):  # more ids than a key keeps, more keys than the ledger keeps
        signatures.spend("0xvictim", ("NewIndexOrder", f"x{n}"), 10 + n, b"d%d" % n)
        signatures.spend(f"0xother{n}", ("NewIndexOrder", "o"), 20 + n, b"o")
    assert len(signatures) == 2  # memory bounded
    assert signatures.is_spent("0xvictim", ("NewIndexOrder", "a"))
    reason = signatures.check("0xvictim", ("NewIndexOrder", "a"), 99, b"new")
    assert reason is not None and reason.startswith("Replayed signature")
    assert signatures.check("0xvictim", ("NewIndexOrder", "fresh"), 98, b"fresh") is None
    assert signatures.durable is not None
    signatures.durable.close()


def test_a_nonce_reuse_found_after_eviction_and_restart_compromises_the_key(
    open_store: Callable[[], SqlStore],
) -> None:
    first = ledger(open_store)
    first.spend("0xvictim", ("NewIndexOrder", "a"), 7, b"digest-a")
    for n in range(3):
        first.spend(f"0xother{n}", ("NewIndexOrder", "o"), 30 + n, b"o")
    # The same r over another digest: the key is compromised, though memory forgot r = 7.
    assert first.check("0xvictim", ("NewIndexOrder", "b"), 7, b"digest-b") == COMPROMISED
    assert first.is_compromised("0xvictim")
    assert first.durable is not None
    first.durable.close()  # writes the r values still grouped in memory
    again = ledger(open_store)  # a restart: nothing in memory
    assert len(again) == 0
    assert again.check("0xvictim", ("NewIndexOrder", "c"), 8, b"digest-c") == COMPROMISED
    assert again.is_compromised("0xvictim")
    assert again.durable is not None
    again.durable.close()


def test_a_spend_is_kept_without_a_close(open_store: Callable[[], SqlStore]) -> None:
    first = ledger(open_store)
    first.spend("0xvictim", ("NewIndexOrder", "a", "n1"), 5, b"d")
    # No close, no flush: the process could die here. Another connection sees the spend.
    again = ledger(open_store)
    assert again.is_spent("0xvictim", ("NewIndexOrder", "a", "n1"))
    assert not again.is_spent("0xvictim", ("NewIndexOrder", "a", "n2"))
    for each in (first, again):
        assert each.durable is not None
        each.durable.close()


def _order(cid: str) -> NewIndexOrderRequest:
    client = ClientKey((42161, "0xvictim"))
    return NewIndexOrderRequest(client, ClientOrderId(cid), Symbol("SY100"), Side.BUY, D(100))


def test_a_spend_on_an_order_is_durable_exactly_with_the_orders_journal_entry(
    open_store: Callable[[], SqlStore],
) -> None:
    """Issue 8's resend window: a crash keeps the spend and the request, or neither."""
    engine_store = open_store()
    signatures = SignatureLedger(2, max_spent=2, max_r=2)
    signatures.durable = engine_store.spent_signatures()
    lost, kept = _order("lost"), _order("kept")
    signatures.spend("0xvictim", ("NewIndexOrder", "kept", "n1"), 1, b"d1", kept)
    signatures.spend("0xvictim", ("NewIndexOrder", "lost", "n2"), 2, b"d2", lost)
    signatures.spend("0xvictim", ("ResendRequest", "challenge"), 3, b"d3", None)
    # Held until journalled: memory and the held set refuse a copy meanwhile.
    assert signatures.durable.is_spent("0xvictim", ("NewIndexOrder", "lost", "n2"))
    engine_store.append(AT, kept)  # the engine journals one order, then commits
    engine_store.commit()
    engine_store.append(AT, lost)  # the other is buffered when the process dies
    engine_store._db.close()  # a kill: no final commit
    signatures.durable.close()

    restarted = ledger(open_store)
    assert [e.event for e in open_store().entries()] == [kept]
    assert restarted.is_spent("0xvictim", ("NewIndexOrder", "kept", "n1"))
    assert restarted.is_spent("0xvictim", ("ResendRequest", "challenge"))  # written at once
    # The lost order's resend (same id and nonce) is taken, not refused as a replay.
    assert restarted.check("0xvictim", ("NewIndexOrder", "lost", "n2"), 4, b"d4") is None
    assert restarted.durable is not None
    restarted.durable.close()


def test_a_held_spend_whose_request_never_reaches_the_journal_is_written_anyway(
    open_store: Callable[[], SqlStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine_store = open_store()
    durable = engine_store.spent_signatures()
    durable.record("0xvictim", ("NewIndexOrder", "busy", "n1"), 1, b"d", _order("busy"))
    engine_store.commit()  # refused before the engine ("service busy"): not yet stale
    assert not _spent_after_restart(open_store, ("NewIndexOrder", "busy", "n1"))
    monkeypatch.setattr(sql, "HOLD_LIMIT", 0.0)
    engine_store.commit()
    assert _spent_after_restart(open_store, ("NewIndexOrder", "busy", "n1"))
    durable.close()
    engine_store.close()


def _spent_after_restart(open_store: Callable[[], SqlStore], spent_id: tuple[str, ...]) -> bool:
    restarted = ledger(open_store)
    assert restarted.durable is not None
    try:
        return restarted.is_spent("0xvictim", spent_id)
    finally:
        restarted.durable.close()
