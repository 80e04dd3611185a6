"""The settings file's typed models (pydantic): every value's type and range in one place.

`indexmaker serve --config FILE` reads TOML with floats parsed as Decimal (exact: `0.1` is
one tenth, never a binary float), then validates it here. Models are strict: a boolean where
a number is due, a list where a string is due, an unknown key, "NaN", inf, 1e300 or a value
out of range is refused. Decimals may be written as strings ("0.01") or numbers (0.01);
durations are seconds. config.py turns the validated models into the runtime dataclasses.
Why pydantic and not msgspec: docs/decisions.md ("Settings: typed pydantic models").
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from indexmaker.model.index import BUNDLED_INDEXES, load_bundled_index
from indexmaker.server.wire_values import (
    CANCEL_INDEX_ORDER,
    CANCEL_QUOTE_REQUEST,
    CHALLENGE_REQUEST,
    NEW_INDEX_ORDER,
    NEW_QUOTE_REQUEST,
    RESEND_REQUEST,
)

_WEIGHED = (
    NEW_INDEX_ORDER,
    CANCEL_INDEX_ORDER,
    NEW_QUOTE_REQUEST,
    CANCEL_QUOTE_REQUEST,
    RESEND_REQUEST,
    CHALLENGE_REQUEST,
)
_MAX_AMOUNT = Decimal("1e12")  # USDC; far above any real volley, far below what overflows
_DAY = 86_400
_WEEK = 7 * _DAY


def _dec(
    *,
    gt: int | str | None = None,
    ge: int | str | None = None,
    lt: int | str | None = None,
    le: int | str | Decimal | None = None,
) -> Any:
    """A finite Decimal field (strings, integers and TOML floats accepted; not booleans)."""

    def bound(value: int | str | Decimal | None) -> Decimal | None:
        return None if value is None else Decimal(value)

    return Field(
        strict=False, allow_inf_nan=False, gt=bound(gt), ge=bound(ge), lt=bound(lt), le=bound(le)
    )


Amount = Annotated[Decimal, _dec(gt=0, le=_MAX_AMOUNT)]
AmountOrZero = Annotated[Decimal, _dec(ge=0, le=_MAX_AMOUNT)]
Rate = Annotated[Decimal, _dec(gt=0, le=1)]
# Durations in seconds; at least a millisecond where zero would mean a busy loop.
Seconds = Annotated[Decimal, _dec(ge=0, le=_WEEK)]
PositiveSeconds = Annotated[Decimal, _dec(ge="0.001", le=_WEEK)]
Count = Annotated[int, Field(ge=1, le=10_000_000)]
UrlPath = Annotated[str, Field(pattern=r"^/[A-Za-z0-9._~/-]*$", max_length=200)]
ChainId = Annotated[int, Field(ge=1, le=2**32 - 1)]
_RPC_URL = re.compile(r"https?://[A-Za-z0-9.\[\]:_-]+(/[^\s\"'<>]*)?")


def _rpc_url(value: str) -> str:
    if not _RPC_URL.fullmatch(value):
        # Not echoed: a provider's URL often carries its API key.
        raise ValueError("expected an http:// or https:// JSON-RPC URL (host, optional path)")
    return value


# A JSON-RPC endpoint: http(s)://host[:port][/path] (web3's HTTP provider; no WebSocket).
RpcUrl = Annotated[str, Field(max_length=2048), AfterValidator(_rpc_url)]
CHAIN_IDS = ("42161", "8453")  # the path's source and trading chains (TOML keys are strings)


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class ReturnHopSettings(_Model):
    """A redemption of a client of `chain_id` is paid there: its proceeds cross `bridge` from
    the trading chain to `designation` first (issue 12)."""

    chain_id: Annotated[int, Field(gt=0, lt=2**32)]
    bridge: Annotated[str, Field(min_length=1, max_length=64)]
    designation: Annotated[str, Field(min_length=1, max_length=64)]


class RateLimitSettings(_Model):
    """One sliding window: at most `limit` weight inside any `interval` seconds."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    limit: Count
    interval: Annotated[Decimal, _dec(ge="0.001", le=_WEEK)]


def _unique_names(limits: list[RateLimitSettings], field: str) -> None:
    names = [limit.name for limit in limits]
    if len(set(names)) != len(names):
        raise ValueError(f"{field}: window names must be unique, got {names}")


class UnauthenticatedSettings(_Model):
    """What traffic nobody authenticated may cost (server/guard.py): per source address,
    all of it together (below the global windows), and strikes per session."""

    source_limits: list[RateLimitSettings] = Field(
        default_factory=lambda: [
            RateLimitSettings(name="source_10s", limit=500, interval=Decimal(10)),
            RateLimitSettings(name="source_1m", limit=10_000, interval=Decimal(60)),
        ]
    )
    anonymous_limits: list[RateLimitSettings] = Field(
        default_factory=lambda: [
            RateLimitSettings(name="anonymous_10s", limit=1_000, interval=Decimal(10)),
            RateLimitSettings(name="anonymous_1m", limit=50_000, interval=Decimal(60)),
        ]
    )
    strike_limit: RateLimitSettings = Field(
        default_factory=lambda: RateLimitSettings(
            name="strikes_10s", limit=20, interval=Decimal(10)
        )
    )
    strike_out_limit: RateLimitSettings = Field(
        default_factory=lambda: RateLimitSettings(
            name="strike_outs_1m", limit=3, interval=Decimal(60)
        )
    )
    unreadable_weight: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    max_tracked_sources: Count = 10_000

    @model_validator(mode="after")
    def _names(self) -> UnauthenticatedSettings:
        _unique_names(self.source_limits, "source_limits")
        _unique_names(self.anonymous_limits, "anonymous_limits")
        return self


def _unauthenticated() -> UnauthenticatedSettings:
    return UnauthenticatedSettings()


class SessionSettings(_Model):
    """FIX session limits (SPEC §5): per session, per client and global windows."""

    timestamp_window: PositiveSeconds = Decimal(60)
    max_sessions_per_client: Count = 8
    session_limits: list[RateLimitSettings] = Field(
        default_factory=lambda: [
            RateLimitSettings(name="session_10s", limit=100, interval=Decimal(10)),
            RateLimitSettings(name="session_1m", limit=2_000, interval=Decimal(60)),
        ]
    )
    client_limits: list[RateLimitSettings] = Field(
        default_factory=lambda: [
            RateLimitSettings(name="client_10s", limit=200, interval=Decimal(10)),
            RateLimitSettings(name="client_1m", limit=10_000, interval=Decimal(60)),
            RateLimitSettings(name="client_1d", limit=100_000, interval=Decimal(_DAY)),
        ]
    )
    global_limits: list[RateLimitSettings] = Field(
        default_factory=lambda: [
            RateLimitSettings(name="global_10s", limit=2_000, interval=Decimal(10)),
            RateLimitSettings(name="global_1m", limit=100_000, interval=Decimal(60)),
        ]
    )
    weights: dict[str, Annotated[int, Field(ge=0, le=1_000_000)]] = Field(
        default_factory=lambda: {
            NEW_INDEX_ORDER: 10,
            CANCEL_INDEX_ORDER: 5,
            NEW_QUOTE_REQUEST: 5,
            CANCEL_QUOTE_REQUEST: 3,
            RESEND_REQUEST: 1,
            CHALLENGE_REQUEST: 1,
        }
    )
    outbox_capacity: Count = 1_000
    outbox_retention: PositiveSeconds = Decimal(_DAY)
    outbox_total: Count = 100_000
    max_tracked_clients: Count = 100_000
    # One-use signatures (SPEC §5 Replay): signing keys remembered, and per key its spent
    # ids and signature r values (for the nonce-reuse check); oldest out first.
    max_signing_keys: Count = 100_000
    max_spent_ids_per_key: Count = 10_000
    max_r_per_key: Count = 1_000
    unauthenticated: UnauthenticatedSettings = Field(default_factory=lambda: _unauthenticated())

    @model_validator(mode="after")
    def _names(self) -> SessionSettings:
        unknown = sorted(set(self.weights) - set(_WEIGHED))
        if unknown:
            raise ValueError(f"weights: unknown message types {unknown}; known: {list(_WEIGHED)}")
        _unique_names(self.session_limits, "session_limits")
        _unique_names(self.client_limits, "client_limits")
        _unique_names(self.global_limits, "global_limits")
        return self


class AntiBotSettings(_Model):
    """New orders need `min_balance` of `token` ("usdc": the chain's collateral token, or
    "native": ETH) on the client's chain (server/balance_gate.py); balances cached for `ttl`
    seconds. Off by default: the in-process simulated chain has no wallets to read."""

    enabled: bool = False
    token: Literal["usdc", "native"] = "usdc"
    min_balance: AmountOrZero = Decimal(1)
    ttl: PositiveSeconds = Decimal(30)
    failure_ttl: PositiveSeconds = Decimal(1)  # a failed read refuses for this long
    max_entries: Count = 100_000  # addresses cached (least recently used out first)


class ServerSettings(_Model):
    host: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:_-]+$")] = (
        "127.0.0.1"
    )
    port: Annotated[int, Field(ge=0, le=65535)] = 3000  # 0: any free port
    path: UrlPath = "/ws"
    quote_path: UrlPath | None = None
    order_path: UrlPath | None = None
    max_frame_bytes: Annotated[int, Field(ge=512, le=16 * 1024 * 1024)] = 16 * 1024
    heartbeat: PositiveSeconds = Decimal(20)
    max_sessions: Count = 10_000
    send_buffer_limit: Annotated[int, Field(ge=64 * 1024, le=1024**3)] = 1024 * 1024
    send_buffer_total: Annotated[int, Field(ge=64 * 1024, le=64 * 1024**3)] = 64 * 1024 * 1024
    send_buffer_floor: Annotated[int, Field(ge=1024, le=1024**3)] = 64 * 1024
    socket_send_buffer: Annotated[int, Field(ge=4096, le=64 * 1024 * 1024)] | None = 256 * 1024
    max_unauthenticated_sessions: Count = 5_000
    max_connections_per_source: Count = 64
    unauthenticated_idle: PositiveSeconds = Decimal(60)
    close_grace: PositiveSeconds = Decimal(2)
    allowed_chain_ids: list[ChainId] | None = None
    # Refuse requests signed over the reference text {"msg_type","id"} only (SPEC §5 Replay).
    require_extended_signatures: bool = False
    # Also accept signatures over sha256(text): the reference's own test client signs so.
    accept_legacy_sha256: bool = False
    session: SessionSettings = Field(default_factory=SessionSettings)
    antibot: AntiBotSettings = Field(default_factory=AntiBotSettings)

    @model_validator(mode="after")
    def _distinct_paths(self) -> ServerSettings:
        paths = [p for p in (self.path, self.quote_path, self.order_path) if p is not None]
        if len(set(paths)) != len(paths):
            raise ValueError(f"path, quote_path and order_path must differ, got {paths}")
        return self


class SolverSettings(_Model):
    """SPEC §4 parameters with their defaults."""

    price_threshold: Annotated[Decimal, _dec(ge=0, lt=1)] = Decimal("0.01")
    max_levels: Annotated[int, Field(ge=1, le=1_000)] = 5
    fee_factor: Annotated[Decimal, _dec(ge=1, le=2)] = Decimal("1.002")
    max_order_volley: Amount = Decimal(10_000)
    max_volley: Amount = Decimal(50_000)
    min_asset_volley: AmountOrZero = Decimal(5)
    asset_volley_step: Amount = Decimal("0.1")
    max_total_volley: Amount = Decimal(100_000)
    min_total_volley_available: AmountOrZero = Decimal(1_000)
    max_batch_size: Annotated[int, Field(ge=1, le=1_000_000)] = 16
    # SPEC §3: the smallest order accepted, in USDC with at most 6 decimals.
    min_order: Annotated[Decimal, _dec(gt=0, le=_MAX_AMOUNT), Field(decimal_places=6)] = Decimal(10)
    tick: Annotated[Decimal, _dec(ge="0.001", le=60)] = Decimal("0.1")
    collateral_timeout: PositiveSeconds = Decimal(1_800)
    partly_mintable_rate: Rate = Decimal("0.99")
    fully_mintable_rate: Rate = Decimal("0.9999")
    mint_idle: Seconds = Decimal(10)
    reject_cooldown: Seconds = Decimal(5)
    max_reject_cooldown: Seconds = Decimal(300)
    order_rate_limits: list[RateLimitSettings] = Field(
        default_factory=lambda: [
            # Binance spot's published order-rate limits for one account.
            RateLimitSettings(name="ORDERS_10S", limit=100, interval=Decimal(10)),
            RateLimitSettings(name="ORDERS_1D", limit=200_000, interval=Decimal(_DAY)),
        ]
    )

    # Sell side (issue 12): net redemptions per window before they queue FIFO (USDC), the
    # window and a redemption's time to sell (seconds), the withdraw hop's bridge name.
    max_net_redemption: Amount = Decimal(500_000)
    redemption_window: PositiveSeconds = Decimal(3_600)
    redemption_ttl: PositiveSeconds = Decimal(3_600)
    # USDC (at the mid) of sell legs below the venue minimum the issuer takes into its own
    # inventory per sell batch; a sell needing more alone is refused (0: such legs wait).
    max_issuer_absorb: AmountOrZero = Decimal(500)
    # What a payout of proceeds costs at least (USDC + rate of the amount): the venue's
    # withdrawal fee for the network, a return bridge and the payout's gas; a sell's floor and
    # quote take the larger of this and the last payout to the client's chain.
    withdrawal_fee: AmountOrZero = Decimal(0)
    withdrawal_fee_rate: Annotated[Decimal, _dec(ge=0, lt=1)] = Decimal(0)
    withdraw_bridge: Annotated[str, Field(min_length=1, max_length=64)] = "withdraw"
    # Clients of these chains are paid there, the proceeds crossing back first (none: every
    # payout on the trading chain; `serve --chain anvil` sets 42161 over `across_back`).
    return_hops: list[ReturnHopSettings] = Field(default_factory=list)
    # A hop reported pending is asked about again after this many seconds; pending this
    # long in all, it is alerted and no longer asked about (engine/pending_hops.py).
    hop_query_interval: PositiveSeconds = Decimal(30)
    hop_pending_alert: PositiveSeconds = Decimal(1_800)
    # Rebalancing (issue 12, engine/rebalance.py): seconds an asset waits after its venue
    # tranche before its next (pacing per asset), USDC per asset per
    # round, how far (a fraction) a mid may leave its cut-over mid before the asset waits,
    # seconds after which a rebalance ends whatever is left.
    rebalance_interval: PositiveSeconds = Decimal(60)
    rebalance_max_tranche: Amount = Decimal(10_000)
    rebalance_price_band: Annotated[Decimal, _dec(gt=0, lt=1)] = Decimal("0.02")
    rebalance_ttl: PositiveSeconds = Decimal(_DAY)

    @model_validator(mode="after")
    def _ordered(self) -> SolverSettings:
        if self.hop_query_interval > self.hop_pending_alert:
            raise ValueError("hop_query_interval: must not exceed hop_pending_alert")
        if self.partly_mintable_rate > self.fully_mintable_rate:
            raise ValueError("partly_mintable_rate: must not exceed fully_mintable_rate")
        if self.max_order_volley > self.max_volley:
            raise ValueError("max_order_volley: must not exceed max_volley")
        if self.max_volley > self.max_total_volley:
            raise ValueError("max_volley: must not exceed max_total_volley")
        if self.reject_cooldown > self.max_reject_cooldown:
            raise ValueError("reject_cooldown: must not exceed max_reject_cooldown")
        _unique_names(self.order_rate_limits, "order_rate_limits")
        return self


class SimSettings(_Model):
    """The simulated venue and chain behind `serve` and the demos."""

    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 7
    book_refresh: PositiveSeconds = Decimal(5)
    exchange_latency: Annotated[Decimal, _dec(ge=0, le=60)] = Decimal("0.02")
    bridge_delay: Annotated[Decimal, _dec(ge=0, le=3_600)] = Decimal("0.5")
    bridge_fee: Annotated[Decimal, _dec(ge=0, le=1_000)] = Decimal("0.10")
    wallet_delay: Annotated[Decimal, _dec(ge=0, le=3_600)] = Decimal("0.3")
    mint_delay: Annotated[Decimal, _dec(ge=0, le=3_600)] = Decimal("0.2")
    # POST /sim/deposit credits any address out of thin air: off unless the operator says so.
    deposit_endpoint: bool = False
    max_deposit: Amount = Decimal(1_000_000)
    # With the Binance venue on the simulated chain: a redemption's proceeds leave the exchange
    # through its wallet API to this address (the simulated trading chain's custody); none:
    # the simulated chain's own withdraw hop. Only for the exchange simulator (a real venue
    # would really send them there).
    withdraw_to: Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$")] | None = None


class StoreSettings(_Model):
    """Durable state (docs/decisions.md). `sqlite`: one WAL database in `data_dir`;
    `postgresql`: the database at `url` (or INDEXMAKER_STORE_URL); `memory`: nothing
    survives a restart (tests, benchmarks)."""

    backend: Literal["sqlite", "postgresql", "memory"] = "sqlite"
    # Relative paths are taken from the working directory; INDEXMAKER_DATA_DIR overrides it.
    data_dir: Annotated[str, Field(min_length=1, max_length=4096)] = "data"
    # libpq URI for `postgresql`; INDEXMAKER_STORE_URL overrides it (keep passwords there).
    url: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    # A snapshot of the engine every this many journal entries: a restart restores the
    # newest and replays only the entries after it.
    snapshot_every: Annotated[int, Field(ge=100, le=100_000_000)] = 20_000
    # Snapshots kept (the newest and spares); the journal is compacted behind the oldest
    # kept one, so it holds about keep_snapshots x snapshot_every entries. 0: never compact
    # (the journal is kept in full, e.g. for an audit).
    keep_snapshots: Annotated[int, Field(ge=0, le=100)] = 2
    # At most this long between group commits while only market data arrives (seconds).
    commit_interval: Annotated[Decimal, _dec(gt=0, le=60)] = Decimal("0.1")


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
    # external: the deployed addresses (deploy.py's file: `make deploy`'s .chains/deployment.json)
    deployment: Annotated[str, Field(min_length=1, max_length=4096)] | None = None

    @model_validator(mode="after")
    def _external(self) -> ChainSectionSettings:
        for name in ("rpc_urls", "fallback_rpc_urls"):
            for key in getattr(self, name):
                if key not in CHAIN_IDS:
                    raise ValueError(
                        f"{name}.{key}: not a chain of the path (chain ids {', '.join(CHAIN_IDS)})"
                    )
        if self.mode != "external":
            for name in ("rpc_urls", "fallback_rpc_urls", "deployment"):
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


class ApiSettings(_Model):
    """The read-only query API (HTTP JSON, OpenAPI at /openapi.json, docs at /docs). It shows
    every client's balances and orders: loopback unless the operator decides otherwise."""

    enable: bool = True
    host: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:_-]+$")] = (
        "127.0.0.1"
    )
    port: Annotated[int, Field(ge=0, le=65535)] = 3001  # 0: any free port


Pair = Annotated[str, Field(pattern=r"^[A-Z0-9]{2,30}$")]


class RebalanceSettings(_Model):
    """`[[rebalance]]`: the curator's new weights for `index` (issue 12; SPEC §1 item 8), fed
    to the running service once its assets are priced (app/config_rebalance.py). Weights are
    relative (normalised by their sum); a basket asset not named, or named with 0, leaves the
    basket. `id` names the proposal (default: derived from index and weights): a proposal
    the engine already holds (journal or snapshot) is not proposed again after a restart."""

    index: str
    weights: Annotated[
        dict[Pair, Annotated[Decimal, _dec(ge=0, le=_MAX_AMOUNT)]],
        Field(min_length=1, max_length=1000),
    ]
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$")] | None = None


class Settings(_Model):
    indexes: Annotated[list[str], Field(min_length=1, max_length=64)] = Field(
        default_factory=lambda: ["SY100"]
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    server: ServerSettings = Field(default_factory=ServerSettings)
    solver: SolverSettings = Field(default_factory=SolverSettings)
    sim: SimSettings = Field(default_factory=SimSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    chain: ChainSectionSettings = Field(default_factory=ChainSectionSettings)
    rebalance: Annotated[list[RebalanceSettings], Field(max_length=64)] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _known_indexes(self) -> Settings:
        unknown = [i for i in self.indexes if i not in BUNDLED_INDEXES]
        if unknown:
            raise ValueError(f"indexes: unknown {unknown}; bundled: {list(BUNDLED_INDEXES)}")
        if len(set(self.indexes)) != len(self.indexes):
            raise ValueError(f"indexes: listed twice in {self.indexes}")
        _check_rebalances(self.rebalance, self.indexes)
        return self


def _check_rebalances(entries: list[RebalanceSettings], indexes: list[str]) -> None:
    """Each entry names a served index (once) and assets with books: those of the served
    indexes (the service subscribes to no other); the weights must not all be 0."""
    pairs = {a.instrument.pair for i in indexes for a in load_bundled_index(i).assets}
    seen: set[str] = set()
    for n, entry in enumerate(entries):
        where = f"rebalance[{n}]"
        if entry.index not in indexes:
            raise ValueError(f"{where}.index: {entry.index!r} is not served (indexes {indexes})")
        if entry.index in seen:
            raise ValueError(f"{where}.index: {entry.index} has two rebalances; keep one")
        seen.add(entry.index)
        for pair in entry.weights:
            if pair not in pairs:
                raise ValueError(
                    f"{where}.weights.{pair}: unknown asset (not in the served indexes' books)"
                )
        if not any(entry.weights.values()):
            raise ValueError(f"{where}.weights: the weights sum to 0")
