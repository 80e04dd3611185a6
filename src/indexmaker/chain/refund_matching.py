"""Which of our expired Across deposits one dataworker refund leaf pays (issue 11).

Across's dataworker sums every refund one bundle owes an address for a token on a chain into
one entry of one relayer-refund leaf (across-protocol/relayer DataworkerUtils
`_buildRelayerRefundRoot` over `getRefundsFromBundle`: the expired deposits' input amounts
are added per depositor), so two of our deposits that expired in the same bundle are refunded
as one payment of their sum. A leaf paying us X is matched to the set of our deposits waiting
for a refund whose input amounts sum to exactly X (deterministic: `cover`); the match is kept
in a `RefundLedger` (the store's `across_refunds` table in serve: store/across_refunds.py), so
a restart finds it instead of waiting again, and a leaf is never counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

MAX_CANDIDATES = 16  # deposits one leaf is matched against (oldest first): a bounded search


@dataclass(frozen=True, slots=True)
class Waiting:
    """An expired deposit of ours waiting for its refund: its id, input amount (token units)
    and the block it was made in (only a later leaf can refund it)."""

    deposit_id: int
    amount: int
    block: int


@dataclass(frozen=True, slots=True)
class LeafMatch:
    """A refund leaf's log (transaction, log index, bundle id) and the deposits it paid."""

    tx: str
    log_index: int
    bundle_id: int
    deposit_ids: tuple[int, ...]


class RefundLedger(Protocol):
    """Where matches are kept (the deposit ids are the origin pool's, per chain id)."""

    def matched(self, chain_id: int, deposit_id: int) -> LeafMatch | None:
        """The match that paid `deposit_id`, if any."""
        ...

    def leaf_taken(self, chain_id: int, tx: str, log_index: int) -> bool:
        """The leaf of that log was matched already."""
        ...

    def record(self, chain_id: int, match: LeafMatch) -> None:
        """Keep `match` (durable when this returns, for a store)."""
        ...


class MemoryLedger:
    """A `RefundLedger` in memory (no store: nothing survives the process)."""

    def __init__(self) -> None:
        self._by_deposit: dict[tuple[int, int], LeafMatch] = {}
        self._leaves: set[tuple[int, str, int]] = set()

    def matched(self, chain_id: int, deposit_id: int) -> LeafMatch | None:
        return self._by_deposit.get((chain_id, deposit_id))

    def leaf_taken(self, chain_id: int, tx: str, log_index: int) -> bool:
        return (chain_id, tx, log_index) in self._leaves

    def record(self, chain_id: int, match: LeafMatch) -> None:
        self._leaves.add((chain_id, match.tx, match.log_index))
        for deposit_id in match.deposit_ids:
            self._by_deposit[(chain_id, deposit_id)] = match


def cover(paid: int, block: int, waiting: Iterable[Waiting]) -> tuple[int, ...] | None:
    """The deposit ids, among `waiting`, that a leaf paying `paid` in block `block` refunds:
    a set made before `block` whose amounts sum to exactly `paid`, None when there is none.
    Deposits are tried oldest first (block, then id), each taken before it is left out, so
    the first set found is the one of the oldest deposits (deposits expire about in the
    order they were made): the same answer from the same waiting deposits in any process.
    Only the oldest MAX_CANDIDATES are considered."""
    candidates = sorted(
        (w for w in waiting if w.block < block and w.amount > 0),
        key=lambda w: (w.block, w.deposit_id),
    )[:MAX_CANDIDATES]
    chosen = _first_subset(candidates, paid)
    return None if chosen is None else tuple(w.deposit_id for w in chosen)


def _first_subset(candidates: Sequence[Waiting], target: int) -> list[Waiting] | None:
    # Depth first, "take" before "leave"; amounts are positive, so a branch whose rest cannot
    # reach what is left is cut, and a (position, left) pair found hopeless is not walked
    # again: at most len(candidates) * 2**len(candidates) steps, far fewer in practice.
    rest = [0] * (len(candidates) + 1)
    for i in range(len(candidates) - 1, -1, -1):
        rest[i] = rest[i + 1] + candidates[i].amount
    chosen: list[Waiting] = []
    hopeless: set[tuple[int, int]] = set()

    def walk(i: int, left: int) -> bool:
        if left == 0:
            return True
        if i == len(candidates) or rest[i] < left or (i, left) in hopeless:
            return False
        if candidates[i].amount <= left:
            chosen.append(candidates[i])
            if walk(i + 1, left - candidates[i].amount):
                return True
            chosen.pop()
        if walk(i + 1, left):
            return True
        hopeless.add((i, left))
        return False

    return chosen if target > 0 and walk(0, target) else None
