"""The settings file's typed models (pydantic): every value's type and range in one place.

`indexmaker serve --config FILE` reads TOML with floats parsed as Decimal (exact: `0.1` is
one tenth, never a binary float), then validates it here. Models are strict: a boolean where
a number is due, a list where a string is due, an unknown key, "NaN", inf, 1e300 or a value
out of range is refused. Decimals may be written as strings ("0.01") or numbers (0.01);
durations are seconds. config.py turns the validated models into the runtime dataclasses.
Why pydantic and not msgspec: docs/decisions.md ("Settings: typed pydantic models").
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, model_validator

from indexmaker.app.settings_chain import ChainSectionSettings
from indexmaker.app.settings_server import (
    AntiBotSettings,
    ServerSettings,
    SessionSettings,
    UnauthenticatedSettings,
)
from indexmaker.app.settings_types import DAY as _DAY
from indexmaker.app.settings_types import MAX_AMOUNT as _MAX_AMOUNT
from indexmaker.app.settings_types import (
    Amount,
    AmountOrZero,
    PositiveSeconds,
    Rate,
    RateLimitSettings,
    Seconds,
)
from indexmaker.app.settings_types import SettingsModel as _Model
from indexmaker.app.settings_types import decimal_field as _dec
from indexmaker.app.settings_types import unique_names as _unique_names
from indexmaker.app.settings_types import windows_field as _windows
from indexmaker.model.index import BUNDLED_INDEXES, load_bundled_index

# Each section's model lives with its concern; these names stay importable from here.
__all__ = [
    "AntiBotSettings",
    "ApiSettings",
    "ChainSectionSettings",
    "RateLimitSettings",
    "RebalanceSettings",
    "ReturnHopSettings",
    "ServerSettings",
    "SessionSettings",
    "Settings",
    "SimSettings",
    "SolverSettings",
    "StoreSettings",
    "UnauthenticatedSettings",
]


class ReturnHopSettings(_Model):
    """A redemption of a client of `chain_id` is paid there: its proceeds cross `bridge` from
    the trading chain to `designation` first (issue 12)."""

    chain_id: Annotated[int, Field(gt=0, lt=2**32)]
    bridge: Annotated[str, Field(min_length=1, max_length=64)]
    designation: Annotated[str, Field(min_length=1, max_length=64)]


class ReturnHopFeeSettings(_Model):
    """What crossing the return hop to `chain_id` is known to cost (USDC: bridge fee and gas),
    expected by sell floors and quotes until a payout to that chain is seen (issue 12)."""

    chain_id: Annotated[int, Field(gt=0, lt=2**32)]
    fee: AmountOrZero


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
    floor_recheck: PositiveSeconds = Decimal(1)  # a sell held below its floor: books re-read
    reject_cooldown: Seconds = Decimal(5)
    max_reject_cooldown: Seconds = Decimal(300)
    # Exchange orders per window (Binance's published figures): the budget until the venue
    # states its own order windows (Binance exchangeInfo rateLimits, 90% of each used), which
    # replace these while venue_order_limits is true; false makes these an override.
    order_rate_limits: list[RateLimitSettings] = _windows(
        ("ORDERS_10S", 100, 10), ("ORDERS_1D", 200_000, _DAY)
    )
    venue_order_limits: bool = True

    # Sell side (issue 12): net redemptions per window before they queue FIFO (USDC), the
    # window and a redemption's time to sell (seconds), the withdraw hop's bridge name.
    max_net_redemption: Amount = Decimal(500_000)
    redemption_window: PositiveSeconds = Decimal(3_600)
    redemption_ttl: PositiveSeconds = Decimal(3_600)
    # USDC (at the mids) the issuer's inventory of absorbed sell legs (below the venue
    # minimum) may reach; a sell needing more alone is refused (0: such legs wait).
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
    # Their known cost before a first payout (`serve --chain anvil` sets [chain] bridge_fee).
    return_hop_fees: list[ReturnHopFeeSettings] = Field(default_factory=list)
    # A hop reported pending is asked about again after this many seconds; pending this
    # long in all, it is alerted and no longer asked about (engine/pending_hops.py).
    hop_query_interval: PositiveSeconds = Decimal(30)
    hop_pending_alert: PositiveSeconds = Decimal(1_800)
    # A collateral hop given up after its tries is routed again this many seconds later
    # (again each time it is given up; a deposit, a restart or `indexmaker routes resume`
    # resumes it sooner: engine/route_resume.py).
    route_retry_after: PositiveSeconds = Decimal(600)
    # Rebalancing (issue 12, engine/rebalance.py): seconds an asset waits after its venue
    # tranche before its next (pacing per asset), USDC per asset per round to the venue
    # (crossed with clients on top), how far (a fraction) a mid may leave its cut-over mid
    # before the asset waits, seconds after which a rebalance ends whatever is left.
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
    # When a changed order book is journalled: "on_read" when a decision first reads it (an
    # idle service journals only its ticks), "every_input" before every input that is not
    # market data, read or not (~75 rows per idle tick; docs/decisions.md).
    journal_books: Literal["on_read", "every_input"] = "on_read"
    # At most this long between group commits while only market data arrives (seconds).
    commit_interval: Annotated[Decimal, _dec(gt=0, le=60)] = Decimal("0.1")


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
