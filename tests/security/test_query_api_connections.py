"""The query API's file descriptors are bounded like the FIX edge's: a source holds at most
`max_connections_per_source` connections, and a half-sent request (slowloris) or an idle
keep-alive is closed at `connection_lifetime_seconds` — found by a hostile review: 390
half-sent requests held :3001's descriptors until the FIX port stopped accepting."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from indexmaker.query.api import QueryApi, QueryApiConfig

pytestmark = pytest.mark.asyncio


async def _api(lifetime: float) -> QueryApi:
    config = QueryApiConfig(
        port=0, max_connections_per_source=4, connection_lifetime_seconds=lifetime
    )

    async def quiet() -> None:
        return None

    # /openapi.json reads only the route table: no engine or health is consulted.
    api = QueryApi(config, engine=None, quiet=quiet, health=None)  # type: ignore[arg-type]
    await api.start()
    return api


async def _half_sent(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n")  # never the blank line
    await writer.drain()
    return reader, writer


async def _closed(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), within) == b""
    except ConnectionError:
        return True  # reset at accept: closed too
    except TimeoutError:
        return False


async def test_half_sent_requests_are_capped_per_source_and_an_honest_request_still_served() -> (
    None
):
    api = await _api(lifetime=30.0)
    port = int(api.url.rsplit(":", 1)[1])
    held: list[Any] = []
    try:
        for _ in range(4):
            held.append(await _half_sent(port))
        extra_reader, extra_writer = await _half_sent(port)  # the fifth from this source
        assert await _closed(extra_reader, within=5.0)
        extra_writer.close()
        held.pop()[1].close()  # one slot freed: an honest client gets its answer
        await asyncio.sleep(0.05)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{api.url}/openapi.json") as response,
        ):
            assert response.status == 200
            assert (await response.json())["openapi"].startswith("3.1")
    finally:
        for _, writer in held:
            writer.close()
        await api.stop()


async def test_a_half_sent_request_is_closed_at_the_connection_lifetime() -> None:
    api = await _api(lifetime=0.3)
    port = int(api.url.rsplit(":", 1)[1])
    try:
        reader, writer = await _half_sent(port)
        assert await _closed(reader, within=5.0)
        writer.close()
    finally:
        await api.stop()
