"""Liquidity fitting (SPEC §4): size a batch of ready orders to the visible books.

Cost is linear in orders + indexes × assets: orders of one index share their basket,
so every per-asset figure is computed once per index group, never once per order.

Every step takes the batch's side, so the sell side and rebalancing reuse it: a buy batch
takes asks within best ask × (1 + threshold) (rounded up to the tick), a sell batch takes bids
within best bid × (1 − threshold) (rounded down); filters round its prices the same way.
Sizing reads an amount per side (`usable_quantity`): collateral for a buy, index units for a
sell. Carried quantities cover demand on either side: inventory a buy need not buy again,
or a sell's proceeds sold ahead (a leg that outsold its batch's fill rate) it need not sell
again. A buy on a venue that takes its commission in the base asset (SPEC §6: the lot holds
quantity − commission) is grossed up so what arrives covers the demand, and only the book's
arriving share counts as liquidity for the fit. A sell leg is never padded up to a notional
minimum (that would sell assets no client redeems): it is rounded onto the venue's step grid,
and a leg below the venue minimum is absorbed by the issuer (`PlannedAssetOrder.absorbed`,
engine/absorption.py), or waits when max_issuer_absorb is 0.
Candidates are anything with a side, a symbol and an engageable amount (`Candidate`): buy
order updates, redemptions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Generic, Protocol, TypeVar

from indexmaker.core.holds import HoldCode, HoldReason
from indexmaker.core.ids import InstrumentId, Symbol
from indexmaker.core.money import pad_up_to_step
from indexmaker.core.pacing import checkpoint
from indexmaker.engine.absorption import sell_minimum
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.prices import MarketData
from indexmaker.model.filters import (
    FilteredOrder,
    InstrumentRules,
    apply_filters,
    gross_up_for_commission,
    lot_cover,
    received_share,
)
from indexmaker.model.index import Basket
from indexmaker.model.side import Side

ZERO = Decimal(0)
ONE = Decimal(1)


class Candidate(Protocol):
    """What a batch sizes: a buy update (USDC engageable) or a redemption (index units)."""

    @property
    def side(self) -> Side: ...

    @property
    def symbol(self) -> Symbol: ...

    @property
    def engageable(self) -> Decimal: ...


C = TypeVar("C", bound=Candidate)


@dataclass(frozen=True, slots=True)
class PlannedEntry(Generic[C]):
    update: C
    quantity: Decimal  # index units this batch buys for the update
    index_price: Decimal  # P at limit prices
    engaged: Decimal  # P × q × fee_factor


@dataclass(frozen=True, slots=True)
class PlannedAssetOrder:
    instrument: InstrumentId
    price: Decimal  # limit price after the venue's filters
    quantity: Decimal  # to buy now; 0 when carried lots cover the demand
    demand: Decimal  # Σ contributions of the batch's entries
    carried: Decimal  # free inventory the batch uses first
    side: Side = Side.BUY
    # A sell leg below the venue minimum that the issuer takes at the mid (absorption.py).
    absorbed: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class BatchPlan(Generic[C]):
    entries: tuple[PlannedEntry[C], ...]
    asset_orders: tuple[PlannedAssetOrder, ...]
    deferred: tuple[tuple[C, HoldReason], ...]  # not in this batch, and why
    notional: Decimal


@dataclass(slots=True)
class _Group(Generic[C]):
    basket: Basket
    index_price: Decimal
    updates: list[tuple[C, Decimal]] = field(default_factory=list)  # (update, q)
    total: Decimal = ZERO  # Σ q
    ratio: Decimal = ONE  # fitted fraction of q


class Strategy:
    def __init__(self, config: SolverConfig) -> None:
        self.config = config

    def usable_quantity(
        self, amount: Decimal, index_price: Decimal, side: Side = Side.BUY
    ) -> Decimal:
        """Step 5, index units one order may trade this batch. A buy's `amount` is collateral
        (USDC): q = min(amount / fee_factor, max_order_volley) / P. A sell's is index units:
        q = min(amount, max_order_volley / P) (its fees come out of the proceeds)."""
        cap = self.config.max_order_volley
        if side is Side.SELL:
            most = cap / index_price
            return amount if amount < most else most
        usable = amount / self.config.fee_factor
        if usable > cap:  # (builtin min() is several times slower on Decimals; hot path)
            usable = cap
        return usable / index_price if usable > 0 else ZERO

    def plan(
        self,
        candidates: Sequence[tuple[C, Basket]],
        market: MarketData,
        carried: Mapping[InstrumentId, Decimal],
        rules: Mapping[InstrumentId, InstrumentRules],
        cap: Decimal,
        blocked: Mapping[InstrumentId, HoldReason] | None = None,
        side: Side = Side.BUY,
    ) -> BatchPlan[C]:
        """Fit `candidates` into one batch of `side`; `blocked` assets (e.g. cooling down after
        a venue reject) make the indexes holding them wait, with the reason given. A candidate
        of the other side is deferred, never mixed in."""
        cfg = self.config
        deferred: list[tuple[C, HoldReason]] = []
        groups: dict[Symbol, _Group[C]] = {}
        limits: dict[InstrumentId, Decimal] = {}
        liquidity: dict[InstrumentId, Decimal] = {}

        # Steps 2 and 4: limit prices and the index limit price P, once per index.
        unpriced: dict[Symbol, HoldReason] = {}
        for update, basket in candidates:
            checkpoint()
            if update.side is not side:
                why = f"a {update.side.value} order in a {side.value} batch"
                deferred.append((update, HoldReason(HoldCode.OTHER_SIDE, why)))
                continue
            group = groups.get(basket.symbol)
            if group is None and basket.symbol not in unpriced and blocked:
                for asset in basket.assets:
                    if asset.instrument in blocked:
                        unpriced[basket.symbol] = blocked[asset.instrument]
                        break
            if group is None and basket.symbol not in unpriced:
                price = self._index_limit_price(basket, market, limits, rules, side)
                if isinstance(price, str):
                    unpriced[basket.symbol] = HoldReason(HoldCode.NO_PRICE, price)
                else:
                    group = groups[basket.symbol] = _Group(basket, price)
            if group is None:
                deferred.append((update, unpriced[basket.symbol]))
                continue
            q = self.usable_quantity(update.engageable, group.index_price, side)
            if q <= 0:
                continue
            group.updates.append((update, q))
            group.total += q

        # Step 3: liquidity within the limit, capped to max_levels, once per asset.
        for symbol, limit in limits.items():
            book = market.book(symbol)
            liquidity[symbol] = (
                book.taker_liquidity(side, limit, cfg.max_levels) if book is not None else ZERO
            )

        # Step 6: fit. An asset that cannot be bought (too little liquidity, or the venue's
        # filters refuse the size) fails the groups that need it; refit without them.
        failed: dict[Symbol, HoldReason] = {}
        while True:
            active = [g for g in groups.values() if g.basket.symbol not in failed and g.updates]
            demand = self._demand(active)
            for group in active:
                group.ratio = ONE
                for asset in group.basket.assets:
                    need = demand[asset.instrument]
                    arriving = liquidity[asset.instrument] * received_share(
                        rules.get(asset.instrument), side
                    )
                    have = arriving + carried.get(asset.instrument, ZERO)
                    if need > have:
                        group.ratio = min(group.ratio, have / need)
            # Step 7: the batch cap V scales every order and so every exchange order.
            notional = sum((g.total * g.ratio * g.index_price for g in active), ZERO)
            if notional > cap > 0:
                scale = cap / notional
                for group in active:
                    group.ratio *= scale
                notional = cap
            asset_orders, bad_asset = self._asset_orders(
                active, limits, liquidity, carried, rules, side
            )
            if bad_asset is None:
                break
            for group in active:
                if any(a.instrument == bad_asset[0] for a in group.basket.assets):
                    failed[group.basket.symbol] = bad_asset[1]

        entries: list[PlannedEntry[C]] = []
        for group in groups.values():
            reason = failed.get(group.basket.symbol)
            for update, q in group.updates:
                checkpoint()
                if reason is not None:
                    deferred.append((update, reason))
                    continue
                quantity = q * group.ratio
                if quantity <= 0:
                    why = "no liquidity within the limit price"
                    deferred.append((update, HoldReason(HoldCode.NO_LIQUIDITY, why)))
                    continue
                engaged = group.index_price * quantity * cfg.fee_factor
                entries.append(PlannedEntry(update, quantity, group.index_price, engaged))
        if not entries:
            asset_orders, notional = [], ZERO
        return BatchPlan(tuple(entries), tuple(asset_orders), tuple(deferred), notional)

    # ------------------------------------------------------------------ helpers

    def index_limit_price(
        self,
        basket: Basket,
        market: MarketData,
        rules: Mapping[InstrumentId, InstrumentRules],
        side: Side,
    ) -> Decimal | str:
        """P of one index at this side's limit prices, or why it has none (SPEC §4 step 4)."""
        return self._index_limit_price(basket, market, {}, rules, side)

    def _index_limit_price(
        self,
        basket: Basket,
        market: MarketData,
        limits: dict[InstrumentId, Decimal],
        rules: Mapping[InstrumentId, InstrumentRules],
        side: Side,
    ) -> Decimal | str:
        """Step 4: P = Σ basket quantity × limit price; the first unpriced asset as a reason."""
        total = ZERO
        threshold = self.config.price_threshold
        for asset in basket.assets:
            limit = limits.get(asset.instrument)
            if limit is None:
                tick = _tick(rules.get(asset.instrument))
                found = market.limit_price(asset.instrument, side, threshold, tick)
                if found is None:
                    return f"no price for {asset.instrument}"
                limit = limits[asset.instrument] = found
            total += asset.quantity * limit
        return total

    @staticmethod
    def _demand(groups: Sequence[_Group[C]], fitted: bool = False) -> dict[InstrumentId, Decimal]:
        """Per asset, Σ index quantity × basket quantity (after the fit when `fitted`)."""
        demand: dict[InstrumentId, Decimal] = {}
        for group in groups:
            quantity = group.total * group.ratio if fitted else group.total
            for asset in group.basket.assets:
                demand[asset.instrument] = (
                    demand.get(asset.instrument, ZERO) + quantity * asset.quantity
                )
        return demand

    def _asset_orders(
        self,
        groups: Sequence[_Group[C]],
        limits: Mapping[InstrumentId, Decimal],
        liquidity: Mapping[InstrumentId, Decimal],
        carried: Mapping[InstrumentId, Decimal],
        rules: Mapping[InstrumentId, InstrumentRules],
        side: Side,
    ) -> tuple[list[PlannedAssetOrder], tuple[InstrumentId, HoldReason] | None]:
        """Step 8: one order per asset, padded and filtered; or the first asset that fails."""
        cfg = self.config
        orders: list[PlannedAssetOrder] = []
        for symbol, need in self._demand(groups, fitted=True).items():
            if need <= 0:
                continue
            limit = limits[symbol]
            have = carried.get(symbol, ZERO)
            to_buy = need - have
            if to_buy <= 0:
                orders.append(PlannedAssetOrder(symbol, limit, ZERO, need, have, side))
                continue
            symbol_rules = rules.get(symbol)
            if symbol_rules is None:  # SPEC §6: only quantities the venue's rules shaped
                why = f"{symbol} has no known exchange filters; not traded"
                return orders, (symbol, HoldReason(HoldCode.NOT_TRADABLE, why))
            # What arrives must cover the demand: gross up a base-asset commission.
            to_buy = gross_up_for_commission(symbol_rules, side, to_buy)
            small = side is Side.SELL and to_buy * limit < sell_minimum(cfg, symbol_rules)
            if (
                small and cfg.max_issuer_absorb > 0
            ):  # the venue would refuse it: the issuer takes it
                orders.append(PlannedAssetOrder(symbol, limit, ZERO, need, have, side, to_buy))
                continue
            if liquidity[symbol] * limit < cfg.min_asset_volley:
                why = f"liquidity of {symbol} below min_asset_volley"
                return orders, (symbol, HoldReason(HoldCode.NO_LIQUIDITY, why))
            if side is Side.SELL:
                # Never padded: only what redemptions sell (onto the step grid, below).
                if small:
                    why = f"sell of {symbol} below min_asset_volley; waits for more redemptions"
                    return orders, (symbol, HoldReason(HoldCode.BELOW_MINIMUM, why))
                quantity = to_buy
            else:
                padded = pad_up_to_step(to_buy * limit, cfg.asset_volley_step)
                if padded < cfg.min_asset_volley:
                    padded = cfg.min_asset_volley
                quantity = padded / limit
            if symbol_rules.step_size:
                # LOT_SIZE rounds down: start from at least the demand rounded up onto the
                # step grid, so the order covers the batch (apply_filters caps it at liquidity).
                cover = lot_cover(symbol_rules, to_buy)
                if quantity < cover:
                    quantity = cover
            result = apply_filters(symbol_rules, side, limit, quantity, liquidity[symbol])
            if not isinstance(result, FilteredOrder):
                why = f"{symbol} refused by the venue's {result.reason}"
                return orders, (symbol, HoldReason(HoldCode.NOT_TRADABLE, why))
            orders.append(
                PlannedAssetOrder(symbol, result.price, result.quantity, need, have, side)
            )
        return orders, None


def _tick(rules: InstrumentRules | None) -> Decimal:
    return rules.tick_size if rules is not None else ZERO
