"""A rebalance's trades booked (issue 12): what a round bought, sold or took from idle
inventory moves the index's holdings and cash (engine/holdings.py), assigns or redeems the
lots behind them (engine/inventory.py), and adds to the asset's progress: fees, value traded
and slippage against its cut-over mid. The rounds themselves: engine/rebalance.py.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from indexmaker.core.ids import ClientOrderId, InstrumentId
from indexmaker.core.money import exact_sub, round_asset_down
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.holdings import IndexHoldings
from indexmaker.engine.inventory import InventoryManager
from indexmaker.model.lot import Lot
from indexmaker.model.rebalance import AssetProgress, Rebalance


class RebalanceLedger:
    def __init__(
        self, config: SolverConfig, inventory: InventoryManager, holdings: IndexHoldings
    ) -> None:
        self.config = config
        self.inventory = inventory
        self.holdings = holdings

    def take_idle(
        self,
        rebalance: Rebalance,
        owner: ClientOrderId,
        instrument: InstrumentId,
        quantity: Decimal,
        now: datetime,
    ) -> None:
        """Issuer inventory nobody uses becomes backing at the lot's own cost, FIFO, as far
        as the index's cash pays it."""
        left = quantity
        symbol = rebalance.target.symbol
        for lot in self.inventory.lots(instrument):
            if left <= 0:
                break
            if lot.reserved_by is not None or lot.free <= 0:
                continue
            unit_cost = lot.price + lot.fee / lot.quantity
            affordable = self.holdings.cash_of(symbol) / self.config.fee_factor / unit_cost
            take = round_asset_down(min(left, lot.free, affordable))  # issue 12: 18 dp
            if take * lot.price < self.config.min_asset_volley:
                break
            assignment = self.inventory.assign(lot, owner, take, now)
            cost = assignment.quantity * assignment.price + assignment.fee
            self._account(rebalance, instrument, take, -cost, assignment.price, assignment.fee)
            rebalance.assets[instrument].crossed += take
            left = exact_sub(left, take)

    def bought(self, rebalance: Rebalance, owner: ClientOrderId, lot: Lot, now: datetime) -> None:
        """A lot the round bought (or took crossed from a seller) backs the index whole."""
        self.inventory.assign(lot, owner, lot.quantity, now)
        cost = lot.quantity * lot.price + lot.fee
        self._account(rebalance, lot.asset, lot.quantity, -cost, lot.price, lot.fee)

    def sold(
        self,
        rebalance: Rebalance,
        asset: InstrumentId,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal,
    ) -> None:
        """`quantity` of the index's backing sold at `price` (USDC), `fee` (USDC) charged.
        Raises InvariantViolation, changing nothing, if the backing is short."""
        self.inventory.redeem(asset, quantity)  # first: a short backing raises, nothing changed
        self._account(rebalance, asset, -quantity, quantity * price - fee, price, fee)

    def _account(
        self,
        rebalance: Rebalance,
        asset: InstrumentId,
        quantity: Decimal,
        cash: Decimal,
        price: Decimal,
        fee: Decimal,
    ) -> None:
        """Holdings and cash of the index, and the trade's cost against the arrival mid."""
        self.holdings.move(rebalance.target.symbol, asset, quantity, cash)
        progress = rebalance.assets.get(asset)
        if progress is None:
            progress = rebalance.assets[asset] = AssetProgress(asset, price)
        progress.fees += fee
        progress.traded += abs(quantity) * price
        # Buying above or selling below the arrival mid is a cost.
        progress.slippage += quantity * (price - progress.arrival_mid)
