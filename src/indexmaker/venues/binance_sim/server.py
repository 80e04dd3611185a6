"""The simulator process: one aiohttp app on 127.0.0.1:8090 serving REST (/api/v3, /sapi),
the WebSocket API (/ws-api/v3), market streams (/ws, /stream) and the admin endpoints (/sim).

`Simulator` owns every piece and the 100 ms market clock; `run()` serves until SIGINT/SIGTERM,
then sends `serverShutdown` on every socket and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from typing import TYPE_CHECKING

from aiohttp import web

from indexmaker.observability.logging import log_event
from indexmaker.venues.binance_sim.auth import KeyStore, check_time, rest_payload, verify
from indexmaker.venues.binance_sim.config import SimConfig
from indexmaker.venues.binance_sim.errors import ApiError
from indexmaker.venues.binance_sim.exchange import Exchange, now_ms
from indexmaker.venues.binance_sim.faults import Faults, admin_routes
from indexmaker.venues.binance_sim.limits import Limiter
from indexmaker.venues.binance_sim.market import Quotes, ReplayMarket, SyntheticMarket
from indexmaker.venues.binance_sim.rest import (
    Caller,
    Route,
    error_response,
    json_response,
    read_params,
)
from indexmaker.venues.binance_sim.rest_market import market_routes
from indexmaker.venues.binance_sim.rest_trading import TradingApi, trading_routes
from indexmaker.venues.binance_sim.state_file import StateFile
from indexmaker.venues.binance_sim.streams import StreamHub
from indexmaker.venues.binance_sim.trading import Trading
from indexmaker.venues.binance_sim.wallet import Wallet, wallet_routes
from indexmaker.venues.binance_sim.ws_api import WsApi

if TYPE_CHECKING:
    from indexmaker.venues.binance_sim.chain_deposits import ChainDepositWatcher

# What still answers during maintenance: liveness, the clock and the status that reports it.
MAINTENANCE_OPEN = ("/api/v3/ping", "/api/v3/time", "/sapi/v1/system/status")


class Simulator:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        market = config.market
        model: SyntheticMarket | ReplayMarket
        if market.replay is not None:
            model = ReplayMarket(market.replay, market.replay_speed)
        else:
            model = SyntheticMarket(market, config.min_notional_filter)
        self.exchange = Exchange(model)
        self.limiter = Limiter(config.limits)
        self.hub = StreamHub(
            self.exchange,
            config.stream_msgs_per_second,
            config.max_streams,
            config.ws_ping_seconds,
            config.ws_pong_timeout_seconds,
        )
        self.keys = KeyStore()
        self.trading = Trading(self.exchange, self.limiter, config)
        for account in sorted({key.account for key in self.keys.keys.values()}):
            self.trading.fund(account, config.initial_quote, config.initial_base_usdc)
        # A state directory: the accounts, orders and trades of the last run (state_file.py);
        # raises StateError (a ValueError) when its file cannot be used.
        self.wallet = Wallet(self, config.retention.max_transfers)
        self.state: StateFile | None = None
        if config.state_dir is not None:
            self.state = StateFile(config.state_dir, config.state_every_ms)
            if self.state.load(self.trading, self.wallet):
                log_event("exchange_sim.state_loaded", path=str(self.state.path))
        self.api = TradingApi(self)
        self.routes: dict[tuple[str, str], Route] = {}
        self.routes.update(market_routes(self))
        self.routes.update(trading_routes(self, self.api))
        self.ws_api = WsApi(self)
        self.routes.update(wallet_routes(self.wallet))
        self.maintenance = False
        self.faults = Faults()
        self.instance = uuid.uuid4().hex  # GET /sim/instance: which process answers a port
        self._background: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self.chain_watcher: ChainDepositWatcher | None = None
        if config.chain is not None:
            # web3 is imported only by a simulator that watches a chain
            from indexmaker.venues.binance_sim.chain_deposits import ChainDepositWatcher

            accounts = sorted({key.account for key in self.keys.keys.values()})
            self.chain_watcher = ChainDepositWatcher(self.wallet, config.chain, accounts)
            if config.chain.hot_wallet_key:
                from indexmaker.venues.binance_sim.chain_withdrawals import ChainPayer

                self.wallet.payer = ChainPayer(config.chain, config.chain.hot_wallet_key)
        self._chain_stop = asyncio.Event()
        self._chain_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self.port = config.port

    # ------------------------------------------------------------------- http
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ws-api/v3", self.ws_api.handle)
        app.router.add_get("/ws", self.hub.handle)
        app.router.add_get("/ws/{streams:.*}", self.hub.handle)
        app.router.add_get("/stream", self.hub.handle)
        app.router.add_route("*", "/api/{tail:.*}", self.dispatch)
        app.router.add_route("*", "/sapi/{tail:.*}", self.dispatch)
        admin_routes(self, app)
        return app

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        now = now_ms()
        ip = request.remote or "?"
        headers: dict[str, str] = {}
        route = self.routes.get((request.method, request.path))
        if route is None:
            if request.path.endswith("/userDataStream"):
                # Retired on 2026-02-20 (user-data-stream.md): the venue answers 410 Gone.
                return json_response(
                    {
                        "code": -1000,
                        "msg": "This endpoint has been retired; use userDataStream.subscribe "
                        "on the WebSocket API.",
                    },
                    410,
                )
            return json_response(
                {"code": -1000, "msg": f"Unknown endpoint {request.method} {request.path}"}, 404
            )
        try:
            params, raw_query, raw_body = await read_params(request)
            weight = route.weight(params) if callable(route.weight) else route.weight
            if not route.sapi:
                used = self.limiter.charge(ip, weight, now)
                headers["X-MBX-USED-WEIGHT-1M"] = str(used)
                headers["X-MBX-USED-WEIGHT"] = str(used)
            caller = Caller(ip)
            if route.signed or route.keyed:
                caller = self.authenticate(request, params, raw_query, raw_body, route.signed, now)
            if self.maintenance and request.path not in MAINTENANCE_OPEN:
                raise ApiError(-1016, "This service is no longer available.", status=503)
            result = route.handler(params, caller)
            if asyncio.iscoroutine(result):
                result = await result
            if route.order and caller.account is not None:
                ten, day = self.limiter.order_counts(caller.account, now)
                headers["X-MBX-ORDER-COUNT-10S"] = str(ten)
                headers["X-MBX-ORDER-COUNT-1D"] = str(day)
            return json_response(result, 200, headers)
        except Exception as error:  # a bug in one request never stops the venue
            if not isinstance(error, ApiError):
                log_event("exchange_sim.request_failed", path=request.path, error=repr(error))
                error = ApiError(
                    -1000, "An unknown error occurred while processing the request.", status=500
                )
            if "X-MBX-USED-WEIGHT-1M" not in headers and not route.sapi:
                used = self.limiter.used_weight(ip, now)
                headers["X-MBX-USED-WEIGHT-1M"] = str(used)
            return error_response(error, headers)

    def authenticate(
        self,
        request: web.Request,
        params: dict[str, str],
        raw_query: str,
        raw_body: str,
        signed: bool,
        now: int,
    ) -> Caller:
        """X-MBX-APIKEY, then (signed endpoints) the timing rule and the signature."""
        key = self.keys.get(request.headers.get("X-MBX-APIKEY"))
        if signed:
            payload, signature = rest_payload(raw_query, raw_body)
            if not signature:
                raise ApiError(
                    -1102,
                    "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
                )
            check_time(params, now)
            verify(key, payload, signature)
        return Caller(request.remote or "?", key.account, key.api_key)

    # ------------------------------------------------------------------ admin
    def set_status(self, statuses: dict[str, str]) -> None:
        """Symbol status as exchangeInfo shows it; only TRADING symbols take new orders and
        move (HALT/BREAK freeze the market, CANCEL_ONLY takes cancels only)."""
        for symbol, status in statuses.items():
            self.exchange.specs[symbol].status = status

    def delist(self, symbols: list[str]) -> None:
        """The venue stops trading a symbol: status BREAK, open orders cancelled, book empty."""
        for symbol in symbols:
            spec = self.exchange.specs[symbol]
            spec.status = "BREAK"
            spec.delisted = True
            self.cancel_all_open(symbol)
            self.exchange.apply_quotes(Quotes(symbol, {}, {}, replace=True))

    def cancel_all_open(self, symbol: str) -> None:
        self.trading.cancel_symbol(symbol)

    def announce_shutdown(self, close_after: float = 1.0) -> int:
        """`serverShutdown` on every socket now, a forced close `close_after` seconds later."""
        count = self.hub.announce() + self.ws_api.announce()

        async def later() -> None:
            await asyncio.sleep(close_after)
            self.hub.drop(None)
            self.ws_api.drop_all()

        task = asyncio.get_running_loop().create_task(later())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return count

    # -------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        server = site._server  # the bound socket tells the real port when port is 0
        if server is not None and server.sockets:  # type: ignore[attr-defined]
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._ticker = asyncio.create_task(self._tick_loop())
        if self.chain_watcher is not None:
            self._chain_task = asyncio.create_task(self.chain_watcher.run(self._chain_stop))

    async def _tick_loop(self) -> None:
        interval = self.config.depth_interval_ms / 1000
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += interval
            try:
                self.exchange.tick()
                self.wallet.tick(now_ms())
                if self.state is not None:
                    self.state.maybe_save(self.trading, now_ms(), self.wallet)
            except Exception as error:  # one bad tick must not stop the venue
                log_event("exchange_sim.tick_failed", error=repr(error))
            await asyncio.sleep(max(next_at - loop.time(), 0))

    async def stop(self) -> None:
        self._chain_stop.set()
        if self._chain_task is not None:
            await self._chain_task
        if self.wallet.payer is not None:
            await self.wallet.payer.stop()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self.state is not None:
            try:
                self.state.save(self.trading, self.wallet)
            except OSError as error:  # the last periodic save stays on disk
                log_event("exchange_sim.state_save_failed", error=repr(error))
        await self.hub.shutdown()
        await self.ws_api.shutdown()
        await asyncio.sleep(0.05)  # let the shutdown events reach the sockets
        if self._runner is not None:
            await self._runner.cleanup()


async def serve(config: SimConfig) -> None:
    sim = Simulator(config)
    await sim.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    log_event(
        "exchange_sim.listening",
        url=f"http://{config.host}:{sim.port}",
        symbols=len(sim.exchange.specs),
    )
    # A line the parent process can wait for (tests start the simulator on port 0).
    print(f"exchange-sim listening on http://{config.host}:{sim.port}", flush=True)
    await stop.wait()
    log_event("exchange_sim.stopping")
    await sim.stop()
