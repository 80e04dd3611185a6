"""Sell batches: per-asset legs, sales, and allocation of proceeds to redemptions.

The mirror of `batches.py` for the sell side (SPEC §4 allocation, side-generic): each sell
execution is a *sale* (price, quantity, USDC fee); a leg's fill ratio is sold / demanded; a
redemption's fill ratio in the batch is the minimum over its basket's assets, the same for
every redemption of one index, so a partial redemption stays a whole-basket redemption. Sales
are allocated FIFO in exact basket proportion; each piece disposes of the backing lots FIFO
(`InventoryManager.redeem`) with its realised PnL. What a leg sold beyond the batch's ratio
stays a sale *sold ahead*, which the next sell batch of that asset allocates first.

As on the buy side (batches.py), an entry's figures are cumulative totals of its fill ratio
(units_at; a sale's fee share cumulative per sale) and proceeds and fees add exactly: a step
books total(after) - total(before), so the end state does not depend on how the fills were
grouped into steps (issue 10, docs/decisions.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from indexmaker.core.errors import InvariantViolation
from indexmaker.core.ids import BatchId, ExchangeOrderId, InstrumentId, Symbol, TradeId
from indexmaker.core.money import (
    EXACT_CONTEXT,
    asset_share_down,
    exact_add,
    exact_sub,
    share_down,
    units_at,
)
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
    sold: Decimal = ZERO  # index units allocated in this batch: units_at(ratio, quantity)
    taken: dict[InstrumentId, Decimal] = field(default_factory=dict)  # per asset, exact


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
        # Rounded down, in its own context: units_at(ratio) never asks for more than arrived
        # (but for a demand rounded below its exact sum), whatever the caller's context.
        return min(ONE, share_down(self.received, ONE, self.demand)) if self.demand > 0 else ONE


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

    @property
    def inventory(self) -> InventoryManager:
        return self._inventory

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

    def absorb(self, batch: SellBatch, sale: Sale, now: datetime) -> list[SellEntry]:
        """The issuer takes a leg the venue would refuse (absorption.py): the sale's quantity
        becomes a free lot of the issuer's at the sale's price (the asset stays at the venue;
        the redemptions' backing it replaces is disposed of as they are allocated), then the
        sale is allocated like a fill."""
        self._inventory.open_lot(
            sale.asset, sale.trade_id, sale.price, sale.quantity, ZERO, now, None, True, True
        )
        return self.on_sale(batch, sale)

    def carry(self, sale: Sale) -> None:
        """A fill after its batch completed: sold ahead, never lost."""
        self._ahead.setdefault(sale.asset, []).append(sale)

    # ------------------------------------------------------------------ allocation

    def _advance(self, batch: SellBatch, group: SellGroup) -> list[SellEntry]:
        """Raise the group's fill ratio to the minimum over its legs and book to each entry
        its share of every leg's sales. Leg by leg over all entries (one pass over a leg's
        sales and backing), in basket order: each redemption's sums are formed in the order
        of booking one redemption and one asset at a time, so the figures are the same to
        the digit (tests/unit/engine/test_sell_allocation.py). Raises InvariantViolation
        before anything changed if an asset's backing is short."""
        ratio = ONE
        for asset in group.basket.assets:
            ratio = min(ratio, batch.legs[asset.instrument].fill_ratio)
        if ratio <= group.ratio:
            return []
        moving: list[SellEntry] = []
        units: list[Decimal] = []  # each moving entry's units sold after this step
        for entry in group.entries:
            sold = units_at(ratio, entry.quantity)
            if sold > entry.sold:  # any unit of the grid: a skipped step would be lost
                moving.append(entry)
                units.append(sold)
        # Each entry's cumulative take of each asset, and what it still wants of it.
        shares = [[asset_share_down(u, a.quantity) for u in units] for a in group.basket.assets]
        splits = [
            _split(
                batch.legs[a.instrument],
                [
                    exact_sub(share, e.taken[a.instrument]) if a.instrument in e.taken else share
                    for e, share in zip(moving, row, strict=True)
                ],
            )
            for a, row in zip(group.basket.assets, shares, strict=True)
        ]
        for split in splits:  # before anything changes
            short = exact_sub(split.total, self._inventory.backing(split.asset))
            if short > 0:
                raise InvariantViolation(f"{split.asset}: sale exceeds backing by {short}")
        group.ratio = ratio
        for split, row in zip(splits, shares, strict=True):
            batch.legs[split.asset].cursor = split.cursor
            self._book(split, moving)
            for entry, share, unmet in zip(moving, row, split.unmet, strict=True):
                # All it wanted, but for a leg that ran out (a unit of the 34th digit).
                entry.taken[split.asset] = exact_sub(share, unmet) if unmet else share
        steps = [exact_sub(sold, e.sold) for e, sold in zip(moving, units, strict=True)]
        # The index's units and backing, leg by leg (what each leg took, summed in _split:
        # the same however the steps were grouped, where the wants are not), and
        # each redemption's share of the index's cash (a rebalance's sales not yet spent).
        cash = (
            self._holdings.redeemed(
                group.basket.symbol, steps, [(s.asset, s.total) for s in splits]
            )
            if self._holdings is not None
            else None
        )
        for n, (entry, sold, share) in enumerate(zip(moving, units, steps, strict=True)):
            checkpoint()
            share = exact_sub(sold, entry.sold)
            entry.ratio = ratio
            entry.sold = sold
            redemption = entry.redemption
            redemption.sold = exact_add(redemption.sold, share)
            if cash is not None:
                redemption.gross = exact_add(redemption.gross, cash[n])
        return moving

    def _book(self, split: _Split, entries: list[SellEntry]) -> None:
        """Credit each sale piece of one leg to its entry: proceeds, the sale's fee share
        (cumulative per sale: share_down(fee, taken after, quantity) less what was taken
        before, so the last taker gets the rest and shares add up exactly), and the backing
        lots it disposes of FIFO, each with its part of that fee."""
        add, sub = EXACT_CONTEXT.add, EXACT_CONTEXT.subtract
        disposed = self._inventory.redeem_each(split.asset, split.takes)
        lots, quantities, ends = disposed.lots, disposed.quantities, disposed.ends
        start = 0
        for n, (index, sale, take, rest) in enumerate(
            zip(split.entries, split.sales, split.takes, split.rests, strict=True)
        ):
            if not n & _PACE:
                checkpoint()
            entry = entries[index]
            redemption = entry.redemption
            taken = add(sale.taken, take)
            fee_left = sub(sale.fee, sale.fee_taken)
            if rest:
                fee = fee_left
            else:
                fee = min(sub(share_down(sale.fee, taken, sale.quantity), sale.fee_taken), fee_left)
            sale.taken = taken
            sale.fee_taken = add(sale.fee_taken, fee)
            # Exact sums: the same however the pieces were grouped (issue 10).
            redemption.gross = add(redemption.gross, EXACT_CONTEXT.multiply(take, sale.price))
            redemption.exchange_fee = add(redemption.exchange_fee, fee)
            end = ends[n]
            fee_rest = fee
            for k in range(start, end):
                lot, quantity = lots[k], quantities[k]
                if k == end - 1:
                    piece_fee = fee_rest
                else:
                    piece_fee = min(share_down(fee, quantity, take), fee_rest)
                    fee_rest = sub(fee_rest, piece_fee)
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
            start = end


_PACE = 63  # a checkpoint every 64 wants or sale pieces: well below a 2 ms slice


@dataclass(slots=True)
class _Split:
    """One leg's wants split over its sales, FIFO, nothing changed yet; flat (piece k is
    `takes[k]` of `sales[k]` for `entries[k]`, `rests[k]` when it takes the sale's rest)."""

    asset: InstrumentId
    cursor: int
    entries: list[int] = field(default_factory=list)
    sales: list[Sale] = field(default_factory=list)
    takes: list[Decimal] = field(default_factory=list)
    rests: list[bool] = field(default_factory=list)
    total: Decimal = ZERO  # Σ takes, exact
    unmet: list[Decimal] = field(default_factory=list)  # per want: what the sales lacked


def _split(leg: SellLeg, wants: list[Decimal]) -> _Split:
    """Each entry's want of the leg from its sales, from the leg's cursor on (a want the
    sales cannot meet gets what is left; the cursor moves past a sale only when a later
    want finds it used up, as before)."""
    add, sub = EXACT_CONTEXT.add, EXACT_CONTEXT.subtract
    sales = leg.sales
    split = _Split(leg.instrument, leg.cursor)
    sale: Sale | None = None
    left = ZERO
    for index, want in enumerate(wants):
        if not index & _PACE:
            checkpoint()
        while want > 0 and split.cursor < len(sales):
            if sale is None:
                sale = sales[split.cursor]
                left = sale.left
            if left <= 0:
                split.cursor += 1
                sale = None
                continue
            rest = not want < left
            take = left if rest else want
            split.entries.append(index)
            split.sales.append(sale)
            split.takes.append(take)
            split.rests.append(rest)
            split.total = add(split.total, take)
            want = sub(want, take)
            left = sub(left, take)
        split.unmet.append(want if want > 0 else ZERO)
    return split
