"""One-leaf relayer refund bundles on a local spoke pool (issue 11): the stand-in for Across's
hub pool and dataworker, which the local chains do not run.

`pay(leaf)` posts `relayRootBundle(root, 0)` with root = keccak256(abi.encode(leaf)) (a bundle of
one leaf: the empty proof verifies it, MerkleLib.verifyRelayerRefund) as the pool's
cross-domain admin, through the admin relay installed at the address the pool trusts
(contracts/AdminRelay.sol, chain/deploy.py), then `executeRelayerRefundLeaf(bundle, leaf, [])`,
which pays the leaf's refundAddresses from the pool. Both are the admin's own transactions,
sent with its sender (one nonce manager per sender), so their gas is real and counted.

Paid at most once, across retries and restarts: before posting, the pool's `RelayedRootBundle`
logs are searched for the root (a leaf names its deposit through its leaf id, across.py's
`leaf_id`), and before executing, its `ExecutedRelayerRefundRoot` logs for (bundle, leaf id).
A second execution is refused by the bundle's claimed bitmap (`ClaimedMerkleLeaf()`), which
counts as paid: nothing is tried again. Each call sends at most two transactions.

The log searches start at the caller's lower bound (`pay`'s `from_block`: the block of the
deposit the leaf refunds or repays, before any bundle for it) and read `chunk_blocks` per
eth_getLogs (chain/logs.py LogScan), so a leaf's bundle is found whatever the chain's age; a
search starting after the posting would miss it and post it again in a new bundle, whose
bitmap knows nothing of the first: paid twice. With a store (`keep_in`: the service's meta,
`refund_leaf:<chain id>:<root>` = "<bundle id>:<executing tx>", the tx empty while only
posted) a leaf is looked up there first, without any log search; the log search covers a run
that stopped before its store committed the record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from web3 import AsyncWeb3, Web3
from web3.logs import DISCARD

from indexmaker.chain import artifacts
from indexmaker.chain.across import admin_relay_address, event_topic, one_leaf_root
from indexmaker.chain.logs import DEFAULT_CHUNK_BLOCKS, check_chunk_blocks, first_log
from indexmaker.chain.tx import TxRevertedError
from indexmaker.core.errors import NonRetryableError
from indexmaker.core.ports import StorePort

ZERO32 = b"\x00" * 32
CLAIMED = "claimed"  # recorded as paid by the bitmap's refusal, its transaction not found
# (to, contract call) -> receipt: the admin's sender (Web3ChainPort.send)
SendFn = Callable[[str, Any], Awaitable[Any]]
LEAF_FIELDS = (
    "amountToReturn",
    "chainId",
    "refundAmounts",
    "leafId",
    "l2TokenAddress",
    "refundAddresses",
)


class NoAdminRelay(NonRetryableError):
    """No admin relay where the pool takes admin calls from (chains this project did not
    deploy: their bundles are Across's own)."""


@dataclass(frozen=True)
class LeafPaid:
    """A leaf's payment: its bundle id, the executing transaction (0x-hex; "" when the claimed
    bitmap said paid but no log was found from the lower bound), this call's own receipts (its
    gas), and whether it had been paid before this call."""

    bundle_id: int
    execute_tx: str
    receipts: list[Any] = field(default_factory=list)
    repeated: bool = False


def _tx_hash(item: Any) -> str:
    return "0x" + bytes(item["transactionHash"]).hex()


class RootBundles:
    """One-leaf bundles on the pool at `pool` (Across contract `pool_contract`) of chain
    `chain_id`, posted as `admin` (the pool's cross-domain admin) with `send`."""

    def __init__(
        self,
        w3: AsyncWeb3[Any],
        chain_id: int,
        pool: str,
        pool_contract: str,
        admin: str,
        send: SendFn,
        *,
        chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
    ) -> None:
        abi = artifacts.across(pool_contract)["abi"]
        self.chain_id = chain_id
        self._pool = w3.eth.contract(address=Web3.to_checksum_address(pool), abi=abi)
        self._relay = w3.eth.contract(
            address=admin_relay_address(chain_id, admin), abi=artifacts.ours("AdminRelay")["abi"]
        )
        self._send, self._chunk = send, check_chunk_blocks(chunk_blocks)
        self._relayed_topic = event_topic(abi, "RelayedRootBundle")
        self._executed_topic = event_topic(abi, "ExecutedRelayerRefundRoot")
        self._store: StorePort | None = None

    def keep_in(self, store: StorePort | None) -> None:
        """Record posted and paid leaves in `store`'s meta (None: the log search only)."""
        self._store = store

    def _recorded(self, root: bytes) -> tuple[int, str] | None:
        """(bundle id, executing tx or "") the store recorded for the leaf of `root`."""
        value = None if self._store is None else self._store.get_meta(self._key(root))
        if value is None:
            return None
        bundle, _, tx = value.partition(":")
        return int(bundle), tx

    def _record(self, root: bytes, bundle_id: int, tx: str = "") -> None:
        if self._store is not None:
            self._store.set_meta(self._key(root), f"{bundle_id}:{tx}")

    def _key(self, root: bytes) -> str:
        return f"refund_leaf:{self.chain_id}:0x{root.hex()}"

    async def pay(self, leaf: Mapping[str, Any], from_block: int) -> LeafPaid:
        """Post and execute the bundle holding only `leaf` (across.py's `refund_leaf`), unless
        done before: its bundle and execution are searched for from block `from_block` (at or
        before any bundle for the leaf: the block of the deposit it refunds or repays). Raises
        NoAdminRelay, and tx.py's errors (TxRevertedError e.g. when the pool lacks the funds:
        `InsufficientSpokePoolBalanceToExecuteLeaf()`)."""
        root = one_leaf_root(leaf)
        receipts: list[Any] = []
        recorded = self._recorded(root)
        if recorded is not None and recorded[1]:
            tx = "" if recorded[1] == CLAIMED else recorded[1]
            return LeafPaid(recorded[0], tx, receipts, repeated=True)
        # RelayedRootBundle's indexed values: rootBundleId, relayerRefundRoot, slowRelayRoot
        posted = None
        if recorded is None:
            posted = await self._first(self._relayed_topic, [None, root], from_block)
        if recorded is not None:
            bundle_id = recorded[0]
        elif posted is not None:
            bundle_id = int.from_bytes(bytes(posted["topics"][1]), "big")
        else:
            receipt = await self._post(root)
            receipts.append(receipt)
            (event,) = self._pool.events.RelayedRootBundle().process_receipt(
                receipt, errors=DISCARD
            )
            bundle_id = int(event["args"]["rootBundleId"])
        self._record(root, bundle_id)
        leaf_id = int(leaf["leafId"])
        executed = await self._executed(bundle_id, leaf_id, from_block)
        if executed is not None:
            self._record(root, bundle_id, _tx_hash(executed))
            return LeafPaid(bundle_id, _tx_hash(executed), receipts, repeated=True)
        call = self._pool.functions.executeRelayerRefundLeaf(
            bundle_id, tuple(leaf[f] for f in LEAF_FIELDS), []
        )
        try:
            receipt = await self._send(self._pool.address, call)
        except TxRevertedError as exc:
            if not exc.is_error("ClaimedMerkleLeaf()"):
                raise
            executed = await self._executed(bundle_id, leaf_id, from_block)
            tx = "" if executed is None else _tx_hash(executed)
            self._record(root, bundle_id, tx or CLAIMED)
            return LeafPaid(bundle_id, tx, receipts, repeated=True)
        receipts.append(receipt)
        self._record(root, bundle_id, _tx_hash(receipt))
        return LeafPaid(bundle_id, _tx_hash(receipt), receipts)

    async def _post(self, root: bytes) -> Any:
        # A call to an address without code "succeeds" doing nothing: refuse it instead.
        if not await self._relay.w3.eth.get_code(self._relay.address):
            raise NoAdminRelay(
                f"chain {self.chain_id}: no admin relay at {self._relay.address}; refund "
                "bundles are posted only on chains deployed by chain/deploy.py"
            )
        post = self._pool.functions.relayRootBundle(root, ZERO32)
        call = self._relay.functions.relay(self._pool.address, post._encode_transaction_data())
        return await self._send(self._relay.address, call)

    async def _executed(self, bundle_id: int, leaf_id: int, from_block: int) -> Any:
        # ExecutedRelayerRefundRoot's indexed values: chainId, rootBundleId, leafId
        indexed: list[int | bytes | None] = [self.chain_id, bundle_id, leaf_id]
        return await self._first(self._executed_topic, indexed, from_block)

    async def _first(self, topic: bytes, indexed: list[int | bytes | None], from_block: int) -> Any:
        return await first_log(self._pool, topic, indexed, from_block, chunk_blocks=self._chunk)
