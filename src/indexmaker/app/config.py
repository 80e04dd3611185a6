"""Service configuration: embedded defaults, optionally overridden by a TOML file.

Every field has a sane default, so `indexmaker serve` runs with no file at all. A bad value
is refused with a message naming the field.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from indexmaker.engine.config import SolverConfig
from indexmaker.model.index import BUNDLED_INDEXES
from indexmaker.server.ws_server import ServerConfig

# anvil/hardhat well-known test account #0: a public local-chain key, never a real secret.
LOCAL_TEST_SERVER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
SERVER_KEY_ENV = "INDEXMAKER_SERVER_KEY"
SERVER_KEY_FILE_ENV = "INDEXMAKER_SERVER_KEY_FILE"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class SimConfig:
    seed: int = 7
    book_refresh: timedelta = timedelta(seconds=5)
    exchange_latency: timedelta = timedelta(milliseconds=20)
    bridge_delay: timedelta = timedelta(milliseconds=500)
    bridge_fee: Decimal = Decimal("0.10")
    wallet_delay: timedelta = timedelta(milliseconds=300)
    mint_delay: timedelta = timedelta(milliseconds=200)


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    indexes: tuple[str, ...] = ("SY100",)
    server: ServerConfig = field(default_factory=ServerConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    log_level: str = "INFO"


def load_config(path: Path | None) -> ServiceConfig:
    config = ServiceConfig()
    if path is None:
        return config
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from None
    indexes = data.pop("indexes", None)
    if indexes is not None:
        unknown = [i for i in indexes if i not in BUNDLED_INDEXES]
        if unknown:
            raise ConfigError(f"indexes: unknown {unknown}; bundled: {list(BUNDLED_INDEXES)}")
        config = replace(config, indexes=tuple(indexes))
    for section, current in (
        ("server", config.server),
        ("solver", config.solver),
        ("sim", config.sim),
    ):
        values = data.pop(section, {})
        config = replace(config, **{section: _override(section, current, values)})
    if "log_level" in data:
        config = replace(config, log_level=str(data.pop("log_level")))
    if data:
        raise ConfigError(f"unknown settings: {sorted(data)}")
    return config


def _override(section: str, current: Any, values: dict[str, Any]) -> Any:
    known = {f.name: f for f in fields(current)}
    changes: dict[str, Any] = {}
    for name, raw in values.items():
        if name not in known:
            raise ConfigError(f"{section}.{name}: unknown setting")
        default = getattr(current, name)
        try:
            changes[name] = _coerce(raw, default)
        except (TypeError, ValueError, InvalidOperation) as error:
            raise ConfigError(f"{section}.{name}: {error}") from None
    try:
        return replace(current, **changes)
    except ValueError as error:
        raise ConfigError(f"{section}: {error}") from None


def _coerce(raw: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(raw, bool):
            raise TypeError("expected true or false")
        return raw
    if isinstance(default, Decimal):
        if isinstance(raw, float):
            raise TypeError('write decimals as strings, e.g. "0.01"')
        return Decimal(str(raw))
    if isinstance(default, timedelta):
        if not isinstance(raw, int | float) or raw < 0:
            raise TypeError("expected a number of seconds >= 0")
        return timedelta(seconds=raw)
    if isinstance(default, int) or (default is None and isinstance(raw, int)):
        if not isinstance(raw, int):
            raise TypeError("expected an integer")
        return raw
    if isinstance(default, str) or default is None:
        return str(raw)
    raise TypeError(f"cannot be set from a file (type {type(default).__name__})")


def server_private_key() -> tuple[str, bool]:
    """(key, is_local_test_key): from the env, a key file, or the well-known local test key."""
    key = os.environ.get(SERVER_KEY_ENV)
    if key:
        return key.strip(), False
    key_file = os.environ.get(SERVER_KEY_FILE_ENV)
    if key_file:
        try:
            return Path(key_file).read_text().strip(), False
        except OSError as error:
            raise ConfigError(f"{SERVER_KEY_FILE_ENV}: {error}") from None
    return LOCAL_TEST_SERVER_KEY, True
