"""The log-search settings of a route (chain/across_route.py, chain/logs.py; issue 11): a chunk
of blocks per eth_getLogs from 1 to 1,000,000 and a clock skew ≥ 0, refused naming the
setting otherwise (`[chain] log_chunk_blocks` is checked by the settings file first)."""

from __future__ import annotations

from typing import Any

import pytest

from indexmaker.chain.across_route import AcrossRoute
from indexmaker.chain.logs import DEFAULT_CHUNK_BLOCKS, MAX_CHUNK_BLOCKS, check_chunk_blocks

POOLS = dict(
    dest_chain_id=8453,
    origin_pool="0x" + "1" * 40,
    origin_pool_contract="Arbitrum_SpokePool",
    dest_pool="0x" + "2" * 40,
    dest_pool_contract="OP_SpokePool",
    output_token="0x" + "3" * 40,
    recipient="0x" + "4" * 40,
)


def test_a_route_searches_ten_thousand_blocks_at_a_time_by_default() -> None:
    route = AcrossRoute(**POOLS)  # type: ignore[arg-type]
    assert route.log_chunk_blocks == DEFAULT_CHUNK_BLOCKS == 10_000
    assert AcrossRoute(**POOLS, log_chunk_blocks=1).log_chunk_blocks == 1  # type: ignore[arg-type]
    assert check_chunk_blocks(MAX_CHUNK_BLOCKS) == 1_000_000


@pytest.mark.parametrize(
    ("figures", "message"),
    [
        ({"log_chunk_blocks": 0}, "log_chunk_blocks: 0 is not between 1 and 1,000,000 blocks"),
        ({"log_chunk_blocks": -5}, "log_chunk_blocks: -5 is not between 1 and 1,000,000"),
        ({"log_chunk_blocks": 1_000_001}, "log_chunk_blocks: 1000001 is not between 1 and"),
        ({"log_chunk_blocks": True}, "log_chunk_blocks: True is not a whole number of blocks"),
        ({"log_chunk_blocks": 2.5}, "log_chunk_blocks: 2.5 is not a whole number of blocks"),
        ({"clock_skew_s": -1}, "clock_skew_s: -1 is negative"),
    ],
)
def test_bad_search_settings_are_refused_naming_them(figures: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}"):
        AcrossRoute(**POOLS, **figures)  # type: ignore[arg-type]
