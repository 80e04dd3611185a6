"""The way back (issue 12): a redemption of a client of the source chain (42161) is paid there.

The core first sends the proceeds over the `across_back` hop (trading chain → source chain,
`SolverConfig.return_hops`); on local chains that is Across again, the other way: custody on
8453 releases to the issuer, who deposits into 8453's `OP_SpokePool` with the source chain's
custody as recipient; our relayer fills on 42161's `Arbitrum_SpokePool` from its own float
there, and is repaid on 8453 from a refund bundle (chain/root_bundles.py). The hop's fee is
the bridge's (input − output) plus its transactions' gas in USDC, as on the way in
(chain/bridge.py); custody on 42161 then pays the client (a keyed release).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from web3 import AsyncWeb3

from indexmaker.chain.bridge import AcrossBridge, AcrossRoute, route_between
from indexmaker.chain.connector import Web3ChainPort
from indexmaker.chain.deploy import SOURCE_CHAIN_ID, TRADING_CHAIN_ID
from indexmaker.chain.eth_price import PriceSource
from indexmaker.chain.relayer import AcrossRelayer, relayer_between
from indexmaker.chain.tx import TxSender
from indexmaker.engine.engine import SOURCE_CHAIN

RETURN_BRIDGE = "across_back"
# SolverConfig.return_hops on local chains: a client of 42161 is paid from custody there.
RETURN_HOPS = ((SOURCE_CHAIN_ID, RETURN_BRIDGE, str(SOURCE_CHAIN)),)


def return_hop_fees(bridge_fee: Decimal) -> tuple[tuple[int, Decimal], ...]:
    """`SolverConfig.return_hop_fees` for RETURN_HOPS: the way back's known cost before any
    payout to 42161 was seen, the relayer's fee (`[chain] bridge_fee`, USDC, the route's
    input − output). The hop's gas is not known before its transactions; the first payout's
    recorded fee includes it (engine/sell_proceeds.py WithdrawalFees)."""
    return ((SOURCE_CHAIN_ID, bridge_fee),)


def return_path(
    sections: dict[int, dict[str, Any]],
    trading: Web3ChainPort,
    w3s: dict[int, AsyncWeb3[Any]],
    relayer: TxSender,
    base: AcrossRoute,
    price: PriceSource,
    delay_s: float,
) -> tuple[AcrossBridge, AcrossRelayer]:
    """The `across_back` bridge (origin: the trading chain's port) and the relayer filling it
    on the source chain with `relayer` (its sender there); `base` gives fee and timings."""
    route = route_between(  # to custody on 42161, which pays the client
        sections,
        TRADING_CHAIN_ID,
        SOURCE_CHAIN_ID,
        fee=base.fee,
        timeout_s=base.timeout_s,
        fill_deadline_s=base.fill_deadline_s,
        poll_s=base.poll_s,
        eth_usdc=base.eth_usdc,
        log_chunk_blocks=base.log_chunk_blocks,
        clock_skew_s=base.clock_skew_s,
        name=RETURN_BRIDGE,
    )
    bridge = AcrossBridge(trading, w3s[SOURCE_CHAIN_ID], route, price)
    filler = relayer_between(
        w3s,
        sections,
        TRADING_CHAIN_ID,
        SOURCE_CHAIN_ID,
        relayer,
        delay_s=delay_s,
        poll_s=base.poll_s,
        log_chunk_blocks=base.log_chunk_blocks,
        clock_skew_s=base.clock_skew_s,
        repay=bridge.refunds,  # repaid on 8453 by the issuer's refund bundle
    )
    return bridge, filler
