"""From a client's deposit to collateral ready at the exchange, per hop (issue 11), on the
real path: two anvil nodes (42161, 8453) with our contracts and Across's spoke pools, the
exchange-sim process watching 8453 and crediting deposits, the service (engine, chain and
bridge ports) and our Across relayer (fill delay 0.2 s, as the path tests use).

Each of `DEPOSITS` client deposits on 42161 is followed through its hops, one at a time:
  source custody      receipt of the client's Custody.deposit → the core routes it (the
                      `across` RouteCollateral command: DepositObserved handled)
  Across deposit      → the issuer's FundsDeposited on the 42161 spoke pool (custody release,
                      approve once, unsafeDeposit, each mined)
  relayer fill        → FilledRelay on the 8453 spoke pool (includes the relayer's 0.2 s delay)
  trading wallet      → the core routes the next hop (the bridge hop seen filled, completed)
  exchange address    → custody on 8453 released it to the exchange's deposit address (mined)
  exchange credit     → the lot is ready in the core (the exchange credited the deposit and
                      the hop completed)
Times are wall-clock stamps taken by watchers polling every `POLL_S` (logs, the core's
ledger) or by command observers, so each figure has about ±POLL_S of resolution. The path's
own pollers (deposit follower, bridge fill, exchange credit) also run every `POLL_S` here
(ChainPathSettings.poll_s; 0.2 s by default), so the figures show the work of each hop, not a
poll interval. The same
run's deposit-observed rate (bench_chain.py measures the port alone) is not repeated here.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

from eth_account import Account
from web3 import AsyncHTTPProvider, AsyncWeb3, Web3

from indexmaker.app.binance_wiring import binance_venue
from indexmaker.app.chain_wiring import (
    ChainPathSettings,
    chain_path,
    exchange_sim_args,
    exchange_sim_env,
    start_local_chains,
)
from indexmaker.app.config import ServiceConfig, StoreConfig
from indexmaker.app.service import Service, index_pairs
from indexmaker.chain import artifacts
from indexmaker.chain.across import event_topic
from indexmaker.chain.deploy import SOURCE_CHAIN_ID, TRADING_CHAIN_ID, connect
from indexmaker.core.chain_events import RouteCollateral
from indexmaker.core.ids import client_key
from indexmaker.engine.config import SolverConfig
from indexmaker.server.ws_server import ServerConfig

INDEX = "SYL2"
CLIENT_KEY = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a"  # anvil #4
DEPOSITS = 12
POLL_S = 0.01
HOPS = (
    "source custody",
    "Across deposit",
    "relayer fill on 8453",
    "trading wallet",
    "exchange deposit address",
    "exchange credit",
)


def _deposit(url: str, section: dict[str, Any], amount: int) -> float:
    """The client's approve + Custody.deposit on 42161; the time its receipt was seen."""
    client = Account.from_key(CLIENT_KEY)
    w3 = connect(url, client)
    usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
    custody = w3.eth.contract(address=section["custody"], abi=artifacts.ours("Custody")["abi"])
    for call in (
        usdc.functions.approve(custody.address, amount * 10**6),
        custody.functions.deposit(amount * 10**6),
    ):
        receipt = w3.eth.wait_for_transaction_receipt(
            call.transact({"gas": 300_000}), timeout=30, poll_latency=POLL_S
        )
        assert receipt["status"] == 1
    return time.monotonic()


async def _first_log(w3: AsyncWeb3[Any], address: str, topic: bytes, after: int) -> float:
    """When a log of `topic` at `address` beyond block `after` was first seen."""
    for _ in range(int(120 / POLL_S)):  # bounded
        logs = []
        if await w3.eth.block_number > after:  # anvil refuses a range beyond its head
            query: Any = {"address": Web3.to_checksum_address(address), "fromBlock": after + 1}
            logs = await w3.eth.get_logs({**query, "toBlock": "latest", "topics": [topic]})
        if logs:
            return time.monotonic()
        await asyncio.sleep(POLL_S)
    raise TimeoutError(f"no log at {address}")


async def _until(condition: Any) -> float:
    for _ in range(int(120 / POLL_S)):  # bounded
        if condition():
            return time.monotonic()
        await asyncio.sleep(POLL_S)
    raise TimeoutError("condition not met")


async def _measure() -> tuple[list[list[float]], float]:
    chains = await asyncio.to_thread(start_local_chains, [INDEX], Decimal(1_000_000))
    sim = None
    service = None
    try:
        client = Account.from_key(CLIENT_KEY)
        chains.mint_usdc(SOURCE_CHAIN_ID, client.address, Decimal(100_000))
        src, dst = chains.sections[SOURCE_CHAIN_ID], chains.sections[TRADING_CHAIN_ID]
        args = [*exchange_sim_args(chains), "--indexes", INDEX]
        venue, sim = binance_venue(index_pairs([INDEX]), args, exchange_sim_env(chains))
        path = chain_path(chains, venue.rest, ChainPathSettings(relayer_delay_s=0.2, poll_s=POLL_S))
        config = ServiceConfig(
            indexes=(INDEX,),
            server=ServerConfig(host="127.0.0.1", port=0),
            solver=SolverConfig(mint_idle=timedelta(seconds=1)),
            store=StoreConfig(None),
        )
        service = Service(config, venue=venue, chain=path.chain, bridges=path.bridges)
        routed: dict[str, float] = {}

        def observe(command: Any) -> None:
            if isinstance(command, RouteCollateral):
                routed.setdefault(f"{command.bridge}:{command.hop_key}", time.monotonic())

        service.runtime.observers.append(observe)
        await service.start()
        path.relayer.start()
        origin = AsyncWeb3(AsyncHTTPProvider(chains.url(SOURCE_CHAIN_ID)))
        dest = AsyncWeb3(AsyncHTTPProvider(chains.url(TRADING_CHAIN_ID)))
        deposited = event_topic(
            artifacts.across(src["spoke_pool_contract"])["abi"], "FundsDeposited"
        )
        filled = event_topic(artifacts.across(dst["spoke_pool_contract"])["abi"], "FilledRelay")
        released = event_topic(artifacts.ours("Custody")["abi"], "CollateralReleased")
        key = client_key(SOURCE_CHAIN_ID, client.address)
        ledger = service.engine.collateral.ledger(key)
        samples: list[list[float]] = []
        for n in range(DEPOSITS):
            before_src = await origin.eth.block_number
            before_dst = await dest.eth.block_number
            routes = len(routed)
            ready = sum(1 for lot in ledger.lots if lot.ready)
            pool_deposit = asyncio.create_task(
                _first_log(origin, src["spoke_pool"], deposited, before_src)
            )
            fill = asyncio.create_task(_first_log(dest, dst["spoke_pool"], filled, before_dst))
            mined = await asyncio.to_thread(_deposit, chains.url(SOURCE_CHAIN_ID), src, 100 + n)
            observed = await _until(lambda r=routes: len(routed) > r)
            t_pool, t_fill = await pool_deposit, await fill
            wallet = await _until(lambda r=routes: len(routed) > r + 1)
            release = await _first_log(dest, dst["custody"], released, before_dst)
            credited = await _until(lambda r=ready: sum(1 for x in ledger.lots if x.ready) > r)
            stamps = [mined, observed, t_pool, t_fill, wallet, release, credited]
            samples.append([(b - a) * 1000 for a, b in itertools.pairwise(stamps)])
        await path.relayer.stop()
        return samples, os.getloadavg()[0]
    finally:
        if service is not None:
            await service.stop()
        if sim is not None:
            sim.stop()
        chains.stop()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run() -> list[str]:
    samples, load = asyncio.run(_measure())
    lines = [f"deposit on 42161 -> collateral ready at the exchange, {DEPOSITS} deposits:"]
    totals = [sum(s) for s in samples]
    for i, hop in enumerate(HOPS):
        values = [s[i] for s in samples]
        lines.append(
            f"  {hop:<25} p50 {statistics.median(values):7.0f} ms  p99 {_pct(values, 0.99):7.0f} ms"
        )
    lines.append(
        f"  {'whole path':<25} p50 {statistics.median(totals):7.0f} ms  "
        f"p99 {_pct(totals, 0.99):7.0f} ms"
    )
    lines.append(f"watchers poll every {POLL_S * 1000:.0f} ms; load average {load:.1f} (2 cores)")
    return lines


if __name__ == "__main__":
    for line in run():
        print(line)
