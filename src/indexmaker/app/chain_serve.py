"""`serve` on chains (issue 11): the collateral path of app/chain_wiring.py as the service's
chain port and bridges, on local anvil chains (`[chain] mode = "anvil"`, kept across
restarts in `state_dir`: app/kept_chains.py) or on external ones (app/external_chains.py),
with the exchange simulator watching the trading chain as the venue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.exceptions import BlockNotFound

from indexmaker.app.binance_wiring import binance_venue
from indexmaker.app.chain_durability import ChainIdentity, check_identity, make_durable
from indexmaker.app.chain_return import RETURN_HOPS, return_hop_fees
from indexmaker.app.chain_wiring import (
    Chains,
    chain_path,
    exchange_sim_args,
    exchange_sim_env,
    path_settings,
    start_local_chains,
)
from indexmaker.app.config import ConfigError, ServiceConfig
from indexmaker.app.local_peers import (
    LocalSim,
    forget_peers,
    read_peers,
    start_or_adopt_sim,
    write_peers,
)
from indexmaker.app.serve_run import bounded
from indexmaker.app.service import Service, index_pairs
from indexmaker.chain.anvil import AnvilError
from indexmaker.chain.artifacts import ArtifactError
from indexmaker.chain.deploy import DeployError
from indexmaker.core.ports import BridgePort, ChainPort, VenuePort
from indexmaker.observability.logging import log_event
from indexmaker.store.across_refunds import SqlAcrossRefunds, open_across_refunds
from indexmaker.store.chain_txs import SqlChainTxs, open_chain_txs

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


async def serve_on_local_chains(config: ServiceConfig, serve_until_signal: ServeFn) -> None:
    """`serve` in `[chain] mode = "anvil"`: local chains started (or loaded) and deployed,
    then `serve_on_chains`; the chains stopped by PID at the end (a clean stop; after a
    SIGKILL of serve they keep running and the next start adopts them: app/local_peers.py).
    With `config.chain.state_dir` the chains are kept there across restarts
    (app/kept_chains.py), with the journal beside them on SQLite (in the database on
    PostgreSQL), and the chain ports' cursors and pending transactions in that journal's
    store (app/chain_durability.py). Without one (memory store) the chains start empty each
    time and the journal stays in memory: a journal of an earlier run would name deposits
    and mints fresh chains never saw. A fresh deployment
    funds anvil's public client accounts with local USDC (kept_chains.fund_clients)."""
    from indexmaker.app.kept_chains import fund_clients, start_kept_chains

    state_dir = config.chain.state_dir
    try:
        if state_dir is None:
            chains = await asyncio.to_thread(start_local_chains, list(config.indexes))
            resumed = False
        else:
            chains, resumed = await asyncio.to_thread(
                start_kept_chains, list(config.indexes), state_dir
            )
    except OSError as error:  # the directory cannot be made or read
        raise ConfigError(
            f"chain.state_dir: cannot keep the chains in {state_dir}: {error.strerror or error}"
        ) from None
    except (AnvilError, ArtifactError, DeployError) as error:  # no node packages, ...
        raise ConfigError(
            f"chain.mode: the local chains could not start: {error} (--chain sim: the "
            "in-process chain)"
        ) from None
    if state_dir is None:
        store = replace(config.store, data_dir=None, url=None)
    else:
        log_event("local_chains_kept", directory=str(state_dir), resumed=resumed)
        # SQLite: the journal beside the chains it describes; PostgreSQL: in its database.
        on_disk = config.store.data_dir is not None
        store = replace(config.store, data_dir=state_dir) if on_disk else config.store
    sim: LocalSim | None = None
    try:
        if not resumed:
            await asyncio.to_thread(fund_clients, chains)
        kept = replace(config, store=store)
        env = exchange_sim_env(chains)
        if state_dir is not None:  # a simulator that outlives a crash of serve, adopted after
            record = read_peers(state_dir)
            args = sim_args(config, chains, state_dir)
            sim, entry = await asyncio.to_thread(start_or_adopt_sim, state_dir, record, args, env)
            write_peers(state_dir, {**record, "exchange_sim": entry})
        url = None if sim is None else sim.url
        await serve_on_chains(kept, chains, serve_until_signal, env, publish=True, sim_url=url)
    finally:  # a clean stop: every peer stopped by PID, nothing left to adopt
        if sim is not None:
            sim.stop()
        chains.stop()
        if state_dir is not None:
            forget_peers(state_dir)


async def serve_on_chains(
    config: ServiceConfig,
    chains: Chains,
    serve_until_signal: ServeFn,
    sim_env: Mapping[str, str] | None = None,
    event: str = "local_chain",
    publish: bool = False,
    sim_url: str | None = None,
) -> None:
    """Serve over `chains`: the exchange simulator watching the trading chain (at its live
    URL) as the venue (`sim_env`: its environment), the collateral path's ports and bridges,
    our relayers; the simulator stopped by PID at the end. Each chain is logged as `event`
    (chain id, addresses, `Chains.shown_url`); `publish`: GET /info names each chain's RPC
    URL, custody and USDC (local chains: `indexmaker deposit` finds them there). The store's
    journal must describe these
    chains: a store that recorded other chains stops it (chain_durability.check_identity).
    `sim_url`: a simulator the caller runs (started or adopted: app/local_peers.py)."""
    exchange_sim = None
    txs: SqlChainTxs | None = None
    refunds: SqlAcrossRefunds | None = None
    try:
        for chain_id, section in sorted(chains.sections.items()):
            log_event(
                event,
                chain_id=chain_id,
                rpc=chains.shown_url(chain_id),
                custody=section["custody"],
                usdc=section["usdc"],
                spoke_pool=section["spoke_pool"],
                confirmations=config.chain.confirmations,
            )
        identity = await asyncio.to_thread(chain_identity, chains)
        args = sim_args(config, chains)
        venue, exchange_sim = binance_venue(index_pairs(config.indexes), args, sim_env, sim_url)
        path = chain_path(chains, venue.rest, path_settings(config))
        txs = open_chain_txs(config.store)
        refunds = open_across_refunds(config.store)  # Across's refunds matched (external)

        def durable(service: Service) -> None:
            check_identity(service.store, identity)
            if publish:
                service.published_chains = published(chains)
            ports = path.chain.ports.values()
            make_durable(ports, service.store, service.runtime, txs, path.root_bundles())
            for port in ports:  # INDEXMAKER_CRASH_AT's chain:<step>#<n> (store/crash.py)
                port.tx.crash = service.crash
            for bridge in path.bridges.values():
                if refunds is not None:
                    bridge.dataworker.keep_in(refunds)

        path.relayer.start()
        try:
            kept = replace(
                config,
                solver=replace(  # 42161 paid there, the way back's fee expected at once
                    config.solver,
                    return_hops=RETURN_HOPS,
                    return_hop_fees=return_hop_fees(config.chain.bridge_fee),
                ),
            )
            await serve_until_signal(kept, venue, path.chain, path.bridges, durable)
        finally:  # bounded: the relayers and RPC clients never hold serve's exit
            await bounded(path.close(), "chain_path")
    finally:
        for table in (txs, refunds):
            if table is not None:
                table.close()
        if exchange_sim is not None:
            exchange_sim.stop()


def sim_args(config: ServiceConfig, chains: Chains, state_dir: Path | None = None) -> list[str]:
    """The exchange simulator's options: watch the trading chain, list the indexes' pairs;
    with the chains kept in `state_dir`, keep the venue account beside them
    (`<state_dir>/exchange-sim`: balances, orders, trades, wallet history and the chain
    deposits already credited), so a clean restart finds the account its journal describes."""
    kept = [] if state_dir is None else ["--state-dir", str(state_dir / "exchange-sim")]
    return [*exchange_sim_args(chains), "--indexes", ",".join(config.indexes), *kept]


def published(chains: Chains) -> dict[str, dict[str, Any]]:
    """GET /info's "chains": by chain id, the first RPC URL, the custody and USDC addresses
    and the index tokens by symbol (deploy.py's names): what a depositor needs, and a
    redeemer approving custody for its units."""
    return {
        str(chain_id): {
            "rpc_url": chains.live_url(chain_id),
            "custody": section["custody"],
            "usdc": section["usdc"],
            "index_tokens": dict(section.get("index_tokens", {})),
        }
        for chain_id, section in sorted(chains.sections.items())
    }


def chain_identity(chains: Chains) -> dict[int, ChainIdentity]:
    """Each chain's genesis hash, head and block lookup, by chain id: which chains a journal
    describes (chain_durability.check_identity)."""
    out: dict[int, ChainIdentity] = {}
    for chain_id in sorted(chains.sections):
        w3 = Web3(Web3.HTTPProvider(chains.live_url(chain_id), request_kwargs={"timeout": 10}))

        def block_hash(number: int, w3: Web3 = w3) -> str | None:
            try:
                return w3.eth.get_block(number)["hash"].to_0x_hex()
            except BlockNotFound:
                return None

        genesis = genesis_hash(w3)
        out[chain_id] = ChainIdentity(genesis, int(w3.eth.block_number), block_hash)
    return out


def genesis_hash(w3: Web3) -> str:
    """The chain's genesis hash as its history names it: block 1's parent hash (block 0's
    own hash on a chain of nothing but its genesis). Not block 0 as the node answers it: an
    anvil loaded from its `--state` file adds a fresh genesis (of its start time) beside the
    kept one, the next state dump keeps both, and which of them `eth_getBlockByNumber(0)`
    returns after a later load varies, so a kept chain looked like another one after two or
    three restarts (issue 10/11 review); block 1 and its parent hash never change."""
    try:
        return w3.eth.get_block(1)["parentHash"].to_0x_hex()
    except BlockNotFound:
        return w3.eth.get_block(0)["hash"].to_0x_hex()
