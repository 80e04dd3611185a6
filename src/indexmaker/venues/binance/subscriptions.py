"""Combined-stream subscriptions: which streams a symbol needs and the control messages that
ask for them, paced per connection.

Subscriptions go out as few SUBSCRIBE messages (up to `streams_per_subscribe` streams each),
at least `control_interval_s` apart on a connection: Binance closes a connection sent more
than 5 incoming messages a second (binance-connector-python #456: one message per stream
breaks that rule). A SUBSCRIBE's symbols are remembered until the venue acknowledges it (its
`{"result": null, "id": n}`), since only then can a snapshot be tied to the stream.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from indexmaker.core.ids import Pair
from indexmaker.venues.binance.wire import ENCODE


@dataclass(frozen=True, slots=True)
class MarketDataConfig:
    # weight 5: 200 symbols re-snapshot for 1,000 of the 6,000 weight a minute (1000 levels cost
    # 50 each, 5000 cost 250: reference §8); the solver reads only the top levels
    snapshot_limit: int = 100
    depth_speed: str = "@100ms"  # "" for the 1000 ms stream
    book_ticker: bool = True
    stale_after_ms: int = 10_000  # connection silent this long: its books are stale
    silent_after_ms: int = 120_000  # one symbol's stream silent this long: that book is stale
    # diffs queued in a book before they are applied and checked (also each watchdog round);
    # reads apply them at once (tick_book.py)
    settle_every: int = 100
    streams_per_connection: int = 1000  # Binance allows 1024
    streams_per_subscribe: int = 200
    control_interval_s: float = 0.25  # <= 4 control messages/s of the 5/s allowed
    receive_timeout_s: float = 30.0  # silence this long means a dead connection
    reconnect_min_s: float = 0.2
    reconnect_max_s: float = 30.0
    snapshot_workers: int = 4
    watchdog_interval_s: float = 1.0


class Subscriptions:
    """Control messages (SUBSCRIBE / UNSUBSCRIBE) of every stream connection, by index."""

    def __init__(self, config: MarketDataConfig) -> None:
        self.config = config
        self._ids = itertools.count(1)  # control message ids, unique per process
        self._last: dict[int, float] = {}  # per connection: when the last one went out
        self._locks: dict[int, asyncio.Lock] = {}
        self._pending: dict[tuple[int, int], list[Pair]] = {}  # SUBSCRIBEs not acknowledged
        self.sent = 0

    def streams(self, symbols: Sequence[Pair]) -> list[str]:
        streams = []
        for symbol in symbols:
            lower = symbol.lower()
            streams.append(f"{lower}@depth{self.config.depth_speed}")
            if self.config.book_ticker:
                streams.append(f"{lower}@bookTicker")
        return streams

    async def subscribe(
        self, index: int, ws: aiohttp.ClientWebSocketResponse, symbols: Sequence[Pair]
    ) -> None:
        """Every stream of `symbols`, in as few SUBSCRIBE messages as the size limit allows."""
        per_symbol = 2 if self.config.book_ticker else 1
        step = max(1, self.config.streams_per_subscribe // per_symbol)
        for start in range(0, len(symbols), step):
            await self.send(index, ws, "SUBSCRIBE", list(symbols[start : start + step]))

    async def send(
        self, index: int, ws: aiohttp.ClientWebSocketResponse, method: str, symbols: list[Pair]
    ) -> None:
        """One control message, at least `control_interval_s` after the connection's last."""
        lock = self._locks.setdefault(index, asyncio.Lock())
        async with lock:
            loop = asyncio.get_running_loop()
            wait = self._last.get(index, -1e9) + self.config.control_interval_s
            if wait > loop.time():
                await asyncio.sleep(wait - loop.time())
            number = next(self._ids)
            if method == "SUBSCRIBE":  # its snapshots are asked for once it is acknowledged
                self._pending[(index, number)] = symbols
            message = {"method": method, "params": self.streams(symbols), "id": number}
            await ws.send_str(ENCODE(message).decode())  # JSON goes in text frames
            self._last[index] = loop.time()
            self.sent += 1

    def acknowledged(self, index: int, message_id: int) -> list[Pair]:
        """The symbols of the SUBSCRIBE answered on connection `index` (none for others)."""
        return self._pending.pop((index, message_id), [])
