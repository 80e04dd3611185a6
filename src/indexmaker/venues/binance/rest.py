"""Binance Spot REST client (aiohttp): pacing by the venue's own limits, signing, error mapping.

Every request is charged to the weight pools before it leaves (waiting up to `max_wait` for room,
else `RateLimitedError`); the answer's `X-MBX-USED-WEIGHT-*` headers correct our count. A 429
blocks all pools until `Retry-After`; a 418 ban does too and raises `VenueBannedError`. A
timeout or 5xx raises `StatusUnknownError`: the caller reconciles, it never resends blindly.
A -1021 resynchronises the clock offset and retries the request once with a fresh timestamp.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp

from indexmaker.core.errors import NetworkError, RateLimitedError
from indexmaker.engine.throttle import RateLimiter
from indexmaker.venues.binance.limits import (
    DEFAULT_LIMITS,
    ClockOffset,
    ClockSkewError,
    StatusUnknownError,
    VenueBannedError,
    VenueConfigError,
    error_for,
    limiter_from,
    local_ms,
    observe_headers,
    order_pools,
    utcnow,
    weight_pools,
)
from indexmaker.venues.binance.signing import Credentials, rest_query, signed_rest_query
from indexmaker.venues.binance.wire import ERROR_BODY, JSON

RECV_WINDOW_MS = 5_000


@dataclass(frozen=True, slots=True)
class BinanceEndpoints:
    """Where the venue is. The defaults are the local simulator; the real exchange is
    `https://api.binance.com`, `wss://ws-api.binance.com:443/ws-api/v3`,
    `wss://stream.binance.com:9443`."""

    rest_url: str = "http://127.0.0.1:8090"
    ws_api_url: str = "ws://127.0.0.1:8090/ws-api/v3"
    stream_url: str = "ws://127.0.0.1:8090"


class BinanceRest:
    """One REST session. `limiter` is shared with the WebSocket API client (same IP pools)."""

    def __init__(
        self,
        endpoints: BinanceEndpoints,
        credentials: Credentials | None = None,
        *,
        limiter: RateLimiter | None = None,
        clock: ClockOffset | None = None,
        timeout_s: float = 10.0,
        max_wait_s: float = 5.0,
    ) -> None:
        self.endpoints = endpoints
        self.credentials = credentials
        self.limiter = limiter or limiter_from(DEFAULT_LIMITS)
        self.clock = clock or ClockOffset()
        self.max_wait = timedelta(seconds=max_wait_s)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self.banned_until_ms = 0

    async def __aenter__(self) -> BinanceRest:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------ pacing

    async def acquire(self, weight: int, orders: bool = False) -> None:
        """Charge `weight` (and one order, if `orders`) or wait for room, at most `max_wait`."""
        limiter = self.limiter
        pools = weight_pools(limiter) + (order_pools(limiter) if orders else ())
        deadline = utcnow() + self.max_wait
        while True:
            now = utcnow()
            # order endpoints weigh 1: the same charge fits both the weight and order pools
            wait = limiter.try_acquire(now, weight, only=pools)
            if wait is None:
                return
            if now + wait > deadline:
                blocked = limiter.blocked_until
                if blocked is not None and blocked > now and self.banned_until_ms > local_ms():
                    raise VenueBannedError("binance: IP banned", self.banned_until_ms - local_ms())
                raise RateLimitedError(
                    "binance: local rate limit", int(wait.total_seconds() * 1000)
                )
            await asyncio.sleep(wait.total_seconds())

    # ------------------------------------------------------------------ requests

    async def public(
        self, path: str, params: Mapping[str, object] | None = None, *, weight: int = 1
    ) -> Any:
        """An unsigned GET; returns the decoded JSON answer."""
        return JSON.decode(await self.public_bytes(path, params, weight=weight))

    async def public_bytes(
        self, path: str, params: Mapping[str, object] | None = None, *, weight: int = 1
    ) -> bytes:
        """An unsigned GET; the raw answer, for a typed msgspec decoder (depth snapshots)."""
        await self.acquire(weight)
        return await self._send("GET", path, rest_query(params or {}), signed=False)

    async def signed(
        self,
        method: str,
        path: str,
        params: Mapping[str, object],
        *,
        weight: int = 1,
        orders: bool = False,
    ) -> Any:
        """A signed request (TRADE / USER_DATA): `timestamp` and `recvWindow` are added."""
        await self.acquire(weight, orders)
        try:
            body = await self._send(method, path, self._sign(params), signed=True)
        except ClockSkewError:
            await self.sync_clock()
            await self.acquire(weight, orders)
            body = await self._send(method, path, self._sign(params), signed=True)
        return JSON.decode(body)

    def _sign(self, params: Mapping[str, object]) -> str:
        if self.credentials is None:
            raise VenueConfigError("binance: no API key configured")
        full = dict(params)
        full["recvWindow"] = RECV_WINDOW_MS
        full["timestamp"] = self.clock.timestamp()
        return signed_rest_query(self.credentials, full)

    async def sync_clock(self) -> None:
        """Measure the venue clock offset from `GET /api/v3/time` (weight 1)."""
        await self.acquire(1)
        sent = local_ms()
        answer = JSON.decode(await self._send("GET", "/api/v3/time", "", signed=False))
        self.clock.update(sent, int(answer["serverTime"]), local_ms())

    async def _send(self, method: str, path: str, query: str, *, signed: bool) -> bytes:
        url = f"{self.endpoints.rest_url}{path}" + (f"?{query}" if query else "")
        headers = {"X-MBX-APIKEY": self.credentials.api_key} if signed and self.credentials else {}
        try:
            async with self.session().request(method, url, headers=headers) as response:
                body = await response.read()
                status = response.status
                observe_headers(self.limiter, response.headers, utcnow())
                retry_after = response.headers.get("Retry-After", "")
        except TimeoutError as exc:
            raise StatusUnknownError(f"binance {method} {path}: timeout") from exc
        except aiohttp.ClientError as exc:
            if method == "GET":
                raise NetworkError(f"binance {method} {path}: {exc}") from exc
            raise StatusUnknownError(f"binance {method} {path}: {exc}") from exc
        if status == 200:
            return body
        raise self._error(status, body, retry_after)

    def _error(self, status: int, body: bytes, retry_after: str) -> Exception:
        retry_ms = int(retry_after) * 1000 if retry_after.isdigit() else 0
        try:
            error = ERROR_BODY.decode(body)
            code, message = error.code, error.msg
        except Exception:  # a proxy's HTML page, an empty body
            code, message = 0, body[:200].decode(errors="replace")
        if status in (429, 418):
            retry_ms = retry_ms or 60_000
            self.limiter.block_until(utcnow() + timedelta(milliseconds=retry_ms))
            if status == 418:
                self.banned_until_ms = local_ms() + retry_ms
                return VenueBannedError(f"binance 418 {code}: {message}", retry_ms)
            return RateLimitedError(f"binance 429 {code}: {message}", retry_ms)
        if status >= 500:
            return StatusUnknownError(f"binance HTTP {status}: {message}")
        return error_for(code, message, retry_ms)
