"""What one execution adds to inventory: the lot's quantity and its fee in USDC (SPEC §6).

A venue charges its commission in some asset. In the base asset (BTC on BTCUSDC) it reduces
what we received: the lot holds `quantity − commission` and the commission's value at the fill
price is the fee, so the lot still costs exactly what was paid (quantity × price). In the quote
asset it is the fee as is. In any other asset (BNB) it is valued in USDC at that asset's current
price on the same venue (mid, else last trade); without a price the fee is recorded as 0 and
the caller raises an alert, so a fill is never lost for want of a price.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from indexmaker.core.events import ExchangeFill
from indexmaker.core.ids import InstrumentId, Pair
from indexmaker.core.money import MONEY_CONTEXT, ZERO
from indexmaker.engine.prices import MarketData
from indexmaker.model.filters import InstrumentRules

_CTX = MONEY_CONTEXT.copy()
SETTLEMENT_ASSET = "USDC"


@dataclass(frozen=True, slots=True)
class LotTerms:
    quantity: Decimal  # what the lot holds, after a base-asset commission
    fee: Decimal  # USDC
    unpriced: str | None = None  # the commission asset that had no price (fee recorded as 0)


def split_pair(instrument: InstrumentId, rules: InstrumentRules | None) -> tuple[str, str]:
    """(base asset, quote asset) from the rules, else from a USDC-quoted pair's name."""
    if rules is not None:
        return rules.base_asset, rules.quote_asset
    pair = instrument.pair
    if pair.endswith(SETTLEMENT_ASSET):
        return pair[: -len(SETTLEMENT_ASSET)], SETTLEMENT_ASSET
    return pair, ""


def lot_terms(fill: ExchangeFill, rules: InstrumentRules | None, market: MarketData) -> LotTerms:
    """Lot quantity and USDC fee of `fill`. Raises nothing; an unpriced commission asset is
    reported in `unpriced`."""
    commission = fill.commission
    if commission == ZERO:
        return LotTerms(fill.quantity, ZERO)
    base, quote = split_pair(fill.instrument, rules)
    asset = fill.commission_asset
    if asset == base:
        value = _CTX.multiply(commission, fill.price)
        return LotTerms(_CTX.subtract(fill.quantity, commission), value)
    if asset == quote and quote == SETTLEMENT_ASSET:
        return LotTerms(fill.quantity, commission)
    price = _settlement_price(fill.instrument, asset, market)
    if price is None:
        return LotTerms(fill.quantity, ZERO, unpriced=asset)
    return LotTerms(fill.quantity, _CTX.multiply(commission, price))


def _settlement_price(instrument: InstrumentId, asset: str, market: MarketData) -> Decimal | None:
    """USDC price of `asset` on the fill's venue: the mid, else the last trade."""
    if asset == SETTLEMENT_ASSET:
        return Decimal(1)
    prices = market.prices(InstrumentId(instrument.venue, Pair(asset + SETTLEMENT_ASSET)))
    if prices is None:
        return None
    return prices.mid if prices.mid is not None else prices.last
