"""Planning one rebalance round (issue 12; reference §6.2 items 3-7): what to sell and buy
per asset, fitted like a batch, netted against idle inventory and the tick's client plans.

Per asset of the rebalance (what is left = target − held, rebalance_reports.leftovers): an
asset whose mid left its cut-over mid by more than `rebalance_price_band`, or that the venue
refused (cool-down), waits, as does an asset whose last venue tranche closed less than
`rebalance_interval` ago (pacing per asset). A buy first takes issuer inventory nobody uses
(not while the tick's buy batch trades the asset: it reserves that inventory). Then limit =
best ask × (1 + threshold) up / best bid × (1 − threshold) down to the tick, size =
min(left, what the tick's client plans can cross + min(the book's liquidity within the
limit over max_levels, `rebalance_max_tranche` / limit)): the tranche cap and the book bound
what goes to the venue, never what is netted internally (a venue order left over the cap
because a crossing did not happen is cut back to it), in what is sent: a buy whose
commission the venue takes in the bought asset sends left / (1 − rate) (SPEC §6), so what
arrives meets the target; buys are scaled together to the index's cash / fee_factor (sales
fund buys). The venue's filters round down only, so a tranche never overshoots its target
nor the cash; a leg below min_asset_volley waits. Our sales cross the tick's buy plan and
our buys its sell plan (crossing.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from indexmaker.core.holds import HoldReason
from indexmaker.core.ids import InstrumentId
from indexmaker.core.money import round_asset_down
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.crossing import Crossing, cross
from indexmaker.engine.holdings import IndexHoldings
from indexmaker.engine.inventory import InventoryManager
from indexmaker.engine.prices import MarketData
from indexmaker.engine.rebalance_reports import Leftover
from indexmaker.engine.strategy import BatchPlan, Candidate, PlannedAssetOrder
from indexmaker.model.filters import (
    FilteredOrder,
    InstrumentRules,
    apply_filters,
    gross_up_for_commission,
)
from indexmaker.model.order import OrderUpdate
from indexmaker.model.rebalance import Rebalance
from indexmaker.model.redemption import Redemption
from indexmaker.model.side import Side

ZERO = Decimal(0)
ONE = Decimal(1)


@dataclass(slots=True)
class RoundPlan:
    """One round, planned with the tick's client batches (which it may have netted)."""

    rebalance: Rebalance
    orders: list[PlannedAssetOrder]  # to the venue
    to_buyers: list[Crossing]  # our sales crossed with the tick's buy batch
    from_sellers: list[Crossing]  # our buys crossed with the tick's redemption batch
    idle: list[tuple[InstrumentId, Decimal]]  # issuer inventory to take at its cost
    buy_plan: BatchPlan[OrderUpdate] | None
    sell_plan: BatchPlan[Redemption] | None


class RoundPlanner:
    def __init__(
        self,
        config: SolverConfig,
        market: MarketData,
        inventory: InventoryManager,
        holdings: IndexHoldings,
        rules: Mapping[InstrumentId, InstrumentRules],
    ) -> None:
        self.config = config
        self.market = market
        self.inventory = inventory
        self.holdings = holdings
        self.rules = rules  # shared with the solver: a RulesUpdate is seen here too

    def plan(
        self,
        rebalance: Rebalance,
        left: list[Leftover],
        buy_plan: BatchPlan[OrderUpdate] | None,
        sell_plan: BatchPlan[Redemption] | None,
        blocked: Mapping[InstrumentId, HoldReason],
        now: datetime,
    ) -> RoundPlan | None:
        """The round's orders, idle inventory to take and crossings with the tick's client
        plans (returned netted); None when nothing can trade now."""
        cfg = self.config
        symbol = rebalance.target.symbol
        sells: list[PlannedAssetOrder] = []
        wants: list[tuple[Leftover, Decimal, Decimal]] = []  # (asset, quantity, limit)
        busy = {o.instrument for o in buy_plan.asset_orders} if buy_plan is not None else set()
        crossable = _crossable(buy_plan, sell_plan)
        venue_cap: dict[InstrumentId, Decimal] = {}  # what one tranche may send the venue
        idle: list[tuple[InstrumentId, Decimal]] = []
        cash = self.holdings.cash_of(symbol) / cfg.fee_factor
        for item in left:
            prices = self.market.prices(item.instrument)
            mid = prices.mid if prices is not None else None
            band = cfg.rebalance_price_band * rebalance.assets[item.instrument].arrival_mid
            if mid is None or abs(mid - rebalance.assets[item.instrument].arrival_mid) > band:
                continue  # reference §6.2 item 6: pause the asset, never chase it
            if item.instrument in blocked:
                continue  # the venue refused it: waits out the cool-down like any batch
            side = Side.BUY if item.quantity > 0 else Side.SELL
            need = abs(item.quantity)
            if side is Side.BUY and item.instrument not in busy and cash > 0:
                free = self.inventory.free_quantity(item.instrument)
                take = round_asset_down(min(free, need, cash / item.mid))  # issue 12
                if take * item.mid >= cfg.min_asset_volley:
                    idle.append((item.instrument, take))
                    cash -= take * item.mid
                    need -= take
            # What to send so that `need` arrives: a buy whose commission the venue takes in
            # the bought asset is grossed up (SPEC §6; as client buys: strategy.py). The
            # filters then round it down, so it never overshoots (within one step short).
            need = gross_up_for_commission(self.rules.get(item.instrument), side, need)
            paced = rebalance.assets[item.instrument].next_tranche_at
            if paced is not None and now < paced:
                continue  # its last tranche closed less than rebalance_interval ago
            limit, liquidity = self._limit(item.instrument, side)
            if limit is None:
                continue
            venue_cap[item.instrument] = min(liquidity, cfg.rebalance_max_tranche / limit)
            netted = crossable.get((item.instrument, side), ZERO)
            size = min(need, netted + venue_cap[item.instrument])
            if side is Side.SELL:
                order = self._filtered(item.instrument, side, limit, size)
                if order is not None:
                    sells.append(order)
            elif size > 0:
                wants.append((item, size, limit))
        total = sum((q * limit for _, q, limit in wants), ZERO)
        scale = cash / total if total > cash else ONE
        buys: list[PlannedAssetOrder] = []
        for item, quantity, limit in wants:
            order = self._filtered(item.instrument, Side.BUY, limit, quantity * scale)
            if order is not None:
                buys.append(order)
        if not sells and not buys and not idle:
            return None
        to_buyers: list[Crossing] = []
        from_sellers: list[Crossing] = []
        ours_sell: BatchPlan[Candidate] = BatchPlan((), tuple(sells), (), ZERO)
        ours_buy: BatchPlan[Candidate] = BatchPlan((), tuple(buys), (), ZERO)
        minimum = cfg.min_asset_volley
        rules = dict(self.rules)
        if buy_plan is not None and sells:
            buy_plan, ours_sell, to_buyers = cross(buy_plan, ours_sell, self.market, rules, minimum)
        if sell_plan is not None and buys:
            ours_buy, sell_plan, from_sellers = cross(
                ours_buy, sell_plan, self.market, rules, minimum
            )
        orders: list[PlannedAssetOrder] = []
        for order in (*ours_sell.asset_orders, *ours_buy.asset_orders):
            cap = venue_cap[order.instrument]
            if order.quantity > cap:  # not crossed after all: the venue gets the cap only
                clamped = self._filtered(order.instrument, order.side, order.price, cap)
                if clamped is None:
                    continue
                order = replace(order, quantity=clamped.quantity)
            if order.quantity > 0:
                orders.append(order)
        return RoundPlan(rebalance, orders, to_buyers, from_sellers, idle, buy_plan, sell_plan)

    def _limit(self, instrument: InstrumentId, side: Side) -> tuple[Decimal | None, Decimal]:
        rules = self.rules.get(instrument)
        tick = rules.tick_size if rules is not None else ZERO
        limit = self.market.limit_price(instrument, side, self.config.price_threshold, tick)
        book = self.market.book(instrument)
        if limit is None or book is None:
            return None, ZERO
        return limit, book.taker_liquidity(side, limit, self.config.max_levels)

    def _filtered(
        self, instrument: InstrumentId, side: Side, limit: Decimal, quantity: Decimal
    ) -> PlannedAssetOrder | None:
        """The venue's filters, rounding down only (never past the target, nor the cash);
        None when nothing the venue takes is at least min_asset_volley."""
        rules = self.rules.get(instrument)
        if rules is None or quantity <= 0:
            return None
        result = apply_filters(rules, side, limit, quantity, quantity)
        if not isinstance(result, FilteredOrder):
            return None
        if result.quantity * result.price < self.config.min_asset_volley:
            return None
        return PlannedAssetOrder(instrument, result.price, result.quantity, quantity, ZERO, side)


def _crossable(
    buy_plan: BatchPlan[OrderUpdate] | None, sell_plan: BatchPlan[Redemption] | None
) -> dict[tuple[InstrumentId, Side], Decimal]:
    """Per (asset, side of ours), the most the tick's client plans can take off a round's
    order by crossing (crossing.py): a sale of ours against the buy batch's venue quantity,
    a buy of ours against the sell batch's venue quantity or, failing that, its leg the
    issuer would absorb."""
    out: dict[tuple[InstrumentId, Side], Decimal] = {}
    for order in buy_plan.asset_orders if buy_plan is not None else ():
        if order.quantity > 0:
            out[(order.instrument, Side.SELL)] = order.quantity
    for order in sell_plan.asset_orders if sell_plan is not None else ():
        take = order.quantity if order.quantity > 0 else order.absorbed
        if take > 0:
            out[(order.instrument, Side.BUY)] = take
    return out
