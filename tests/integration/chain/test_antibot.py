"""Anti-bot gate: a real FixServer over loopback whose new orders need a minimum USDC balance,
read from a real anvil through the chain port's balance reader."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from indexmaker.chain import anvil, artifacts
from indexmaker.chain.balances import balance_reader, web3_ports
from indexmaker.chain.connector import ChainSettings, Web3ChainPort
from indexmaker.chain.deploy import SOURCE_CHAIN_ID, deploy_chain
from indexmaker.core.errors import InvalidInputError
from indexmaker.core.ids import Designation
from indexmaker.server.balance_gate import AntiBotConfig, BalanceGate
from indexmaker.server.ws_server import ServerConfig
from security.edge import CHAIN_ID, Wallet, peers, running_server

from .conftest import as_account, send

assert CHAIN_ID == SOURCE_CHAIN_ID  # edge.py's frames name chain 42161


@pytest.fixture(scope="module")
def node(start_node: Any) -> anvil.AnvilNode:
    node: anvil.AnvilNode = start_node(SOURCE_CHAIN_ID)
    return node


@pytest.fixture(scope="module")
def section(node: anvil.AnvilNode, deployer: LocalAccount) -> dict[str, Any]:
    return deploy_chain(as_account(node.url, deployer), SOURCE_CHAIN_ID, [])


def _port(node: anvil.AnvilNode, section: dict[str, Any], issuer: LocalAccount) -> Web3ChainPort:
    settings = ChainSettings(
        chain_id=SOURCE_CHAIN_ID,
        rpc_url=node.url,
        custody=section["custody"],
        usdc=section["usdc"],
        designation=Designation("EVM:ARBITRUM:USDC"),
    )
    return Web3ChainPort(settings, issuer)


def _fund(
    node: anvil.AnvilNode, section: dict[str, Any], deployer: LocalAccount, to: str, usdc: str
) -> None:
    w3 = as_account(node.url, deployer)
    token = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
    units = int(Decimal(usdc).scaleb(6))
    send(w3, token.functions.mint(Web3.to_checksum_address(to), units))


async def test_native_balance_is_read_in_eth(
    node: anvil.AnvilNode, section: dict[str, Any], deployer: LocalAccount
) -> None:
    holder = Wallet().address
    wei = 1_500_000_000_000_000_001
    Web3(Web3.HTTPProvider(node.url)).provider.make_request("anvil_setBalance", [holder, hex(wei)])
    read = balance_reader([_port(node, section, deployer)])
    assert await read(SOURCE_CHAIN_ID, holder, "native") == Decimal("1.500000000000000001")
    assert await read(SOURCE_CHAIN_ID, holder, "usdc") == 0
    with pytest.raises(InvalidInputError, match="chain 8453 is not served"):
        await read(8453, holder, "usdc")


async def test_orders_below_the_minimum_balance_get_a_nak_and_reads_are_cached(
    node: anvil.AnvilNode, section: dict[str, Any], deployer: LocalAccount
) -> None:
    now = [0.0]
    port = _port(node, section, deployer)
    assert web3_ports(port) == [port]
    config = AntiBotConfig(enabled=True, min_balance=Decimal(10), ttl=timedelta(seconds=30))
    gate = BalanceGate(config, balance_reader(web3_ports(port)), clock=lambda: now[0])
    rich, poor = Wallet(), Wallet()
    _fund(node, section, deployer, rich.address, "25")
    _fund(node, section, deployer, poor.address, "9.999999")
    async with running_server(ServerConfig(port=0)) as server:
        server.balance_gate = gate
        async with peers(server.url) as connect:
            a, b = await connect(rich), await connect(poor)
            for n in range(3):  # one balance read for the three orders
                reply = await a.request(lambda s, n=n: rich.order(s, f"r{n}"))
                assert reply["standard_header"]["msg_type"] == "ACK"
            assert gate.reads == 1
            reply = await b.request(lambda s: poor.order(s, "p1"))
            assert reply["standard_header"]["msg_type"] == "NAK"
            assert reply["reason"] == (
                f"balance too low: {poor.address} holds 9.999999 USDC on chain 42161, "
                "the minimum to trade is 10 (seq_num 1 refused)"
            )
            # Quotes are not orders: never gated.
            reply = await b.request(lambda s: poor.quote(s, "q1"))
            assert reply["standard_header"]["msg_type"] == "ACK"
            # Funded now, but the cached balance holds until the ttl passes.
            _fund(node, section, deployer, poor.address, "0.000001")
            reply = await b.request(lambda s: poor.order(s, "p2"))
            assert reply["standard_header"]["msg_type"] == "NAK" and gate.reads == 2
            now[0] += 30
            reply = await b.request(lambda s: poor.order(s, "p3"))
            assert reply["standard_header"]["msg_type"] == "ACK" and gate.reads == 3
            # The node goes away: a client not cached is refused ("retry later"), a cached
            # one still trades, and the server keeps serving.
            anvil.stop(node.pid)
            stranger = Wallet()
            c = await connect(stranger)
            reply = await c.request(lambda s: stranger.order(s, "s1"))
            assert reply["standard_header"]["msg_type"] == "NAK"
            assert reply["reason"].startswith("balance check unavailable on chain 42161: retry")
            reply = await b.request(lambda s: poor.order(s, "p4"))
            assert reply["standard_header"]["msg_type"] == "ACK"
