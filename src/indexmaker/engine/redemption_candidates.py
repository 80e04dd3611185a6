"""Which escrowed redemptions a sell batch may take this tick, FIFO (issue 12).

A redemption is held back, and told why once per reason, while its index has no sell price
(`ESCROWED`), while what its units would pay the client at the limit prices, net of every fee
(`sell_proceeds.least_net`), is below its floor (`STOPPED`: it is never sold below it), or
while the net redemptions of the last window would pass the throttle (`QUEUED`: later ones
wait behind it; the first in line takes what is left). The strategy then sizes the batch from
the candidates (engine/strategy.py, side SELL).

A redemption held below its floor keeps the sell price it was held at (`FloorPricing`) and
its floor is checked against that price every tick (its units, floor and expected fees may
change); the books are looked at again every `floor_recheck` (the engine's clock), and the
price is made anew only if what it is made of moved (the basket, each asset's best bid and
tick). Pricing reads every book of the basket, and each read of a book that changed journals
it whole (docs/decisions.md): ~78 rows a tick for SY100 while such a sell waited, its books
moving. The best bids are read with `MarketData.best_price`, which journals a book only when
its best bid moved, so replay decides the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from indexmaker.core.holds import HoldCode, HoldReason
from indexmaker.core.ids import InstrumentId, Symbol
from indexmaker.core.money import exact_multiply, round_usdc
from indexmaker.core.pacing import checkpoint
from indexmaker.core.redemption_events import RedemptionStatus
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.prices import MarketData
from indexmaker.engine.redemption_reports import NetFlow
from indexmaker.engine.sell_batches import DUST
from indexmaker.engine.sell_proceeds import least_net
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.index import Basket
from indexmaker.model.redemption import FloorPricing, Redemption
from indexmaker.model.side import Side

Hold = Callable[[Redemption, RedemptionStatus, HoldReason], None]
Bids = Callable[[Basket], tuple[tuple[Decimal | None, Decimal], ...]]
FLOOR_HELD = (RedemptionStatus.STOPPED, HoldCode.BELOW_FLOOR)
ZERO = Decimal(0)


def sell_bids(
    basket: Basket, market: MarketData, rules: Mapping[InstrumentId, InstrumentRules]
) -> tuple[tuple[Decimal | None, Decimal], ...]:
    """Per asset of `basket`, what its sell limit price is made of besides configuration
    (SPEC §4 step 2; strategy.py `index_limit_price`): the best bid and the venue's tick."""
    out = []
    for asset in basket.assets:
        asset_rules = rules.get(asset.instrument)
        tick = asset_rules.tick_size if asset_rules is not None else ZERO
        out.append((market.best_price(asset.instrument, Side.SELL), tick))
    return tuple(out)


def _held_price(
    redemption: Redemption, basket: Basket, bids: Bids, now: datetime, recheck: timedelta
) -> Decimal | None:
    """The sell price a redemption held below its floor was held at: until `recheck` after
    the books were last looked at, and then while what it is made of has not moved (looked
    at now); else None (price it from the books)."""
    held = redemption.floor_pricing
    if held is None or redemption.notice != FLOOR_HELD or held.basket != basket:
        return None
    if now < held.at + recheck:
        return held.price
    if held.bids != bids(basket):
        return None
    redemption.floor_pricing = replace(held, at=now)
    return held.price


def floor_stop(
    redemption: Redemption,
    price: Decimal,
    fee_factor: Decimal,
    withdrawal_fee: Callable[[Redemption, Decimal], Decimal],
) -> str | None:
    """Why the redemption may not sell at P = `price` (USDC per index unit at the sell
    limits), or None: its floor (`min_proceeds`, USDC) is above `least_net` of all its escrowed
    units sold at P, the client's withdrawal fee included (engine/sell_proceeds.py). Every
    batch sells at P or better, so a redemption sold in full pays at least its floor."""
    floor = redemption.min_proceeds
    if floor is None or floor <= 0:
        return None
    value = exact_multiply(redemption.escrowed, price)
    net = least_net(value, fee_factor, lambda usdc: withdrawal_fee(redemption, usdc))
    if net >= floor:
        return None
    return (
        f"floor {round_usdc(floor)} USDC is above the {net} USDC net of fees its "
        f"{redemption.escrowed} units would pay at the bids within the limit; not sold"
    )


def pick_candidates(
    redemptions: Iterable[Redemption],
    baskets: Mapping[Symbol, Basket],
    sell_price: Callable[[Basket], Decimal | str],
    flow: NetFlow,
    config: SolverConfig,
    now: datetime,
    hold: Hold,
    withdrawal_fee: Callable[[Redemption, Decimal], Decimal],
    bids: Bids,
) -> tuple[list[tuple[Redemption, Basket]], Decimal]:
    """(the redemptions a batch may take, FIFO, with their baskets; the batch's USDC cap:
    max_volley within the throttle's headroom). `sell_price(basket)` is P at the sell limits
    or the reason there is none; `hold` tells a redemption left out why;
    `withdrawal_fee(redemption, usdc)` what paying it out is expected to cost (its floor);
    `bids(basket)` what P is made of (`sell_bids`): a redemption held below its floor keeps
    the P it was held at while they have not moved, its floor checked again at that P."""
    headroom = flow.headroom(now)
    cap = min(config.max_volley, headroom)
    picked: list[tuple[Redemption, Basket]] = []
    queued = False
    prices: dict[Symbol, Decimal | str] = {}  # P once per index per tick, not per order
    for redemption in redemptions:
        checkpoint()
        if redemption.engageable <= DUST:
            continue
        basket = baskets[redemption.symbol]
        held = _held_price(redemption, basket, bids, now, config.floor_recheck)
        stopped = held is not None and floor_stop(
            redemption, held, config.fee_factor, withdrawal_fee
        )
        if stopped:
            continue  # still below its floor at the held price: told already, books not read
        price = prices.get(basket.symbol)
        if price is None:
            price = prices[basket.symbol] = sell_price(basket)
        if isinstance(price, str):
            hold(redemption, RedemptionStatus.ESCROWED, HoldReason(HoldCode.NO_PRICE, price))
            continue
        stop = floor_stop(redemption, price, config.fee_factor, withdrawal_fee)
        if stop is not None:
            hold(redemption, RedemptionStatus.STOPPED, HoldReason(HoldCode.BELOW_FLOOR, stop))
            redemption.floor_pricing = FloorPricing(basket, bids(basket), price, now)
            continue
        value = redemption.engageable * price
        if queued or (value > headroom and picked):
            queued = True
            why = (
                f"net redemptions of the last {flow.window} at "
                f"{round_usdc(flow.net(now))} of {flow.limit} USDC; waits FIFO"
            )
            hold(redemption, RedemptionStatus.QUEUED, HoldReason(HoldCode.THROTTLED, why))
            continue
        if value > headroom:
            queued = True  # the first in line takes what the throttle allows
            if headroom < config.min_asset_volley:
                why = (
                    f"net redemptions of the last {flow.window} at the limit of "
                    f"{flow.limit} USDC; waits FIFO"
                )
                hold(redemption, RedemptionStatus.QUEUED, HoldReason(HoldCode.THROTTLED, why))
                continue
        headroom -= min(value, headroom)
        picked.append((redemption, basket))
        if len(picked) >= config.max_batch_size:
            break
    return picked, cap
