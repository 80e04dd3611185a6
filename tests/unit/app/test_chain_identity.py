"""A store records the genesis hash of each chain its journal was written on, and refuses
other chains under the same id (app/chain_durability.py check_identity): a journal in
PostgreSQL, or an anvil state lost and deployed afresh, must never meet chains it does not
describe."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexmaker.app.chain_durability import check_identity
from indexmaker.app.config import ConfigError, StoreConfig
from indexmaker.store.open import open_store

GENESIS = {42161: "0x" + "11" * 32, 8453: "0x" + "22" * 32}


def test_the_first_start_records_the_chains_and_a_restart_on_them_passes(tmp_path: Path) -> None:
    store = open_store(StoreConfig(tmp_path))
    assert store is not None
    check_identity(store, GENESIS)
    store.commit()
    store.close()
    again = open_store(StoreConfig(tmp_path))
    assert again is not None
    assert again.get_meta("chain_genesis:8453") == GENESIS[8453]
    check_identity(again, GENESIS)  # the same chains: nothing raised
    again.close()


def test_other_chains_under_a_recorded_id_are_refused(tmp_path: Path) -> None:
    store = open_store(StoreConfig(tmp_path))
    assert store is not None
    check_identity(store, GENESIS)
    fresh = {**GENESIS, 8453: "0x" + "33" * 32}
    with pytest.raises(ConfigError, match=r"^chain\.state_dir: the store's journal describes "):
        check_identity(store, fresh)
    assert store.get_meta("chain_genesis:8453") == GENESIS[8453]  # nothing overwritten
    store.close()


def test_without_a_store_nothing_is_checked() -> None:
    check_identity(None, GENESIS)
