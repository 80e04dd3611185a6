"""The exchange simulator watches the trading chain: a USDC transfer to its deposit address is
pending until it has the configured confirmations, then credited once (balance, history)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from indexmaker.chain import artifacts
from indexmaker.chain.deploy import TRADING_CHAIN_ID, deploy_chain

from ..binance_sim.conftest import SimProcess, balance, rest
from .conftest import as_account, send

USDC = 10**6


@pytest.fixture(scope="module")
def base(start_node: Any, deployer: LocalAccount, client: LocalAccount) -> tuple[str, Any]:
    node = start_node(TRADING_CHAIN_ID)
    w3 = as_account(node.url, deployer)
    section = deploy_chain(w3, TRADING_CHAIN_ID)
    usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
    send(w3, usdc.functions.mint(client.address, 10_000 * USDC))
    return node.url, section


@pytest.fixture(scope="module")
def exchange(base: tuple[str, Any]) -> Iterator[SimProcess]:
    url, section = base
    process = SimProcess(
        "--symbols", "BTCUSDC", "--chain-rpc", url, "--chain-usdc", section["usdc"],
        "--chain-confirmations", "3",
    )  # fmt: skip
    try:
        yield process
    finally:
        process.stop()


def _history(exchange: SimProcess, tx: str) -> dict[str, Any] | None:
    _, _, rows = rest(exchange, "GET", "/sapi/v1/capital/deposit/hisrec", coin="USDC", txId=tx)
    return rows[0] if rows else None


def _wait(exchange: SimProcess, tx: str, status: int) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        row = _history(exchange, tx)
        if row is not None and row["status"] == status:
            return row
        time.sleep(0.1)
    raise AssertionError(f"deposit {tx} never reached status {status}: {_history(exchange, tx)}")


def test_transfer_to_the_deposit_address_is_credited_after_the_confirmations(
    base: tuple[str, Any], exchange: SimProcess, client: LocalAccount
) -> None:
    url, section = base
    _, _, answer = rest(exchange, "GET", "/sapi/v1/capital/deposit/address", coin="USDC")
    address = Web3.to_checksum_address(answer["address"])
    _, _, other = rest(exchange, "GET", "/sapi/v1/capital/deposit/address", "second", coin="USDC")
    _, _, coins = rest(exchange, "GET", "/sapi/v1/capital/config/getall")
    base_net = next(
        n for c in coins if c["coin"] == "USDC" for n in c["networkList"] if n["network"] == "BASE"
    )
    assert base_net["minConfirm"] == 3
    before, before_second = balance(exchange, "USDC")[0], balance(exchange, "USDC", "second")[0]
    w3 = as_account(url, client)
    usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
    receipt = send(w3, usdc.functions.transfer(address, 1234_567_891))
    tx = "0x" + bytes(receipt["transactionHash"]).hex()
    # Another address on the chain (not the exchange's) is never credited to anyone.
    send(w3, usdc.functions.transfer(client.address, 5 * USDC))

    pending = _wait(exchange, tx, 0)
    assert pending["amount"] == "1234.56789100" and pending["network"] == "BASE"
    assert pending["address"].lower() == address.lower()
    assert balance(exchange, "USDC")[0] == before  # not credited before 3 confirmations
    w3.provider.make_request("anvil_mine", [2])  # type: ignore[arg-type]
    credited = _wait(exchange, tx, 1)
    assert credited["confirmTimes"] == "3/3"
    assert balance(exchange, "USDC")[0] == before + Decimal("1234.567891")
    w3.provider.make_request("anvil_mine", [3])  # type: ignore[arg-type]
    time.sleep(0.6)  # more polls of the watcher: the same log is never credited again
    assert balance(exchange, "USDC")[0] == before + Decimal("1234.567891")
    assert balance(exchange, "USDC", "second")[0] == before_second
    assert other["address"].lower() != address.lower()
