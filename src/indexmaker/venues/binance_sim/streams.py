"""Market streams (web-socket-streams.md): raw `/ws/<stream>`, combined `/stream?streams=a/b`.

Streams: `<symbol>@depth@100ms` (depthUpdate with U/u) and `<symbol>@bookTicker` (with u).
Control messages SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY / GET_PROPERTY
answer `{"result": ..., "id": ...}` or `{"code": 0-3, "msg": ..., "id": ...}`. The venue's
connection rules are enforced: more than 5 incoming messages in a second (pings and pongs
included) closes the connection; at most 1024 streams; a ping every 20 s that needs a pong
within a minute; `serverShutdown` before the server closes.
Each payload is encoded once per event and queued to every subscriber; a subscriber whose
queue is full is closed (a slow consumer must not hold the venue back).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

from indexmaker.venues.binance_sim.exchange import Exchange, now_ms

QUEUE = 10_000  # messages waiting for one slow connection before it is dropped
KINDS = {"depth@100ms": "depth", "bookTicker": "bookTicker"}
_encode = msgspec.json.Encoder().encode


class StreamConnection:
    def __init__(self, ws: web.WebSocketResponse, request: web.Request, combined: bool) -> None:
        self.ws = ws
        self.request = request
        self.combined = combined
        self.streams: set[str] = set()
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE)
        self.incoming: deque[float] = deque()
        self.last_pong = time.monotonic()

    def push(self, text: str | None) -> bool:
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            return False
        return True

    def abort(self) -> None:
        """Cut the TCP connection without a close frame (a dropped stream)."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()


class StreamHub:
    def __init__(
        self,
        exchange: Exchange,
        msgs_per_second: int = 5,
        max_streams: int = 1024,
        ping_seconds: float = 20.0,
        pong_timeout: float = 60.0,
    ) -> None:
        self.exchange = exchange
        self.msgs_per_second = msgs_per_second
        self.max_streams = max_streams
        self.ping_seconds = ping_seconds
        self.pong_timeout = pong_timeout
        self.subscribers: dict[str, set[StreamConnection]] = {}
        self.connections: set[StreamConnection] = set()
        self.closing = False
        exchange.listeners.append(self.on_market)
        exchange.interest = self.wants

    def wants(self, symbol: str, kind: str) -> bool:
        name = f"{symbol.lower()}@{'depth@100ms' if kind == 'depth' else kind}"
        return name in self.subscribers

    # -------------------------------------------------------------- publishing
    def on_market(self, symbol: str, kind: str, payload: dict[str, object]) -> None:
        name = f"{symbol.lower()}@{'depth@100ms' if kind == 'depth' else kind}"
        subscribers = self.subscribers.get(name)
        if not subscribers:
            return
        raw = _encode(payload).decode()
        combined: str | None = None
        for connection in list(subscribers):
            if connection.combined:
                if combined is None:
                    combined = f'{{"stream":"{name}","data":{raw}}}'
                ok = connection.push(combined)
            else:
                ok = connection.push(raw)
            if not ok:
                self._forget(connection)
                connection.abort()

    def valid(self, name: str) -> bool:
        symbol, _, kind = name.partition("@")
        return kind in KINDS and symbol.upper() in self.exchange.specs and symbol == symbol.lower()

    def drop(self, symbol: str | None = None) -> int:
        """Fault: cut every stream connection (or those carrying `symbol`)."""
        prefix = f"{symbol.lower()}@" if symbol else ""
        victims = [
            c
            for c in self.connections
            if not prefix or any(s.startswith(prefix) for s in c.streams)
        ]
        for connection in victims:
            self._forget(connection)
            connection.abort()
        return len(victims)

    def announce(self) -> int:
        """serverShutdown to every stream connection (they stay open)."""
        event = _encode({"e": "serverShutdown", "E": now_ms()}).decode()
        for connection in list(self.connections):
            connection.push(event)
        return len(self.connections)

    async def shutdown(self) -> None:
        """serverShutdown to everyone, then close."""
        self.closing = True
        event = _encode({"e": "serverShutdown", "E": now_ms()}).decode()
        for connection in list(self.connections):
            connection.push(event)
            if not connection.push(None):
                connection.abort()

    # -------------------------------------------------------------- connection
    async def handle(self, request: web.Request) -> web.StreamResponse:
        combined = request.path.startswith("/stream")
        names: list[str] = []
        if combined:
            names = [s for s in request.query.get("streams", "").split("/") if s]
        else:
            tail = request.match_info.get("streams", "")
            names = [s for s in tail.split("/") if s]
        bad = [n for n in names if not self.valid(n)]
        if bad or len(names) > self.max_streams:
            return web.json_response(
                {"code": 2, "msg": f"Invalid request: unknown stream {bad[:1]}"}, status=400
            )
        ws = web.WebSocketResponse(autoping=False, max_msg_size=1 << 16)
        await ws.prepare(request)
        connection = StreamConnection(ws, request, combined)
        self.connections.add(connection)
        for name in names:
            self._subscribe(connection, name)
        writer = asyncio.create_task(self._writer(connection))
        pinger = asyncio.create_task(self._pinger(connection))
        try:
            await self._reader(connection)
        finally:
            self._forget(connection)
            writer.cancel()
            pinger.cancel()
            with contextlib.suppress(Exception):
                await ws.close()
        return ws

    async def _reader(self, connection: StreamConnection) -> None:
        ws = connection.ws
        async for message in ws:
            if self._over_rate(connection):
                await ws.close(code=1008, message=b"Too many requests")
                return
            if message.type == WSMsgType.PING:
                await ws.pong(message.data)
            elif message.type == WSMsgType.PONG:
                connection.last_pong = time.monotonic()
            elif message.type == WSMsgType.TEXT:
                reply = self._control(connection, message.data)
                connection.push(_encode(reply).decode())
            elif message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                return

    def _over_rate(self, connection: StreamConnection) -> bool:
        now = time.monotonic()
        incoming = connection.incoming
        incoming.append(now)
        while incoming and incoming[0] <= now - 1.0:
            incoming.popleft()
        return len(incoming) > self.msgs_per_second

    async def _writer(self, connection: StreamConnection) -> None:
        ws = connection.ws
        with contextlib.suppress(ConnectionError, RuntimeError, asyncio.CancelledError):
            while True:
                text = await connection.queue.get()
                if text is None:
                    await ws.close(code=1001, message=b"Server shutdown")
                    return
                await ws.send_str(text)

    async def _pinger(self, connection: StreamConnection) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError, asyncio.CancelledError):
            while True:
                await asyncio.sleep(self.ping_seconds)
                if self.closing:
                    return  # no pings into a closing socket
                if time.monotonic() - connection.last_pong > self.pong_timeout:
                    connection.abort()
                    return
                await connection.ws.ping(str(now_ms()).encode())

    def _subscribe(self, connection: StreamConnection, name: str) -> None:
        connection.streams.add(name)
        self.subscribers.setdefault(name, set()).add(connection)

    def _forget(self, connection: StreamConnection) -> None:
        self.connections.discard(connection)
        for name in connection.streams:
            subscribers = self.subscribers.get(name)
            if subscribers is not None:
                subscribers.discard(connection)
                if not subscribers:
                    del self.subscribers[name]

    def _control(self, connection: StreamConnection, text: str) -> dict[str, Any]:
        try:
            request = msgspec.json.decode(text)
        except msgspec.DecodeError as error:
            return {"code": 3, "msg": f"Invalid JSON: {error}", "id": None}
        if not isinstance(request, dict):
            return {"code": 2, "msg": "Invalid request: request must be an object", "id": None}
        ident = request.get("id")
        method, params = request.get("method"), request.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                return {
                    "code": 2,
                    "msg": "Invalid request: 'params' must be a list of streams",
                    "id": ident,
                }
            bad = [p for p in params if not self.valid(p)]
            if bad:
                return {
                    "code": 2,
                    "msg": f"Invalid request: unknown stream '{bad[0]}'",
                    "id": ident,
                }
            if method == "SUBSCRIBE":
                if len(connection.streams | set(params)) > self.max_streams:
                    return {
                        "code": 2,
                        "msg": "Invalid request: more than 1024 streams",
                        "id": ident,
                    }
                for name in params:
                    self._subscribe(connection, name)
            else:
                for name in params:
                    connection.streams.discard(name)
                    subscribers = self.subscribers.get(name)
                    if subscribers is not None:
                        subscribers.discard(connection)
            return {"result": None, "id": ident}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(connection.streams), "id": ident}
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            if not isinstance(params, list) or not params or params[0] != "combined":
                return {"code": 0, "msg": "Unknown property", "id": ident}
            if method == "GET_PROPERTY":
                return {"result": connection.combined, "id": ident}
            if len(params) != 2 or not isinstance(params[1], bool):
                return {"code": 1, "msg": "Invalid value type: expected Boolean", "id": ident}
            connection.combined = params[1]
            return {"result": None, "id": ident}
        return {"code": 2, "msg": f"Invalid request: unknown method {method!r}", "id": ident}
