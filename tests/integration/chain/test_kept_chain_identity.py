"""A kept anvil chain keeps its identity across any number of restarts (issue 10/11 review: a
default serve's data directory could not start again). Each anvil loaded from its `--state`
file adds a fresh genesis of its own start time beside the kept one, its next state dump keeps
both, and which one `eth_getBlockByNumber(0)` answers after a later load varies: the journal's
genesis check then refused the very chains it describes. The identity is block 1's parent
hash (app/chain_serve.genesis_hash), which no reload changes; the test goes through
chain_serve.chain_identity, what serve records and checks."""

from __future__ import annotations

import json
from pathlib import Path

from web3 import Web3

from indexmaker.app.chain_durability import ChainIdentity, check_identity
from indexmaker.app.chain_serve import chain_identity
from indexmaker.app.config import StoreConfig
from indexmaker.chain import anvil
from indexmaker.store.open import open_store

CHAIN = 8453
LOADS = 5


class _Chain:
    """The one chain `node` as chain_identity reads chains (app/chain_wiring.Chains)."""

    def __init__(self, node: anvil.AnvilNode) -> None:
        self.sections: dict[int, dict[str, str]] = {CHAIN: {}}
        self.node = node

    def live_url(self, chain_id: int) -> str:
        return self.node.url


def identity(node: anvil.AnvilNode) -> dict[int, ChainIdentity]:
    return chain_identity(_Chain(node))  # type: ignore[arg-type]


def _block0(node: anvil.AnvilNode) -> str:
    w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 10}))
    return w3.eth.get_block(0)["hash"].to_0x_hex()


def test_a_reloaded_chain_keeps_its_genesis_identity(compiled: None, tmp_path: Path) -> None:
    state = tmp_path / f"chain-{CHAIN}.json"
    store = open_store(StoreConfig(tmp_path / "journal"))
    node = anvil.start(CHAIN, state=state)
    try:
        for _ in range(2):
            anvil._rpc(node.url, "evm_mine")
        first = _block0(node)
        assert identity(node)[CHAIN].genesis == first  # a fresh chain: block 0 as it answers
        check_identity(store, identity(node))
        for _ in range(LOADS):  # SIGTERM (anvil dumps its state), then loaded again
            anvil.stop(node.pid)
            node = anvil.start(CHAIN, state=state)
            assert identity(node)[CHAIN].genesis == first
            check_identity(store, identity(node))  # nothing raised
        anvil.stop(node.pid)
        # anvil 1.7.1 may add a genesis block to the state at a load (not at every one: CI saw
        # a single one after 5 loads), after which block 0 answers either; the case below
        # makes that deterministic.

        # Deterministically the case a reload may produce: the kept genesis is not the
        # block 0 the node answers (here it is left out of the state; block 1 still names it).
        data = json.loads(state.read_text())
        data["blocks"] = [b for b in data["blocks"] if int(b["header"]["number"], 16) != 0]
        state.write_text(json.dumps(data))
        node = anvil.start(CHAIN, state=state)
        # (anvil may answer a new block 0 here or rebuild the same one: not asserted)
        assert identity(node)[CHAIN].genesis == first
        check_identity(store, identity(node))
    finally:
        anvil.stop(node.pid)
        store.close()
