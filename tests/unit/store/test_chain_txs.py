"""The pending chain transactions table (migration 5) on both backends: what a restarted
service finds of the transactions it had sent and not seen mined."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from indexmaker.app.config import StoreConfig
from indexmaker.store.chain_txs import PendingTx, SqlChainTxs, open_chain_txs

SENDER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


@pytest.fixture
def open_txs(table_config: StoreConfig) -> Callable[[], SqlChainTxs]:
    """Opens (and reopens, like a restarted service) the table in one database."""

    def reopen() -> SqlChainTxs:
        txs = open_chain_txs(table_config)
        assert txs is not None
        return txs

    return reopen


def _tx(nonce: int, *hashes: str, chain_id: int = 8453) -> PendingTx:
    fields = {"nonce": nonce, "chainId": chain_id, "data": "0xabcd", "maxFeePerGas": 7}
    return PendingTx(chain_id, SENDER, nonce, hashes, bytes([nonce, 1, 2]), fields)


def test_a_sent_transaction_survives_a_reopen_until_it_is_settled(
    open_txs: Callable[[], SqlChainTxs],
) -> None:
    txs = open_txs()
    txs.record(_tx(5, "0xaa"))
    txs.record(_tx(3, "0xbb"))
    txs.record(_tx(3, "0xbb", "0xcc"))  # a fee-bumped replacement of nonce 3
    txs.record(_tx(3, "0xdd", chain_id=42161))  # same sender and nonce on the other chain
    txs.close()

    reopened = open_txs()
    pending = reopened.pending(8453, SENDER.lower())  # the sender's case does not matter
    assert [(p.nonce, p.hashes, p.raw) for p in pending] == [
        (3, ("0xbb", "0xcc"), bytes([3, 1, 2])),
        (5, ("0xaa",), bytes([5, 1, 2])),
    ]
    assert pending[0].fields == {"nonce": 3, "chainId": 8453, "data": "0xabcd", "maxFeePerGas": 7}
    reopened.settle(8453, SENDER, 3)
    reopened.close()

    again = open_txs()
    assert [p.nonce for p in again.pending(8453, SENDER)] == [5]
    assert [p.hashes for p in again.pending(42161, SENDER)] == [("0xdd",)]
    assert again.pending(8453, "0x" + "11" * 20) == []
    again.close()


def test_the_memory_store_keeps_no_transactions() -> None:
    assert open_chain_txs(StoreConfig()) is None
