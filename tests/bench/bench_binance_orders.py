"""Orders per second through the Binance connector (WebSocket API `order.place`, Ed25519
session, tracked before sending, answer turned into events), against the exchange-sim process.

Two runs in the same session: (a) the venue's real ORDERS limit (50 per 10 s in the docs'
example), where the figure to beat is the limit itself and the count of 429s must stay 0; (b)
the limits lifted, where the connector's own cost shows (8 orders in flight). Each order is a
non-crossing LIMIT IOC (it expires at once, so the book never runs dry).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from decimal import Decimal
from pathlib import Path

from indexmaker.app.binance_wiring import ExchangeSimProcess
from indexmaker.core.errors import RateLimitedError
from indexmaker.core.events import PlaceExchangeOrder
from indexmaker.core.ids import BatchId, ExchangeOrderId, instrument
from indexmaker.core.money import round_up_to_step
from indexmaker.model.side import Side
from indexmaker.venues.binance.instruments import Instruments
from indexmaker.venues.binance.orders import OrderBookkeeping
from indexmaker.venues.binance.rest import BinanceEndpoints, BinanceRest
from indexmaker.venues.binance.signing import Credentials, load_ed25519_pem
from indexmaker.venues.binance.wire import EXCHANGE_INFO
from indexmaker.venues.binance.ws_api import BinanceWsApi
from indexmaker.venues.binance_sim.config import TEST_ED25519_API_KEY, TEST_ED25519_PRIVATE_PEM

INDEXMAKER = str(Path(sys.executable).with_name("indexmaker"))
PAIR = instrument("BTCUSDC")


def Sim(*args: str) -> ExchangeSimProcess:
    return ExchangeSimProcess("--symbols", "BTCUSDC", *args)


async def place_many(url: str, count: int, in_flight: int) -> tuple[float, int, int]:
    """(orders/s, orders the venue answered, local refusals) for `count` orders."""
    endpoints = BinanceEndpoints(
        url, f"{url.replace('http', 'ws')}/ws-api/v3", url.replace("http", "ws")
    )
    credentials = Credentials(
        TEST_ED25519_API_KEY, ed25519_key=load_ed25519_pem(TEST_ED25519_PRIVATE_PEM.encode())
    )
    rest = BinanceRest(endpoints, credentials, max_wait_s=30)
    instruments = Instruments(venue=PAIR.venue)
    instruments.apply(
        EXCHANGE_INFO.decode(await rest.public_bytes("/api/v3/exchangeInfo", weight=20))
    )
    rest.limiter = instruments.limiter()
    await rest.sync_clock()
    rules = instruments.rules[PAIR]
    depth = await rest.public("/api/v3/depth", {"symbol": "BTCUSDC", "limit": 5}, weight=5)
    price = Decimal(depth["bids"][-1][0]) - 100 * rules.tick_size  # never crosses
    quantity = round_up_to_step(Decimal(10) / price, rules.step_size)
    books = OrderBookkeeping()
    ws = BinanceWsApi(endpoints, credentials, rest, on_event=lambda event: None)
    await ws.start()
    ids = itertools.count()
    answered = refused = 0

    async def worker(n: int) -> None:
        nonlocal answered, refused
        for _ in range(n):
            order = PlaceExchangeOrder(
                ExchangeOrderId(f"b-{next(ids)}"), BatchId(1), PAIR, Side.BUY, price, quantity
            )
            books.track(order)
            try:
                books.on_order_answer(
                    await ws.request("order.place", books.place_params(order), orders=True)
                )
                answered += 1
            except RateLimitedError as exc:
                if "local" not in str(exc):
                    raise  # the venue answered 429/418: the pacing failed
                refused += 1

    start = time.perf_counter()
    try:
        await asyncio.gather(*(worker(count // in_flight) for _ in range(in_flight)))
        elapsed = time.perf_counter() - start
    finally:
        await ws.stop()
        await rest.close()
    return answered / elapsed, answered, refused


async def fill_latency(url: str, count: int) -> tuple[float, float, int]:
    """(p50 ms, p99 ms, fills): from the trade's time on the venue (`transactTime`, ms) to the
    fill reaching the engine's input sink through `BinanceVenue`."""
    from datetime import UTC, datetime

    from indexmaker.core.events import EngineInput, ExchangeFill
    from indexmaker.venues.binance.venue import BinanceVenue, BinanceVenueConfig

    ws = url.replace("http", "ws")
    endpoints = BinanceEndpoints(url, f"{ws}/ws-api/v3", ws)
    credentials = Credentials(
        TEST_ED25519_API_KEY, ed25519_key=load_ed25519_pem(TEST_ED25519_PRIVATE_PEM.encode())
    )
    venue = BinanceVenue(BinanceVenueConfig(endpoints, pairs=("BTCUSDC",)), credentials)
    delays: list[float] = []

    async def sink(event: EngineInput) -> None:
        if isinstance(event, ExchangeFill):
            delays.append((datetime.now(UTC) - event.event_time).total_seconds() * 1000)

    await venue.start(sink)
    try:
        rules = (await venue.instruments())[PAIR]
        for number in range(count):
            depth = await venue.rest.public(
                "/api/v3/depth", {"symbol": "BTCUSDC", "limit": 5}, weight=5
            )
            price = Decimal(depth["asks"][0][0])
            quantity = round_up_to_step(Decimal(10) / price, rules.step_size)
            await venue.place(
                PlaceExchangeOrder(
                    ExchangeOrderId(f"lat-{number}"), BatchId(1), PAIR, Side.BUY, price, quantity
                )
            )
    finally:
        await venue.stop()
    delays.sort()
    return delays[len(delays) // 2], delays[int(len(delays) * 0.99)], len(delays)


def run() -> list[str]:
    lines = [
        "orders through the connector (WS-API order.place, Ed25519 session) vs the venue limit"
    ]
    sim = Sim()  # the docs' limits: ORDERS 50 / 10 s
    try:
        rate, answered, refused = asyncio.run(place_many(sim.url, 100, 1))
    finally:
        sim.stop()
    lines.append(
        f"- at the venue's limit (50 per 10 s = 5.0/s): {rate:.2f} orders/s "
        f"({answered} answered, {refused} refused locally, no 429 from the venue)"
    )
    sim = Sim("--orders-10s", "1000000", "--orders-day", "100000000", "--weight-limit", "10000000")
    try:
        rate, answered, _ = asyncio.run(place_many(sim.url, 2000, 8))
    finally:
        sim.stop()
    lines.append(f"- limits lifted, 8 in flight: {rate:,.0f} orders/s ({answered} answered)")
    sim = Sim("--orders-10s", "1000000", "--orders-day", "100000000", "--weight-limit", "10000000")
    try:
        p50, p99, fills = asyncio.run(fill_latency(sim.url, 200))
    finally:
        sim.stop()
    lines.append(
        f"- fill on the venue -> ExchangeFill at the engine's sink: p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms ({fills} fills; venue times have 1 ms resolution)"
    )
    return lines


if __name__ == "__main__":
    print("\n".join(run()))
