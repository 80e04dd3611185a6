"""Across refund matches in the store (migration 9) on both backends: a restarted service
finds which leaf paid which deposit, and a leaf once matched stays taken."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from indexmaker.app.config import StoreConfig
from indexmaker.chain.refund_matching import LeafMatch
from indexmaker.store.across_refunds import SqlAcrossRefunds, open_across_refunds

BIG_ID = 2**255 + 12345  # unsafeDeposit ids are 256-bit hashes


@pytest.fixture
def open_refunds(table_config: StoreConfig) -> Callable[[], SqlAcrossRefunds]:
    def reopen() -> SqlAcrossRefunds:
        refunds = open_across_refunds(table_config)
        assert refunds is not None
        return refunds

    return reopen


def test_a_match_survives_a_reopen_for_every_deposit_of_its_leaf(
    open_refunds: Callable[[], SqlAcrossRefunds],
) -> None:
    refunds = open_refunds()
    match = LeafMatch("0x" + "ab" * 32, 2, 9, (BIG_ID, 7))
    refunds.record(42161, match)
    refunds.close()
    again = open_refunds()
    try:
        assert again.matched(42161, BIG_ID) == again.matched(42161, 7) == match
        assert again.leaf_taken(42161, match.tx, 2)
        assert not again.leaf_taken(42161, match.tx, 3) and again.matched(8453, 7) is None
        # A deposit keeps its first match: a second is refused whole (nothing of it kept).
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            again.record(42161, LeafMatch("0x" + "cd" * 32, 0, 10, (5, 7)))
        assert again.matched(42161, 5) is None
    finally:
        again.close()


def test_the_memory_store_keeps_none() -> None:
    assert open_across_refunds(StoreConfig()) is None
