"""The open redemptions and what their clients and the chain say about them (issue 12).

A checked sell order opens a redemption and asks for its tokens in custody (`EscrowIndex`);
the chain's answer readies or rejects it. The client's cancel and an opposite-side buy (SPEC
§3) take off index units not yet sold or engaged. Status reports and hold notices to the
client go out from here. Selling in batches is `redemptions.RedemptionManager`, which extends
this class; payout is `redemption_settlement.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from indexmaker.core.events import (
    Alert,
    BurnIndex,
    CancelIndexOrderRequest,
    CancelIndexOrderResponse,
    Command,
    EscrowIndex,
    IndexEscrowed,
    IndexEscrowFailed,
    NewIndexOrderRequest,
    NewIndexOrderResponse,
    RequestStatus,
    RouteCollateral,
    SendToClient,
    WithdrawCollateral,
)
from indexmaker.core.holds import HoldCode, HoldReason
from indexmaker.core.ids import ClientKey, ClientOrderId, Designation, PaymentId, Symbol
from indexmaker.core.redemption_events import RedemptionStatus
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.prices import MarketData
from indexmaker.engine.redemption_reports import fill_report, index_mid
from indexmaker.engine.redemption_settlement import RedemptionSettlement
from indexmaker.engine.sell_batches import DUST
from indexmaker.engine.sell_size import dust_remainder
from indexmaker.model.index import Basket
from indexmaker.model.redemption import Redemption, RedemptionState

ZERO = Decimal(0)
_S = RedemptionState


class RedemptionRequests:
    def __init__(
        self,
        config: SolverConfig,
        baskets: Mapping[Symbol, Basket],
        market: MarketData,
        out: list[Command],
        exchange: Designation,
        trading_chain: Designation,
    ) -> None:
        self.config = config
        self.baskets = baskets
        self.market = market
        self.out = out
        self._next = 1
        self._open: dict[int, Redemption] = {}  # by arrival: FIFO
        self._by_order: dict[tuple[ClientKey, ClientOrderId], Redemption] = {}
        self._by_id: dict[PaymentId, Redemption] = {}
        self.settlement = RedemptionSettlement(
            config, out, self._by_id, self._report, self._forget, exchange, trading_chain
        )

    # ------------------------------------------------------------------ requests

    def accept(
        self, request: NewIndexOrderRequest, arrival: int, now: datetime, note: str = ""
    ) -> Redemption:
        """Open a checked sell order and ask for its tokens in custody; `note` prefixes the
        response's reason (an opposite-side flip says what it reduced first)."""
        redemption_id = PaymentId(f"R{self._next}")
        self._next += 1
        redemption = Redemption(
            redemption_id,
            request.client,
            request.client_order_id,
            request.symbol,
            request.amount,
            request.amount,
            request.min_proceeds,
            now,
            arrival,
            arrival_mid=index_mid(self.baskets[request.symbol], self.market),
        )
        self._open[arrival] = redemption
        self._by_order[(request.client, request.client_order_id)] = redemption
        self._by_id[redemption_id] = redemption
        reason = (
            f"{note}redemption {redemption_id}: waiting for {request.amount} index tokens "
            "in custody"
        )
        response = NewIndexOrderResponse(request.client_order_id, RequestStatus.NEW, reason)
        self.out.append(SendToClient(request.client, response))
        self.out.append(EscrowIndex(redemption_id, request.client, request.symbol, request.amount))
        return redemption

    def find(self, client: ClientKey, symbol: Symbol) -> Redemption | None:
        """The client's redemption of `symbol` still selling (opposite-side orders, SPEC §3)."""
        for redemption in self._open.values():
            mine = redemption.client == client and redemption.symbol == symbol
            if mine and redemption.closing is None and redemption.state in (_S.READY, _S.ENGAGED):
                return redemption
        return None

    def get(self, client: ClientKey, client_order_id: ClientOrderId) -> Redemption | None:
        return self._by_order.get((client, client_order_id))

    def reducible(self, redemption: Redemption) -> Decimal:
        """Index units not yet sold and not engaged in a batch."""
        left = redemption.quantity - redemption.sold - redemption.engaged
        return left if left > 0 and redemption.closing is None else ZERO

    def reduce(self, redemption: Redemption, units: Decimal, why: str) -> Decimal:
        """Take up to `units` off what the redemption still sells; returns what was taken."""
        take = min(units, self.reducible(redemption))
        if take <= 0:
            return ZERO
        redemption.quantity -= take
        if redemption.quantity - redemption.sold <= DUST and redemption.state is _S.READY:
            self.settlement.close(redemption, why)
        return take

    def cancel(self, request: CancelIndexOrderRequest, redemption: Redemption) -> None:
        """SPEC §3 for a sell: removes index units not yet sold or engaged."""
        amount = request.amount
        if not amount.is_finite() or amount <= 0:
            self._answer_cancel(request, "amount must be > 0")
            return
        before = self.reducible(redemption)
        basket, min_order = self.baskets[redemption.symbol], self.config.min_order
        dust = dust_remainder(basket, before, before - amount, self.market, min_order)
        if dust is not None:  # checked first: a refused cancel changes nothing
            self._answer_cancel(request, dust)
            return
        taken = self.reduce(redemption, amount, "cancelled")
        if taken <= 0:
            self._answer_cancel(request, "nothing to cancel: every unit is engaged or sold")
            return
        # The wire's cancel has no side and a sell may take less than asked: say what, in units.
        self._answer_cancel(request, None, f"{taken:f} index units taken off the sell")

    def _answer_cancel(
        self, request: CancelIndexOrderRequest, refused: str | None, note: str | None = None
    ) -> None:
        status = RequestStatus.REJECTED if refused else RequestStatus.CANCELED
        response = CancelIndexOrderResponse(request.client_order_id, status, refused or note)
        self.out.append(SendToClient(request.client, response))

    def awaits_chain(self, command: Command) -> bool:
        """Whether the chain's answer to this redemption effect is still awaited: an escrow
        not yet answered, a burn not confirmed, a withdrawal or payout not done (recovery
        carries it out again under the same key; the chain does each at most once)."""
        match command:
            case EscrowIndex():
                found = self._by_id.get(command.escrow_id)
                return found is not None and found.state is _S.ESCROWING
            case BurnIndex():
                return self.settlement.owns_burn(command.payment_id)
            case RouteCollateral():
                return self.settlement.withdrawing(command.transfer_id)
            case WithdrawCollateral():
                found = self._by_id.get(PaymentId(command.withdrawal_id))
                return found is not None and found.state is _S.PAYING
        return False

    # ------------------------------------------------------------------ chain answers

    def on_escrowed(self, event: IndexEscrowed) -> None:
        redemption = self._by_id.get(event.escrow_id)
        if redemption is None or redemption.state is not _S.ESCROWING:
            self.out.append(Alert("unknown_escrow", f"{event!r}"))
            return
        redemption.escrow_tx, redemption.escrow_block = event.tx_hash, event.block_number
        redemption.move_to(_S.READY)
        if redemption.quantity - redemption.sold <= DUST:  # cancelled while escrowing
            self.settlement.close(redemption, "cancelled")
            return
        self._report(redemption, RedemptionStatus.ESCROWED)

    def on_escrow_failed(self, event: IndexEscrowFailed) -> None:
        redemption = self._by_id.get(event.escrow_id)
        if redemption is None or redemption.state is not _S.ESCROWING:
            self.out.append(Alert("unknown_escrow", f"{event!r}"))
            return
        redemption.move_to(_S.REJECTED)
        self._forget(redemption)
        reason = f"index tokens not moved into custody: {event.reason}"
        response = NewIndexOrderResponse(redemption.client_order_id, RequestStatus.REJECTED, reason)
        self.out.append(SendToClient(redemption.client, response))

    def _forget(self, redemption: Redemption) -> None:
        self._open.pop(redemption.arrival, None)

    # ------------------------------------------------------------------ reports

    def _hold(self, redemption: Redemption, status: RedemptionStatus, why: HoldReason) -> None:
        """Tell the client why its redemption waits, once per (status, code): the text names
        figures that move with the books every tick (a floor's net price, the throttle's
        flow); told again on every move, a stopped sell would send a message a tick."""
        kind = (status, why.code)
        if redemption.notice == kind:
            return
        redemption.notice = kind
        self._report(redemption, status, why.text, why.code)

    def _report(
        self,
        redemption: Redemption,
        status: RedemptionStatus,
        reason: str | None = None,
        code: HoldCode | None = None,
    ) -> None:
        report = fill_report(redemption, status, reason, code)
        self.out.append(SendToClient(redemption.client, report))

    def open_redemptions(self) -> list[Redemption]:
        return list(self._open.values())
