"""A transaction the service sent and had not seen mined when it stopped (issue 11: pending
transactions in the store) is awaited on the next start, never sent a second time. (A module
of its own: custody refuses a payment id twice, and each store numbers its payments from P1.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from indexmaker.chain import artifacts
from indexmaker.chain.across import event_topic
from indexmaker.chain.deploy import SOURCE_CHAIN_ID

from . import path_harness as h


def _deposit_mined_by_hand(chains: h.LocalChains, client: LocalAccount, amount: int) -> None:
    """The client's deposit on 42161 while the node mines only on evm_mine (approve, then
    Custody.deposit, each mined alone)."""
    w3 = Web3(Web3.HTTPProvider(chains.url(SOURCE_CHAIN_ID)))
    w3.eth.default_account = client.address
    section = chains.sections[SOURCE_CHAIN_ID]
    usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
    custody = w3.eth.contract(address=section["custody"], abi=artifacts.ours("Custody")["abi"])
    nonce = w3.eth.get_transaction_count(client.address)
    units = amount * 10**6
    calls = (usdc.functions.approve(custody.address, units), custody.functions.deposit(units))
    for n, call in enumerate(calls):
        tx = call.build_transaction(
            {"from": client.address, "nonce": nonce + n, "gas": 300_000, "chainId": SOURCE_CHAIN_ID}
        )
        tx_hash = w3.eth.send_raw_transaction(client.sign_transaction(tx).raw_transaction)
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        assert w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)["status"] == 1


def _issuer_receipts(chains: h.LocalChains, since: int) -> list[Any]:
    w3 = Web3(Web3.HTTPProvider(chains.url(SOURCE_CHAIN_ID)))
    found = []
    for number in range(since, w3.eth.block_number + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["from"] == chains.issuer.address:
                found.append(w3.eth.get_transaction_receipt(tx["hash"]))
    return found


@pytest.mark.slow
async def test_a_transaction_pending_at_a_restart_is_awaited_not_sent_twice(
    chains: h.LocalChains, running: Callable[..., h.Running], tmp_path: Path
) -> None:
    client = Account.from_key(h.CLIENT_KEYS[1])
    w3 = Web3(Web3.HTTPProvider(chains.url(SOURCE_CHAIN_ID)))
    src = chains.sections[SOURCE_CHAIN_ID]
    since = await asyncio.to_thread(lambda: w3.eth.block_number)

    def rpc(method: str, *params: Any) -> None:
        w3.provider.make_request(method, list(params))  # type: ignore[arg-type]

    first = running(tmp_path)
    await first.start(relayer=False)
    await asyncio.to_thread(rpc, "evm_setAutomine", False)
    try:
        await asyncio.to_thread(_deposit_mined_by_hand, chains, client, 400)
        # The service releases the deposit from custody for the bridge: sent, never mined.
        assert first.txs is not None
        txs = first.txs
        await h.until(lambda: bool(txs.pending(SOURCE_CHAIN_ID, chains.issuer.address)), "sent")
        (pending,) = txs.pending(SOURCE_CHAIN_ID, chains.issuer.address)
        await first.stop()

        second = running(tmp_path)

        async def mine_later() -> None:
            await asyncio.sleep(1.0)  # the second start is waiting for the pending one
            await asyncio.to_thread(rpc, "evm_setAutomine", True)
            await asyncio.to_thread(rpc, "evm_mine")

        miner = asyncio.create_task(mine_later())
        await second.start(relayer=True)
        await miner
    finally:
        await asyncio.to_thread(rpc, "evm_setAutomine", True)
    h.client_order(second, SOURCE_CHAIN_ID, client, 400, "pending-1")
    await h.until(lambda: bool(second.invoices(client.address)), "the invoice after restart")

    receipts = await asyncio.to_thread(_issuer_receipts, chains, since + 1)
    hashes = ["0x" + bytes(r["transactionHash"]).hex() for r in receipts]
    assert pending.hashes[-1] in hashes  # the first run's release was the one mined
    assert all(r["status"] == 1 for r in receipts)  # no second release reverted on chain
    released = event_topic(artifacts.ours("Custody")["abi"], "CollateralReleased")
    releases = [lg for r in receipts for lg in r["logs"] if lg["topics"][0] == released]
    assert len(releases) == 1
    deposited = event_topic(artifacts.across(src["spoke_pool_contract"])["abi"], "FundsDeposited")
    assert len([lg for r in receipts for lg in r["logs"] if lg["topics"][0] == deposited]) == 1
    (invoice,) = second.invoices(client.address)
    await h.check_minted(chains, invoice, client.address)
