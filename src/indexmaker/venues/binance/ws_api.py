"""Binance WebSocket API client (web-socket-api.md): requests by id, user data on the same
connection.

On every (re)connect it authenticates and subscribes to user data the way Binance supports
today (the listenKey endpoints answer 410 since 2026-02-20): `session.logon` with an Ed25519
key then `userDataStream.subscribe`, or, for HMAC keys, `userDataStream.subscribe.signature`
with a fresh timestamp (unicorn-binance-websocket-api #399). Events arriving as
`{subscriptionId, event}` go to `on_event`; `on_reconnect` runs after each resubscription so
the owner reconciles what the gap may have hidden. Every answer's `rateLimits` feeds the shared
limiter; 429/418 block it until `retryAfter`. No answer within `timeout_s` means
`StatusUnknownError` (the request may have been executed).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
import msgspec

from indexmaker.core.errors import NetworkError, RateLimitedError
from indexmaker.engine.throttle import RateLimiter
from indexmaker.venues.binance.limits import (
    ClockOffset,
    ClockSkewError,
    StatusUnknownError,
    VenueBannedError,
    error_for,
    local_ms,
    observe_ws_rate_limits,
)
from indexmaker.venues.binance.rest import RECV_WINDOW_MS, BinanceEndpoints, BinanceRest
from indexmaker.venues.binance.signing import Credentials, signed_ws_params
from indexmaker.venues.binance.wire import ENCODE, RateLimitInfo

log = logging.getLogger(__name__)


class _Answer(msgspec.Struct):
    id: int | str | None = None
    status: int = 0
    result: Any = None
    error: dict[str, Any] | None = None
    rateLimits: list[RateLimitInfo] | None = None
    subscriptionId: int | None = None
    event: dict[str, Any] | None = None


_DECODE = msgspec.json.Decoder(_Answer).decode

EventHandler = Callable[[Mapping[str, Any]], None]


class BinanceWsApi:
    def __init__(
        self,
        endpoints: BinanceEndpoints,
        credentials: Credentials,
        rest: BinanceRest,
        *,
        on_event: EventHandler,
        on_reconnect: Callable[[], Awaitable[None]] | None = None,
        on_usage: Callable[[list[tuple[str, int]]], None] | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.endpoints = endpoints
        self.credentials = credentials
        self.rest = rest
        self.clock: ClockOffset = rest.clock
        self.on_event = on_event
        self.on_reconnect = on_reconnect
        self.on_usage = on_usage  # pools the venue counted more of than we did
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[_Answer]] = {}
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.connects = 0
        self.subscription_id: int | None = None

    @property
    def limiter(self) -> RateLimiter:
        """The REST client's pools (one IP, one account), whichever limiter it holds now."""
        return self.rest.limiter

    # ------------------------------------------------------------------ lifecycle

    async def start(self, timeout_s: float = 10.0) -> None:
        self._task = asyncio.create_task(self._supervise())
        async with asyncio.timeout(timeout_s):
            await self._ready.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._ws is not None:
            await self._ws.close()

    async def drop(self) -> None:
        """Close the socket (tests): the supervisor reconnects and resubscribes."""
        if self._ws is not None:
            await self._ws.close()

    async def _supervise(self) -> None:
        delay = 0.2
        while True:
            try:
                async with self.rest.session().ws_connect(
                    self.endpoints.ws_api_url, autoping=True, max_msg_size=0
                ) as ws:
                    self._ws = ws
                    self.connects += 1
                    reader = asyncio.create_task(self._read(ws))
                    try:
                        await self._authenticate()
                        self._ready.set()
                        delay = 0.2
                        if self.connects > 1 and self.on_reconnect is not None:
                            await self.on_reconnect()
                        await reader
                    finally:
                        reader.cancel()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("binance.ws_api.failed", extra={"error": repr(exc)})
            self._ready.clear()
            self._ws = None
            self._fail_pending(NetworkError("binance ws-api: connection lost"))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _authenticate(self) -> None:
        if self.credentials.is_ed25519:
            await self._call("session.logon", self._signed({}), weight=2)
            answer = await self._call("userDataStream.subscribe", {}, weight=2)
        else:
            params = self._signed({})
            answer = await self._call("userDataStream.subscribe.signature", params, weight=2)
        result = answer.result or {}
        self.subscription_id = result.get("subscriptionId") if isinstance(result, dict) else None

    def _signed(self, params: Mapping[str, object]) -> dict[str, object]:
        full = dict(params)
        full["timestamp"] = self.clock.timestamp()
        return signed_ws_params(self.credentials, full)

    # ------------------------------------------------------------------ requests

    async def request(
        self,
        method: str,
        params: Mapping[str, object],
        *,
        weight: int = 1,
        orders: bool = False,
        signed: bool = True,
    ) -> Any:
        """One WS-API call; returns its `result`. Signed calls carry a fresh `timestamp` (and
        apiKey + signature unless the session is logged on with Ed25519). A -1021 resyncs
        the clock and retries once."""
        await self._ready.wait()
        await self.rest.acquire(weight, orders)
        try:
            answer = await self._call(method, self._params(params, signed), weight=weight)
        except ClockSkewError:
            await self.rest.sync_clock()
            await self.rest.acquire(weight, orders)
            answer = await self._call(method, self._params(params, signed), weight=weight)
        return answer.result

    def _params(self, params: Mapping[str, object], signed: bool) -> dict[str, object]:
        if not signed:
            return dict(params)
        full = dict(params)
        full["recvWindow"] = RECV_WINDOW_MS
        if self.credentials.is_ed25519:  # logged on: timestamp only
            full["timestamp"] = self.clock.timestamp()
            return full
        return self._signed(full)

    async def _call(self, method: str, params: Mapping[str, object], *, weight: int) -> _Answer:
        ws = self._ws
        if ws is None or ws.closed:
            raise NetworkError("binance ws-api: not connected")
        request_id = next(self._ids)
        future: asyncio.Future[_Answer] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await ws.send_str(
                ENCODE({"id": request_id, "method": method, "params": params}).decode()
            )
            async with asyncio.timeout(self.timeout_s):
                answer = await future
        except TimeoutError as exc:
            raise StatusUnknownError(f"binance ws-api {method}: no answer") from exc
        finally:
            self._pending.pop(request_id, None)
        if answer.status == 200:
            return answer
        raise self._error(method, answer)

    def _error(self, method: str, answer: _Answer) -> Exception:
        error = answer.error or {}
        code = int(error.get("code", 0))
        message = f"{method}: {error.get('msg', '')}"
        data = error.get("data") or {}
        retry_at = int(data.get("retryAfter", 0)) if isinstance(data, dict) else 0
        retry_ms = max(retry_at - local_ms(), 1000) if retry_at else 60_000
        if answer.status in (429, 418):
            until = datetime.fromtimestamp((local_ms() + retry_ms) / 1000, UTC)
            self.limiter.block_until(until)
            if answer.status == 418:
                self.rest.banned_until_ms = local_ms() + retry_ms
                return VenueBannedError(f"binance 418 {code}: {message}", retry_ms)
            return RateLimitedError(f"binance 429 {code}: {message}", retry_ms)
        if answer.status >= 500:
            return StatusUnknownError(f"binance {answer.status} {code}: {message}")
        return error_for(code, message, retry_ms)

    # ------------------------------------------------------------------ reading

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                continue
            answer = _DECODE(message.data)
            if answer.event is not None:
                event = answer.event
                if event.get("e") == "serverShutdown":
                    return  # reconnect before being cut off
                try:
                    self.on_event(event)
                except Exception:  # one bad event never kills the reader
                    log.exception("binance.ws_api.event_failed")
                continue
            if answer.rateLimits:
                raised = observe_ws_rate_limits(self.limiter, answer.rateLimits)
                if raised and self.on_usage is not None:
                    self.on_usage(raised)
            if isinstance(answer.id, int):
                future = self._pending.get(answer.id)
                if future is not None and not future.done():
                    future.set_result(answer)

    def _fail_pending(self, error: Exception) -> None:
        for future in self._pending.values():
            if not future.done():
                # the request may have reached the venue before the socket died
                future.set_exception(StatusUnknownError(str(error)))
        self._pending.clear()
