"""Binance diff-depth messages applied per second through the full path (socket -> decode ->
book), beside ccxt's own Binance order-book handling fed the same frames over the same socket.

A child process (binance_depth_server.py, stopped by PID) replays pre-built combined-stream
frames on loopback. Ours: `BinanceMarketData` (msgspec into Decimal, the sync state machine,
the exact-price `OrderBook`). Baseline: an aiohttp client doing what ccxt.pro's binance does
per message: `json.loads`, the U/u sequence check, `handle_order_book_message` into ccxt's
`OrderBook` (float prices). Needs `pip install -e '.[bench]'` for ccxt; without it only our
figure is printed.

Binance's real rate (each symbol's @100ms stream at most 10 messages/s: 2,000/s for 200
symbols) is measured, not extrapolated: the feed sends one diff per symbol every 100 ms and the
bench process's CPU time over the window is divided by the wall time. Ours there is the whole
connector side of the hand-off: `BinanceVenue`'s books (market data + a `BookUpdate` of exact
Decimals per diff into a sink); the baseline is the ccxt client on the same paced feed.
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

from indexmaker.core.events import BookUpdate
from indexmaker.core.ids import instrument
from indexmaker.venues.binance.book_sync import SyncAction
from indexmaker.venues.binance.market_data import BinanceMarketData, MarketDataConfig
from indexmaker.venues.binance.rest import BinanceEndpoints, BinanceRest
from indexmaker.venues.binance.signing import Credentials
from indexmaker.venues.binance.venue import BinanceVenue, BinanceVenueConfig

HERE = Path(__file__).parent
MESSAGES = 20_000
RUNS = 5  # the machine is shared: runs alternate with the baseline, ratios are per run
PACED_SYMBOLS = 200
PACED_SECONDS = 5
PACE_MS = 100  # Binance's @depth@100ms


class Server:
    def __init__(self, symbols: int, messages: int, pace_ms: int = 0) -> None:
        self._dir = tempfile.TemporaryDirectory()
        port_file = Path(self._dir.name) / "port"
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "binance_depth_server.py"),
                str(port_file),
                str(symbols),
                str(messages),
                str(pace_ms),
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


async def until_live(market: BinanceMarketData, poll_s: float) -> float:
    """Wait (bounded) until every book is synchronised; returns the run's deadline."""
    deadline = time.monotonic() + 120
    while not all(s.state.value == "live" for s in market.books.values()):
        if time.monotonic() > deadline:
            raise RuntimeError("our connector did not synchronise")
        await asyncio.sleep(poll_s)
    return deadline


def settle(market: BinanceMarketData) -> None:
    """Apply what the books still hold queued (tick_book.py applies diffs lazily): the timed
    work must include every level of every message, as ccxt's does."""
    for sync in market.books.values():
        if sync.settle() is not SyncAction.NONE or sync.book.pending:
            raise RuntimeError(f"{sync.symbol}: not settled ({sync.reason})")


async def ours(url: str, symbols: list[str], messages: int) -> tuple[float, float]:
    """(messages/s of wall time, messages per CPU-second of this process) once synced."""
    endpoints = BinanceEndpoints(rest_url=url, ws_api_url="", stream_url=url.replace("http", "ws"))
    rest = BinanceRest(endpoints)
    market = BinanceMarketData(
        rest, endpoints, symbols, MarketDataConfig(book_ticker=False, receive_timeout_s=60)
    )
    await market.start()
    try:
        deadline = await until_live(market, poll_s=0.0005)
        start, cpu = time.perf_counter(), time.process_time()
        # the feed starts once every snapshot is asked for, so some frames are applied while
        # the last snapshots arrive: only what is applied from here on is timed
        already = sum(s.stats.applied for s in market.books.values())
        while sum(s.stats.applied for s in market.books.values()) < messages:
            if time.monotonic() > deadline:
                raise RuntimeError("our connector did not apply every message")
            await asyncio.sleep(0.005)
        settle(market)
        timed = messages - already
        return timed / (time.perf_counter() - start), timed / (time.process_time() - cpu)
    finally:
        await market.stop()
        await rest.close()


async def ours_paced(url: str, symbols: list[str], messages: int, handoff: bool) -> float:
    """Share of one core (CPU time / wall time) from the last snapshot to the last diff of
    the paced feed: `BinanceMarketData` alone (socket -> decode -> book), or with `handoff`
    the whole `BinanceVenue` book side (plus a `BookUpdate` per diff into a sink)."""
    endpoints = BinanceEndpoints(rest_url=url, ws_api_url="", stream_url=url.replace("http", "ws"))
    settings = MarketDataConfig(book_ticker=False, receive_timeout_s=60)
    venue = BinanceVenue(
        BinanceVenueConfig(endpoints=endpoints, market=settings),
        Credentials("bench-key", hmac_secret="bench-secret"),
    )
    handed: list[int] = [0]

    async def sink(event: object) -> None:
        handed[0] += isinstance(event, BookUpdate)

    if handoff:
        venue._sink = sink  # the hand-off without start(): no exchangeInfo, no user stream
        await venue.subscribe_books([instrument(name) for name in symbols])
        market = venue.market
        assert market is not None
    else:
        market = BinanceMarketData(venue.rest, endpoints, symbols, settings)
        await market.start()
    try:
        deadline = await until_live(market, poll_s=0.01)
        cpu, wall = time.process_time(), time.perf_counter()
        while sum(s.stats.applied for s in market.books.values()) < messages:
            if time.monotonic() > deadline:
                raise RuntimeError("our connector did not apply every message")
            await asyncio.sleep(0.05)
        settle(market)
        share = (time.process_time() - cpu) / (time.perf_counter() - wall)
        if handoff and not handed[0]:
            raise RuntimeError("no BookUpdate reached the sink")
        return share
    finally:
        await market.stop()
        await venue.stop()


async def ccxt_baseline(url: str, symbols: list[str], messages: int) -> tuple[float, float] | None:
    """(messages/s, share of one core) of the ccxt client from the warm-up's end."""
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
        start = cpu = 0.0
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
                    cpu = time.process_time()
                elif applied == messages:
                    break
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu
    await exchange.close()
    if applied != messages:
        raise RuntimeError(f"ccxt baseline applied {applied} of {messages}")
    return (messages - len(symbols)) / elapsed, cpu / elapsed


def names_of(count: int) -> list[str]:
    return [f"S{index:03d}USDC" for index in range(count)]


def baseline(count: int, messages: int, pace_ms: int = 0) -> tuple[float, float] | None:
    server = Server(count, messages, pace_ms)
    try:
        return asyncio.run(ccxt_baseline(server.url, names_of(count), messages))
    finally:
        server.stop()


def measure(symbol_count: int) -> list[float] | None:
    """Medians of ours /s, ccxt /s, their per-run ratio (wall time), then the same per
    CPU-second of the client process. Runs alternate; on this shared machine the wall-time
    ratio swings with whoever else runs, the CPU-time ratio much less (time the process is
    descheduled is not counted). None without ccxt."""
    rows: list[list[float]] = []
    for _ in range(RUNS):
        server = Server(symbol_count, MESSAGES)
        try:
            wall, cpu = asyncio.run(ours(server.url, names_of(symbol_count), MESSAGES))
        finally:
            server.stop()
        theirs = baseline(symbol_count, MESSAGES)
        if theirs is None:
            return None
        their_wall, their_share = theirs
        their_cpu = their_wall / their_share
        rows.append([wall, their_wall, wall / their_wall, cpu, their_cpu, cpu / their_cpu])
    return [statistics.median(column) for column in zip(*rows, strict=True)]


def measure_paced() -> tuple[float, float, float | None]:
    """Median shares of one core at Binance's real rate: ours (market data alone), ours with
    the venue's hand-off, ccxt's."""
    messages = PACED_SYMBOLS * (1 + PACED_SECONDS * 1000 // PACE_MS)
    names = names_of(PACED_SYMBOLS)
    shares: dict[str, list[float]] = {"alone": [], "handoff": [], "ccxt": []}
    for _ in range(RUNS):
        for kind in ("alone", "handoff"):
            server = Server(PACED_SYMBOLS, messages, PACE_MS)
            try:
                run_one = ours_paced(server.url, names, messages, kind == "handoff")
                shares[kind].append(asyncio.run(run_one))
            finally:
                server.stop()
        theirs = baseline(PACED_SYMBOLS, messages, PACE_MS)
        if theirs is not None:
            shares["ccxt"].append(theirs[1])
    ccxt = statistics.median(shares["ccxt"]) if shares["ccxt"] else None
    return statistics.median(shares["alone"]), statistics.median(shares["handoff"]), ccxt


def run() -> list[str]:
    load = os.getloadavg()[0]
    lines = [
        f"diff-depth messages/s, socket -> decode -> book, {MESSAGES:,} messages of 20 level "
        f"changes, median of {RUNS} (load average {load:.1f} at the start)",
        "| symbols | ours (exact) /s | ccxt (float) /s | ratio | ours per CPU-s | "
        "ccxt per CPU-s | ratio, CPU time |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for count in (1, 50, 200):
        figures = measure(count)
        if figures is None:
            lines.append(f"| {count} | n/a: ccxt is not installed (pip install -e '.[bench]') |")
            continue
        wall, theirs, ratio, cpu, their_cpu, cpu_ratio = figures
        lines.append(
            f"| {count} | {wall:,.0f} | {theirs:,.0f} | x{ratio:.2f} | {cpu:,.0f} | "
            f"{their_cpu:,.0f} | x{cpu_ratio:.2f} |"
        )
    alone, handoff, ccxt_share = measure_paced()
    base = f"{ccxt_share * 100:.1f}%" if ccxt_share is not None else "-"
    lines.append(
        f"{PACED_SYMBOLS} symbols at Binance's rate ({PACED_SYMBOLS * 1000 // PACE_MS:,} diffs/s, "
        f"{PACED_SECONDS} s), share of one core, median of {RUNS}: ours {alone * 100:.1f}% "
        f"(socket -> decode -> book), {handoff * 100:.1f}% with the venue's hand-off to the "
        f"core; ccxt {base} (load average {os.getloadavg()[0]:.1f} at the end)"
    )
    return lines


if __name__ == "__main__":
    print("\n".join(run()))
