"""The settings file's `[chain]` section (issue 11; app/settings.py): how `serve` reaches the
collateral path's chains."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, model_validator

from indexmaker.app.settings_types import CHAIN_IDS, Amount, RpcUrl, WsUrl
from indexmaker.app.settings_types import DAY as _DAY
from indexmaker.app.settings_types import SettingsModel as _Model
from indexmaker.app.settings_types import decimal_field as _dec

FILL_DEADLINE_BUFFER_S = 6 * 3600  # the spoke pool's limit (chain/deploy.py's; web3-free here)


class ChainSectionSettings(_Model):
    """The collateral path's chains (issue 11; app/chain_wiring.py). `anvil` (the default):
    two local chains (42161, 8453) started by our scripts and deployed, kept in `state_dir`
    across restarts (app/kept_chains.py), the exchange simulator watching 8453 as the venue,
    our Across relayer; all stopped by PID when `serve` ends. `external`: chains somebody else
    runs, at `rpc_urls` (per chain id, each with its `fallback_rpc_urls`) with the contracts of
    the `deployment` file (app/external_chains.py); nothing is started. `sim`: the in-process
    simulated chain and bridges. Deposits count after `confirmations` blocks; gas is charged
    at the venue's ETHUSDC mid, `eth_usdc` only when it has none."""

    mode: Literal["sim", "anvil", "external"] = "anvil"
    confirmations: Annotated[int, Field(ge=0, le=1_000)] = 0
    eth_usdc: Amount = Decimal(3000)
    bridge_fee: Annotated[Decimal, _dec(ge=0, le=1_000)] = Decimal("0.10")
    relayer_delay: Annotated[Decimal, _dec(ge=0, le=3_600)] = Decimal("0.5")
    hop_timeout: Annotated[Decimal, _dec(ge=1, le=_DAY)] = Decimal(120)
    # An Across deposit's fill deadline (s after the later of both chains' clocks): the hop
    # waits this long for a fill before the deposit is refunded and made again (chain/bridge.py);
    # at most the spoke pool's fillDeadlineBuffer (6 h).
    fill_deadline: Annotated[int, Field(ge=10, le=FILL_DEADLINE_BUFFER_S)] = 3600
    # Blocks per eth_getLogs when a hop looks up its deposit, fill or refund (chain/logs.py:
    # from a lower bound such as the lot's deposit block, never a fixed window; providers cap
    # a query's range, often at 10,000 blocks).
    log_chunk_blocks: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    # anvil: where the chains' state and deployment are kept (default <store.data_dir>/anvil;
    # required when the store is PostgreSQL). Relative paths from the working directory.
    state_dir: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    # external: JSON-RPC URLs (http or https) by chain id, e.g. { 8453 = "http://…" }, and
    # other nodes of the same chain tried in order when one cannot be reached.
    rpc_urls: Annotated[dict[str, RpcUrl], Field(max_length=len(CHAIN_IDS))] = Field(
        default_factory=dict
    )
    fallback_rpc_urls: Annotated[
        dict[str, Annotated[list[RpcUrl], Field(max_length=16)]],
        Field(max_length=len(CHAIN_IDS)),
    ] = Field(default_factory=dict)
    # external: WebSocket URLs by chain id (optional) for new-head subscriptions that wake the
    # deposit follower at once; polling carries on beside them and after a drop.
    ws_urls: Annotated[dict[str, WsUrl], Field(max_length=len(CHAIN_IDS))] = Field(
        default_factory=dict
    )
    # external: the deployed addresses (deploy.py's file: `make deploy`'s .chains/deployment.json)
    deployment: Annotated[str, Field(min_length=1, max_length=4096)] | None = None

    @model_validator(mode="after")
    def _timings(self) -> ChainSectionSettings:
        # Our relayer fills a deposit `relayer_delay` after seeing it, and the fill must reach
        # a block before the deadline: a deadline within that delay expires every deposit.
        if self.mode == "anvil" and self.fill_deadline <= self.relayer_delay + 1:
            raise ValueError(
                f"fill_deadline: {self.fill_deadline}s leaves our relayer no time to fill "
                f"(relayer_delay {self.relayer_delay}s and a block): every deposit would "
                "expire unfilled"
            )
        return self

    @model_validator(mode="after")
    def _external(self) -> ChainSectionSettings:
        for name in ("rpc_urls", "fallback_rpc_urls", "ws_urls"):
            for key in getattr(self, name):
                if key not in CHAIN_IDS:
                    raise ValueError(
                        f"{name}.{key}: not a chain of the path (chain ids {', '.join(CHAIN_IDS)})"
                    )
        if self.mode != "external":
            for name in ("rpc_urls", "fallback_rpc_urls", "ws_urls", "deployment"):
                if getattr(self, name):
                    raise ValueError(f'{name}: only for mode "external" (mode is {self.mode!r})')
            return self
        missing = [key for key in CHAIN_IDS if key not in self.rpc_urls]
        if missing:
            raise ValueError(
                f'rpc_urls: mode "external" needs the URL of chain {", ".join(missing)} '
                '(e.g. rpc_urls = { 42161 = "http://127.0.0.1:8545", 8453 = "http://…" })'
            )
        for key, urls in self.fallback_rpc_urls.items():
            if self.rpc_urls[key] in urls:
                raise ValueError(f"fallback_rpc_urls.{key}: repeats rpc_urls.{key}")
        if self.deployment is None:
            raise ValueError('deployment: mode "external" needs the deployed-addresses file')
        if self.state_dir is not None:
            raise ValueError('state_dir: only for mode "anvil" (external chains keep their own)')
        return self
