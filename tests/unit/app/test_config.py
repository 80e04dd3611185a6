"""app/config.py and app/settings.py: embedded defaults, the example file, typed overrides,
and every bad value refused as one `section.name: reason` line."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from datetime import timedelta
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from indexmaker.app.config import (
    LOCAL_TEST_SERVER_KEY,
    SECP256K1_ORDER,
    SERVER_KEY_ENV,
    SERVER_KEY_FILE_ENV,
    ChainConfig,
    ConfigError,
    ServiceConfig,
    SimConfig,
    StoreConfig,
    load_config,
    server_private_key,
)
from indexmaker.app.settings import (
    AntiBotSettings,
    ChainSectionSettings,
    ServerSettings,
    SessionSettings,
    Settings,
    SimSettings,
    SolverSettings,
    UnauthenticatedSettings,
)
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.throttle import RateLimit
from indexmaker.query.api import QueryApiConfig
from indexmaker.server.balance_gate import AntiBotConfig
from indexmaker.server.guard import GuardConfig
from indexmaker.server.session import SessionConfig
from indexmaker.server.ws_server import ServerConfig

EXAMPLE = Path(__file__).parents[3] / "indexmaker.example.toml"


# `serve` keeps durable state in SQLite (data_dir from the settings or the environment) and
# runs on local anvil chains kept beside it; a ServiceConfig built in code keeps its state in
# memory and uses the in-process chain.
def _serve_defaults() -> ServiceConfig:
    data_dir = Path(os.environ.get("INDEXMAKER_DATA_DIR") or "data")
    chain = ChainConfig(mode="anvil", state_dir=data_dir / "anvil")
    return ServiceConfig(
        store=StoreConfig(data_dir),
        api=QueryApiConfig(),
        chain=chain,
        operator_dir=data_dir / "operator",  # `indexmaker routes` requests
    )


def test_no_file_gives_the_embedded_defaults() -> None:
    assert load_config(None) == _serve_defaults()


def test_the_example_file_restates_the_defaults() -> None:
    assert load_config(EXAMPLE) == _serve_defaults()


def _keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, info in model.model_fields.items():
        keys.add(prefix + name)
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel) and name != "indexes":
            keys |= _keys(nested, f"{prefix}{name}.")
    return keys


def _toml_keys(data: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for name, value in data.items():
        keys.add(prefix + name)
        if isinstance(value, dict) and name != "weights":
            keys |= _toml_keys(value, f"{prefix}{name}.")
    return keys


def test_the_example_file_names_every_setting() -> None:
    text = EXAMPLE.read_text()
    written = _toml_keys(tomllib.loads(text))
    missing = {
        key
        for key in _keys(Settings) - written
        # Settings whose default is "none" cannot be written in TOML: shown commented out.
        if f"# {key.rsplit('.', 1)[-1]} = " not in text
    }
    assert not missing


@pytest.mark.parametrize(
    ("runtime", "model"),
    [
        (ServerConfig, ServerSettings),
        (SessionConfig, SessionSettings),
        (GuardConfig, UnauthenticatedSettings),
        (SolverConfig, SolverSettings),
        (SimConfig, SimSettings),
        (ServiceConfig, Settings),
        (AntiBotConfig, AntiBotSettings),
        (ChainConfig, ChainSectionSettings),
    ],
)
def test_every_runtime_setting_can_be_set_from_the_file(runtime: Any, model: Any) -> None:
    # A field added to a runtime config without a typed setting could never be configured.
    # (ChainConfig.rpc_urls holds each chain's fallback_rpc_urls after its first URL.)
    # (ServiceConfig.operator_dir is the data directory's `operator`: store.data_dir's.)
    merged = {"fallback_rpc_urls"} if model is ChainSectionSettings else set()
    derived = {"operator_dir"} if runtime is ServiceConfig else set()
    fields = {f.name for f in dataclasses.fields(runtime)} - derived
    assert fields == set(model.model_fields) - merged


def test_durations_round_to_the_microsecond_whatever_the_context() -> None:
    # 20000001.5 microseconds: half-even gives ...002; a 3-digit context must not move it.
    overrides = {"server": {"heartbeat": "20.0000015", "close_grace": "2.0000025"}}
    with localcontext() as context:
        context.prec = 3
        config = load_config(None, overrides)
    assert config.server.heartbeat == timedelta(seconds=20, microseconds=2)
    assert config.server.close_grace == timedelta(seconds=2, microseconds=2)


def test_overrides_are_typed_and_exact(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        'indexes = ["SYAI", "SYL2"]\n[server]\nport = 3100\n'
        "[server.session]\nsession_limits = [{ name = 'burst', limit = 7, interval = 0.5 }]\n"
        '[solver]\nfee_factor = 1.001\ntick = 0.25\nmax_batch_size = 32\nmin_asset_volley = "10"\n'
        'min_order = "25.5"\nmax_issuer_absorb = "0"\n'
        "order_rate_limits = [{ name = 'ORDERS_1S', limit = 10, interval = 1 }]\n"
        "venue_order_limits = false\n"
        "return_hops = [{ chain_id = 42161, bridge = 'back', designation = 'EVM:ARB:USDC' }]\n"
        "return_hop_fees = [{ chain_id = 42161, fee = '0.35' }]\n"
    )
    config = load_config(path)
    assert config.solver.return_hops == ((42161, "back", "EVM:ARB:USDC"),)
    assert config.solver.return_hop_fees == ((42161, Decimal("0.35")),)
    assert config.indexes == ("SYAI", "SYL2")
    assert config.server.port == 3100
    assert config.server.session.session_limits == (
        RateLimit("burst", 7, timedelta(milliseconds=500)),
    )
    # A TOML float is read as an exact Decimal, never through a binary float.
    assert config.solver.fee_factor == Decimal("1.001")
    assert config.solver.min_asset_volley == Decimal(10)
    assert config.solver.tick == timedelta(milliseconds=250)
    assert config.solver.max_batch_size == 32
    assert config.solver.min_order == Decimal("25.5")
    assert config.solver.max_issuer_absorb == 0  # absorption off: small legs wait
    assert config.solver.order_rate_limits == (RateLimit("ORDERS_1S", 10, timedelta(seconds=1)),)
    assert config.solver.venue_order_limits is False  # the setting wins over the venue's


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[solver]\nfee_factor = "NaN"\n', "solver.fee_factor: must be a finite number"),
        ("[solver]\nmax_volley = inf\n", "solver.max_volley: must be a finite number"),
        (
            "[solver]\nreturn_hops = [{ chain_id = 0, bridge = 'b', designation = 'd' }]\n",
            "solver.return_hops[0].chain_id:",
        ),
        ("[solver]\nmax_volley = nan\n", "solver.max_volley: must be a finite number"),
        ("[solver]\nmax_volley = 1e300\n", "solver.max_volley: must be less than or equal"),
        ('[solver]\nmin_asset_volley = "-5"\n', "solver.min_asset_volley: must be greater"),
        ('[solver]\nmax_issuer_absorb = "-1"\n', "solver.max_issuer_absorb: must be greater"),
        ("[solver]\nmax_order_volley = -1\n", "solver.max_order_volley: must be greater than 0"),
        ("[solver]\ntick = 0\n", "solver.tick: must be greater than or equal to 0.001"),
        ('[solver]\nmin_order = "10.0000001"\n', "solver.min_order: Decimal input should have"),
        ('[solver]\nmin_order = "0"\n', "solver.min_order: must be greater than 0"),
        ("[solver]\ntick = true\n", "solver.tick: expected a decimal number"),
        ("[solver]\nmax_levels = true\n", "solver.max_levels: must be a valid integer"),
        ('[solver]\nmax_levels = "5"\n', "solver.max_levels: must be a valid integer"),
        ("[solver]\nmax_levels = 5.0\n", "solver.max_levels: must be a valid integer"),
        ('[solver]\nfee_factor = "0.5"\n', "solver.fee_factor: must be greater than or equal"),
        ('[solver]\npartly_mintable_rate = "0.99999"\n', "solver.partly_mintable_rate: must"),
        ('[server]\nhost = ["0.0.0.0"]\n', "server.host: must be a valid string"),
        ('[server]\npath = ["/ws"]\n', "server.path: must be a valid string"),
        ("[server]\nport = 70000\n", "server.port: must be less than or equal to 65535"),
        ("[server]\nport = -1\n", "server.port: must be greater than or equal to 0"),
        ('[server]\nquote_path = "/ws"\n', "server: path, quote_path and order_path must differ"),
        ("[server]\nallowed_chain_ids = [0]\n", "server.allowed_chain_ids[0]: must be greater"),
        ('server = "x"\n', "server: expected a table of settings ([server]), got 'x'"),
        (
            "[solver]\norder_rate_limits = [{ name = 'x', limit = 1 }]\n",
            "solver.order_rate_limits[0].interval: required, missing",
        ),
        ("[server.session]\nmax_sessions_per_client = 0\n", "server.session.max_sessions_per"),
        (
            "[server.session]\nclient_limits = [{ name = 'x', limit = 0, interval = 1 }]\n",
            "server.session.client_limits[0].limit: must be greater than or equal to 1",
        ),
        (
            "[server.session.weights]\nNewIndexOrdr = 1\n",
            "server.session.weights: unknown message types ['NewIndexOrdr']",
        ),
        ("[sim]\ndeposit_endpoint = 1\n", "sim.deposit_endpoint: must be a valid boolean"),
        ('[server.antibot]\ntoken = "DAI"\n', "server.antibot.token: must be 'usdc' or 'native'"),
        ('[server.antibot]\nmin_balance = "-1"\n', "server.antibot.min_balance: must be greater"),
        ("[server.antibot]\nttl = 0\n", "server.antibot.ttl: must be greater than or equal"),
        ("[sim]\nbook_refresh = 0\n", "sim.book_refresh: must be greater than or equal"),
        ("[solver]\nroute_retry_after = 0\n", "solver.route_retry_after: must be greater than"),
        (
            '[solver]\nroute_retry_after = "soon"\n',
            "solver.route_retry_after: must be a valid decimal",
        ),
        (
            '[chain]\nmode = "mainnet"\n',
            "chain.mode: must be 'sim', 'anvil' or 'external' (got 'mainnet')",
        ),
        ('[sim]\nwithdraw_to = "0x12"\n', "sim.withdraw_to: must match pattern"),
        (
            "[chain]\nconfirmations = -1\n",
            "chain.confirmations: must be greater than or equal to 0",
        ),
        ('[chain]\nconfirmations = "2"\n', "chain.confirmations: must be a valid integer"),
        ("[chain]\neth_usdc = 0\n", "chain.eth_usdc: must be greater than 0"),
        ("[chain]\nhop_timeout = 0.5\n", "chain.hop_timeout: must be greater than or equal to 1"),
        (
            "[chain]\nfill_deadline = 30\nrelayer_delay = 30\n",
            "chain.fill_deadline: 30s leaves our relayer no time to fill (relayer_delay 30s",
        ),
        ("[chain]\nfill_deadline = 21601\n", "chain.fill_deadline: must be less than or equal"),
        ("[chain]\nlog_chunk_blocks = 0\n", "chain.log_chunk_blocks: must be greater than or"),
        (
            "[chain]\nlog_chunk_blocks = 1000001\n",
            "chain.log_chunk_blocks: must be less than or equal to 1000000",
        ),
        ('[chain]\nrpc_url = "http://x"\n', "chain.rpc_url: unknown setting"),
        ("[server]\nprot = 1\n", "server.prot: unknown setting"),
        ('indexes = ["NOPE"]\n', "indexes: unknown ['NOPE']"),
        ('indexes = "SY100"\n', "indexes: must be a valid list"),
        ("surprise = 1\n", "surprise: unknown setting"),
        ('log_level = "LOUD"\n', "log_level: must be 'DEBUG'"),
        ("[solver\n", "c.toml"),
        (
            'indexes = ["SYAI"]\n[[rebalance]]\nindex = "SYL2"\nweights = { TAOUSDC = 1 }\n',
            "rebalance[0].index: 'SYL2' is not served (indexes ['SYAI'])",
        ),
        (
            'indexes = ["SYAI"]\n[[rebalance]]\nindex = "SYAI"\nweights = { DOGEUSDC = 1 }\n',
            "rebalance[0].weights.DOGEUSDC: unknown asset (not in the served indexes' books)",
        ),
        (
            'indexes = ["SYAI"]\n[[rebalance]]\nindex = "SYAI"\nweights = { TAOUSDC = -1 }\n',
            "rebalance[0].weights.TAOUSDC: must be greater than or equal to 0 (got -1)",
        ),
        (
            'indexes = ["SYAI"]\n[[rebalance]]\nindex = "SYAI"\n'
            "weights = { TAOUSDC = 0, NEARUSDC = 0.0 }\n",
            "rebalance[0].weights: the weights sum to 0",
        ),
        (
            'indexes = ["SYAI"]\n[[rebalance]]\nindex = "SYAI"\nweights = {}\n',
            "rebalance[0].weights: must have at least 1 item",
        ),
        (
            'indexes = ["SYAI"]\n[[rebalance]]\nindex = "SYAI"\nweights = { TAOUSDC = 1 }\n'
            '[[rebalance]]\nindex = "SYAI"\nweights = { NEARUSDC = 1 }\n',
            "rebalance[1].index: SYAI has two rebalances; keep one",
        ),
        (
            'indexes = ["SYAI"]\n[[rebalance]]\nindex = "SYAI"\nweights = { TAOUSDC = 1 }\n'
            'id = "has space"\n',
            "rebalance[0].id: must match pattern",
        ),
    ],
)
def test_bad_settings_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(message) or message in str(error.value)
    assert "\n" not in str(error.value)


def test_antibot_settings_reach_the_server_and_need_the_chain_path(tmp_path: Path) -> None:
    from indexmaker.app.service import Service

    path = tmp_path / "c.toml"
    path.write_text('[server.antibot]\nenabled = true\ntoken = "native"\nmin_balance = 0.05\n')
    config = load_config(path)
    assert config.server.antibot == AntiBotConfig(
        enabled=True, token="native", min_balance=Decimal("0.05")
    )
    # The in-process simulated chain has no wallets to read: refused before anything starts.
    memory = dataclasses.replace(config, store=StoreConfig(None))
    with pytest.raises(ConfigError, match=r"^server.antibot.enabled: needs the on-chain path"):
        Service(memory)


def test_chain_settings_reach_the_path_and_chain_is_the_mode(tmp_path: Path) -> None:
    from indexmaker.app.chain_wiring import path_settings

    path = tmp_path / "c.toml"
    path.write_text(
        '[chain]\nmode = "anvil"\nconfirmations = 2\nrelayer_delay = 0.25\nlog_chunk_blocks = 500\n'
    )
    config = load_config(path)
    state_dir = Path(os.environ.get("INDEXMAKER_DATA_DIR") or "data") / "anvil"
    assert config.chain == ChainConfig(
        mode="anvil",
        confirmations=2,
        relayer_delay=timedelta(milliseconds=250),
        state_dir=state_dir,
        log_chunk_blocks=500,
    )
    figures = path_settings(config)
    assert (figures.confirmations, figures.relayer_delay_s, figures.eth_usdc) == (
        2,
        0.25,
        Decimal(3000),
    )
    assert (figures.hop_timeout_s, figures.fill_deadline_s) == (120.0, 3600)
    assert figures.log_chunk_blocks == 500
    # `serve --chain` sets the mode, named as given when wrong.
    assert load_config(path, {"chain": {"mode": "sim"}}).chain.mode == "sim"
    with pytest.raises(ConfigError, match=r"^--chain: must be 'sim', 'anvil' or 'external'"):
        load_config(None, {"chain": {"mode": "x"}}, {"chain.mode": "--chain"})


def test_chain_state_dir_follows_the_store_or_is_required(tmp_path: Path) -> None:
    pg = {"backend": "postgresql", "url": "postgresql://a@127.0.0.1/x"}
    kept = load_config(None, {"store": pg, "chain": {"state_dir": str(tmp_path)}})
    assert kept.chain.state_dir == tmp_path
    assert load_config(None, {"store": {"backend": "memory"}}).chain.state_dir is None
    assert load_config(None, {"store": pg, "chain": {"mode": "sim"}}).chain.state_dir is None
    with pytest.raises(ConfigError, match=r"^chain\.state_dir: required with mode \"anvil\""):
        load_config(None, {"store": pg})


def test_external_chain_urls_keep_their_order_and_stay_out_of_repr(tmp_path: Path) -> None:
    chain = {
        "mode": "external",
        "rpc_urls": {"42161": "http://a.example/key1", "8453": "https://b.example/key2"},
        "fallback_rpc_urls": {"8453": ["http://c.example:8546", "http://d.example"]},
        "deployment": str(tmp_path / "deployment.json"),
    }
    config = load_config(None, {"chain": chain}).chain
    assert config.rpc_urls == {
        42161: ("http://a.example/key1",),
        8453: ("https://b.example/key2", "http://c.example:8546", "http://d.example"),
    }
    assert config.deployment == tmp_path / "deployment.json" and config.state_dir is None
    assert "key1" not in repr(config) and "key2" not in repr(config)


def test_external_chain_websocket_urls_are_checked_and_kept_out_of_repr(tmp_path: Path) -> None:
    chain = {
        "mode": "external",
        "rpc_urls": {"42161": "http://a.example", "8453": "http://b.example"},
        "ws_urls": {"8453": "wss://b.example/key3"},
        "deployment": str(tmp_path / "deployment.json"),
    }
    config = load_config(None, {"chain": chain}).chain
    assert config.ws_urls == {8453: "wss://b.example/key3"} and "key3" not in repr(config)
    bad = [
        ({"ws_urls": {"8453": "http://b.example"}}, r"^chain\.ws_urls\.8453: .*expected a ws://"),
        ({"ws_urls": {"1": "ws://b.example"}}, r"^chain\.ws_urls\.1: not a chain of the path"),
    ]
    for change, message in bad:
        with pytest.raises(ConfigError, match=message) as error:
            load_config(None, {"chain": {**chain, **change}})
        assert "b.example" not in str(error.value)  # a URL is never echoed
    with pytest.raises(ConfigError, match=r"ws_urls: only for mode \"external\""):
        load_config(None, {"chain": {"ws_urls": {"8453": "ws://b.example"}}})


def test_command_line_overrides_are_named_as_given() -> None:
    with pytest.raises(ConfigError, match=r"^--port: must be less than or equal to 65535"):
        load_config(None, {"server": {"port": 65536}}, {"server.port": "--port"})
    assert load_config(None, {"server": {"port": 0}}).server.port == 0


@pytest.fixture
def no_key_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(SERVER_KEY_ENV, raising=False)
    monkeypatch.delenv(SERVER_KEY_FILE_ENV, raising=False)
    return monkeypatch


def test_server_key_from_env_then_file_then_the_local_test_key(
    tmp_path: Path, no_key_env: pytest.MonkeyPatch
) -> None:
    assert server_private_key() == (LOCAL_TEST_SERVER_KEY, True)
    key_file = tmp_path / "key"
    key_file.write_text("0x" + "11" * 32 + "\n")
    no_key_env.setenv(SERVER_KEY_FILE_ENV, str(key_file))
    assert server_private_key() == ("0x" + "11" * 32, False)
    no_key_env.setenv(SERVER_KEY_ENV, "0x" + "22" * 32)
    assert server_private_key() == ("0x" + "22" * 32, False)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("0", "expected a 32-byte hex private key"),
        ("", "expected a 32-byte hex private key"),  # set but empty: no silent test key
        ("0x" + "00" * 32, "not a valid key"),
        (hex(SECP256K1_ORDER), "not a valid key"),
        (hex(SECP256K1_ORDER + 1), "not a valid key"),
        ("0x" + "11" * 31, "expected a 32-byte hex private key"),
        ("0x" + "zz" * 32, "expected a 32-byte hex private key"),
    ],
)
def test_invalid_server_keys_are_refused(
    key: str, message: str, no_key_env: pytest.MonkeyPatch
) -> None:
    no_key_env.setenv(SERVER_KEY_ENV, key)
    with pytest.raises(ConfigError, match=f"^{SERVER_KEY_ENV}: {message}") as error:
        server_private_key()
    if len(key) > 8:
        assert key[2:10] not in str(error.value)  # a secret is never echoed


def test_the_largest_valid_key_is_accepted(no_key_env: pytest.MonkeyPatch) -> None:
    key = hex(SECP256K1_ORDER - 1)
    no_key_env.setenv(SERVER_KEY_ENV, key)
    assert server_private_key() == (key, False)


def test_missing_or_bad_key_file(tmp_path: Path, no_key_env: pytest.MonkeyPatch) -> None:
    no_key_env.setenv(SERVER_KEY_FILE_ENV, str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=f"^{SERVER_KEY_FILE_ENV}: No such file"):
        server_private_key()
    short = tmp_path / "short"
    short.write_text("0x1234\n")
    no_key_env.setenv(SERVER_KEY_FILE_ENV, str(short))
    with pytest.raises(ConfigError, match="expected a 32-byte hex private key"):
        server_private_key()
