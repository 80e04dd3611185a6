"""Engine set-up shared by the sell-allocation tests (test_sell_allocation.py,
test_allocation_grouping.py): a redemption as a sell order opens it, and a lot bought for a
buyer and assigned to it, the backing a sell batch disposes of. Test code only."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from indexmaker.core.ids import ClientOrderId, InstrumentId, PaymentId, Symbol, TradeId, client_key
from indexmaker.engine.inventory import InventoryManager
from indexmaker.model.lot import Lot
from indexmaker.model.redemption import Redemption


def redemption(n: int, symbol: Symbol, quantity: Decimal, now: datetime, client: str) -> Redemption:
    """Redemption `R{n}` of `quantity` index units (all escrowed, no floor), client order id
    `s{n}` of `client` (an address on chain 1), arrival `n`."""
    return Redemption(
        PaymentId(f"R{n}"),
        client_key(1, client),
        ClientOrderId(f"s{n}"),
        symbol,
        quantity,
        quantity,
        None,
        now,
        n,
    )


def assigned_lot(
    inventory: InventoryManager,
    asset: InstrumentId,
    trade_id: str,
    price: Decimal,
    quantity: Decimal,
    fee: Decimal,
    now: datetime,
    buyer: str,
    assigned: Decimal,
) -> Lot:
    """A lot of `quantity` bought at `price` (USDC) with `fee` (USDC), `assigned` of it to
    the buy order `buyer` (client order id): backing a sell batch can dispose of."""
    lot = inventory.open_lot(asset, TradeId(trade_id), price, quantity, fee, now, None)
    inventory.assign(lot, ClientOrderId(buyer), assigned, now)
    return lot
