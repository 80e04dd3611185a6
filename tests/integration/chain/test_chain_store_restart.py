"""The chain adapters' block cursor in the store across a restart of the service (issue 11):
a deposit made while the service is down is caught up on from the stored cursor and counted
once. (A module of its own: custody refuses a payment id twice, and each store numbers its
payments from P1.)"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from indexmaker.chain.deploy import TRADING_CHAIN_ID
from indexmaker.core.chain_events import DepositObserved
from indexmaker.core.ids import client_key
from indexmaker.engine.engine import TRADING_CHAIN
from indexmaker.store.sqlite import DB_NAME, SqliteStore

from . import path_harness as h


def _meta(data_dir: Path, prefix: str) -> dict[str, str]:
    db = sqlite3.connect(f"file:{data_dir / DB_NAME}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT name, value FROM meta WHERE name LIKE ?", (prefix + "%",))
        return dict(rows.fetchall())
    finally:
        db.close()


def _deposited(running: h.Running, chain_id: int, client: LocalAccount) -> Decimal:
    assert running.service is not None
    ledger = running.service.engine.collateral.ledger(client_key(chain_id, client.address))
    return ledger.deposited


@pytest.mark.slow
async def test_a_deposit_made_while_the_service_is_down_is_caught_up_once(
    chains: h.LocalChains, running: Callable[..., h.Running], tmp_path: Path
) -> None:
    client = Account.from_key(h.CLIENT_KEYS[0])
    first = running(tmp_path)
    await first.start()
    await h.client_deposit(chains, TRADING_CHAIN_ID, client, 300)
    await h.until(lambda: _deposited(first, TRADING_CHAIN_ID, client) == 300, "first deposit")
    await h.until(lambda: bool(_meta(tmp_path, "chain_cursor:8453")), "stored cursor", 10)
    await first.stop()
    (stored,) = _meta(tmp_path, "chain_cursor:8453").values()
    w3 = Web3(Web3.HTTPProvider(chains.url(TRADING_CHAIN_ID)))
    assert int(stored) >= await asyncio.to_thread(lambda: w3.eth.block_number) - 1

    await h.client_deposit(chains, TRADING_CHAIN_ID, client, 200)  # while nobody watches
    second = running(tmp_path)
    await second.start()
    port = second.path.chain.ports[TRADING_CHAIN]
    await h.until(lambda: _deposited(second, TRADING_CHAIN_ID, client) == 500, "caught up")
    h.client_order(second, TRADING_CHAIN_ID, client, 450, "caught-up-1")
    await h.until(lambda: bool(second.invoices(client.address)), "the invoice")
    assert _deposited(second, TRADING_CHAIN_ID, client) == 500  # each deposit counted once
    assert port.follower.cursor > int(stored)
    # Read from the block after the stored cursor: the first deposit never reached the
    # engine again (it would be journalled, then ignored as a repeat).
    journal = SqliteStore(tmp_path / DB_NAME)
    seen = [e.event for e in journal.entries() if isinstance(e.event, DepositObserved)]
    journal.close()
    assert sorted(e.amount for e in seen) == [200, 300]
    (invoice,) = second.invoices(client.address)
    await h.check_minted(chains, invoice, client.address)
