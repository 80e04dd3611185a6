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
from indexmaker.core.ids import Designation, client_key
from indexmaker.engine.collateral import CollateralManager
from indexmaker.server.balance_gate import AntiBotConfig, BalanceGate, collateral_held
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


async def test_collateral_held_with_us_counts_toward_a_usdc_minimum(
    node: anvil.AnvilNode, section: dict[str, Any], deployer: LocalAccount
) -> None:
    """Review (issue 11): a client who had deposited everything (~1e15 USDC ready in custody,
    0 in its wallet) got `balance too low: … holds 0.000000 USDC`. Its unspent collateral in
    the engine's ledger now counts with its wallet; a native-token minimum still reads the
    wallet only, and a stranger's question leaves the ledger as it was."""
    quiets = [0]

    async def quiet() -> None:  # Runtime.quiet's place: counted, the ledger is not stepping
        quiets[0] += 1

    ledger = CollateralManager()
    depositor, topped_up, stranger = Wallet(), Wallet(), Wallet()
    chain = Designation("EVM:ARBITRUM:USDC")
    ledger.on_deposit(client_key(CHAIN_ID, depositor.address), 1, Decimal("999999999999999"), chain)
    ledger.on_deposit(client_key(CHAIN_ID, topped_up.address), 2, Decimal("0.4"), chain)
    _fund(node, section, deployer, topped_up.address, "0.6")
    read = balance_reader([_port(node, section, deployer)])
    usdc = AntiBotConfig(enabled=True, min_balance=Decimal(1))
    native = AntiBotConfig(enabled=True, token="native", min_balance=Decimal(1))
    held = collateral_held(ledger, quiet)
    async with running_server(ServerConfig(port=0)) as server:
        server.balance_gate = BalanceGate(usdc, read, held=held)
        async with peers(server.url) as connect:
            a, b, c = await connect(depositor), await connect(topped_up), await connect(stranger)
            reply = await a.request(lambda s: depositor.order(s, "d1"))
            assert reply["standard_header"]["msg_type"] == "ACK", reply
            reply = await b.request(lambda s: topped_up.order(s, "t1"))  # 0.6 + 0.4 = 1
            assert reply["standard_header"]["msg_type"] == "ACK", reply
            reply = await c.request(lambda s: stranger.order(s, "s1"))
            assert reply["standard_header"]["msg_type"] == "NAK"
            assert reply["reason"] == (
                f"balance too low: {stranger.address} holds 0.000000 USDC on chain 42161 and "
                "0.000000 USDC deposited with us, the minimum to trade is 1 (seq_num 1 refused)"
            )
            assert quiets[0] == 3  # each read waited for the engine between steps
        server.balance_gate = BalanceGate(native, read, held=held)
        async with peers(server.url) as connect:
            a = await connect(depositor)
            reply = await a.request(lambda s: depositor.order(s, "d2"))
            assert reply["standard_header"]["msg_type"] == "NAK"
            assert reply["reason"].startswith(
                f"balance too low: {depositor.address} holds 0.000000000000000000 NATIVE on"
            )
            assert "with us" not in reply["reason"] and quiets[0] == 3
    assert set(ledger.clients()) == {
        client_key(CHAIN_ID, depositor.address),
        client_key(CHAIN_ID, topped_up.address),
    }


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
