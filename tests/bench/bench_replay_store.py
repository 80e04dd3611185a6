"""Spent signatures in the store (issue 8's replay hole): what the durable one-use check adds
to a signed request, beside the signature recovery every signed request already costs.

- memory: `SignatureLedger` check + spend with no store (the old, forgetful ledger).
- durable: the same with its SQLite record (`store/signatures.py`, synchronous=NORMAL in WAL):
  every spend committed before the ACK, every check of a key memory holds no longer asked to
  the database (here the cache holds 1,000 keys and 20,000 keys sign, so most checks miss).
- baseline: one EIP-191 signature recovery (coincurve), measured in the same run.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from coincurve import PrivateKey, PublicKey

from indexmaker.server.replay import SignatureLedger
from indexmaker.server.signing import eip191_digest
from indexmaker.store.sqlite import SqliteStore

KEYS = 20_000
CACHED_KEYS = 1_000


def _requests() -> list[tuple[str, tuple[str, ...], int, bytes]]:
    rows = []
    for n in range(KEYS):
        address = "0x" + os.urandom(20).hex()
        rows.append((address, ("NewIndexOrder", f"o-{n}"), n + 1, os.urandom(32)))
    return rows


def _ledger_us(
    ledger: SignatureLedger, requests: list[tuple[str, tuple[str, ...], int, bytes]]
) -> float:
    started = time.perf_counter()
    for address, spent_id, r, digest in requests:
        assert ledger.check(address, spent_id, r, digest) is None
        ledger.spend(address, spent_id, r, digest)
    return (time.perf_counter() - started) / len(requests) * 1e6


def _recover_us(rounds: int = 2_000) -> float:
    key = PrivateKey()
    digest = eip191_digest('{"msg_type":"NewIndexOrder","id":"x"}')
    signature = key.sign_recoverable(digest, hasher=None)
    started = time.perf_counter()
    for _ in range(rounds):
        PublicKey.from_signature_and_message(signature, digest, hasher=None)
    return (time.perf_counter() - started) / rounds * 1e6


def run() -> list[str]:
    requests = _requests()
    memory, durable, recover = [], [], []
    for _attempt in range(3):
        recover.append(_recover_us())
        memory.append(_ledger_us(SignatureLedger(CACHED_KEYS), requests))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "db.sqlite3"
            owner = SqliteStore(path)
            ledger = SignatureLedger(CACHED_KEYS)
            store = owner.spent_signatures()
            owner.close()
            ledger.durable = store
            durable.append(_ledger_us(ledger, requests))
            # A replay of the first key's request, long evicted from memory, is still refused.
            first = requests[0]
            assert ledger.check(*first) is not None and len(ledger) == CACHED_KEYS
            store.close()
    m, d, b = (statistics.median(x) for x in (memory, durable, recover))
    load = os.getloadavg()[0]
    return [
        f"signature recovery (baseline, same run)      {b:8.1f} µs",
        f"one-use check + spend, memory only           {m:8.1f} µs  ({m / b:.2f}× a recovery)",
        f"one-use check + spend, durable (SQLite WAL)  {d:8.1f} µs  ({d / b:.2f}× a recovery)",
        f"  {KEYS:,} keys through a {CACHED_KEYS:,}-key cache; load average {load:.1f}",
    ]


if __name__ == "__main__":
    for line in run():
        print(line)
