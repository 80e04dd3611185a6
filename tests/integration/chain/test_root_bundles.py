"""One-leaf refund bundles on Across's own spoke pools (issue 11), on both local chains: admin
calls reach a pool only from the address it trusts (Arbitrum's alias of the admin on 42161,
OP's messenger predeploy on 8453), where the admin relay forwards the admin's own calls; a
leaf is paid once — a second `pay` finds it paid and sends nothing, the pool's claimed bitmap
refuses a second execution, and a bundle posted by an interrupted run is executed, not posted
again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from indexmaker.app.config import StoreConfig
from indexmaker.chain import artifacts
from indexmaker.chain.across import admin_relay_address, one_leaf_root, refund_leaf
from indexmaker.chain.deploy import SOURCE_CHAIN_ID, TRADING_CHAIN_ID, deploy_chain
from indexmaker.chain.root_bundles import LEAF_FIELDS, ZERO32, NoAdminRelay
from indexmaker.store.open import open_store

from .conftest import as_account, revert_of, root_bundles, selector, send

USDC = 10**6
CHAIN_IDS = (SOURCE_CHAIN_ID, TRADING_CHAIN_ID)


@pytest.fixture(scope="module")
def chains(start_node: Any, deployer: LocalAccount) -> dict[int, tuple[str, dict[str, Any]]]:
    """Both chains deployed; each pool holds 1,000 USDC (as deposits would leave there)."""
    out = {}
    for chain_id in CHAIN_IDS:
        node = start_node(chain_id)
        w3 = as_account(node.url, deployer)
        section = deploy_chain(w3, chain_id)
        usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
        assert send(w3, usdc.functions.mint(section["spoke_pool"], 1_000 * USDC))["status"] == 1
        out[chain_id] = (node.url, section)
    return out


def _pool_and_relay(url: str, section: dict[str, Any], who: LocalAccount) -> tuple[Web3, Any, Any]:
    """(web3 signing as `who`, the spoke pool, the admin relay) of `section`'s chain."""
    w3 = as_account(url, who)
    abi = artifacts.across(section["spoke_pool_contract"])["abi"]
    pool = w3.eth.contract(address=section["spoke_pool"], abi=abi)
    relay = w3.eth.contract(address=section["admin_relay"], abi=artifacts.ours("AdminRelay")["abi"])
    return w3, pool, relay


def _head(url: str) -> int:
    return int(Web3(Web3.HTTPProvider(url)).eth.block_number)


def _balance(url: str, section: dict[str, Any], who: str) -> int:
    w3 = Web3(Web3.HTTPProvider(url))
    usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
    return int(usdc.functions.balanceOf(Web3.to_checksum_address(who)).call())


@pytest.mark.parametrize("chain_id", CHAIN_IDS)
def test_admin_calls_pass_only_through_the_relay_by_the_admin(
    chains: dict[int, tuple[str, dict[str, Any]]],
    chain_id: int,
    deployer: LocalAccount,
    stranger: LocalAccount,
) -> None:
    url, section = chains[chain_id]
    assert section["admin_relay"] == admin_relay_address(chain_id, deployer.address)
    _, pool, relay = _pool_and_relay(url, section, deployer)
    post = pool.functions.relayRootBundle(b"\x01" * 32, ZERO32)
    # The admin's own address is not what the pool trusts; nor may anyone else use the relay.
    revert_of(post, deployer.address)
    through = relay.functions.relay(pool.address, post._encode_transaction_data())
    assert revert_of(through, stranger.address) == selector("NotAdmin()")
    through.call({"from": deployer.address})  # the admin through the relay: accepted


@pytest.mark.parametrize("chain_id", CHAIN_IDS)
async def test_a_leaf_is_paid_once(
    chains: dict[int, tuple[str, dict[str, Any]]],
    chain_id: int,
    deployer: LocalAccount,
    stranger: LocalAccount,
) -> None:
    url, section = chains[chain_id]
    bundles = root_bundles(url, section, deployer)
    leaf = refund_leaf(chain_id, section["usdc"], [(stranger.address, 25 * USDC)], leaf_id=7)
    before = _balance(url, section, stranger.address)
    start = _head(url)  # the block of the deposit the leaf pays for: before any bundle of it
    paid = await bundles.pay(leaf, start)
    assert not paid.repeated and len(paid.receipts) == 2  # posted, then executed
    assert _balance(url, section, stranger.address) - before == 25 * USDC
    # Asked again (a retry, a restart): found paid on chain, nothing sent, nothing paid.
    again = await root_bundles(url, section, deployer).pay(leaf, start)
    assert again.repeated and again.receipts == []
    assert (again.bundle_id, again.execute_tx) == (paid.bundle_id, paid.execute_tx)
    assert _balance(url, section, stranger.address) - before == 25 * USDC
    # The pool's claimed bitmap refuses a second execution of the leaf by anyone.
    _, pool, _ = _pool_and_relay(url, section, stranger)
    execute = pool.functions.executeRelayerRefundLeaf(
        paid.bundle_id, tuple(leaf[f] for f in LEAF_FIELDS), []
    )
    assert revert_of(execute, stranger.address) == selector("ClaimedMerkleLeaf()")


async def test_a_bundle_posted_before_an_interruption_is_executed_not_posted_again(
    chains: dict[int, tuple[str, dict[str, Any]]], deployer: LocalAccount, stranger: LocalAccount
) -> None:
    url, section = chains[SOURCE_CHAIN_ID]
    leaf = refund_leaf(SOURCE_CHAIN_ID, section["usdc"], [(stranger.address, 3 * USDC)], 9)
    w3, pool, relay = _pool_and_relay(url, section, deployer)
    start = _head(url)
    post = pool.functions.relayRootBundle(one_leaf_root(leaf), ZERO32)
    # An earlier run posted the bundle and stopped before executing it.
    assert (
        send(w3, relay.functions.relay(pool.address, post._encode_transaction_data()))["status"]
        == 1
    )
    bundle_count = len(pool.events.RelayedRootBundle().get_logs(from_block=0))
    before = _balance(url, section, stranger.address)
    paid = await root_bundles(url, section, deployer).pay(leaf, start)
    assert not paid.repeated and len(paid.receipts) == 1  # executed only
    assert len(pool.events.RelayedRootBundle().get_logs(from_block=0)) == bundle_count
    assert _balance(url, section, stranger.address) - before == 3 * USDC


async def test_a_leaf_paid_many_chunks_back_is_not_paid_again(
    chains: dict[int, tuple[str, dict[str, Any]]],
    deployer: LocalAccount,
    stranger: LocalAccount,
    tmp_path: Path,
) -> None:
    """A leaf paid more log-search chunks back than the head (5 blocks here, 10,000 by
    default) is found paid after a restart: by the store's record, and without a store by the
    log search from the leaf's lower bound, read chunk by chunk (a fixed window back from the
    head, the old look-back, would post and pay it again)."""
    url, section = chains[TRADING_CHAIN_ID]
    leaf = refund_leaf(TRADING_CHAIN_ID, section["usdc"], [(stranger.address, 2 * USDC)], 13)
    before = _balance(url, section, stranger.address)
    start = _head(url)
    store = open_store(StoreConfig(tmp_path))
    assert store is not None
    bundles = root_bundles(url, section, deployer, chunk_blocks=5)
    bundles.keep_in(store)
    paid = await bundles.pay(leaf, start)
    assert not paid.repeated and len(paid.receipts) == 2
    store.commit()
    store.close()
    Web3(Web3.HTTPProvider(url)).provider.make_request("anvil_mine", [23])  # type: ignore[arg-type]
    restarted = open_store(StoreConfig(tmp_path))
    assert restarted is not None
    again = root_bundles(url, section, deployer, chunk_blocks=5)
    again.keep_in(restarted)
    found = await again.pay(leaf, start)
    assert found.repeated and found.receipts == []
    assert (found.bundle_id, found.execute_tx) == (paid.bundle_id, paid.execute_tx)
    restarted.close()
    # Without a store: the log search from the lower bound finds the bundle and its execution.
    blind = await root_bundles(url, section, deployer, chunk_blocks=5).pay(leaf, start)
    assert blind.repeated and blind.receipts == []
    assert (blind.bundle_id, blind.execute_tx) == (paid.bundle_id, paid.execute_tx)
    assert _balance(url, section, stranger.address) - before == 2 * USDC
    # The control: a search starting after the bundle (a lower bound that is not one) pays again.
    late = await root_bundles(url, section, deployer, chunk_blocks=5).pay(leaf, _head(url) - 5)
    assert not late.repeated and late.bundle_id != paid.bundle_id
    assert _balance(url, section, stranger.address) - before == 4 * USDC


async def test_no_bundle_without_an_admin_relay(
    chains: dict[int, tuple[str, dict[str, Any]]], stranger: LocalAccount
) -> None:
    """Posting as an admin whose relay is not installed (a chain we did not deploy) is refused
    before any transaction: a call to an address without code would "succeed" doing nothing."""
    url, section = chains[SOURCE_CHAIN_ID]
    leaf = refund_leaf(SOURCE_CHAIN_ID, section["usdc"], [(stranger.address, 1)], leaf_id=11)
    nonce = Web3(Web3.HTTPProvider(url)).eth.get_transaction_count(stranger.address)
    with pytest.raises(NoAdminRelay, match="no admin relay"):
        await root_bundles(url, section, stranger).pay(leaf, 0)
    assert Web3(Web3.HTTPProvider(url)).eth.get_transaction_count(stranger.address) == nonce
