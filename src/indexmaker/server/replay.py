"""Which signatures a key has already spent (SPEC §5 "Replay"): bounded in memory, with I/O
only through the durable `SpentStore` behind it (when there is one).

One-use rule. The reference's signed text covers only {"msg_type","id"}, so a captured
signature could be sent again with other fields (a cancel with a larger amount) or on another
connection (to read the victim's fills). A signature over such a text therefore authorises
exactly one request: a second request with the same (msg_type, id) from that key is refused,
and so authenticates nothing. With the extended text (signing.py) the client nonce is part of
what is spent, so a client can cancel the same order twice with two nonces.

Keys, not client keys: the reference text does not name the chain, so a signature captured on
one chain id must not be spendable under another; the ledger is keyed by address.

Nonce reuse. An ECDSA signature's r is derived from its secret nonce k. Two signatures with the
same r over different digests give away the private key (k, then the key, follow from two
linear equations). A signature whose r repeats an r seen with another message from the same key
is refused and the key is marked compromised: everything it signs is refused from then on, with
the reason, and the server tells its operator (ws_server logs it).

Memory is bounded: per key at most `max_spent` spent ids and `max_r` r values (oldest first
out), and at most `max_keys` keys (least recently used first out). With a durable `SpentStore`
behind it (store/signatures.py, set by the composition root) memory is only a cache: every
spend is recorded there before the request is acknowledged, and whatever memory does not hold
is looked up there, so neither an eviction nor a restart reopens a replay. Without one (a
service that keeps no store) forgetting an id reopens its replay, so the bounds are set far
above what a client signs in its ids' lifetime.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

from indexmaker.core.store_records import SpentStore
from indexmaker.server.wire_values import REPLAYED_SIGNATURE

COMPROMISED: Final = (
    "Signature nonce reuse: this key signed two different messages with the same r, so its "
    "private key can be computed from them. The key is compromised: move its funds and use a "
    "new key; nothing it signs is accepted any more"
)


@dataclass(slots=True)
class _KeyRecord:
    spent: OrderedDict[tuple[str, ...], None] = field(default_factory=OrderedDict)
    r_digests: OrderedDict[int, bytes] = field(default_factory=OrderedDict)
    compromised: bool = False


class SignatureLedger:
    """Spent (msg_type, id[, nonce]) per signing address, the r values it used, and whether
    it is compromised. `check` asks; `spend` records (call it once the request is accepted)."""

    def __init__(self, max_keys: int = 100_000, max_spent: int = 10_000, max_r: int = 1_000):
        self._max_keys = max_keys
        self._max_spent = max_spent
        self._max_r = max_r
        self._keys: OrderedDict[str, _KeyRecord] = OrderedDict()
        self.durable: SpentStore | None = None

    def __len__(self) -> int:
        return len(self._keys)

    def is_compromised(self, address: str) -> bool:
        record = self._keys.get(address)
        return record is not None and record.compromised

    def is_spent(self, address: str, spent_id: tuple[str, ...]) -> bool:
        """Whether this id was already spent by that address: a replay can be refused on
        this alone, before its signature is verified (the costly step)."""
        record = self._keys.get(address)
        if record is not None and spent_id in record.spent:
            return True
        return self.durable is not None and self.durable.is_spent(address, spent_id)

    def check(self, address: str, spent_id: tuple[str, ...], r: int, digest: bytes) -> str | None:
        """Why this signature is refused (None: it may be spent). A nonce reuse found here
        marks the key compromised at once: the leak happened whether we accept or not."""
        record = self._keys.get(address)
        spent = record is not None and spent_id in record.spent
        seen = None if record is None else record.r_digests.get(r)
        compromised = record is not None and record.compromised
        durable = self.durable
        if durable is not None and not spent:  # memory is a cache: ask the whole record
            spent, seen_before, marked = durable.lookup(address, spent_id, r)
            seen = seen if seen is not None else seen_before
            compromised = compromised or marked
        if compromised:
            self._record(address).compromised = True
            return COMPROMISED
        if seen is not None and seen != digest:
            self._record(address).compromised = True
            if durable is not None:
                durable.mark_compromised(address)
            return COMPROMISED
        if spent:
            return (
                f"{REPLAYED_SIGNATURE}: {spent_id[0]} {spent_id[1]!r} was already used by this "
                "key; a signature authorises one request (sign a new id or nonce)"
            )
        return None

    def spend(
        self,
        address: str,
        spent_id: tuple[str, ...],
        r: int,
        digest: bytes,
        request: object | None = None,
    ) -> None:
        """Record it (durably first, when a durable store is set). `request`: what the
        signature authorises, handed to the durable store, which may make the spend durable
        in the same commit as that request's journal entry (store/signatures.py)."""
        if self.durable is not None:
            self.durable.record(address, spent_id, r, digest, request)
        record = self._record(address)
        record.spent[spent_id] = None
        if len(record.spent) > self._max_spent:
            record.spent.popitem(last=False)
        record.r_digests[r] = digest
        if len(record.r_digests) > self._max_r:
            record.r_digests.popitem(last=False)

    def _record(self, address: str) -> _KeyRecord:
        record = self._keys.get(address)
        if record is None:
            record = self._keys[address] = _KeyRecord()
            if len(self._keys) > self._max_keys:
                self._evict()
        else:
            self._keys.move_to_end(address)
        return record

    def _evict(self) -> None:
        # Least recently used first, but a compromised key is never forgotten while an
        # ordinary one can go instead: it is the one whose refusal protects its owner.
        for address, record in self._keys.items():
            if not record.compromised:
                del self._keys[address]
                return
        self._keys.popitem(last=False)
