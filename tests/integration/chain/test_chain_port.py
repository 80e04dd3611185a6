"""Web3ChainPort (the chain port over web3.py) against a real anvil with our contracts."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3

from indexmaker.chain import artifacts
from indexmaker.chain.connector import (
    ChainSettings,
    PaymentIdReused,
    Web3ChainPort,
    mint_terms_hash,
)
from indexmaker.chain.deploy import TRADING_CHAIN_ID, deploy_chain
from indexmaker.chain.escrow import EscrowRefused, burn_terms_hash
from indexmaker.core.chain_events import (
    BurnConfirmed,
    BurnIndex,
    DepositObserved,
    EscrowIndex,
    HopCompleted,
    IndexEscrowed,
    MintConfirmed,
    ReleaseIndex,
)
from indexmaker.core.errors import InvalidInputError
from indexmaker.core.events import HopReport, HopState, MintIndex, QueryHop, RouteCollateral
from indexmaker.core.ids import Designation, PaymentId, Symbol, TransferId, client_key
from indexmaker.core.ports import ChainPort

from .conftest import as_account, send

CUSTODY = Designation("EVM:BASE:USDC")
WALLET = Designation("EVM:BASE:WALLET")


@pytest.fixture(scope="module")
def deployed(
    start_node: Any, deployer: LocalAccount, client: LocalAccount
) -> tuple[str, dict[str, Any]]:
    node = start_node(TRADING_CHAIN_ID)
    w3 = as_account(node.url, deployer)
    section = deploy_chain(w3, TRADING_CHAIN_ID, ["SY100"])
    usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
    send(w3, usdc.functions.mint(client.address, 10_000 * 10**6))
    return node.url, section


def _port(deployed: tuple[str, dict[str, Any]], issuer: LocalAccount, wallet: str) -> Web3ChainPort:
    url, section = deployed
    settings = ChainSettings(
        chain_id=TRADING_CHAIN_ID,
        rpc_url=url,
        custody=section["custody"],
        usdc=section["usdc"],
        designation=CUSTODY,
        index_tokens=section["index_tokens"],
        addresses={WALLET: wallet},
        confirmations=1,
        poll_s=0.05,
    )
    return Web3ChainPort(settings, issuer)


def _contract(url: str, address: str, name: str) -> Any:
    w3 = Web3(Web3.HTTPProvider(url))
    return w3.eth.contract(address=address, abi=artifacts.ours(name)["abi"])


async def test_deposits_pushed_once_confirmed(
    deployed: tuple[str, dict[str, Any]],
    deployer: LocalAccount,
    client: LocalAccount,
    stranger: LocalAccount,
) -> None:
    url, section = deployed
    port = _port(deployed, deployer, stranger.address)
    assert isinstance(port, ChainPort)
    events: list[Any] = []
    confirmed = asyncio.Event()

    async def sink(event: Any) -> None:
        events.append(event)
        if len(events) == 2:
            confirmed.set()

    await port.start(sink)
    try:
        w3 = as_account(url, client)
        usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
        custody = w3.eth.contract(address=section["custody"], abi=artifacts.ours("Custody")["abi"])
        send(w3, usdc.functions.approve(custody.address, 3_000_000))
        send(w3, custody.functions.deposit(1_500_000))
        send(w3, custody.functions.deposit(1))
        Web3(Web3.HTTPProvider(url)).provider.make_request("anvil_mine", [1])  # type: ignore[arg-type]
        await asyncio.wait_for(confirmed.wait(), 10)
    finally:
        await port.stop()
    assert all(isinstance(e, DepositObserved) for e in events)
    assert [(e.client, e.amount, e.designation) for e in events] == [
        (client_key(TRADING_CHAIN_ID, client.address), Decimal("1.5"), CUSTODY),
        (client_key(TRADING_CHAIN_ID, client.address), Decimal("0.000001"), CUSTODY),
    ]
    assert events[1].seq_num == events[0].seq_num + 1
    assert port.cursor >= events[1].block_number
    assert await port.balance(CUSTODY) >= Decimal("1.500001")


async def test_mint_once_per_payment_id_with_the_terms_hash(
    deployed: tuple[str, dict[str, Any]],
    deployer: LocalAccount,
    client: LocalAccount,
    stranger: LocalAccount,
) -> None:
    url, section = deployed
    port = _port(deployed, deployer, stranger.address)
    pushed: list[Any] = []

    async def sink(event: Any) -> None:
        pushed.append(event)

    port._sink = sink  # no log following needed for commands
    command = MintIndex(
        PaymentId("pay-1"),
        client_key(TRADING_CHAIN_ID, client.address),
        Symbol("SY100"),
        Decimal("1.234567890123456789"),
    )
    await port.mint(command)
    await port.mint(command)  # a resend (e.g. after a restart): refused on chain, confirmed here
    # Both name the one mint transaction (the resend finds it by its IndexMinted log).
    tx = pushed[0].tx_hash
    assert tx is not None and pushed == [MintConfirmed(command.payment_id, tx)] * 2
    receipt = Web3(Web3.HTTPProvider(url)).eth.get_transaction_receipt(tx)
    assert receipt["status"] == 1 and receipt["to"] == section["custody"]
    # The same payment id for another mint is refused, never reported as minted.
    other = replace(command, quantity=Decimal(2))
    with pytest.raises(PaymentIdReused, match="pay-1 was minted before"):
        await port.mint(other)
    assert len(pushed) == 2
    token = _contract(url, section["index_tokens"]["SY100"], "IndexToken")
    assert token.functions.balanceOf(client.address).call() == 1_234567890123456789
    assert token.functions.totalSupply().call() == 1_234567890123456789
    custody = _contract(url, section["custody"], "Custody")
    order_id = Web3.keccak(text="pay-1")
    assert custody.functions.invoiceHashOf(order_id).call() == mint_terms_hash(command)
    with pytest.raises(InvalidInputError, match="symbol: no index token for SYXX"):
        await port.mint(MintIndex(PaymentId("pay-2"), command.client, Symbol("SYXX"), Decimal(1)))


async def test_transfer_released_once_per_transfer_id(
    deployed: tuple[str, dict[str, Any]],
    deployer: LocalAccount,
    client: LocalAccount,
) -> None:
    url, section = deployed
    wallet = "0x000000000000000000000000000000000000bEEF"
    w3 = as_account(url, client)
    usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
    custody = w3.eth.contract(address=section["custody"], abi=artifacts.ours("Custody")["abi"])
    send(w3, usdc.functions.approve(custody.address, 5_000_000))
    send(w3, custody.functions.deposit(5_000_000))
    port = _port(deployed, deployer, wallet)
    pushed: list[Any] = []

    async def sink(event: Any) -> None:
        pushed.append(event)

    port._sink = sink
    hop = RouteCollateral(
        TransferId("t-1"),
        client_key(TRADING_CHAIN_ID, client.address),
        "",
        CUSTODY,
        WALLET,
        Decimal("2.5"),
    )
    query = QueryHop(hop.transfer_id, "", hop.amount)
    # Before it is sent the chain has no trace of it: only then may it be resent.
    assert (await port.hop_status(query)).state is HopState.NOT_FOUND
    await port.transfer(hop)
    assert await port.hop_status(query) == HopReport(
        hop.transfer_id, HopState.DONE, Decimal("2.5"), Decimal(0)
    )
    await port.transfer(hop)  # resent: nothing moves twice
    assert await port.balance(WALLET) == Decimal("2.5")
    assert pushed == [HopCompleted(TransferId("t-1"), Decimal("2.5"), Decimal(0))] * 2
    with pytest.raises(InvalidInputError, match="destination"):
        await port.transfer(
            RouteCollateral(
                TransferId("t-2"), hop.client, "", CUSTODY, Designation("X"), hop.amount
            )
        )


async def test_escrow_burn_release_once_each_by_redemption_id(
    deployed: tuple[str, dict[str, Any]],
    deployer: LocalAccount,
    client: LocalAccount,
    stranger: LocalAccount,
) -> None:
    """A redemption on chain (issue 12): the client's approved tokens pulled into custody
    once, burned per batch from custody once per payment id, the rest handed back once;
    a client that did not approve is refused with the reason and nothing moves."""
    url, section = deployed
    port = _port(deployed, deployer, stranger.address)
    pushed: list[Any] = []

    async def sink(event: Any) -> None:
        pushed.append(event)

    port._sink = sink
    key = client_key(TRADING_CHAIN_ID, client.address)
    sy100 = Symbol("SY100")
    await port.mint(MintIndex(PaymentId("pay-esc"), key, sy100, Decimal(5)))
    token = _contract(url, section["index_tokens"]["SY100"], "IndexToken")
    held = token.functions.balanceOf(client.address).call()
    escrow = EscrowIndex(PaymentId("R1"), key, sy100, Decimal("2.5"))
    with pytest.raises(EscrowRefused, match=r"approved custody 0x\w+ for 0, not 2\.5$"):
        await port.escrow(escrow)
    cw3 = as_account(url, client)
    approve = cw3.eth.contract(address=token.address, abi=token.abi).functions.approve(
        section["custody"], 3 * 10**18
    )
    send(cw3, approve)
    pushed.clear()
    await port.escrow(escrow)
    await port.escrow(escrow)  # a resend: nothing moves, the first transaction is reported
    assert [type(e) for e in pushed] == [IndexEscrowed, IndexEscrowed]
    assert pushed[0] == pushed[1] and pushed[0].tx_hash is not None
    # Its block (also the resend's, found by the escrow's log): the redemption's lower bound.
    escrowed = Web3(Web3.HTTPProvider(url)).eth.get_transaction_receipt(pushed[0].tx_hash)
    assert pushed[0].block_number == escrowed["blockNumber"] > 0
    assert token.functions.balanceOf(client.address).call() == held - 25 * 10**17
    # Another escrow under the same id is refused (a fresh store's id on old custody).
    with pytest.raises(EscrowRefused, match="R1 was used before"):
        await port.escrow(replace(escrow, quantity=Decimal(1)))
    supply = token.functions.totalSupply().call()
    burn = BurnIndex(
        PaymentId("R1-B1"), key, sy100, Decimal("1.000000000000000001"), PaymentId("R1")
    )
    pushed.clear()
    await port.burn(burn)
    await port.burn(burn)  # the same batch's burn again: refused on chain, confirmed here
    assert [type(e) for e in pushed] == [BurnConfirmed, BurnConfirmed]
    assert pushed[0] == pushed[1] and pushed[0].tx_hash is not None
    assert token.functions.totalSupply().call() == supply - 10**18 - 1
    custody = _contract(url, section["custody"], "Custody")
    recorded = custody.functions.burnHashOf(Web3.keccak(text="R1-B1")).call()
    assert bytes(recorded) == burn_terms_hash(burn)
    rest = ReleaseIndex(PaymentId("R1"), key, sy100, Decimal("1.499999999999999999"))
    await port.release_index(rest)
    await port.release_index(rest)  # once: the closed escrow moves nothing more
    assert token.functions.balanceOf(client.address).call() == held - 10**18 - 1
    assert token.functions.balanceOf(section["custody"]).call() == 0
