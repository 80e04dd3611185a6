"""A redemption end to end on anvil and the exchange simulator (issue 12): a client buys on
8453 and is minted, approves custody for its index tokens and sells them over the engine; the
tokens are escrowed in custody, the basket sold through the Binance connector, exactly the
units sold burned from custody (once per batch), the proceeds withdrawn from the exchange (its
hot wallet pays the trading chain's custody under the redemption's id) and paid to the
client's wallet on 8453. The client sells from the command line (`indexmaker order … sell
--approve --wait`). Everything is read back from the chain."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from indexmaker.chain import artifacts
from indexmaker.chain.deploy import TRADING_CHAIN_ID, connect
from indexmaker.core.events import MintInvoice
from indexmaker.core.money import index_to_units, units_to_usdc, usdc_to_units
from indexmaker.core.redemption_events import RedemptionInvoice

from . import path_harness as h


def _approve_sync(chains: h.LocalChains, client: LocalAccount, units: int) -> None:
    w3 = connect(chains.url(TRADING_CHAIN_ID), client)
    section = chains.sections[TRADING_CHAIN_ID]
    token = w3.eth.contract(
        address=section["index_tokens"][h.INDEX], abi=artifacts.ours("IndexToken")["abi"]
    )
    tx = token.functions.approve(section["custody"], units).transact({"gas": 200_000})
    assert w3.eth.wait_for_transaction_receipt(tx, timeout=30)["status"] == 1


def _read_sync(chains: h.LocalChains, holder: str) -> dict[str, Any]:
    w3 = Web3(Web3.HTTPProvider(chains.url(TRADING_CHAIN_ID)))
    section = chains.sections[TRADING_CHAIN_ID]
    token = w3.eth.contract(
        address=section["index_tokens"][h.INDEX], abi=artifacts.ours("IndexToken")["abi"]
    )
    usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
    return {
        "tokens": int(token.functions.balanceOf(holder).call()),
        "custody_tokens": int(token.functions.balanceOf(section["custody"]).call()),
        "supply": int(token.functions.totalSupply().call()),
        "usdc": int(usdc.functions.balanceOf(holder).call()),
    }


def _receipt_sync(chains: h.LocalChains, tx: str) -> Any:
    return Web3(Web3.HTTPProvider(chains.url(TRADING_CHAIN_ID))).eth.get_transaction_receipt(tx)


@pytest.fixture(scope="module")
def deployment(chains: h.LocalChains, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trading chain's addresses in deploy.py's file shape (for the CLI's --approve)."""
    path = tmp_path_factory.mktemp("deploy") / "deployment.json"
    section = {"rpc_url": chains.url(TRADING_CHAIN_ID), **chains.sections[TRADING_CHAIN_ID]}
    path.write_text(json.dumps({"chains": {str(TRADING_CHAIN_ID): section}}))
    return path


async def bought(
    chains: h.LocalChains, service: h.Running, chain_id: int, client: LocalAccount
) -> MintInvoice:
    """Start the service; the client deposits 1,000 USDC on `chain_id` and buys: its invoice."""
    await service.start()
    await h.client_deposit(chains, chain_id, client, 1000)
    h.client_order(service, chain_id, client, 1000, f"buy-{chain_id}")
    await h.until(lambda: bool(service.invoices(client.address)), "the mint invoice")
    (minted,) = service.invoices(client.address)
    return minted


async def test_buy_mint_sell_burn_payout_on_chain(
    chains: h.LocalChains, running: Callable[..., h.Running], deployment: Path
) -> None:
    client = Account.from_key(h.CLIENT_KEYS[2])
    service = running()
    minted = await bought(chains, service, TRADING_CHAIN_ID, client)
    await h.check_minted(chains, minted, client.address)
    before = await asyncio.to_thread(_read_sync, chains, client.address)
    assert service.service is not None
    # The client sells from the command line: approve custody, send the sell, wait.
    command = [
        str(Path(sys.executable).with_name("indexmaker")),
        "order", h.INDEX, "sell", f"{minted.filled_quantity:f}",
        "--approve", "--deployment", str(deployment), "--wait", "--wait-timeout", "170",
        "--test-key", "6", "--chain-id", str(TRADING_CHAIN_ID),
        "--url", service.service.server.url, "--id", "sell-1",
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), 180)
    text = out.decode()
    assert process.returncode == 0, text
    assert "approved custody" in text and "redeemed " in text, text

    def redeemed() -> list[RedemptionInvoice]:
        sent = service.sent.to(client.address)
        return [m for m in sent if isinstance(m, RedemptionInvoice)]

    (invoice,) = redeemed()
    assert f"net_paid: {invoice.net_paid:f}" in text and f"payout_tx: {invoice.payout_tx}" in text
    after = await asyncio.to_thread(_read_sync, chains, client.address)
    redeemed_units = index_to_units(invoice.redeemed_quantity)
    assert redeemed_units > 0 and invoice.net_paid > 0
    # Exactly the units sold were burned (out of custody); the rest came back to the client.
    assert before["supply"] - after["supply"] == redeemed_units
    assert after["tokens"] == before["tokens"] - redeemed_units
    assert after["custody_tokens"] == before["custody_tokens"]
    assert sum(index_to_units(b.quantity) for b in invoice.burns) == redeemed_units
    for burn in invoice.burns:
        assert burn.tx_hash is not None
        receipt = await asyncio.to_thread(_receipt_sync, chains, burn.tx_hash)
        assert (
            receipt["status"] == 1 and receipt["to"] == chains.sections[TRADING_CHAIN_ID]["custody"]
        )
    # The client was paid the invoice's net on 8453, by the payout transaction it names.
    assert after["usdc"] - before["usdc"] == usdc_to_units(invoice.net_paid)
    assert invoice.payout_tx is not None
    assert (await asyncio.to_thread(_receipt_sync, chains, invoice.payout_tx))["status"] == 1
    # The exchange withdrew the proceeds under the redemption's id, less its network fee.
    rows = await service.path.chain.wallet.rest.signed(
        "GET", "/sapi/v1/capital/withdraw/history", {"coin": "USDC"}, weight=1
    )
    (row,) = [r for r in rows if r.get("withdrawOrderId")]
    assert row["status"] == 6 and row["txId"].startswith("0x")
    assert invoice.withdrawal_fee == Decimal(row["transactionFee"]) == Decimal("0.1")
    assert units_to_usdc(usdc_to_units(Decimal(row["amount"]))) == invoice.net_paid
