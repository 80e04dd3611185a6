"""`indexmaker demo --chains` (run by `make demo`): the whole collateral path on local chains
(issue 11, SPEC §1 and §7), every piece a real process or socket on 127.0.0.1.

Two anvil nodes (42161 source, 8453 trading) are started and stopped by PID, the contracts and
Across's spoke pools deployed, the exchange simulator started as a child process watching 8453
for deposits, and the service runs on the Binance connector, the chain and bridge ports and our
Across relayer. Four clients (anvil's public accounts 4-7) deposit USDC into custody, two on
each chain, and buy the index over FIX/JSON with the SDK; the demo prints the transactions of
each step, the fees per route, and balances read from the chains (index tokens in the clients'
wallets on 8453, custody, the exchange's credited deposits), checks each invoice's hash against
custody, and writes the invoices to `out/chain-invoices.json`; then a client of each chain
redeems half of its tokens on chain (app/demo_redeem.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3

from indexmaker.app.binance_wiring import binance_venue
from indexmaker.app.chain_return import RETURN_HOPS
from indexmaker.app.chain_wiring import (
    ChainPathSettings,
    LocalChains,
    chain_path,
    exchange_sim_args,
    exchange_sim_env,
    start_local_chains,
)
from indexmaker.app.cli_client import ANVIL_TEST_KEYS
from indexmaker.app.config import ServiceConfig
from indexmaker.app.demo_redeem import redeem_on_chain, write_redemptions
from indexmaker.app.service import Service, index_pairs
from indexmaker.chain import artifacts
from indexmaker.chain.deploy import SOURCE_CHAIN_ID, TRADING_CHAIN_ID, connect
from indexmaker.core.money import index_to_units, units_to_index, units_to_usdc
from indexmaker.engine.config import SolverConfig
from indexmaker.server.client import IndexMakerClient
from indexmaker.server.ws_server import ServerConfig
from indexmaker.venues.binance.venue import BinanceVenue

INDEX = "SYL2"  # 16 pairs: orders stay well inside the venue's order-rate limit
# (anvil account, chain deposited on, USDC): two clients per chain.
CLIENTS = (
    (4, TRADING_CHAIN_ID, 1000),
    (5, TRADING_CHAIN_ID, 2500),
    (6, SOURCE_CHAIN_ID, 1500),
    (7, SOURCE_CHAIN_ID, 3000),
)
CHAIN_NAMES = {SOURCE_CHAIN_ID: "Arbitrum 42161", TRADING_CHAIN_ID: "Base 8453"}
MINT_TIMEOUT_S = 180.0


def _say(text: str) -> None:
    print(text, flush=True)


def run_chain_demo(out_dir: Path = Path("out")) -> dict[str, Any]:
    """Run the demo; its summary ({"ok": bool, ...})."""
    logger = logging.getLogger("indexmaker")
    level = logger.level
    logger.setLevel(logging.ERROR)  # the service's own logs would drown the demo's lines
    # SIGTERM unwinds like Ctrl-C, so the chains and the simulator are stopped by PID.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return asyncio.run(_run(out_dir))
    finally:
        logger.setLevel(level)
        signal.signal(signal.SIGTERM, previous)


async def _run(out_dir: Path) -> dict[str, Any]:
    started = time.monotonic()
    _say(
        "==> starting anvil for 42161 and 8453 on 127.0.0.1, deploying USDC, custody, "
        f"Across spoke pools and the {INDEX} token"
    )
    chains = await asyncio.to_thread(start_local_chains, [INDEX])
    try:
        for chain_id, section in chains.sections.items():
            _say(
                f"    {CHAIN_NAMES[chain_id]:15} {chains.url(chain_id)}  custody "
                f"{section['custody']}  spoke pool {section['spoke_pool']}"
            )
        await asyncio.to_thread(_fund, chains)
        _say(
            "==> starting the exchange simulator (watching 8453 for deposits, paying "
            "withdrawals there from its hot wallet)"
        )
        args = [*exchange_sim_args(chains), "--indexes", INDEX]
        env = exchange_sim_env(chains)  # its hot wallet pays withdrawals on 8453
        venue, sim = await asyncio.to_thread(binance_venue, index_pairs([INDEX]), args, env)
        try:
            summary = await _with_service(chains, venue, out_dir)
        finally:
            if sim is not None:
                sim.stop()
    finally:
        chains.stop()
    summary["seconds"] = round(time.monotonic() - started, 1)
    _say(
        f"==> {'done' if summary['ok'] else 'FAILED'} in {summary['seconds']} s; "
        "chains and exchange simulator stopped"
    )
    return summary


def _fund(chains: LocalChains) -> None:
    """Local USDC for each client, minted by the issuer before the service sends anything
    from the same account (one nonce sequence per sender)."""
    for account, chain_id, amount in CLIENTS:
        holder = Account.from_key(ANVIL_TEST_KEYS[account]).address
        chains.mint_usdc(chain_id, holder, Decimal(amount))


def _deposit(chains: LocalChains, key: str, chain_id: int, amount: int) -> str:
    """The client's own approve + Custody.deposit: the deposit's tx hash."""
    client = Account.from_key(key)
    w3 = connect(chains.url(chain_id), client)
    section = chains.sections[chain_id]
    usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
    custody = w3.eth.contract(address=section["custody"], abi=artifacts.ours("Custody")["abi"])
    receipt: Any = None
    for call in (
        usdc.functions.approve(custody.address, amount * 10**6),
        custody.functions.deposit(amount * 10**6),
    ):
        receipt = w3.eth.wait_for_transaction_receipt(call.transact({"gas": 300_000}), timeout=30)
    return "0x" + bytes(receipt["transactionHash"]).hex()


async def _with_service(chains: LocalChains, venue: BinanceVenue, out_dir: Path) -> dict[str, Any]:
    path = chain_path(chains, venue.rest, ChainPathSettings(relayer_delay_s=0.5, poll_s=0.1))
    config = ServiceConfig(
        indexes=(INDEX,),
        server=ServerConfig(host="127.0.0.1", port=0),
        # A client of 42161 is paid there: the proceeds cross back (app/chain_return.py).
        solver=SolverConfig(mint_idle=timedelta(seconds=1), return_hops=RETURN_HOPS),
    )
    service = Service(config, venue=venue, chain=path.chain, bridges=path.bridges)
    await service.start()
    path.relayer.start()
    try:
        _say(
            f"==> service at {service.server.url}; exchange deposit address (asked from its "
            f"API) {path.chain.deposit_address}"
        )
        _say("==> clients deposit into custody")
        deposits = {}
        for account, chain_id, amount in CLIENTS:
            key = ANVIL_TEST_KEYS[account]
            tx = await asyncio.to_thread(_deposit, chains, key, chain_id, amount)
            deposits[account] = tx
            _say(
                f"    {Account.from_key(key).address}  {amount:>5} USDC on "
                f"{CHAIN_NAMES[chain_id]:15} tx {tx}"
            )
        _say(
            f"==> orders over FIX/JSON: buy {INDEX} with each deposit; collateral routes "
            "(42161: custody → Across → 8453 custody → exchange; 8453: custody → exchange)"
        )
        invoices = await asyncio.gather(
            *(_order(service.server.url, ANVIL_TEST_KEYS[a], c, n) for a, c, n in CLIENTS)
        )
        summary = await _report(chains, path, deposits, list(invoices), out_dir)
        # The sell side on chain (app/demo_redeem.py): the 2,500 USDC client of 8453 and the
        # 3,000 USDC client of 42161 (paid there) redeem half of their tokens.
        redemptions = []
        for account, chain_id, _ in (CLIENTS[1], CLIENTS[3]):
            key = ANVIL_TEST_KEYS[account]
            url = service.server.url
            redemptions.append(await redeem_on_chain(chains, url, key, INDEX, chain_id))
        write_redemptions(out_dir, redemptions)
        ok = summary["ok"] and all(r["ok"] for r in redemptions)
        return {**summary, "ok": ok, "redemptions": redemptions}
    finally:
        await service.stop()
        await path.close()


async def _order(url: str, key: str, chain_id: int, amount: int) -> Any:
    async with IndexMakerClient(url, key, chain_id=chain_id, request_timeout=30) as client:
        answer = await client.new_order(INDEX, "buy", amount)
        return await client.wait_minted(answer.client_order_id, MINT_TIMEOUT_S)


def _read_chains(chains: LocalChains, invoices: list[Any]) -> dict[str, Any]:
    """Index-token units in each client's wallet, custody's invoice hash of each payment id,
    USDC left in each custody: read with blocking web3 calls, so run in a worker thread
    (web3's blocking HTTP sessions share a lock with the async ones the service uses)."""
    base = Web3(Web3.HTTPProvider(chains.url(TRADING_CHAIN_ID)))
    section = chains.sections[TRADING_CHAIN_ID]
    token = base.eth.contract(
        address=section["index_tokens"][INDEX], abi=artifacts.ours("IndexToken")["abi"]
    )
    custody = base.eth.contract(address=section["custody"], abi=artifacts.ours("Custody")["abi"])
    units, hashes = [], []
    for (account, _, _), invoice in zip(CLIENTS, invoices, strict=True):
        holder = Account.from_key(ANVIL_TEST_KEYS[account]).address
        units.append(int(token.functions.balanceOf(holder).call()))
        order_id = Web3.keccak(text=invoice.payment_id)
        hashes.append("0x" + bytes(custody.functions.invoiceHashOf(order_id).call()).hex())
    left = {}
    for chain_id in (SOURCE_CHAIN_ID, TRADING_CHAIN_ID):
        w3 = Web3(Web3.HTTPProvider(chains.url(chain_id)))
        sec = chains.sections[chain_id]
        usdc = w3.eth.contract(address=sec["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
        left[chain_id] = units_to_usdc(int(usdc.functions.balanceOf(sec["custody"]).call()))
    return {"units": units, "hashes": hashes, "custody": left}


async def _report(
    chains: LocalChains, path: Any, deposits: dict[int, str], invoices: list[Any], out_dir: Path
) -> dict[str, Any]:
    read = await asyncio.to_thread(_read_chains, chains, invoices)
    ok = True
    rows = []
    _say("==> minted on 8453 (balances read from the chain)")
    for i, ((account, chain_id, amount), invoice) in enumerate(zip(CLIENTS, invoices, strict=True)):
        holder = Account.from_key(ANVIL_TEST_KEYS[account]).address
        units, recorded = read["units"][i], read["hashes"][i]
        good = units == index_to_units(invoice.filled_quantity) and recorded == invoice.invoice_hash
        ok = ok and good
        _say(
            f"    {holder}  from {CHAIN_NAMES[chain_id]:15} {amount:>5} USDC  route fee "
            f"{invoice.management_fee} USDC  {INDEX} {units_to_index(units)} in wallet"
            f"  {'✓' if good else '✗'}"
        )
        _say(
            f"        mint tx {invoice.mint_tx_hash}  invoice hash {invoice.invoice_hash} "
            f"{'(= custody.invoiceHashOf)' if recorded == invoice.invoice_hash else '(MISMATCH)'}"
        )
        rows.append(
            {
                "client": holder,
                "chain_id": chain_id,
                "deposit_tx": deposits[account],
                "amount": str(amount),
                "management_fee": str(invoice.management_fee),
                "filled_quantity": str(invoice.filled_quantity),
                "token_units": str(units),
                "payment_id": invoice.payment_id,
                "mint_tx_hash": invoice.mint_tx_hash,
                "invoice_hash": invoice.invoice_hash,
            }
        )
    history = await path.chain.wallet.rest.signed(
        "GET", "/sapi/v1/capital/deposit/hisrec", {"coin": "USDC"}, weight=1
    )
    credited = [h for h in history if h["status"] in (1, 6)]
    _say(f"==> the exchange credited {len(credited)} deposits on BASE:")
    for h in credited:
        _say(f"    {h['amount']:>16} USDC  tx {h['txId']}  confirmations {h['confirmTimes']}")
    for chain_id, left in read["custody"].items():
        _say(f"    custody on {CHAIN_NAMES[chain_id]:15} holds {left} USDC (gas fees kept)")
    ok = ok and len(credited) >= len(CLIENTS)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "chain-invoices.json").write_text(json.dumps(rows, indent=2) + "\n")
    _say(f"==> invoices written to {out_dir / 'chain-invoices.json'}")
    return {"ok": ok, "clients": rows}
