"""Service configuration: embedded defaults, a TOML file, command-line values, the environment.

`load_config(path, overrides)` validates everything through the typed models of settings.py
and returns the runtime dataclasses the service is built from. Every bad value is refused
before anything starts, as one `section.name: reason` line (ConfigError); the CLI exits 2.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar, get_type_hints

from pydantic import BaseModel, ValidationError

from indexmaker.app.config_rebalance import proposal
from indexmaker.app.settings import RateLimitSettings, Settings
from indexmaker.app.settings_types import first_error
from indexmaker.core.money import EXACT_CONTEXT
from indexmaker.core.rebalance_events import RebalanceIndex
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.throttle import RateLimit
from indexmaker.query.api import QueryApiConfig
from indexmaker.server.balance_gate import AntiBotConfig
from indexmaker.server.guard import GuardConfig
from indexmaker.server.session import SessionConfig
from indexmaker.server.ws_server import ServerConfig

# anvil/hardhat well-known test account #0: a public local-chain key, never a real secret.
LOCAL_TEST_SERVER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
SERVER_KEY_ENV = "INDEXMAKER_SERVER_KEY"
SERVER_KEY_FILE_ENV = "INDEXMAKER_SERVER_KEY_FILE"
# secp256k1's group order: a private key is an integer in [1, n − 1] (SEC 1 §3.2.1).
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


T = TypeVar("T")


class ConfigError(ValueError):
    """One line naming the setting (`section.name: reason`) or the variable/flag at fault."""


@dataclass(frozen=True, slots=True)
class SimConfig:
    seed: int = 7
    book_refresh: timedelta = timedelta(seconds=5)
    exchange_latency: timedelta = timedelta(milliseconds=20)
    bridge_delay: timedelta = timedelta(milliseconds=500)
    bridge_fee: Decimal = Decimal("0.10")
    wallet_delay: timedelta = timedelta(milliseconds=300)
    mint_delay: timedelta = timedelta(milliseconds=200)
    deposit_endpoint: bool = False  # POST /sim/deposit: only when the operator enables it
    max_deposit: Decimal = Decimal(1_000_000)
    withdraw_to: str | None = None  # Binance venue: proceeds withdrawn there by its wallet API


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """data_dir and url None: the journal stays in memory (nothing survives a restart);
    url set: PostgreSQL (a secret: never logged); else SQLite in data_dir."""

    data_dir: Path | None = None
    commit_interval: timedelta = timedelta(milliseconds=100)
    url: str | None = field(default=None, repr=False)
    snapshot_every: int = 20_000
    # Snapshots kept; the journal is deleted behind the oldest of them (0: kept in full).
    keep_snapshots: int = 2
    # Beside a PostgreSQL store, where files kept with it go (the simulated chain: the data
    # directory setting); a SQLite store keeps them in data_dir.
    files_dir: Path | None = None
    # Changed books journalled when a decision reads them (False: before every input).
    books_on_read: bool = True

    @property
    def kept_files(self) -> Path | None:
        """The directory of files that outlive the process with the store (None: memory)."""
        return self.data_dir or self.files_dir


@dataclass(frozen=True, slots=True)
class ChainConfig:
    """`[chain]` (settings.py ChainSectionSettings): "anvil", "external" or "sim", a
    deposit's confirmations (blocks), gas's fallback price (USDC per ETH), the Across
    relayer's fee (USDC) and delay, how long a hop may take. `state_dir`: where anvil's chains
    are kept (None: fresh chains each start); `rpc_urls`: external chains' JSON-RPC URLs by
    chain id, the first tried first (a secret: never logged); `deployment`: their addresses.
    Built in code (tests, demos) the default is the in-process chain; `serve`'s settings
    default to anvil."""

    mode: str = "sim"
    confirmations: int = 0
    eth_usdc: Decimal = Decimal(3000)
    bridge_fee: Decimal = Decimal("0.10")
    relayer_delay: timedelta = timedelta(milliseconds=500)
    hop_timeout: timedelta = timedelta(seconds=120)
    fill_deadline: timedelta = timedelta(hours=1)
    log_chunk_blocks: int = 10_000  # blocks per eth_getLogs of a hop's look-ups
    state_dir: Path | None = None
    rpc_urls: Mapping[int, tuple[str, ...]] = field(default_factory=dict, repr=False)
    deployment: Path | None = None
    ws_urls: Mapping[int, str] = field(default_factory=dict, repr=False)  # a secret, as rpc_urls


DATA_DIR_ENV = "INDEXMAKER_DATA_DIR"
STORE_URL_ENV = "INDEXMAKER_STORE_URL"


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    indexes: tuple[str, ...] = ("SY100",)
    server: ServerConfig = field(default_factory=ServerConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    # Built in code (tests, demos): no query API unless asked; `serve`'s settings turn it on.
    api: QueryApiConfig = field(default_factory=lambda: QueryApiConfig(enable=False))
    chain: ChainConfig = field(default_factory=ChainConfig)
    log_level: str = "INFO"
    # `[[rebalance]]`: curator updates fed to the running service (app/config_rebalance.py).
    rebalance: tuple[RebalanceIndex, ...] = ()
    # Where `indexmaker routes` leaves requests for the running service (app/operator_requests.py):
    # `<data dir>/operator` from the settings; None (built in code): no operator requests.
    operator_dir: Path | None = None


def load_config(
    path: Path | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    sources: dict[str, str] | None = None,
) -> ServiceConfig:
    """The file's settings (or none) with `overrides` ({section: {name: value}}) on top.

    Raises ConfigError naming the first bad value: `server.port: must be less than or equal
    to 65535`, or `{path}: …` for a file that cannot be read or parsed. `sources` renames a
    setting in that message to where its value came from (`{"server.port": "--port"}`).
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            # Floats as Decimal: `0.1` in the file is exactly one tenth.
            data = tomllib.loads(path.read_text(), parse_float=Decimal)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else error
            raise ConfigError(f"{path}: {reason}") from None
    for section, values in (overrides or {}).items():
        current = data.get(section)
        data[section] = {**current, **values} if isinstance(current, dict) else dict(values)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(first_error(error, sources or {})) from None
    return to_service_config(settings)


def _seconds(value: Decimal | int) -> timedelta:
    # Whole microseconds, half-even, exact under any caller's Decimal context (the models
    # bound every duration to a week at most).
    micros = Decimal(value).scaleb(6, context=EXACT_CONTEXT)
    return timedelta(microseconds=int(micros.to_integral_value(ROUND_HALF_EVEN, EXACT_CONTEXT)))


def _limits(limits: list[RateLimitSettings]) -> tuple[RateLimit, ...]:
    return tuple(RateLimit(w.name, w.limit, _seconds(w.interval)) for w in limits)


def _section(target: type[T], section: BaseModel, **given: Any) -> T:
    """The runtime dataclass `target` from the settings `section`: each field named in `given`
    takes that value, any other the section's value of the same name (a `timedelta` field
    from its seconds, exactly: `_seconds`); a field the section lacks keeps its default."""
    values: dict[str, Any] = {}
    for name, kind in get_type_hints(target).items():
        if name in given:
            values[name] = given[name]
        elif name in type(section).model_fields:
            value = getattr(section, name)
            if kind is not timedelta and "timedelta" in str(kind):
                raise TypeError(f"{target.__name__}.{name}: give an optional duration explicitly")
            values[name] = _seconds(value) if kind is timedelta else value
    return target(**values)


def to_service_config(settings: Settings) -> ServiceConfig:
    try:
        return _build(settings)
    except ValueError as error:  # a runtime dataclass's own check the models did not repeat
        raise ConfigError(str(error)) from None


def _build(settings: Settings) -> ServiceConfig:
    server, session, anonymous, solver, sim = (
        settings.server,
        settings.server.session,
        settings.server.session.unauthenticated,
        settings.solver,
        settings.sim,
    )
    return ServiceConfig(
        indexes=tuple(settings.indexes),
        log_level=settings.log_level,
        rebalance=tuple(proposal(entry) for entry in settings.rebalance),
        server=_section(
            ServerConfig,
            server,
            allowed_chain_ids=(
                None if server.allowed_chain_ids is None else frozenset(server.allowed_chain_ids)
            ),
            antibot=_section(AntiBotConfig, server.antibot),
            session=_section(
                SessionConfig,
                session,
                session_limits=_limits(session.session_limits),
                client_limits=_limits(session.client_limits),
                global_limits=_limits(session.global_limits),
                weights=MappingProxyType(dict(session.weights)),
                unauthenticated=_section(
                    GuardConfig,
                    anonymous,
                    source_limits=_limits(anonymous.source_limits),
                    anonymous_limits=_limits(anonymous.anonymous_limits),
                    strike_limit=_limits([anonymous.strike_limit])[0],
                    strike_out_limit=_limits([anonymous.strike_out_limit])[0],
                ),
            ),
        ),
        solver=_section(
            SolverConfig,
            solver,
            order_rate_limits=_limits(solver.order_rate_limits),
            return_hops=tuple((h.chain_id, h.bridge, h.designation) for h in solver.return_hops),
            return_hop_fees=tuple((h.chain_id, h.fee) for h in solver.return_hop_fees),
        ),
        sim=_section(SimConfig, sim),
        store=_store(settings),
        api=QueryApiConfig(settings.api.enable, settings.api.host, settings.api.port),
        chain=_chain(settings),
        operator_dir=operator_dir(settings),
    )


def _chain(settings: Settings) -> ChainConfig:
    chain, store = settings.chain, settings.store
    state_dir = None
    if chain.mode == "anvil":
        if chain.state_dir is not None:
            state_dir = Path(chain.state_dir)
        elif store.backend == "sqlite":
            state_dir = _data_dir(settings) / "anvil"
        elif store.backend == "postgresql":
            # The journal in PostgreSQL names deposits and mints of these chains: fresh
            # chains at each start would contradict it.
            raise ConfigError(
                'chain.state_dir: required with mode "anvil" and store.backend "postgresql" '
                "(where the local chains are kept across restarts)"
            )
    return _section(
        ChainConfig,
        chain,
        state_dir=state_dir,
        rpc_urls=MappingProxyType(
            {
                int(key): (url, *chain.fallback_rpc_urls.get(key, ()))
                for key, url in sorted(chain.rpc_urls.items())
            }
        ),
        deployment=None if chain.deployment is None else Path(chain.deployment),
        ws_urls=MappingProxyType({int(key): url for key, url in chain.ws_urls.items()}),
    )


def _store(settings: Settings) -> StoreConfig:
    store = settings.store
    interval = _seconds(store.commit_interval)
    if store.backend == "memory":
        return StoreConfig(None, interval)
    on_read = store.journal_books == "on_read"
    every, keep = store.snapshot_every, store.keep_snapshots
    if store.backend == "postgresql":
        url = os.environ.get(STORE_URL_ENV) or store.url
        if not url:
            raise ConfigError(f"store.url: required for backend postgresql (or {STORE_URL_ENV})")
        return StoreConfig(None, interval, url, every, keep, _data_dir(settings), on_read)
    return StoreConfig(_data_dir(settings), interval, None, every, keep, None, on_read)


def operator_dir(settings: Settings) -> Path:
    """Where operator requests go: the data directory's `operator` (whatever the store)."""
    return _data_dir(settings) / "operator"


def _data_dir(settings: Settings) -> Path:
    """The data directory: INDEXMAKER_DATA_DIR when set and not empty, else store.data_dir."""
    return Path(os.environ.get(DATA_DIR_ENV) or settings.store.data_dir)


def check_private_key(text: str, source: str) -> str:
    """`text` if it is a secp256k1 private key: 64 hex digits (0x optional), 1 ≤ k < n.

    Raises ConfigError naming `source` (never echoing the key)."""
    digits = text[2:] if text[:2] in ("0x", "0X") else text
    if len(digits) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise ConfigError(
            f"{source}: expected a 32-byte hex private key (64 hex digits), "
            f"got {len(digits)} characters"
        )
    if not 0 < int(digits, 16) < SECP256K1_ORDER:
        raise ConfigError(f"{source}: not a valid key (must be between 1 and the curve order − 1)")
    return text


def server_private_key() -> tuple[str, bool]:
    """(key, is_local_test_key): from the env, a key file, or the well-known local test key.

    A variable that is set but empty, a file that cannot be read or a value that is not a
    valid key is an error (ConfigError), never a silent fall-back to the test key."""
    if SERVER_KEY_ENV in os.environ:
        return check_private_key(os.environ[SERVER_KEY_ENV].strip(), SERVER_KEY_ENV), False
    key_file = os.environ.get(SERVER_KEY_FILE_ENV)
    if key_file is not None:
        try:
            text = Path(key_file).read_text().strip()
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not a text file"
            raise ConfigError(f"{SERVER_KEY_FILE_ENV}: {reason}: {key_file}") from None
        return check_private_key(text, f"{SERVER_KEY_FILE_ENV} ({key_file})"), False
    return LOCAL_TEST_SERVER_KEY, True
