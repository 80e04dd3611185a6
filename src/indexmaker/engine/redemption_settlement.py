"""Settling redemptions (issue 12): burns per sell batch, then release, withdrawal, payout.

Exactly the units a sell batch sold for a redemption are burned when the batch completes,
once per (redemption, batch) (`R<n>-B<batch>`; cumulative rounding to the token's 18 decimals,
so burns add up to what was sold). When a redemption sells no more and its burns are confirmed,
its unsold units are released, down(gross) − up(exchange fee) leaves the exchange over the
withdraw hop and is paid to the client's address on the trading chain, both keyed by the
redemption's id (a failure resends the same id: never a second withdrawal); a client of a
chain in `return_hops` is paid there, after the proceeds crossed its bridge from the trading
chain (transfer id `R<n>~return`, the bridge's fee added to the withdrawal fee); the invoice
follows the payout. Failures past `ATTEMPTS` sends stay put for the operator.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from indexmaker.core.events import (
    Alert,
    BurnConfirmed,
    BurnFailed,
    BurnIndex,
    Command,
    HopCompleted,
    HopFailed,
    HopReport,
    HopState,
    HopStatusUnknown,
    QueryHop,
    ReleaseIndex,
    RouteCollateral,
    SendToClient,
    WithdrawalCompleted,
    WithdrawalFailed,
    WithdrawCollateral,
)
from indexmaker.core.ids import (
    Address,
    BatchId,
    ClientKey,
    Designation,
    PaymentId,
    TransferId,
    WithdrawalId,
)
from indexmaker.core.money import exact_sub, round_index_down
from indexmaker.core.redemption_events import RedemptionBurn, RedemptionStatus
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.pending_hops import PendingHops
from indexmaker.engine.redemption_reports import build_redemption_invoice, proceeds_parts
from indexmaker.engine.sell_batches import DUST
from indexmaker.engine.sell_proceeds import WithdrawalFees
from indexmaker.model.redemption import Redemption, RedemptionState

ZERO = Decimal(0)
RETURN = "~return"  # a redemption's transfer id + this: its proceeds crossing back
ATTEMPTS = 3  # sends of one burn/withdrawal/payout before a failure goes to the operator
_S = RedemptionState


class RedemptionSettlement:
    def __init__(
        self,
        config: SolverConfig,
        out: list[Command],
        by_id: dict[PaymentId, Redemption],
        report: Callable[[Redemption, RedemptionStatus, str | None], None],
        forget: Callable[[Redemption], None],
        exchange: Designation,
        trading_chain: Designation,
    ) -> None:
        self.config = config
        self.out = out
        self._by_id = by_id  # the manager's registry of every redemption
        self._report = report
        self._forget = forget
        self._exchange = exchange
        self._trading_chain = trading_chain
        self._burns: dict[PaymentId, Redemption] = {}
        self._attempts: dict[str, int] = {}
        self.paid: list[Redemption] = []
        # The time of the input being handled (set by the engine): invoices are stamped with it.
        self.now: datetime | None = None
        # The engine's watch on hops reported PENDING (set by the engine): withdrawals too.
        self.pending_hops: PendingHops | None = None
        # What withdrawing and paying out costs per client chain (sell floors and quotes).
        self.withdrawal_fees = WithdrawalFees(config.withdrawal_fee, config.withdrawal_fee_rate)

    def owns_burn(self, payment_id: PaymentId) -> bool:
        return payment_id in self._burns

    def on_burn(self, event: BurnConfirmed | BurnFailed) -> None:
        redemption = self._burns.get(event.payment_id)
        if redemption is None:
            self.out.append(Alert("unknown_burn", f"{event!r}"))
            return
        quantity = redemption.pending_burns[event.payment_id]
        if isinstance(event, BurnFailed):
            command = self._burn_command(redemption, event.payment_id, quantity)
            self._retry(event.payment_id, command, event.retryable, event.reason)
            return
        del self._burns[event.payment_id]
        del redemption.pending_burns[event.payment_id]
        redemption.burns.append(RedemptionBurn(event.payment_id, quantity, event.tx_hash))
        if redemption.state is _S.SETTLING and not redemption.pending_burns:
            self.settle(redemption)

    def expected_withdrawal_fee(self, client: ClientKey, amount: Decimal) -> Decimal:
        """What withdrawing `amount` USDC of proceeds and paying it out to `client` is
        expected to cost (sell floors and quotes: engine/sell_proceeds.py `WithdrawalFees`),
        a return hop's known cost included before the first payout to the client's chain."""
        seed = dict(self.config.return_hop_fees).get(client[0], ZERO)
        return self.withdrawal_fees.expected(client[0], amount, seed)

    def owns_transfer(self, transfer_id: TransferId) -> bool:
        return PaymentId(transfer_id.removesuffix(RETURN)) in self._by_id

    def withdrawing(self, transfer_id: TransferId) -> bool:
        """Whether the withdrawal (or the crossing back) of that id is still under way (a
        pending hop to ask about)."""
        crossing = transfer_id.endswith(RETURN)
        redemption = self._by_id.get(PaymentId(transfer_id.removesuffix(RETURN)))
        state = _S.BRIDGING if crossing else _S.WITHDRAWING
        return redemption is not None and redemption.state is state

    def on_withdrawn(self, event: HopCompleted | HopFailed | HopStatusUnknown | HopReport) -> None:
        """The proceeds left the exchange, or crossed back to the client's chain (or did not,
        or nobody knows yet): pay the client, or cross first; or resend under the same id (a
        refusal, or no trace of it); or ask."""
        crossing = event.transfer_id.endswith(RETURN)
        redemption = self._by_id[PaymentId(event.transfer_id.removesuffix(RETURN))]
        if redemption.state is not (_S.BRIDGING if crossing else _S.WITHDRAWING):
            return  # a repeated report of a hop already counted
        command = (
            self._return_command(redemption) if crossing else self._withdraw_command(redemption)
        )
        query = QueryHop(event.transfer_id, command.bridge, command.amount)
        pending = self.pending_hops
        if isinstance(event, HopStatusUnknown):  # a timeout: ask, never resend on a guess
            self.out.append(query)
            return
        if isinstance(event, HopReport) and event.state is HopState.PENDING:
            if pending is not None and self.now is not None:  # asked again (pending_hops.py)
                pending.on_pending(query, self.now)
            return  # its completion will come
        if pending is not None:
            pending.forget(event.transfer_id)  # done, failed or not found: no more asking
        if isinstance(event, HopFailed):
            self._retry(event.transfer_id, command, True, event.reason)
            return
        if isinstance(event, HopReport):
            if event.state is HopState.NOT_FOUND:
                self._retry(event.transfer_id, command, True, event.reason or "not found")
            if event.state is not HopState.DONE or event.amount_received is None:
                return
            event = HopCompleted(event.transfer_id, event.amount_received, event.fee or ZERO)
        if crossing:  # the bridge's fee (what did not arrive) is the client's, as on deposit
            redemption.withdrawal_fee += redemption.received - event.amount_received
        else:
            redemption.withdrawal_fee = redemption.withdrawn - event.amount_received
        redemption.received = event.amount_received
        if not crossing and self._return_hop(redemption) is not None:
            redemption.move_to(_S.BRIDGING)
            self.out.append(self._return_command(redemption))
            return
        redemption.move_to(_S.PAYING)
        self.out.append(self._payout_command(redemption))

    def _return_hop(self, redemption: Redemption) -> tuple[str, Designation] | None:
        """(bridge, designation) the client's chain is paid over, or None: the trading chain."""
        for chain_id, bridge, designation in self.config.return_hops:
            if chain_id == redemption.client[0]:
                return bridge, Designation(designation)
        return None

    def _return_command(self, redemption: Redemption) -> RouteCollateral:
        hop = self._return_hop(redemption)
        assert hop is not None
        transfer_id = TransferId(f"{redemption.redemption_id}{RETURN}")
        return RouteCollateral(
            transfer_id,
            redemption.client,
            hop[0],
            self._trading_chain,
            hop[1],
            redemption.received,
            hop_key=transfer_id,
            # The escrow was the redemption's first step on the trading chain (issue 11).
            from_block=redemption.escrow_block,
        )

    def owns_payout(self, withdrawal_id: WithdrawalId) -> bool:
        return PaymentId(withdrawal_id) in self._by_id

    def on_paid(self, event: WithdrawalCompleted | WithdrawalFailed) -> None:
        redemption = self._by_id[PaymentId(event.withdrawal_id)]
        if isinstance(event, WithdrawalFailed):
            command = self._payout_command(redemption)
            self._retry(event.withdrawal_id, command, event.retryable, event.reason)
            return
        if redemption.state is not _S.PAYING:
            return
        redemption.payout_tx = event.tx_hash
        redemption.withdrawal_fee += event.fee
        self.withdrawal_fees.record(
            redemption.client[0], redemption.withdrawn, redemption.withdrawal_fee
        )
        self._finish_paid(redemption)

    def _retry(self, key: str, command: Command, retryable: bool, reason: str) -> None:
        attempts = self._attempts.get(key, 1)
        if retryable and attempts < ATTEMPTS:
            self._attempts[key] = attempts + 1
            self.out.append(command)  # the same idempotency key: never done twice
            return
        self.out.append(
            Alert("redemption_stuck", f"{key} failed after {attempts} attempt(s): {reason}")
        )

    def burn(self, redemption: Redemption, batch_id: BatchId) -> None:
        sold = redemption.sold
        # Sold to within DUST is sold whole (as _complete closes it): a redemption split over
        # batches (a restart found a batch's orders unknown at the venue) engages its rest to
        # 34 digits, a hair under the quantity, and floor(sold) would leave the 18th decimal's
        # unit unburned and returned (issue 10: the crash run ended 1e-18 off the calm run).
        if sold < redemption.quantity and exact_sub(redemption.quantity, sold) <= DUST:
            sold = redemption.quantity
        target = round_index_down(sold)  # cumulative: burns add up exactly
        quantity = target - redemption.burn_requested
        if quantity <= 0:
            return
        payment_id = PaymentId(f"{redemption.redemption_id}-B{batch_id}")
        redemption.burn_requested = target
        redemption.pending_burns[payment_id] = quantity
        self._burns[payment_id] = redemption
        self.out.append(self._burn_command(redemption, payment_id, quantity))

    @staticmethod
    def _burn_command(
        redemption: Redemption, payment_id: PaymentId, quantity: Decimal
    ) -> BurnIndex:
        """Burned from the redemption's escrow in custody (keyed by its id)."""
        return BurnIndex(
            payment_id,
            redemption.client,
            redemption.symbol,
            quantity,
            escrow_id=redemption.redemption_id,
        )

    def close(self, redemption: Redemption, why: str) -> None:
        """No more units are sold: settle once the burns are confirmed."""
        redemption.closing = why
        redemption.move_to(_S.SETTLING)
        status = RedemptionStatus.SOLD if why == "sold" else RedemptionStatus.IN_PROGRESS
        self._report(redemption, status, None if why == "sold" else why)
        if not redemption.pending_burns:
            self.settle(redemption)

    def settle(self, redemption: Redemption) -> None:
        returned = redemption.escrowed - redemption.burn_requested
        if returned > 0:
            self.out.append(
                ReleaseIndex(
                    redemption.redemption_id, redemption.client, redemption.symbol, returned
                )
            )
        gross, fee = proceeds_parts(redemption)
        amount = gross - fee
        if amount <= 0:
            redemption.move_to(_S.PAID)
            self._finish_paid(redemption)
            return
        redemption.withdrawn = amount
        redemption.move_to(_S.WITHDRAWING)
        self.out.append(self._withdraw_command(redemption))

    def _withdraw_command(self, redemption: Redemption) -> RouteCollateral:
        return RouteCollateral(
            TransferId(redemption.redemption_id),
            redemption.client,
            self.config.withdraw_bridge,
            self._exchange,
            self._trading_chain,
            redemption.withdrawn,
        )

    def _payout_command(self, redemption: Redemption) -> WithdrawCollateral:
        hop = self._return_hop(redemption)
        return WithdrawCollateral(
            WithdrawalId(redemption.redemption_id),
            redemption.client,
            self._trading_chain if hop is None else hop[1],
            Address(redemption.client[1]),
            redemption.received,
        )

    def _finish_paid(self, redemption: Redemption) -> None:
        if redemption.state is _S.PAYING:
            redemption.move_to(_S.PAID)
        self._forget(redemption)
        self.paid.append(redemption)
        at = self.now if self.now is not None else redemption.received_at
        invoice = build_redemption_invoice(redemption, at)
        self.out.append(SendToClient(redemption.client, invoice))
