"""Binance diff-depth messages applied per second through the full path (socket -> decode ->
book), beside ccxt's own Binance order-book handling fed the same frames over the same socket.

A child process (binance_depth_server.py, stopped by PID) replays pre-built combined-stream
frames on loopback. Ours: `BinanceMarketData` (msgspec into Decimal, the sync state machine,
the exact-price `OrderBook`). Baseline: an aiohttp client doing what ccxt.pro's binance does
per message: `json.loads`, the U/u sequence check, `handle_order_book_message` into ccxt's
`OrderBook` (float prices). Needs `pip install -e '.[bench]'` for ccxt; without it only our
figure is printed. 200 symbols at Binance's real rate (each symbol's @100ms stream at most
10 messages/s, so at most 2,000/s) cost 2,000 / (our rate) of one core.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from indexmaker.venues.binance.market_data import BinanceMarketData, MarketDataConfig
from indexmaker.venues.binance.rest import BinanceEndpoints, BinanceRest

HERE = Path(__file__).parent
MESSAGES = 20_000
RUNS = 3


class Server:
    def __init__(self, symbols: int, messages: int) -> None:
        self._dir = tempfile.TemporaryDirectory()
        port_file = Path(self._dir.name) / "port"
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "binance_depth_server.py"),
                str(port_file),
                str(symbols),
                str(messages),
            ]
        )
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError("depth server did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port_file.read_text()}"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        self._dir.cleanup()


async def ours(url: str, symbols: list[str], messages: int) -> float:
    endpoints = BinanceEndpoints(rest_url=url, ws_api_url="", stream_url=url.replace("http", "ws"))
    rest = BinanceRest(endpoints)
    market = BinanceMarketData(
        rest, endpoints, symbols, MarketDataConfig(book_ticker=False, receive_timeout_s=60)
    )
    await market.start()
    try:
        deadline = time.monotonic() + 120
        while not all(s.state.value == "live" for s in market.books.values()):
            if time.monotonic() > deadline:
                raise RuntimeError("our connector did not synchronise")
            await asyncio.sleep(0.0005)
        start = time.perf_counter()
        while sum(s.stats.applied for s in market.books.values()) < messages:
            if time.monotonic() > deadline:
                raise RuntimeError("our connector did not apply every message")
            await asyncio.sleep(0.002)
        return (messages - len(symbols)) / (time.perf_counter() - start)
    finally:
        await market.stop()
        await rest.close()


async def ccxt_baseline(url: str, symbols: list[str], messages: int) -> float | None:
    try:
        import ccxt.pro as ccxtpro
    except ImportError:
        return None
    exchange = ccxtpro.binance()
    books = {}
    async with aiohttp.ClientSession() as session:
        for name in symbols:  # same snapshots as ours, through ccxt's own book class
            async with session.get(f"{url}/api/v3/depth", params={"symbol": name}) as answer:
                snap = json.loads(await answer.read())
            book = exchange.order_book(
                {
                    "bids": [[float(p), float(q)] for p, q in snap["bids"]],
                    "asks": [[float(p), float(q)] for p, q in snap["asks"]],
                    "nonce": snap["lastUpdateId"],
                }
            )
            books[name] = book
        applied = 0
        start = 0.0
        async with session.ws_connect(f"{url.replace('http', 'ws')}/stream") as ws:
            params = [f"{s.lower()}@depth@100ms" for s in symbols]
            await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": params, "id": 1}))
            async for message in ws:
                frame = json.loads(message.data)
                data = frame.get("data")
                if data is None:
                    continue
                book = books[data["s"]]
                nonce = book["nonce"]
                if data["u"] <= nonce:  # ccxt's handle_order_book sequence rules
                    continue
                if data["U"] > nonce + 1:
                    raise RuntimeError("ccxt baseline saw a gap")
                exchange.handle_order_book_message(None, data, book)
                applied += 1
                if applied == len(symbols):
                    start = time.perf_counter()  # warm-up done, as for ours
                elif applied == messages:
                    break
        elapsed = time.perf_counter() - start
    await exchange.close()
    if applied != messages:
        raise RuntimeError(f"ccxt baseline applied {applied} of {messages}")
    return (messages - len(symbols)) / elapsed


def measure(symbol_count: int) -> tuple[float, float | None]:
    names = [f"S{index:03d}USDC" for index in range(symbol_count)]
    ours_rates: list[float] = []
    ccxt_rates: list[float] = []
    for _ in range(RUNS):
        server = Server(symbol_count, MESSAGES)
        try:
            ours_rates.append(asyncio.run(ours(server.url, names, MESSAGES)))
        finally:
            server.stop()
        server = Server(symbol_count, MESSAGES)
        try:
            rate = asyncio.run(ccxt_baseline(server.url, names, MESSAGES))
        finally:
            server.stop()
        if rate is not None:
            ccxt_rates.append(rate)
    return statistics.median(ours_rates), (statistics.median(ccxt_rates) if ccxt_rates else None)


def run() -> list[str]:
    lines = [
        f"diff-depth messages/s, socket -> decode -> book, {MESSAGES:,} messages of 20 level "
        f"changes, median of {RUNS}",
        "| symbols | ours (exact) /s | ccxt (float) /s | ratio | 200 sym @ 2,000 msg/s, % core |",
        "|---:|---:|---:|---:|---:|",
    ]
    for count in (1, 50, 200):
        mine, theirs = measure(count)
        ratio = f"x{mine / theirs:.2f}" if theirs else "n/a (no ccxt)"
        base = f"{theirs:,.0f}" if theirs else "-"
        lines.append(f"| {count} | {mine:,.0f} | {base} | {ratio} | {2000 / mine * 100:.1f}% |")
    return lines


if __name__ == "__main__":
    print("\n".join(run()))
