"""`indexmaker serve` over real loopback sockets: /health and /metrics, a client dropping
mid-stream, and a simulated hour with bounded memory."""

from __future__ import annotations

import asyncio
import gc
import os
from datetime import timedelta
from decimal import Decimal

import aiohttp
import pytest

from indexmaker.app.health import HealthLimits
from indexmaker.app.runtime import RuntimeLimits
from indexmaker.app.service import Service
from indexmaker.core.clock import ManualClock
from indexmaker.core.events import NewIndexOrderRequest, Tick
from indexmaker.core.ids import ClientOrderId, Symbol, client_key
from indexmaker.core.journal import NullJournal
from indexmaker.model.side import Side
from indexmaker.server import client as sdk

from .conftest import TEST_KEYS, TcpProxy, sdk_fast_config, sdk_start_service


def http_base(service: Service) -> str:
    return f"http://127.0.0.1:{service.server.bound_port}"


async def test_health_reports_figures_and_metrics_are_prometheus_text() -> None:
    # Bounds a loaded CI machine cannot break: this test is about the figures, the next
    # one about turning unhealthy.
    roomy = HealthLimits(max_loop_lag=timedelta(seconds=60), max_book_age=timedelta(hours=1))
    service = Service(sdk_fast_config(), RuntimeLimits(health=roomy))
    await service.start()
    try:
        async with (
            asyncio.timeout(10),
            aiohttp.ClientSession() as http,
            sdk.IndexMakerClient(service.server.url, TEST_KEYS[0]) as c,
        ):
            await sdk.sim_deposit(c.url, c.address, Decimal(500))
            await c.new_order("SY100", "buy", Decimal(500), "m-1")
            await c.wait_minted("m-1", timeout=8)
            async with http.get(http_base(service) + "/health") as response:
                health = await response.json()
                assert response.status == 200, health
            async with http.get(http_base(service) + "/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                text = await response.text()
        assert health["status"] == "ok" and health["engine_alive"] is True
        assert health["book_age_s"] is not None and health["queue_capacity"] > 0
        for name in (
            "indexmaker_loop_lag_seconds",
            "indexmaker_queue_depth",
            "indexmaker_batches_in_flight",
            "indexmaker_batch_latency_seconds_count",
            'indexmaker_book_age_seconds{instrument="binance:BTCUSDC"}',
            'indexmaker_limiter_headroom{venue_pool="orders_10s"}',
            "indexmaker_fix_sessions 1.0",
            'indexmaker_commands_total{command="MintIndex"} 1.0',
        ):
            assert name in text, name
        assert "INDEXMAKER_SERVER_KEY" not in text and "0xac0974" not in text
    finally:
        await service.stop()


async def test_health_is_503_naming_what_is_out_of_bounds() -> None:
    limits = RuntimeLimits(health=HealthLimits(max_book_age=timedelta(milliseconds=1)))
    service = Service(sdk_fast_config(), limits)
    await service.start()
    try:
        async with asyncio.timeout(10), aiohttp.ClientSession() as http:
            while True:
                async with http.get(http_base(service) + "/health") as response:
                    body = await response.json()
                if response.status == 503:
                    break
                await asyncio.sleep(0.01)
        assert body["status"] == "unhealthy"
        assert any(p.startswith("book ") for p in body["problems"]), body
    finally:
        await service.stop()


async def test_a_client_dropping_mid_stream_leaves_the_service_serving_others() -> None:
    service, _ = await sdk_start_service()
    proxy = TcpProxy(service.server.bound_port)
    await proxy.start()
    try:
        async with asyncio.timeout(20):
            dropping = sdk.IndexMakerClient(proxy.url(), TEST_KEYS[1], reconnect=False)
            await dropping.connect()
            await sdk.sim_deposit(service.server.url, dropping.address, Decimal(800))
            await dropping.new_order("SY100", "buy", Decimal(800), "drop-1")
            proxy.cut()  # fills and the invoice are written to a peer that is gone
            async with sdk.IndexMakerClient(service.server.url, TEST_KEYS[2]) as other:
                await sdk.sim_deposit(other.url, other.address, Decimal(600))
                await other.new_order("SY100", "buy", Decimal(600), "stay-1")
                invoice = await other.wait_minted("stay-1", timeout=12)
            assert invoice.filled_quantity > 0
            await dropping.close()
        report = service.runtime.health()
        assert report.engine_alive and service.runtime.engine_restarts == 0
    finally:
        await proxy.stop()
        await service.stop()


def rss_bytes() -> int:
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
async def test_serve_runs_a_simulated_hour_in_bounded_memory() -> None:
    """A fast clock drives an hour through serve's own runtime: a tick a second, every book
    requoted every 30 s, an order every 5 minutes. Memory after the first 10 minutes stays
    flat (the in-memory journal held every tick and book: ~100 MB for this hour)."""
    clock = ManualClock()
    service = Service(sdk_fast_config(), clock=clock)
    assert isinstance(service.engine.journal, NullJournal)
    runtime, venue = service.runtime, service.venue
    assert venue.market is not None
    await service.start()
    baseline = 0
    try:
        async with asyncio.timeout(120):
            for second in range(1, 3601):
                clock.advance(timedelta(seconds=1))
                await runtime.put(Tick(clock.now()))
                if second % 30 == 0:
                    for snapshot in venue.exchange.replace_books(venue.market.step()):
                        await runtime.put(snapshot)
                if second % 300 == 0:
                    who = client_key(42161, f"0x{second:040x}")
                    await service.chain_port.deposit(who, Decimal(300))
                    coid = ClientOrderId(f"h-{second}")
                    runtime.submit(
                        NewIndexOrderRequest(who, coid, Symbol("SY100"), Side.BUY, Decimal(300))
                    )
                if second % 10 == 0:
                    assert await runtime.drain()
                    await asyncio.sleep(0.002)  # the simulated peers answer in real time
                if second == 600:
                    gc.collect()
                    baseline = rss_bytes()
            assert await runtime.drain()
            gc.collect()
            grown = rss_bytes() - baseline
            minted = service.chain.payments
    finally:
        await service.stop()
    assert len(minted) >= 10  # the hour really traded
    assert grown < 16 * 1024 * 1024, f"grew {grown / 1e6:.1f} MB over 50 simulated minutes"
