"""Index order manager: the client order ledger.

One active order per client; a client's later orders wait FIFO behind it. An order is
a FIFO queue of updates (each NewIndexOrder for the same symbol and side adds one).
Validation always happens before any mutation, so a rejected request changes nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from indexmaker.core.events import CancelIndexOrderRequest, NewIndexOrderRequest
from indexmaker.core.ids import ClientKey, ClientOrderId, Symbol
from indexmaker.core.money import (
    INDEX_TOKEN_DECIMALS,
    USDC_DECIMALS,
    round_index_down,
    round_usdc_down,
)
from indexmaker.model.order import IndexOrder, OrderStatus, OrderUpdate
from indexmaker.model.side import Side

ZERO = Decimal(0)


# States whose not-yet-engaged collateral a cancel may take back.
_REDUCIBLE = frozenset({OrderStatus.READY, OrderStatus.ENGAGED, OrderStatus.PARTLY_MINTABLE})


class OrderRejected(Exception):
    """A request refused before any state changed; the reason goes to the client."""

    def __init__(self, reason: str, status: OrderStatus = OrderStatus.INVALID_ORDER) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class Reduction:
    """Collateral taken off one update by a cancel or an opposite-side order."""

    update: OrderUpdate
    amount: Decimal
    removed: bool  # the update is gone entirely


class IndexOrderManager:
    def __init__(
        self,
        min_order: Decimal = Decimal("10"),
        deposit_chains: Mapping[int, str] | None = None,
    ) -> None:
        """`min_order`: the smallest buy accepted (USDC); `deposit_chains`: chain id → name of
        every chain the service takes deposits on (None: any chain, for tests of other rules).
        """
        self._min_order = min_order
        self._deposit_chains = dict(deposit_chains) if deposit_chains is not None else None
        self._queues: dict[ClientKey, deque[IndexOrder]] = {}
        self._seen: dict[ClientKey, set[ClientOrderId]] = {}
        self._updates: dict[tuple[ClientKey, ClientOrderId], OrderUpdate] = {}
        self._arrivals = 0
        self._active: dict[ClientKey, IndexOrder] = {}
        self._active_sorted: list[IndexOrder] | None = []

    # ------------------------------------------------------------------ requests

    def check_new(self, request: NewIndexOrderRequest) -> None:
        """Raise OrderRejected if the request must be refused (either side)."""
        if request.client_order_id in self._seen.get(request.client, ()):
            raise OrderRejected(f"duplicate client_order_id {request.client_order_id}")
        self._check_terms(request)

    def _check_terms(self, request: NewIndexOrderRequest) -> None:
        """SPEC §3: a chain the service takes deposits on; an amount of at most 6 decimals and,
        for a buy, at least the minimum order."""
        chains = self._deposit_chains
        if chains is not None and request.client[0] not in chains:
            supported = ", ".join(f"{cid} ({name})" for cid, name in sorted(chains.items()))
            raise OrderRejected(
                f"chain_id {request.client[0]} takes no deposits here; supported: {supported}"
            )
        amount = request.amount
        if not amount.is_finite() or amount <= 0:
            raise OrderRejected("amount must be > 0")
        if request.side is Side.SELL:  # index units (18 decimals), floor in USDC
            if amount != round_index_down(amount):
                raise OrderRejected(
                    f"amount {amount} has more than {INDEX_TOKEN_DECIMALS} decimals"
                )
            floor = request.min_proceeds
            if floor is not None and (not floor.is_finite() or floor < 0):
                raise OrderRejected("min_proceeds must be >= 0")
            if floor is not None and floor != round_usdc_down(floor):
                raise OrderRejected(f"min_proceeds {floor} has more than {USDC_DECIMALS} decimals")
            return
        if request.min_proceeds is not None:
            raise OrderRejected("min_proceeds applies to a sell (redemption) only")
        if amount != round_usdc_down(amount):
            raise OrderRejected(f"amount {amount} has more than {USDC_DECIMALS} decimals")
        if request.side is Side.BUY and amount < self._min_order:
            raise OrderRejected(f"amount {amount} is below the minimum order of {self._min_order}")

    def next_arrival(self) -> int:
        """A place in the global arrival order (FIFO engagement) for a non-buy order."""
        self._arrivals += 1
        return self._arrivals

    def add(self, request: NewIndexOrderRequest, now: datetime) -> OrderUpdate:
        """Queue a validated buy update (call check_new first)."""
        self._seen.setdefault(request.client, set()).add(request.client_order_id)
        self._arrivals += 1
        update = OrderUpdate(
            client=request.client,
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            amount=request.amount,
            received_at=now,
            arrival=self._arrivals,
        )
        order = self.find(request.client, request.symbol)
        if order is None:
            order = IndexOrder(client=request.client, symbol=request.symbol, side=request.side)
            queue = self._queues.setdefault(request.client, deque())
            queue.append(order)
            if len(queue) == 1:
                self._activate(order)
        order.updates.append(update)
        self._updates[(request.client, request.client_order_id)] = update
        return update

    def reject_id(self, client: ClientKey, client_order_id: ClientOrderId) -> None:
        """Remember an id we refused, so a replay of it is refused too."""
        self._seen.setdefault(client, set()).add(client_order_id)

    def check_cancel(self, request: CancelIndexOrderRequest) -> IndexOrder:
        order = self.find(request.client, request.symbol)
        update = self._updates.get((request.client, request.client_order_id))
        if order is None or update is None or update.symbol != request.symbol:
            raise OrderRejected(f"no open order {request.client_order_id} for {request.symbol}")
        if not request.amount.is_finite() or request.amount <= 0:
            raise OrderRejected("amount must be > 0")
        if request.amount != round_usdc_down(request.amount):  # a buy's cancel names USDC
            raise OrderRejected(f"amount: at most {USDC_DECIMALS} decimals (USDC) for a buy")
        if self.reducible(order) <= 0:
            raise OrderRejected("nothing to cancel: all collateral is engaged or spent")
        return order

    def plan_reduction(
        self, order: IndexOrder, amount: Decimal
    ) -> list[tuple[OrderUpdate, Decimal]]:
        """What `reduce` would take from which update, newest first; changes nothing."""
        plan: list[tuple[OrderUpdate, Decimal]] = []
        left = amount
        for update in reversed(order.updates):
            if left <= 0:
                break
            take = min(left, self._cancellable(update))
            if take > 0:
                plan.append((update, take))
                left -= take
        return plan

    def reduce(self, order: IndexOrder, amount: Decimal) -> list[Reduction]:
        """Take up to `amount` of not-yet-engaged collateral off the order, newest first."""
        return self.apply_reduction(self.plan_reduction(order, amount))

    def apply_reduction(self, plan: list[tuple[OrderUpdate, Decimal]]) -> list[Reduction]:
        """Carry out a plan from `plan_reduction` (checked by the caller in between)."""
        reductions: list[Reduction] = []
        for update, take in plan:
            update.amount -= take
            if update.remaining < 0:  # all of it taken: keep exactly what is spent or engaged
                update.amount = update.management_fee + update.spent + update.engaged
            removed = update.spent == 0 and update.engaged == 0 and update.remaining <= 0
            reductions.append(Reduction(update, take, removed))
        for reduction in reductions:
            if reduction.removed:
                reduction.update.move_to(OrderStatus.CANCELLED)
                self.remove(reduction.update)
        return reductions

    def reducible(self, order: IndexOrder) -> Decimal:
        return sum((self._cancellable(u) for u in order.updates), ZERO)

    @staticmethod
    def _cancellable(update: OrderUpdate) -> Decimal:
        if update.status in (OrderStatus.OPEN, OrderStatus.MANAGE_COLLATERAL):
            return update.amount
        if update.status in _REDUCIBLE:
            return max(update.remaining, ZERO)
        return ZERO

    # ------------------------------------------------------------------ queries

    def find(self, client: ClientKey, symbol: Symbol) -> IndexOrder | None:
        for order in self._queues.get(client, ()):
            if order.symbol == symbol:
                return order
        return None

    def update(self, client: ClientKey, client_order_id: ClientOrderId) -> OrderUpdate | None:
        return self._updates.get((client, client_order_id))

    def all_updates(self) -> Iterator[OrderUpdate]:
        return iter(list(self._updates.values()))

    def active_orders(self) -> list[IndexOrder]:
        """Active orders (one per client) in arrival order: engagement is FIFO by this."""
        if self._active_sorted is None:
            self._active_sorted = sorted(self._active.values(), key=lambda o: o.arrival)
        return self._active_sorted

    def is_active(self, update: OrderUpdate) -> bool:
        order = self._active.get(update.client)
        return order is not None and order.symbol == update.symbol

    def open_count(self) -> int:
        return len(self._updates)

    # ------------------------------------------------------------------ removal

    def remove(self, update: OrderUpdate) -> None:
        """Drop a finished update; an empty order leaves and the client's next one starts."""
        self._updates.pop((update.client, update.client_order_id), None)
        order = self.find(update.client, update.symbol)
        if order is None:
            return
        if update in order.updates:
            order.updates.remove(update)
        if order.updates:
            self._active_sorted = None
            return
        queue = self._queues[update.client]
        queue.remove(order)
        if self._active.get(update.client) is order:
            del self._active[update.client]
            self._active_sorted = None
            if queue:
                self._activate(queue[0])
        if not queue:
            del self._queues[update.client]

    def _activate(self, order: IndexOrder) -> None:
        self._active[order.client] = order
        self._active_sorted = None
