"""Matching one Across dataworker refund leaf to the expired deposits it pays (issue 11): the
dataworker sums a depositor's refunds of one bundle into one entry, so a leaf covers the set
of our waiting deposits whose amounts sum to exactly its payment."""

from __future__ import annotations

from indexmaker.chain.refund_matching import (
    MAX_CANDIDATES,
    LeafMatch,
    MemoryLedger,
    Waiting,
    cover,
)

A, B, C = Waiting(11, 40_000_000, 100), Waiting(12, 25_000_000, 105), Waiting(13, 65_000_000, 90)


def test_a_leaf_paying_a_sum_covers_exactly_the_deposits_that_make_it() -> None:
    assert cover(65_000_000, 200, [A, B]) == (11, 12)
    assert cover(40_000_000, 200, [B, A]) == (11,)  # one deposit alone, as before
    assert cover(64_999_999, 200, [A, B]) is None  # exact sums only
    assert cover(105_000_000, 200, [A, B]) is None  # more than every waiting deposit
    assert cover(0, 200, [A, B]) is None


def test_only_deposits_made_before_the_leaf_are_covered() -> None:
    assert cover(65_000_000, 103, [A, B]) is None  # B was made after the leaf's block
    assert cover(65_000_000, 103, [A, B, C]) == (13,)


def test_of_two_sets_with_the_sum_the_oldest_deposits_win_in_any_order() -> None:
    # C alone and A + B both pay 65: C is the oldest deposit (block 90).
    assert cover(65_000_000, 200, [A, B, C]) == (13,)
    assert cover(65_000_000, 200, [B, C, A]) == (13,)
    # Same amounts, same block: the lower deposit id first.
    twins = [Waiting(8, 10, 50), Waiting(7, 10, 50), Waiting(9, 10, 50)]
    assert cover(20, 60, twins) == (7, 8)


def test_the_search_is_bounded_to_the_oldest_candidates() -> None:
    many = [Waiting(i, 1, i) for i in range(MAX_CANDIDATES + 5)]
    assert cover(MAX_CANDIDATES, 10_000, many) == tuple(range(MAX_CANDIDATES))
    assert cover(MAX_CANDIDATES + 1, 10_000, many) is None  # beyond the oldest 16
    # No set sums to it: the answer comes without walking every subset.
    odd = [Waiting(i, 2, i) for i in range(MAX_CANDIDATES)]
    assert cover(2 * MAX_CANDIDATES - 1, 10_000, odd) is None


def test_the_memory_ledger_keeps_a_leaf_for_each_of_its_deposits_once() -> None:
    ledger = MemoryLedger()
    match = LeafMatch("0xabc", 3, 7, (11, 12))
    assert ledger.matched(42161, 11) is None and not ledger.leaf_taken(42161, "0xabc", 3)
    ledger.record(42161, match)
    assert ledger.matched(42161, 11) == ledger.matched(42161, 12) == match
    assert ledger.leaf_taken(42161, "0xabc", 3) and not ledger.leaf_taken(42161, "0xabc", 4)
    assert ledger.matched(8453, 11) is None  # per chain
