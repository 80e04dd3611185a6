"""The composition root of `indexmaker serve`: engine, runtime, simulated peers, FIX server."""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from decimal import Decimal, InvalidOperation

from aiohttp import web

from indexmaker.app.config import ServiceConfig, server_private_key
from indexmaker.app.runtime import Runtime, SystemClock
from indexmaker.core.ids import client_key
from indexmaker.engine.engine import Engine, EngineSetup
from indexmaker.model.index import load_bundled_index
from indexmaker.observability.logging import log_event
from indexmaker.server.signing import Signer
from indexmaker.server.wire_values import check_address, check_amount
from indexmaker.server.ws_server import FixServer
from indexmaker.sim.adapters import SimulatedAdapters
from indexmaker.sim.chain import BridgeTerms, SimulatedChain
from indexmaker.sim.exchange import SimulatedExchange
from indexmaker.sim.market import MarketSimulator, reference_prices

SOURCE_CHAIN_ID = 42161


class Service:
    def __init__(self, config: ServiceConfig) -> None:
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
        self.clock = SystemClock()
        setup = EngineSetup(baskets=baskets, config=config.solver, rules=market.rules)
        self.engine = Engine(setup, self.clock)
        adapters = SimulatedAdapters(
            exchange, self.chain, sim.exchange_latency, keep_log=False, clock=self.clock
        )
        self.runtime = Runtime(self.engine, adapters, market, sim.book_refresh)
        key, is_test_key = server_private_key()
        if is_test_key:
            log_event(
                "server_key",
                logging.WARNING,
                note="using the well-known local test key; set INDEXMAKER_SERVER_KEY",
            )
        self.signer = Signer(key)
        self.server = FixServer(config.server, self.runtime.submit, self.clock, self.signer)
        self.runtime.deliver = self.server.deliver
        self.server.app.router.add_post("/sim/deposit", self._sim_deposit)
        self.server.app.router.add_get("/info", self._info)

    async def start(self) -> None:
        await self.runtime.start()
        await self.server.start()
        log_event(
            "service_started",
            indexes=",".join(self.config.indexes),
            fix=self.server.url,
            server_address=self.signer.address,
        )

    async def stop(self) -> None:
        await self.server.stop()
        await self.runtime.drain()
        await self.runtime.stop()
        log_event("service_stopped")

    async def _sim_deposit(self, request: web.Request) -> web.Response:
        """Operator/dev endpoint: a client's deposit on the simulated source chain."""
        try:
            body = await request.json()
            address = check_address(str(body.get("address", "")))
            amount = check_amount("amount", body.get("amount"))
            chain_id = int(body.get("chain_id", SOURCE_CHAIN_ID))
        except (ValueError, TypeError, InvalidOperation) as error:
            return web.json_response({"error": str(error)}, status=400)
        deposit = self.chain.deposit(client_key(chain_id, address), amount)
        self.runtime.submit(deposit)
        log_event("sim_deposit", address=address, amount=amount, seq=deposit.seq_num)
        return web.json_response(
            {"seq_num": deposit.seq_num, "address": address, "amount": str(amount)}
        )

    async def _info(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "indexes": list(self.config.indexes),
                "server_address": self.signer.address,
                "server_public_key": self.signer.public_key_hex,
                "chain_id": SOURCE_CHAIN_ID,
            }
        )


async def serve(config: ServiceConfig) -> None:
    """Run until SIGINT/SIGTERM, then stop cleanly."""
    service = Service(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    await stop.wait()
    log_event("service_stopping", reason="signal")
    await service.stop()
