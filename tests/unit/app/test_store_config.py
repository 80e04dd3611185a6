"""The [store] settings: where durable state lives, and refusing bad values by name."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from indexmaker.app.config import ConfigError, load_config


def test_sqlite_in_the_data_dir_by_default_and_the_environment_overrides_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("INDEXMAKER_DATA_DIR")
    assert load_config().store.data_dir == Path("data")
    monkeypatch.setenv("INDEXMAKER_DATA_DIR", str(tmp_path))
    store = load_config(None, {"store": {"commit_interval": "0.25"}}).store
    assert (store.data_dir, store.commit_interval) == (tmp_path, timedelta(milliseconds=250))


def test_books_are_journalled_on_read_unless_every_input_is_asked_for() -> None:
    assert load_config().store.books_on_read is True
    for backend in ("sqlite", "postgresql"):
        settings = {
            "store": {"backend": backend, "journal_books": "every_input", "url": "postgresql://x"},
            "chain": {"mode": "sim"},
        }
        assert load_config(None, settings).store.books_on_read is False


def test_the_memory_backend_keeps_nothing() -> None:
    assert load_config(None, {"store": {"backend": "memory"}}).store.data_dir is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"backend": "redis"}, "store.backend: "),
        ({"commit_interval": "0"}, "store.commit_interval: "),
        ({"data_dir": ""}, "store.data_dir: "),
        ({"journal_books": "never"}, "store.journal_books: "),
    ],
)
def test_bad_store_settings_are_named(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{message}"):
        load_config(None, {"store": values})


def test_postgresql_takes_its_url_from_the_environment_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = {
        "store": {"backend": "postgresql", "url": "postgresql://a@127.0.0.1/x"},
        "chain": {"mode": "sim"},
    }
    monkeypatch.delenv("INDEXMAKER_STORE_URL", raising=False)
    assert load_config(None, settings).store.url == "postgresql://a@127.0.0.1/x"
    monkeypatch.setenv("INDEXMAKER_STORE_URL", "postgresql://b:secret@127.0.0.1/y")
    store = load_config(None, settings).store
    assert store.url == "postgresql://b:secret@127.0.0.1/y"
    assert "secret" not in repr(store)  # never in a log line
    monkeypatch.delenv("INDEXMAKER_STORE_URL")
    with pytest.raises(ConfigError, match=r"^store\.url: required for backend postgresql"):
        load_config(None, {"store": {"backend": "postgresql"}, "chain": {"mode": "sim"}})
