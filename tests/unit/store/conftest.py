"""One fixture for every store test: a database of each backend, opened (and reopened) the way
a restarted service opens it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from indexmaker.app.config import StoreConfig
from indexmaker.store.postgres import PostgresStore
from indexmaker.store.sql import SqlStore
from indexmaker.store.sqlite import SqliteStore


@pytest.fixture(params=["sqlite", "postgresql"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], SqlStore]:
    """Opens (and reopens) one database of the backend, like a restarted service would."""
    if request.param == "sqlite":
        return lambda: SqliteStore(tmp_path / "db")
    url = request.getfixturevalue("postgres_url")
    return lambda: PostgresStore(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def open_keeping(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[int], SqlStore]:
    """Opens (and reopens) one database of the backend keeping `keep` snapshots."""
    if request.param == "sqlite":
        return lambda keep: SqliteStore(tmp_path / "db", keep_snapshots=keep)
    url = request.getfixturevalue("postgres_url")
    return lambda keep: PostgresStore(url, keep_snapshots=keep)


@pytest.fixture(params=["sqlite", "postgresql"])
def table_config(request: pytest.FixtureRequest, tmp_path: Path) -> StoreConfig:
    """The settings of one database of the backend, for the tables written at once on a
    connection of their own (store/chain_txs.py `connect`)."""
    if request.param == "sqlite":
        return StoreConfig(data_dir=tmp_path)
    return StoreConfig(url=request.getfixturevalue("postgres_url"))
