"""A journal is never served on a redeployed chain (issue 11): every fresh anvil of a chain
id has the same genesis, so the store also records a block of the chain's own history
(app/chain_durability.py) and refuses a chain whose block at that height differs. Real anvils
on 127.0.0.1 read by chain_serve.chain_identity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from indexmaker.app.chain_durability import check_identity
from indexmaker.app.chain_serve import chain_identity
from indexmaker.app.config import ConfigError, StoreConfig
from indexmaker.chain import anvil
from indexmaker.store.open import open_store


class OneChain:
    """The part of `Chains` chain_identity reads: one node of chain 8453."""

    def __init__(self, node: anvil.AnvilNode) -> None:
        self.sections: dict[int, dict[str, Any]] = {8453: {}}
        self.node = node

    def live_url(self, chain_id: int) -> str:
        return self.node.url


def blocks(node: anvil.AnvilNode, first_stamp: int, count: int) -> None:
    """`count` blocks mined from time `first_stamp` on (a deployment's blocks, at its time)."""
    anvil._rpc(node.url, "evm_setNextBlockTimestamp", [first_stamp])
    for _ in range(count):
        anvil._rpc(node.url, "evm_mine")


def test_a_redeployed_anvil_with_the_same_genesis_is_refused(tmp_path: Path) -> None:
    store = open_store(StoreConfig(tmp_path))
    assert store is not None
    # A fresh anvil's genesis is fixed by its chain id and its time: a redeployment started
    # with the same genesis time (or within the same second) has the very same genesis.
    ours = anvil.start(8453, genesis_timestamp=1_900_000_000)
    try:
        blocks(ours, 2_000_000_000, 3)
        check_identity(store, chain_identity(OneChain(ours)))  # the first start records it
        recorded = store.get_meta("chain_block:8453")
        assert recorded is not None and recorded.startswith("1:0x")
        blocks(ours, 2_000_000_100, 2)
        check_identity(store, chain_identity(OneChain(ours)))  # ours, grown: passes
        genesis = chain_identity(OneChain(ours))[8453].genesis
    finally:
        anvil.stop(ours.pid)
    redeployed = anvil.start(8453, genesis_timestamp=1_900_000_000)  # its state lost: a fresh node
    try:
        blocks(redeployed, 2_000_000_500, 5)
        fresh = chain_identity(OneChain(redeployed))
        assert fresh[8453].genesis == genesis  # the genesis alone cannot tell them apart
        with pytest.raises(ConfigError) as refused:
            check_identity(store, fresh)
    finally:
        anvil.stop(redeployed.pid)
    assert str(refused.value).startswith(
        "chain.state_dir: the store's journal describes another chain 8453 "
        f"(block {recorded.replace(':', ' ')}, these chains' is 0x"
    )
    assert store.get_meta("chain_block:8453") == recorded  # nothing overwritten
    store.close()
