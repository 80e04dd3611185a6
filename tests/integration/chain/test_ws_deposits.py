"""`serve`'s chains follow deposits over a WebSocket subscription (issue 11): the path's chain
ports get anvil's WebSocket URL (its HTTP port), and a new head wakes the deposit follower at
once; polling (here every 30 s) carries on beside it and after a drop (chain/logs.py)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from eth_account import Account

from indexmaker.app.binance_wiring import binance_venue
from indexmaker.app.chain_wiring import (
    ChainPathSettings,
    chain_path,
    exchange_sim_args,
    exchange_sim_env,
)
from indexmaker.chain.deploy import TRADING_CHAIN_ID
from indexmaker.core.chain_events import DepositObserved
from indexmaker.core.ids import client_key
from indexmaker.engine.engine import TRADING_CHAIN

from . import path_harness as h

POLL_S = 30.0  # far longer than the test waits: what it sees came through the subscription


async def test_a_deposit_reaches_the_service_over_the_subscription(
    chains: h.LocalChains, pairs: list[str]
) -> None:
    client = Account.from_key(h.CLIENT_KEYS[0])
    args = [*exchange_sim_args(chains), "--indexes", h.INDEX]
    venue, sim = binance_venue(pairs, args, exchange_sim_env(chains))
    path = chain_path(chains, venue.rest, ChainPathSettings(poll_s=POLL_S))
    port = path.chain.ports[TRADING_CHAIN]
    assert port.settings.ws_url == f"ws://127.0.0.1:{chains.nodes[TRADING_CHAIN_ID].port}"
    seen: list[DepositObserved] = []

    async def sink(event: Any) -> None:
        if isinstance(event, DepositObserved):
            seen.append(event)

    try:
        await port.start(sink)
        await h.until(lambda: port.follower.subscribed, "the subscription", 20)
        await asyncio.sleep(0.5)  # the first poll (at start) is behind us
        await h.client_deposit(chains, TRADING_CHAIN_ID, client, 7)
        key = client_key(TRADING_CHAIN_ID, client.address)
        await h.until(
            lambda: any(e.client == key and e.amount == Decimal(7) for e in seen),
            "the deposit, well before the next poll",
            10,
        )
    finally:
        await port.stop()
        await path.close()
        sim.stop()
    assert port.follower.subscription_drops == 0
