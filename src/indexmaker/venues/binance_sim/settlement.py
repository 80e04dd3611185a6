"""What one trade moves in the exchange simulator (trading.py): its quote amount and
commission, and the balances of the account behind one side of it.

Commissions (`commission_asset="received"`, Binance without BNB): a buyer pays in the base
asset it receives, a seller in the quote asset; `"quote"`: everyone pays in quote. Amounts
are rounded half-up to 8 decimals (COMMISSION_ROUNDING), the venue's commission precision, and
so is a trade's quote amount (QUOTE_ROUNDING). An order's lock (quote for buys, base for
sells) pays its fills; what is left is released when it closes (trading.py).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from indexmaker.core.money import EXACT_CONTEXT
from indexmaker.venues.binance_sim.accounts import Account
from indexmaker.venues.binance_sim.orders import Order

ZERO = Decimal(0)
EIGHT = Decimal("1e-8")
COMMISSION_ROUNDING = ROUND_HALF_UP
# A trade's quote amount is settled at the venue's 8-decimal quote precision.
QUOTE_ROUNDING = ROUND_HALF_UP


def _eight(value: Decimal, rounding: str) -> Decimal:
    return value.quantize(EIGHT, rounding=rounding, context=EXACT_CONTEXT)


def trade_amounts(
    order: Order, price: Decimal, qty: Decimal, rate: Decimal, commission_asset: str
) -> tuple[Decimal, Decimal, str]:
    """(quote amount, commission, commission asset) of `qty` base units of `order` traded at
    `price` (quote per base unit) with commission `rate`; exact under any Decimal context."""
    spec = order.spec
    quote = _eight(EXACT_CONTEXT.multiply(price, qty), QUOTE_ROUNDING)
    if order.side == "BUY" and commission_asset == "received":
        return quote, _eight(EXACT_CONTEXT.multiply(qty, rate), COMMISSION_ROUNDING), spec.base
    return quote, _eight(EXACT_CONTEXT.multiply(quote, rate), COMMISSION_ROUNDING), spec.quote


def settle_balances(
    account: Account, order: Order, qty: Decimal, quote: Decimal, commission: Decimal, asset: str
) -> None:
    """Pay one side of a trade out of `order`'s lock: a buy spends quote (and a quote
    commission) and receives base less a base commission; a sell spends base and receives
    quote less the commission."""
    spec = order.spec
    if order.side == "BUY":
        paid = quote + (commission if asset == spec.quote else ZERO)
        account.spend_locked(spec.quote, paid)
        order.locked -= paid
        account.credit(spec.base, qty - (commission if asset == spec.base else ZERO))
    else:
        account.spend_locked(spec.base, qty)
        order.locked -= qty
        account.credit(spec.quote, quote - commission)


def position_event(account: Account, assets: list[str], now: int) -> dict[str, object]:
    """The user data stream's `outboundAccountPosition` for `assets` of `account` at `now`
    (ms): each asset's free and locked balance."""
    rows = account.balance_rows(assets)
    return {
        "e": "outboundAccountPosition",
        "E": now,
        "u": now,
        "B": [{"a": r["asset"], "f": r["free"], "l": r["locked"]} for r in rows],
    }
