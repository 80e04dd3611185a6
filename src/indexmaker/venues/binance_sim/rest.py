"""REST API at /api/v3 (rest-api.md) and /sapi (wallet): one dispatcher, routes as data.

Each route names its weight (a number, or a function of the parameters: depth by limit,
openOrders 6/80, ...), whether it is signed, and whether it counts as an order. Every answer
carries `X-MBX-USED-WEIGHT-1M`; an accepted order also `X-MBX-ORDER-COUNT-10S/-1D`. Errors are
Binance's `{"code", "msg"}` with its HTTP status (400, 401, 403, 404, 429 + Retry-After, 418,
5xx).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web

from indexmaker.venues.binance_sim.errors import ApiError

Params = dict[str, str]
Handler = Callable[[Params, "Caller"], Any]
_encode = msgspec.json.Encoder().encode


@dataclass(slots=True)
class Caller:
    """Who sent a request: the IP (weight pools) and, for signed requests, the account."""

    ip: str
    account: str | None = None
    api_key: str | None = None


@dataclass(frozen=True, slots=True)
class Route:
    handler: Handler
    weight: int | Callable[[Params], int] = 1
    signed: bool = False  # TRADE / USER_DATA: signature, timestamp, X-MBX-APIKEY
    keyed: bool = False  # USER_STREAM / MARKET_DATA with key only
    order: bool = False  # counts against the ORDERS limits
    sapi: bool = False  # wallet endpoints: their own weight pools (not /api/v3's)


def depth_weight(params: Params) -> int:
    """rest-api.md: limit 1-100 → 5, 101-500 → 25, 501-1000 → 50, 1001-5000 → 250."""
    try:
        limit = int(params.get("limit", "100"))
    except ValueError:
        return 5
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def symbols_param(params: Params) -> list[str] | None:
    """`symbol=X` or `symbols=["X","Y"]` (a JSON array in the query, as on the venue)."""
    if "symbol" in params:
        return [params["symbol"].upper()]
    if "symbols" in params:
        try:
            value = msgspec.json.decode(params["symbols"])
        except msgspec.DecodeError:
            raise ApiError(-1100, "Illegal characters found in parameter 'symbols'.") from None
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            raise ApiError(-1100, "Illegal characters found in parameter 'symbols'.")
        return [s.upper() for s in value]
    return None


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=_encode(body), status=status, content_type="application/json", headers=headers
    )


def error_response(error: ApiError, headers: dict[str, str]) -> web.Response:
    if error.retry_after is not None:
        headers["Retry-After"] = str(int(error.retry_after))
    return json_response(error.body(), error.status, headers)


async def read_params(request: web.Request) -> tuple[Params, str, str]:
    """(params, raw query, raw body). The query wins over the body for a name in both
    (rest-api.md "SIGNED endpoint security"). Raw strings are kept: signatures cover bytes."""
    raw_query = request.query_string
    raw_body = ""
    if request.can_read_body:
        raw_body = (await request.read()).decode("utf-8", "replace")
    params: Params = {}
    for key, value in parse_qsl(raw_body, keep_blank_values=True):
        params[key] = value
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        params[key] = value
    return params, raw_query, raw_body
