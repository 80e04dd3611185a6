"""Sent, unmined transactions kept in the store (issue 11) against a real anvil that mines
only on evm_mine: a sender that stopped between the send and the receipt (a restart) settles
them on the next run — the same transaction awaited or rebroadcast, never a second one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from eth_account.signers.local import LocalAccount
from web3 import AsyncHTTPProvider, AsyncWeb3

from indexmaker.app.config import StoreConfig
from indexmaker.chain import anvil
from indexmaker.chain.deploy import TRADING_CHAIN_ID
from indexmaker.chain.tx import TxPolicy, TxSender
from indexmaker.store.chain_txs import SqlChainTxs, open_chain_txs

T = TypeVar("T")
POLICY = TxPolicy(receipt_timeout_s=0.3, max_replacements=2)


@pytest.fixture(scope="module")
def stuck_url(compiled: None) -> Iterator[str]:
    """A chain that mines only on evm_mine: every transaction waits in the mempool."""
    node = anvil.start(TRADING_CHAIN_ID, no_mining=True)
    yield node.url
    anvil.stop(node.pid)


def _txs(tmp_path: Path) -> SqlChainTxs:
    txs = open_chain_txs(StoreConfig(data_dir=tmp_path))
    assert txs is not None
    return txs


async def _rpc(w3: AsyncWeb3[Any], method: str, *params: Any) -> Any:
    return await w3.provider.make_request(method, list(params))  # type: ignore[arg-type]


async def _sent_then_stopped(
    w3: AsyncWeb3[Any], who: LocalAccount, to: str, tmp_path: Path
) -> tuple[int, str]:
    """A first run sends one transfer and stops before its receipt: (its nonce, its hash)."""
    first = TxSender(w3, who, POLICY)
    first.journal = _txs(tmp_path)
    nonce = await w3.eth.get_transaction_count(who.address, "pending")
    task = asyncio.create_task(first.send({"to": to, "value": 4321}))
    for _ in range(1_000):  # bounded (10 s): until it left
        if first.sent:
            break
        await asyncio.sleep(0.01)
    task.cancel()  # the process ends here
    with pytest.raises(asyncio.CancelledError):
        await task
    (row,) = first.journal.pending(TRADING_CHAIN_ID, who.address)
    assert row.nonce == nonce and row.hashes == (first.sent[0],)
    return nonce, first.sent[0]


async def _mined(w3: AsyncWeb3[Any], work: Awaitable[T]) -> T:
    """`work`'s result, a block mined every 0.05 s until it is done (bounded: 10 s). Mining
    once after a fixed pause raced the send under load: a block mined before the
    transaction left was empty and the sender timed out waiting for its receipt."""
    task = asyncio.ensure_future(work)
    try:
        for _ in range(200):  # bounded
            await _rpc(w3, "evm_mine")
            done, _ = await asyncio.wait({task}, timeout=0.05)
            if done:
                return task.result()
        raise AssertionError("not done within 200 blocks")
    finally:
        task.cancel()


async def _restarted_and_mined(
    w3: AsyncWeb3[Any], who: LocalAccount, tmp_path: Path, nonce: int, sent: str
) -> TxSender:
    """The restarted service's sender settles the first run's transaction while a block is
    mined: mined under the first run's hash (the very transaction, not a new one), alone
    at its nonce, and no longer pending."""
    second = TxSender(w3, who, POLICY)
    second.journal = _txs(tmp_path)
    assert await _mined(w3, second.recover()) == 1
    receipt = await w3.eth.get_transaction_receipt(sent)  # type: ignore[arg-type]
    assert receipt["status"] == 1
    assert await w3.eth.get_transaction_count(who.address, "latest") == nonce + 1
    assert second.journal.pending(TRADING_CHAIN_ID, who.address) == []
    return second


async def test_a_transaction_still_in_the_mempool_is_awaited_not_sent_again(
    stuck_url: str, client: LocalAccount, stranger: LocalAccount, tmp_path: Path
) -> None:
    w3 = AsyncWeb3(AsyncHTTPProvider(stuck_url))
    nonce, sent = await _sent_then_stopped(w3, client, stranger.address, tmp_path)

    second = await _restarted_and_mined(w3, client, tmp_path, nonce, sent)
    # A new send after recovery takes the next nonce.
    receipt = await _mined(w3, second.send({"to": stranger.address, "value": 1}))
    assert (await w3.eth.get_transaction(receipt["transactionHash"]))["nonce"] == nonce + 1


async def test_a_transaction_the_node_forgot_is_rebroadcast_as_the_same_bytes(
    stuck_url: str, relayer: LocalAccount, stranger: LocalAccount, tmp_path: Path
) -> None:
    w3 = AsyncWeb3(AsyncHTTPProvider(stuck_url))
    nonce, sent = await _sent_then_stopped(w3, relayer, stranger.address, tmp_path)
    await _rpc(w3, "anvil_dropAllTransactions")  # the node restarted with an empty mempool
    assert await w3.eth.get_transaction_count(relayer.address, "pending") == nonce

    await _restarted_and_mined(w3, relayer, tmp_path, nonce, sent)


async def test_a_nonce_another_transaction_took_settles_without_a_send(
    stuck_url: str, deployer: LocalAccount, stranger: LocalAccount, tmp_path: Path
) -> None:
    w3 = AsyncWeb3(AsyncHTTPProvider(stuck_url))
    nonce, sent = await _sent_then_stopped(w3, deployer, stranger.address, tmp_path)
    await _rpc(w3, "anvil_dropAllTransactions")
    other = TxSender(w3, deployer, POLICY)  # e.g. an operator's tool, without the store
    await _mined(w3, other.send({"to": stranger.address, "value": 7}))

    second = TxSender(w3, deployer, POLICY)
    second.journal = _txs(tmp_path)
    assert await asyncio.wait_for(second.recover(), 30) == 1  # nothing to mine: it settles
    assert second.journal.pending(TRADING_CHAIN_ID, deployer.address) == []
    assert second.sent == []  # nothing rebroadcast
    assert await w3.eth.get_transaction_count(deployer.address, "latest") == nonce + 1
    assert sent not in [h for h in other.sent]
