"""The composition root of `indexmaker serve`: engine, runtime, venue, simulated chain, FIX server.

Only this module knows which adapters stand behind the ports: the venue is the Binance
connector (on the `exchange-sim` child process by default, app/binance_wiring.py) or the
in-process simulated venue (`--venue sim`, the core's tests); the chain and bridges are
simulated in process until the local chains are wired in. Without a data dir the engine keeps
no journal in memory (`NullJournal`): one kept in memory grew by ~11 MB a minute (issue 6).
Running it as `indexmaker serve` (venue, chains, signals) is app/serve_run.py; the
`POST /sim/deposit` endpoint app/sim_deposit.py.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from indexmaker.app.config import ConfigError, ServiceConfig, server_private_key
from indexmaker.app.config_rebalance import feed_rebalances
from indexmaker.app.operator_requests import OperatorRequests
from indexmaker.app.recovery import RecoveryPlan, recover
from indexmaker.app.runtime import Runtime, RuntimeLimits, SystemClock
from indexmaker.app.serve_run import VENUE_KINDS, index_pairs, serve, venue_store
from indexmaker.app.serve_run import listen_reason as _reason
from indexmaker.app.sim_deposit import (
    DEPOSIT_CHAIN_IDS,
    SOURCE_CHAIN_ID,
    handle_sim_deposit,
    parse_sim_deposit,
)
from indexmaker.core.clock import Clock
from indexmaker.core.events import ClientResponse
from indexmaker.core.ids import ClientKey
from indexmaker.core.journal import NullJournal
from indexmaker.core.ports import BridgePort, ChainPort, StorePort, VenuePort
from indexmaker.core.store_records import SpentStore
from indexmaker.engine.engine import Engine, EngineSetup
from indexmaker.model.index import load_bundled_index
from indexmaker.observability.logging import log_event, register_secret
from indexmaker.observability.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from indexmaker.observability.metrics import ServiceMetrics
from indexmaker.query.api import QueryApi
from indexmaker.server.balance_gate import BalanceGate, HeldReader, collateral_held
from indexmaker.server.outbox import server_seq_epoch
from indexmaker.server.signing import Signer
from indexmaker.server.ws_server import FixServer
from indexmaker.sim.adapters import SimBridge, SimChainPort
from indexmaker.sim.chain import BridgeTerms, SimulatedChain
from indexmaker.sim.chain_state import STATE_FILE as CHAIN_STATE_FILE
from indexmaker.sim.chain_state import ChainStateError, load_chain
from indexmaker.sim.exchange import SimulatedExchange
from indexmaker.sim.market import MarketSimulator, reference_prices
from indexmaker.sim.venue import SimVenue
from indexmaker.store.crash import CrashPoints
from indexmaker.store.fix_outbox import DurableNumbers, server_seq_base
from indexmaker.store.open import describe, fingerprint, open_store

if TYPE_CHECKING:
    pass

# Moved by responsibility; these names stay importable from here.
__all__ = [
    "DEPOSIT_CHAIN_IDS",
    "SOURCE_CHAIN_ID",
    "VENUE_KINDS",
    "Service",
    "index_pairs",
    "parse_sim_deposit",
    "serve",
    "venue_store",
]


class Service:
    def __init__(
        self,
        config: ServiceConfig,
        limits: RuntimeLimits | None = None,
        clock: Clock | None = None,
        venue: VenuePort | None = None,
        chain: ChainPort | None = None,
        bridges: Mapping[str, BridgePort] | None = None,
        withdrawals: BridgePort | None = None,
    ) -> None:
        """`venue`: the venue adapter to trade on (e.g. the Binance connector); None: the
        in-process simulated venue. An external venue's rules arrive as `RulesUpdate`s.
        `chain` and `bridges`: the collateral path's adapters (app/chain_wiring.py on local
        chains); None: the in-process simulated chain and bridges. `withdrawals`: the
        exchange's withdrawals of redemption proceeds beside the simulated bridges
        (`[sim] withdraw_to`); None: the simulated chain's."""
        self.config = config
        sim = config.sim
        baskets = {symbol: load_bundled_index(symbol) for symbol in config.indexes}
        market = MarketSimulator(reference_prices(baskets.values()), random.Random(sim.seed))
        exchange = SimulatedExchange(market.books(), rules=market.rules)
        self.chain = SimulatedChain(
            bridges={
                "across": BridgeTerms(sim.bridge_fee, Decimal(0), sim.bridge_delay),
                "wallet": BridgeTerms(Decimal(0), Decimal(0), sim.wallet_delay),
            },
            mint_delay=sim.mint_delay,
        )
        self.clock: Clock = clock or SystemClock()
        rules = market.rules if venue is None else {}
        setup = EngineSetup(baskets=baskets, config=config.solver, rules=rules)
        self.store: StorePort | None = None
        self.recovery: RecoveryPlan | None = None
        crash = self.crash = CrashPoints.from_env()  # the chain adapters' steps too
        self.store = open_store(config.store, crash)
        # With a store, market data is journalled at decision granularity (not per diff).
        self.engine = Engine(
            setup,
            self.clock,
            self.store or NullJournal(),
            compact_market=self.store is not None,
            books_on_read=config.store.books_on_read,
        )
        if self.store is not None:
            self.recovery = recover(self.engine, self.store, fingerprint())
            # The simulated chain lives in this process: it numbers deposits after the last.
            self.chain.next_seq = self.recovery.last_deposit_seq + 1
            kept = config.store.kept_files
            if chain is None and kept is not None:
                _keep_chain(self.chain, kept / CHAIN_STATE_FILE)
            log_event(
                "store_recovered",
                store=describe(config.store),
                snapshot_seq=self.recovery.snapshot_seq,
                replayed=self.recovery.replayed,
                reconcile=len(self.recovery.inputs),
                redo=len(self.recovery.redo),
                messages=len(self.recovery.messages),
            )
        self.venue: VenuePort = venue or SimVenue(
            exchange,
            sim.exchange_latency,
            market=market,
            book_refresh=sim.book_refresh,
            clock=self.clock,
        )
        self.chain_port = SimChainPort(self.chain)
        if bridges is None:
            simulated: dict[str, BridgePort] = {
                name: SimBridge(name, self.chain_port) for name in self.chain.bridges
            }
            if withdrawals is not None:
                simulated[withdrawals.name] = withdrawals
            bridges = simulated
        self.metrics = ServiceMetrics()
        self.runtime = Runtime(
            self.engine,
            self.venue,
            chain or self.chain_port,
            bridges,
            limits,
            metrics=self.metrics,
            store=self.store,
            commit_interval=config.store.commit_interval,
            snapshot_every=config.store.snapshot_every,
            fingerprint=fingerprint(),
            crash=crash,
        )
        key, is_test_key = server_private_key()
        if is_test_key:
            log_event(
                "server_key",
                logging.WARNING,
                note="using the well-known local test key; set INDEXMAKER_SERVER_KEY",
            )
        register_secret(key)  # never in a log line, whatever quotes it
        self.signer = Signer(key)
        self.server = FixServer(config.server, self.runtime.submit, self.clock, self.signer)
        self.runtime.deliver = self.server.deliver
        self.spent_signatures: SpentStore | None = None
        self.fix_numbers: DurableNumbers | None = None
        if self.store is not None:
            # Issue 8: spent signatures outlive the in-memory cache and the process.
            self.spent_signatures = self.store.spent_signatures()
            self.server.hub.signatures.durable = self.spent_signatures
            self._restore_fix_outbox(self.store)
        if config.server.antibot.enabled:
            held = collateral_held(self.engine.collateral, self.runtime.quiet)
            self.server.balance_gate = _antibot_gate(config, chain, held)
        self.server.health = self._health
        self.server.metrics = self._metrics
        self.metrics.session_count = self.server.session_count
        self.server.app.router.add_post("/sim/deposit", self._sim_deposit)
        self.server.app.router.add_get("/info", self._info)
        self._rebalances: asyncio.Task[None] | None = None
        self._operator: asyncio.Task[None] | None = None
        # GET /info's "chains" (local chains only): where `indexmaker deposit` deposits.
        self.published_chains: dict[str, dict[str, Any]] | None = None
        self.api: QueryApi | None = None
        if config.api.enable:
            self.api = QueryApi(
                config.api,
                self.engine,
                self.runtime.quiet,
                self.runtime.health,
                self.store,
                describe(config.store).partition(":")[0],
            )

    def _restore_fix_outbox(self, store: StorePort) -> None:
        """Issue 10: server_seqs follow the store's outbox, and the FIX resend outbox is
        rebuilt from it, so a client resumes across a restart (store/fix_outbox.py)."""
        now = self.clock.now()
        base = server_seq_base(store, server_seq_epoch(now))
        session = self.config.server.session
        total, kept = store.client_messages(now - session.outbox_retention, session.outbox_total)
        # What a restart would not restore is deleted once delivered: the store stays bounded.
        store.bound_client_messages(session.outbox_retention, session.outbox_total)
        numbers = DurableNumbers(base, total)
        first = kept[0].rank if kept else total
        lost = numbers.of(first - 1) if first > 0 else 0
        self.server.hub.outbox.resume(base, numbers.last, lost)
        for message in kept:
            command = message.command
            self.server.restore(
                command.client, command.message, message.at, numbers.of(message.rank)
            )
        self.fix_numbers = numbers
        self.runtime.deliver = self._deliver_numbered
        if self.recovery is not None:
            self.recovery.messages = []  # in the rebuilt outbox: a resume resends them

    def _deliver_numbered(self, client: ClientKey, message: ClientResponse) -> None:
        numbers = self.fix_numbers
        assert numbers is not None
        if self.runtime.effect_key is not None:
            server_seq = numbers.next_effect()
        else:  # not an engine effect (a busy refusal): between two durable numbers
            server_seq = numbers.between(self.server.hub.outbox.last_server_seq)
        self.server.deliver(client, message, server_seq)

    async def start(self) -> None:
        """Listen first (OSError if the host/port cannot be bound: nothing else started)."""
        await self.server.start()
        if self.api is not None:
            try:
                await self.api.start()
            except OSError as error:
                await self.server.stop()
                where = f"{self.config.api.host}:{self.config.api.port}"
                raise ConfigError(
                    f"api.host/api.port (--api-port): cannot listen on {where}: {_reason(error)}"
                ) from None
        self.metrics.use_clock(asyncio.get_running_loop().time)
        await self.runtime.start(self.recovery)
        if self.config.rebalance:  # curator updates from the settings file (issue 12)
            self._rebalances = asyncio.create_task(
                feed_rebalances(self.runtime, self.config.rebalance), name="rebalances"
            )
        if self.config.operator_dir is not None:  # `indexmaker routes` (issue 11)
            requests = OperatorRequests(self.runtime, self.config.operator_dir)
            self._operator = asyncio.create_task(requests.run(), name="operator_requests")
        log_event(
            "service_started",
            indexes=",".join(self.config.indexes),
            fix=self.server.url,
            api=self.api.url if self.api is not None else "off",
            server_address=self.signer.address,
        )

    async def stop(self) -> None:
        for task in (self._rebalances, self._operator):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self.api is not None:
            await self.api.stop()
        await self.server.stop()
        await self.runtime.drain()
        await self.runtime.stop()
        if self.spent_signatures is not None:
            self.spent_signatures.close()
        if self.store is not None:
            self.runtime.snapshot()  # a clean stop restarts from here without replay
            self.store.close()
        log_event("service_stopped")

    async def _sim_deposit(self, request: web.Request) -> web.Response:
        """POST /sim/deposit on the simulated chain (app/sim_deposit.py)."""
        return await handle_sim_deposit(request, self.config.sim, self.chain_port)

    def _health(self) -> tuple[bool, dict[str, object]]:
        report = self.runtime.health()
        return report.healthy, report.as_dict()

    def _metrics(self) -> tuple[bytes, str]:
        self.runtime.health()  # refreshes lag, queue, book ages and limiter headroom
        return self.metrics.render(), METRICS_CONTENT_TYPE

    async def _info(self, _request: web.Request) -> web.Response:
        info: dict[str, Any] = {
            "indexes": list(self.config.indexes),
            "server_address": self.signer.address,
            "server_public_key": self.signer.public_key_hex,
            "chain_id": SOURCE_CHAIN_ID,
            # This run's server_seqs are all above it: a client sees a restart by it.
            "server_seq_start": self.server.hub.outbox.start,
        }
        if self.published_chains is not None:
            info["chains"] = self.published_chains
        return web.json_response(info)


def _keep_chain(chain: SimulatedChain, path: Path) -> None:
    """The simulated chain outlives the process in `path` (sim/chain_state.py), as a real
    chain outlives the service; ConfigError when the file cannot be used."""
    try:
        load_chain(chain, path)
    except ChainStateError as error:
        raise ConfigError(f"store.data_dir: {error}") from None


def _antibot_gate(config: ServiceConfig, chain: ChainPort | None, held: HeldReader) -> BalanceGate:
    """The anti-bot gate over the chain ports' wallets and, for a minimum in USDC, the
    collateral `held` with us (server/balance_gate.py); ConfigError when there are no
    wallets to read (the in-process simulated chain)."""
    from indexmaker.chain.balances import balance_reader, web3_ports

    ports = web3_ports(chain)
    if not ports:
        raise ConfigError("server.antibot.enabled: needs the on-chain path (no wallets to read)")
    return BalanceGate(config.server.antibot, balance_reader(ports), held=held)
