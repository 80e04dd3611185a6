"""Sell batches: per-asset legs, sales, and allocation of proceeds to redemptions.

The mirror of `batches.py` for the sell side (SPEC §4 allocation, side-generic): each sell
execution is a *sale* (price, quantity, USDC fee); a leg's fill ratio is sold / demanded; a
redemption's fill ratio in the batch is the minimum over its basket's assets, the same for
every redemption of one index, so a partial redemption stays a whole-basket redemption. Sales
are allocated FIFO in exact basket proportion; each piece disposes of the backing lots FIFO
(`InventoryManager.redeem`) with its realised PnL. What a leg sold beyond the batch's ratio
stays a sale *sold ahead*, which the next sell batch of that asset allocates first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from indexmaker.core.ids import BatchId, ExchangeOrderId, InstrumentId, Symbol, TradeId
from indexmaker.core.money import exact_add, exact_sub, share_down
from indexmaker.core.pacing import checkpoint
from indexmaker.engine.holdings import IndexHoldings
from indexmaker.engine.inventory import InventoryManager
from indexmaker.engine.strategy import BatchPlan
from indexmaker.model.index import Basket
from indexmaker.model.redemption import LotDisposal, Redemption

ZERO = Decimal(0)
ONE = Decimal(1)
DUST = Decimal("1e-24")  # index units below this are rounding noise, not a sale


@dataclass(slots=True)
class Sale:
    """One sell execution (or what is left of one sold ahead)."""

    asset: InstrumentId
    trade_id: TradeId
    price: Decimal
    quantity: Decimal
    fee: Decimal  # USDC
    crossed: bool = False  # taken by a buy batch of the same tick at the mid (crossing.py)
    taken: Decimal = ZERO
    fee_taken: Decimal = ZERO

    @property
    def left(self) -> Decimal:
        return exact_sub(self.quantity, self.taken)


@dataclass(slots=True)
class SellEntry:
    redemption: Redemption
    quantity: Decimal  # index units sized for this batch
    index_price: Decimal  # P at the sell limit prices
    ratio: Decimal = ZERO
    sold: Decimal = ZERO  # index units allocated in this batch


@dataclass(slots=True)
class SellLeg:
    instrument: InstrumentId
    demand: Decimal
    sales: list[Sale] = field(default_factory=list)
    cursor: int = 0
    received: Decimal = ZERO
    order_ids: list[ExchangeOrderId] = field(default_factory=list)

    def add(self, sale: Sale) -> None:
        self.sales.append(sale)
        self.received += sale.left

    @property
    def fill_ratio(self) -> Decimal:
        return min(ONE, self.received / self.demand) if self.demand > 0 else ONE


@dataclass(slots=True)
class SellGroup:
    basket: Basket
    entries: list[SellEntry] = field(default_factory=list)
    ratio: Decimal = ZERO


@dataclass(slots=True)
class SellBatch:
    batch_id: BatchId
    created_at: datetime
    groups: dict[Symbol, SellGroup]
    legs: dict[InstrumentId, SellLeg]
    notional: Decimal
    open_orders: int = 0

    def entries(self) -> Iterable[SellEntry]:
        for group in self.groups.values():
            yield from group.entries


def new_sell_batch(
    batch_id: BatchId, now: datetime, plan: BatchPlan[Redemption], baskets: Mapping[Symbol, Basket]
) -> SellBatch:
    """A batch of the planned redemptions, grouped by index, one leg per asset."""
    groups: dict[Symbol, SellGroup] = {}
    for planned in plan.entries:
        checkpoint()
        symbol = planned.update.symbol
        group = groups.get(symbol)
        if group is None:
            group = groups[symbol] = SellGroup(baskets[symbol])
        group.entries.append(SellEntry(planned.update, planned.quantity, planned.index_price))
    legs = {o.instrument: SellLeg(o.instrument, o.demand) for o in plan.asset_orders}
    return SellBatch(batch_id, now, groups, legs, plan.notional)


class SellAllocator:
    """Owns the sales sold ahead and allocates a sell batch's sales to its redemptions."""

    def __init__(self, inventory: InventoryManager, holdings: IndexHoldings | None = None) -> None:
        self._inventory = inventory
        self._holdings = holdings  # units and backing per index (engine/holdings.py)
        self._ahead: dict[InstrumentId, list[Sale]] = {}

    def sold_ahead(self, asset: InstrumentId) -> Decimal:
        return sum((s.left for s in self._ahead.get(asset, ())), ZERO)

    def sold_ahead_all(self) -> dict[InstrumentId, Decimal]:
        return {asset: self.sold_ahead(asset) for asset in self._ahead}

    def open(self, batch: SellBatch) -> list[SellEntry]:
        """Hand the sales sold ahead to the batch's legs; allocate what they make possible."""
        for asset, leg in batch.legs.items():
            for sale in self._ahead.pop(asset, []):
                leg.add(sale)
        touched: list[SellEntry] = []
        for group in batch.groups.values():
            touched.extend(self._advance(batch, group))
        return touched

    def on_sale(self, batch: SellBatch, sale: Sale) -> list[SellEntry]:
        """A fill of this batch: allocate it; returns the entries that got more proceeds."""
        batch.legs[sale.asset].add(sale)
        touched: list[SellEntry] = []
        for group in batch.groups.values():
            if any(a.instrument == sale.asset for a in group.basket.assets):
                touched.extend(self._advance(batch, group))
        return touched

    def close(self, batch: SellBatch) -> None:
        """The batch is complete: sales nobody took are sold ahead for the next batch."""
        for asset, leg in batch.legs.items():
            left = [s for s in leg.sales if s.left > 0]
            if left:
                self._ahead.setdefault(asset, []).extend(left)

    def carry(self, sale: Sale) -> None:
        """A fill after its batch completed: sold ahead, never lost."""
        self._ahead.setdefault(sale.asset, []).append(sale)

    # ------------------------------------------------------------------ allocation

    def _advance(self, batch: SellBatch, group: SellGroup) -> list[SellEntry]:
        ratio = ONE
        for asset in group.basket.assets:
            ratio = min(ratio, batch.legs[asset.instrument].fill_ratio)
        if ratio <= group.ratio:
            return []
        group.ratio = ratio
        touched = []
        for entry in group.entries:
            checkpoint()
            delta = ratio - entry.ratio
            units = delta * entry.quantity
            if units <= DUST:
                continue
            redemption = entry.redemption
            for asset in group.basket.assets:
                self._take(batch.legs[asset.instrument], units * asset.quantity, redemption)
            entry.ratio = ratio
            entry.sold += units
            redemption.sold += units
            if self._holdings is not None:  # the index's cash share (a rebalance's sales)
                redemption.gross += self._holdings.sold(group.basket, units)
            touched.append(entry)
        return touched

    def _take(self, leg: SellLeg, want: Decimal, redemption: Redemption) -> None:
        """Book `want` of the leg's sales to the redemption, FIFO (each piece booked before
        the next is taken, so a sale is never taken twice)."""
        while want > 0 and leg.cursor < len(leg.sales):
            sale = leg.sales[leg.cursor]
            left = sale.left
            if left <= 0:
                leg.cursor += 1
                continue
            take = want if want < left else left
            self._book(redemption, sale, take)
            want = exact_sub(want, take)

    def _book(self, redemption: Redemption, sale: Sale, take: Decimal) -> None:
        """Credit `take` of `sale` to the redemption; dispose of its backing FIFO (first, so
        a short backing raises before anything changed)."""
        pieces = self._inventory.redeem(sale.asset, take)
        fee_left = exact_sub(sale.fee, sale.fee_taken)
        if take == sale.left:
            fee = fee_left  # the last taker gets the rest: shares add up exactly
        else:
            fee = min(share_down(sale.fee, take, sale.quantity), fee_left)
        sale.taken = exact_add(sale.taken, take)
        sale.fee_taken = exact_add(sale.fee_taken, fee)
        redemption.gross += take * sale.price
        redemption.exchange_fee += fee
        fee_rest = fee
        for index, (lot, quantity) in enumerate(pieces):
            last = index == len(pieces) - 1
            piece_fee = fee_rest if last else min(share_down(fee, quantity, take), fee_rest)
            fee_rest = exact_sub(fee_rest, piece_fee)
            redemption.disposals.append(
                LotDisposal(
                    lot.lot_id,
                    lot.asset,
                    quantity,
                    lot.price,
                    share_down(lot.fee, quantity, lot.quantity),
                    sale.price,
                    piece_fee,
                    sale.crossed,
                )
            )
