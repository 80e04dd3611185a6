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
from indexmaker.app.service import index_pairs
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
SYL2_PAIRS = tuple(index_pairs(["SYL2"]))


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


async def fill_to_lot_latency(url: str, orders: int) -> tuple[float, float, float, float, int]:
    """(sink p50, sink p99, lot p50, lot p99 in ms, lots) through the whole service: `serve`'s
    `Service` on the connector, one SDK client buying SYL2 for 1,000 USDC `orders` times. For
    each fill, from the trade's time on the venue (`transactTime`) to (a) its `ExchangeFill`
    entering the runtime's input queue (the baseline, as `fill_latency`) and (b) the core
    opening its lot (`Lot.opened_at`: the engine's clock when it took the fill)."""
    from datetime import UTC, datetime

    from indexmaker.app.demo_socket_clients import demo_private_key
    from indexmaker.app.demo_sockets import socket_demo_config
    from indexmaker.app.service import Service
    from indexmaker.core.events import EngineInput, ExchangeFill
    from indexmaker.model.lot import Lot
    from indexmaker.server.client import IndexMakerClient, sim_deposit
    from indexmaker.venues.binance.venue import BinanceVenue, BinanceVenueConfig

    entered: dict[tuple[str, str], tuple[datetime, datetime]] = {}  # (venue time, queued)

    class TimedVenue(BinanceVenue):  # notes when each fill enters the runtime's queue
        async def _push(self, event: EngineInput) -> None:
            if isinstance(event, ExchangeFill) and event.event_time is not None:
                key = (event.instrument.pair, str(event.trade_id))
                entered.setdefault(key, (event.event_time, datetime.now(UTC)))
            await super()._push(event)

    ws = url.replace("http", "ws")
    endpoints = BinanceEndpoints(url, f"{ws}/ws-api/v3", ws)
    credentials = Credentials(
        TEST_ED25519_API_KEY, ed25519_key=load_ed25519_pem(TEST_ED25519_PRIVATE_PEM.encode())
    )
    service = Service(
        socket_demo_config(("SYL2",)),
        venue=TimedVenue(BinanceVenueConfig(endpoints, pairs=SYL2_PAIRS), credentials),
    )
    lots: list[Lot] = []
    open_lot = service.engine.inventory.open_lot

    def keep(*args: object, **kwargs: object) -> Lot:  # every lot, also those used up later
        lot = open_lot(*args, **kwargs)  # type: ignore[arg-type]
        lots.append(lot)
        return lot

    service.engine.inventory.open_lot = keep  # type: ignore[method-assign]
    await service.start()
    try:
        for _ in range(400):  # bounded: every book synchronised first
            if service.runtime.books_seen() >= len(SYL2_PAIRS):
                break
            await asyncio.sleep(0.05)
        client = IndexMakerClient(
            service.server.url, demo_private_key(1, 1), server_address=service.signer.address
        )
        await client.connect()
        try:
            await sim_deposit(service.server.url, client.address, Decimal(1100 * orders))
            for number in range(orders):
                accepted = await client.new_order("SYL2", "buy", Decimal(1000), f"lat-{number}")
                await client.wait_minted(accepted.client_order_id, 60)
        finally:
            await client.close()
    finally:
        await service.stop()
    to_sink, to_lot = [], []
    for lot in lots:
        venue_time, queued = entered[(lot.asset.pair, str(lot.trade_id))]
        to_sink.append((queued - venue_time).total_seconds() * 1000)
        to_lot.append((lot.opened_at - venue_time).total_seconds() * 1000)
    to_sink.sort()
    to_lot.sort()

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(len(values) * q))]

    return pct(to_sink, 0.5), pct(to_sink, 0.99), pct(to_lot, 0.5), pct(to_lot, 0.99), len(lots)


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
    sim = ExchangeSimProcess(
        "--symbols",
        ",".join(SYL2_PAIRS),
        "--orders-10s",
        "1000000",
        "--weight-limit",
        "10000000",
    )
    try:
        queued50, queued99, lot50, lot99, lots = asyncio.run(fill_to_lot_latency(sim.url, 20))
    finally:
        sim.stop()
    lines.append(
        f"- whole service (serve's Service, SYL2 x 20 orders of 1,000 USDC, {lots} lots): fill "
        f"on the venue -> the core's lot: p50 {lot50:.1f} ms, p99 {lot99:.1f} ms; baseline "
        f"(same run) -> the runtime's input queue: p50 {queued50:.1f} ms, p99 {queued99:.1f} ms"
    )
    return lines


if __name__ == "__main__":
    print("\n".join(run()))
