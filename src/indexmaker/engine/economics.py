"""The issuer's own position (SPEC §3): what it bought on the venue, and what it still holds.

Padding an asset order up to a venue minimum buys issuer inventory that later batches of the
asset use first, so over a day the unassigned inventory stays about one venue minimum per
asset, and the exchange notional bought stays close to the notional delivered to clients.
Read-only: the demos' summaries and the tests report these figures; nothing here decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from indexmaker.engine.inventory import InventoryManager
from indexmaker.engine.prices import MarketData

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class IssuerPosition:
    """USDC figures. `bought_notional`: Σ quantity × price of every execution (fees apart);
    `unassigned_cost`: inventory no order was given, at its lots' prices; `unassigned_value`:
    the same at the current mid (the last trade, or the lot price, when there is no mid);
    `unassigned_assets`: instruments holding any."""

    bought_notional: Decimal
    unassigned_cost: Decimal
    unassigned_value: Decimal
    unassigned_assets: int


def issuer_position(inventory: InventoryManager, market: MarketData) -> IssuerPosition:
    cost = ZERO
    value = ZERO
    holding = 0
    for asset in inventory.assets():
        asset_cost = ZERO
        free = ZERO
        for lot in inventory.lots(asset):
            if lot.free > 0:
                asset_cost += lot.free * lot.price
                free += lot.free
        if free <= 0:
            continue
        holding += 1
        cost += asset_cost
        prices = market.prices(asset)
        mark = None if prices is None else (prices.mid or prices.last)
        value += free * mark if mark is not None else asset_cost
    return IssuerPosition(inventory.bought_notional, cost, value, holding)
