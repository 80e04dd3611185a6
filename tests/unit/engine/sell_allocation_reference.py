"""The sell allocation as it was before it was made fast (one redemption and one asset at a
time, one `InventoryManager.redeem` call per sale piece): the oracle the fast allocation in
`engine/sell_batches.py` must match exactly (test_sell_allocation.py). Test code only.
Since issue 10 it books cumulative totals as the fast one does (units_at, a sale's fee share
cumulative per sale, exact sums)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from indexmaker.core.errors import InvariantViolation
from indexmaker.core.ids import InstrumentId, LotId
from indexmaker.core.money import (
    asset_share_down,
    exact_add,
    exact_multiply,
    exact_sub,
    round_cost_down,
    share_down,
    units_at,
)
from indexmaker.core.pacing import checkpoint
from indexmaker.engine.holdings import IndexHoldings
from indexmaker.engine.inventory import InventoryManager
from indexmaker.engine.sell_batches import (
    ONE,
    Sale,
    SellAllocator,
    SellBatch,
    SellEntry,
    SellGroup,
    SellLeg,
)
from indexmaker.model.index import Basket
from indexmaker.model.lot import Lot

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class OldLotDisposal:
    """model.redemption.LotDisposal as it was (a frozen dataclass), same fields."""

    lot_id: LotId
    asset: InstrumentId
    quantity: Decimal
    cost_price: Decimal
    cost_fee: Decimal
    sale_price: Decimal
    sale_fee: Decimal
    crossed: bool = False


def reference_redeem(
    inventory: InventoryManager, asset: InstrumentId, quantity: Decimal
) -> list[tuple[Lot, Decimal]]:
    """InventoryManager.redeem as it was: one scan of the backing from its front per call."""
    pieces: list[tuple[Lot, Decimal]] = []
    left = quantity
    for lot in inventory._backing.get(asset, ()):
        if left <= 0:
            break
        held = exact_sub(lot.assigned, lot.redeemed)
        if held > 0:
            take = left if left < held else held
            pieces.append((lot, take))
            left = exact_sub(left, take)
    if left > 0:
        raise InvariantViolation(f"{asset}: redemption of {quantity} exceeds backing by {left}")
    for lot, take in pieces:
        lot.redeemed = exact_add(lot.redeemed, take)
    inventory._held[asset] = exact_sub(inventory._held.get(asset, ZERO), quantity)
    queue = inventory._backing[asset] if pieces else None
    while queue and exact_sub(queue[0].assigned, queue[0].redeemed) <= 0:
        inventory._backed.discard(queue.popleft().lot_id)
    return pieces


class ReferenceAllocator(SellAllocator):
    """SellAllocator with the allocation it had before: entry by entry, asset by asset."""

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
            sold = units_at(ratio, entry.quantity)
            units = exact_sub(sold, entry.sold)
            if units <= 0:
                continue
            redemption = entry.redemption
            wants = []
            for asset in group.basket.assets:
                share = asset_share_down(sold, asset.quantity)  # issue 12
                have = entry.taken.get(asset.instrument)
                want = share if have is None else exact_sub(share, have)
                unmet, took = self._take_old(batch.legs[asset.instrument], want, entry)
                wants.append((asset.instrument, took))
                entry.taken[asset.instrument] = exact_sub(share, unmet) if unmet else share
            entry.ratio = ratio
            entry.sold = sold
            redemption.sold = exact_add(redemption.sold, units)
            if self._holdings is not None:
                redemption.gross = exact_add(
                    redemption.gross, _holdings_sold(self._holdings, group.basket, units, wants)
                )
            touched.append(entry)
        return touched

    def _take_old(self, leg: SellLeg, want: Decimal, entry: SellEntry) -> tuple[Decimal, Decimal]:
        """Book `want` from the leg's sales; what they lacked (0: none) and what was taken."""
        took = ZERO
        while want > 0 and leg.cursor < len(leg.sales):
            sale = leg.sales[leg.cursor]
            left = sale.left
            if left <= 0:
                leg.cursor += 1
                continue
            take = want if want < left else left
            self._book_old(entry, sale, take)
            took = exact_add(took, take)
            want = exact_sub(want, take)
        return (want if want > 0 else ZERO), took

    def _book_old(self, entry: SellEntry, sale: Sale, take: Decimal) -> None:
        redemption = entry.redemption
        pieces = reference_redeem(self._inventory, sale.asset, take)
        fee_left = exact_sub(sale.fee, sale.fee_taken)
        taken = exact_add(sale.taken, take)
        if take == sale.left:
            fee = fee_left
        else:
            fee = min(
                exact_sub(share_down(sale.fee, taken, sale.quantity), sale.fee_taken), fee_left
            )
        sale.taken = taken
        sale.fee_taken = exact_add(sale.fee_taken, fee)
        redemption.gross = exact_add(redemption.gross, exact_multiply(take, sale.price))
        redemption.exchange_fee = exact_add(redemption.exchange_fee, fee)
        fee_rest = fee
        for index, (lot, quantity) in enumerate(pieces):
            last = index == len(pieces) - 1
            piece_fee = fee_rest if last else min(share_down(fee, quantity, take), fee_rest)
            fee_rest = exact_sub(fee_rest, piece_fee)
            redemption.disposals.append(
                OldLotDisposal(  # type: ignore[arg-type]  # same fields, the old class
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


def _holdings_sold(
    holdings: IndexHoldings,
    basket: Basket,
    units: Decimal,
    wants: list[tuple[InstrumentId, Decimal]],
) -> Decimal:
    """IndexHoldings.sold as it was: one redemption's units and every asset of its basket
    (what it wanted of each), one at a time (the fast allocation books them per leg:
    IndexHoldings.redeemed); the cash share cumulative since issue 10, as there."""
    symbol = basket.symbol
    before = holdings.units.get(symbol, ZERO)
    cash = holdings.cash.get(symbol, ZERO)
    base_cash, base_units, sold = holdings._since.get(symbol, (cash, before, ZERO))
    after = exact_add(sold, units)
    share = ZERO
    if base_cash > 0 and base_units > 0:
        share = exact_sub(
            round_cost_down(share_down(base_cash, after, base_units)),
            round_cost_down(share_down(base_cash, sold, base_units)),
        )
    holdings._since[symbol] = (base_cash, base_units, after)
    if share > 0:
        holdings.cash[symbol] = exact_sub(cash, share)
    holdings.units[symbol] = exact_sub(before, units)
    held = holdings.held.setdefault(symbol, {})
    for asset, want in wants:
        held[asset] = exact_sub(held.get(asset, ZERO), want)
    holdings.touch(symbol)
    return share
