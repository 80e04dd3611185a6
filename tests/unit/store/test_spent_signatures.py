"""The signature ledger over its durable record (a real SQLite file): memory stays within its
bounds while nothing it forgot becomes spendable again, also for a new ledger (a restart)."""

from __future__ import annotations

from pathlib import Path

from indexmaker.server.replay import COMPROMISED, SignatureLedger
from indexmaker.store.signatures import SqliteSpentSignatures
from indexmaker.store.sqlite import SqliteStore


def ledger(path: Path, max_keys: int = 2, max_spent: int = 2) -> SignatureLedger:
    SqliteStore(path).close()  # the store creates the schema (migrations)
    signatures = SignatureLedger(max_keys, max_spent, max_r=2)
    signatures.durable = SqliteSpentSignatures(path)
    return signatures


def test_evicted_keys_and_ids_stay_spent(tmp_path: Path) -> None:
    signatures = ledger(tmp_path / "db")
    signatures.spend("0xvictim", ("NewIndexOrder", "a"), 1, b"d1")
    for n in range(3):  # more ids than a key keeps, more keys than the ledger keeps
        signatures.spend("0xvictim", ("NewIndexOrder", f"x{n}"), 10 + n, b"d%d" % n)
        signatures.spend(f"0xother{n}", ("NewIndexOrder", "o"), 20 + n, b"o")
    assert len(signatures) == 2  # memory bounded
    assert signatures.is_spent("0xvictim", ("NewIndexOrder", "a"))
    reason = signatures.check("0xvictim", ("NewIndexOrder", "a"), 99, b"new")
    assert reason is not None and reason.startswith("Replayed signature")
    assert signatures.check("0xvictim", ("NewIndexOrder", "fresh"), 98, b"fresh") is None


def test_a_nonce_reuse_found_after_eviction_and_restart_compromises_the_key(
    tmp_path: Path,
) -> None:
    first = ledger(tmp_path / "db")
    first.spend("0xvictim", ("NewIndexOrder", "a"), 7, b"digest-a")
    for n in range(3):
        first.spend(f"0xother{n}", ("NewIndexOrder", "o"), 30 + n, b"o")
    # The same r over another digest: the key is compromised, though memory forgot r = 7.
    assert first.check("0xvictim", ("NewIndexOrder", "b"), 7, b"digest-b") == COMPROMISED
    assert first.is_compromised("0xvictim")
    again = ledger(tmp_path / "db")  # a restart: nothing in memory
    assert len(again) == 0
    assert again.check("0xvictim", ("NewIndexOrder", "c"), 8, b"digest-c") == COMPROMISED
    assert again.is_compromised("0xvictim")
