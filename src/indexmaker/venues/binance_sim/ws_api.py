"""The WebSocket API at /ws-api/v3 (web-socket-api.md): `{id, method, params}` requests,
`{id, status, result | error, rateLimits}` answers, the same weights, filters and errors as
REST (the handlers are shared), `session.logon` (Ed25519 keys only), and user data through
`userDataStream.subscribe` / `.subscribe.signature` as `{subscriptionId, event}` frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import WSMsgType, web

from indexmaker.observability.logging import log_event
from indexmaker.venues.binance_sim.auth import ApiKey, check_time, verify, ws_payload
from indexmaker.venues.binance_sim.errors import ApiError, missing
from indexmaker.venues.binance_sim.exchange import now_ms
from indexmaker.venues.binance_sim.rest import Caller, Params, depth_weight

if TYPE_CHECKING:
    from indexmaker.venues.binance_sim.server import Simulator

_encode = msgspec.json.Encoder().encode
# Numbers are kept as their exact text (the signed payload uses the values as sent).
_decode = msgspec.json.Decoder(float_hook=Decimal).decode
AUTH_PARAMS = ("apiKey", "signature", "timestamp", "recvWindow", "returnRateLimits")


@dataclass(frozen=True, slots=True)
class Method:
    handler: Callable[[Params, Caller], Any]
    weight: int | Callable[[Params], int] = 1
    signed: bool = False
    order: bool = False


class ApiConnection:
    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws = ws
        self.request = request
        self.ip = request.remote or "?"
        self.session_key: ApiKey | None = None
        self.authorized_since = 0
        self.connected_since = now_ms()
        self.subscriptions: dict[int, str] = {}  # subscriptionId -> account
        self.next_subscription = 0
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(10_000)
        self.delayed: deque[tuple[float, str]] = deque()
        self.delay_task: asyncio.Task[None] | None = None
        self.last_pong = time.monotonic()

    def push(self, text: str | None) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(text)


class WsApi:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.connections: set[ApiConnection] = set()
        self.closing = False
        self.methods = self._methods()
        sim.trading.listeners.append(self.on_user)

    # -------------------------------------------------------------- user data
    def on_user(self, account: str, event: dict[str, Any]) -> None:
        faults = self.sim.faults.orders
        for connection in list(self.connections):
            for subscription, owner in connection.subscriptions.items():
                if owner != account:
                    continue
                if faults.drop_user_events:
                    faults.drop_user_events -= 1  # the fault: this event never arrives
                    continue
                text = _encode({"subscriptionId": subscription, "event": event}).decode()
                if faults.user_delay_ms:
                    self._delay(connection, text, faults.user_delay_ms / 1000)
                else:
                    connection.push(text)

    def _delay(self, connection: ApiConnection, text: str, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        connection.delayed.append((loop.time() + seconds, text))
        if connection.delay_task is None or connection.delay_task.done():
            connection.delay_task = loop.create_task(self._drain_delayed(connection))

    async def _drain_delayed(self, connection: ApiConnection) -> None:
        loop = asyncio.get_running_loop()
        while connection.delayed:
            due, text = connection.delayed[0]
            await asyncio.sleep(max(due - loop.time(), 0))
            connection.delayed.popleft()
            connection.push(text)

    def announce(self) -> int:
        event = _encode({"event": {"e": "serverShutdown", "E": now_ms()}}).decode()
        for connection in self.connections:
            connection.push(event)
        return len(self.connections)

    def drop_all(self) -> None:
        for connection in list(self.connections):
            transport = connection.request.transport
            if transport is not None:
                transport.abort()

    async def shutdown(self) -> None:
        self.closing = True
        self.announce()
        for connection in list(self.connections):
            connection.push(None)

    # ------------------------------------------------------------- connection
    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            self.sim.limiter.charge(request.remote or "?", 2, now_ms())  # a connection costs 2
        except ApiError as error:
            headers = {"Retry-After": str(int(error.retry_after or 1))}
            return web.json_response(error.body(), status=error.status, headers=headers)
        ws = web.WebSocketResponse(autoping=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        connection = ApiConnection(ws, request)
        self.connections.add(connection)
        writer = asyncio.create_task(self._writer(connection))
        pinger = asyncio.create_task(self._pinger(connection))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    connection.push(_encode(self.answer(connection, message.data)).decode())
                elif message.type == WSMsgType.PING:
                    await ws.pong(message.data)
                elif message.type == WSMsgType.PONG:
                    connection.last_pong = time.monotonic()
                elif message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break
        finally:
            self.connections.discard(connection)
            for task in (writer, pinger, connection.delay_task):
                if task is not None:
                    task.cancel()
            with contextlib.suppress(Exception):
                await ws.close()
        return ws

    async def _writer(self, connection: ApiConnection) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError, asyncio.CancelledError):
            while True:
                text = await connection.queue.get()
                if text is None:
                    await connection.ws.close(code=1001, message=b"Server shutdown")
                    return
                await connection.ws.send_str(text)

    async def _pinger(self, connection: ApiConnection) -> None:
        config = self.sim.config
        with contextlib.suppress(ConnectionError, RuntimeError, asyncio.CancelledError):
            while True:
                await asyncio.sleep(config.ws_ping_seconds)
                if self.closing:
                    return  # no pings into a closing socket
                if time.monotonic() - connection.last_pong > config.ws_pong_timeout_seconds:
                    if connection.request.transport is not None:
                        connection.request.transport.abort()
                    return
                await connection.ws.ping(str(now_ms()).encode())

    # --------------------------------------------------------------- requests
    def answer(self, connection: ApiConnection, text: str) -> dict[str, Any]:
        sim, now = self.sim, now_ms()
        ident: Any = None
        account: str | None = None
        rate_limits = True
        try:
            try:
                request = _decode(text)
            except msgspec.DecodeError:
                raise ApiError(-1000, "Malformed request: invalid JSON.") from None
            if not isinstance(request, dict):
                raise ApiError(-1000, "Malformed request: expected a JSON object.")
            ident = request.get("id")
            method_name = str(request.get("method", "")).removeprefix("v3/")
            raw_params = request.get("params") or {}
            if not isinstance(raw_params, dict):
                raise ApiError(-1000, "Malformed request: 'params' must be an object.")
            rate_limits = raw_params.get("returnRateLimits", True) is not False
            if method_name in (
                "userDataStream.start",
                "userDataStream.ping",
                "userDataStream.stop",
            ):
                raise ApiError(
                    -1000, "This method has been retired; use userDataStream.subscribe.", status=410
                )
            method = self.methods.get(method_name)
            if method is None:
                raise ApiError(-1000, f"Unknown method '{method_name}'.", status=400)
            params = {k: _text(v) for k, v in raw_params.items()}
            weight = method.weight(params) if callable(method.weight) else method.weight
            sim.limiter.charge(connection.ip, weight, now)
            caller = Caller(connection.ip)
            if method.signed:
                key = self._authenticate(connection, raw_params, params, now)
                caller = Caller(connection.ip, key.account, key.api_key)
                account = key.account
            if sim.maintenance:
                raise ApiError(-1016, "This service is no longer available.", status=503)
            for name in AUTH_PARAMS:
                params.pop(name, None)
            result = (
                method.handler(params, caller)
                if not method_name.startswith(("session.", "userDataStream."))
                else self._session(connection, method_name, raw_params, caller, now)
            )
            out: dict[str, Any] = {"id": ident, "status": 200, "result": result}
        except Exception as error:  # a bug in one request never closes the connection
            if not isinstance(error, ApiError):
                log_event("exchange_sim.ws_request_failed", error=repr(error))
                error = ApiError(
                    -1000, "An unknown error occurred while processing the request.", status=500
                )
            body: dict[str, Any] = error.body()
            if error.retry_after is not None:
                body["data"] = {"retryAfter": now + int(error.retry_after * 1000)}
            out = {"id": ident, "status": error.status, "error": body}
        if rate_limits:
            out["rateLimits"] = sim.limiter.ws_rate_limits(connection.ip, account, now)
        return out

    def _authenticate(
        self, connection: ApiConnection, raw: dict[str, Any], params: Params, now: int
    ) -> ApiKey:
        """apiKey + signature on the request wins; otherwise the session's logon key."""
        if "signature" in raw or "apiKey" in raw:
            key = self.sim.keys.get(params.get("apiKey"))
            if not params.get("signature"):
                raise missing("signature")
            check_time(params, now)
            verify(key, ws_payload(raw), params["signature"])
            return key
        if connection.session_key is None:
            raise missing("apiKey")
        check_time(params, now)
        return connection.session_key

    def _session(
        self, connection: ApiConnection, name: str, raw: dict[str, Any], caller: Caller, now: int
    ) -> Any:
        if name == "session.logon":
            key = self.sim.keys.get(caller.api_key)
            if key.ed25519 is None:
                raise ApiError(-4056, "HMAC_SHA256 API key is not supported.")
            connection.session_key = key
            connection.authorized_since = now
        elif name == "session.logout":
            connection.session_key = None
        elif name == "userDataStream.subscribe":
            if connection.session_key is None:
                raise ApiError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
            return self._subscribe(connection, connection.session_key.account)
        elif name == "userDataStream.subscribe.signature":
            assert caller.account is not None
            return self._subscribe(connection, caller.account)
        elif name == "userDataStream.unsubscribe":
            wanted = raw.get("subscriptionId")
            ids = list(connection.subscriptions) if wanted is None else [int(str(wanted))]
            if any(i not in connection.subscriptions for i in ids):
                raise ApiError(-2036, "User Data Stream subscription not active.")
            for i in ids:
                connection.subscriptions.pop(i)
                terminated = {"e": "eventStreamTerminated", "E": now}
                connection.push(_encode({"subscriptionId": i, "event": terminated}).decode())
            return {}
        elif name == "session.subscriptions":
            return [{"subscriptionId": i} for i in sorted(connection.subscriptions)]
        session = connection.session_key
        return {
            "apiKey": session.api_key if session else None,
            "authorizedSince": connection.authorized_since if session else None,
            "connectedSince": connection.connected_since,
            "returnRateLimits": True,
            "serverTime": now,
            "userDataStream": bool(connection.subscriptions),
        }

    def _subscribe(self, connection: ApiConnection, account: str) -> dict[str, int]:
        if account in connection.subscriptions.values():
            raise ApiError(-2035, "User Data Stream subscription already active.")
        if len(connection.subscriptions) >= 1000 or connection.next_subscription >= 65_535:
            raise ApiError(-2042, "Maximum subscription ID reached for this connection.")
        subscription = connection.next_subscription
        connection.next_subscription += 1
        connection.subscriptions[subscription] = account
        return {"subscriptionId": subscription}

    def _methods(self) -> dict[str, Method]:
        api, market = self.sim.api, self.sim.routes

        def rest(path: str) -> Callable[[Params, Caller], Any]:
            return market[("GET", path)].handler

        def none(params: Params, caller: Caller) -> Any:
            return None

        def open_weight(params: Params) -> int:
            return 6 if params.get("symbol") else 80

        def trades_weight(params: Params) -> int:
            return 5 if params.get("orderId") else 20

        def book_weight(params: Params) -> int:
            return 2 if "symbol" in params else 4

        return {
            "ping": Method(rest("/api/v3/ping")),
            "time": Method(rest("/api/v3/time")),
            "exchangeInfo": Method(rest("/api/v3/exchangeInfo"), 20),
            "depth": Method(rest("/api/v3/depth"), depth_weight),
            "ticker.book": Method(rest("/api/v3/ticker/bookTicker"), book_weight),
            "ticker.price": Method(rest("/api/v3/ticker/price"), book_weight),
            "order.place": Method(api.place, 1, signed=True, order=True),
            "order.test": Method(api.test, 1, signed=True),
            "order.cancel": Method(api.cancel, 1, signed=True),
            "order.status": Method(api.query, 4, signed=True),
            "openOrders.status": Method(api.open_orders, open_weight, signed=True),
            "openOrders.cancelAll": Method(api.cancel_all, 1, signed=True),
            "allOrders": Method(api.all_orders, 20, signed=True),
            "account.status": Method(api.account, 20, signed=True),
            "account.rateLimits.orders": Method(api.order_rate, 40, signed=True),
            "myTrades": Method(api.my_trades, trades_weight, signed=True),
            "session.logon": Method(none, 2, signed=True),
            "session.status": Method(none, 2),
            "session.logout": Method(none, 2),
            "session.subscriptions": Method(none, 2),
            "userDataStream.subscribe": Method(none, 2),
            "userDataStream.subscribe.signature": Method(none, 2, signed=True),
            "userDataStream.unsubscribe": Method(none, 2),
        }


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return _encode(value).decode()
    return str(value)
