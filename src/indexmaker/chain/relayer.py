"""Our Across relayer (issue 11): reads `FundsDeposited` on the origin spoke pool and, after a
configurable delay, calls `fillRelay` on the destination pool, keeping input − output as its
fee: with `repay` (the origin pool's root bundles, chain/root_bundles.py) it is then repaid the
deposit's input on the origin from a one-leaf refund root, so its USDC over both chains grows
by exactly the fee (Across's relayer repayment, on the repayment chain = the origin here).

A fill is safe to repeat: the destination pool refuses a second fill of the same deposit
(`RelayFilled()`), which the relayer counts as done, so a restart that catches up from an
older block fills nothing twice; a fill it finds made by itself (the pool's `FilledRelay`
names the relayer) is repaid then if it was not yet — a repayment is paid at most once
(root_bundles.py). A deposit whose fill deadline has passed on the destination's clock
(`ExpiredFillDeadline()`) is given up (`expired`): its depositor is refunded on the origin
(chain/bridge.py for ours).

A fill that fails otherwise (the node refuses it, a fee spike outlasts the receipt timeout,
the relayer's USDC float is short for a moment) is logged (`relay_fill_failed`, masked as
every log line), raises one operator alert (`relay_fill_failed`) on its first failure, and
is tried again with a doubling back-off (`retry_s` up to `max_retry_s`) until it is filled,
found filled, or its fill deadline has passed on the destination's clock (issue 11 review).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from web3 import AsyncWeb3, Web3

from indexmaker.chain import artifacts
from indexmaker.chain.across import event_topic, relay_data, repayment_leaf, to_bytes32
from indexmaker.chain.across_fills import fill_scan
from indexmaker.chain.deploy import first_block
from indexmaker.chain.logs import DEFAULT_CHUNK_BLOCKS, LogFollower, check_chunk_blocks
from indexmaker.chain.root_bundles import RootBundles
from indexmaker.chain.tx import TxRevertedError, TxSender
from indexmaker.observability.logging import log_event, mask_secrets

MAX_UINT256 = (1 << 256) - 1
# Bounds the retries of one fill: at the 60 s default back-off cap, 500 tries outlast
# Across's longest fill window (a fillDeadline at most 6 h ahead, chain/deploy.py).
MAX_FILL_ATTEMPTS = 500


async def chain_clock(w3: AsyncWeb3[Any]) -> int:
    """A chain's time now (s): its pending block's, which a transaction sent now is checked
    against; the head's time stays that of the last block while the chain is idle (anvil)."""
    return int((await w3.eth.get_block("pending"))["timestamp"])


class AcrossRelayer:
    """Fills deposits from `origin` (chain id, AsyncWeb3, pool address, pool contract name) to
    the destination pool with `sender` (the relayer's account on the destination chain)."""

    def __init__(
        self,
        origin_w3: AsyncWeb3[Any],
        origin_chain_id: int,
        origin_pool: str,
        origin_contract: str,
        sender: TxSender,
        dest_w3: AsyncWeb3[Any],
        dest_chain_id: int,
        dest_pool: str,
        dest_contract: str,
        *,
        delay_s: float = 0.0,
        start_block: int = 0,
        confirmations: int = 0,
        poll_s: float = 0.5,
        repayment_chain_id: int | None = None,
        repay: RootBundles | None = None,
        log_chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
        clock_skew_s: int = 600,
        retry_s: float = 2.0,
        max_retry_s: float = 60.0,
    ) -> None:
        """`repay`: the repayment chain's root bundles (None: repayment is left to others).
        A failed fill is tried again after `retry_s`, doubling up to `max_retry_s` (s).
        Log searches read `log_chunk_blocks` per eth_getLogs from a lower bound (chain/logs.py):
        a repayment's from the deposit's block, our own fill's from the first destination
        block at or after the deposit's quote time less `clock_skew_s` (bridge.py's route)."""
        self._origin_pool = origin_w3.eth.contract(
            address=Web3.to_checksum_address(origin_pool),
            abi=artifacts.across(origin_contract)["abi"],
        )
        self._dest_pool = dest_w3.eth.contract(
            address=Web3.to_checksum_address(dest_pool),
            abi=artifacts.across(dest_contract)["abi"],
        )
        self._origin_chain_id, self._dest_chain_id = origin_chain_id, dest_chain_id
        self._sender, self._delay_s = sender, delay_s
        if not 0 < retry_s <= max_retry_s:
            raise ValueError("need 0 < retry_s <= max_retry_s")
        self._retry_s, self._max_retry_s = retry_s, max_retry_s
        self._repayment = repayment_chain_id or origin_chain_id
        self.repay = repay  # public for its store
        self._chunk, self._skew = check_chunk_blocks(log_chunk_blocks), clock_skew_s
        self._filled_topic = event_topic(artifacts.across(dest_contract)["abi"], "FilledRelay")
        topic = event_topic(artifacts.across(origin_contract)["abi"], "FundsDeposited")
        self.follower = LogFollower(
            origin_w3,
            [origin_pool],
            start_block=start_block,
            confirmations=confirmations,
            topics=[topic],
            poll_s=poll_s,
            max_range=log_chunk_blocks,
        )
        self.filled: list[int] = []  # deposit ids this relayer filled
        self.already_filled: list[int] = []  # deposit ids someone had filled before us
        self.expired: list[int] = []
        self.failed: list[tuple[int, str]] = []  # (deposit id, reason) of every failed try
        self.alerts: list[int] = []  # deposit ids whose failure raised the operator alert
        self.repaid: list[int] = []  # deposit ids whose repayment this relayer saw paid
        self._approved: set[str] = set()
        self._fills: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Follow deposits and fill them until `stop`; pending fills are cancelled then."""
        try:
            await self.follower.run(self._on_deposit, stop)
        finally:
            for task in list(self._fills):
                task.cancel()
            for task in list(self._fills):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _on_deposit(self, log: Any) -> None:
        args = dict(self._origin_pool.events.FundsDeposited().process_log(log)["args"])
        if args["destinationChainId"] != self._dest_chain_id:
            return
        task = asyncio.create_task(self._fill_later(args, int(log["blockNumber"])))
        self._fills.add(task)
        task.add_done_callback(self._fills.discard)

    async def _fill_later(self, args: dict[str, Any], block: int) -> None:
        """Fill after the delay; retry a failed fill (module docstring) with back-off."""
        await asyncio.sleep(self._delay_s)
        deposit_id, deadline = int(args["depositId"]), int(args["fillDeadline"])
        wait = self._retry_s
        for attempt in range(1, MAX_FILL_ATTEMPTS + 1):
            try:
                await self.fill(args, block)
                return
            except Exception as exc:  # one deposit's failure never stops the relayer
                reason = mask_secrets(f"{type(exc).__name__}: {exc}")
            self.failed.append((deposit_id, reason))
            log_event(
                "relay_fill_failed", logging.WARNING, deposit_id=deposit_id,
                attempt=attempt, reason=reason, retry_in_s=wait,
            )  # fmt: skip
            if attempt == 1:
                self.alerts.append(deposit_id)
                log_event(
                    "alert", logging.WARNING, code="relay_fill_failed",
                    message=f"Across deposit {deposit_id} from chain {self._origin_chain_id}: "
                    f"fill failed ({reason}); retrying until its fill deadline {deadline}",
                )  # fmt: skip
            await asyncio.sleep(wait)
            wait = min(wait * 2, self._max_retry_s)
            if await self._past_deadline(deadline):
                # No fill can land any more: the pool would refuse it (ExpiredFillDeadline).
                self.expired.append(deposit_id)
                log_event("relay_fill_expired", logging.WARNING, deposit_id=deposit_id)
                return

    async def _past_deadline(self, deadline: int) -> bool:
        try:
            return await chain_clock(self._dest_pool.w3) > deadline  # SpokePool's check
        except Exception:  # the clock unread: try the fill again (it checks the deadline)
            return False

    async def fill(self, args: dict[str, Any], block: int) -> None:
        """Fill one deposit (decoded `FundsDeposited` args, made in origin block `block`) now."""
        token = Web3.to_checksum_address(args["outputToken"][12:])
        me = self._sender.address
        if token not in self._approved:
            erc20 = self._dest_pool.w3.eth.contract(
                address=token, abi=artifacts.ours("LocalUSDC")["abi"]
            )
            approve = erc20.functions.approve(self._dest_pool.address, MAX_UINT256)
            await self._sender.send({"to": token, "data": approve._encode_transaction_data()})
            self._approved.add(token)
        call = self._dest_pool.functions.fillRelay(
            # A tuple in the ABI's component order: web3's encoder takes a struct as a tuple.
            tuple(relay_data(args, self._origin_chain_id).values()),
            self._repayment,
            to_bytes32(me),
        )
        deposit_id = int(args["depositId"])
        try:
            await self._sender.send(
                {"to": self._dest_pool.address, "data": call._encode_transaction_data()}
            )
        except TxRevertedError as exc:
            if exc.is_error("RelayFilled()"):
                self.already_filled.append(deposit_id)
                if await self._filled_by_me(args):
                    await self._get_repaid(args, block)  # a restart between fill and repayment
                return
            if exc.is_error("ExpiredFillDeadline()"):
                self.expired.append(deposit_id)
                return
            raise
        self.filled.append(deposit_id)
        await self._get_repaid(args, block)

    async def _filled_by_me(self, args: dict[str, Any]) -> bool:
        scan = await fill_scan(  # from the deposit's quote time on (across_fills.py)
            self._origin_pool.w3, self._dest_pool, self._filled_topic, self._origin_chain_id,
            args, skew_s=self._skew, chunk_blocks=self._chunk,
            relayer=to_bytes32(self._sender.address),
        )  # fmt: skip
        return await scan.first() is not None

    async def _get_repaid(self, args: dict[str, Any], block: int) -> None:
        if self.repay is None or self._repayment != self.repay.chain_id:
            return
        leaf = repayment_leaf(args, self._sender.address, self._repayment)
        await self.repay.pay(leaf, block)
        self.repaid.append(int(args["depositId"]))


def relayer_between(
    w3s: Mapping[int, AsyncWeb3[Any]],
    sections: Mapping[int, Mapping[str, Any]],
    origin: int,
    dest: int,
    sender: TxSender,
    **options: Any,
) -> AcrossRelayer:
    """Our relayer from chain `origin`'s pool to chain `dest`'s, filling with `sender` on
    `dest`; `w3s` and `sections` (chain/deploy.py's) by chain id; `options`: AcrossRelayer's
    keywords (`start_block` by default the origin's `first_block`: never from genesis)."""
    options.setdefault("start_block", first_block(sections[origin]))
    return AcrossRelayer(
        w3s[origin],
        origin,
        sections[origin]["spoke_pool"],
        sections[origin]["spoke_pool_contract"],
        sender,
        w3s[dest],
        dest,
        sections[dest]["spoke_pool"],
        sections[dest]["spoke_pool_contract"],
        **options,
    )
