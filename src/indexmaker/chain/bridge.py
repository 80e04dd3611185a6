"""`BridgePort` over Across (issue 11): collateral crosses from custody on the source chain to
the trading chain's custody (the issuer's trading wallet on Base) through Across's spoke pools.

One hop, each step keyed by the hop key (chain/hops.py) so a retry or a restart never moves
twice:
1. custody releases the amount to the issuer's account on the source chain
   (release id keccak("transfer:<key>"): a second release is refused by the contract);
2. the issuer deposits it into the source spoke pool with `unsafeDeposit`, whose deposit id is
   fixed by (sender, depositor, nonce = keccak("across:<key>")): before sending, the pool's
   `FundsDeposited` logs are searched for that id, so an earlier attempt's deposit is reused;
   output = input − the relayer's fee (`fee`, USDC), fill deadline `fill_deadline_s` after the
   source chain's latest block;
3. a relayer (ours: chain/relayer.py) fills on the destination; the hop completes when the
   destination pool's `FilledRelay` for (origin chain, deposit id) is seen.
A deposit still unfilled when the destination's clock passes its fill deadline can never be
filled: it is refunded to its depositor (the issuer) on the origin by a one-leaf refund bundle
(chain/root_bundles.py: paid once, across restarts; on external chains Across's dataworker
pays it and the hop waits for it: chain/external_refunds.py), and the hop deposits the refund again
under the next nonce (keccak("across:<key>#<n>"): a new deposit id, looked up before sending
like the first). One run of the hop makes at most `max_deposits` new deposits; then it fails
with `DepositsExpired` (reported unknown: the amount waits in the issuer's account on the
origin). A later run of the same hop (the router's resend, recovery, or the router resuming a
given-up lot) walks the deposits already made (filled: done; expired: refund found paid) and
carries on with the next nonce: the refund is deposited again, never the custody's amount.
The lot receives the filled deposit's output amount less the gas of this hop's transactions in
USDC (release, deposits, refund bundles); its fee is the rest (bridge fee + gas). The gas is
that of the transactions on chain, whichever process sent them: a step found done by an
earlier run (a restart, a resend) adds its transaction's receipt, found by the step's own
event, so a hop interrupted anywhere is charged exactly what an uninterrupted one is. The
pool's allowance (one `approve` of the issuer's USDC, the first time) is set-up, not a hop's:
its gas is logged (`across_pool_approved`), charged to no lot (docs/decisions.md).

Timing (issue 11): a deposit is waited for until filled or its fill deadline has passed on the
destination's clock (`fill_deadline_s`, 1 h by default), never cut short by the hop timeout:
cut short, the hop would be resent and given up before any refund could happen. `timeout_s`
bounds each other step (reading or sending the deposit, a refund), and the wait past the
deadline for a destination clock that does not advance; a step over it is reported unknown
(`HopStalled`) and the router asks and resends it, carrying on from the deposits on chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from web3 import AsyncWeb3, Web3

from indexmaker.chain import artifacts
from indexmaker.chain.across import event_topic, expired_refund_leaf, one_leaf_root, to_bytes32
from indexmaker.chain.across_fills import fill_scan
from indexmaker.chain.across_route import AcrossRoute, route_between
from indexmaker.chain.connector import Web3ChainPort
from indexmaker.chain.eth_price import FixedEthPrice, PriceSource
from indexmaker.chain.external_refunds import DataworkerRefunds
from indexmaker.chain.hops import HopRunner, gas_cost_usdc, tx_hash
from indexmaker.chain.logs import LogScan, first_log
from indexmaker.chain.relayer import MAX_UINT256, chain_clock
from indexmaker.chain.root_bundles import LeafPaid, NoAdminRelay, RootBundles
from indexmaker.core.chain_events import HopReport, QueryHop, RouteCollateral
from indexmaker.core.errors import InvalidInputError, RetryableError
from indexmaker.core.money import exact_sub, units_to_usdc, usdc_to_units
from indexmaker.core.ports import EventSink
from indexmaker.observability.logging import log_event

ZERO32 = b"\x00" * 32
__all__ = ["AcrossBridge", "AcrossRoute", "DepositsExpired", "HopStalled", "route_between"]


class DepositsExpired(RetryableError):
    """Every deposit the hop may make expired unfilled (each refunded to the issuer)."""


class HopStalled(RetryableError):
    """A step of the hop took longer than the route's `timeout_s` (an RPC or a chain stuck)."""


class AcrossBridge:
    """The `across` bridge port; `origin` is the source chain's port (custody, issuer account)."""

    def __init__(
        self,
        origin: Web3ChainPort,
        dest_w3: AsyncWeb3[Any],
        route: AcrossRoute,
        price: PriceSource | None = None,
        refunds: RootBundles | None = None,
    ) -> None:
        """`price`: USDC per ETH for the hop's gas (chain/eth_price.py; default: the fixed
        `route.eth_usdc`); `refunds`: the origin pool's refund bundles (default: posted by
        the origin's issuer, the local chains' cross-domain admin)."""
        self.origin, self.route = origin, route
        self.price = price or FixedEthPrice(route.eth_usdc)
        self._dest_w3 = dest_w3
        origin_abi = artifacts.across(route.origin_pool_contract)["abi"]
        dest_abi = artifacts.across(route.dest_pool_contract)["abi"]
        self._pool = origin.w3.eth.contract(
            address=Web3.to_checksum_address(route.origin_pool), abi=origin_abi
        )
        self._dest_pool = dest_w3.eth.contract(
            address=Web3.to_checksum_address(route.dest_pool), abi=dest_abi
        )
        self._deposited_topic = event_topic(origin_abi, "FundsDeposited")
        self._filled_topic = event_topic(dest_abi, "FilledRelay")
        self._relayed_topic = event_topic(origin_abi, "RelayedRootBundle")
        # No timeout over the whole hop: a deposit is waited for until its fill deadline, and
        # every other step is bounded by route.timeout_s (_step).
        self.runner = HopRunner("across", None)
        self._approved = False
        self._chunk = route.log_chunk_blocks
        self.refunds = refunds or RootBundles(
            origin.w3,
            origin.settings.chain_id,
            route.origin_pool,
            route.origin_pool_contract,
            origin.tx.address,
            origin.send,
            chunk_blocks=route.log_chunk_blocks,
        )
        self.dataworker = DataworkerRefunds(
            self._pool,
            origin.settings.chain_id,
            origin.tx.address,
            wait_s=route.refund_wait_s,
            poll_s=route.refund_poll_s,
            max_range=route.log_chunk_blocks,
        )
        self.refunded: list[LeafPaid] = []  # expired deposits' refunds seen by this process

    @property
    def name(self) -> str:
        return self.route.name

    async def start(self, sink: EventSink) -> None:
        self.runner.start(sink)

    async def stop(self) -> None:
        await self.runner.stop()

    async def hop_status(self, query: QueryHop) -> HopReport:
        """As `HopRunner.status` (chain/hops.py)."""
        return self.runner.status(query)

    async def relay(self, command: RouteCollateral) -> None:
        if command.source != self.origin.settings.designation:
            raise InvalidInputError(
                "source", f"across starts at {self.origin.settings.designation}"
            )
        if command.amount <= self.route.fee:
            raise InvalidInputError("amount", f"{command.amount} does not cover the bridge fee")
        self.runner.submit(command, self._cross)

    async def deposit_id(self, key: str, attempt: int = 0) -> int:
        """The deposit id of the hop's `attempt`-th deposit (fixed before it is made)."""
        me = self.origin.tx.address
        call = self._pool.functions.getUnsafeDepositId(me, to_bytes32(me), _nonce(key, attempt))
        return int(await call.call())

    async def _cross(self, key: str, command: RouteCollateral) -> tuple[Decimal, Decimal]:
        receipts: dict[str, Any] = {}  # the hop's transactions on chain, by hash
        made, attempt = 0, 0
        low = self._lower_bound(command)
        while True:  # bounded: at most max_deposits new deposits, each refunded or filled
            async with self._step(f"deposit {attempt} of hop {key}"):
                log = await self._deposit_log(key, attempt, low)
                if log is None:
                    if made == self.route.max_deposits:
                        raise DepositsExpired(
                            f"{made} deposits expired unfilled; refunded to "
                            f"{self.origin.tx.address} on chain {self.origin.settings.chain_id}"
                        )
                    log = await self._deposit(key, attempt, command, receipts, low)
                    made += 1
                else:  # made before (a restart, a resend): its transactions are the hop's too
                    if attempt == 0:
                        await self._add_tx(receipts, await self._released_tx(key, low))
                    await self._add_tx(receipts, tx_hash(log))
            deposit = dict(self._pool.events.FundsDeposited().process_log(log)["args"])
            if await self._filled_in_time(deposit):
                self.origin.tx.crash.step("across_filled")
                gas = await self._gas(list(receipts.values()))
                output = units_to_usdc(int(deposit["outputAmount"]))
                received = max(exact_sub(output, gas), Decimal(0))
                return received, exact_sub(command.amount, received)
            await self._refund(key, deposit, int(log["blockNumber"]), receipts)
            attempt += 1

    @contextlib.asynccontextmanager
    async def _step(self, what: str) -> AsyncIterator[None]:
        """A step of the hop, bounded by the route's `timeout_s` (HopStalled past it)."""
        try:
            async with asyncio.timeout(self.route.timeout_s):
                yield
        except TimeoutError:
            raise HopStalled(f"{what}: stalled for {self.route.timeout_s}s") from None

    def _lower_bound(self, command: RouteCollateral) -> int:
        """The origin block the hop's log searches start at: the command's `from_block` (the
        lot's deposit block, before any step of the hop), else the origin port's first block."""
        return max(command.from_block, self.origin.settings.start_block)

    async def _deposit_log(self, key: str, attempt: int, low: int) -> Any:
        """The `FundsDeposited` log of the hop's `attempt`-th deposit (made at or after origin
        block `low`), None when not made."""
        deposit_id = await self.deposit_id(key, attempt)
        # FundsDeposited's indexed values: destinationChainId, depositId, depositor
        indexed = [None, deposit_id]
        return await first_log(
            self._pool, self._deposited_topic, indexed, low, chunk_blocks=self._chunk
        )

    async def _released_tx(self, key: str, low: int) -> str:
        return await self.origin.released_tx(f"transfer:{key}", low)

    async def _add_tx(self, receipts: dict[str, Any], tx: str) -> None:
        """Add transaction `tx`'s receipt (0x-hex hash) to the hop's, once."""
        if tx and tx not in receipts:
            receipts[tx] = await self.origin.w3.eth.get_transaction_receipt(tx)  # type: ignore[arg-type]

    async def _gas(self, receipts: list[Any]) -> Decimal:
        return gas_cost_usdc(receipts, await self.price.eth_usdc()) if receipts else Decimal(0)

    async def _deposit(
        self, key: str, attempt: int, command: RouteCollateral, receipts: dict[str, Any], low: int
    ) -> Any:
        """Make the hop's `attempt`-th deposit: its `FundsDeposited` log. The first takes the
        amount from custody; a later one redeposits the refund of the one before."""
        origin, route = self.origin, self.route
        me = origin.tx.address
        units = usdc_to_units(command.amount)
        output = units - usdc_to_units(route.fee)
        if attempt == 0:
            released = await origin.release(f"transfer:{key}", me, command.amount)
            if released is None:  # released by an earlier run: its transaction all the same
                await self._add_tx(receipts, await self._released_tx(key, low))
            else:
                receipts[tx_hash(released)] = released
                origin.tx.crash.step("across_released")
        await self._approve(units)
        # The release settled what an earlier run left pending (tx.py `recover`): a deposit
        # sent just before a crash may have been mined since the look-up above.
        earlier = await self._deposit_log(key, attempt, low)
        if earlier is not None:
            await self._add_tx(receipts, tx_hash(earlier))
            return earlier
        now = int((await origin.w3.eth.get_block("latest"))["timestamp"])
        # The deadline is checked on the destination's clock (SpokePool.fillRelay): counted
        # from the later of both clocks, so a destination ahead does not expire it at once.
        dest_now = await chain_clock(self._dest_w3)
        call = self._pool.functions.unsafeDeposit(
            to_bytes32(me),
            to_bytes32(route.recipient),
            to_bytes32(origin.settings.usdc),
            to_bytes32(route.output_token),
            units,
            output,
            route.dest_chain_id,
            ZERO32,
            _nonce(key, attempt),
            now,
            max(now, dest_now) + route.fill_deadline_s,
            0,
            b"",
        )
        receipt = await origin.send(
            self._pool.address, call, recorded_step="across_deposit_recorded"
        )
        receipts[tx_hash(receipt)] = receipt
        origin.tx.crash.step("across_deposited")  # mined; the relayer has not filled yet
        (log,) = [g for g in receipt["logs"] if bytes(g["topics"][0]) == self._deposited_topic]
        return log

    async def _approve(self, units: int) -> None:
        """Let the origin pool take the issuer's USDC (once: the maximum), as set-up: its gas
        is logged, charged to no hop (a crash between it and the deposit would leave it
        uncharged, so no lot can be charged it exactly)."""
        if self._approved:
            return
        origin = self.origin
        usdc, me = origin.usdc_contract, origin.tx.address
        if int(await usdc.functions.allowance(me, self._pool.address).call()) < units:
            call = usdc.functions.approve(self._pool.address, MAX_UINT256)
            receipt = await origin.send(usdc.address, call)
            gas = await self._gas([receipt])
            log_event("across_pool_approved", tx=tx_hash(receipt), gas=str(gas))
        self._approved = True

    async def _filled_in_time(self, deposit: dict[str, Any]) -> bool:
        """Wait until the deposit is filled (True) or its fill deadline has passed on the
        destination's clock without a fill (False: no fill can come any more). HopStalled
        when that clock is still before the deadline `timeout_s` after it should have passed
        (wall time), or a read takes longer than `timeout_s`."""
        deposit_id = int(deposit["depositId"])
        deadline = int(deposit["fillDeadline"])
        loop = asyncio.get_running_loop()
        give_up_at: float | None = None
        fills: LogScan | None = None  # from the destination's lower bound, read on as it grows
        while True:  # bounded by give_up_at
            async with self._step(f"the fill of deposit {deposit_id}"):
                # The destination's clock now: the pending block's time, which a fill sent
                # now is checked against (an idle anvil's head keeps the time of its last
                # block). Read before the head: a fill after the head lands in a block at
                # least that late, so a clock past the deadline with no fill up to the head
                # means expired for good.
                clock = await chain_clock(self._dest_w3)
                head = await self._dest_w3.eth.block_number
                if fills is None:  # across_fills.py: from the deposit's quote time on
                    fills = await fill_scan(
                        self.origin.w3, self._dest_pool, self._filled_topic,
                        self.origin.settings.chain_id, deposit,
                        skew_s=self.route.clock_skew_s, chunk_blocks=self._chunk,
                    )  # fmt: skip
                if await fills.first(head) is not None:
                    return True
            if clock > deadline:  # SpokePool: fillDeadline < currentTime
                return False
            if give_up_at is None:
                give_up_at = loop.time() + (deadline - clock) + self.route.timeout_s
            elif loop.time() > give_up_at:
                raise HopStalled(
                    f"deposit {deposit_id}: chain {self.route.dest_chain_id}'s clock {clock} "
                    f"still before its fill deadline {deadline}"
                )
            await asyncio.sleep(self.route.poll_s)

    async def _refund(
        self, key: str, deposit: dict[str, Any], block: int, receipts: dict[str, Any]
    ) -> None:
        """Have the expired deposit (made in `block`) refunded to its depositor (the issuer)
        on the origin, once (root_bundles.py); the refund's transactions (the bundle's posting
        and the leaf's execution, also when an earlier run made them) are the hop's gas. On
        chains without our admin relay (external ones) Across's dataworker refunds it: waited
        for, up to `refund_wait_s` (external_refunds.py), and its transactions are not ours."""
        leaf = expired_refund_leaf(deposit, self.origin.settings.chain_id)
        try:
            async with self._step(f"refund of deposit {deposit['depositId']} of hop {key}"):
                paid = await self.refunds.pay(leaf, block)
        except NoAdminRelay:
            paid = await self.dataworker.refunded(deposit, block)
        else:
            for receipt in paid.receipts:
                receipts[tx_hash(receipt)] = receipt
            # RelayedRootBundle's indexed values: rootBundleId, relayerRefundRoot, slowRelayRoot
            indexed = [None, one_leaf_root(leaf)]
            posted = await first_log(
                self._pool, self._relayed_topic, indexed, block, chunk_blocks=self._chunk
            )
            await self._add_tx(receipts, "" if posted is None else tx_hash(posted))
            await self._add_tx(receipts, paid.execute_tx)
        self.refunded.append(paid)
        log_event(
            "across_deposit_refunded",
            logging.WARNING,
            hop=key,
            deposit_id=int(deposit["depositId"]),
            amount=str(units_to_usdc(int(deposit["inputAmount"]))),
            bundle_id=paid.bundle_id,
            tx=paid.execute_tx,
            gas=str(await self._gas(paid.receipts)),
            repeated=paid.repeated,
        )


def _nonce(key: str, attempt: int) -> int:
    """The unsafeDeposit nonce of a hop's `attempt`-th deposit: keccak("across:<key>"), then
    keccak("across:<key>#<attempt>") for a redeposit after a refund."""
    text = f"across:{key}" if attempt == 0 else f"across:{key}#{attempt}"
    return int.from_bytes(Web3.keccak(text=text), "big")
