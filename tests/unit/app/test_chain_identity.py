"""A store records the genesis hash and a block of the history of each chain its journal was
written on, and refuses other chains under the same id (app/chain_durability.py
check_identity): a journal in PostgreSQL, or an anvil state lost and deployed afresh, must
never meet chains it does not describe. (Against real anvils: tests/integration/chain/
test_chain_identity.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from indexmaker.app.chain_durability import ChainIdentity, check_identity
from indexmaker.app.config import ConfigError, StoreConfig
from indexmaker.store.open import open_store


def chain(genesis: str, blocks: list[str]) -> ChainIdentity:
    """A chain of `blocks` hashes (block 0 first) after `genesis`."""
    history = [genesis, *blocks]
    return ChainIdentity(genesis, len(blocks), lambda n: history[n] if n < len(history) else None)


OURS = {
    42161: chain("0x" + "11" * 32, [f"0x{n:064x}" for n in range(1, 101)]),
    8453: chain("0x" + "22" * 32, [f"0x{n:064x}" for n in range(201, 211)]),
}


def test_the_first_start_records_the_chains_and_a_restart_on_them_passes(tmp_path: Path) -> None:
    store = open_store(StoreConfig(tmp_path))
    assert store is not None
    check_identity(store, OURS)
    store.commit()
    store.close()
    again = open_store(StoreConfig(tmp_path))
    assert again is not None
    assert again.get_meta("chain_genesis:8453") == OURS[8453].genesis
    # 64 blocks under the head (100 - 64), or block 1 on a short chain.
    assert again.get_meta("chain_block:42161") == f"36:0x{36:064x}"
    assert again.get_meta("chain_block:8453") == f"1:0x{201:064x}"
    grown = {**OURS, 8453: chain(OURS[8453].genesis, [f"0x{n:064x}" for n in range(201, 301)])}
    check_identity(again, grown)  # the same chains, more blocks: nothing raised
    assert again.get_meta("chain_block:8453") == f"1:0x{201:064x}"  # not moved
    again.close()


@pytest.mark.parametrize(
    ("other", "reason"),
    [
        (chain("0x" + "33" * 32, ["0x" + "44" * 32]), "genesis 0x2222"),
        # The same genesis (every fresh anvil's), other blocks: a redeployed chain.
        (chain("0x" + "22" * 32, ["0x" + "44" * 32] * 5), f"block 1 0x{201:064x}, these"),
        (chain("0x" + "22" * 32, []), f"block 1 0x{201:064x}; these chains end at block 0"),
    ],
)
def test_other_chains_under_a_recorded_id_are_refused(
    tmp_path: Path, other: ChainIdentity, reason: str
) -> None:
    store = open_store(StoreConfig(tmp_path))
    assert store is not None
    check_identity(store, OURS)
    with pytest.raises(ConfigError) as e:
        check_identity(store, {**OURS, 8453: other})
    assert str(e.value).startswith("chain.state_dir: the store's journal describes ")
    assert f"another chain 8453 ({reason}" in str(e.value)
    assert store.get_meta("chain_genesis:8453") == OURS[8453].genesis  # nothing overwritten
    assert store.get_meta("chain_block:8453") == f"1:0x{201:064x}"
    store.close()


def test_a_store_that_recorded_only_the_genesis_gets_a_block_recorded(tmp_path: Path) -> None:
    store = open_store(StoreConfig(tmp_path))
    assert store is not None
    store.set_meta("chain_genesis:8453", OURS[8453].genesis)  # an earlier build's record
    check_identity(store, {8453: OURS[8453]})
    assert store.get_meta("chain_block:8453") == f"1:0x{201:064x}"
    store.close()


def test_without_a_store_nothing_is_checked() -> None:
    check_identity(None, OURS)
