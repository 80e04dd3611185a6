"""Batch manager: batches, per-asset positions, allocation of lots, carry-over.

Allocation (SPEC §4): for asset a the batch holds position_a (carried lots + fills) and the
entries' demand_a; each entry may take min(position_a / demand_a, 1) of its contribution.
An entry's fill ratio is the minimum of that over its basket's assets, the same for every
entry of one index in the batch, so it is computed once per index group. Lots are then
assigned FIFO in exact basket proportion: what an order is minted is backed exactly.

Every figure of an entry is a cumulative total of its fill ratio, on a fixed grid
(core/money.py: units_at for index units, round_cost_down for USDC): a fill adds
total(after) - total(before), exact. So the end state does not depend on how the fills
were grouped into steps; a restart regroups them (issue 10, docs/decisions.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from indexmaker.core.errors import InvariantViolation
from indexmaker.core.ids import BatchId, ExchangeOrderId, InstrumentId, Symbol
from indexmaker.core.money import (
    EXACT_CONTEXT,
    ROUNDING_NOISE,
    basket_share,
    exact_add,
    exact_multiply,
    exact_sub,
    round_cost_down,
    share_down,
    units_at,
)
from indexmaker.core.pacing import checkpoint
from indexmaker.engine.inventory import InventoryManager
from indexmaker.engine.strategy import BatchPlan
from indexmaker.model.index import Basket
from indexmaker.model.lot import Lot, LotAssignment
from indexmaker.model.order import OrderUpdate

ZERO = Decimal(0)
ONE = Decimal(1)
# Below this an index quantity is rounding noise of the 34-digit context, not a fill.
DUST = Decimal("1e-24")
# An exact fit can cost a few units of the 34th digit more than the update owns (fee shares
# are rounded); such a cost is charged at what is owned (ROUNDING_NOISE). Larger is a bug.


@dataclass(slots=True)
class BatchEntry:
    update: OrderUpdate
    quantity: Decimal  # index units sized for this batch
    index_price: Decimal
    engaged: Decimal
    ratio: Decimal = ZERO  # fill ratio reached: fraction of `quantity` allocated so far
    spent: Decimal = ZERO  # USDC charged in this batch
    units: Decimal = ZERO  # index units allocated: units_at(ratio, quantity)
    taken: dict[InstrumentId, Decimal] = field(default_factory=dict)  # per asset, exact


@dataclass(slots=True)
class AssetPosition:
    instrument: InstrumentId
    demand: Decimal
    lots: list[Lot] = field(default_factory=list)
    cursor: int = 0  # first lot that may still have free quantity
    received: Decimal = ZERO  # carried free quantity + fills
    max_price: Decimal = ZERO
    max_fee_rate: Decimal = ZERO
    order_ids: list[ExchangeOrderId] = field(default_factory=list)
    # What the plan counted of open batches' surplus (engine/carry.py): handed over when
    # they complete (`BatchManager.complete`).
    counted: Decimal = ZERO

    def add_lot(self, lot: Lot, quantity: Decimal) -> None:
        self.lots.append(lot)
        self.received = exact_add(self.received, quantity)
        self.max_price = max(self.max_price, lot.price)
        self.max_fee_rate = max(self.max_fee_rate, lot.fee / (lot.quantity * lot.price))

    @property
    def fill_ratio(self) -> Decimal:
        # Rounded down, in its own context: units_at(ratio) never asks for more than arrived
        # (but for a demand rounded below its exact sum), whatever the caller's context.
        return min(ONE, share_down(self.received, ONE, self.demand)) if self.demand > 0 else ONE


@dataclass(slots=True)
class BatchGroup:
    basket: Basket
    entries: list[BatchEntry] = field(default_factory=list)
    ratio: Decimal = ZERO


@dataclass(slots=True)
class Batch:
    batch_id: BatchId
    created_at: datetime
    groups: dict[Symbol, BatchGroup]
    positions: dict[InstrumentId, AssetPosition]
    groups_by_asset: dict[InstrumentId, list[BatchGroup]]
    engaged: Decimal
    notional: Decimal
    open_orders: int = 0
    # Open batches whose surplus this one counted on: it completes only after them.
    waiting_on: set[BatchId] = field(default_factory=set)

    @property
    def done(self) -> bool:
        """Every exchange order final and every batch it counted on completed."""
        return self.open_orders <= 0 and not self.waiting_on

    def entries(self) -> Iterable[BatchEntry]:
        for group in self.groups.values():
            yield from group.entries


@dataclass(frozen=True, slots=True)
class Allocation:
    """What one entry was given by one fill: lots, value, fees and index quantity."""

    entry: BatchEntry
    quantity: Decimal  # index units
    assets_value: Decimal
    exchange_fee: Decimal
    cost: Decimal  # what the update is charged: value + fee, never above what it owns
    assignments: tuple[LotAssignment, ...]


class BatchManager:
    def __init__(self, inventory: InventoryManager) -> None:
        self._inventory = inventory
        self._batches: dict[BatchId, Batch] = {}
        self._next_id = 1
        self.completed = 0

    def create(
        self, plan: BatchPlan[OrderUpdate], baskets: dict[Symbol, Basket], now: datetime
    ) -> tuple[Batch, list[Allocation]]:
        """Open a batch for a plan; carried lots are reserved and allocated at once. Carried
        quantity beyond the free lots is the surplus of open batches (engine/carry.py): the
        batch waits for every open batch holding such an asset (an older waiter takes the
        lots first and hands on what it leaves)."""
        batch_id = self.new_id()
        waiting_on: set[BatchId] = set()
        groups: dict[Symbol, BatchGroup] = {}
        engaged = ZERO
        for planned in plan.entries:
            checkpoint()
            symbol = planned.update.symbol
            group = groups.get(symbol)
            if group is None:
                group = groups[symbol] = BatchGroup(baskets[symbol])
            group.entries.append(
                BatchEntry(planned.update, planned.quantity, planned.index_price, planned.engaged)
            )
            engaged += planned.engaged
        positions: dict[InstrumentId, AssetPosition] = {}
        for asset_order in plan.asset_orders:
            position = AssetPosition(asset_order.instrument, asset_order.demand)
            for lot in self._inventory.reserve_free(asset_order.instrument, batch_id):
                position.add_lot(lot, lot.free)
            counted = exact_sub(asset_order.carried, position.received)
            if counted > 0:
                position.counted = counted
                waiting_on.update(
                    b.batch_id
                    for b in self._batches.values()
                    if asset_order.instrument in b.positions
                )
            positions[asset_order.instrument] = position
        groups_by_asset: dict[InstrumentId, list[BatchGroup]] = {}
        for group in groups.values():
            for asset in group.basket.assets:
                groups_by_asset.setdefault(asset.instrument, []).append(group)
        batch = Batch(batch_id, now, groups, positions, groups_by_asset, engaged, plan.notional)
        batch.waiting_on = waiting_on
        self._batches[batch_id] = batch
        allocations: list[Allocation] = []
        for group in groups.values():
            allocations.extend(self._advance(batch, group, now))
        return batch, allocations

    def new_id(self) -> BatchId:
        """The next batch id: sell batches (sell_batches.py) draw from the same sequence, so
        an exchange order's batch id names one batch of either side."""
        batch_id = BatchId(self._next_id)
        self._next_id += 1
        return batch_id

    def get(self, batch_id: BatchId) -> Batch | None:
        return self._batches.get(batch_id)

    def open_batches(self) -> list[Batch]:
        return list(self._batches.values())

    def in_flight(self) -> Decimal:
        return sum((b.engaged for b in self._batches.values()), ZERO)

    def add_order(self, batch: Batch, instrument: InstrumentId, order_id: ExchangeOrderId) -> None:
        batch.positions[instrument].order_ids.append(order_id)
        batch.open_orders += 1

    def on_lot(self, batch: Batch, lot: Lot) -> list[Allocation]:
        """A fill of this batch opened `lot`: allocate what it makes possible."""
        batch.positions[lot.asset].add_lot(lot, lot.quantity)
        allocations: list[Allocation] = []
        for group in batch.groups_by_asset.get(lot.asset, ()):
            allocations.extend(self._advance(batch, group, lot.opened_at))
        return allocations

    def on_order_closed(self, batch: Batch) -> bool:
        """One exchange order is final; True when the whole batch is complete (`done`)."""
        batch.open_orders -= 1
        return batch.done

    def complete(self, batch: Batch, now: datetime) -> list[tuple[Batch, list[Allocation]]]:
        """Close the batch; its unallocated lots carry over to the next batch of the asset:
        first to the open batches that counted on its surplus, oldest first, each taking
        the free lots of the assets it is short of; the rest stay free inventory. Returns
        those batches with what the lots allocated (a batch is `done` once nothing else is
        open of it)."""
        for position in batch.positions.values():
            self._inventory.release(position.lots)
        self._batches.pop(batch.batch_id, None)
        self.completed += 1
        handed: list[tuple[Batch, list[Allocation]]] = []
        for waiter in list(self._batches.values()):  # creation order: the oldest first
            if batch.batch_id not in waiter.waiting_on:
                continue
            waiter.waiting_on.discard(batch.batch_id)
            given = False
            for asset in batch.positions:
                short = waiter.positions.get(asset)
                if short is None or short.received >= short.demand:
                    continue
                for lot in self._inventory.reserve_free(asset, waiter.batch_id):
                    short.add_lot(lot, lot.free)
                    given = True
            allocations: list[Allocation] = []
            if given:
                for group in waiter.groups.values():
                    allocations.extend(self._advance(waiter, group, now))
            handed.append((waiter, allocations))
        return handed

    # ------------------------------------------------------------------ allocation

    def _advance(self, batch: Batch, group: BatchGroup, now: datetime) -> list[Allocation]:
        ratio = ONE
        for asset in group.basket.assets:
            ratio = min(ratio, batch.positions[asset.instrument].fill_ratio)
        if ratio <= group.ratio:
            return []
        group.ratio = ratio
        allocations = []
        for entry in group.entries:
            allocation = self._allocate(batch, group.basket, entry, ratio, now)
            if allocation is not None:
                allocations.append(allocation)
        return allocations

    def _allocate(
        self, batch: Batch, basket: Basket, entry: BatchEntry, target: Decimal, now: datetime
    ) -> Allocation | None:
        """Raise the entry to fill ratio `target`: each cumulative figure is recomputed from
        the ratio and the step is the difference, so any split of the same fills into steps
        ends with the same units, lots, value, fees and spend (to the last digit)."""
        delta = target - entry.ratio
        if delta <= 0:
            return None
        update = entry.update
        affordable = exact_sub(update.net_amount, update.spent)
        # Never spend more than the update owns: bound the cost with the worst price and fee
        # rate in each position, and scale the step down before touching any lot.
        bound = ZERO
        for asset in basket.assets:
            position = batch.positions[asset.instrument]
            take = delta * entry.quantity * asset.quantity
            bound += take * position.max_price * (ONE + position.max_fee_rate)
        # The bound depends on the steps (the worst price so far): only the exact cost of the
        # target, which does not, decides whether to scale (else a restart's regrouped fills
        # could scale a step the uninterrupted run did not).
        if bound > affordable and not self._fits(batch, basket, entry, target, affordable):
            # Scaled down, never up: a rounded-up step would cost more than is affordable.
            # (Only here does the path matter: an order that cannot afford its share.)
            delta = share_down(delta, affordable, bound) if affordable > 0 else ZERO
            if delta * entry.quantity <= DUST:
                return None
            target = entry.ratio + delta
        entry.ratio = target
        units = units_at(target, entry.quantity)
        if units <= entry.units:
            return None  # the ratio moved by less than one unit of the grid
        value, fees = update.bought_value, update.bought_fees
        assignments: list[LotAssignment] = []
        # Context methods, not the helpers: this loop runs once per lot assignment.
        add, multiply = EXACT_CONTEXT.add, EXACT_CONTEXT.multiply
        for asset in basket.assets:
            position = batch.positions[asset.instrument]
            taken = entry.taken.get(asset.instrument, ZERO)
            want = exact_sub(basket_share(units, asset.quantity), taken)
            for assignment in self._take(position, update, want, now):
                assignments.append(assignment)
                taken = add(taken, assignment.quantity)
                value = add(value, multiply(assignment.quantity, assignment.price))
                fees = add(fees, assignment.fee)
            entry.taken[asset.instrument] = taken
        value_step = exact_sub(round_cost_down(value), round_cost_down(update.bought_value))
        fee_step = exact_sub(round_cost_down(fees), round_cost_down(update.bought_fees))
        cost = exact_add(value_step, fee_step)
        if cost > affordable:
            if exact_sub(cost, affordable) > ROUNDING_NOISE:
                raise InvariantViolation(f"{update.client_order_id}: cost {cost} > {affordable}")
            cost = affordable  # the charges stay min(total, net): the same in any grouping
        quantity = exact_sub(units, entry.units)
        entry.units, entry.spent = units, exact_add(entry.spent, cost)
        update.bought_value, update.bought_fees = value, fees
        return Allocation(entry, quantity, value_step, fee_step, cost, tuple(assignments))

    def _fits(
        self,
        batch: Batch,
        basket: Basket,
        entry: BatchEntry,
        target: Decimal,
        affordable: Decimal,
    ) -> bool:
        """Whether raising `entry` to fill ratio `target` costs at most `affordable` (USDC) more,
        up to ROUNDING_NOISE: the exact cost of the lots `_take` would assign it, charged as
        `_allocate` charges them. Changes nothing."""
        units = units_at(target, entry.quantity)
        update = entry.update
        value, fees = update.bought_value, update.bought_fees
        for asset in basket.assets:
            position = batch.positions[asset.instrument]
            taken = entry.taken.get(asset.instrument, ZERO)
            want = exact_sub(basket_share(units, asset.quantity), taken)
            for lot in position.lots[position.cursor :]:
                if want <= 0:
                    break
                free = lot.free
                if free <= 0:
                    continue
                take = want if want < free else free
                value = exact_add(value, exact_multiply(take, lot.price))
                fees = exact_add(fees, self._inventory.fee_share(lot, take))
                want = exact_sub(want, take)
        charged = exact_add(
            round_cost_down(update.bought_value), round_cost_down(update.bought_fees)
        )
        cost = exact_sub(exact_add(round_cost_down(value), round_cost_down(fees)), charged)
        return exact_sub(cost, affordable) <= ROUNDING_NOISE

    def _take(
        self, position: AssetPosition, update: OrderUpdate, want: Decimal, now: datetime
    ) -> list[LotAssignment]:
        taken: list[LotAssignment] = []
        lots = position.lots
        while want > 0 and position.cursor < len(lots):
            lot = lots[position.cursor]
            free = lot.free
            if free <= 0:
                position.cursor += 1
                continue
            # The last sliver of a position can fall a few units of the 34th digit short;
            # take what is there rather than fail on rounding noise.
            take = want if want < free else free
            taken.append(self._inventory.assign(lot, update.client_order_id, take, now))
            want = exact_sub(want, take)
        return taken
