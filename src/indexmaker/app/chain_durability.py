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
- Paid refund leaves: `refund_leaf:<chain id>:<root>` in `meta` (chain/root_bundles.py), so a
  leaf is paid at most once however far back its bundle lies.
- Identity: each chain's genesis block hash, in `meta` as `chain_genesis:<chain id>`, and a
  block of its own history, as `chain_block:<chain id>` = "<number>:<hash>", at the first
  start (the block `ANCHOR_DEPTH` under the head, at least block 1: a reorg of the newest
  blocks does not change it). The genesis alone tells nothing apart on anvil: every fresh
  anvil of a chain id has the same one, but a redeployed anvil's blocks have other times and
  so other hashes (as local_peers.py's adoption checks). A later start on other chains (a lost
  anvil state redeployed afresh, another network at the same URL) is refused before anything
  is read or sent: the journal's deposits, cursors and transactions are not theirs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from indexmaker.app.config import ConfigError
from indexmaker.app.runtime import Runtime
from indexmaker.chain.connector import Web3ChainPort
from indexmaker.chain.root_bundles import RootBundles
from indexmaker.chain.tx import TxJournal
from indexmaker.core.ports import StorePort

ANCHOR_DEPTH = 64  # blocks under the head: the recorded block is past any ordinary reorg


@dataclass(frozen=True)
class ChainIdentity:
    """What a chain is, as read at start: its genesis hash, its head's number, and
    `block_hash(number)`: the hash of its block `number` (None: it has none)."""

    genesis: str
    head: int
    block_hash: Callable[[int], str | None]


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
    ports: Iterable[Web3ChainPort],
    store: StorePort | None,
    runtime: Runtime,
    txs: TxJournal | None,
    bundles: Iterable[RootBundles] = (),
) -> None:
    """Before the service starts: every port resumes from its stored cursor, persists the
    next ones, and keeps its pending transactions in `txs`; every refund-bundle poster in
    `bundles` keeps its paid leaves in the store (root_bundles.py). Without a store: nothing."""
    if store is None:
        return
    for poster in bundles:
        poster.keep_in(store)
    for port in ports:
        name = port.cursor_name
        port.make_durable(txs, _stored(store, name), cursor_writer(store, runtime, name))


def _stored(store: StorePort, name: str) -> int | None:
    value = store.get_meta(name)
    return None if value is None else int(value)


def check_identity(store: StorePort | None, chains: Mapping[int, ChainIdentity]) -> None:
    """Record each chain's genesis hash and a block of its history (`chains`: by chain id) in
    `store`, or raise ConfigError (`chain.state_dir: …`) when the store recorded another
    chain under that id: another genesis, or no block or another block at the recorded
    height. A store of an earlier build without a recorded block gets one now."""
    if store is None:
        return
    for chain_id, chain in sorted(chains.items()):
        name = f"chain_genesis:{chain_id}"
        stored = store.get_meta(name)
        if stored is None:
            store.set_meta(name, chain.genesis)
        elif stored != chain.genesis:
            _refuse(chain_id, f"genesis {stored}, these chains {chain.genesis}")
        _check_block(store, chain_id, chain)


def _check_block(store: StorePort, chain_id: int, chain: ChainIdentity) -> None:
    name = f"chain_block:{chain_id}"
    stored = store.get_meta(name)
    if stored is None:
        if chain.head >= 1:  # a chain of nothing but its genesis is recorded next time
            number = max(1, chain.head - ANCHOR_DEPTH)
            block_hash = chain.block_hash(number)
            if block_hash is not None:
                store.set_meta(name, f"{number}:{block_hash}")
        return
    number_text, _, recorded = stored.partition(":")
    number = int(number_text)
    found = chain.block_hash(number) if number <= chain.head else None
    if found is None:
        _refuse(chain_id, f"block {number} {recorded}; these chains end at block {chain.head}")
    elif found != recorded:
        _refuse(chain_id, f"block {number} {recorded}, these chains' is {found}")


def _refuse(chain_id: int, difference: str) -> None:
    raise ConfigError(
        f"chain.state_dir: the store's journal describes another chain {chain_id} "
        f"({difference}): keep the store with the chains it describes, or start both afresh"
    )
