"""Following a contract's logs on one chain with web3.py's AsyncWeb3, each log handed over once.

The follower keeps a cursor: the last block whose logs were all handled. It reads logs by block
range (eth_getLogs, at most `max_range` blocks per call) up to head − confirmations, so a log
is seen only once its block is that deep and an unconfirmed reorg never reaches the handler.
New heads arrive by a WebSocket `newHeads` subscription when a WebSocket URL is given; when the
subscription drops (or none is given) a poll every `poll_s` carries on, and the subscription is
retried with back-off. The subscription is only a wake-up: the logs always come from the range
after the cursor, so a dropped subscription loses nothing and repeats nothing, and a restart
from a stored cursor (`start_block` = cursor + 1) catches up on what was missed.

Looking one log up (a hop's deposit, a fill, a refund bundle: issue 11) is `LogScan`: from a
lower bound recorded when the step began (the lot's deposit block, the deposit's block; on
another chain the first block at or after a known time, `block_at_time`), in chunks of
`chunk_blocks`, never a fixed window back from the head (100,000 blocks are 55 h of Base and
7 h of Arbitrum: a hop resumed later would not find its own deposit and move twice).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from web3 import AsyncWeb3, WebSocketProvider

from indexmaker.chain.failover import TRANSPORT_ERRORS
from indexmaker.core.errors import NetworkError

DEFAULT_CHUNK_BLOCKS = 10_000  # blocks per eth_getLogs (providers cap the range, e.g. 10k)
MAX_CHUNK_BLOCKS = 1_000_000

LogHandler = Callable[[Any], Awaitable[None]]
CursorHook = Callable[[int], Awaitable[None]]


class LogFollower:
    """Hands `addresses`' logs (optionally filtered by first topic) to `handler`, in chain order.

    `cursor` is the last fully handled block (start_block − 1 at first); persist it to resume.
    """

    def __init__(
        self,
        w3: AsyncWeb3[Any],
        addresses: Sequence[str],
        *,
        start_block: int,
        confirmations: int = 0,
        topics: Sequence[Any] | None = None,
        ws_url: str | None = None,
        poll_s: float = 1.0,
        max_range: int = 2_000,
        max_backoff_s: float = 30.0,
    ) -> None:
        if start_block < 0 or confirmations < 0 or max_range < 1:
            raise ValueError("start_block, confirmations must be ≥ 0 and max_range ≥ 1")
        self._w3 = w3
        self._addresses = list(addresses)
        self._topics = list(topics) if topics else None
        self.confirmations = confirmations
        self.cursor = start_block - 1
        self._ws_url, self._poll_s, self._max_range = ws_url, poll_s, max_range
        self._max_backoff_s = max_backoff_s
        self._wake = asyncio.Event()
        self.subscribed = False  # True while the WebSocket subscription is live
        self.subscription_drops = 0

    async def poll_once(self, handler: LogHandler) -> int:
        """Handle every confirmed log after the cursor; return how many. The cursor moves past a
        range only once all its logs were handled (a failing handler leaves it on its block).
        """
        try:
            head = await self._w3.eth.block_number
        except TRANSPORT_ERRORS as exc:
            raise NetworkError(f"RPC unreachable: {exc}") from exc
        safe = head - self.confirmations
        handled = 0
        while self.cursor < safe:
            first = self.cursor + 1
            last = min(safe, self.cursor + self._max_range)
            params: dict[str, Any] = {
                "address": self._addresses,
                "fromBlock": first,
                "toBlock": last,
            }
            if self._topics:
                params["topics"] = self._topics
            try:
                logs = await self._w3.eth.get_logs(params)  # type: ignore[arg-type]
            except TRANSPORT_ERRORS as exc:
                raise NetworkError(f"RPC unreachable: {exc}") from exc
            for log in sorted(logs, key=lambda lg: (lg["blockNumber"], lg["logIndex"])):
                await handler(log)
                handled += 1
            self.cursor = last
        return handled

    async def run(
        self, handler: LogHandler, stop: asyncio.Event, on_cursor: CursorHook | None = None
    ) -> None:
        """Follow until `stop` is set: poll on every new head (subscription) or every poll_s.
        `on_cursor(block)` after each poll that moved the cursor (to persist it)."""
        watcher = asyncio.create_task(self._watch_heads(stop)) if self._ws_url else None
        try:
            while not stop.is_set():
                # On NetworkError the next wake-up retries from the same cursor.
                before = self.cursor
                with contextlib.suppress(NetworkError):
                    await self.poll_once(handler)
                if on_cursor is not None and self.cursor != before:
                    await on_cursor(self.cursor)
                self._wake.clear()
                stop_wait = asyncio.create_task(stop.wait())
                wake_wait = asyncio.create_task(self._wake.wait())
                await asyncio.wait(
                    {stop_wait, wake_wait},
                    timeout=self._poll_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for task in (stop_wait, wake_wait):
                    task.cancel()
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    async def _watch_heads(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        assert self._ws_url is not None
        while not stop.is_set():
            try:
                async with AsyncWeb3(WebSocketProvider(self._ws_url)) as ws:
                    await ws.eth.subscribe("newHeads")
                    self.subscribed, backoff = True, 0.1
                    async for _ in ws.socket.process_subscriptions():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                pass  # polling carries on; try the subscription again after a back-off
            if self.subscribed:
                self.subscription_drops += 1
            self.subscribed = False
            await asyncio.sleep(backoff)
            backoff = min(self._max_backoff_s, backoff * 2)


def check_chunk_blocks(chunk_blocks: int) -> int:
    """`chunk_blocks` when it is a valid eth_getLogs range (1 to MAX_CHUNK_BLOCKS blocks);
    ValueError naming the setting otherwise."""
    if isinstance(chunk_blocks, bool) or not isinstance(chunk_blocks, int):
        raise ValueError(f"log_chunk_blocks: {chunk_blocks!r} is not a whole number of blocks")
    if not 1 <= chunk_blocks <= MAX_CHUNK_BLOCKS:
        raise ValueError(
            f"log_chunk_blocks: {chunk_blocks} is not between 1 and {MAX_CHUNK_BLOCKS:,} blocks"
        )
    return chunk_blocks


def event_topics(topic: bytes, indexed: Sequence[int | bytes | None]) -> list[Any]:
    """eth_getLogs topics of event `topic` with these indexed values (an int as uint256, bytes
    as bytes32, None: any)."""
    return [topic, *(v.to_bytes(32, "big") if isinstance(v, int) else v for v in indexed)]


class LogScan:
    """A bounded search for logs of `address` with `topics` from `from_block` on (a block known
    to be at or before anything searched for: a lot's deposit block, a deposit's block), read
    in ranges of at most `chunk_blocks` (providers cap eth_getLogs ranges; issue 11). Never a
    fixed look-back window: found at any chain age; and never read from genesis: a search
    that finds nothing reads from `from_block` to the head only. `first` remembers how far it
    has read, so polling again reads only new blocks. `requests` counts eth_getLogs calls."""

    def __init__(
        self,
        w3: AsyncWeb3[Any],
        address: str,
        topics: Sequence[Any],
        from_block: int,
        chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
    ) -> None:
        if from_block < 0:
            raise ValueError(f"from_block: {from_block} is negative")
        self._w3, self._address, self._topics = w3, address, list(topics)
        self._chunk = check_chunk_blocks(chunk_blocks)
        self.from_block = from_block
        self.cursor = from_block  # the next block `first` reads
        self.requests = 0

    async def _logs(self, first: int, last: int) -> list[Any]:
        self.requests += 1
        params: Any = {
            "address": self._address,
            "fromBlock": first,
            "toBlock": last,
            "topics": self._topics,
        }
        logs = await self._w3.eth.get_logs(params)
        return sorted(logs, key=lambda lg: (lg["blockNumber"], lg["logIndex"]))

    async def first(self, to_block: int | None = None) -> Any:
        """The earliest matching log from the cursor up to `to_block` (default: the head);
        None when there is none (the cursor then moves past `to_block`)."""
        head = await self._w3.eth.block_number if to_block is None else to_block
        while self.cursor <= head:  # bounded: (head − cursor) / chunk requests
            last = min(head, self.cursor + self._chunk - 1)
            logs = await self._logs(self.cursor, last)
            if logs:
                return logs[0]  # the cursor stays: asked again, it is found again
            self.cursor = last + 1
        return None

    async def newest(self) -> Any:
        """The latest matching log between `from_block` and the head, read from the head
        backwards: for a log known to exist (the contract said the step was done), which is
        usually recent. None when there is none."""
        last = int(await self._w3.eth.block_number)
        while last >= self.from_block:  # bounded: (head − from_block) / chunk requests
            first = max(self.from_block, last - self._chunk + 1)
            logs = await self._logs(first, last)
            if logs:
                return logs[-1]
            last = first - 1
        return None


async def first_log(
    contract: Any,
    topic: bytes,
    indexed: Sequence[int | bytes | None],
    from_block: int,
    *,
    to_block: int | None = None,
    chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
) -> Any:
    """The first log of `contract` (a bound web3 contract) with event `topic` and these indexed
    values (event_topics) from block `from_block` up to `to_block` (default: the head), read
    `chunk_blocks` at a time (LogScan); None when there is none."""
    scan = LogScan(
        contract.w3, contract.address, event_topics(topic, indexed), from_block, chunk_blocks
    )
    return await scan.first(to_block)


async def block_at_time(w3: AsyncWeb3[Any], timestamp: int) -> int:
    """The first block whose timestamp is at or after `timestamp` (s), by binary search on
    block timestamps (about log2(head) eth_getBlockByNumber calls): a lower bound for a log
    of something known to have happened at or after that time. The head + 1 when no block
    is that late yet."""
    lo, hi = 0, int(await w3.eth.block_number) + 1
    while lo < hi:  # bounded: log2(head + 1) steps
        mid = (lo + hi) // 2
        if int((await w3.eth.get_block(mid))["timestamp"]) >= timestamp:
            hi = mid
        else:
            lo = mid + 1
    return lo


async def block_since(
    origin_w3: AsyncWeb3[Any], dest_w3: AsyncWeb3[Any], origin_time: int, skew_s: int
) -> int:
    """A lower bound on the destination chain for what happened there after `origin_time` on
    the origin's clock (e.g. the fill of a deposit quoted then): the first destination block at
    or after that time less `skew_s` (the clocks' allowed disagreement) and less how far the
    destination's clock is behind the origin's now (a local chain moved forward)."""
    origin_now = int((await origin_w3.eth.get_block("pending"))["timestamp"])
    dest_now = int((await dest_w3.eth.get_block("pending"))["timestamp"])
    return await block_at_time(dest_w3, origin_time - skew_s - max(0, origin_now - dest_now))
