"""Solver: the order state machine of SPEC §3, ticking on the injected clock.

Open → ManageCollateral → Ready → Engaged → PartlyMintable/FullyMintable → Minting → Minted.
Each tick: reserve collateral for waiting orders (or expire them), answer quotes, mint what is
mintable, form at most one new batch, and release exchange orders the rate limit admits.
Venue reports go to `executions.ExecutionReports`, which hands allocations back here as fills
arrive; mints to `minting.Minter`. Statuses change only through `OrderUpdate.move_to`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from indexmaker.core.events import (
    Command,
    FillStatus,
    IndexOrderFill,
    SendToClient,
)
from indexmaker.core.holds import HoldReason
from indexmaker.core.ids import ClientKey, InstrumentId, Symbol, TradeId
from indexmaker.core.money import (
    exact_add,
    exact_sub,
    round_index_down,
    round_rate,
    round_usdc,
)
from indexmaker.core.pacing import checkpoint
from indexmaker.engine.batch_events import batch_completed, batch_created
from indexmaker.engine.batches import Allocation, Batch, BatchManager
from indexmaker.engine.carry import carried_quantity
from indexmaker.engine.collateral import CollateralManager
from indexmaker.engine.collateral_wait import CollateralWait
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.crossing import Crossing, cross
from indexmaker.engine.executions import ExecutionReports
from indexmaker.engine.holdings import IndexHoldings
from indexmaker.engine.index_orders import IndexOrderManager
from indexmaker.engine.inventory import InventoryManager
from indexmaker.engine.minting import Minter
from indexmaker.engine.prices import MarketData
from indexmaker.engine.quotes import QuoteManager
from indexmaker.engine.strategy import BatchPlan, Strategy
from indexmaker.engine.tracker import OrderTracker
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.index import Basket
from indexmaker.model.order import OrderStatus, OrderUpdate
from indexmaker.model.side import Side

if TYPE_CHECKING:
    from indexmaker.engine.rebalance import RebalanceManager
    from indexmaker.engine.redemptions import RedemptionManager

ZERO = Decimal(0)
ONE = Decimal(1)


class Solver:
    def __init__(
        self,
        config: SolverConfig,
        baskets: dict[Symbol, Basket],
        market: MarketData,
        orders: IndexOrderManager,
        collateral: CollateralManager,
        quotes: QuoteManager,
        inventory: InventoryManager,
        batches: BatchManager,
        tracker: OrderTracker,
        rules: dict[InstrumentId, InstrumentRules],
    ) -> None:
        self.config = config
        self.baskets = baskets
        self.market = market
        self.orders = orders
        self.collateral = collateral
        self.quotes = quotes
        self.inventory = inventory
        self.batches = batches
        self.tracker = tracker
        self.rules = rules
        self.strategy = Strategy(config)
        self.out: list[Command] = []
        self.waiting = CollateralWait(config, orders, collateral, self.out, self._report_fill)
        self.redemptions: RedemptionManager | None = None  # the sell side, set by the engine
        self.rebalance: RebalanceManager | None = None  # rebalancing, set by the engine
        self.holdings = IndexHoldings()  # units and backing per index (rebalancing)
        self.minter = Minter(config, orders, collateral, self.out, self.collateral_changed)
        self.executions = ExecutionReports(
            config,
            market,
            inventory,
            batches,
            tracker,
            rules,
            self.out,
            self._apply,
            self._finish,
        )

    # ------------------------------------------------------------------ tick

    def tick(self, now: datetime) -> None:
        self.waiting.check(now)
        sells = self.redemptions  # sell quotes: what a redemption sells and its payout costs
        quotes = self.quotes.answer(
            self.baskets,
            self.market,
            self.collateral.expected_fee,
            sells.baskets if sells is not None else None,
            sells.settlement.expected_withdrawal_fee if sells is not None else None,
            sells.refusal if sells is not None else None,
        )
        for client, answer in quotes:
            self.out.append(SendToClient(client, answer))
        self.minter.mint_ready(now)
        self._form_batches(now)
        self.out.extend(self.tracker.release(now))

    # ------------------------------------------------------------------ collateral

    def wait_for_collateral(self, update: OrderUpdate, now: datetime) -> None:
        self.waiting.add(update)

    def collateral_changed(self, client: ClientKey) -> None:
        """The client's ready collateral grew: its waiting updates are tried on the next check."""
        self.waiting.changed(client)

    def tick_collateral(self, now: datetime) -> None:
        """Collateral became ready: waiting orders may go on without waiting for a tick."""
        self.waiting.check(now)

    def forget_waiting(self, update: OrderUpdate) -> None:
        self.waiting.forget(update)

    def waiting_reason(self, update: OrderUpdate) -> str:
        """What an order accepted without its collateral waits for, and until when."""
        return self.waiting.reason(update)

    # ------------------------------------------------------------------ batches

    def _candidates(self) -> list[tuple[OrderUpdate, Basket]]:
        limit = self.config.max_batch_size
        picked: list[tuple[OrderUpdate, Basket]] = []
        for order in self.orders.active_orders():
            checkpoint()
            for update in order.updates:
                if update.batch_id is not None:
                    continue
                if update.status in (OrderStatus.OPEN, OrderStatus.MANAGE_COLLATERAL):
                    break  # FIFO: later updates wait for this one's collateral
                if update.status is OrderStatus.READY and update.engageable > 0:
                    picked.append((update, self.baskets[update.symbol]))
                    if len(picked) >= limit:
                        return picked
        return picked

    def _form_batches(self, now: datetime) -> None:
        """At most one buy batch and one sell batch a tick, formed together so that what they
        trade of the same asset is crossed internally (crossing.py); only the net is sent."""
        idle = self.tracker.queued() == 0 and self.tracker.has_room(now)  # order_budget.py
        sells = self.redemptions
        if sells is not None:
            sells.expire(now)
        sell_plan = sells.plan(now) if sells is not None and idle else None
        buy_plan = self._plan_buy(now) if idle else None
        crossings: list[Crossing] = []
        if sell_plan is not None and buy_plan is not None:
            buy_plan, sell_plan, crossings = cross(
                buy_plan, sell_plan, self.market, self.rules, self.config.min_asset_volley
            )
        # A rebalance round nets against what is left of both (engine/rebalance.py).
        rnd = self.rebalance.plan(now, buy_plan, sell_plan) if self.rebalance and idle else None
        if rnd is not None:
            buy_plan, sell_plan = rnd.buy_plan, rnd.sell_plan
        sell_batch = sells.open(sell_plan, now) if sells is not None and sell_plan else None
        buy_batch = self._open_buy(buy_plan, now) if buy_plan is not None else None
        if buy_batch is not None and sell_batch is not None and sells is not None:
            for crossing in crossings:
                trade = TradeId(f"x{buy_batch.batch_id}-{sell_batch.batch_id}")
                self.cross_lot(buy_batch, crossing, trade, now)
                sells.cross_in(sell_batch, crossing, trade)
        if rnd is not None and self.rebalance is not None:
            self.rebalance.open(rnd, buy_batch, sell_batch, self.cross_lot, now)
        if sells is not None and sell_batch is not None:
            sells.settle_if_done(sell_batch, now)
        if buy_batch is not None and buy_batch.done:
            self._finish(buy_batch, now)

    def cross_lot(self, batch: Batch, crossing: Crossing, trade: TradeId, now: datetime) -> None:
        """The buy batch receives `crossing` as a lot at the mid, without fee (crossing.py)."""
        lot = self.inventory.open_lot(
            crossing.instrument,
            trade,
            crossing.price,
            crossing.quantity,
            ZERO,
            now,
            reserved_by=batch.batch_id,
            crossed=True,
        )
        self._apply(self.batches.on_lot(batch, lot), now)

    def _plan_buy(self, now: datetime) -> BatchPlan[OrderUpdate] | None:
        cfg = self.config
        free = cfg.max_total_volley - self.batches.in_flight()
        if free <= 0 or free < cfg.min_total_volley_available:
            return None
        candidates = self._candidates()
        if not candidates:
            return None
        carried = {}
        for _update, basket in candidates:
            checkpoint()  # 10,000 candidates × their assets: ~17 ms without a turn
            for asset in basket.assets:
                if asset.instrument not in carried:  # free lots and open batches' surplus
                    carried[asset.instrument] = carried_quantity(
                        self.inventory, self.batches, self.tracker, self.rules, asset.instrument
                    )
        plan = self.strategy.plan(
            candidates,
            self.market,
            carried,
            self.rules,
            min(cfg.max_volley, free),
            self.executions.blocked_assets(now),
            side=Side.BUY,  # updates are buys; redemptions plan their sell batches alike
        )
        for update, why in plan.deferred:
            self._hold(update, why)
        return plan if plan.entries else None

    def _hold(self, update: OrderUpdate, why: HoldReason) -> None:
        """Tell the client why its ready buy waits outside the batch, once per code (the
        text names figures that move every tick), as redemptions are told."""
        if update.notice is why.code:
            return
        update.notice = why.code
        self._report_fill(update, self._fill_status(update), why)

    def _open_buy(self, plan: BatchPlan[OrderUpdate], now: datetime) -> Batch:
        batch, allocations = self.batches.create(plan, self.baskets, now)
        if self.redemptions is not None:  # issuance offsets redemptions in the throttle
            self.redemptions.issued(now, plan.notional)
        for entry in batch.entries():
            checkpoint()
            entry.update.move_to(OrderStatus.ENGAGED)
            entry.update.notice = None  # engaged: a later hold is told again
            entry.update.batch_id = batch.batch_id
            entry.update.engaged = entry.engaged
            entry.update.engaged_quantity = entry.quantity
            entry.update.units_engaged = exact_add(entry.update.units_engaged, entry.quantity)
            entry.update.basket_version = self.baskets[entry.update.symbol].version
        for planned in plan.asset_orders:
            if planned.quantity <= 0:
                continue
            command = self.tracker.send(
                batch.batch_id,
                planned.instrument,
                planned.side,
                planned.price,
                planned.quantity,
                now,
            )
            self.batches.add_order(batch, planned.instrument, command.order_id)
        self.out.append(
            batch_created(
                batch.batch_id,
                len(plan.entries),
                batch.open_orders,
                plan.notional,
                Side.BUY,
                self.tracker.waiting(now),
            )
        )
        self._apply(allocations, now)
        return batch

    def _apply(self, allocations: list[Allocation], now: datetime) -> None:
        for allocation in allocations:
            checkpoint()
            update = allocation.entry.update
            cost = allocation.cost
            self.collateral.spend(update.client, update.client_order_id, cost)
            update.assets_value += allocation.assets_value
            update.exchange_fee += allocation.exchange_fee
            update.filled_quantity = exact_add(update.filled_quantity, allocation.quantity)
            update.lots.extend(allocation.assignments)
            self.holdings.bought(update.symbol, allocation.quantity, allocation.assignments)
            update.engaged = max(ZERO, update.engaged - cost)
            update.last_fill_at = now
            self._report_fill(update, self._fill_status(update))

    def _finish(self, batch: Batch, now: datetime) -> None:
        handed = self.batches.complete(batch, now)
        self.tracker.forget_batch(batch.batch_id)
        filled = 0
        for entry in batch.entries():
            update = entry.update
            update.batch_id = None
            update.engaged = ZERO
            update.engaged_quantity = ZERO
            # SPEC §3: what the filled units were engaged with but did not cost is change.
            unfilled = ONE - entry.ratio if entry.ratio < ONE else ZERO
            change = entry.engaged * (ONE - unfilled) - entry.spent
            if change > 0:
                update.change += change
            if entry.ratio > 0:
                filled += 1
            # The units not allocated, exact: with the batches' units they make the quantity
            # engaged whole, however the order was split into batches (issue 10).
            self.settle(update, exact_sub(entry.quantity, entry.units), entry.engaged * unfilled)
        orders = sum(len(g.entries) for g in batch.groups.values())
        self.out.append(
            batch_completed(
                batch.batch_id, orders, len(batch.positions), batch.notional, filled, Side.BUY
            )
        )
        for _, allocations in handed:  # batches that counted on this one's surplus
            self._apply(allocations, now)
        for waiter, _ in handed:  # (one may have completed in another's hand-over)
            if waiter.done and self.batches.get(waiter.batch_id) is waiter:
                self._finish(waiter, now)

    def _fill_status(self, update: OrderUpdate) -> FillStatus:
        """A fill report's status: in progress while collateral of at least the minimum order
        is still to be engaged, else what the fill rate makes the update."""
        if update.engageable >= self.config.min_order:
            return FillStatus.IN_PROGRESS
        return self._rate_status(update)

    def _rate_status(self, update: OrderUpdate) -> FillStatus:
        rate = update.fill_rate
        if rate > self.config.fully_mintable_rate:
            return FillStatus.FULLY_MINTABLE
        if rate > self.config.partly_mintable_rate:
            return FillStatus.MINTABLE
        return FillStatus.IN_PROGRESS

    def settle(
        self, update: OrderUpdate, unfilled_units: Decimal = ZERO, unfilled: Decimal = ZERO
    ) -> None:
        """After a batch or a cancel: mintable, or ready for the next batch (SPEC §3).

        `unfilled_units` (index units) and `unfilled` (their engaged USDC) are what the batch
        just completed engaged and did not fill. The update goes into another batch only for
        collateral never engaged that is at least the minimum order, or for unfilled units
        when its fill rate is at most partly_mintable_rate; change never starts a batch.
        """
        if update.batch_id is not None or update.status.is_done:
            return
        if update.status in (OrderStatus.MINTING, OrderStatus.OPEN):
            return
        if update.status is OrderStatus.MANAGE_COLLATERAL:
            return
        engageable = update.engageable
        status = self._rate_status(update)
        fresh = engageable - unfilled
        mintable = update.status in (OrderStatus.PARTLY_MINTABLE, OrderStatus.FULLY_MINTABLE)
        if not mintable and (
            update.units_engaged <= 0
            or fresh >= self.config.min_order
            or (status is FillStatus.IN_PROGRESS)
        ):
            # Engage again: the unfilled units' collateral joins what is engageable, so they
            # leave the fill rate's denominator until the next batch engages them anew.
            update.units_engaged = exact_sub(update.units_engaged, unfilled_units)
            if engageable > 0 or update.spent <= 0:
                update.move_to(OrderStatus.READY)
                return
            # Nothing left to engage: what was filled is minted once the fills go quiet.
            status = self._rate_status(update)
        if status is FillStatus.FULLY_MINTABLE:
            update.move_to(OrderStatus.FULLY_MINTABLE)
        else:
            update.move_to(OrderStatus.PARTLY_MINTABLE)
        self.minter.queue(update)

    # ------------------------------------------------------------------ reports

    def _report_fill(
        self, update: OrderUpdate, status: FillStatus, hold: HoldReason | None = None
    ) -> None:
        self.out.append(
            SendToClient(
                update.client,
                IndexOrderFill(
                    client_order_id=update.client_order_id,
                    filled_quantity=round_index_down(update.filled_quantity),
                    collateral_spent=round_usdc(update.spent),
                    collateral_remaining=round_usdc(update.net_amount - update.spent),
                    fill_rate=round_rate(update.fill_rate),
                    status=status,
                    reason=hold.text if hold is not None else None,
                    reason_code=hold.code if hold is not None else None,
                ),
            )
        )
