"""What an order of the exchange simulator may take and what it locks (trading.py runs it):
its remaining steps, the steps the opposite side of its book offers within its limit (FOK),
and the balance locked when it is placed: base for a sell, quote for a buy (limit price ×
quantity, a MARKET buy its `quoteOrderQty` or the cost of walking today's book), plus the
taker commission when commissions are paid in quote (settlement.py). Quantities in steps and
prices in ticks of the symbol's spec, as the book keeps them.
"""

from __future__ import annotations

from decimal import Decimal

from indexmaker.venues.binance_sim.accounts import Account
from indexmaker.venues.binance_sim.book import Book
from indexmaker.venues.binance_sim.config import SimConfig
from indexmaker.venues.binance_sim.order_params import OrderRequest
from indexmaker.venues.binance_sim.orders import Order

ZERO = Decimal(0)


def remaining(order: Order) -> int:
    """Steps of `order` neither executed nor expired by self-trade prevention."""
    return order.spec.steps(order.orig_qty - order.executed_qty - order.prevented_qty)


def available(order: Order, book: Book) -> int:
    """Steps the opposite side of `book` offers at `order`'s limit price or better."""
    buy = order.side == "BUY"
    limit = order.spec.ticks(order.price)
    total = 0
    for level in book.levels(not buy):
        if level.price > limit if buy else level.price < limit:
            break
        total += level.total
    return total


def lock_for(account: Account, request: OrderRequest, book: Book, config: SimConfig) -> None:
    """Lock what the order may spend in `account` and record it on `request.lock`; raises
    the account's insufficient-balance error, locking nothing, when it is short."""
    spec = request.spec
    if request.side == "SELL":
        request.lock = request.quantity
        account.lock(spec.base, request.lock)
        return
    fee = config.taker_commission if config.commission_asset == "quote" else ZERO
    if request.type == "MARKET":
        cost = request.quote_qty or market_cost(request, book)
        request.lock = cost * (1 + fee)
    else:
        request.lock = request.price * request.quantity * (1 + fee)
    account.lock(spec.quote, request.lock)


def market_cost(request: OrderRequest, book: Book) -> Decimal:
    """What a MARKET buy of `request.quantity` would pay walking today's asks (its lock)."""
    spec = request.spec
    wanted = spec.steps(request.quantity)
    cost = ZERO
    for level in book.levels(False):
        take = min(level.total, wanted)
        cost += spec.price_of(level.price) * spec.qty_of(take)
        wanted -= take
        if wanted <= 0:
            break
    return cost
