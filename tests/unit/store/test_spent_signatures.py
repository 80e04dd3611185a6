"""The signature ledger over its durable record (a real SQLite file, a real PostgreSQL
database): memory stays within its bounds while nothing it forgot becomes spendable again,
also for a new ledger (a restart)."""

from __future__ import annotations

from collections.abc import Callable

from indexmaker.server.replay import COMPROMISED, SignatureLedger
from indexmaker.store.sql import SqlStore


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
