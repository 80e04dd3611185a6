"""Refunds of expired Across deposits paid by Across's own dataworker (issue 11): on chains we
did not deploy (`[chain] mode = "external"`) no admin relay of ours can post a refund bundle
(root_bundles.NoAdminRelay), so the hop waits for the refund instead.

Across refunds a deposit unfilled past its fillDeadline to its depositor on the origin chain
in a relayer refund leaf of a later settlement bundle (docs.across.to, "Refunds": bundles are
proposed about every 1.5 h and executed after a challenge period). The refund shows as an
`ExecutedRelayerRefundRoot` log of the origin pool whose leaf pays the depositor. A deposit's
refund is the first such log after the deposit's block that pays the depositor exactly the
deposit's input amount in its input token, and that no other deposit of this process took.

Limits (docs/decisions.md): the dataworker aggregates one leaf per address and token, so two
of our deposits refunded in one bundle show as one payment of their sum, which matches
neither: each hop then waits until `wait_s` and is reported stalled (the operator reconciles).
A refund the pool could not transfer (`deferredRefunds`) is not counted: it must first be
claimed from the pool (`claimRelayerRefund`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from web3 import Web3

from indexmaker.chain.across import event_topic, from_bytes32
from indexmaker.chain.root_bundles import LeafPaid
from indexmaker.core.errors import RetryableError


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
        self._taken: dict[tuple[str, int], int] = {}  # (tx, log index) -> deposit id
        self.waiting: set[int] = set()  # deposit ids waited for now (tests, status)

    async def refunded(self, deposit: Mapping[str, Any], from_block: int) -> LeafPaid:
        """The refund of `deposit` (decoded `FundsDeposited` args, made in block
        `from_block`): its bundle id and transaction, once its log is seen. Raises
        RefundNotSeen after `wait_s`, and the RPC's errors."""
        deposit_id, amount = int(deposit["depositId"]), int(deposit["inputAmount"])
        token = Web3.to_checksum_address(from_bytes32(deposit["inputToken"]))
        loop = asyncio.get_running_loop()
        give_up_at, cursor = loop.time() + self.wait_s, from_block
        self.waiting.add(deposit_id)
        try:
            while True:  # bounded by give_up_at
                head = await self._pool.w3.eth.block_number
                while cursor <= head:
                    last = min(head, cursor + self._max_range - 1)
                    for log in await self._logs(cursor, last):
                        if self._pays(log, token, amount, deposit_id):
                            args = log["args"]
                            tx = "0x" + bytes(log["transactionHash"]).hex()
                            return LeafPaid(int(args["rootBundleId"]), tx)
                    cursor = last + 1
                if loop.time() > give_up_at:
                    raise RefundNotSeen(
                        f"deposit {deposit_id}: no refund of {amount} to {self.depositor} on "
                        f"chain {self.chain_id} within {self.wait_s}s"
                    )
                await asyncio.sleep(self.poll_s)
        finally:
            self.waiting.discard(deposit_id)

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

    def _pays(self, log: Any, token: str, amount: int, deposit_id: int) -> bool:
        """The leaf pays the depositor `amount` of `token`, and no other deposit took it."""
        args = log["args"]
        if args["deferredRefunds"] or Web3.to_checksum_address(args["l2TokenAddress"]) != token:
            return False
        pays = any(
            Web3.to_checksum_address(who) == self.depositor and int(paid) == amount
            for who, paid in zip(args["refundAddresses"], args["refundAmounts"], strict=True)
        )
        key = ("0x" + bytes(log["transactionHash"]).hex(), int(log["logIndex"]))
        if not pays or self._taken.get(key, deposit_id) != deposit_id:
            return False
        self._taken[key] = deposit_id
        return True
