"""The collateral path's harness: two anvils with everything deployed (one pair per test
module: custody refuses a payment id twice, and each module's service numbers its own), the
exchange-sim process watching 8453 as the service's venue and exchange wallet, the service on
the chain and bridge ports, clients' own deposits and orders."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from indexmaker.app.binance_wiring import ExchangeSimProcess, binance_venue
from indexmaker.app.chain_durability import make_durable
from indexmaker.app.chain_return import RETURN_HOPS
from indexmaker.app.chain_wiring import (
    ChainPathSettings,
    LocalChains,
    chain_path,
    exchange_sim_args,
    exchange_sim_env,
)
from indexmaker.app.cli_client import ANVIL_TEST_KEYS
from indexmaker.app.config import ServiceConfig, StoreConfig
from indexmaker.app.service import Service
from indexmaker.chain import artifacts
from indexmaker.chain.deploy import TRADING_CHAIN_ID, connect
from indexmaker.core.events import MintInvoice, NewIndexOrderRequest
from indexmaker.core.ids import ClientOrderId, Symbol, client_key
from indexmaker.core.money import index_to_units, usdc_to_units
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.invoices import invoice_hash
from indexmaker.model.side import Side
from indexmaker.server.ws_server import ServerConfig
from indexmaker.store.chain_txs import SqlChainTxs, open_chain_txs

from ..conftest import SentLog

INDEX = "SYL2"  # 16 pairs: the smallest bundled index
CLIENT_KEYS = ANVIL_TEST_KEYS[4:7]  # anvil's public accounts 4-6: this module's clients
FAST = ChainPathSettings(relayer_delay_s=0.2, poll_s=0.1, hop_timeout_s=60.0)


def service_config(data_dir: Path | None) -> ServiceConfig:
    return ServiceConfig(
        indexes=(INDEX,),
        server=ServerConfig(host="127.0.0.1", port=0),
        solver=SolverConfig(mint_idle=timedelta(seconds=1), return_hops=RETURN_HOPS),
        store=StoreConfig(data_dir=data_dir),
    )


class Running:
    """The service on the chains and the exchange-sim process (its venue and its wallet)."""

    def __init__(
        self,
        chains: LocalChains,
        pairs: list[str],
        data_dir: Path | None,
        settings: ChainPathSettings = FAST,
    ) -> None:
        self.chains, self.pairs, self.data_dir = chains, pairs, data_dir
        self.settings = settings
        self.sent = SentLog()
        self.sim: ExchangeSimProcess | None = None
        self.service: Service | None = None
        self.txs: SqlChainTxs | None = None

    async def start(self, relayer: bool = True) -> None:
        args = [*exchange_sim_args(self.chains), "--indexes", INDEX]
        venue, self.sim = binance_venue(self.pairs, args, exchange_sim_env(self.chains))
        self.path = chain_path(self.chains, venue.rest, self.settings)
        self.service = Service(
            service_config(self.data_dir),
            venue=venue,
            chain=self.path.chain,
            bridges=self.path.bridges,
        )
        self.service.runtime.observers.append(self.sent)
        # The chain ports' cursors and pending transactions in the service's store.
        self.txs = open_chain_txs(service_config(self.data_dir).store)
        ports, store = self.path.chain.ports.values(), self.service.store
        make_durable(ports, store, self.service.runtime, self.txs, self.path.root_bundles())
        await self.service.start()
        if relayer:
            self.path.relayer.start()

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()
            await self.path.close()
        if self.sim is not None:
            self.sim.stop()
        if self.txs is not None:
            self.txs.close()
            self.txs = None

    def invoices(self, address: str) -> list[MintInvoice]:
        return [m for m in self.sent.to(address) if isinstance(m, MintInvoice)]


def _deposit_sync(
    chains: LocalChains, chain_id: int, client: LocalAccount, amount: int | Decimal
) -> None:
    """The client's own deposit into custody (approve, then Custody.deposit), in USDC."""
    units = usdc_to_units(Decimal(amount))
    w3 = connect(chains.url(chain_id), client)
    section = chains.sections[chain_id]
    usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
    custody = w3.eth.contract(address=section["custody"], abi=artifacts.ours("Custody")["abi"])
    for call in (
        usdc.functions.approve(custody.address, units),
        custody.functions.deposit(units),
    ):
        receipt = w3.eth.wait_for_transaction_receipt(call.transact({"gas": 300_000}), timeout=30)
        assert receipt["status"] == 1


def client_order(
    running: Running, chain_id: int, client: LocalAccount, amount: int, cid: str
) -> None:
    assert running.service is not None
    key = client_key(chain_id, client.address)
    running.service.runtime.submit(
        NewIndexOrderRequest(key, ClientOrderId(cid), Symbol(INDEX), Side.BUY, Decimal(amount))
    )


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 120.0) -> None:
    """Wait for `condition` (evaluated in a worker thread: it may call blocking web3)."""
    for _ in range(int(timeout_s / 0.1)):  # bounded
        if await asyncio.to_thread(condition):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout_s}s")


def _base(chains: LocalChains, address: str, name: str) -> Any:
    w3 = Web3(Web3.HTTPProvider(chains.url(TRADING_CHAIN_ID)))
    return w3.eth.contract(
        address=Web3.to_checksum_address(address), abi=artifacts.ours(name)["abi"]
    )


def _check_minted_sync(chains: LocalChains, invoice: MintInvoice, holder: str) -> None:
    """The tokens are in the holder's wallet, and the chain holds the invoice's hash."""
    section = chains.sections[TRADING_CHAIN_ID]
    token = _base(chains, section["index_tokens"][INDEX], "IndexToken")
    assert token.functions.balanceOf(holder).call() == index_to_units(invoice.filled_quantity)
    custody = _base(chains, section["custody"], "Custody")
    on_chain = custody.functions.invoiceHashOf(Web3.keccak(text=invoice.payment_id)).call()
    assert invoice.invoice_hash == invoice_hash(invoice) == "0x" + bytes(on_chain).hex()
    w3 = Web3(Web3.HTTPProvider(chains.url(TRADING_CHAIN_ID)))
    assert invoice.mint_tx_hash is not None
    receipt = w3.eth.get_transaction_receipt(invoice.mint_tx_hash)
    assert receipt["status"] == 1 and receipt["to"] == section["custody"]


# Blocking web3 runs in worker threads: its HTTP sessions share a lock with the service's async
# web3 calls on the event loop, and a blocking call on the loop's thread can deadlock on it.


async def client_deposit(
    chains: LocalChains, chain_id: int, client: LocalAccount, amount: int | Decimal
) -> None:
    await asyncio.to_thread(_deposit_sync, chains, chain_id, client, amount)


async def check_minted(chains: LocalChains, invoice: MintInvoice, holder: str) -> None:
    await asyncio.to_thread(_check_minted_sync, chains, invoice, holder)


async def custody_usdc(chains: LocalChains, chain_id: int) -> int:
    """USDC units custody holds on `chain_id`."""

    def read() -> int:
        section = chains.sections[chain_id]
        w3 = Web3(Web3.HTTPProvider(chains.url(chain_id)))
        usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
        return int(usdc.functions.balanceOf(section["custody"]).call())

    return await asyncio.to_thread(read)
