"""Finding an Across deposit's fill on the destination chain (issue 11), for the hop waiting on
it (chain/bridge.py) and for our relayer asking whether a fill was its own (chain/relayer.py).

The search starts at a lower bound on the destination's own blocks: no fill is older than the
deposit, whose `quoteTimestamp` is the origin's clock when it was made (ours: the origin's
latest block time; any: within the origin pool's quote buffer before the deposit). The first
destination block at or after that time, less `skew_s` for clocks that disagree and less how
far the destination's clock is behind the origin's now (chain/logs.py `block_since`), is found
by binary search on block timestamps; logs are then read in chunks (`LogScan`). So a fill is
found whatever the chain's age, and a deposit not yet filled reads only the blocks since it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from web3 import AsyncWeb3

from indexmaker.chain.logs import LogScan, block_since, event_topics


async def fill_scan(
    origin_w3: AsyncWeb3[Any],
    dest_pool: Any,
    filled_topic: bytes,
    origin_chain_id: int,
    deposit: Mapping[str, Any],
    *,
    skew_s: int,
    chunk_blocks: int,
    relayer: bytes | None = None,
) -> LogScan:
    """The search for `FilledRelay` logs of `deposit` (decoded `FundsDeposited` args from chain
    `origin_chain_id`) on `dest_pool` (a bound web3 contract), by `relayer` (bytes32) only when
    given; `first()` answers it, and asked again reads only the blocks since."""
    quoted = int(deposit["quoteTimestamp"])
    low = await block_since(origin_w3, dest_pool.w3, quoted, skew_s)
    # FilledRelay's indexed values: originChainId, depositId, relayer
    indexed: list[int | bytes | None] = [origin_chain_id, int(deposit["depositId"])]
    if relayer is not None:
        indexed.append(relayer)
    topics = event_topics(filled_topic, indexed)
    return LogScan(dest_pool.w3, dest_pool.address, topics, low, chunk_blocks)
