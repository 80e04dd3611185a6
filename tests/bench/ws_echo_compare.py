"""Bare WebSocket echo throughput: `websockets` vs `aiohttp` servers (uvloop if importable).

Chooses the FIX server's library by measurement (docs/decisions.md). Loopback only, bounded
(each run stops after a fixed message count or a time cap), servers run in a child process so
client and server do not share one event loop. Same client (aiohttp) against every server, so
the server is the only variable. Prints medians of `--runs` runs.

    .venv/bin/python tests/bench/ws_echo_compare.py [--runs 3] [--messages 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import time
from collections.abc import Callable
from typing import Any

import aiohttp

# About the size of a signed NewIndexOrder frame with its trailer.
FRAME = (
    '{"standard_header":{"msg_type":"NewIndexOrder","sender_comp_id":"CLIENT",'
    '"target_comp_id":"SERVER","seq_num":1,"timestamp":"2025-10-01T00:00:00.000Z"},'
    '"chain_id":1,"address":"0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",'
    '"client_order_id":"O-1","symbol":"SY100","side":"1","amount":"1000",'
    '"standard_trailer":{"public_key":["0x04'
    + "ab" * 64
    + '"],"signature":["0x'
    + "cd" * 64
    + '"]}}'
)
TIME_CAP_S = 20.0


def _use_uvloop(flag: bool) -> None:
    if flag:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def _serve_websockets(port_q: Any, stop: Any) -> None:
    from websockets.asyncio.server import serve

    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", 0, compression=None, max_size=2**16) as server:
        port_q.put(next(iter(server.sockets)).getsockname()[1])
        while not stop.is_set():
            await asyncio.sleep(0.05)


def aiohttp_echo_app() -> Any:
    """The bare aiohttp echo server every FIX benchmark compares against (bench_fix too)."""
    from aiohttp import WSMsgType, web

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=2**16)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                await ws.send_str(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    return app


async def _serve_aiohttp(port_q: Any, stop: Any) -> None:
    from aiohttp import web

    runner = web.AppRunner(aiohttp_echo_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port_q.put(runner.addresses[0][1])
    while not stop.is_set():
        await asyncio.sleep(0.05)
    await runner.cleanup()


SERVERS: dict[str, Callable[[Any, Any], Any]] = {
    "websockets": _serve_websockets,
    "aiohttp": _serve_aiohttp,
}


def _server_main(kind: str, uvloop: bool, port_q: Any, stop: Any) -> None:
    _use_uvloop(uvloop)
    asyncio.run(SERVERS[kind](port_q, stop))


async def _request_response(url: str, n: int) -> tuple[float, float, float]:
    latencies: list[float] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url, compress=0) as ws:
        deadline = time.perf_counter() + TIME_CAP_S
        start = time.perf_counter()
        for _ in range(n):
            t0 = time.perf_counter()
            await ws.send_str(FRAME)
            await ws.receive()
            latencies.append(time.perf_counter() - t0)
            if t0 > deadline:
                break
        elapsed = time.perf_counter() - start
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1e6
    p99 = latencies[int(len(latencies) * 0.99)] * 1e6
    return len(latencies) / elapsed, p50, p99


async def _pipelined(url: str, n: int) -> float:
    async with aiohttp.ClientSession() as http, http.ws_connect(url, compress=0) as ws:

        async def sender() -> None:
            for i in range(n):
                await ws.send_str(FRAME)
                if i % 256 == 0:
                    await asyncio.sleep(0)  # let the reader run: bounded buffering

        start = time.perf_counter()
        task = asyncio.create_task(sender())
        received = 0
        while received < n and time.perf_counter() - start < TIME_CAP_S:
            await ws.receive()
            received += 1
        elapsed = time.perf_counter() - start
        await task
    return received / elapsed


def run_one(kind: str, uvloop: bool, messages: int) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    port_q, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_server_main, args=(kind, uvloop, port_q, stop), daemon=True)
    proc.start()
    try:
        port = port_q.get(timeout=20)
        path = "/ws" if kind == "aiohttp" else "/"
        url = f"ws://127.0.0.1:{port}{path}"
        _use_uvloop(uvloop)  # the client loop too, as a production client/server pair would
        rps, p50, p99 = asyncio.run(_request_response(url, messages))
        piped = asyncio.run(_pipelined(url, messages * 4))
    finally:
        stop.set()
        proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()
        asyncio.set_event_loop_policy(None)
    return {"rr_per_s": rps, "p50_us": p50, "p99_us": p99, "pipelined_per_s": piped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args()
    try:
        import uvloop  # noqa: F401

        variants = [
            ("websockets", False),
            ("aiohttp", False),
            ("websockets", True),
            ("aiohttp", True),
        ]
    except ImportError:
        variants = [("websockets", False), ("aiohttp", False)]
        print("uvloop not importable: skipped")
    print(f"frame {len(FRAME)} bytes, {args.messages} req/resp + {args.messages * 4} pipelined")
    print(f"{'server':<22}{'req/resp /s':>12}{'p50 µs':>9}{'p99 µs':>9}{'pipelined /s':>14}")
    baseline: float | None = None
    for kind, uv in variants:
        results = [run_one(kind, uv, args.messages) for _ in range(args.runs)]
        med = {k: statistics.median(r[k] for r in results) for k in results[0]}
        baseline = baseline or med["rr_per_s"]
        name = kind + (" + uvloop" if uv else "")
        print(
            f"{name:<22}{med['rr_per_s']:>12,.0f}{med['p50_us']:>9.0f}{med['p99_us']:>9.0f}"
            f"{med['pipelined_per_s']:>14,.0f}   (req/resp ×{med['rr_per_s'] / baseline:.2f}"
            " vs websockets)"
        )


if __name__ == "__main__":
    main()
