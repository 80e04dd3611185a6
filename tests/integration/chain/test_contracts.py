"""Our contracts (contracts/*.sol) against a real anvil: collateral token, index token, custody.

One anvil (chain 8453) for the module, deployed by indexmaker.chain.deploy as `make deploy` does.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD

from indexmaker.chain import artifacts
from indexmaker.chain.deploy import TRADING_CHAIN_ID, deploy_chain, first_block

from .conftest import as_account, revert_of, selector, send

USDC = 10**6  # collateral units per USDC (6 decimals)
INDEX = 10**18  # index token units per token (18 decimals)
ZERO32 = b"\x00" * 32


class Deployed:
    def __init__(self, url: str, section: dict[str, Any], w3: Web3) -> None:
        self.url, self.section, self.w3 = url, section, w3
        self.usdc = w3.eth.contract(address=section["usdc"], abi=artifacts.ours("LocalUSDC")["abi"])
        self.custody = w3.eth.contract(
            address=section["custody"], abi=artifacts.ours("Custody")["abi"]
        )
        self.token = w3.eth.contract(
            address=section["index_tokens"]["SY100"], abi=artifacts.ours("IndexToken")["abi"]
        )

    def at(self, w3: Web3, contract: Any) -> Any:
        """The same contract, sending through `w3` (another signer)."""
        return w3.eth.contract(address=contract.address, abi=contract.abi)


@pytest.fixture(scope="module")
def chain(start_node: Any, deployer: LocalAccount, client: LocalAccount) -> Deployed:
    node = start_node(TRADING_CHAIN_ID)
    w3 = as_account(node.url, deployer)
    d = Deployed(node.url, deploy_chain(w3, TRADING_CHAIN_ID, ["SY100"]), w3)
    assert send(w3, d.usdc.functions.mint(client.address, 1_000_000 * USDC))["status"] == 1
    return d


def _deposit(chain: Deployed, who: LocalAccount, amount: int) -> Any:
    w3 = as_account(chain.url, who)
    usdc, custody = chain.at(w3, chain.usdc), chain.at(w3, chain.custody)
    assert send(w3, usdc.functions.approve(custody.address, amount))["status"] == 1
    return send(w3, custody.functions.deposit(amount))


def test_the_deployment_names_the_block_its_logs_start_at(chain: Deployed) -> None:
    """Issue 11: followers and look-ups of the chain start at `start_block`, never at genesis:
    no contract of the deployment has code there yet, each has it at the head."""
    start = chain.section["start_block"]
    assert first_block(chain.section) == start <= chain.w3.eth.block_number
    for name in ("usdc", "custody", "spoke_pool"):
        address = chain.section[name]
        assert chain.w3.eth.get_code(address, block_identifier=start) == b""
        assert chain.w3.eth.get_code(address) != b""
    assert first_block({}) == 0  # a deployment file from before it was recorded


def test_decimals_and_roles(chain: Deployed, deployer: LocalAccount) -> None:
    assert chain.usdc.functions.decimals().call() == 6
    assert chain.token.functions.decimals().call() == 18
    issuer = chain.token.functions.ISSUER_ROLE().call()
    assert chain.token.functions.hasRole(issuer, chain.custody.address).call()
    # Not even the token's admin mints directly: supply changes only through custody.
    assert not chain.token.functions.hasRole(issuer, deployer.address).call()
    unauthorized = selector("AccessControlUnauthorizedAccount(address,bytes32)")
    assert revert_of(chain.token.functions.mint(deployer.address, 1), deployer.address) == (
        unauthorized
    )


def test_usdc_mint_only_by_minter(chain: Deployed, stranger: LocalAccount) -> None:
    call = chain.usdc.functions.mint(stranger.address, 1)
    unauthorized = selector("AccessControlUnauthorizedAccount(address,bytes32)")
    assert revert_of(call, stranger.address) == unauthorized


def test_deposits_carry_client_amount_and_sequence(chain: Deployed, client: LocalAccount) -> None:
    before = chain.usdc.functions.balanceOf(chain.custody.address).call()
    first = chain.custody.functions.depositCount().call()
    receipts = [_deposit(chain, client, 250 * USDC), _deposit(chain, client, 1_000_001)]
    events = [
        chain.custody.events.Deposit().process_receipt(r, errors=DISCARD)[0]["args"]
        for r in receipts
    ]
    assert [(e["client"], e["amount"], e["sequence"]) for e in events] == [
        (client.address, 250 * USDC, first + 1),
        (client.address, 1_000_001, first + 2),
    ]
    after = chain.usdc.functions.balanceOf(chain.custody.address).call()
    assert after - before == 250 * USDC + 1_000_001


def test_deposit_refusals(chain: Deployed, client: LocalAccount, stranger: LocalAccount) -> None:
    assert revert_of(chain.custody.functions.deposit(0), client.address) == selector("ZeroAmount()")
    # No allowance and no balance: the token refuses, custody's count does not move.
    count = chain.custody.functions.depositCount().call()
    assert revert_of(chain.custody.functions.deposit(5), stranger.address) == selector(
        "ERC20InsufficientAllowance(address,uint256,uint256)"
    )
    assert chain.custody.functions.depositCount().call() == count


def test_release_only_by_issuer_and_once(
    chain: Deployed, deployer: LocalAccount, client: LocalAccount, stranger: LocalAccount
) -> None:
    _deposit(chain, client, 100 * USDC)
    release_id = Web3.keccak(text="route-1/hop-1")
    call = chain.custody.functions.release(release_id, stranger.address, 40 * USDC)
    assert revert_of(call, stranger.address) == selector(
        "AccessControlUnauthorizedAccount(address,bytes32)"
    )
    w3 = as_account(chain.url, deployer)
    receipt = send(
        w3, chain.at(w3, chain.custody).functions.release(release_id, stranger.address, 40 * USDC)
    )
    assert receipt["status"] == 1
    ev = chain.custody.events.CollateralReleased().process_receipt(receipt, errors=DISCARD)[0][
        "args"
    ]
    assert (ev["releaseId"], ev["to"], ev["amount"]) == (release_id, stranger.address, 40 * USDC)
    assert chain.usdc.functions.balanceOf(stranger.address).call() == 40 * USDC
    # The same release id again (a retry after a restart) moves nothing.
    assert revert_of(call, deployer.address) == selector("AlreadyReleased(bytes32)")


def test_mint_once_per_order_with_invoice_hash(
    chain: Deployed, deployer: LocalAccount, client: LocalAccount, stranger: LocalAccount
) -> None:
    order = Web3.keccak(text="SY100/o-1")
    invoice = Web3.keccak(text='{"invoice": 1}')
    amount = 3 * INDEX + 123
    mint = chain.custody.functions.mint(chain.token.address, order, client.address, amount, invoice)
    assert revert_of(mint, stranger.address) == selector(
        "AccessControlUnauthorizedAccount(address,bytes32)"
    )
    w3 = as_account(chain.url, deployer)
    custody = chain.at(w3, chain.custody)
    receipt = send(
        w3, custody.functions.mint(chain.token.address, order, client.address, amount, invoice)
    )
    assert receipt["status"] == 1
    ev = chain.custody.events.IndexMinted().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (ev["orderId"], ev["token"], ev["to"], ev["amount"], ev["invoiceHash"]) == (
        order,
        chain.token.address,
        client.address,
        amount,
        invoice,
    )
    assert chain.custody.functions.invoiceHashOf(order).call() == invoice
    assert chain.token.functions.balanceOf(client.address).call() == amount
    supply = chain.token.functions.totalSupply().call()
    # A repeated mint for the same order is refused, even with another amount or invoice.
    again = custody.functions.mint(chain.token.address, order, client.address, 1, Web3.keccak(1))
    assert revert_of(again, deployer.address) == selector("AlreadyMinted(bytes32)")
    assert send(w3, again)["status"] == 0
    assert chain.token.functions.totalSupply().call() == supply
    empty = custody.functions.mint(chain.token.address, Web3.keccak(2), client.address, 1, ZERO32)
    assert revert_of(empty, deployer.address) == selector("EmptyInvoiceHash()")


def test_burn_needs_allowance_and_happens_once(
    chain: Deployed, deployer: LocalAccount, client: LocalAccount
) -> None:
    w3 = as_account(chain.url, deployer)
    custody = chain.at(w3, chain.custody)
    send(
        w3,
        custody.functions.mint(
            chain.token.address,
            Web3.keccak(text="o-burn"),
            client.address,
            10 * INDEX,
            Web3.keccak(text="inv"),
        ),
    )
    order = Web3.keccak(text="SY100/redeem-1")
    burn = custody.functions.burn(chain.token.address, order, client.address, 4 * INDEX)
    assert revert_of(burn, deployer.address) == selector(
        "ERC20InsufficientAllowance(address,uint256,uint256)"
    )
    cw3 = as_account(chain.url, client)
    send(cw3, chain.at(cw3, chain.token).functions.approve(custody.address, 8 * INDEX))
    before = chain.token.functions.balanceOf(client.address).call()
    receipt = send(w3, burn)
    assert receipt["status"] == 1
    ev = chain.custody.events.IndexBurned().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (ev["orderId"], ev["from"], ev["amount"]) == (order, client.address, 4 * INDEX)
    assert chain.token.functions.balanceOf(client.address).call() == before - 4 * INDEX
    assert revert_of(burn, deployer.address) == selector("AlreadyBurned(bytes32)")


def test_pause_stops_every_move(
    chain: Deployed, deployer: LocalAccount, client: LocalAccount, stranger: LocalAccount
) -> None:
    w3 = as_account(chain.url, deployer)
    custody = chain.at(w3, chain.custody)
    paused = selector("EnforcedPause()")
    assert revert_of(custody.functions.pause(), stranger.address) == selector(
        "AccessControlUnauthorizedAccount(address,bytes32)"
    )
    assert send(w3, custody.functions.pause())["status"] == 1
    try:
        assert revert_of(custody.functions.deposit(1), client.address) == paused
        mint = custody.functions.mint(
            chain.token.address, Web3.keccak(text="p"), client.address, 1, Web3.keccak(3)
        )
        assert revert_of(mint, deployer.address) == paused
        release = custody.functions.release(Web3.keccak(text="r"), client.address, 1)
        assert revert_of(release, deployer.address) == paused
    finally:
        assert send(w3, custody.functions.unpause())["status"] == 1
    assert _deposit(chain, client, 1)["status"] == 1


# ---------------------------------------------------------------- escrow (redemptions, issue 12)


def _minted_to(chain: Deployed, deployer: LocalAccount, client: LocalAccount, amount: int) -> None:
    w3 = as_account(chain.url, deployer)
    mint = chain.at(w3, chain.custody).functions.mint(
        chain.token.address,
        Web3.keccak(text=f"escrow-mint-{amount}"),
        client.address,
        amount,
        Web3.keccak(text="inv"),
    )
    assert send(w3, mint)["status"] == 1


def test_escrow_pulls_approved_tokens_once(
    chain: Deployed, deployer: LocalAccount, client: LocalAccount, stranger: LocalAccount
) -> None:
    _minted_to(chain, deployer, client, 6 * INDEX)
    w3 = as_account(chain.url, deployer)
    custody = chain.at(w3, chain.custody)
    escrow_id = Web3.keccak(text="R1")
    escrow = custody.functions.escrowIndex(
        chain.token.address, escrow_id, client.address, 5 * INDEX
    )
    # Only the issuer escrows, and only what the client approved.
    assert revert_of(escrow, stranger.address) == selector(
        "AccessControlUnauthorizedAccount(address,bytes32)"
    )
    assert revert_of(escrow, deployer.address) == selector(
        "ERC20InsufficientAllowance(address,uint256,uint256)"
    )
    cw3 = as_account(chain.url, client)
    send(cw3, chain.at(cw3, chain.token).functions.approve(custody.address, 5 * INDEX))
    held = chain.token.functions.balanceOf(client.address).call()
    receipt = send(w3, escrow)
    assert receipt["status"] == 1
    ev = chain.custody.events.IndexEscrowed().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (ev["escrowId"], ev["token"], ev["client"], ev["amount"]) == (
        escrow_id,
        chain.token.address,
        client.address,
        5 * INDEX,
    )
    assert chain.token.functions.balanceOf(client.address).call() == held - 5 * INDEX
    assert chain.token.functions.balanceOf(custody.address).call() >= 5 * INDEX
    # A resend after a restart (same escrow id) moves nothing, whatever it asks for.
    send(cw3, chain.at(cw3, chain.token).functions.approve(custody.address, INDEX))
    again = custody.functions.escrowIndex(chain.token.address, escrow_id, client.address, INDEX)
    assert revert_of(again, deployer.address) == selector("AlreadyEscrowed(bytes32)")


def test_escrow_burns_once_per_batch_then_returns_the_rest(
    chain: Deployed, deployer: LocalAccount, client: LocalAccount
) -> None:
    _minted_to(chain, deployer, client, 4 * INDEX)
    cw3 = as_account(chain.url, client)
    w3 = as_account(chain.url, deployer)
    custody = chain.at(w3, chain.custody)
    send(cw3, chain.at(cw3, chain.token).functions.approve(custody.address, 4 * INDEX))
    escrow_id = Web3.keccak(text="R2")
    send(
        w3, custody.functions.escrowIndex(chain.token.address, escrow_id, client.address, 4 * INDEX)
    )
    supply = chain.token.functions.totalSupply().call()
    held = chain.token.functions.balanceOf(client.address).call()
    b1, b2, terms = Web3.keccak(text="R2-B1"), Web3.keccak(text="R2-B2"), Web3.keccak(text="t")
    receipt = send(w3, custody.functions.burnEscrowed(escrow_id, b1, INDEX + 7, terms))
    assert receipt["status"] == 1
    ev = chain.custody.events.IndexEscrowBurned().process_receipt(receipt, errors=DISCARD)[0]
    assert (ev["args"]["escrowId"], ev["args"]["burnId"], ev["args"]["amount"]) == (
        escrow_id,
        b1,
        INDEX + 7,
    )
    assert chain.custody.functions.burnHashOf(b1).call() == terms
    assert chain.token.functions.totalSupply().call() == supply - INDEX - 7
    # The same batch's burn again is refused; a burn beyond what is escrowed too.
    again = custody.functions.burnEscrowed(escrow_id, b1, 1, terms)
    assert revert_of(again, deployer.address) == selector("AlreadyBurned(bytes32)")
    too_much = custody.functions.burnEscrowed(escrow_id, b2, 3 * INDEX, terms)
    assert revert_of(too_much, deployer.address) == selector(
        "EscrowExceeded(bytes32,uint256,uint256)"
    )
    empty = custody.functions.burnEscrowed(escrow_id, b2, 1, ZERO32)
    assert revert_of(empty, deployer.address) == selector("EmptyInvoiceHash()")
    # The unsold rest goes back to the client, once; then the escrow is closed.
    rest = 3 * INDEX - 7
    over = custody.functions.releaseIndex(escrow_id, rest + 1)
    assert revert_of(over, deployer.address) == selector("EscrowExceeded(bytes32,uint256,uint256)")
    receipt = send(w3, custody.functions.releaseIndex(escrow_id, rest))
    ev = chain.custody.events.IndexEscrowReleased().process_receipt(receipt, errors=DISCARD)[0]
    assert (ev["args"]["client"], ev["args"]["amount"]) == (client.address, rest)
    assert chain.token.functions.balanceOf(client.address).call() == held + rest
    closed = selector("EscrowClosed(bytes32)")
    assert revert_of(custody.functions.releaseIndex(escrow_id, 1), deployer.address) == closed
    assert revert_of(custody.functions.burnEscrowed(escrow_id, b2, 1, terms), deployer.address) == (
        closed
    )
    unknown = custody.functions.releaseIndex(Web3.keccak(text="R404"), 1)
    assert revert_of(unknown, deployer.address) == selector("UnknownEscrow(bytes32)")
