"""The collateral path on local chains (issue 11): two anvil nodes started by PID, our
contracts and Across's pools deployed, our relayer, and the chain and bridge ports of the
service (chain/routing.py, chain/bridge.py) trading through the exchange simulator, which
watches the trading chain for deposits.

Keys: the issuer (deployer, custody's issuer) is `INDEXMAKER_DEPLOYER_KEY` or anvil's public
account 0; the relayer is anvil's public account 1: both are well-known local test keys, only
ever used against chains this module started. The relayer is given a USDC float on the trading
chain (LocalUSDC mints to anyone its deployer names); the relayer's repayment on the source
chain (chain/across.py's refund root) is not posted here. The exchange simulator's hot wallet
(anvil's public account 9, handed to it in `$EXCHANGE_SIM_HOT_WALLET_KEY`) gets a USDC float on
the trading chain too: it pays the exchange's withdrawals (a redemption's proceeds) there. The
relayer also fills the way back (8453 → 42161, app/chain_return.py) from a float on 42161.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import AsyncHTTPProvider, AsyncWeb3, Web3

from indexmaker.app.binance_wiring import binance_venue
from indexmaker.app.chain_durability import make_durable
from indexmaker.app.chain_return import RETURN_HOPS, return_path
from indexmaker.app.config import ServiceConfig
from indexmaker.app.service import Service, index_pairs
from indexmaker.chain import anvil, artifacts
from indexmaker.chain.bridge import AcrossBridge, AcrossRoute
from indexmaker.chain.connector import ChainSettings, Web3ChainPort, disconnect
from indexmaker.chain.deploy import (
    ANVIL_KEY_0,
    DEPLOYER_KEY_ENV,
    SOURCE_CHAIN_ID,
    TRADING_CHAIN_ID,
    connect,
    deploy_chain,
    transact,
)
from indexmaker.chain.eth_price import VenueEthPrice
from indexmaker.chain.exchange_wallet import ExchangeWallet
from indexmaker.chain.relayer import AcrossRelayer
from indexmaker.chain.routing import RoutedChainPort
from indexmaker.chain.tx import TxSender
from indexmaker.core.ids import Designation
from indexmaker.core.ports import BridgePort, ChainPort, VenuePort
from indexmaker.engine.engine import EXCHANGE_ACCOUNT, SOURCE_CHAIN, TRADING_CHAIN
from indexmaker.observability.logging import log_event
from indexmaker.store.chain_txs import SqlChainTxs, open_chain_txs
from indexmaker.venues.binance.rest import BinanceRest
from indexmaker.venues.binance_sim.config import HOT_WALLET_KEY_ENV

# anvil's public account 1 (the "test … junk" mnemonic): the relayer on local chains only.
ANVIL_KEY_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
# anvil's public account 9: the exchange simulator's hot wallet on local chains only.
ANVIL_KEY_9 = "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"
DESIGNATIONS = {SOURCE_CHAIN_ID: SOURCE_CHAIN, TRADING_CHAIN_ID: TRADING_CHAIN}
USDC_UNITS = 10**6
# service.py's _serve_until_signal(config, venue, chain, bridges, prepare)
ServeFn = Callable[
    [
        ServiceConfig,
        VenuePort | None,
        ChainPort | None,
        Mapping[str, BridgePort] | None,
        Callable[[Service], None] | None,
    ],
    Awaitable[None],
]


@dataclass(frozen=True)
class ChainPathSettings:
    """Figures of the path: confirmations a deposit needs (blocks on top of its own), the
    Across relayer's fee (USDC) and delay (s), ETH in USDC for gas fees when the venue has no
    ETHUSDC price (chain/eth_price.py), how long a hop
    may take (s), the relayer's USDC float on the trading chain."""

    confirmations: int = 0
    bridge_fee: Decimal = Decimal("0.10")
    relayer_delay_s: float = 0.5
    eth_usdc: Decimal = Decimal(3000)
    hop_timeout_s: float = 120.0
    relayer_float: Decimal = Decimal(10_000_000)
    poll_s: float = 0.2


@dataclass
class LocalChains:
    """Two anvil nodes (by chain id) and what was deployed on them (deploy.py's sections)."""

    nodes: dict[int, anvil.AnvilNode]
    sections: dict[int, dict[str, Any]]
    issuer: LocalAccount
    relayer: LocalAccount = field(default_factory=lambda: Account.from_key(ANVIL_KEY_1))
    hot_wallet: LocalAccount = field(default_factory=lambda: Account.from_key(ANVIL_KEY_9))

    def url(self, chain_id: int) -> str:
        return self.nodes[chain_id].url

    def stop(self) -> None:
        for node in self.nodes.values():
            anvil.stop(node.pid)

    def mint_usdc(self, chain_id: int, to: str, amount: Decimal) -> None:
        """Local USDC out of thin air (LocalUSDC lets its deployer mint): test funds."""
        w3 = connect(self.url(chain_id), self.issuer)
        usdc = w3.eth.contract(
            address=self.sections[chain_id]["usdc"], abi=artifacts.ours("LocalUSDC")["abi"]
        )
        units = int(amount * USDC_UNITS)
        transact(w3, usdc.functions.mint(Web3.to_checksum_address(to), units), "mint USDC")


def start_local_chains(
    indexes: list[str],
    float_usdc: Decimal = Decimal(10_000_000),
    states: Mapping[int, Path] | None = None,
    deployed: Mapping[int, dict[str, Any]] | None = None,
) -> LocalChains:
    """Start 42161 and 8453 on free loopback ports, deploy, fund the relayer; stops what it
    started if anything fails (anvil.AnvilError, deploy.DeployError, artifacts.ArtifactError).
    `states`: each chain's anvil `--state` file (app/kept_chains.py); `deployed`: the sections
    of a deployment those states already hold (nothing deployed or funded again)."""
    if artifacts.stale():
        artifacts.compile_contracts()
    issuer: LocalAccount = Account.from_key(os.environ.get(DEPLOYER_KEY_ENV) or ANVIL_KEY_0)
    chains = LocalChains({}, {}, issuer)
    try:
        for chain_id in (SOURCE_CHAIN_ID, TRADING_CHAIN_ID):
            node = anvil.start(chain_id, state=None if states is None else states[chain_id])
            chains.nodes[chain_id] = node
            if deployed is not None:
                chains.sections[chain_id] = dict(deployed[chain_id])
                continue
            w3 = connect(node.url, issuer)
            symbols = indexes if chain_id == TRADING_CHAIN_ID else []
            chains.sections[chain_id] = deploy_chain(w3, chain_id, symbols)
        if deployed is None:
            chains.mint_usdc(TRADING_CHAIN_ID, chains.relayer.address, float_usdc)
            chains.mint_usdc(SOURCE_CHAIN_ID, chains.relayer.address, float_usdc)  # fills back
            chains.mint_usdc(TRADING_CHAIN_ID, chains.hot_wallet.address, float_usdc)
    except BaseException:
        chains.stop()
        raise
    return chains


def exchange_sim_args(chains: LocalChains) -> list[str]:
    """exchange-sim options that make it watch the trading chain for deposits."""
    section = chains.sections[TRADING_CHAIN_ID]
    return ["--chain-rpc", chains.url(TRADING_CHAIN_ID), "--chain-usdc", section["usdc"]]


def exchange_sim_env(chains: LocalChains) -> dict[str, str]:
    """exchange-sim's environment on local chains: its hot wallet's (public test) key."""
    return {HOT_WALLET_KEY_ENV: "0x" + bytes(chains.hot_wallet.key).hex()}


class RelayerTask:
    """Our Across relayers (42161 → 8453, and back: app/chain_return.py) as background tasks
    of this process; `relayer` is the first."""

    def __init__(self, relayer: AcrossRelayer, *others: AcrossRelayer) -> None:
        self.relayer, self.relayers = relayer, (relayer, *others)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(r.run(self._stop)) for r in self.relayers]

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            await task
        self._tasks = []


async def serve_on_local_chains(config: ServiceConfig, serve_until_signal: ServeFn) -> None:
    """`serve --chain anvil`: local chains started (or loaded) and deployed, the exchange
    simulator watching 8453 as the venue, our relayer; everything stopped by PID at the end.
    With a data directory the chains are kept there across restarts (app/kept_chains.py) with
    the journal beside them, and the chain ports' cursors and pending transactions are in
    that journal's store (app/chain_durability.py). Without one (memory or PostgreSQL store)
    the chains start empty each time and the journal stays in memory: a journal of an earlier
    run would name deposits and mints fresh chains never saw."""
    from indexmaker.app.kept_chains import kept_dir, start_kept_chains

    data_dir = config.store.data_dir
    if data_dir is None:
        chains = await asyncio.to_thread(start_local_chains, list(config.indexes))
        store = replace(config.store, data_dir=None, url=None)
    else:
        directory = kept_dir(data_dir)
        chains, resumed = await asyncio.to_thread(
            start_kept_chains, list(config.indexes), directory
        )
        log_event("local_chains_kept", directory=str(directory), resumed=resumed)
        store = replace(config.store, data_dir=directory, url=None)
    exchange_sim = None
    txs: SqlChainTxs | None = None
    try:
        for chain_id, section in sorted(chains.sections.items()):
            log_event(
                "local_chain",
                chain_id=chain_id,
                rpc=chains.url(chain_id),
                custody=section["custody"],
                usdc=section["usdc"],
                spoke_pool=section["spoke_pool"],
                confirmations=config.chain.confirmations,
            )
        args = [*exchange_sim_args(chains), "--indexes", ",".join(config.indexes)]
        env = exchange_sim_env(chains)
        venue, exchange_sim = binance_venue(index_pairs(config.indexes), args, env)
        path = chain_path(chains, venue.rest, path_settings(config))
        txs = open_chain_txs(store)

        def durable(service: Service) -> None:
            make_durable(path.chain.ports.values(), service.store, service.runtime, txs)

        path.relayer.start()
        try:
            kept = replace(
                config,
                store=store,
                solver=replace(config.solver, return_hops=RETURN_HOPS),  # 42161 paid there
            )
            await serve_until_signal(kept, venue, path.chain, path.bridges, durable)
        finally:
            await path.close()
    finally:
        if txs is not None:
            txs.close()
        if exchange_sim is not None:
            exchange_sim.stop()
        chains.stop()


def path_settings(config: ServiceConfig) -> ChainPathSettings:
    """The `[chain]` settings as the path's figures."""
    chain = config.chain
    return ChainPathSettings(
        confirmations=chain.confirmations,
        bridge_fee=chain.bridge_fee,
        relayer_delay_s=chain.relayer_delay.total_seconds(),
        eth_usdc=chain.eth_usdc,
        hop_timeout_s=chain.hop_timeout.total_seconds(),
    )


@dataclass
class ChainPath:
    chain: RoutedChainPort
    bridges: dict[str, AcrossBridge]
    relayer: RelayerTask
    clients: list[AsyncWeb3[Any]] = field(default_factory=list)  # besides the ports' own

    async def close(self) -> None:
        """Stop the relayer and close the RPC clients this path made (after the service
        stopped its ports)."""
        await self.relayer.stop()
        for w3 in self.clients:
            await disconnect(w3)


def chain_path(
    chains: LocalChains, rest: BinanceRest, settings: ChainPathSettings | None = None
) -> ChainPath:
    """The service's chain port, its `across` bridge and our relayer over `chains`; the
    exchange's deposit address is asked through `rest` (signed SAPI) when the port starts."""
    s = settings or ChainPathSettings()
    ports: dict[Designation, Web3ChainPort] = {}
    for chain_id, designation in DESIGNATIONS.items():
        section = chains.sections[chain_id]
        config = ChainSettings(
            chain_id=chain_id,
            rpc_url=chains.url(chain_id),
            custody=section["custody"],
            usdc=section["usdc"],
            designation=designation,
            index_tokens=section["index_tokens"],
            confirmations=s.confirmations,
            poll_s=s.poll_s,
        )
        ports[designation] = Web3ChainPort(config, chains.issuer)
    src, dst = chains.sections[SOURCE_CHAIN_ID], chains.sections[TRADING_CHAIN_ID]
    dest_w3: AsyncWeb3[Any] = AsyncWeb3(AsyncHTTPProvider(chains.url(TRADING_CHAIN_ID)))
    route = AcrossRoute(
        dest_chain_id=TRADING_CHAIN_ID,
        origin_pool=src["spoke_pool"],
        origin_pool_contract=src["spoke_pool_contract"],
        dest_pool=dst["spoke_pool"],
        dest_pool_contract=dst["spoke_pool_contract"],
        output_token=dst["usdc"],
        recipient=dst["custody"],  # the trading chain's custody is the issuer's trading wallet
        fee=s.bridge_fee,
        timeout_s=s.hop_timeout_s,
        poll_s=s.poll_s,
        eth_usdc=s.eth_usdc,
    )
    # Gas is charged at the venue's ETHUSDC mid; s.eth_usdc only when no price is known.
    price = VenueEthPrice(rest, s.eth_usdc)
    bridge = AcrossBridge(ports[SOURCE_CHAIN], dest_w3, route, price)
    routed = RoutedChainPort(
        ports,
        TRADING_CHAIN,
        EXCHANGE_ACCOUNT,
        ExchangeWallet(rest, poll_s=s.poll_s),
        eth_usdc=s.eth_usdc,
        timeout_s=s.hop_timeout_s,
        price=price,
    )
    source_w3: AsyncWeb3[Any] = AsyncWeb3(AsyncHTTPProvider(chains.url(SOURCE_CHAIN_ID)))
    relayer = AcrossRelayer(
        source_w3,
        SOURCE_CHAIN_ID,
        src["spoke_pool"],
        src["spoke_pool_contract"],
        TxSender(dest_w3, chains.relayer),
        dest_w3,
        TRADING_CHAIN_ID,
        dst["spoke_pool"],
        dst["spoke_pool_contract"],
        delay_s=s.relayer_delay_s,
        poll_s=s.poll_s,
    )
    w3s = {SOURCE_CHAIN_ID: source_w3, TRADING_CHAIN_ID: dest_w3}
    back, back_relayer = return_path(
        chains.sections,
        ports[TRADING_CHAIN],
        w3s,
        TxSender(source_w3, chains.relayer),
        route,
        price,
        s.relayer_delay_s,
    )
    bridges = {"across": bridge, back.name: back}
    return ChainPath(routed, bridges, RelayerTask(relayer, back_relayer), [dest_w3, source_w3])
