"""The async web3.py pieces against real anvil nodes: nonces, gas, stuck transactions replaced,
failures mapped; logs followed once each, with confirmations, catch-up and polling fallback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import AsyncHTTPProvider, AsyncWeb3, Web3
from web3.exceptions import TransactionNotFound

from indexmaker.chain import artifacts
from indexmaker.chain.anvil import free_port
from indexmaker.chain.deploy import TRADING_CHAIN_ID, deploy_chain
from indexmaker.chain.logs import LogFollower
from indexmaker.chain.tx import TxPolicy, TxRevertedError, TxSender, TxTimeoutError
from indexmaker.core.errors import NonRetryableError, RetryableError

from .conftest import as_account, send

USDC = 10**6


@pytest.fixture(scope="module")
def chain(start_node: Any, deployer: LocalAccount) -> tuple[str, str, dict[str, Any]]:
    node = start_node(TRADING_CHAIN_ID)
    return node.url, node.ws_url, deploy_chain(as_account(node.url, deployer), TRADING_CHAIN_ID)


@pytest.fixture(scope="module")
def stuck_url(start_node: Any) -> str:
    """A chain that mines only on evm_mine: every transaction waits in the mempool."""
    import indexmaker.chain.anvil as anvil

    node = anvil.start(TRADING_CHAIN_ID, no_mining=True)
    yield node.url  # type: ignore[misc]
    anvil.stop(node.pid)


def _usdc(w3: Any, section: dict[str, Any]) -> Any:
    return w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])


def _custody(w3: Any, section: dict[str, Any]) -> Any:
    return w3.eth.contract(address=section["custody"], abi=artifacts.ours("Custody")["abi"])


async def test_concurrent_sends_get_distinct_nonces(
    chain: tuple[str, str, dict[str, Any]], deployer: LocalAccount, stranger: LocalAccount
) -> None:
    url, _, section = chain
    w3 = AsyncWeb3(AsyncHTTPProvider(url))
    sender = TxSender(w3, deployer)
    usdc = _usdc(w3, section)
    before = await usdc.functions.balanceOf(stranger.address).call()
    calls = [
        {"to": section["usdc"], "data": usdc.encode_abi("mint", [stranger.address, i + 1])}
        for i in range(5)
    ]
    receipts = await asyncio.gather(*(sender.send(c) for c in calls))
    assert all(r["status"] == 1 for r in receipts)
    txs = [await w3.eth.get_transaction(r["transactionHash"]) for r in receipts]
    nonces = sorted(t["nonce"] for t in txs)
    assert nonces == list(range(nonces[0], nonces[0] + 5))
    # Gas estimated with 20% headroom: every limit is above what was used.
    assert all(t["gas"] > r["gasUsed"] for t, r in zip(txs, receipts, strict=True))
    assert await usdc.functions.balanceOf(stranger.address).call() - before == 15


async def test_revert_is_final_and_does_not_burn_a_nonce(
    chain: tuple[str, str, dict[str, Any]], stranger: LocalAccount
) -> None:
    url, _, section = chain
    w3 = AsyncWeb3(AsyncHTTPProvider(url))
    sender = TxSender(w3, stranger)
    usdc = _usdc(w3, section)
    mint = {"to": section["usdc"], "data": usdc.encode_abi("mint", [stranger.address, 1])}
    with pytest.raises(TxRevertedError) as info:
        await sender.send(mint)  # stranger has no MINTER_ROLE: the estimate reverts
    assert isinstance(info.value, NonRetryableError)
    assert sender.sent == []
    assert await sender.nonces.reserve() == await w3.eth.get_transaction_count(stranger.address)


async def test_stuck_transaction_replaced_with_higher_fees(
    stuck_url: str, relayer: LocalAccount, stranger: LocalAccount
) -> None:
    w3 = AsyncWeb3(AsyncHTTPProvider(stuck_url))
    sender = TxSender(w3, relayer, TxPolicy(receipt_timeout_s=0.3, max_replacements=5))
    nonce = await w3.eth.get_transaction_count(relayer.address, "pending")
    task = asyncio.create_task(sender.send({"to": stranger.address, "value": 12345}))
    for _ in range(200):  # bounded: until a replacement was sent
        if len(sender.sent) >= 2:
            break
        await asyncio.sleep(0.02)
    assert len(sender.sent) >= 2
    await w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    receipt = await asyncio.wait_for(task, 10)
    mined = "0x" + bytes(receipt["transactionHash"]).hex()
    assert mined in sender.sent[1:]  # a replacement, not the first version, was mined
    # The node accepted the replacements (it refuses one under +10% fees) and dropped the first.
    with pytest.raises(TransactionNotFound):
        await w3.eth.get_transaction(sender.sent[0])  # type: ignore[arg-type]
    mined_tx = await w3.eth.get_transaction(receipt["transactionHash"])
    assert mined_tx["nonce"] == nonce


async def test_gives_up_as_retryable_after_the_last_replacement(
    stuck_url: str, client: LocalAccount, stranger: LocalAccount
) -> None:
    w3 = AsyncWeb3(AsyncHTTPProvider(stuck_url))
    sender = TxSender(w3, client, TxPolicy(receipt_timeout_s=0.1, max_replacements=1))
    with pytest.raises(TxTimeoutError) as info:
        await sender.send({"to": stranger.address, "value": 1})
    assert isinstance(info.value, RetryableError)
    assert len(info.value.hashes) == 2
    await w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def _deposit(url: str, section: dict[str, Any], who: LocalAccount, amount: int) -> None:
    w3 = as_account(url, who)
    usdc, custody = _usdc(w3, section), _custody(w3, section)
    send(w3, usdc.functions.approve(custody.address, amount))
    assert send(w3, custody.functions.deposit(amount))["status"] == 1


@pytest.fixture(scope="module")
def funded(chain: tuple[str, str, dict[str, Any]], deployer: LocalAccount, client: Any) -> None:
    url, _, section = chain
    w3 = as_account(url, deployer)
    send(w3, _usdc(w3, section).functions.mint(client.address, 10_000 * USDC))


def _deposit_topic(section: dict[str, Any]) -> list[Any]:
    return [Web3.keccak(text="Deposit(address,uint256,uint256)")]


async def test_follower_hands_each_log_once_and_resumes_from_its_cursor(
    chain: tuple[str, str, dict[str, Any]], funded: None, client: LocalAccount
) -> None:
    url, _, section = chain
    w3 = AsyncWeb3(AsyncHTTPProvider(url))
    start = await w3.eth.block_number + 1
    for amount in (1, 2, 3):
        _deposit(url, section, client, amount * USDC)
    seen: list[Any] = []

    async def handle(log: Any) -> None:
        seen.append(log)

    topics = _deposit_topic(section)
    follower = LogFollower(w3, [section["custody"]], start_block=start, topics=topics)
    assert await follower.poll_once(handle) == 3
    assert await follower.poll_once(handle) == 0
    custody = _custody(w3, section)
    amounts = [custody.events.Deposit().process_log(lg)["args"]["amount"] for lg in seen]
    assert amounts == [1 * USDC, 2 * USDC, 3 * USDC]
    # A restart from the stored cursor catches up on what happened meanwhile, and only that.
    _deposit(url, section, client, 4 * USDC)
    resumed = LogFollower(w3, [section["custody"]], start_block=follower.cursor + 1, topics=topics)
    seen.clear()
    assert await resumed.poll_once(handle) == 1
    assert custody.events.Deposit().process_log(seen[0])["args"]["amount"] == 4 * USDC


async def test_follower_waits_for_confirmations(
    chain: tuple[str, str, dict[str, Any]], funded: None, client: LocalAccount
) -> None:
    url, _, section = chain
    w3 = AsyncWeb3(AsyncHTTPProvider(url))
    start = await w3.eth.block_number + 1
    _deposit(url, section, client, 7)
    follower = LogFollower(
        w3,
        [section["custody"]],
        start_block=start,
        confirmations=2,
        topics=_deposit_topic(section),
    )
    seen: list[Any] = []

    async def handle(log: Any) -> None:
        seen.append(log)

    assert await follower.poll_once(handle) == 0  # the deposit's block is the head: 0 deep
    await w3.provider.make_request("anvil_mine", [2])  # type: ignore[arg-type]
    assert await follower.poll_once(handle) == 1


@pytest.mark.parametrize("live_ws", [True, False], ids=["subscription", "polling-fallback"])
async def test_follower_run_delivers_by_subscription_or_polling(
    chain: tuple[str, str, dict[str, Any]], funded: None, client: LocalAccount, live_ws: bool
) -> None:
    url, ws_url, section = chain
    w3 = AsyncWeb3(AsyncHTTPProvider(url))
    start = await w3.eth.block_number + 1
    # With the subscription live the poll is 30 s away: delivery within 5 s proves the wake-up.
    # Without (nothing listens on that port) a 0.1 s poll carries on.
    ws = ws_url if live_ws else f"ws://127.0.0.1:{free_port()}"
    follower = LogFollower(
        w3,
        [section["custody"]],
        start_block=start,
        ws_url=ws,
        poll_s=30.0 if live_ws else 0.1,
        topics=_deposit_topic(section),
    )
    got = asyncio.Event()

    async def handle(log: Any) -> None:
        got.set()

    stop = asyncio.Event()
    runner = asyncio.create_task(follower.run(handle, stop))
    try:
        for _ in range(100):  # bounded: the subscription is up before the deposit
            if follower.subscribed or not live_ws:
                break
            await asyncio.sleep(0.05)
        await asyncio.to_thread(_deposit, url, section, client, 5)
        await asyncio.wait_for(got.wait(), 5)
        assert follower.subscribed is live_ws
    finally:
        stop.set()
        await asyncio.wait_for(runner, 5)
