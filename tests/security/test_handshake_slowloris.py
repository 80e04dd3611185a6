"""Slowloris before the WebSocket upgrade (issue 8, "Bounded cost per connection"): a peer
that opens TCP connections to the FIX port and sends an HTTP request line and headers but
never the blank line that ends them. Found in review: 200 such sockets from one address
stayed open for 75 s against `serve` (per-source cap 64, idle deadline 60 s), because both
rules applied only to upgraded sessions; each holds a file descriptor, so enough of them
exhaust the process's limit and every listener stops accepting."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import urlsplit

from .edge import HONEST_SOURCE, peers, running_server, until
from .test_connection_costs import server_config

PARTIAL_REQUEST = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"


async def _half_open(url: str, n: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    parts = urlsplit(url)
    out = []
    for _ in range(n):
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(PARTIAL_REQUEST)  # never the blank line: the request never arrives
        await writer.drain()
        out.append((reader, writer))
    return out


async def _closed(reader: asyncio.StreamReader, timeout: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), timeout) == b""
    except TimeoutError:  # before OSError, its base class
        return False
    except OSError:  # reset
        return True


async def test_half_sent_requests_are_capped_per_source_and_closed_at_the_deadline() -> None:
    config = server_config(
        max_connections_per_source=5, unauthenticated_idle=timedelta(milliseconds=400)
    )
    async with running_server(config) as server:
        sockets = await _half_open(server.url, 8)
        try:
            # Beyond the per-source cap: reset at accept, at once.
            refused = await asyncio.gather(*(_closed(r, 0.3) for r, _ in sockets))
            assert sum(refused) == 3, refused
            # Another source is not affected, and an upgraded session is not cut.
            async with peers(server.url, HONEST_SOURCE) as honest:
                client = await honest()
                # Past the deadline: every half-sent request is closed.
                closed = await asyncio.gather(*(_closed(r, 3) for r, _ in sockets))
                assert all(closed), closed
                reply = await client.request(lambda seq: client.wallet.order(seq, "o-1"))
                assert reply["standard_header"]["msg_type"] == "ACK"
            # The cap is free again: a new connection from that source is admitted.
            (reader, writer), *_ = await _half_open(server.url, 1)
            assert not await _closed(reader, 0.1)
            await until(lambda: True)
            writer.close()
        finally:
            for _, writer in sockets:
                writer.close()
