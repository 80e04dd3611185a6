"""The chain demo's redemptions (issue 12, `indexmaker demo --chains` after the buys): a client
approves custody for half of its index tokens and sells them over FIX/JSON with the
SDK; custody takes the tokens into escrow, the basket is sold on the exchange simulator,
exactly the units sold are burned from custody, the exchange withdraws the proceeds to the
trading chain (its hot wallet pays custody under the redemption's id) and custody pays the
client; a client of 42161 is paid there, after the proceeds crossed Across back. The demo
prints the burn transactions, the client's USDC before and after read from its chain and
the redemption invoice, and writes them to `out/chain-redemption.json`.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3

from indexmaker.app.chain_wiring import LocalChains
from indexmaker.app.cli_output import field_text
from indexmaker.app.cli_redeem import INVOICE_FIELDS
from indexmaker.chain import artifacts
from indexmaker.chain.deploy import TRADING_CHAIN_ID, connect
from indexmaker.core.money import index_to_units, units_to_index, units_to_usdc
from indexmaker.server.client import IndexMakerClient, RedemptionInvoice

REDEEM_TIMEOUT_S = 120.0


def _say(text: str) -> None:
    print(text, flush=True)


def _read(chains: LocalChains, symbol: str, holder: str, chain_id: int) -> dict[str, int]:
    """The holder's index tokens and the token's supply on 8453, and its USDC on `chain_id`
    (blocking web3: run in a worker thread)."""
    w3 = Web3(Web3.HTTPProvider(chains.url(TRADING_CHAIN_ID)))
    section = chains.sections[TRADING_CHAIN_ID]
    token = w3.eth.contract(
        address=section["index_tokens"][symbol], abi=artifacts.ours("IndexToken")["abi"]
    )
    paid_on = Web3(Web3.HTTPProvider(chains.url(chain_id)))
    usdc = paid_on.eth.contract(
        address=chains.sections[chain_id]["usdc"], abi=artifacts.ours("LocalUSDC")["abi"]
    )
    return {
        "tokens": int(token.functions.balanceOf(holder).call()),
        "supply": int(token.functions.totalSupply().call()),
        "usdc": int(usdc.functions.balanceOf(holder).call()),
    }


def _approve(chains: LocalChains, key: str, symbol: str, units: int) -> str:
    """The client's own IndexToken.approve(custody, units): its transaction hash."""
    w3 = connect(chains.url(TRADING_CHAIN_ID), Account.from_key(key))
    section = chains.sections[TRADING_CHAIN_ID]
    token = w3.eth.contract(
        address=section["index_tokens"][symbol], abi=artifacts.ours("IndexToken")["abi"]
    )
    tx = token.functions.approve(section["custody"], units).transact({"gas": 200_000})
    receipt = w3.eth.wait_for_transaction_receipt(tx, timeout=30)
    return "0x" + bytes(receipt["transactionHash"]).hex()


async def redeem_on_chain(
    chains: LocalChains, url: str, key: str, symbol: str, chain_id: int
) -> dict[str, Any]:
    """Sell half the `symbol` tokens of the client of `chain_id` (paid there) and check what
    the chains say; the summary ({"ok": bool, ...})."""
    holder = Account.from_key(key).address
    before = await asyncio.to_thread(_read, chains, symbol, holder, chain_id)
    units = units_to_index(before["tokens"] // 2)  # half, in whole token units
    route = "" if chain_id == TRADING_CHAIN_ID else ", paid there after crossing Across back"
    _say(
        f"==> redemption: {holder} (client of {chain_id}{route}) sells {units} of its "
        f"{units_to_index(before['tokens'])} {symbol}"
    )
    approve_tx = await asyncio.to_thread(_approve, chains, key, symbol, index_to_units(units))
    _say(f"    approve custody for {units} {symbol}: tx {approve_tx}")
    async with IndexMakerClient(url, key, chain_id=chain_id, request_timeout=30) as client:
        answer = await client.new_order(symbol, "sell", units)
        _say(f"    sell order {answer.client_order_id}: {answer.status} ({answer.reason})")
        try:
            invoice = await client.wait_redeemed(answer.client_order_id, REDEEM_TIMEOUT_S)
        except TimeoutError as error:
            _say(f"    FAILED: {error}")
            return {"ok": False, "error": str(error)}
    after = await asyncio.to_thread(_read, chains, symbol, holder, chain_id)
    return _report(invoice, before, after, holder, chain_id)


def _report(
    invoice: RedemptionInvoice,
    before: dict[str, int],
    after: dict[str, int],
    holder: str,
    chain_id: int,
) -> dict[str, Any]:
    burned = before["supply"] - after["supply"]
    paid = units_to_usdc(after["usdc"] - before["usdc"])
    for burn in invoice.burns:
        _say(f"    burn {burn.payment_id}: {burn.quantity} {invoice.symbol}  tx {burn.tx_hash}")
    ok = burned == index_to_units(invoice.redeemed_quantity) and paid == invoice.net_paid
    _say(
        f"    {invoice.symbol} supply fell by {units_to_index(burned)} (redeemed "
        f"{invoice.redeemed_quantity:f}, returned {invoice.returned_quantity:f})  "
        f"{'✓' if burned == index_to_units(invoice.redeemed_quantity) else '✗'}"
    )
    _say(
        f"    USDC of {holder} on {chain_id}: {units_to_usdc(before['usdc'])} → "
        f"{units_to_usdc(after['usdc'])} (+{paid}; invoice net_paid {invoice.net_paid})  "
        f"{'✓' if paid == invoice.net_paid else '✗'}  payout tx {invoice.payout_tx}"
    )
    rows = {
        "client_order_id": invoice.client_order_id,
        "symbol": invoice.symbol,
        **{name: getattr(invoice, name) for name in INVOICE_FIELDS},
        "lots": len(invoice.lots),  # each lot: the SDK record (client_redemption.py)
    }
    _say("    redemption invoice:")
    for name, value in rows.items():
        _say(f"      {name:18} {field_text(value)}")
    record = {
        **{k: str(v) if isinstance(v, Decimal) else v for k, v in rows.items()},
        "burns": [
            {"payment_id": b.payment_id, "quantity": str(b.quantity), "tx_hash": b.tx_hash}
            for b in invoice.burns
        ],
        "usdc_before": str(units_to_usdc(before["usdc"])),
        "usdc_after": str(units_to_usdc(after["usdc"])),
    }
    return {"ok": ok, "chain_id": chain_id, **record}


def write_redemptions(out_dir: Path, records: list[dict[str, Any]]) -> None:
    """The redemption invoices of the chain demo as JSON in `out_dir`/chain-redemption.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "chain-redemption.json").write_text(json.dumps(records, indent=2) + "\n")
    _say(f"==> redemption invoices written to {out_dir / 'chain-redemption.json'}")
