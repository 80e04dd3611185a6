"""Which escrowed redemptions a sell batch may take this tick, FIFO (issue 12).

A redemption is held back, and told why once per reason, while its index has no sell price
(`ESCROWED`), while the limit prices net of fee_factor could not pay its floor (`STOPPED`: it
is never sold below it), or while the net redemptions of the last window would pass the
throttle (`QUEUED`: later ones wait behind it; the first in line takes what is left). The
strategy then sizes the batch from the candidates (engine/strategy.py, side SELL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal

from indexmaker.core.holds import HoldCode, HoldReason
from indexmaker.core.ids import Symbol
from indexmaker.core.money import round_usdc
from indexmaker.core.pacing import checkpoint
from indexmaker.core.redemption_events import RedemptionStatus
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.redemption_reports import NetFlow
from indexmaker.engine.sell_batches import DUST
from indexmaker.model.index import Basket
from indexmaker.model.redemption import Redemption

Hold = Callable[[Redemption, RedemptionStatus, HoldReason], None]


def floor_per_unit(redemption: Redemption) -> Decimal | None:
    """The client's minimum proceeds per index unit (USDC, net of exchange fees), or None."""
    if redemption.min_proceeds is None or redemption.min_proceeds <= 0:
        return None
    return redemption.min_proceeds / redemption.escrowed


def pick_candidates(
    redemptions: Iterable[Redemption],
    baskets: Mapping[Symbol, Basket],
    sell_price: Callable[[Basket], Decimal | str],
    flow: NetFlow,
    config: SolverConfig,
    now: datetime,
    hold: Hold,
) -> tuple[list[tuple[Redemption, Basket]], Decimal]:
    """(the redemptions a batch may take, FIFO, with their baskets; the batch's USDC cap:
    max_volley within the throttle's headroom). `sell_price(basket)` is P at the sell limits
    or the reason there is none; `hold` tells a redemption left out why."""
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
        price = prices.get(basket.symbol)
        if price is None:
            price = prices[basket.symbol] = sell_price(basket)
        if isinstance(price, str):
            hold(redemption, RedemptionStatus.ESCROWED, HoldReason(HoldCode.NO_PRICE, price))
            continue
        floor = floor_per_unit(redemption)
        if floor is not None and price / config.fee_factor < floor:
            why = (
                f"floor {round_usdc(floor)} per unit is above what the bids pay within "
                f"the limit ({round_usdc(price / config.fee_factor)} net); not sold"
            )
            hold(redemption, RedemptionStatus.STOPPED, HoldReason(HoldCode.BELOW_FLOOR, why))
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
