"""A cancelled RPC call must not hang later ones (web3.py issue #3867; chain/http_provider.py).

Against a real anvil: many concurrent calls with a timeout too short to finish cancel some of
them while others create or take the session; afterwards calls on the same providers, and on a
new one, must still answer within a bound. On web3's own AsyncHTTPProvider the process-wide
session lock stays taken and these later calls wait forever (the bounded wait fails).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import ClientSession
from web3 import AsyncWeb3

from indexmaker.chain.failover import rpc_provider

ANSWER_BOUND_S = 10.0  # generous under load; an anvil block_number answers in milliseconds


async def _storm(w3: AsyncWeb3[Any], calls: int) -> int:
    """`calls` concurrent block_number calls, each cut off almost at once; returns how many
    were cancelled (the rest answered)."""

    async def one() -> bool:
        try:
            await asyncio.wait_for(w3.eth.block_number, 0.001)
        except TimeoutError:
            return True
        return False

    return sum(await asyncio.gather(*(one() for _ in range(calls))))


async def test_cancelled_calls_leave_later_calls_answering(start_node: Any) -> None:
    node = start_node(31_337)
    single: AsyncWeb3[Any] = AsyncWeb3(rpc_provider([node.url]))
    failover: AsyncWeb3[Any] = AsyncWeb3(rpc_provider([node.url, node.url]))
    try:
        for _ in range(3):
            cancelled = await _storm(single, 40) + await _storm(failover, 40)
            assert cancelled > 0  # the storm did cut calls off
            for w3 in (single, failover):
                assert await asyncio.wait_for(w3.eth.block_number, ANSWER_BOUND_S) >= 0
        fresh: AsyncWeb3[Any] = AsyncWeb3(rpc_provider([node.url]))
        assert await asyncio.wait_for(fresh.eth.chain_id, ANSWER_BOUND_S) == 31_337
        await fresh.provider.disconnect()
    finally:
        for w3 in (single, failover):
            await w3.provider.disconnect()


async def test_a_session_given_to_the_provider_is_used_and_closed_by_disconnect(
    start_node: Any,
) -> None:
    node = start_node(31_337)
    w3: AsyncWeb3[Any] = AsyncWeb3(rpc_provider([node.url]))
    given = ClientSession(raise_for_status=True)
    provider: Any = w3.provider
    assert await provider.cache_async_session(given) is given
    assert await asyncio.wait_for(w3.eth.chain_id, ANSWER_BOUND_S) == 31_337
    await provider.disconnect()
    assert given.closed
    # a later call opens a new session of its own
    assert await asyncio.wait_for(w3.eth.chain_id, ANSWER_BOUND_S) == 31_337
    await provider.disconnect()
