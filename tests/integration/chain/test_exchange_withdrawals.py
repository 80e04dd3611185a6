"""The exchange simulator pays withdrawals on the trading chain from its hot wallet (issue 12):
a real USDC transfer, status 4 until mined, then 6 with its txId; a repeated withdrawOrderId
pays nothing more; a transfer the chain refuses is status 5 and the debit comes back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from indexmaker.app.binance_wiring import ExchangeSimProcess
from indexmaker.chain import artifacts
from indexmaker.chain.deploy import TRADING_CHAIN_ID, deploy_chain
from indexmaker.venues.binance_sim.config import HOT_WALLET_KEY_ENV

from ..binance_sim.conftest import balance, rest
from .conftest import ANVIL_KEY_3, as_account, send

USDC = 10**6
HOT_FLOAT = 1_000  # USDC the hot wallet holds on chain


@pytest.fixture(scope="module")
def base(start_node: Any, deployer: LocalAccount, stranger: LocalAccount) -> tuple[str, Any]:
    node = start_node(TRADING_CHAIN_ID)
    w3 = as_account(node.url, deployer)
    section = deploy_chain(w3, TRADING_CHAIN_ID)
    usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
    send(w3, usdc.functions.mint(stranger.address, HOT_FLOAT * USDC))  # the hot wallet
    return node.url, section


@pytest.fixture(scope="module")
def exchange(base: tuple[str, Any]) -> Iterator[ExchangeSimProcess]:
    url, section = base
    process = ExchangeSimProcess(
        "--symbols", "BTCUSDC", "--chain-rpc", url, "--chain-usdc", section["usdc"],
        env={HOT_WALLET_KEY_ENV: ANVIL_KEY_3},
    )  # fmt: skip
    try:
        yield process
    finally:
        process.stop()


def _row(exchange: Any, order_id: str) -> dict[str, Any]:
    _, _, rows = rest(
        exchange, "GET", "/sapi/v1/capital/withdraw/history", coin="USDC", withdrawOrderId=order_id
    )
    (row,) = rows
    return dict(row)


def _until(exchange: Any, order_id: str, status: int) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        row = _row(exchange, order_id)
        if row["status"] == status:
            return row
        time.sleep(0.1)
    raise AssertionError(
        f"withdrawal {order_id} never reached {status}: {_row(exchange, order_id)}"
    )


def _usdc(url: str, section: dict[str, Any], holder: str) -> int:
    w3 = Web3(Web3.HTTPProvider(url))
    usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
    return int(usdc.functions.balanceOf(holder).call())


def _withdraw(exchange: Any, to: str, amount: str, order_id: str) -> str:
    status, _, body = rest(
        exchange,
        "POST",
        "/sapi/v1/capital/withdraw/apply",
        coin="USDC",
        network="BASE",
        address=to,
        amount=amount,
        withdrawOrderId=order_id,
    )
    assert status == 200, body
    return str(body["id"])


def test_a_withdrawal_is_a_real_transfer_once_per_withdraw_order_id(
    base: tuple[str, Any], exchange: ExchangeSimProcess, client: LocalAccount
) -> None:
    url, section = base
    before_chain = _usdc(url, section, client.address)
    before = balance(exchange, "USDC")[0]
    ident = _withdraw(exchange, client.address, "250.5", "R1")
    row = _until(exchange, "R1", 6)
    assert row["id"] == ident and Decimal(row["amount"]) == Decimal("250.5")
    receipt = Web3(Web3.HTTPProvider(url)).eth.get_transaction_receipt(row["txId"])
    assert receipt["status"] == 1 and receipt["to"] == section["usdc"]
    assert _usdc(url, section, client.address) - before_chain == 250_500_000
    assert before - balance(exchange, "USDC")[0] == Decimal("250.6")  # amount + 0.1 fee
    # The same withdrawOrderId again (a resend after a timeout or restart): nothing more.
    assert _withdraw(exchange, client.address, "250.5", "R1") == ident
    time.sleep(0.5)
    assert _usdc(url, section, client.address) - before_chain == 250_500_000
    assert before - balance(exchange, "USDC")[0] == Decimal("250.6")


def test_a_withdrawal_the_chain_refuses_fails_and_is_refunded(
    base: tuple[str, Any], exchange: ExchangeSimProcess, client: LocalAccount
) -> None:
    url, section = base
    before = balance(exchange, "USDC")[0]
    before_chain = _usdc(url, section, client.address)
    _withdraw(exchange, client.address, str(HOT_FLOAT * 2), "R2")  # more than the hot wallet
    row = _until(exchange, "R2", 5)
    assert not row["txId"]
    assert _usdc(url, section, client.address) == before_chain
    deadline = time.monotonic() + 5
    while balance(exchange, "USDC")[0] != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert balance(exchange, "USDC")[0] == before
