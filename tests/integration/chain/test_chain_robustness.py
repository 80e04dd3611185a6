"""The chain connector when the RPC misbehaves, against a real anvil: failover across RPC URLs,
an RPC drop in the middle of a WebSocket subscription (every deposit handled once), and a
reorg of unconfirmed blocks (a deposit reorged out never reaches the core).

RPC drops are made with a TCP relay of our own on 127.0.0.1 in front of anvil (`Relay`):
stopping it resets every connection through it, as a node or a load balancer going away.
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import AsyncHTTPProvider, AsyncWeb3, Web3

from indexmaker.chain import artifacts
from indexmaker.chain.anvil import AnvilNode, free_port
from indexmaker.chain.connector import ChainSettings, Web3ChainPort
from indexmaker.chain.deploy import TRADING_CHAIN_ID, deploy_chain
from indexmaker.chain.failover import FailoverHTTPProvider
from indexmaker.chain.logs import LogFollower
from indexmaker.core.chain_events import DepositObserved, MintConfirmed
from indexmaker.core.errors import NetworkError
from indexmaker.core.events import MintIndex
from indexmaker.core.ids import Designation, PaymentId, Symbol, client_key

from .conftest import as_account, send

USDC = 10**6


class Relay:
    """Forwards 127.0.0.1:`port` to anvil's port; `stop()` resets every relayed connection."""

    def __init__(self, target: int, port: int | None = None) -> None:
        self.target, self.port = target, port or free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


@pytest.fixture(scope="module")
def node(start_node: Any) -> AnvilNode:
    started: AnvilNode = start_node(TRADING_CHAIN_ID)
    return started


@pytest.fixture(scope="module")
def section(node: AnvilNode, deployer: LocalAccount, client: LocalAccount) -> dict[str, Any]:
    w3 = as_account(node.url, deployer)
    deployed = deploy_chain(w3, TRADING_CHAIN_ID, ["SY100"])
    usdc = w3.eth.contract(address=deployed["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
    send(w3, usdc.functions.mint(client.address, 1_000 * USDC))
    cw3 = as_account(node.url, client)
    usdc = cw3.eth.contract(address=deployed["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
    send(cw3, usdc.functions.approve(deployed["custody"], 1_000 * USDC))
    return deployed


def _deposit(url: str, section: dict[str, Any], client: LocalAccount, units: int) -> None:
    w3 = as_account(url, client)
    custody = w3.eth.contract(address=section["custody"], abi=artifacts.ours("Custody")["abi"])
    assert send(w3, custody.functions.deposit(units))["status"] == 1


def _settings(node: AnvilNode, section: dict[str, Any], rpc_url: str, **kw: Any) -> ChainSettings:
    return ChainSettings(
        chain_id=TRADING_CHAIN_ID,
        rpc_url=rpc_url,
        custody=section["custody"],
        usdc=section["usdc"],
        designation=Designation("EVM:BASE:USDC"),
        index_tokens=section["index_tokens"],
        start_block=Web3(Web3.HTTPProvider(node.url)).eth.block_number + 1,
        poll_s=0.1,
        **kw,
    )


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_requests_fail_over_to_the_next_rpc_url(
    node: AnvilNode, section: dict[str, Any], deployer: LocalAccount, client: LocalAccount
) -> None:
    relay = Relay(node.port)
    await relay.start()
    port = Web3ChainPort(
        _settings(node, section, relay.url, fallback_rpc_urls=(node.url,), confirmations=0),
        deployer,
    )
    provider = port.w3.provider
    assert isinstance(provider, FailoverHTTPProvider)
    seen: list[Any] = []

    async def sink(event: Any) -> None:
        seen.append(event)

    await port.start(sink)
    try:
        await asyncio.to_thread(_deposit, node.url, section, client, 1 * USDC)
        await _until(lambda: len(seen) == 1)
        assert provider.active_url == relay.url and provider.failovers == 0
        await relay.stop()  # the first node goes away
        for units in (2, 3):
            await asyncio.to_thread(_deposit, node.url, section, client, units * USDC)
        await _until(lambda: len(seen) == 3)
        assert provider.active_url == node.url and provider.failovers == 1
        # Sends fail over too: a mint through the second URL.
        mint = MintIndex(
            PaymentId("failover-1"),
            client_key(TRADING_CHAIN_ID, client.address),
            Symbol("SY100"),
            Decimal(1),
        )
        await port.mint(mint)
    finally:
        await port.stop()
    deposits = [e for e in seen if isinstance(e, DepositObserved)]
    assert [e.amount for e in deposits] == [Decimal(1), Decimal(2), Decimal(3)]
    assert len({e.seq_num for e in deposits}) == 3  # each once
    assert isinstance(seen[-1], MintConfirmed)
    # Every URL down: a retryable NetworkError naming the failure, not a hang.
    dead = FailoverHTTPProvider([f"http://127.0.0.1:{free_port()}" for _ in range(2)], 2.0)
    with pytest.raises(NetworkError, match=r"no RPC URL answered eth_blockNumber \(2 tried\)"):
        await AsyncWeb3(dead).eth.block_number


async def test_an_rpc_drop_mid_subscription_loses_and_repeats_nothing(
    node: AnvilNode, section: dict[str, Any], client: LocalAccount
) -> None:
    relay = Relay(node.port)
    await relay.start()
    w3 = AsyncWeb3(AsyncHTTPProvider(relay.url, exception_retry_configuration=None))
    follower = LogFollower(
        w3,
        [section["custody"]],
        start_block=await w3.eth.block_number + 1,
        ws_url=relay.ws_url,
        poll_s=0.2,
        max_backoff_s=0.2,
        topics=[Web3.keccak(text="Deposit(address,uint256,uint256)")],
    )
    handled: list[int] = []

    async def handle(log: Any) -> None:
        handled.append(int.from_bytes(bytes(log["topics"][2]), "big"))  # the sequence

    stop = asyncio.Event()
    runner = asyncio.create_task(follower.run(handle, stop))
    try:
        await _until(lambda: follower.subscribed)
        await asyncio.to_thread(_deposit, node.url, section, client, USDC)
        await _until(lambda: len(handled) == 1)
        await relay.stop()  # HTTP and the subscription both cut
        for _ in range(3):  # deposits while the follower is cut off
            await asyncio.to_thread(_deposit, node.url, section, client, USDC)
        await _until(lambda: not follower.subscribed)
        assert len(handled) == 1
        relay = Relay(node.port, relay.port)  # the node is back on the same address
        await relay.start()
        await _until(lambda: len(handled) == 4 and follower.subscribed)
        await asyncio.to_thread(_deposit, node.url, section, client, USDC)
        await _until(lambda: len(handled) == 5)
    finally:
        stop.set()
        await asyncio.wait_for(runner, 5)
        await relay.stop()
    assert handled == list(range(handled[0], handled[0] + 5))  # in order, each once
    assert follower.subscription_drops >= 1


async def test_a_deposit_reorged_out_before_its_confirmations_never_reaches_the_core(
    node: AnvilNode, section: dict[str, Any], deployer: LocalAccount, client: LocalAccount
) -> None:
    port = Web3ChainPort(_settings(node, section, node.url, confirmations=2), deployer)
    seen: list[DepositObserved] = []

    async def handle(log: Any) -> None:
        await port._on_deposit(log)

    async def sink(event: Any) -> None:
        seen.append(event)

    port._sink = sink
    rpc = Web3(Web3.HTTPProvider(node.url)).provider
    snapshot = rpc.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    await asyncio.to_thread(_deposit, node.url, section, client, 7 * USDC)
    rpc.make_request("anvil_mine", [1])  # type: ignore[arg-type]
    assert await port.follower.poll_once(handle) == 0  # 1 deep of 2: not yet
    # The chain reorganises: the deposit's blocks are replaced by empty ones, longer.
    assert rpc.make_request("evm_revert", [snapshot])["result"] is True  # type: ignore[arg-type]
    rpc.make_request("anvil_mine", [4])  # type: ignore[arg-type]
    assert await port.follower.poll_once(handle) == 0
    assert seen == []
    # The client deposits again on the new chain: seen once, when 2 deep.
    await asyncio.to_thread(_deposit, node.url, section, client, 8 * USDC)
    rpc.make_request("anvil_mine", [2])  # type: ignore[arg-type]
    assert await port.follower.poll_once(handle) == 1
    assert [e.amount for e in seen] == [Decimal(8)]


async def test_an_rpc_answering_http_errors_is_a_retryable_network_error(
    deployer: LocalAccount,
) -> None:
    """A node (or its load balancer) answering 503: every path maps it to NetworkError."""
    from aiohttp import web

    from indexmaker.chain.tx import TxSender

    app = web.Application()
    app.router.add_post("/", lambda _request: web.Response(status=503, text="overloaded"))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        w3 = AsyncWeb3(AsyncHTTPProvider(url, exception_retry_configuration=None))
        follower = LogFollower(w3, ["0x" + "11" * 20], start_block=0)

        async def handle(log: Any) -> None:
            raise AssertionError("no log can arrive")

        with pytest.raises(NetworkError, match="503"):
            await follower.poll_once(handle)
        sender = TxSender(w3, deployer)
        with pytest.raises(NetworkError, match="503"):
            await sender.send({"to": deployer.address, "value": 1})
        assert sender.sent == []
    finally:
        await runner.cleanup()
