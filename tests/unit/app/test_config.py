"""app/config.py: embedded defaults, the example file, and errors that name the field."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from indexmaker.app.config import (
    LOCAL_TEST_SERVER_KEY,
    SERVER_KEY_ENV,
    SERVER_KEY_FILE_ENV,
    ConfigError,
    ServiceConfig,
    load_config,
    server_private_key,
)

EXAMPLE = Path(__file__).parents[3] / "indexmaker.example.toml"


def test_no_file_gives_the_embedded_defaults() -> None:
    assert load_config(None) == ServiceConfig()


def test_the_example_file_restates_the_defaults() -> None:
    assert load_config(EXAMPLE) == ServiceConfig()


def test_overrides_are_typed(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        'indexes = ["SYAI", "SYL2"]\n[server]\nport = 3100\n'
        '[solver]\nfee_factor = "1.001"\ntick = 0.25\nmax_batch_size = 32\n'
    )
    config = load_config(path)
    assert config.indexes == ("SYAI", "SYL2")
    assert config.server.port == 3100
    assert config.solver.fee_factor == Decimal("1.001")
    assert config.solver.tick == timedelta(milliseconds=250)
    assert config.solver.max_batch_size == 32


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[solver]\nfee_factor = 1.002\n", "solver.fee_factor: write decimals as strings"),
        ('[solver]\nmax_levels = "5"\n', "solver.max_levels: expected an integer"),
        ('[solver]\nfee_factor = "0.5"\n', "solver: fee_factor must be >= 1"),
        ("[server]\nprot = 1\n", "server.prot: unknown setting"),
        ('indexes = ["NOPE"]\n', "indexes: unknown ['NOPE']"),
        ("surprise = 1\n", "unknown settings: ['surprise']"),
        ("[solver]\ntick = -1\n", "solver.tick: expected a number of seconds >= 0"),
        ("[solver\n", "c.toml"),
    ],
)
def test_bad_settings_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert message in str(error.value)


def test_server_key_from_env_then_file_then_the_local_test_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SERVER_KEY_ENV, raising=False)
    monkeypatch.delenv(SERVER_KEY_FILE_ENV, raising=False)
    assert server_private_key() == (LOCAL_TEST_SERVER_KEY, True)
    key_file = tmp_path / "key"
    key_file.write_text("0x" + "11" * 32 + "\n")
    monkeypatch.setenv(SERVER_KEY_FILE_ENV, str(key_file))
    assert server_private_key() == ("0x" + "11" * 32, False)
    monkeypatch.setenv(SERVER_KEY_ENV, "0x" + "22" * 32)
    assert server_private_key() == ("0x" + "22" * 32, False)
    monkeypatch.delenv(SERVER_KEY_ENV)
    monkeypatch.setenv(SERVER_KEY_FILE_ENV, str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=SERVER_KEY_FILE_ENV):
        server_private_key()
