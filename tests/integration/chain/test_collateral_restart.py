"""A restart of the service between the Across deposit and its fill (issue 11): the hop is
redone under the same key after recovery, finds its deposit on the source pool instead of
depositing again, and completes once our relayer fills; the order is minted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from indexmaker.chain import artifacts
from indexmaker.chain.across import event_topic
from indexmaker.chain.deploy import SOURCE_CHAIN_ID

from . import path_harness as h


@pytest.mark.slow
async def test_a_restart_between_bridge_deposit_and_fill_deposits_once(
    chains: h.LocalChains, running: Callable[..., h.Running], tmp_path: Path
) -> None:
    client = Account.from_key(h.CLIENT_KEYS[2])
    src = chains.sections[SOURCE_CHAIN_ID]
    w3 = Web3(Web3.HTTPProvider(chains.url(SOURCE_CHAIN_ID)))
    topic = event_topic(artifacts.across(src["spoke_pool_contract"])["abi"], "FundsDeposited")

    def deposits() -> list[Any]:
        return list(
            w3.eth.get_logs(
                {"address": src["spoke_pool"], "fromBlock": 0, "toBlock": "latest",
                 "topics": [topic]}
            )
        )  # fmt: skip

    before = len(await asyncio.to_thread(deposits))
    first = running(tmp_path)
    await first.start(relayer=False)  # nobody fills yet
    await h.client_deposit(chains, SOURCE_CHAIN_ID, client, 500)
    h.client_order(first, SOURCE_CHAIN_ID, client, 500, "restart-1")
    await h.until(lambda: len(deposits()) == before + 1, "the bridge deposit", 60)
    await first.stop()

    second = running(tmp_path)
    await second.start(relayer=True)
    await h.until(lambda: bool(second.invoices(client.address)), "the invoice after restart")
    assert (
        len(await asyncio.to_thread(deposits)) == before + 1
    )  # the redone hop found its deposit: never twice
    (invoice,) = second.invoices(client.address)
    await h.check_minted(chains, invoice, client.address)
