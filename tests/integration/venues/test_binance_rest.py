"""The REST client's limit and error handling against a scripted loopback HTTP peer: used-weight
headers feed the limiter, 429 blocks until Retry-After (nothing more is sent), 418 is a ban,
5xx and timeouts are "status unknown", -1021 resyncs the clock and retries once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
from aiohttp import web

from indexmaker.core.errors import InvalidOrderError, RateLimitedError
from indexmaker.venues.binance.limits import (
    DEFAULT_LIMITS,
    OrderNotFoundError,
    StatusUnknownError,
    VenueBannedError,
    limiter_from,
)
from indexmaker.venues.binance.rest import BinanceEndpoints, BinanceRest
from indexmaker.venues.binance.signing import Credentials

Handler = Callable[[web.Request], web.Response]


class Peer:
    def __init__(self) -> None:
        self.requests: list[str] = []
        self.script: list[Handler] = []
        self.server_offset_ms = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        if request.path == "/api/v3/time":
            now = time.time_ns() // 1_000_000 + self.server_offset_ms
            return web.json_response({"serverTime": now})
        handler = self.script.pop(0) if self.script else ok
        if handler is slow:
            await asyncio.sleep(1)
        return handler(request)


def ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True}, headers={"X-MBX-USED-WEIGHT-1M": "5000"})


def slow(request: web.Request) -> web.Response:
    return web.json_response({})


def error(status: int, code: int, msg: str, **headers: str) -> Handler:
    return lambda request: web.json_response(
        {"code": code, "msg": msg}, status=status, headers=headers
    )


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    server = Peer()
    await server.start()
    yield server
    assert server.runner is not None
    await server.runner.cleanup()


@pytest.fixture
async def rest(peer: Peer) -> AsyncIterator[BinanceRest]:
    client = BinanceRest(
        BinanceEndpoints(rest_url=peer.url),
        Credentials("key", hmac_secret="secret"),
        limiter=limiter_from(DEFAULT_LIMITS),
        timeout_s=0.3,
        max_wait_s=0.05,
    )
    yield client
    await client.close()


async def test_used_weight_header_feeds_the_limiter(rest: BinanceRest) -> None:
    await rest.public("/api/v3/ping")
    room = rest.limiter.headroom(datetime.now(UTC))
    assert room["REQUEST_WEIGHT_1M"] == 5400 - 5000  # the venue's count, not our 1
    with pytest.raises(RateLimitedError, match="local"):
        await rest.public("/api/v3/depth", weight=500)  # would pass 90% of 6000: not sent


async def test_429_blocks_until_retry_after_and_sends_nothing_meanwhile(
    peer: Peer, rest: BinanceRest
) -> None:
    peer.script = [error(429, -1003, "Too much request weight used", **{"Retry-After": "30"})]
    with pytest.raises(RateLimitedError) as raised:
        await rest.public("/api/v3/ping")
    assert raised.value.retry_after_ms == 30_000
    sent = len(peer.requests)
    with pytest.raises(RateLimitedError, match="local"):
        await rest.public("/api/v3/ping")
    assert len(peer.requests) == sent  # never retried into a ban


async def test_418_is_a_ban(peer: Peer, rest: BinanceRest) -> None:
    peer.script = [
        error(418, -1003, "Way too much request weight used; IP banned", **{"Retry-After": "120"})
    ]
    with pytest.raises(VenueBannedError):
        await rest.public("/api/v3/ping")
    assert rest.banned_until_ms > 0
    with pytest.raises(VenueBannedError):
        await rest.public("/api/v3/ping")


@pytest.mark.parametrize(
    "handler",
    [error(503, -1001, "Internal error"), error(408, -1007, "Timeout waiting for response"), slow],
)
async def test_5xx_1007_and_timeouts_mean_status_unknown(
    peer: Peer, rest: BinanceRest, handler: Handler
) -> None:
    peer.script = [handler]
    with pytest.raises(StatusUnknownError):
        await rest.signed("POST", "/api/v3/order", {"symbol": "BTCUSDC"}, orders=True)


async def test_error_codes_map_to_classes(peer: Peer, rest: BinanceRest) -> None:
    peer.script = [
        error(400, -1013, "Filter failure: LOT_SIZE"),
        error(400, -2013, "Order does not exist."),
    ]
    with pytest.raises(InvalidOrderError, match="LOT_SIZE"):
        await rest.signed("POST", "/api/v3/order", {"symbol": "BTCUSDC"}, orders=True)
    with pytest.raises(OrderNotFoundError):
        await rest.signed("GET", "/api/v3/order", {"symbol": "BTCUSDC"}, weight=4)


async def test_1021_resyncs_the_clock_and_retries_once_with_a_fresh_timestamp(
    peer: Peer, rest: BinanceRest
) -> None:
    peer.server_offset_ms = 5_000  # the venue's clock runs 5 s ahead of ours
    peer.script = [error(400, -1021, "Timestamp for this request is outside of the recvWindow.")]
    assert await rest.signed("GET", "/api/v3/account", {}, weight=20) == {"ok": True}
    assert abs(rest.clock.offset_ms - 5_000) < 500
    signed = [r for r in peer.requests if r.startswith("/api/v3/account")]
    assert len(signed) == 2
    first, second = (int(r.split("timestamp=")[1].split("&")[0]) for r in signed)
    assert second - first > 4_000  # the retry carries the venue's time
