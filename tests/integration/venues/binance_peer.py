"""A scripted Binance-wire market-data peer on 127.0.0.1 (aiohttp): `/stream` combined streams
with SUBSCRIBE, `GET /api/v3/depth`, `GET /api/v3/time`, weight headers. Tests drive it step by
step (push a diff, skip update ids, serve a lagging snapshot, drop sockets), which the full
simulator cannot do deterministically; the connector sees only Binance's wire protocol.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from decimal import Decimal

from aiohttp import WSMsgType, web


@dataclass
class PeerBook:
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    last_id: int = 1000
    history: list[tuple[int, dict[Decimal, Decimal], dict[Decimal, Decimal]]] = field(
        default_factory=list
    )

    def snapshot(self) -> tuple[int, dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        return self.last_id, dict(self.bids), dict(self.asks)


class BinancePeer:
    def __init__(self, symbols: list[str]) -> None:
        self.books = {s: PeerBook() for s in symbols}
        for index, book in enumerate(self.books.values()):
            base = Decimal(100 + index)
            book.bids = {base - Decimal(i) / 10: Decimal(1 + i) for i in range(1, 6)}
            book.asks = {base + Decimal(i) / 10: Decimal(1 + i) for i in range(1, 6)}
            book.history.append(book.snapshot())
        self.sockets: list[tuple[web.WebSocketResponse, set[str]]] = []
        self.control_times: list[float] = []  # arrival times of SUBSCRIBE messages
        self.depth_requests = 0
        self.lag_snapshots = 0  # serve this many snapshots from before the stream started
        self.used_weight = 0
        self.site: web.TCPSite | None = None
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/stream", self._stream)
        app.router.add_get("/api/v3/depth", self._depth)
        app.router.add_get("/api/v3/time", self._time)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        self.site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await self.site.start()
        server = self.site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        for ws, _ in list(self.sockets):
            await ws.close()
        if self.runner is not None:
            await self.runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ handlers

    async def _stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        streams: set[str] = set()
        entry = (ws, streams)
        self.sockets.append(entry)
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:  # Binance reads JSON from text frames
                    continue
                body = json.loads(message.data)
                self.control_times.append(time.monotonic())
                if body.get("method") == "SUBSCRIBE":
                    streams.update(body["params"])
                await ws.send_str(json.dumps({"result": None, "id": body.get("id")}))
        finally:
            self.sockets.remove(entry)
        return ws

    async def _depth(self, request: web.Request) -> web.Response:
        self.depth_requests += 1
        self.used_weight += 50
        book = self.books[request.query["symbol"]]
        if self.lag_snapshots > 0:
            self.lag_snapshots -= 1
            last_id, bids, asks = book.history[0]
        else:
            last_id, bids, asks = book.snapshot()
        body = {
            "lastUpdateId": last_id,
            "bids": [[str(p), str(q)] for p, q in sorted(bids.items(), reverse=True)],
            "asks": [[str(p), str(q)] for p, q in sorted(asks.items())],
        }
        return web.json_response(body, headers={"X-MBX-USED-WEIGHT-1M": str(self.used_weight)})

    async def _time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": time.time_ns() // 1_000_000})

    # ------------------------------------------------------------------ script

    def subscribed(self, stream: str) -> bool:
        return any(stream in streams for _, streams in self.sockets)

    async def push(
        self,
        symbol: str,
        bids: dict[str, str] | None = None,
        asks: dict[str, str] | None = None,
        *,
        skip: int = 0,
        updates: int = 1,
        layout: str = "binance",
    ) -> None:
        """Apply a change to the peer's book and send it as one depthUpdate (ids U..u).

        `skip` update ids are consumed first without being sent: a gap on the stream.
        `layout`: "binance" is the venue's compact `{"stream":..,"data":..}`; "spaced" adds
        json.dumps' spaces, "data_first" puts `data` before `stream` (valid JSON the
        connector's fast path does not recognise)."""
        book = self.books[symbol]
        book.last_id += skip
        first = book.last_id + 1
        book.last_id += updates
        for side, changes in ((book.bids, bids or {}), (book.asks, asks or {})):
            for price, qty in changes.items():
                if Decimal(qty) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = Decimal(qty)
        event = {
            "e": "depthUpdate",
            "E": time.time_ns() // 1_000_000,
            "s": symbol,
            "U": first,
            "u": book.last_id,
            "b": [[p, q] for p, q in (bids or {}).items()],
            "a": [[p, q] for p, q in (asks or {}).items()],
        }
        stream = f"{symbol.lower()}@depth@100ms"
        if layout == "data_first":
            frame = json.dumps({"data": event, "stream": stream})
        elif layout == "spaced":
            frame = json.dumps({"stream": stream, "data": event})
        else:
            frame = json.dumps({"stream": stream, "data": event}, separators=(",", ":"))
        for ws, streams in list(self.sockets):
            if stream in streams and not ws.closed:
                await ws.send_str(frame)

    async def drop_all(self) -> None:
        for ws, _ in list(self.sockets):
            await ws.close()


async def eventually(predicate, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
