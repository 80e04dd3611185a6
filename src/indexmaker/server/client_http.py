"""The service's plain HTTP endpoints beside the WebSocket: GET /info and POST /sim/deposit."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from indexmaker.server.client_events import ClientError
from indexmaker.server.wire_values import fmt_decimal


def http_base(url: str) -> str:
    """http(s)://host:port of a ws(s):// (or http) URL."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "", "", ""))


async def fetch_server_info(url: str, timeout: float = 10) -> dict[str, Any]:
    """GET /info of the service behind `url` (server address and public key, indexes)."""
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with (
        aiohttp.ClientSession(timeout=client_timeout) as session,
        session.get(http_base(url) + "/info") as response,
    ):
        response.raise_for_status()
        info: dict[str, Any] = await response.json()
        return info


async def sim_deposit(
    url: str, address: str, amount: Decimal | str, timeout: float = 10
) -> dict[str, Any]:
    """Credit `amount` USDC to `address` on the service's simulated chain (POST /sim/deposit)."""
    text = fmt_decimal(amount) if isinstance(amount, Decimal) else amount
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        body = {"address": address, "amount": text}
        async with session.post(http_base(url) + "/sim/deposit", json=body) as response:
            result: dict[str, Any] = await response.json(content_type=None)
            if response.status != 200:
                raise ClientError(f"deposit refused: {result.get('error', response.status)}")
            return result
