"""`indexmaker serve` in `[chain] mode = "external"` (app/external_chains.py): no anvil of its
own; the chains are two anvils this test started (stopped by PID), reached at `rpc_urls`
whose first URL is dead, with `fallback_rpc_urls` naming the live node, and the contracts of
a deployment file. A deposit on 8453 is observed and an order is minted on chain: every RPC
client of the path failed over to the live node."""

from __future__ import annotations

import re
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from indexmaker.app.chain_wiring import start_local_chains
from indexmaker.app.config import ChainConfig, ConfigError
from indexmaker.app.external_chains import load_external_chains
from indexmaker.app.kept_chains import write_deployment
from indexmaker.chain import artifacts
from indexmaker.chain.anvil import free_port
from indexmaker.core.money import units_to_index

from ..venues.test_serve_binance import INDEXMAKER
from .test_serve_kept_chains import CLIENT, Serve

INDEX = "SYL2"
ACCOUNT_3 = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"  # CLIENT's


@pytest.mark.slow
def test_serve_on_external_chains_fails_over_from_a_dead_first_url(
    compiled: None, tmp_path: Path
) -> None:
    chains = start_local_chains([INDEX], Decimal(1_000_000))
    try:
        deployment = tmp_path / "deployment.json"
        write_deployment(chains, deployment)
        dead = {chain_id: f"http://127.0.0.1:{free_port()}" for chain_id in chains.nodes}
        settings = tmp_path / "external.toml"
        settings.write_text(
            f'indexes = ["{INDEX}"]\n'
            "[solver]\nmint_idle = 0.3\n"
            '[chain]\nmode = "external"\n'
            f'rpc_urls = {{ 42161 = "{dead[42161]}", 8453 = "{dead[8453]}" }}\n'
            f'fallback_rpc_urls = {{ 42161 = ["{chains.url(42161)}"], '
            f'8453 = ["{chains.url(8453)}"] }}\n'
            f'deployment = "{deployment}"\n'
        )
        served = Serve(tmp_path / "data", settings)
        try:
            shown = {c["chain_id"]: c["rpc"] for c in served.event("external_chain")}
            assert shown == {i: chains.url(i) for i in (42161, 8453)}  # the live node's
            assert not served.event("local_chains_kept")
            unreachable = {e["chain_id"] for e in served.event("chain_rpc_unreachable")}
            assert unreachable == {42161, 8453}
            command = [INDEXMAKER, "deposit", CLIENT, "100", "--chain", "8453", "--fund"]
            result = subprocess.run(
                [*command, "--deployment", str(deployment)],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 0, result.stdout + result.stderr
            served.deposited(Decimal(100))
            buy = [INDEXMAKER, "order", INDEX, "buy", "50", "--chain-id", "8453", "--wait"]
            order = subprocess.run(
                [*buy, "--url", served.url(), "--wait-timeout", "60"],
                capture_output=True,
                text=True,
                timeout=90,
                env={"INDEXMAKER_KEY": ACCOUNT_3, "PATH": "/usr/bin:/bin"},
            )
            assert order.returncode == 0, order.stdout + order.stderr
            assert "minted" in order.stdout
            filled = Decimal(re.findall(r"minted ([0-9.]+) " + INDEX, order.stdout)[0])
            assert filled > 0
            assert _index_balance(chains.url(8453), chains.sections[8453], CLIENT) == filled
        finally:
            served.stop()
        # Start-up refusals (exit 2 in serve): a URL of another chain, no URL answering.
        swapped = {42161: (chains.url(8453),), 8453: (chains.url(8453),)}
        with pytest.raises(
            ConfigError,
            match=r"^chain\.rpc_urls\.42161: http://127\.0\.0\.1:\d+ answers chain id 8453$",
        ):
            load_external_chains(
                ChainConfig("external", rpc_urls=swapped, deployment=deployment), [INDEX]
            )
        silent = {42161: (dead[42161],), 8453: (chains.url(8453),)}
        with pytest.raises(
            ConfigError, match=r"^chain\.rpc_urls\.42161: no URL answered \(1 tried"
        ):
            load_external_chains(
                ChainConfig("external", rpc_urls=silent, deployment=deployment), [INDEX]
            )
        with pytest.raises(
            ConfigError, match=r"^chain\.deployment: no index token for SY100 on chain 8453"
        ):
            load_external_chains(
                ChainConfig("external", rpc_urls=silent, deployment=deployment), ["SY100"]
            )
    finally:
        chains.stop()


def _index_balance(rpc_url: str, section: dict[str, Any], holder: str) -> Decimal:
    """`holder`'s index tokens on chain 8453, read from the chain itself."""
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    token = w3.eth.contract(
        address=Web3.to_checksum_address(section["index_tokens"][INDEX]),
        abi=artifacts.ours("IndexToken")["abi"],
    )
    return units_to_index(int(token.functions.balanceOf(holder).call()))
