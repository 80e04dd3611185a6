"""A loopback Binance-wire depth feed for the market-data benchmark (run as a child process).

`python binance_depth_server.py PORT_FILE SYMBOLS MESSAGES [PACE_MS]` listens on 127.0.0.1
(ephemeral port, written to PORT_FILE), answers `GET /api/v3/depth` with a small snapshot at
update id 0, and on each `/stream` connection, after the first SUBSCRIBE, sends MESSAGES
combined-stream depth diffs (round-robin over SYMBOLS symbols, 10 bid + 10 ask level changes
each, contiguous U/u per symbol) as fast as the socket takes them, or with PACE_MS one diff
per symbol every PACE_MS (Binance's real rate is one per symbol per 100 ms). Frames are built
before the
first client connects, so the server's own cost is only the socket writes. The first frame
of each symbol is a warm-up sent before the client has its snapshots; the rest follow once
it has fetched them all.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path

from aiohttp import WSMsgType, web


def symbols(count: int) -> list[str]:
    return [f"S{index:03d}USDC" for index in range(count)]


def frames(count: int, messages: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    names = symbols(count)
    last = dict.fromkeys(names, 0)
    out = []
    for number in range(messages):
        name = names[number % count]
        mid = 1000 + (number % count)
        bids = [
            [
                f"{mid - rng.randint(1, 400) / 100:.8f}",
                f"{rng.choice([0, rng.randint(1, 9999)]) / 1000:.8f}",
            ]
            for _ in range(10)
        ]
        asks = [
            [
                f"{mid + rng.randint(1, 400) / 100:.8f}",
                f"{rng.choice([0, rng.randint(1, 9999)]) / 1000:.8f}",
            ]
            for _ in range(10)
        ]
        first = last[name] + 1
        last[name] = first
        data = {
            "e": "depthUpdate",
            "E": 1700000000000 + number,
            "s": name,
            "U": first,
            "u": first,
            "b": bids,
            "a": asks,
        }
        out.append(
            json.dumps(
                {"stream": f"{name.lower()}@depth@100ms", "data": data}, separators=(",", ":")
            )
        )
    return out


def ws_text_frame(text: str) -> bytes:
    """An unmasked server-to-client text frame (RFC 6455 §5.2)."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = bytes([0x81, size])
    elif size < 65536:
        header = bytes([0x81, 126]) + size.to_bytes(2, "big")
    else:
        header = bytes([0x81, 127]) + size.to_bytes(8, "big")
    return header + payload


def snapshot(name: str) -> dict[str, object]:
    mid = 1000 + int(name[1:4])
    return {
        "lastUpdateId": 0,
        "bids": [[f"{mid - 5 - i / 100:.8f}", "1.00000000"] for i in range(5)],
        "asks": [[f"{mid + 5 + i / 100:.8f}", "1.00000000"] for i in range(5)],
    }


def main() -> None:
    port_file, count, messages = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    pace_ms = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    prepared = frames(count, messages)
    state = {"depth": 0}
    rest = [ws_text_frame(frame) for frame in prepared[count:]]
    # one write per round (a diff for every symbol) when paced; everything at once otherwise
    rounds = [b"".join(rest[i : i + count]) for i in range(0, len(rest), count)]
    blob = b"".join(rounds)

    async def stream(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                request_id = json.loads(message.data).get("id")
                await ws.send_str(json.dumps({"result": None, "id": request_id}))
                break
        # Warm-up: one frame per symbol, then wait until the client holds every snapshot, so
        # the measured part is pure streaming; the socket stays open until the client leaves.
        for frame in prepared[:count]:
            await ws.send_str(frame)
        while state["depth"] < count:
            await asyncio.sleep(0.001)
        # One transport write of pre-built frames: the feed must outrun any client, so the
        # figure measures the client's path, not this server's per-frame send cost.
        assert request.transport is not None
        if pace_ms:
            loop = asyncio.get_running_loop()
            due = loop.time()
            for chunk in rounds:
                request.transport.write(chunk)
                due += pace_ms / 1000
                await asyncio.sleep(max(0.0, due - loop.time()))
        else:
            request.transport.write(blob)
        async for _ in ws:
            pass
        return ws

    async def depth(request: web.Request) -> web.Response:
        state["depth"] += 1
        return web.json_response(snapshot(request.query["symbol"]))

    app = web.Application()
    app.router.add_get("/stream", stream)
    app.router.add_get("/api/v3/depth", depth)

    async def run() -> None:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port_file.write_text(str(server.sockets[0].getsockname()[1]))  # type: ignore[union-attr]
        await asyncio.Event().wait()  # until the parent kills us by PID

    asyncio.run(run())


if __name__ == "__main__":
    main()
