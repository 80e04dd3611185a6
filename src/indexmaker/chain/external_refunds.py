"""Refunds of expired Across deposits paid by Across's own dataworker (issue 11): on chains we
did not deploy (`[chain] mode = "external"`) no admin relay of ours can post a refund bundle
(root_bundles.NoAdminRelay), so the hop waits for the refund instead.

Across refunds a deposit unfilled past its fillDeadline to its depositor on the origin chain
in a relayer refund leaf of a later settlement bundle (docs.across.to, "Refunds": bundles are
proposed about every 1.5 h and executed after a challenge period). The refund shows as an
`ExecutedRelayerRefundRoot` log of the origin pool whose leaf pays the depositor. The
dataworker sums what one bundle owes an address in a token into one entry, so one leaf may
refund several of our deposits at once: every expired deposit of this process waiting for its
refund is registered here, and a leaf paying us is matched to the set of waiting deposits
whose input amounts sum to exactly its payment (chain/refund_matching.py `cover`), whichever
hop's look-up reads the log first. The match is kept in a ledger (the store's `across_refunds`
in serve: `keep_in`), looked up before any wait: after a restart a hop whose refund was
matched carries on at once, and a leaf matched once is never counted again.

Limits (docs/decisions.md): a leaf paying us more than any set of our waiting deposits (the
issuer's address also repaid as a relayer there, or a deposit whose hop is not running) is
left unmatched: the hops wait until `wait_s` and are reported stalled (resent later, they
register again). A refund the pool could not transfer (`deferredRefunds`) is not counted: it
must first be claimed from the pool (`claimRelayerRefund`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from web3 import Web3

from indexmaker.chain.across import event_topic, from_bytes32
from indexmaker.chain.refund_matching import LeafMatch, MemoryLedger, RefundLedger, Waiting, cover
from indexmaker.chain.root_bundles import LeafPaid
from indexmaker.core.errors import RetryableError
from indexmaker.observability.logging import log_event


class RefundNotSeen(RetryableError):
    """No refund of an expired deposit arrived within the wait."""


class DataworkerRefunds:
    """Waits for Across's refunds of expired deposits by `depositor` on `pool` (the origin's
    spoke pool, a bound web3 contract) of chain `chain_id`: at most `wait_s` per deposit,
    reading `max_range` blocks of logs per call every `poll_s`."""

    def __init__(
        self,
        pool: Any,
        chain_id: int,
        depositor: str,
        *,
        wait_s: float = 4 * 3600.0,
        poll_s: float = 5.0,
        max_range: int = 2_000,
    ) -> None:
        self._pool = pool
        self._topic = event_topic(pool.abi, "ExecutedRelayerRefundRoot")
        self.chain_id, self.depositor = chain_id, Web3.to_checksum_address(depositor)
        self.wait_s, self.poll_s, self._max_range = wait_s, poll_s, max_range
        self.ledger: RefundLedger = MemoryLedger()
        # Deposits waited for now, by id: (deposit, its input token) (all hops of the bridge).
        self._waiting: dict[int, tuple[Waiting, str]] = {}
        self._unmatched: set[tuple[str, int]] = set()  # leaves logged as matching nothing

    def keep_in(self, ledger: RefundLedger) -> None:
        """Keep matches in `ledger` (the store's), read before any wait."""
        self.ledger = ledger

    @property
    def waiting(self) -> set[int]:
        """Deposit ids waited for now (tests, status)."""
        return set(self._waiting)

    async def refunded(self, deposit: Mapping[str, Any], from_block: int) -> LeafPaid:
        """The refund of `deposit` (decoded `FundsDeposited` args, made in block
        `from_block`): its bundle id and transaction, once a leaf matched to it is seen (at
        once when the ledger holds its match: `repeated`). Raises RefundNotSeen after
        `wait_s`, and the RPC's errors."""
        deposit_id, amount = int(deposit["depositId"]), int(deposit["inputAmount"])
        known = self.ledger.matched(self.chain_id, deposit_id)
        if known is not None:
            return LeafPaid(known.bundle_id, known.tx, repeated=True)
        token = Web3.to_checksum_address(from_bytes32(deposit["inputToken"]))
        loop = asyncio.get_running_loop()
        give_up_at, cursor = loop.time() + self.wait_s, from_block
        self._waiting[deposit_id] = (Waiting(deposit_id, amount, from_block), token)
        try:
            while True:  # bounded by give_up_at
                head = await self._pool.w3.eth.block_number
                while cursor <= head:
                    last = min(head, cursor + self._max_range - 1)
                    for log in await self._logs(cursor, last):
                        self._match(log)
                    cursor = last + 1
                # Matched by this look-up or by another hop's (both read the same leaves).
                mine = self.ledger.matched(self.chain_id, deposit_id)
                if mine is not None:
                    return LeafPaid(mine.bundle_id, mine.tx)
                if loop.time() > give_up_at:
                    raise RefundNotSeen(
                        f"deposit {deposit_id}: no refund of {amount} to {self.depositor} on "
                        f"chain {self.chain_id} within {self.wait_s}s"
                    )
                await asyncio.sleep(self.poll_s)
        finally:
            self._waiting.pop(deposit_id, None)

    async def _logs(self, first: int, last: int) -> list[Any]:
        # ExecutedRelayerRefundRoot's indexed values: chainId, rootBundleId, leafId
        topics: list[Any] = [self._topic, self.chain_id.to_bytes(32, "big")]
        raw = await self._pool.w3.eth.get_logs(
            {
                "address": self._pool.address,
                "fromBlock": first,
                "toBlock": last,
                "topics": topics,
            }
        )
        return [self._pool.events.ExecutedRelayerRefundRoot().process_log(g) for g in raw]

    def _match(self, log: Any) -> None:
        """Match the leaf of `log` to the waiting deposits it refunds, unless it pays us
        nothing, was deferred, was matched before or matches no set of them."""
        args = log["args"]
        if args["deferredRefunds"]:
            return
        tx, index = "0x" + bytes(log["transactionHash"]).hex(), int(log["logIndex"])
        if self.ledger.leaf_taken(self.chain_id, tx, index):
            return
        paid = sum(
            int(amount)
            for who, amount in zip(args["refundAddresses"], args["refundAmounts"], strict=True)
            if Web3.to_checksum_address(who) == self.depositor
        )
        if paid == 0:
            return
        token = Web3.to_checksum_address(args["l2TokenAddress"])
        waiting = [
            w
            for w, of in self._waiting.values()
            if of == token and self.ledger.matched(self.chain_id, w.deposit_id) is None
        ]
        ids = cover(paid, int(log["blockNumber"]), waiting)
        if ids is None:
            if (tx, index) not in self._unmatched:  # logged once per leaf, not every poll
                self._unmatched.add((tx, index))
                log_event(
                    "across_refund_unmatched",
                    tx=tx,
                    paid=paid,
                    waiting=",".join(str(w.deposit_id) for w in waiting),
                )
            return
        match = LeafMatch(tx, index, int(args["rootBundleId"]), ids)
        self.ledger.record(self.chain_id, match)
        log_event(
            "across_refund_matched",
            tx=tx,
            bundle_id=match.bundle_id,
            paid=paid,
            deposits=",".join(str(i) for i in ids),
        )
