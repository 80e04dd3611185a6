"""Where an Across crossing goes and its figures (issue 11): the pools, tokens and recipient of
a route between two deployed chains, the relayer's fee, and the timings and log-search
settings the hop (chain/bridge.py) runs with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from indexmaker.chain.logs import DEFAULT_CHUNK_BLOCKS, check_chunk_blocks


@dataclass(frozen=True)
class AcrossRoute:
    """Where a crossing goes: pools (address, Across contract name) on both chains, the USDC
    token on each, the recipient on the destination (the trading chain's custody), the
    relayer's fee in USDC, and timings (s): `fill_deadline_s` after the later of both chains'
    clocks a deposit can no longer be filled (the spoke pool allows at most 6 h:
    deploy.FILL_DEADLINE_BUFFER_S); `timeout_s` bounds every other step (bridge.py)."""

    dest_chain_id: int
    origin_pool: str
    origin_pool_contract: str
    dest_pool: str
    dest_pool_contract: str
    output_token: str
    recipient: str
    fee: Decimal = Decimal("0.10")
    fill_deadline_s: int = 3600
    timeout_s: float = 120.0
    poll_s: float = 0.25
    eth_usdc: Decimal = Decimal(3000)
    # Log searches (chain/logs.py LogScan) read this many blocks per eth_getLogs, from a lower
    # bound: the lot's deposit block on the origin, and on the destination the first block at
    # or after the deposit's quote time less `clock_skew_s` (its clock may lag the origin's).
    log_chunk_blocks: int = DEFAULT_CHUNK_BLOCKS
    clock_skew_s: int = 600
    max_deposits: int = 3  # new deposits one run of a hop may make (after refunds)
    # External chains: how long and how often to look for Across's own refund of an expired
    # deposit (its bundles settle about every 1.5 h after a challenge period).
    refund_wait_s: float = 4 * 3600.0
    refund_poll_s: float = 5.0
    name: str = "across"  # the bridge's name in RouteCollateral.bridge

    def __post_init__(self) -> None:
        check_chunk_blocks(self.log_chunk_blocks)
        if self.clock_skew_s < 0:
            raise ValueError(f"clock_skew_s: {self.clock_skew_s} is negative")


def route_between(
    sections: Mapping[int, Mapping[str, Any]], origin: int, dest: int, **figures: Any
) -> AcrossRoute:
    """The route from chain `origin`'s pool to chain `dest`'s, delivering to `dest`'s custody;
    `sections`: deployment sections by chain id (chain/deploy.py's); `figures`: AcrossRoute's
    fee, timings, name."""
    to = sections[dest]
    return AcrossRoute(
        dest_chain_id=dest,
        origin_pool=sections[origin]["spoke_pool"],
        origin_pool_contract=sections[origin]["spoke_pool_contract"],
        dest_pool=to["spoke_pool"],
        dest_pool_contract=to["spoke_pool_contract"],
        output_token=to["usdc"],
        recipient=to["custody"],
        **figures,
    )
