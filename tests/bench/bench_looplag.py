"""Event-loop lag while the engine runs a 10,000-order solver tick (issue 6, PERFORMANCE.md:
< 10 ms p99 while a 10,000-order tick runs).

Serve's own `Runtime` handles one tick of 10,000 ready orders while a sampler sleeps 1 ms over
and over and records how late it wakes (what a FIX frame waiting to be read also suffers).
Three figures from the same run: the loop idle (baseline), the tick handled inline on the
loop (the runtime before issue 6), and the tick in the engine's worker thread (now).
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from datetime import timedelta

from bench_core import ready_engine

from indexmaker.app.runtime import Runtime, RuntimeLimits
from indexmaker.core.events import Tick
from indexmaker.sim.adapters import SimChainPort
from indexmaker.sim.chain import SimulatedChain
from indexmaker.sim.exchange import SimulatedExchange
from indexmaker.sim.venue import SimVenue

ORDERS = 10_000
INTERVAL = 0.001


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


async def _sample_while(busy: asyncio.Future[None]) -> list[float]:
    loop = asyncio.get_running_loop()
    samples: list[float] = []
    while not busy.done():
        started = loop.time()
        await asyncio.sleep(INTERVAL)
        samples.append(max(loop.time() - started - INTERVAL, 0.0))
    return samples


async def lag_during_tick(offload: bool | None) -> tuple[float, list[float]]:
    """(seconds the tick took, lag samples); offload None = no tick at all (idle loop)."""
    engine, clock = ready_engine(ORDERS if offload is not None else 10)
    clock.advance(timedelta(milliseconds=100))
    limits = RuntimeLimits(offload_ticks=bool(offload))
    runtime = Runtime(
        engine, SimVenue(SimulatedExchange({})), SimChainPort(SimulatedChain()), None, limits
    )
    await runtime.start()
    loop = asyncio.get_running_loop()
    busy: asyncio.Future[None] = loop.create_future()
    sampler = asyncio.create_task(_sample_while(busy))
    await asyncio.sleep(0.02)
    started = time.perf_counter()
    if offload is None:
        await asyncio.sleep(0.4)
    else:
        await runtime.put(Tick(clock.now()))
        while not engine.batches.open_batches():
            await asyncio.sleep(INTERVAL)
    took = time.perf_counter() - started
    busy.set_result(None)
    samples = await sampler
    await runtime.stop()
    return took, samples


def run() -> list[str]:
    # The empty simulated venue rejects every order (it has no books): not this figure's topic.
    logging.getLogger("indexmaker").setLevel(logging.ERROR)
    figures: dict[str, tuple[float, float, float]] = {}
    for name, offload in (("idle", None), ("inline", False), ("worker", True)):
        runs = [asyncio.run(lag_during_tick(offload)) for _ in range(3)]
        figures[name] = (
            statistics.median(t for t, _ in runs),
            statistics.median(quantile(s, 0.5) for _, s in runs),
            statistics.median(quantile(s, 0.99) for _, s in runs),
        )
    idle, inline, worker = figures["idle"], figures["inline"], figures["worker"]
    ms = 1e3
    return [
        f"loop lag, 1 ms sampler, {ORDERS:,}-order tick in serve's Runtime (medians of 3 runs):",
        f"  baseline, idle loop:         p50 {idle[1] * ms:6.2f} ms, p99 {idle[2] * ms:6.2f} ms",
        f"  tick inline (before):        p50 {inline[1] * ms:6.2f} ms, p99 {inline[2] * ms:6.2f} ms"
        f"  (tick {inline[0] * ms:.0f} ms)",
        f"  tick in worker thread (now): p50 {worker[1] * ms:6.2f} ms, p99 {worker[2] * ms:6.2f} ms"
        f"  (tick {worker[0] * ms:.0f} ms); p99 x{worker[2] / max(inline[2], 1e-9):.2f} of inline,"
        f" x{worker[2] / max(idle[2], 1e-9):.1f} of idle; target p99 < 10 ms",
    ]
