"""Inventory manager: per-asset FIFO lots, their assignments to index orders, disposal.

Assigned quantity backs index units; a redemption sells that backing FIFO by first
assignment (`redeem`), each piece with the lot's cost for the realised PnL.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from indexmaker.core.errors import InvariantViolation
from indexmaker.core.ids import BatchId, ClientOrderId, InstrumentId, LotId, TradeId
from indexmaker.core.money import EXACT_CONTEXT, exact_add, exact_sub, share_down
from indexmaker.core.pacing import checkpoint
from indexmaker.model.lot import Lot, LotAssignment

ZERO = Decimal(0)


@dataclass(slots=True)
class Disposed:
    """What `redeem_each` took, flat: piece k is `quantities[k]` of `lots[k]`; the pieces of
    quantity i are those from `ends[i - 1]` (0 for the first) up to `ends[i]`."""

    lots: list[Lot]
    quantities: list[Decimal]
    ends: list[int]


class InventoryManager:
    def __init__(self) -> None:
        self._lots: dict[InstrumentId, deque[Lot]] = {}
        self._next_lot_id = 1
        # per asset: Σ lot quantity − Σ disposed, what our lots hold at the venue (also of
        # lots used up and dropped from `_lots`); engine/balances.py checks the venue covers it
        self._held: dict[InstrumentId, Decimal] = {}
        # Σ quantity × price of every lot opened (USDC): what the issuer bought on venues.
        self.bought_notional = ZERO
        # Σ quantity × price of the sell legs the issuer took from redemptions (absorption.py):
        # USDC the issuer paid redeemers for assets that stayed at the venue as its own lots.
        self.absorbed_notional = ZERO
        # The lots absorbed, while any of their quantity is free (absorption.py's cap).
        self._absorbed: list[Lot] = []
        # Σ quantity × price of the lots buy batches took from redemptions of the same tick at
        # the mid (crossing.py): USDC buyers paid redeemers directly.
        self.crossed_notional = ZERO
        # Lots with assigned quantity not yet redeemed, FIFO by first assignment.
        self._backing: dict[InstrumentId, deque[Lot]] = {}
        self._backed: set[LotId] = set()

    def open_lot(
        self,
        asset: InstrumentId,
        trade_id: TradeId,
        price: Decimal,
        quantity: Decimal,
        fee: Decimal,
        now: datetime,
        reserved_by: BatchId | None,
        crossed: bool = False,
        absorbed: bool = False,
    ) -> Lot:
        """A lot of one execution; `crossed`: bought from a redemption of the same tick at
        the mid (crossing.py), not on the venue (not counted in `bought_notional`);
        `absorbed`: also crossed, taken by the issuer itself (counted in `absorbed_notional`)."""
        if quantity <= 0 or price <= 0 or fee < 0:
            raise InvariantViolation(f"bad execution for {asset}: {quantity} @ {price} fee {fee}")
        lot = Lot(
            lot_id=LotId(self._next_lot_id),
            asset=asset,
            trade_id=trade_id,
            price=price,
            quantity=quantity,
            fee=fee,
            opened_at=now,
            reserved_by=reserved_by,
        )
        self._next_lot_id += 1
        if absorbed:
            self.absorbed_notional += quantity * price
            self._absorbed.append(lot)
        elif crossed:
            self.crossed_notional += quantity * price
        else:
            self.bought_notional += quantity * price
        self._held[asset] = exact_add(self._held.get(asset, ZERO), quantity)
        self._lots.setdefault(asset, deque()).append(lot)
        return lot

    def absorbed_free(self) -> list[Lot]:
        """The lots the issuer absorbed from redemptions (absorption.py) with quantity still
        free (no buy batch assigned it yet), in the order absorbed."""
        self._absorbed = [lot for lot in self._absorbed if lot.free > 0]
        return list(self._absorbed)

    def reserve_free(self, asset: InstrumentId, batch_id: BatchId) -> list[Lot]:
        """Hand every unreserved lot with free quantity to a batch (carry-over, FIFO)."""
        taken = [lot for lot in self._open(asset) if lot.reserved_by is None]
        for lot in taken:
            lot.reserved_by = batch_id
        return taken

    def release(self, lots: list[Lot]) -> None:
        for lot in lots:
            lot.reserved_by = None

    def free_quantity(self, asset: InstrumentId, *, unreserved_only: bool = True) -> Decimal:
        return sum(
            (
                lot.free
                for lot in self._open(asset)
                if not unreserved_only or lot.reserved_by is None
            ),
            ZERO,
        )

    def assign(
        self,
        lot: Lot,
        client_order_id: ClientOrderId,
        quantity: Decimal,
        now: datetime | None = None,
    ) -> LotAssignment:
        """Assign part of a lot; fee shared pro rata, the last taker gets the rest exactly.

        The fee assigned is cumulative: share_down(fee, assigned, quantity) of the lot after
        the assignment, less what earlier assignments got. So pieces of one lot add up to the
        same fee however the lot was cut into them (issue 10), and assigning the whole lot
        assigns its whole fee. Raises InvariantViolation for a quantity <= 0 or above free."""
        if quantity <= 0 or quantity > lot.free:
            raise InvariantViolation(f"lot {lot.lot_id}: cannot assign {quantity} of {lot.free}")
        fee = self.fee_share(lot, quantity)
        lot.assigned = exact_add(lot.assigned, quantity)
        lot.fee_assigned = exact_add(lot.fee_assigned, fee)
        assignment = LotAssignment(
            lot.lot_id,
            lot.asset,
            client_order_id,
            quantity,
            lot.price,
            fee,
            lot_quantity=lot.quantity,
            lot_fee=lot.fee,
            lot_remaining=lot.free,
            opened_at=lot.opened_at,
            assigned_at=now or lot.opened_at,
        )
        lot.assignments.append(assignment)
        if lot.lot_id not in self._backed:
            self._backed.add(lot.lot_id)
            self._backing.setdefault(lot.asset, deque()).append(lot)
        return assignment

    @staticmethod
    def fee_share(lot: Lot, quantity: Decimal) -> Decimal:
        """The fee (USDC) assigning `quantity` more of `lot` carries (`assign`): cumulative,
        share_down(fee, assigned after, quantity of the lot) less the fee assigned before,
        never above the fee not yet assigned. Changes nothing."""
        # Lot figures add up exactly (never rounded above what exists); the fee share is a
        # quotient, so it rounds down and never exceeds the fee not yet assigned.
        assigned = exact_add(lot.assigned, quantity)
        fee = exact_sub(share_down(lot.fee, assigned, lot.quantity), lot.fee_assigned)
        return min(fee, exact_sub(lot.fee, lot.fee_assigned))

    def redeem(self, asset: InstrumentId, quantity: Decimal) -> list[tuple[Lot, Decimal]]:
        """Dispose of `quantity` of the asset's backing FIFO for a redemption: the pieces
        taken, by lot. Raises InvariantViolation, changing nothing, if the backing is short
        (index units without backing: a ledger bug)."""
        taken = self.redeem_each(asset, (quantity,))
        return list(zip(taken.lots, taken.quantities, strict=True))

    def redeem_each(self, asset: InstrumentId, quantities: Sequence[Decimal]) -> Disposed:
        """`redeem` of each quantity in turn, in one pass over the backing (a sell batch's
        allocation: one quantity per sale piece), exactly what successive `redeem` calls give.
        Flat, so a large allocation builds no list per quantity. Raises InvariantViolation,
        changing nothing, if the backing is short for their sum."""
        total = exact_add(*quantities)
        short = exact_sub(total, self.backing(asset))
        if short > 0:
            raise InvariantViolation(f"{asset}: redemption of {total} exceeds backing by {short}")
        queue = self._backing.get(asset)
        # Context methods, not the helpers: this loop runs once per lot disposal.
        add, sub = EXACT_CONTEXT.add, EXACT_CONTEXT.subtract
        taken = Disposed([], [], [])
        lots, pieces, ends = taken.lots, taken.quantities, taken.ends
        backing = iter(queue or ())
        lot: Lot | None = None
        held = ZERO
        for n, quantity in enumerate(quantities):
            if not n & 63:
                checkpoint()  # a batch's allocation: thousands of quantities
            left = quantity
            while left > 0:
                if lot is None or held <= 0:
                    lot = next(backing)  # the sum fits the backing: never runs out
                    held = sub(lot.assigned, lot.redeemed)
                    continue
                take = left if left < held else held
                lots.append(lot)
                pieces.append(take)
                lot.redeemed = add(lot.redeemed, take)
                held = sub(held, take)
                left = sub(left, take)
            ends.append(len(lots))
        self._held[asset] = exact_sub(self._held.get(asset, ZERO), total)  # sold: gone
        while queue and exact_sub(queue[0].assigned, queue[0].redeemed) <= 0:
            self._backed.discard(queue.popleft().lot_id)
        return taken

    def backing(self, asset: InstrumentId) -> Decimal:
        """Assigned and not redeemed: what backs the asset's share of index units."""
        return sum(
            (exact_sub(lot.assigned, lot.redeemed) for lot in self._backing.get(asset, ())), ZERO
        )

    def dispose(self, asset: InstrumentId, quantity: Decimal) -> Decimal:
        """Sell-side disposal of free, unreserved quantity FIFO; returns what was disposed."""
        left = quantity
        for lot in self._open(asset):
            if left <= 0:
                break
            if lot.reserved_by is not None:
                continue
            take = min(left, lot.free)
            lot.disposed = exact_add(lot.disposed, take)
            left = exact_sub(left, take)
        disposed = exact_sub(quantity, left)
        self._held[asset] = exact_sub(self._held.get(asset, ZERO), disposed)
        return disposed

    def held_quantity(self, asset: InstrumentId) -> Decimal:
        """What every lot of `asset` ever opened still holds (not disposed of or redeemed),
        assigned or not: the quantity the venue account must hold for us."""
        return self._held.get(asset, ZERO)

    def lots(self, asset: InstrumentId) -> list[Lot]:
        return list(self._lots.get(asset, ()))

    def assets(self) -> list[InstrumentId]:
        return list(self._lots)

    def _open(self, asset: InstrumentId) -> Iterator[Lot]:
        # Lots are FIFO; drop fully used ones from the front so scans stay short.
        queue = self._lots.get(asset)
        if not queue:
            return iter(())
        while queue and queue[0].free <= 0 and queue[0].reserved_by is None:
            queue.popleft()
        return (lot for lot in queue if lot.free > 0)
