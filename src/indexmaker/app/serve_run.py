"""Running `indexmaker serve` (app/service.py builds the service): which venue and chains
stand behind it, each venue's own journal, and the run until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from indexmaker.app.config import ConfigError, ServiceConfig, server_private_key
from indexmaker.core.ports import BridgePort, ChainPort, VenuePort
from indexmaker.model.index import load_bundled_index
from indexmaker.observability.logging import log_event

if TYPE_CHECKING:
    from indexmaker.app.service import Service
    from indexmaker.venues.binance.venue import BinanceVenue

VENUE_KINDS = ("binance", "sim")  # serve/demo --venue; the first is the default
# A clean stop's bound: past it the part still stopping is cancelled and left, and the peers
# serve started (anvil, exchange-sim) are stopped by PID all the same; serve always exits.
STOP_TIMEOUT_S = 20.0


def stop_on_signals() -> asyncio.Event:
    """An event SIGINT/SIGTERM set from now on. Installed first thing in `serve`, before any
    chain or process is started: a signal during the start is then a clean stop once the
    start is done (it never kills serve by the default action, which left the anvil and
    exchange-sim peers running, in their own sessions, and exited with status -15)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def bounded(step: Awaitable[Any], part: str, timeout_s: float = STOP_TIMEOUT_S) -> bool:
    """Await a stopping `step` for at most `timeout_s` s. True: done (its error raised);
    False: still running then, so it is cancelled and not awaited (a task that ignores its
    cancellation must not hold the stop), and `stop_timed_out` is logged with `part`."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if task in done:
        task.result()
        return True
    task.cancel()
    log_event("stop_timed_out", logging.ERROR, part=part, timeout_s=timeout_s)
    return False


def index_pairs(indexes: Iterable[str]) -> list[str]:
    """The venue pairs (e.g. "BTCUSDC") of the bundled indexes named, sorted, each once."""
    return sorted({a.instrument.pair for s in indexes for a in load_bundled_index(s).assets})


def venue_store(config: ServiceConfig, venue_kind: str) -> ServiceConfig:
    """Each venue keeps its own journal: the Binance venue's under `<data_dir>/binance/`, the
    in-process simulator's in `<data_dir>` itself (where it always was). A journal replayed
    against the other venue would ask it about orders it never saw."""
    store = config.store
    if venue_kind == "sim" or store.kept_files is None:
        return config
    data_dir = store.data_dir / venue_kind if store.data_dir is not None else None
    files_dir = store.files_dir / venue_kind if store.files_dir is not None else None
    return replace(config, store=replace(store, data_dir=data_dir, files_dir=files_dir))


async def serve(
    config: ServiceConfig, venue_kind: str = VENUE_KINDS[0], chain_kind: str | None = None
) -> None:
    """Run until SIGINT/SIGTERM, then stop cleanly. `venue_kind` "binance" (default): trade
    through the Binance connector, on an `exchange-sim` child process stopped by PID unless
    BINANCE_REST_URL names a real venue (app/binance_wiring.py); "sim": the in-process
    simulated venue. `chain_kind` "anvil": two local chains, the exchange simulator watching
    the trading chain, the collateral path on chain (app/chain_serve.py); "external": the
    same path on chains at `[chain] rpc_urls` (app/external_chains.py); "sim": the in-process
    simulated chain; None: `config.chain.mode`. Raises ConfigError when the venue or the
    chains cannot be set up."""
    mode = chain_kind or config.chain.mode
    server_private_key()  # a bad key stops serve before any chain or process is started
    until_signal = functools.partial(_serve_until_signal, stop=stop_on_signals())
    if mode == "anvil":
        from indexmaker.app.chain_serve import serve_on_local_chains

        await serve_on_local_chains(config, until_signal)
        return
    if mode == "external":
        from indexmaker.app.external_chains import serve_on_external_chains

        await serve_on_external_chains(config, until_signal)
        return
    exchange_sim = None
    venue: VenuePort | None = None
    withdrawals: BridgePort | None = None  # the simulated chain's withdraw hop
    if venue_kind == "binance":
        from indexmaker.app.binance_wiring import binance_venue, exchange_sim_state_args

        state = exchange_sim_state_args(config.store.data_dir)  # the same account after a restart
        venue, exchange_sim = binance_venue(index_pairs(config.indexes), state)
        withdrawals = _exchange_withdrawals(config, venue)
    try:
        await until_signal(venue_store(config, venue_kind), venue, withdrawals=withdrawals)
    finally:
        if exchange_sim is not None:
            exchange_sim.stop()


async def _serve_until_signal(
    config: ServiceConfig,
    venue: VenuePort | None,
    chain: ChainPort | None = None,
    bridges: Mapping[str, BridgePort] | None = None,
    prepare: Callable[[Service], None] | None = None,
    withdrawals: BridgePort | None = None,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the service until `stop` is set (by default SIGINT/SIGTERM from now on: see
    `stop_on_signals`); `prepare(service)` after it is built and before it starts (the
    chain ports' durability, app/chain_wiring.py). A stop asked during the start stops the
    service as soon as it has started; the stop takes at most STOP_TIMEOUT_S."""
    from indexmaker.app.service import Service  # it imports this module

    service = Service(config, venue=venue, chain=chain, bridges=bridges, withdrawals=withdrawals)
    if prepare is not None:
        prepare(service)
    if stop is None:
        stop = stop_on_signals()
    try:
        await service.start()
    except OSError as error:  # the port is taken, the host is not ours, the name unknown
        where = f"{config.server.host}:{config.server.port}"
        raise ConfigError(
            f"server.host/server.port (--host/--port): cannot listen on {where}: "
            f"{listen_reason(error)}"
        ) from None
    await stop.wait()
    log_event("service_stopping", reason="signal")
    await bounded(service.stop(), "service")


def _exchange_withdrawals(config: ServiceConfig, venue: BinanceVenue) -> BridgePort | None:
    """The `withdraw` hop over the venue's wallet API to `[sim] withdraw_to` (the exchange
    simulator pays it; chain/exchange_withdrawals.py), or None: the simulated chain's hop."""
    if config.sim.withdraw_to is None:
        return None
    from indexmaker.chain.exchange_wallet import ExchangeWallet
    from indexmaker.chain.exchange_withdrawals import ExchangeWithdrawBridge

    return ExchangeWithdrawBridge(
        config.solver.withdraw_bridge,
        ExchangeWallet(venue.rest),
        config.sim.withdraw_to,
        timeout_s=config.chain.hop_timeout.total_seconds(),
    )


def listen_reason(error: OSError) -> str:
    """Why a listening socket could not be opened, without asyncio's address prefix
    ("address already in use")."""
    return str(error.strerror or error).rpartition("): ")[2]
