"""Redemption manager: the sell side of SPEC §1 item 7, from escrow to payout (issue 12).

A sell NewIndexOrder names index units (and optionally `min_proceeds`, the floor on what the
client is paid: net of the exchange, redemption and withdrawal fees, sell_proceeds.py). Its
life (`model/redemption.py`): the tokens move into custody first (`EscrowIndex`); each tick
forms at most one sell batch of escrowed redemptions, FIFO (`redemption_candidates.py`:
throttle and floor), sized by the side-generic strategy to the bids within best bid × (1 −
threshold) rounded down to the tick. When a batch completes, exactly the index units whose
proceeds were allocated are burned, once per (order, batch); when nothing more is to be sold,
`redemption_settlement.py` returns the rest, withdraws the net proceeds and pays the client
(keyed by the order's id); the invoice follows the payout. Acceptance, cancels, escrow and
the client's reports are `redemption_requests.RedemptionRequests`, which this class extends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal

from indexmaker.core.events import (
    Alert,
    Command,
    NewIndexOrderRequest,
    NewQuoteRequest,
    PlaceExchangeOrder,
)
from indexmaker.core.holds import HoldReason
from indexmaker.core.ids import (
    BatchId,
    Designation,
    ExchangeOrderId,
    InstrumentId,
    Symbol,
    TradeId,
)
from indexmaker.core.money import round_rate
from indexmaker.core.pacing import checkpoint
from indexmaker.core.redemption_events import RedemptionStatus
from indexmaker.engine.absorption import (
    absorb_price,
    absorb_refusal,
    absorbed_inventory,
    within_absorb_bound,
)
from indexmaker.engine.batch_events import batch_completed, batch_created
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.crossing import Crossing
from indexmaker.engine.prices import MarketData
from indexmaker.engine.redemption_candidates import pick_candidates, sell_bids
from indexmaker.engine.redemption_reports import (
    NetFlow,
)
from indexmaker.engine.redemption_requests import RedemptionRequests
from indexmaker.engine.sell_batches import (
    DUST,
    Sale,
    SellAllocator,
    SellBatch,
    SellEntry,
    new_sell_batch,
)
from indexmaker.engine.sell_size import below_minimum
from indexmaker.engine.strategy import BatchPlan, Strategy
from indexmaker.engine.tracker import OrderTracker
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.index import Basket
from indexmaker.model.redemption import Redemption, RedemptionState
from indexmaker.model.side import Side

ZERO = Decimal(0)
_S = RedemptionState


class RedemptionManager(RedemptionRequests):
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
        blocked: Callable[[datetime], Mapping[InstrumentId, HoldReason]],
        exchange: Designation,
        trading_chain: Designation,
    ) -> None:
        super().__init__(config, baskets, market, out, exchange, trading_chain)
        self.strategy = strategy
        self.tracker = tracker
        self.allocator = allocator
        self.rules = rules
        self._new_batch_id = new_batch_id
        self._blocked = blocked
        self.flow = NetFlow(config.max_net_redemption, config.redemption_window)
        self.batch: SellBatch | None = None

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
            lambda basket: sell_bids(basket, self.market, self.rules),
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
            absorbed_inventory(self.allocator.inventory.absorbed_free(), self.market),
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

    def refusal(self, request: NewIndexOrderRequest | NewQuoteRequest) -> str | None:
        """Why a sell (or a sell quote: the same reason) is refused at acceptance, or None:
        worth less than min_order at the bids (sell_size.py), or the issuer would have to
        absorb more than max_issuer_absorb of it at the current books (absorption.py)."""
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
            batch_created(
                batch_id,
                len(plan.entries),
                batch.open_orders,
                plan.notional,
                Side.SELL,
                self.tracker.waiting(now),
            )
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
