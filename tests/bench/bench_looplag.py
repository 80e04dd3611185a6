"""Event-loop lag while the engine runs a 10,000-order solver tick (issue 6, PERFORMANCE.md:
< 10 ms p99 while a 10,000-order tick runs).

Serve's own `Runtime` handles one tick of 10,000 ready orders while a sampler sleeps 1 ms over
and over and records how late it wakes (what a FIX frame waiting to be read also suffers).
Four figures from the same run: the loop idle (baseline), the tick handled inline on the
loop (the runtime before issue 6), the tick in the engine's worker thread with the GIL's
switch interval alone deciding the loop's turns (before the handoff), and with the core's
checkpoints handing the loop a turn every 2 ms (app/handoff.py, now).
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


async def lag_during_tick(
    offload: bool | None, tick_slice: timedelta | None = None
) -> tuple[float, list[float]]:
    """(seconds the tick took, lag samples); offload None = no tick at all (idle loop);
    `tick_slice` the loop's turns during an offloaded tick (None: the GIL's alone)."""
    engine, clock = ready_engine(ORDERS if offload is not None else 10)
    clock.advance(timedelta(milliseconds=100))
    limits = RuntimeLimits(offload_ticks=bool(offload), tick_slice=tick_slice)
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
    variants: dict[str, tuple[bool | None, timedelta | None]] = {
        "idle": (None, None),
        "inline": (False, None),
        "worker": (True, None),
        "handoff": (True, RuntimeLimits().tick_slice),
    }
    figures: dict[str, tuple[float, float, float]] = {}
    for name, (offload, tick_slice) in variants.items():
        runs = [asyncio.run(lag_during_tick(offload, tick_slice)) for _ in range(5)]
        figures[name] = (
            statistics.median(t for t, _ in runs),
            statistics.median(quantile(s, 0.5) for _, s in runs),
            statistics.median(quantile(s, 0.99) for _, s in runs),
        )
    idle, handoff = figures["idle"], figures["handoff"]
    ms = 1e3

    def line(label: str, figure: tuple[float, float, float]) -> str:
        tick = f"  (tick {figure[0] * ms:.0f} ms)" if figure is not idle else ""
        return f"  {label:<36} p50 {figure[1] * ms:6.2f} ms, p99 {figure[2] * ms:6.2f} ms{tick}"

    return [
        f"loop lag, 1 ms sampler, {ORDERS:,}-order tick in serve's Runtime (medians of 5 runs):",
        line("baseline, idle loop:", idle),
        line("tick inline (before issue 6):", figures["inline"]),
        line("worker thread, GIL turns (before):", figures["worker"]),
        line("worker thread + 2 ms handoff (now):", handoff),
        f"  now: p99 x{handoff[2] / max(figures['worker'][2], 1e-9):.2f} of the worker alone,"
        f" x{handoff[2] / max(idle[2], 1e-9):.1f} of idle; target p99 < 10 ms",
    ]
