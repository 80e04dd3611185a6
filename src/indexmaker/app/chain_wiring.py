"""The collateral path on local chains (issue 11): two anvil nodes started by PID, our
contracts and Across's pools deployed, our relayer, and the chain and bridge ports of the
service (chain/routing.py, chain/bridge.py) trading through the exchange simulator, which
watches the trading chain for deposits.

Keys: the issuer (deployer, custody's issuer) is `INDEXMAKER_DEPLOYER_KEY` or anvil's public
account 0; the relayer is anvil's public account 1: both are well-known local test keys, only
ever used against chains this module started. The relayer is given a USDC float on the trading
chain (LocalUSDC mints to anyone its deployer names); after each fill it is repaid the
deposit's input on the origin chain from a one-leaf refund bundle posted by the issuer as the
pools' cross-domain admin (chain/root_bundles.py), as are expired bridge deposits. The
exchange simulator's hot wallet (anvil's public account 9, handed to it in
`$EXCHANGE_SIM_HOT_WALLET_KEY`) gets a USDC float on the trading chain too: it pays the
exchange's withdrawals (a redemption's proceeds) there. The relayer also fills the way back
(8453 → 42161, app/chain_return.py) from a float on 42161.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3, Web3

from indexmaker.app.chain_return import return_path
from indexmaker.app.config import ServiceConfig
from indexmaker.chain import anvil, artifacts
from indexmaker.chain.bridge import AcrossBridge, route_between
from indexmaker.chain.connector import ChainSettings, Web3ChainPort, disconnect
from indexmaker.chain.deploy import (
    ANVIL_KEY_0,
    DEPLOYER_KEY_ENV,
    SOURCE_CHAIN_ID,
    TRADING_CHAIN_ID,
    connect,
    deploy_chain,
    first_block,
    install_admin_relay,
    transact,
)
from indexmaker.chain.eth_price import VenueEthPrice
from indexmaker.chain.exchange_wallet import ExchangeWallet
from indexmaker.chain.failover import rpc_provider
from indexmaker.chain.relayer import AcrossRelayer, relayer_between
from indexmaker.chain.root_bundles import RootBundles
from indexmaker.chain.route_costs import ACROSS_GAS, RELEASE_GAS, RouteCostQuoter, RouteLeg
from indexmaker.chain.routing import RoutedChainPort
from indexmaker.chain.tx import TxSender
from indexmaker.core.ids import Designation
from indexmaker.engine.engine import EXCHANGE_ACCOUNT, SOURCE_CHAIN, TRADING_CHAIN
from indexmaker.venues.binance.rest import BinanceRest
from indexmaker.venues.binance_sim.config import HOT_WALLET_KEY_ENV

# anvil's public account 1 (the "test … junk" mnemonic): the relayer on local chains only.
ANVIL_KEY_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
# anvil's public account 9: the exchange simulator's hot wallet on local chains only.
ANVIL_KEY_9 = "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"
DESIGNATIONS = {SOURCE_CHAIN_ID: SOURCE_CHAIN, TRADING_CHAIN_ID: TRADING_CHAIN}
USDC_UNITS = 10**6


@dataclass(frozen=True)
class ChainPathSettings:
    """Figures of the path: confirmations a deposit needs (blocks on top of its own), the
    Across relayer's fee (USDC) and delay (s), ETH in USDC for gas fees when the venue has no
    ETHUSDC price (chain/eth_price.py), how long a hop's step
    may take (s), an Across deposit's fill deadline (s), the relayer's USDC float on the
    trading chain."""

    confirmations: int = 0
    bridge_fee: Decimal = Decimal("0.10")
    relayer_delay_s: float = 0.5
    eth_usdc: Decimal = Decimal(3000)
    hop_timeout_s: float = 120.0
    fill_deadline_s: int = 3600
    relayer_float: Decimal = Decimal(10_000_000)
    poll_s: float = 0.2
    log_chunk_blocks: int = 10_000  # blocks per eth_getLogs of a hop's look-ups (chain/logs.py)


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

    def urls(self, chain_id: int) -> tuple[str, ...]:
        """The chain's JSON-RPC URLs, the one to try first first (one node each here)."""
        return (self.url(chain_id),)

    def live_url(self, chain_id: int) -> str:
        return self.url(chain_id)

    def ws_url(self, chain_id: int) -> str | None:
        """anvil serves WebSocket JSON-RPC on its HTTP port."""
        return self.nodes[chain_id].ws_url

    def shown_url(self, chain_id: int) -> str:
        return self.url(chain_id)  # a local node's: nothing secret in it

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
    start_node: Callable[..., anvil.AnvilNode] = anvil.start,
) -> LocalChains:
    """Start 42161 and 8453 on free loopback ports, deploy, fund the relayer; stops what it
    started if anything fails (anvil.AnvilError, deploy.DeployError, artifacts.ArtifactError).
    `states`: each chain's anvil `--state` file (app/kept_chains.py); `deployed`: the sections
    of a deployment those states already hold (nothing deployed or funded again);
    `start_node(chain_id, state=)`: anvil.start, or one that adopts a running node
    (app/local_peers.py)."""
    if artifacts.stale():
        artifacts.compile_contracts()
    issuer: LocalAccount = Account.from_key(os.environ.get(DEPLOYER_KEY_ENV) or ANVIL_KEY_0)
    chains = LocalChains({}, {}, issuer)
    try:
        for chain_id in (SOURCE_CHAIN_ID, TRADING_CHAIN_ID):
            node = start_node(chain_id, state=None if states is None else states[chain_id])
            chains.nodes[chain_id] = node
            if deployed is not None:
                section = chains.sections[chain_id] = dict(deployed[chain_id])
                if "admin_relay" not in section:  # kept before refund bundles existed
                    w3 = connect(node.url, issuer)
                    section["admin_relay"] = install_admin_relay(w3, chain_id, issuer.address)
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


def exchange_sim_args(chains: Chains) -> list[str]:
    """exchange-sim options that make it watch the trading chain for deposits (at the URL
    that answered at start)."""
    section = chains.sections[TRADING_CHAIN_ID]
    return [
        "--chain-rpc", chains.live_url(TRADING_CHAIN_ID), "--chain-usdc", section["usdc"],
        "--chain-start-block", str(first_block(section)),
    ]  # fmt: skip


def exchange_sim_env(chains: LocalChains) -> dict[str, str]:
    """exchange-sim's environment on local chains: its hot wallet's (public test) key."""
    return {HOT_WALLET_KEY_ENV: "0x" + bytes(chains.hot_wallet.key).hex()}


class RelayerTask:
    """Our Across relayers (42161 → 8453, and back: app/chain_return.py) as background tasks
    of this process (none on external chains without a relayer key)."""

    def __init__(self, *relayers: AcrossRelayer) -> None:
        self.relayers = relayers
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(r.run(self._stop)) for r in self.relayers]

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            await task
        self._tasks = []


def path_settings(config: ServiceConfig) -> ChainPathSettings:
    """The `[chain]` settings as the path's figures."""
    chain = config.chain
    return ChainPathSettings(
        confirmations=chain.confirmations,
        bridge_fee=chain.bridge_fee,
        relayer_delay_s=chain.relayer_delay.total_seconds(),
        eth_usdc=chain.eth_usdc,
        hop_timeout_s=chain.hop_timeout.total_seconds(),
        fill_deadline_s=int(chain.fill_deadline.total_seconds()),
        log_chunk_blocks=chain.log_chunk_blocks,
    )


@dataclass
class ChainPath:
    chain: RoutedChainPort
    bridges: dict[str, AcrossBridge]
    relayer: RelayerTask
    clients: list[AsyncWeb3[Any]] = field(default_factory=list)  # besides the ports' own

    def root_bundles(self) -> list[RootBundles]:
        """Every refund-bundle poster of the path: the bridges' refunds of expired deposits
        and the relayers' repayments (each keeps its paid leaves in the store: make_durable)."""
        out = [bridge.refunds for bridge in self.bridges.values()]
        return out + [r.repay for r in self.relayer.relayers if r.repay is not None]

    async def close(self) -> None:
        """Stop the relayer and close the RPC clients this path made (after the service
        stopped its ports)."""
        await self.relayer.stop()
        for w3 in self.clients:
            await disconnect(w3)


class Chains(Protocol):
    """The two chains of the path: local (LocalChains) or external (app/external_chains.py)."""

    @property
    def sections(self) -> dict[int, dict[str, Any]]:
        """deploy.py's section (addresses) of each chain, by chain id."""
        ...

    @property
    def issuer(self) -> LocalAccount: ...

    @property
    def relayer(self) -> LocalAccount | None:
        """Our Across relayer's account; None: no relayer of ours (others fill)."""
        ...

    def urls(self, chain_id: int) -> tuple[str, ...]:
        """The chain's JSON-RPC URLs in the order our clients try them."""
        ...

    def live_url(self, chain_id: int) -> str:
        """The URL that answered at start: for what takes one URL (the exchange simulator)."""
        ...

    def ws_url(self, chain_id: int) -> str | None:
        """The chain's WebSocket JSON-RPC URL for new-head subscriptions (None: polling only)."""
        ...

    def shown_url(self, chain_id: int) -> str:
        """The first URL as it may be logged (a provider's URL may carry its key)."""
        ...


def chain_path(
    chains: Chains, rest: BinanceRest, settings: ChainPathSettings | None = None
) -> ChainPath:
    """The service's chain port, its `across` bridge and our relayer over `chains`; the
    exchange's deposit address is asked through `rest` (signed SAPI) when the port starts.
    Every RPC client fails over across the chain's URLs (chain/failover.py)."""
    s = settings or ChainPathSettings()
    ports: dict[Designation, Web3ChainPort] = {}
    for chain_id, designation in DESIGNATIONS.items():
        section = chains.sections[chain_id]
        urls = chains.urls(chain_id)
        config = ChainSettings(
            chain_id=chain_id,
            rpc_url=urls[0],
            fallback_rpc_urls=urls[1:],
            ws_url=chains.ws_url(chain_id),  # a wake-up: polling carries on beside it
            custody=section["custody"],
            usdc=section["usdc"],
            designation=designation,
            index_tokens=section["index_tokens"],
            confirmations=s.confirmations,
            poll_s=s.poll_s,
            log_chunk_blocks=s.log_chunk_blocks,
            start_block=first_block(section),  # never read from genesis (issue 11)
        )
        ports[designation] = Web3ChainPort(config, chains.issuer)
    dest_w3: AsyncWeb3[Any] = AsyncWeb3(rpc_provider(chains.urls(TRADING_CHAIN_ID)))
    # To the trading chain's custody: the issuer's trading wallet.
    route = route_between(
        chains.sections,
        SOURCE_CHAIN_ID,
        TRADING_CHAIN_ID,
        fee=s.bridge_fee,
        timeout_s=s.hop_timeout_s,
        fill_deadline_s=s.fill_deadline_s,
        poll_s=s.poll_s,
        eth_usdc=s.eth_usdc,
        log_chunk_blocks=s.log_chunk_blocks,
    )
    # Gas is charged at the venue's ETHUSDC mid; s.eth_usdc only when no price is known.
    price = VenueEthPrice(rest, s.eth_usdc)
    bridge = AcrossBridge(ports[SOURCE_CHAIN], dest_w3, route, price)
    # What each hop costs, quoted to the core so a lot that cannot pay it is held (issue 11).
    legs = [
        RouteLeg(SOURCE_CHAIN, bridge.name, ports[SOURCE_CHAIN].w3, ACROSS_GAS, s.bridge_fee),
        RouteLeg(TRADING_CHAIN, "wallet", ports[TRADING_CHAIN].w3, RELEASE_GAS),
    ]
    routed = RoutedChainPort(
        ports,
        TRADING_CHAIN,
        EXCHANGE_ACCOUNT,
        ExchangeWallet(rest, poll_s=s.poll_s),
        eth_usdc=s.eth_usdc,
        timeout_s=s.hop_timeout_s,
        price=price,
        quoter=RouteCostQuoter(legs, price),
    )
    source_w3: AsyncWeb3[Any] = AsyncWeb3(rpc_provider(chains.urls(SOURCE_CHAIN_ID)))
    w3s = {SOURCE_CHAIN_ID: source_w3, TRADING_CHAIN_ID: dest_w3}
    back, back_relayer = return_path(
        chains.sections,
        ports[TRADING_CHAIN],
        w3s,
        # A sender that never sends when we run no relayer: the filler below is not started.
        TxSender(source_w3, chains.relayer or chains.issuer),
        route,
        price,
        s.relayer_delay_s,
    )
    bridges = {"across": bridge, back.name: back}
    relayers: tuple[AcrossRelayer, ...] = ()
    if chains.relayer is not None:
        relayer = relayer_between(
            w3s,
            chains.sections,
            SOURCE_CHAIN_ID,
            TRADING_CHAIN_ID,
            TxSender(dest_w3, chains.relayer),
            delay_s=s.relayer_delay_s,
            poll_s=s.poll_s,
            log_chunk_blocks=s.log_chunk_blocks,
            repay=bridge.refunds,  # repaid on 42161 by the issuer's refund bundle
        )
        relayers = (relayer, back_relayer)
    return ChainPath(routed, bridges, RelayerTask(*relayers), [dest_w3, source_w3])
