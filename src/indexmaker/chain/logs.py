"""Following a contract's logs on one chain with web3.py's AsyncWeb3, each log handed over once.

The follower keeps a cursor: the last block whose logs were all handled. It reads logs by block
range (eth_getLogs, at most `max_range` blocks per call) up to head − confirmations, so a log
is seen only once its block is that deep and an unconfirmed reorg never reaches the handler.
New heads arrive by a WebSocket `newHeads` subscription when a WebSocket URL is given; when the
subscription drops (or none is given) a poll every `poll_s` carries on, and the subscription is
retried with back-off. The subscription is only a wake-up: the logs always come from the range
after the cursor, so a dropped subscription loses nothing and repeats nothing, and a restart
from a stored cursor (`start_block` = cursor + 1) catches up on what was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from web3 import AsyncWeb3, WebSocketProvider

from indexmaker.chain.failover import TRANSPORT_ERRORS
from indexmaker.core.errors import NetworkError

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


async def first_log(
    contract: Any,
    topic: bytes,
    indexed: Sequence[int | bytes | None],
    lookback_blocks: int,
    to_block: int | None = None,
) -> Any:
    """The first log of `contract` (a bound web3 contract) with event `topic` and these indexed
    values (an int as uint256, bytes as bytes32, None: any), in the `lookback_blocks` up to
    `to_block` (default: the head); None when there is none."""
    w3 = contract.w3
    head = await w3.eth.block_number if to_block is None else to_block
    topics: list[Any] = [topic]
    topics += [v.to_bytes(32, "big") if isinstance(v, int) else v for v in indexed]
    logs = await w3.eth.get_logs(
        {
            "address": contract.address,
            "fromBlock": max(0, head - lookback_blocks),
            "toBlock": head,
            "topics": topics,
        }
    )
    return logs[0] if logs else None
