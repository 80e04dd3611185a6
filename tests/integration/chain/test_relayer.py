"""Our Across relayer between two anvils: a deposit on 42161 filled on 8453 after the delay,
keeping input − output; a restart between deposit and fill fills once; a late fill is given up;
a fill that fails (the relayer's USDC float drained) is logged, alerted once and retried until
it is made, once;
repaid on 42161 from a one-leaf refund bundle, its USDC over both chains grows by exactly the
fee, and a restart after the repayment repays nothing twice."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import AsyncHTTPProvider, AsyncWeb3

from indexmaker.chain import artifacts
from indexmaker.chain.across import to_bytes32
from indexmaker.chain.deploy import SOURCE_CHAIN_ID, TRADING_CHAIN_ID, deploy_chain
from indexmaker.chain.relayer import AcrossRelayer, relayer_between
from indexmaker.chain.root_bundles import RootBundles
from indexmaker.chain.tx import TxSender

from .conftest import as_account, root_bundles, send

USDC = 10**6
ZERO32 = b"\x00" * 32


@pytest.fixture(scope="module")
def chains(
    start_node: Any, deployer: LocalAccount, client: LocalAccount, relayer: LocalAccount
) -> dict[int, tuple[str, dict[str, Any]]]:
    out = {}
    for chain_id, funded in ((SOURCE_CHAIN_ID, client), (TRADING_CHAIN_ID, relayer)):
        node = start_node(chain_id)
        w3 = as_account(node.url, deployer)
        section = deploy_chain(w3, chain_id)
        usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
        send(w3, usdc.functions.mint(funded.address, 100_000 * USDC))
        out[chain_id] = (node.url, section)
    return out


def _deposit(
    chains: dict[int, tuple[str, dict[str, Any]]],
    client: LocalAccount,
    to: str,
    amount: int,
    fee: int,
    ttl: int = 3600,
) -> None:
    url, src = chains[SOURCE_CHAIN_ID]
    _, dst = chains[TRADING_CHAIN_ID]
    w3 = as_account(url, client)
    usdc = w3.eth.contract(address=src["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
    pool = w3.eth.contract(
        address=src["spoke_pool"], abi=artifacts.across(src["spoke_pool_contract"])["abi"]
    )
    send(w3, usdc.functions.approve(pool.address, amount))
    now = w3.eth.get_block("latest")["timestamp"]
    call = pool.functions.deposit(
        to_bytes32(client.address),
        to_bytes32(to),
        to_bytes32(src["usdc"]),
        to_bytes32(dst["usdc"]),
        amount,
        amount - fee,
        TRADING_CHAIN_ID,
        ZERO32,
        now,
        now + ttl,
        0,
        b"",
    )
    assert send(w3, call, gas=500_000)["status"] == 1


def _make_relayer(
    chains: dict[int, tuple[str, dict[str, Any]]],
    relayer: LocalAccount,
    delay_s: float,
    start_block: int,
    repay: RootBundles | None = None,
    **extra: Any,
) -> AcrossRelayer:
    src_url, src = chains[SOURCE_CHAIN_ID]
    dst_url, dst = chains[TRADING_CHAIN_ID]
    dst_w3 = AsyncWeb3(AsyncHTTPProvider(dst_url))
    src_w3 = AsyncWeb3(AsyncHTTPProvider(src_url))
    sender = TxSender(dst_w3, relayer)
    options = {"delay_s": delay_s, "start_block": start_block, "poll_s": 0.05, "repay": repay}
    options.update(extra)
    w3s = {SOURCE_CHAIN_ID: src_w3, TRADING_CHAIN_ID: dst_w3}
    sections = {SOURCE_CHAIN_ID: src, TRADING_CHAIN_ID: dst}
    return relayer_between(w3s, sections, SOURCE_CHAIN_ID, TRADING_CHAIN_ID, sender, **options)


async def _until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    # Bounded generously: a loaded machine (CI on 2 cores) takes seconds per RPC round.
    for _ in range(int(timeout_s / 0.05)):  # bounded wait
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def _balance(chains: dict[int, tuple[str, dict[str, Any]]], chain_id: int, who: str) -> int:
    from web3 import Web3

    url, section = chains[chain_id]
    w3 = Web3(Web3.HTTPProvider(url))
    usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
    return int(usdc.functions.balanceOf(Web3.to_checksum_address(who)).call())


async def test_deposit_filled_after_the_delay_once_across_a_restart(
    chains: dict[int, tuple[str, dict[str, Any]]],
    client: LocalAccount,
    relayer: LocalAccount,
) -> None:
    wallet = "0x000000000000000000000000000000000000cafe"
    start = AsyncWeb3(AsyncHTTPProvider(chains[SOURCE_CHAIN_ID][0]))
    first_block = await start.eth.block_number + 1
    before = _balance(chains, TRADING_CHAIN_ID, relayer.address)
    # Relayer A sees the deposit but is stopped before its (long) delay is over: a restart.
    a = _make_relayer(chains, relayer, delay_s=30.0, start_block=first_block)
    stop_a = asyncio.Event()
    run_a = asyncio.create_task(a.run(stop_a))
    _deposit(chains, client, wallet, 300 * USDC, 2 * USDC)
    await _until(lambda: a.follower.cursor >= first_block)
    stop_a.set()
    await asyncio.wait_for(run_a, 5)
    assert a.filled == [] and _balance(chains, TRADING_CHAIN_ID, wallet) == 0
    # Relayer B resumes from the same block and fills after its 0.2 s delay.
    b = _make_relayer(chains, relayer, delay_s=0.2, start_block=first_block)
    stop_b = asyncio.Event()
    run_b = asyncio.create_task(b.run(stop_b))
    try:
        await _until(lambda: len(b.filled) == 1)
    finally:
        stop_b.set()
        await asyncio.wait_for(run_b, 5)
    assert _balance(chains, TRADING_CHAIN_ID, wallet) == 298 * USDC
    assert before - _balance(chains, TRADING_CHAIN_ID, relayer.address) == 298 * USDC
    # Caught up again from the same block: the pool refuses a second fill; nothing moves.
    c = _make_relayer(chains, relayer, delay_s=0.0, start_block=first_block)
    stop_c = asyncio.Event()
    run_c = asyncio.create_task(c.run(stop_c))
    try:
        await _until(lambda: len(c.already_filled) == 1)
    finally:
        stop_c.set()
        await asyncio.wait_for(run_c, 5)
    assert c.filled == [] and _balance(chains, TRADING_CHAIN_ID, wallet) == 298 * USDC


async def test_fill_delayed_past_the_deadline_is_given_up(
    chains: dict[int, tuple[str, dict[str, Any]]],
    client: LocalAccount,
    relayer: LocalAccount,
) -> None:
    wallet = "0x000000000000000000000000000000000000d00d"
    src_w3 = AsyncWeb3(AsyncHTTPProvider(chains[SOURCE_CHAIN_ID][0]))
    first_block = await src_w3.eth.block_number + 1
    _deposit(chains, client, wallet, 10 * USDC, 1 * USDC, ttl=60)
    dst_w3 = AsyncWeb3(AsyncHTTPProvider(chains[TRADING_CHAIN_ID][0]))
    snap = (await dst_w3.provider.make_request("evm_snapshot", []))["result"]  # type: ignore[arg-type]
    try:
        await dst_w3.provider.make_request("evm_increaseTime", [120])  # type: ignore[arg-type]
        await dst_w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        r = _make_relayer(chains, relayer, delay_s=0.0, start_block=first_block)
        stop = asyncio.Event()
        run = asyncio.create_task(r.run(stop))
        try:
            await _until(lambda: len(r.expired) == 1)
        finally:
            stop.set()
            await asyncio.wait_for(run, 30)
        assert r.filled == [] and _balance(chains, TRADING_CHAIN_ID, wallet) == 0
    finally:
        await dst_w3.provider.make_request("evm_revert", [snap])  # type: ignore[arg-type]


async def _run_until(r: AcrossRelayer, condition: Callable[[], bool]) -> None:
    stop = asyncio.Event()
    run = asyncio.create_task(r.run(stop))
    try:
        await _until(condition)
    finally:
        stop.set()
        await asyncio.wait_for(run, 30)


async def test_relayer_repaid_on_the_origin_keeps_exactly_its_fee(
    chains: dict[int, tuple[str, dict[str, Any]]],
    client: LocalAccount,
    relayer: LocalAccount,
    deployer: LocalAccount,
) -> None:
    wallet = "0x000000000000000000000000000000000000beef"
    src_url, src = chains[SOURCE_CHAIN_ID]
    first_block = await AsyncWeb3(AsyncHTTPProvider(src_url)).eth.block_number + 1

    def balances() -> tuple[int, int]:  # the relayer's USDC on (8453, 42161)
        on = (_balance(chains, c, relayer.address) for c in (TRADING_CHAIN_ID, SOURCE_CHAIN_ID))
        return next(on), next(on)

    dst_before, src_before = balances()
    r = _make_relayer(chains, relayer, 0.0, first_block, root_bundles(src_url, src, deployer))
    _deposit(chains, client, wallet, 400 * USDC, 3 * USDC)
    await _run_until(r, lambda: len(r.repaid) == 1)
    dst_after, src_after = balances()
    assert r.filled == r.repaid and _balance(chains, TRADING_CHAIN_ID, wallet) == 397 * USDC
    assert (dst_after - dst_before, src_after - src_before) == (-397 * USDC, 400 * USDC)
    assert (dst_after + src_after) - (dst_before + src_before) == 3 * USDC  # the fee, kept
    # A restart catching up from the same block: the fill is refused as done, found to be
    # ours, its repayment found paid on chain: nothing moves on either chain.
    again = _make_relayer(chains, relayer, 0.0, first_block, root_bundles(src_url, src, deployer))
    await _run_until(again, lambda: len(again.repaid) == 1)
    assert again.filled == [] and again.already_filled == r.filled
    assert balances() == (dst_after, src_after)


def _transfer_all(chains: dict[int, tuple[str, dict[str, Any]]], frm: LocalAccount, to: str) -> int:
    """Move all of `frm`'s USDC on 8453 to `to`; returns the amount (units)."""
    url, section = chains[TRADING_CHAIN_ID]
    w3 = as_account(url, frm)
    usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
    amount = _balance(chains, TRADING_CHAIN_ID, frm.address)
    assert send(w3, usdc.functions.transfer(to, amount))["status"] == 1
    return amount


async def test_failed_fill_is_logged_alerted_and_retried_until_made_once(
    chains: dict[int, tuple[str, dict[str, Any]]],
    client: LocalAccount,
    relayer: LocalAccount,
    stranger: LocalAccount,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wallet = "0x000000000000000000000000000000000000f00d"
    first_block = await AsyncWeb3(AsyncHTTPProvider(chains[SOURCE_CHAIN_ID][0])).eth.block_number
    # The relayer's float on 8453 drained: its fill reverts (the token transfer fails).
    float_units = _transfer_all(chains, relayer, stranger.address)
    r = _make_relayer(chains, relayer, 0.0, first_block + 1, retry_s=0.05, max_retry_s=0.2)
    stop = asyncio.Event()
    run = asyncio.create_task(r.run(stop))
    try:
        with caplog.at_level(logging.WARNING, logger="indexmaker"):
            _deposit(chains, client, wallet, 50 * USDC, 1 * USDC)
            await _until(lambda: len(r.failed) >= 3)  # tried again, still failing
            assert r.filled == [] and _balance(chains, TRADING_CHAIN_ID, wallet) == 0
            # The float refilled: the next try fills it.
            assert _transfer_all(chains, stranger, relayer.address) == float_units
            await _until(lambda: len(r.filled) == 1)
            await asyncio.sleep(0.5)  # several back-off periods: no further try follows
    finally:
        stop.set()
        await asyncio.wait_for(run, 30)
    deposit_id = r.filled[0]
    assert {d for d, _ in r.failed} == {deposit_id} and r.alerts == [deposit_id]
    assert r.already_filled == [] and r.expired == []
    assert _balance(chains, TRADING_CHAIN_ID, wallet) == 49 * USDC
    assert _balance(chains, TRADING_CHAIN_ID, relayer.address) == float_units - 49 * USDC
    messages = [rec.getMessage() for rec in caplog.records]
    failures = [m for m in messages if "relay_fill_failed" in m and "attempt" in m]
    alerts = [m for m in messages if "alert" in m and "relay_fill_failed" in m]
    assert len(failures) == len(r.failed) and len(alerts) == 1, messages
