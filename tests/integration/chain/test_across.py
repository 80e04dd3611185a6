"""Across's published spoke pools (npm @across-protocol/contracts 5.0.27, unchanged) between two
real anvil nodes: deposit on 42161 (Arbitrum_SpokePool), relayer fill on 8453 (OP_SpokePool),
a repeated fill refused, deadlines on the destination's own clock. Refund bundles (the
relayer's repayment, an expired deposit's refund): test_root_bundles.py, test_relayer.py,
test_across_expiry.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD

from indexmaker.chain import artifacts
from indexmaker.chain.across import (
    from_bytes32,
    relay_data,
    to_bytes32,
)
from indexmaker.chain.deploy import SOURCE_CHAIN_ID, TRADING_CHAIN_ID, deploy_chain

from .conftest import as_account, revert_of, selector, send

USDC = 10**6
ZERO32 = b"\x00" * 32


class Side:
    """One chain's deployment, with contracts bound for a given signer on demand."""

    def __init__(self, url: str, section: dict[str, Any]) -> None:
        self.url, self.section = url, section

    def contracts(self, who: LocalAccount) -> tuple[Web3, Any, Any]:
        w3 = as_account(self.url, who)
        usdc = w3.eth.contract(address=self.section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
        abi = artifacts.across(self.section["spoke_pool_contract"])["abi"]
        pool = w3.eth.contract(address=self.section["spoke_pool"], abi=abi)
        return w3, usdc, pool


@pytest.fixture(scope="module")
def chains(
    start_node: Any, deployer: LocalAccount, client: LocalAccount, relayer: LocalAccount
) -> tuple[Side, Side]:
    sides = []
    for chain_id, funded in ((SOURCE_CHAIN_ID, client), (TRADING_CHAIN_ID, relayer)):
        node = start_node(chain_id)
        side = Side(node.url, deploy_chain(as_account(node.url, deployer), chain_id))
        w3, usdc, _ = side.contracts(deployer)
        assert send(w3, usdc.functions.mint(funded.address, 100_000 * USDC))["status"] == 1
        sides.append(side)
    return sides[0], sides[1]


@pytest.fixture
def base_snapshot(chains: tuple[Side, Side]) -> Iterator[Web3]:
    """The trading chain, rolled back to its state before the test (evm_snapshot/evm_revert)."""
    w3 = Web3(Web3.HTTPProvider(chains[1].url))
    snap = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    yield w3
    assert w3.provider.make_request("evm_revert", [snap])["result"] is True  # type: ignore[arg-type]


def _deposit(
    src: Side, dst: Side, client: LocalAccount, recipient: str, amount: int, fee: int, ttl: int
) -> dict[str, Any]:
    """Client deposits `amount` on the source pool for `recipient` on 8453, `fee` to the relayer;
    the fill deadline is `ttl` s after the source chain's clock now. Returns the event args."""
    w3, usdc, pool = src.contracts(client)
    assert send(w3, usdc.functions.approve(pool.address, amount))["status"] == 1
    # The pending block's time, not the head's: an idle anvil's head keeps the time of its
    # last block, so a deadline counted from it could pass before the test's own fill.
    now = w3.eth.get_block("pending")["timestamp"]
    call = pool.functions.deposit(
        to_bytes32(client.address),
        to_bytes32(recipient),
        to_bytes32(src.section["usdc"]),
        to_bytes32(dst.section["usdc"]),
        amount,
        amount - fee,
        TRADING_CHAIN_ID,
        ZERO32,  # no exclusive relayer
        now,  # quoteTimestamp: within the pool's 1 h buffer of its own clock
        now + ttl,
        0,
        b"",
    )
    receipt = send(w3, call, gas=500_000)
    assert receipt["status"] == 1
    (event,) = pool.events.FundsDeposited().process_receipt(receipt, errors=DISCARD)
    return dict(event["args"])


def test_deposit_then_relayer_fill_once(
    chains: tuple[Side, Side],
    client: LocalAccount,
    relayer: LocalAccount,
    stranger: LocalAccount,
) -> None:
    src, dst = chains
    wallet = stranger.address  # the trading wallet on Base
    args = _deposit(src, dst, client, wallet, 1_000 * USDC, 3 * USDC, ttl=3600)
    assert from_bytes32(args["recipient"]) == wallet
    assert (args["inputAmount"], args["outputAmount"]) == (1_000 * USDC, 997 * USDC)
    assert args["destinationChainId"] == TRADING_CHAIN_ID
    _, src_usdc, _ = src.contracts(client)
    assert src_usdc.functions.balanceOf(src.section["spoke_pool"]).call() >= 1_000 * USDC

    w3, usdc, pool = dst.contracts(relayer)
    assert send(w3, usdc.functions.approve(pool.address, 10_000 * USDC))["status"] == 1
    before = usdc.functions.balanceOf(relayer.address).call()
    data = relay_data(args, SOURCE_CHAIN_ID)
    fill = pool.functions.fillRelay(data, SOURCE_CHAIN_ID, to_bytes32(relayer.address))
    receipt = send(w3, fill, gas=500_000)
    assert receipt["status"] == 1
    (event,) = pool.events.FilledRelay().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["depositId"] == args["depositId"]
    assert from_bytes32(event["args"]["relayer"]) == relayer.address
    assert usdc.functions.balanceOf(wallet).call() == 997 * USDC
    assert before - usdc.functions.balanceOf(relayer.address).call() == 997 * USDC
    # A second fill of the same deposit is refused (revert strings are stripped: custom error).
    assert revert_of(fill, relayer.address) == selector("RelayFilled()")
    assert usdc.functions.balanceOf(wallet).call() == 997 * USDC


def test_fill_after_deadline_on_destination_clock_reverts(
    chains: tuple[Side, Side],
    base_snapshot: Web3,
    client: LocalAccount,
    relayer: LocalAccount,
    stranger: LocalAccount,
) -> None:
    src, dst = chains
    args = _deposit(src, dst, client, stranger.address, 50 * USDC, 1 * USDC, ttl=600)
    w3, usdc, pool = dst.contracts(relayer)
    fill = pool.functions.fillRelay(
        relay_data(args, SOURCE_CHAIN_ID), SOURCE_CHAIN_ID, to_bytes32(relayer.address)
    )
    # Within the deadline the fill would go through; 601 s later on Base's clock it cannot.
    assert send(w3, usdc.functions.approve(pool.address, 10_000 * USDC))["status"] == 1
    fill.call({"from": relayer.address})
    base_snapshot.provider.make_request("evm_increaseTime", [601])  # type: ignore[arg-type]
    base_snapshot.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    assert revert_of(fill, relayer.address) == selector("ExpiredFillDeadline()")
