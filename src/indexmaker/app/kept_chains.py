"""`serve`'s local chains kept across restarts (issue 11): in `[chain] state_dir`
(default `<data_dir>/anvil/`).

- `chain-42161.json`, `chain-8453.json`: each anvil's `--state` file (written by anvil every
  few seconds and when it stops on SIGTERM, loaded when it starts), so blocks, contracts and
  balances outlive serve.
- `peers.json`, `exchange-sim.log`: the running chains and simulator, adopted by a serve
  restarted after a crash (app/local_peers.py).
- `deployment.json`: deploy.py's shape (`{"deployer", "chains": {id: {"name", "rpc_url",
  ...section}}}`), written after a fresh deployment and rewritten on every start with the
  new RPC URLs (the ports are free ones), so `indexmaker deposit --deployment FILE` reaches
  the running chains. When it and both state files exist, the chains are loaded, not
  deployed again: same contracts, same block numbers.
- On SQLite the service's journal (with the chain cursors and pending transactions,
  app/chain_durability.py) lives in the same directory: a journal always describes the chains
  beside it, never a fresh pair or the in-process simulated chain of `--chain sim` (whose
  journal is `<data_dir>`). On PostgreSQL the journal is in the database, which records the
  chains' genesis hashes and refuses other chains (chain_durability.check_identity).

A chain whose node is gone and whose state file is missing (a machine restart before the
node's first state dump) makes a fresh deployment: the old journal then names deposits the
new chains never saw; remove the directory to start clean (`docs/decisions.md`, "serve keeps
its local chains").
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account

from indexmaker.app.chain_wiring import LocalChains, start_local_chains
from indexmaker.app.config import ConfigError
from indexmaker.app.local_peers import (
    AnvilStarter,
    adoptable,
    anvil_record,
    read_peers,
    write_peers,
)
from indexmaker.chain import anvil
from indexmaker.chain.anvil import CHAINS
from indexmaker.chain.deploy import TRADING_CHAIN_ID

DEPLOYMENT = "deployment.json"
NAMES = {chain_id: name for name, (chain_id, _port) in CHAINS.items()}


def state_files(directory: Path) -> dict[int, Path]:
    """Each chain's anvil `--state` file, by chain id."""
    return {chain_id: directory / f"chain-{chain_id}.json" for chain_id in NAMES}


def start_kept_chains(
    indexes: list[str], directory: Path, float_usdc: Decimal = Decimal(10_000_000)
) -> tuple[LocalChains, bool]:
    """(chains, resumed): the chains of `directory` loaded if it holds a deployment and both
    states, else started fresh there and deployed. Raises ConfigError when the kept deployment
    lacks an index of `indexes` or was made by another issuer (`chain.state_dir: reason`), and what
    start_local_chains raises."""
    directory.mkdir(parents=True, exist_ok=True)
    states = state_files(directory)
    record = read_peers(directory)
    starter = AnvilStarter(adoptable(record))  # nodes a killed serve left running
    kept = all(p.is_file() or cid in starter.live for cid, p in states.items())
    deployed = _load(directory / DEPLOYMENT) if kept else None
    if deployed is None:
        for node in starter.live.values():
            anvil.stop(node.pid)  # ours, but its deployment is lost: start afresh
        starter.live.clear()
        for path in states.values():
            path.unlink(missing_ok=True)  # never load a state without its addresses
    chains = start_local_chains(indexes, float_usdc, states, deployed, starter)
    try:
        if deployed is not None:
            _check(chains, indexes, directory)
        write_deployment(chains, directory / DEPLOYMENT)
        write_peers(directory, {**record, "anvil": anvil_record(chains.nodes)})
    except BaseException:
        chains.stop()
        raise
    return chains, deployed is not None


def write_deployment(chains: LocalChains, path: Path) -> None:
    """deploy.py's deployment file for `chains` (their current RPC URLs)."""
    out: dict[str, Any] = {"deployer": chains.issuer.address, "chains": {}}
    for chain_id, section in sorted(chains.sections.items()):
        out["chains"][str(chain_id)] = {
            **section,
            "name": NAMES[chain_id],
            "rpc_url": chains.url(chain_id),
        }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    tmp.replace(path)  # never a half-written file beside a good state


def _load(path: Path) -> dict[int, dict[str, Any]] | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return {int(cid): section for cid, section in data["chains"].items()}


def _check(chains: LocalChains, indexes: list[str], directory: Path) -> None:
    tokens = chains.sections[TRADING_CHAIN_ID]["index_tokens"]
    missing = sorted(set(indexes) - set(tokens))
    if missing:
        raise ConfigError(
            f"chain.state_dir: the chains kept in {directory} have no index token for "
            f"{', '.join(missing)}; remove that directory to deploy them afresh"
        )
    written = json.loads((directory / DEPLOYMENT).read_text())["deployer"]
    if written != chains.issuer.address:
        raise ConfigError(
            f"chain.state_dir: the chains kept in {directory} were deployed by {written}, not by "
            f"this issuer {chains.issuer.address}; remove that directory to deploy afresh"
        )


# anvil's public accounts 2-8 ("test … junk" mnemonic): the local clients. 0 is the issuer,
# 1 our relayer and 9 the exchange's hot wallet, each floated by start_local_chains.
CLIENT_ACCOUNTS = range(2, 9)
CLIENT_FLOAT = Decimal(1_000_000)


def fund_clients(chains: LocalChains, amount: Decimal = CLIENT_FLOAT) -> None:
    """`amount` local USDC to each of anvil's public client accounts on both chains, so
    `indexmaker deposit ADDRESS AMOUNT` works from their keys at once (test funds)."""
    from indexmaker.app.cli_client import ANVIL_TEST_KEYS

    for index in CLIENT_ACCOUNTS:
        address = Account.from_key(ANVIL_TEST_KEYS[index]).address
        for chain_id in sorted(chains.sections):
            chains.mint_usdc(chain_id, address, amount)
