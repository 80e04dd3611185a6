"""`serve` in `[chain] mode = "external"` (issue 11): the collateral path on chains somebody
else runs. Nothing is started or deployed: the chains are reached at `[chain] rpc_urls`
(per chain id, each with its `fallback_rpc_urls`: every RPC client fails over across them,
chain/failover.py) and the contracts are those of the `[chain] deployment` file (deploy.py's
shape: `{"deployer", "chains": {"42161": {"custody", "usdc", "spoke_pool", …}, …}}`).

Keys: the issuer is `INDEXMAKER_DEPLOYER_KEY` (custody's issuer; without it anvil's public
account 0, logged as a warning, as the server's own key is); our Across relayer runs only
with `INDEXMAKER_RELAYER_KEY` (else Across's relayers fill). The exchange simulator, when
it is the venue, takes its hot wallet key from its own environment variable, if set.

At start every chain must answer at one of its URLs with its own chain id (the first that
answers is the one the exchange simulator watches: it takes one URL; our RPC clients keep
the configured order and fail over), and custody must have code there; else
`chain.rpc_urls.<id>: reason` / `chain.deployment: reason`, exit 2. URLs are never logged
whole (a provider's URL often carries its key): the log shows scheme and host.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from indexmaker.app.chain_serve import ServeFn, serve_on_chains
from indexmaker.app.config import ChainConfig, ConfigError, ServiceConfig, check_private_key
from indexmaker.chain.deploy import ANVIL_KEY_0, DEPLOYER_KEY_ENV
from indexmaker.observability.logging import log_event, register_secret

RELAYER_KEY_ENV = "INDEXMAKER_RELAYER_KEY"
ADDRESS_FIELDS = ("custody", "usdc", "spoke_pool")  # and spoke_pool_contract: its artifact
PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ExternalChains:
    """The chains' deployment sections, RPC URLs (as configured, and the one that answered
    at start), our keys."""

    sections: dict[int, dict[str, Any]]
    rpc: dict[int, tuple[str, ...]]
    live: dict[int, str]
    issuer: LocalAccount
    relayer: LocalAccount | None = None
    ws: dict[int, str] = field(default_factory=dict)  # [chain] ws_urls

    def urls(self, chain_id: int) -> tuple[str, ...]:
        return self.rpc[chain_id]

    def ws_url(self, chain_id: int) -> str | None:
        return self.ws.get(chain_id)

    def live_url(self, chain_id: int) -> str:
        return self.live[chain_id]

    def shown_url(self, chain_id: int) -> str:
        return shown(self.live[chain_id])


def shown(url: str) -> str:
    """scheme://host[:port] of `url`: no credentials, path or query (where keys hide)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def _register_secrets(url: str) -> None:
    """Mask what may be a key in any log line that quotes the URL: its password, path and
    query (a provider's key sits in one of them); scheme, host and port stay readable."""
    parts = urlsplit(url)
    for secret in (parts.password, parts.path.strip("/"), parts.query):
        if secret:
            register_secret(secret)


def load_external_chains(chain: ChainConfig, indexes: list[str]) -> ExternalChains:
    """Read the deployment, pick each chain's answering URL, check custody is there.
    Raises ConfigError naming the setting (`chain.deployment`, `chain.rpc_urls.<id>`) or the
    key's variable."""
    for urls in (*chain.rpc_urls.values(), tuple(chain.ws_urls.values())):
        for url in urls:
            _register_secrets(url)
    sections = _deployment(chain.deployment, indexes)
    issuer = _key(DEPLOYER_KEY_ENV)
    if issuer is None:
        log_event(
            "chain_issuer_key",
            logging.WARNING,
            note=f"using anvil's public account 0 as the issuer; set {DEPLOYER_KEY_ENV}",
        )
        issuer = Account.from_key(ANVIL_KEY_0)
    live: dict[int, str] = {}
    for chain_id, urls in sorted(chain.rpc_urls.items()):
        w3, live[chain_id] = _answering(chain_id, urls)
        custody = Web3.to_checksum_address(sections[chain_id]["custody"])
        if not w3.eth.get_code(custody):
            raise ConfigError(
                f"chain.deployment: no contract at custody {custody} on chain {chain_id}"
            )
    rpc = dict(chain.rpc_urls)
    ws = dict(chain.ws_urls)
    return ExternalChains(sections, rpc, live, issuer, _key(RELAYER_KEY_ENV), ws)


def _deployment(path: Path | None, indexes: list[str]) -> dict[int, dict[str, Any]]:
    if path is None:
        raise ConfigError('chain.deployment: mode "external" needs the deployed-addresses file')
    try:
        data = json.loads(path.read_text())
        chains = data["chains"]
    except OSError as error:
        raise ConfigError(f"chain.deployment: cannot read {path} ({error.strerror})") from None
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"chain.deployment: {path} is not a deployment ({error})") from None
    sections: dict[int, dict[str, Any]] = {}
    from indexmaker.chain.deploy import SOURCE_CHAIN_ID, TRADING_CHAIN_ID

    for chain_id in (SOURCE_CHAIN_ID, TRADING_CHAIN_ID):
        section = chains.get(str(chain_id)) if isinstance(chains, dict) else None
        if not isinstance(section, dict):
            raise ConfigError(f"chain.deployment: {path} has no chain {chain_id}")
        for name in ADDRESS_FIELDS:
            value = section.get(name)
            if not isinstance(value, str) or not Web3.is_address(value):
                raise ConfigError(f"chain.deployment: chain {chain_id}'s {name} is not an address")
        start = section.get("start_block", 0)
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ConfigError(
                f"chain.deployment: chain {chain_id}'s start_block (the block its logs start "
                f"at) is not a block number: {start!r}"
            )
        if not isinstance(section.get("spoke_pool_contract"), str):
            raise ConfigError(
                f"chain.deployment: chain {chain_id}'s spoke_pool_contract (Across's artifact "
                "name) is missing"
            )
        sections[chain_id] = dict(section)
    tokens = sections[TRADING_CHAIN_ID].get("index_tokens")
    missing = [i for i in indexes if not isinstance(tokens, dict) or i not in tokens]
    if missing:
        raise ConfigError(
            f"chain.deployment: no index token for {', '.join(missing)} on chain {TRADING_CHAIN_ID}"
        )
    return sections


def _key(variable: str) -> LocalAccount | None:
    text = os.environ.get(variable)
    if text is None:
        return None
    account: LocalAccount = Account.from_key(check_private_key(text.strip(), variable))
    return account


def _answering(chain_id: int, urls: tuple[str, ...]) -> tuple[Web3, str]:
    """The first URL that answers (a client on it, and it); ConfigError when one answers
    another chain id or none answers."""
    where = f"chain.rpc_urls.{chain_id}"
    for url in urls:
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": PROBE_TIMEOUT_S}))
        try:
            answered = int(w3.eth.chain_id)
        except Exception:  # unreachable, refused, not JSON-RPC: the next URL
            log_event("chain_rpc_unreachable", logging.WARNING, chain_id=chain_id, rpc=shown(url))
            continue
        if answered != chain_id:
            raise ConfigError(f"{where}: {shown(url)} answers chain id {answered}")
        return w3, url
    raise ConfigError(f"{where}: no URL answered ({len(urls)} tried, fallbacks included)")


async def serve_on_external_chains(config: ServiceConfig, serve_until_signal: ServeFn) -> None:
    """`serve` on the external chains of `config.chain`. On SQLite the journal is kept in
    `<data_dir>/external/` (a journal describes the chains it was written on; the store also
    records their genesis hashes and refuses others: chain_durability.check_identity)."""
    chains = await asyncio.to_thread(load_external_chains, config.chain, list(config.indexes))
    store = config.store
    if store.data_dir is not None:
        store = replace(store, data_dir=store.data_dir / "external")
    if chains.relayer is None:
        log_event("chain_relayer", note=f"none of ours ({RELAYER_KEY_ENV} unset)")
    kept = replace(config, store=store)
    await serve_on_chains(kept, chains, serve_until_signal, None, event="external_chain")
