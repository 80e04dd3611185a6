"""The chain adapters' own progress in the durable store (issue 11, issue 10): each chain's
block cursor and the issuer's sent, unmined transactions.

- Cursor: the last block whose custody deposits were all handed to the engine, in the
  store's `meta` as `chain_cursor:<chain id>:<custody>`. It is written only after the engine
  has journalled every input queued before it (`Runtime.handled_through`), and the store
  writes `meta` in the same group commit as the journal or a later one, so a stored cursor is
  never ahead of the deposits it covers: after a restart the port reads logs from the block
  after it (nothing missed), and a deposit of a block read again is one the engine already
  has (it deduplicates by transaction hash and log index).
- Pending transactions: `chain_txs` (store/chain_txs.py), written by chain/tx.py before each
  broadcast; on start each port settles what an earlier run left there before it sends
  anything (re-await, rebroadcast the same signed bytes, or bump the fees), so a hop redone
  after a restart finds its earlier transaction mined instead of sending a second one.
- Identity: each chain's genesis block hash, in `meta` as `chain_genesis:<chain id>` at the
  first start; a later start on other chains (a lost anvil state redeployed afresh, another
  network at the same URL) is refused before anything is read or sent: the journal's
  deposits, cursors and transactions are not theirs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping

from indexmaker.app.config import ConfigError
from indexmaker.app.runtime import Runtime
from indexmaker.chain.connector import Web3ChainPort
from indexmaker.chain.tx import TxJournal
from indexmaker.core.ports import StorePort


def cursor_writer(
    store: StorePort, runtime: Runtime, name: str
) -> Callable[[int], Awaitable[None]]:
    """`on_cursor(block)` for a port: the cursor goes to the store once everything queued
    before it is journalled (a cursor moving backwards is never written)."""
    last = _stored(store, name)

    async def write(block: int) -> None:
        nonlocal last
        if last is not None and block <= last:
            return
        if not await runtime.handled_through(runtime.inputs_put):
            return  # the engine stopped first: the next run reads these blocks again
        store.set_meta(name, str(block))
        last = block

    return write


def make_durable(
    ports: Iterable[Web3ChainPort], store: StorePort | None, runtime: Runtime, txs: TxJournal | None
) -> None:
    """Before the service starts: every port resumes from its stored cursor, persists the
    next ones, and keeps its pending transactions in `txs`. Without a store: nothing."""
    if store is None:
        return
    for port in ports:
        name = port.cursor_name
        port.make_durable(txs, _stored(store, name), cursor_writer(store, runtime, name))


def _stored(store: StorePort, name: str) -> int | None:
    value = store.get_meta(name)
    return None if value is None else int(value)


def check_identity(store: StorePort | None, genesis: Mapping[int, str]) -> None:
    """Record each chain's genesis hash (`genesis`: by chain id) in `store`, or raise
    ConfigError (`chain.state_dir: …`) when the store recorded another chain under that id."""
    if store is None:
        return
    for chain_id, block_hash in sorted(genesis.items()):
        name = f"chain_genesis:{chain_id}"
        stored = store.get_meta(name)
        if stored is None:
            store.set_meta(name, block_hash)
        elif stored != block_hash:
            raise ConfigError(
                f"chain.state_dir: the store's journal describes another chain {chain_id} "
                f"(genesis {stored}, these chains {block_hash}): keep the store with the "
                "chains it describes, or start both afresh"
            )
