"""An external deployment file's `start_block` (app/external_chains.py, issue 11): where the
chain's followers and look-ups start; optional (0), refused with the setting's name when it is
not a block number, before any chain is reached."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from indexmaker.app.config import ChainConfig, ConfigError
from indexmaker.app.external_chains import load_external_chains


def _section(chain_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "custody": "0x" + "1" * 40,
        "usdc": "0x" + "2" * 40,
        "spoke_pool": "0x" + "3" * 40,
        "spoke_pool_contract": "OP_SpokePool" if chain_id == 8453 else "Arbitrum_SpokePool",
        "index_tokens": {"SY100": "0x" + "4" * 40},
        **extra,
    }


@pytest.mark.parametrize("start", [-1, "12", 1.5, True])
def test_a_start_block_that_is_not_a_block_number_is_refused(tmp_path: Path, start: Any) -> None:
    path = tmp_path / "deployment.json"
    chains = {"42161": _section(42161), "8453": _section(8453, start_block=start)}
    path.write_text(json.dumps({"chains": chains}))
    # The URLs are never reached: the deployment is read first.
    urls = {42161: ("http://127.0.0.1:9",), 8453: ("http://127.0.0.1:9",)}
    with pytest.raises(ConfigError, match=r"^chain\.deployment: chain 8453's start_block"):
        load_external_chains(ChainConfig("external", rpc_urls=urls, deployment=path), ["SY100"])
