"""Redemption manager: the sell side of SPEC §1 item 7, from escrow to payout (issue 12).

A sell NewIndexOrder names index units (and optionally `min_proceeds`, the floor on what the
client is paid: net of the exchange, redemption and withdrawal fees, sell_proceeds.py). Its
life (`model/redemption.py`): the tokens move into custody first (`EscrowIndex`); each tick
forms at most one sell batch of escrowed redemptions, FIFO (`redemption_candidates.py`:
throttle and floor), sized by the side-generic strategy to the bids within best bid × (1 −
threshold) rounded down to the tick. When a batch completes, exactly the index units whose
proceeds were allocated are burned, once per (order, batch); when nothing more is to be sold,
`redemption_settlement.py` returns the rest, withdraws the net proceeds and pays the client
(keyed by the order's id); the invoice follows the payout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
    PlaceExchangeOrder,
    RequestStatus,
    RouteCollateral,
    SendToClient,
    WithdrawCollateral,
)
from indexmaker.core.holds import HoldCode, HoldReason
from indexmaker.core.ids import (
    BatchId,
    ClientKey,
    ClientOrderId,
    Designation,
    ExchangeOrderId,
    InstrumentId,
    PaymentId,
    Symbol,
    TradeId,
)
from indexmaker.core.money import round_rate
from indexmaker.core.pacing import checkpoint
from indexmaker.core.redemption_events import RedemptionStatus
from indexmaker.engine.absorption import absorb_price, absorb_refusal, within_absorb_bound
from indexmaker.engine.batch_events import batch_completed, batch_created
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.crossing import Crossing
from indexmaker.engine.prices import MarketData
from indexmaker.engine.redemption_candidates import pick_candidates
from indexmaker.engine.redemption_reports import (
    NetFlow,
    fill_report,
    index_mid,
)
from indexmaker.engine.redemption_settlement import RedemptionSettlement
from indexmaker.engine.sell_batches import (
    DUST,
    Sale,
    SellAllocator,
    SellBatch,
    SellEntry,
    new_sell_batch,
)
from indexmaker.engine.sell_size import below_minimum, dust_remainder
from indexmaker.engine.strategy import BatchPlan, Strategy
from indexmaker.engine.tracker import OrderTracker
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.index import Basket
from indexmaker.model.redemption import Redemption, RedemptionState
from indexmaker.model.side import Side

ZERO = Decimal(0)
_S = RedemptionState


class RedemptionManager:
    def __init__(
        self,
        config: SolverConfig,
        baskets: Mapping[Symbol, Basket],
        market: MarketData,
        strategy: Strategy,
        tracker: OrderTracker,
        allocator: SellAllocator,
        rules: Mapping[InstrumentId, InstrumentRules],
        out: list[Command],
        new_batch_id: Callable[[], BatchId],
        blocked: Callable[[datetime], Mapping[InstrumentId, str]],
        exchange: Designation,
        trading_chain: Designation,
    ) -> None:
        self.config = config
        self.baskets = baskets
        self.market = market
        self.strategy = strategy
        self.tracker = tracker
        self.allocator = allocator
        self.rules = rules
        self.out = out
        self._new_batch_id = new_batch_id
        self._blocked = blocked
        self._exchange = exchange
        self._trading_chain = trading_chain
        self.flow = NetFlow(config.max_net_redemption, config.redemption_window)
        self._next = 1
        self._open: dict[int, Redemption] = {}  # by arrival: FIFO
        self._by_order: dict[tuple[ClientKey, ClientOrderId], Redemption] = {}
        self._by_id: dict[PaymentId, Redemption] = {}
        self.batch: SellBatch | None = None
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
        redemption.escrow_tx = event.tx_hash
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

    # ------------------------------------------------------------------ tick

    def expire(self, now: datetime) -> None:
        """Redemptions not sold within `redemption_ttl` stop selling (their rest goes back)."""
        ttl = self.config.redemption_ttl
        for redemption in list(self._open.values()):
            checkpoint()
            if redemption.state is _S.READY and now - redemption.received_at >= ttl:
                self.settlement.close(redemption, f"expired after {ttl}")

    def issued(self, now: datetime, value: Decimal) -> None:
        """A buy batch engaged `value` USDC of issuance: it offsets redemptions (net flow)."""
        self.flow.add(now, -value)

    def plan(self, now: datetime) -> BatchPlan[Redemption] | None:
        """This tick's sell batch, sized; None when one is open or nothing can sell. Tells
        the redemptions left out why (once per reason)."""
        if self.batch is not None:
            return None
        candidates, cap = pick_candidates(
            self._open.values(),
            self.baskets,
            lambda basket: self.strategy.index_limit_price(
                basket, self.market, self.rules, Side.SELL
            ),
            self.flow,
            self.config,
            now,
            self._hold,
            lambda redemption, usdc: self.settlement.expected_withdrawal_fee(
                redemption.client, usdc
            ),
        )
        if not candidates or cap <= 0:
            return None
        blocked, sold_ahead = self._blocked(now), self.allocator.sold_ahead_all()
        plan = within_absorb_bound(
            candidates,
            lambda some: self.strategy.plan(
                some, self.market, sold_ahead, self.rules, cap, blocked, side=Side.SELL
            ),
            self.market,
            self.config.max_issuer_absorb,
        )
        for redemption, reason in plan.deferred:
            if redemption.fill_rate > self.config.partly_mintable_rate:
                # The rest is too small to sell on its own (as a buy above 99% is minted).
                self.settlement.close(
                    redemption, f"sold {round_rate(redemption.fill_rate)}; rest: {reason.text}"
                )
                continue
            self._hold(redemption, RedemptionStatus.ESCROWED, reason)
        return plan if plan.entries else None

    def refusal(self, request: NewIndexOrderRequest) -> str | None:
        """Why a sell is refused at acceptance, or None: worth less than min_order at the
        bids (sell_size.py), or the issuer would have to absorb more than max_issuer_absorb
        of it at the current books (absorption.py)."""
        basket = self.baskets[request.symbol]
        units, market, config = request.amount, self.market, self.config
        small = below_minimum(basket, units, market, config.min_order)
        return small or absorb_refusal(basket, units, market, self.rules, config)

    def open(self, plan: BatchPlan[Redemption], now: datetime) -> SellBatch:
        """Open the planned sell batch and send its (net) exchange orders."""
        batch_id = self._new_batch_id()
        batch = self.batch = new_sell_batch(batch_id, now, plan, self.baskets)
        for entry in batch.entries():
            checkpoint()
            redemption = entry.redemption
            redemption.move_to(_S.ENGAGED)
            redemption.batch_id = batch_id
            redemption.engaged = entry.quantity
            redemption.notice = None
            redemption.basket_version = self.baskets[redemption.symbol].version
        for planned_order in plan.asset_orders:
            if planned_order.quantity <= 0:
                continue
            command = PlaceExchangeOrder(
                order_id=self.tracker.new_order_id(),
                batch_id=batch_id,
                instrument=planned_order.instrument,
                side=Side.SELL,
                price=planned_order.price,
                quantity=planned_order.quantity,
            )
            self.tracker.enqueue(command, now)
            batch.legs[planned_order.instrument].order_ids.append(command.order_id)
            batch.open_orders += 1
        self.flow.add(now, plan.notional)
        self.out.append(
            batch_created(batch_id, len(plan.entries), batch.open_orders, plan.notional, Side.SELL)
        )
        self._progress(self.allocator.open(batch))
        for planned_order in plan.asset_orders:  # legs the venue would refuse: the issuer's
            if planned_order.absorbed > 0:
                instrument = planned_order.instrument
                price = absorb_price(self.market, instrument, planned_order.price)
                sale = Sale(
                    instrument, TradeId(f"a{batch_id}"), price, planned_order.absorbed, ZERO
                )
                sale.crossed = True  # on the invoice as a crossing with the issuer, fee 0
                self._progress(self.allocator.absorb(batch, sale, now))
        return batch

    def cross_in(self, batch: SellBatch, crossing: Crossing, trade: TradeId) -> None:
        """A buy batch of the same tick took `crossing` at the mid: a sale without a fee."""
        sale = Sale(crossing.instrument, trade, crossing.price, crossing.quantity, ZERO, True)
        self._progress(self.allocator.on_sale(batch, sale))

    def settle_if_done(self, batch: SellBatch, now: datetime) -> None:
        """A batch with nothing at the venue (all crossed or sold ahead) completes at once."""
        if batch.open_orders == 0 and self.batch is batch:
            self._complete(batch, now)

    # ------------------------------------------------------------------ venue reports

    def on_fill(
        self,
        batch_id: BatchId,
        order_id: ExchangeOrderId,
        trade_id: TradeId,
        instrument: InstrumentId,
        price: Decimal,
        quantity: Decimal,
        fee: Decimal,
    ) -> None:
        """A sell execution: allocated to the open batch, or sold ahead if it came late."""
        sale = Sale(instrument, trade_id, price, quantity, fee)
        batch = self.batch
        if batch is None or batch.batch_id != batch_id:
            self.allocator.carry(sale)
            self.out.append(
                Alert("late_fill", f"sell fill {trade_id} of {order_id}: sold ahead (carried)")
            )
            return
        self._progress(self.allocator.on_sale(batch, sale))

    def on_closed(self, batch_id: BatchId, now: datetime) -> None:
        batch = self.batch
        if batch is None or batch.batch_id != batch_id:
            return
        batch.open_orders -= 1
        if batch.open_orders <= 0:
            self._complete(batch, now)

    def owns_batch(self, batch_id: BatchId) -> bool:
        return self.batch is not None and self.batch.batch_id == batch_id

    def _progress(self, entries: list[SellEntry]) -> None:
        for entry in entries:
            checkpoint()  # a report each: 1,000 redemptions in one fill's allocation
            self._report(entry.redemption, RedemptionStatus.IN_PROGRESS)

    def _complete(self, batch: SellBatch, now: datetime) -> None:
        """Burn what each redemption sold in the batch; ready it again or settle it."""
        self.allocator.close(batch)
        self.tracker.forget_batch(batch.batch_id)
        self.batch = None
        with_sales = 0
        for entry in batch.entries():
            checkpoint()
            redemption = entry.redemption
            redemption.batch_id = None
            redemption.engaged = ZERO
            if entry.sold > 0:
                with_sales += 1
                self.settlement.burn(redemption, batch.batch_id)
            if redemption.quantity - redemption.sold <= DUST:
                redemption.move_to(_S.READY)
                self.settlement.close(redemption, "sold")
            else:
                redemption.move_to(_S.READY)
                self._report(redemption, RedemptionStatus.IN_PROGRESS)
        orders = sum(len(g.entries) for g in batch.groups.values())
        self.out.append(
            batch_completed(
                batch.batch_id, orders, len(batch.legs), batch.notional, with_sales, Side.SELL
            )
        )

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
