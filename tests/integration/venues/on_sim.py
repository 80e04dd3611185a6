"""The Binance venue adapter on an exchange-sim process: the pieces the tests over real sockets
share (the process, the connector with the simulator's Ed25519 test key, a recording sink)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from indexmaker.core.events import EngineInput
from indexmaker.venues.binance.rest import BinanceEndpoints
from indexmaker.venues.binance.signing import Credentials, load_ed25519_pem
from indexmaker.venues.binance.venue import BinanceVenue, BinanceVenueConfig
from indexmaker.venues.binance_sim.config import TEST_ED25519_API_KEY, TEST_ED25519_PRIVATE_PEM

from ..binance_sim.conftest import SimProcess


class Sink:
    def __init__(self) -> None:
        self.events: list[EngineInput] = []

    async def __call__(self, event: EngineInput) -> None:
        self.events.append(event)

    def of(self, kind: type, order_id: str | None = None) -> list:  # type: ignore[type-arg]
        return [
            e
            for e in self.events
            if isinstance(e, kind)
            and (order_id is None or getattr(e, "order_id", None) == order_id)
        ]


@contextmanager
def exchange_sim(*args: str) -> Iterator[SimProcess]:
    """`indexmaker exchange-sim --port 0 ARGS`, stopped by PID afterwards."""
    process = SimProcess(*args)
    try:
        yield process
    finally:
        process.stop()


@asynccontextmanager
async def connector_on(
    sim: SimProcess, pairs: tuple[str, ...], faults: dict[str, Any] | None = None, **config: Any
) -> AsyncIterator[tuple[BinanceVenue, Sink]]:
    """The connector for `pairs` (BinanceVenueConfig `config`), started into a `Sink`, with
    the simulator's faults cleared (then `faults` switched on) before and cleared after."""
    sim.admin("DELETE")
    if faults:
        sim.admin("POST", faults)
    endpoints = BinanceEndpoints(sim.url, f"{sim.ws}/ws-api/v3", sim.ws)
    key = load_ed25519_pem(TEST_ED25519_PRIVATE_PEM.encode())
    adapter = BinanceVenue(
        BinanceVenueConfig(endpoints, pairs=pairs, **config),
        Credentials(TEST_ED25519_API_KEY, ed25519_key=key),
    )
    sink = Sink()
    await adapter.start(sink)
    try:
        yield adapter, sink
    finally:
        await adapter.stop()
        sim.admin("DELETE")
