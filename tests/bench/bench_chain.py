"""Chain deposits (issue 11) on a real anvil (npm @foundry-rs/anvil) on 127.0.0.1.

- catch-up: N client deposits already mined (N custody `Deposit` logs in 10 blocks), then the
  chain port (`Web3ChainPort`: LogFollower + decode + DepositObserved) follows them from its
  start block: deposits observed per second, beside the same range's bare `eth_getLogs` (the
  node's share) and eth_getLogs + web3.py's log decoding (the library's) in the same run.
- live: one deposit at a time (automine), from its receipt to the DepositObserved the port
  pushes: p50/p95 with the WebSocket `newHeads` subscription (poll 30 s away) and with the
  polling fallback (every 0.25 s), beside a bare `eth_getTransactionReceipt` round trip.

The deposit → exchange path per hop (bridge, exchange credit) is bench_chain_path.py.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any

from eth_account import Account
from web3 import AsyncHTTPProvider, AsyncWeb3

from indexmaker.chain import anvil, artifacts
from indexmaker.chain.connector import DEPOSIT_TOPIC, ChainSettings, Web3ChainPort
from indexmaker.chain.deploy import ANVIL_KEY_0, TRADING_CHAIN_ID, connect, deploy_chain, transact
from indexmaker.core.chain_events import DepositObserved
from indexmaker.core.ids import Designation

CLIENT_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"  # anvil #2
CATCH_UP = 400
LIVE = 30
USDC = 10**6


def _setup(node: anvil.AnvilNode) -> tuple[dict[str, Any], Any, Any]:
    deployer, client = Account.from_key(ANVIL_KEY_0), Account.from_key(CLIENT_KEY)
    w3 = connect(node.url, deployer)
    section = deploy_chain(w3, TRADING_CHAIN_ID, [])
    usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
    transact(w3, usdc.functions.mint(client.address, 10**9 * USDC), "mint")
    cw3 = connect(node.url, client)
    usdc = cw3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
    transact(cw3, usdc.functions.approve(section["custody"], 10**9 * USDC), "approve")
    custody = cw3.eth.contract(address=section["custody"], abi=artifacts.ours("Custody")["abi"])
    return section, cw3, custody


def _mined_deposits(cw3: Any, custody: Any, count: int) -> None:
    """`count` deposits signed locally and mined in 10 blocks (automine off meanwhile)."""
    client = Account.from_key(CLIENT_KEY)
    nonce = cw3.eth.get_transaction_count(client.address)
    cw3.provider.make_request("evm_setAutomine", [False])
    per_block = max(1, count // 10)
    for i in range(count):
        tx = custody.functions.deposit(USDC + i).build_transaction(
            {"from": client.address, "nonce": nonce + i, "gas": 120_000}
        )
        cw3.eth.send_raw_transaction(client.sign_transaction(tx).raw_transaction)
        if (i + 1) % per_block == 0:
            cw3.provider.make_request("evm_mine", [])
    cw3.provider.make_request("evm_mine", [])
    cw3.provider.make_request("evm_setAutomine", [True])


def _port(node: anvil.AnvilNode, section: dict[str, Any], start: int, **kw: Any) -> Web3ChainPort:
    settings = ChainSettings(
        chain_id=TRADING_CHAIN_ID,
        rpc_url=node.url,
        custody=section["custody"],
        usdc=section["usdc"],
        designation=Designation("EVM:BASE:USDC"),
        confirmations=0,
        start_block=start,
        **kw,
    )
    return Web3ChainPort(settings, Account.from_key(ANVIL_KEY_0))


async def _catch_up(node: anvil.AnvilNode, section: dict[str, Any], start: int) -> list[str]:
    port = _port(node, section, start, poll_s=0.05)
    seen: list[DepositObserved] = []
    done = asyncio.Event()

    async def sink(event: Any) -> None:
        seen.append(event)
        if len(seen) == CATCH_UP:
            done.set()

    began = time.perf_counter()
    await port.start(sink)
    await asyncio.wait_for(done.wait(), 120)
    elapsed = time.perf_counter() - began
    await port.stop()
    await port.w3.provider.disconnect()
    assert len({e.seq_num for e in seen}) == CATCH_UP
    w3 = AsyncWeb3(AsyncHTTPProvider(node.url))
    params: Any = {"address": section["custody"], "fromBlock": start, "toBlock": "latest"}
    params["topics"] = [DEPOSIT_TOPIC]
    began = time.perf_counter()
    logs = await w3.eth.get_logs(params)
    bare = time.perf_counter() - began
    custody = w3.eth.contract(address=section["custody"], abi=artifacts.ours("Custody")["abi"])
    began = time.perf_counter()
    logs = await w3.eth.get_logs(params)
    decoded = [custody.events.Deposit().process_log(log) for log in logs]
    with_decode = time.perf_counter() - began
    assert len(decoded) == CATCH_UP
    await w3.provider.disconnect()
    return [
        f"catch-up of {CATCH_UP} deposits in 10 blocks: chain port {CATCH_UP / elapsed:,.0f} "
        f"deposits/s ({elapsed * 1000:.0f} ms); same run, same range: bare eth_getLogs "
        f"{bare * 1000:.0f} ms, eth_getLogs + web3 decode {with_decode * 1000:.0f} ms "
        f"({CATCH_UP / with_decode:,.0f}/s)"
    ]


async def _live(
    node: anvil.AnvilNode, section: dict[str, Any], cw3: Any, custody: Any, ws: bool
) -> list[float]:
    start = cw3.eth.block_number + 1
    kw: dict[str, Any] = {"ws_url": node.ws_url, "poll_s": 30.0} if ws else {"poll_s": 0.25}
    port = _port(node, section, start, **kw)
    seen: dict[int, float] = {}
    arrived = asyncio.Event()

    async def sink(event: Any) -> None:
        seen[event.seq_num] = time.perf_counter()
        arrived.set()

    await port.start(sink)
    for _ in range(100):  # bounded: the subscription is up before the first deposit
        if not ws or port.follower.subscribed:
            break
        await asyncio.sleep(0.05)
    latencies = []
    for i in range(LIVE):
        arrived.clear()
        tx = await asyncio.to_thread(custody.functions.deposit(USDC + i).transact, {"gas": 120_000})
        await asyncio.to_thread(cw3.eth.wait_for_transaction_receipt, tx, 30)
        mined = time.perf_counter()
        await asyncio.wait_for(arrived.wait(), 10)
        latencies.append((max(seen.values()) - mined) * 1000)
    await port.stop()
    await port.w3.provider.disconnect()
    return latencies


def _receipt_rtt(cw3: Any, block_number: int) -> float:
    block = cw3.eth.get_block(block_number)
    tx = block["transactions"][0]
    times = []
    for _ in range(20):
        began = time.perf_counter()
        cw3.eth.get_transaction_receipt(tx)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run() -> list[str]:
    node = anvil.start(TRADING_CHAIN_ID)
    try:
        section, cw3, custody = _setup(node)
        start = cw3.eth.block_number + 1
        _mined_deposits(cw3, custody, CATCH_UP)
        lines = asyncio.run(_catch_up(node, section, start))
        rtt = _receipt_rtt(cw3, start)
        for ws in (True, False):
            lat = asyncio.run(_live(node, section, cw3, custody, ws))
            how = "WebSocket newHeads" if ws else "polling every 0.25 s"
            lines.append(
                f"live deposit, receipt -> DepositObserved ({how}, {LIVE} deposits): "
                f"p50 {statistics.median(lat):.1f} ms, p95 {_pct(lat, 0.95):.1f} ms"
            )
        lines.append(f"same run: bare eth_getTransactionReceipt round trip p50 {rtt:.2f} ms")
        lines.append(f"load average {os.getloadavg()[0]:.1f} (2 cores shared)")
        return lines
    finally:
        anvil.stop(node.pid)


if __name__ == "__main__":
    for line in run():
        print(line)
