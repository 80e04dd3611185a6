"""Fixtures for tests against real anvil nodes (npm @foundry-rs/anvil) on loopback.

Each test module starts its own nodes on free ports and stops them by PID at the end; the
contracts are compiled once per session with solc-js when the artifacts are stale.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import AsyncHTTPProvider, AsyncWeb3, Web3

from indexmaker.app.chain_wiring import ChainPathSettings, LocalChains, start_local_chains
from indexmaker.chain import anvil, artifacts
from indexmaker.chain.deploy import ANVIL_KEY_0, SOURCE_CHAIN_ID, TRADING_CHAIN_ID, connect
from indexmaker.chain.root_bundles import RootBundles
from indexmaker.chain.tx import TxSender
from indexmaker.model.index import load_bundled_index

from .path_harness import CLIENT_KEYS, FAST, INDEX, Running

# anvil's public accounts 1-3 (the "test … junk" mnemonic): relayer, client, stranger.
ANVIL_KEY_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
ANVIL_KEY_2 = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
ANVIL_KEY_3 = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"


@pytest.fixture(scope="session")
def compiled() -> None:
    if artifacts.stale():
        artifacts.compile_contracts()


@pytest.fixture(scope="module")
def start_node(compiled: None) -> Iterator[Any]:
    """start_node(chain_id) -> AnvilNode; every node started is stopped by PID at module end."""
    pids: list[int] = []

    def _start(chain_id: int) -> anvil.AnvilNode:
        node = anvil.start(chain_id)
        pids.append(node.pid)
        return node

    yield _start
    for pid in pids:
        anvil.stop(pid)


@pytest.fixture(scope="module")
def deployer() -> LocalAccount:
    return Account.from_key(ANVIL_KEY_0)


@pytest.fixture(scope="module")
def relayer() -> LocalAccount:
    return Account.from_key(ANVIL_KEY_1)


@pytest.fixture(scope="module")
def client() -> LocalAccount:
    return Account.from_key(ANVIL_KEY_2)


@pytest.fixture(scope="module")
def stranger() -> LocalAccount:
    return Account.from_key(ANVIL_KEY_3)


def as_account(url: str, account: LocalAccount) -> Web3:
    """A web3 client on `url` that signs as `account`."""
    return connect(url, account)


def selector(signature: str) -> str:
    """The 4-byte selector of a custom error, e.g. "AlreadyMinted(bytes32)", as 0x-hex."""
    return "0x" + Web3.keccak(text=signature)[:4].hex()


def revert_of(call: Any, sender: str) -> str:
    """Simulate `call` from `sender` (eth_call); return the revert's 4-byte selector as 0x-hex.

    Fails the test when the call does not revert.
    """
    from web3.exceptions import ContractLogicError

    try:
        call.call({"from": sender})
    except ContractLogicError as exc:
        data = exc.data if isinstance(exc.data, str) else ""
        return data[:10]
    raise AssertionError("the call did not revert")


def root_bundles(
    url: str, section: dict[str, Any], admin: LocalAccount, chunk_blocks: int = 10_000
) -> RootBundles:
    """The refund bundles of the pool in `section` (deploy.py's), posted by `admin` with a
    sender of its own (as Web3ChainPort.send: (to, call) -> receipt); log searches read
    `chunk_blocks` per eth_getLogs."""
    w3: AsyncWeb3[Any] = AsyncWeb3(AsyncHTTPProvider(url))
    tx = TxSender(w3, admin)

    async def send_call(to: str, call: Any) -> Any:
        return await tx.send({"to": to, "data": call._encode_transaction_data()})

    pool, name = section["spoke_pool"], section["spoke_pool_contract"]
    chain_id = int(section["chain_id"])
    return RootBundles(
        w3, chain_id, pool, name, admin.address, send_call, chunk_blocks=chunk_blocks
    )


def send(w3: Web3, call: Any, gas: int = 1_000_000) -> Any:
    """Send `call` from w3's default account; return the receipt (status checked by the caller)."""
    return w3.eth.wait_for_transaction_receipt(call.transact({"gas": gas}), timeout=30)


# ---------------------------------------------------------------- the collateral path
# Module-scoped: each module gets its own pair of chains (custody refuses a payment id twice,
# and each module's service numbers its payments from P1).


@pytest.fixture(scope="module")
def chains(compiled: None) -> Iterator[LocalChains]:
    local = start_local_chains([INDEX], float_usdc=Decimal(1_000_000))
    try:
        for key in CLIENT_KEYS:
            for chain_id in (SOURCE_CHAIN_ID, TRADING_CHAIN_ID):
                local.mint_usdc(chain_id, Account.from_key(key).address, Decimal(5_000))
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="module")
def pairs() -> list[str]:
    return sorted(a.instrument.pair for a in load_bundled_index(INDEX).assets)


@pytest.fixture
async def running(chains: LocalChains, pairs: list[str]) -> AsyncIterator[Callable[..., Running]]:
    made: list[Running] = []

    def make(data_dir: Path | None = None, settings: ChainPathSettings = FAST) -> Running:
        made.append(Running(chains, pairs, data_dir, settings))
        return made[-1]

    yield make
    for r in made:
        await r.stop()
