"""Deployment to the local chains (SPEC §7): collateral token, custody, index tokens, Across pools.

Per chain: LocalUSDC (6 decimals), Custody (issuer = the deployer), and Across's spoke pool for
that chain (`Arbitrum_SpokePool` on 42161, `OP_SpokePool` on 8453, unchanged from npm) behind
Across's `ERC1967Proxy`, initialised in the proxy's deploying transaction. On the trading chain,
one IndexToken (18 decimals) per index, with ISSUER_ROLE granted to custody only.

CLI (`make deploy`, after `make chains` and `make contracts`):
    python -m indexmaker.chain.deploy [--run-dir .chains] [--out .chains/deployment.json]
The deployer key comes from INDEXMAKER_DEPLOYER_KEY, else anvil's public account 0 (local only;
the key is never printed). Exit status 2 when the chains are not running or an artifact is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.middleware import SignAndSendRawMiddlewareBuilder

from indexmaker.chain import artifacts
from indexmaker.chain.across import admin_relay_address
from indexmaker.chain.anvil import CHAINS, RUN_DIR

SOURCE_CHAIN_ID = 42161
TRADING_CHAIN_ID = 8453
SPOKE_POOL = {SOURCE_CHAIN_ID: "Arbitrum_SpokePool", TRADING_CHAIN_ID: "OP_SpokePool"}
# Across's production figures (SpokePool constructor): a deposit's quoteTimestamp may be up to an
# hour old; its fillDeadline at most 6 h ahead of the origin chain's block clock.
DEPOSIT_QUOTE_TIME_BUFFER_S = 3600
FILL_DEADLINE_BUFFER_S = 6 * 3600
# anvil's public account 0 (the "test … junk" mnemonic, as app/cli.py's ANVIL_TEST_KEYS[0]):
# known to everyone, so only ever a local-chain default.
ANVIL_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEPLOYER_KEY_ENV = "INDEXMAKER_DEPLOYER_KEY"
GAS_LIMIT = 15_000_000  # spoke pool creation is ~10M gas; anvil's block limit is 30M


class DeployError(RuntimeError):
    """A deployment transaction reverted or a chain is unreachable."""


def connect(url: str, signer: LocalAccount) -> Web3:
    """A web3 client for `url` whose transactions from `signer` are signed locally."""
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(signer), layer=0)
    w3.eth.default_account = signer.address
    return w3


def _receipt(w3: Web3, tx_hash: Any, what: str) -> Any:
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    if receipt["status"] != 1:
        raise DeployError(f"{what}: transaction {tx_hash.hex()} reverted")
    return receipt


def deploy_artifact(w3: Web3, artifact: dict[str, Any], *args: Any) -> Contract:
    """Deploy `artifact` with constructor `args`; return the bound contract."""
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx = factory.constructor(*args).transact({"gas": GAS_LIMIT})
    receipt = _receipt(w3, tx, f"deploy {artifact.get('contractName', '?')}")
    contract: Contract = w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])
    return contract


def transact(w3: Web3, call: Any, what: str, gas: int | None = None) -> Any:
    """Send a contract call from the default account; its receipt (DeployError if reverted)."""
    params: dict[str, Any] = {"gas": gas} if gas else {}
    return _receipt(w3, call.transact(params), what)


def deploy_spoke_pool(
    w3: Web3, chain_id: int, usdc: str, admin: str, weth: str, hub_pool: str
) -> tuple[Contract, str]:
    """Across's spoke pool for `chain_id` behind ERC1967Proxy, initialised in the proxy's creation.

    Returns (pool bound at the proxy address with the implementation's ABI, implementation
    address). CCTP, OFT and the gateway are off (zero addresses): USDC moves by relayer fills.
    """
    name = SPOKE_POOL[chain_id]
    impl_artifact = artifacts.across(name)
    zero = "0x" + "00" * 20
    if chain_id == SOURCE_CHAIN_ID:
        ctor: tuple[Any, ...] = (weth, DEPOSIT_QUOTE_TIME_BUFFER_S, FILL_DEADLINE_BUFFER_S, usdc)
        ctor += (zero, 0, 0, zero)  # cctp messenger, OFT destination eid and fee cap, gateway
        init_args: tuple[Any, ...] = (0, zero, admin, hub_pool)  # l2 gateway router unused
    else:
        ctor = (weth, DEPOSIT_QUOTE_TIME_BUFFER_S, FILL_DEADLINE_BUFFER_S, usdc, zero, zero)
        init_args = (0, admin, hub_pool)
    impl = deploy_artifact(w3, impl_artifact, *ctor)
    init_data = impl.encode_abi("initialize", args=list(init_args))
    proxy = deploy_artifact(w3, artifacts.across("ERC1967Proxy"), impl.address, init_data)
    pool = w3.eth.contract(address=proxy.address, abi=impl_artifact["abi"])
    return pool, impl.address


def install_admin_relay(w3: Web3, chain_id: int, admin: str) -> str:
    """Place AdminRelay(admin) (contracts/AdminRelay.sol) at the address `chain_id`'s spoke pool
    takes admin calls from (across.py `admin_relay_address`), with anvil_setCode: local chains
    only, as they run no L1 messenger. Returns that address; idempotent."""
    relay = deploy_artifact(w3, artifacts.ours("AdminRelay"), admin)
    code = w3.eth.get_code(relay.address)  # the runtime code, its immutable admin filled in
    target = admin_relay_address(chain_id, admin)
    w3.provider.make_request("anvil_setCode", [target, "0x" + bytes(code).hex()])  # type: ignore[arg-type]
    if w3.eth.get_code(target) != code:
        raise DeployError(f"chain {chain_id}: the admin relay is not at {target}")
    return target


def deploy_chain(w3: Web3, chain_id: int, indexes: list[str] | None = None) -> dict[str, Any]:
    """Deploy everything chain `chain_id` needs; returns its section of the deployment file.

    `indexes` (trading chain only): index symbols to create a token for.
    """
    deployer = w3.eth.default_account
    assert isinstance(deployer, str)
    if w3.eth.chain_id != chain_id:
        raise DeployError(f"chain {chain_id}: the node reports chain id {w3.eth.chain_id}")
    # No log of these contracts is older than the head before their deployment: where every
    # follower and look-up of this chain starts (issue 11; `first_block`).
    start_block = int(w3.eth.block_number)
    usdc = deploy_artifact(w3, artifacts.ours("LocalUSDC"), deployer)
    weth = deploy_artifact(w3, artifacts.across("WETH9"))
    custody = deploy_artifact(w3, artifacts.ours("Custody"), usdc.address, deployer, deployer)
    # The hub pool lives on L1, which the local set-up does not run: the deployer stands in as
    # the cross-domain admin (its calls relayed from the address the pool trusts) and the
    # withdrawal recipient.
    pool, impl = deploy_spoke_pool(w3, chain_id, usdc.address, deployer, weth.address, deployer)
    admin_relay = install_admin_relay(w3, chain_id, deployer)
    section: dict[str, Any] = {
        "chain_id": chain_id,
        "start_block": start_block,
        "usdc": usdc.address,
        "weth": weth.address,
        "custody": custody.address,
        "spoke_pool": pool.address,
        "spoke_pool_implementation": impl,
        "spoke_pool_contract": SPOKE_POOL[chain_id],
        "admin_relay": admin_relay,  # the pool's admin calls go through it (root_bundles.py)
        "index_tokens": {},
    }
    token_artifact = artifacts.ours("IndexToken")
    for symbol in indexes or []:
        token = deploy_artifact(w3, token_artifact, f"Index {symbol}", symbol, deployer)
        role = token.functions.ISSUER_ROLE().call()
        transact(w3, token.functions.grantRole(role, custody.address), f"{symbol}: issuer role")
        section["index_tokens"][symbol] = token.address
    return section


def first_block(section: Mapping[str, Any]) -> int:
    """The block a deployment section's logs start at (`start_block`; 0 for a section from
    before it was recorded)."""
    return int(section.get("start_block", 0))


def index_symbols() -> list[str]:
    """The bundled indexes' symbols (src/indexmaker/data/indexes/*.json), sorted."""
    data = Path(__file__).resolve().parents[1] / "data" / "indexes"
    return sorted(p.stem for p in data.glob("*.json"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m indexmaker.chain.deploy")
    parser.add_argument("--run-dir", type=Path, default=RUN_DIR)
    parser.add_argument("--out", type=Path, default=None, help="default: RUN_DIR/deployment.json")
    ns = parser.parse_args(argv)
    signer: LocalAccount = Account.from_key(os.environ.get(DEPLOYER_KEY_ENV) or ANVIL_KEY_0)
    out: dict[str, Any] = {"deployer": signer.address, "chains": {}}
    try:
        for name, (chain_id, _port) in CHAINS.items():
            state = ns.run_dir / f"{name}.json"
            if not state.is_file():
                raise DeployError(f"chain {name} is not running ({state} missing): make chains")
            url = json.loads(state.read_text())["url"]
            w3 = connect(url, signer)
            indexes = index_symbols() if chain_id == TRADING_CHAIN_ID else []
            section = deploy_chain(w3, chain_id, indexes)
            out["chains"][str(chain_id)] = {"name": name, "rpc_url": url, **section}
    except (DeployError, artifacts.ArtifactError, OSError) as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 2
    path = ns.out or ns.run_dir / "deployment.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    for cid, sec in out["chains"].items():
        print(
            f"chain {cid}: custody {sec['custody']}, USDC {sec['usdc']}, "
            f"spoke pool {sec['spoke_pool']} ({len(sec['index_tokens'])} index tokens)"
        )
    print(f"addresses written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
