"""What the sell side tells: fill reports, the redemption invoice, and the redemption throttle.

The invoice (issue 12; reference §6.1 item 11) rounds its parts and derives the rest so it
adds up to the micro-USDC: net_paid = gross − exchange fee − redemption fee − withdrawal fee,
and the per-lot fees add up to the exchange fee (`split_fee`, as on mint invoices).
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from decimal import Decimal

from indexmaker.core.holds import HoldCode
from indexmaker.core.ids import InstrumentId
from indexmaker.core.money import (
    EXACT_CONTEXT,
    canonical,
    exact_add,
    exact_multiply,
    invoice_price,
    round_index_down,
    round_rate,
    round_usdc,
    round_usdc_down,
)
from indexmaker.core.redemption_events import (
    RedemptionFill,
    RedemptionInvoice,
    RedemptionLot,
    RedemptionStatus,
)
from indexmaker.engine.invoices import split_fee
from indexmaker.engine.prices import MarketData
from indexmaker.model.index import Basket
from indexmaker.model.redemption import Redemption

ZERO = Decimal(0)
BPS = Decimal(10_000)
BPS_QUANTUM = Decimal("0.01")


def index_mid(basket: Basket, market: MarketData) -> Decimal | None:
    """Σ basket quantity × asset mid (USDC per index unit); None if an asset has no mid."""
    mids: dict[InstrumentId, Decimal] = {}
    for asset in basket.assets:
        prices = market.prices(asset.instrument)
        if prices is None or prices.mid is None:
            return None
        mids[asset.instrument] = prices.mid
    return basket.index_price(mids)


def proceeds_parts(redemption: Redemption) -> tuple[Decimal, Decimal]:
    """(gross, exchange fee) in USDC on 6 decimals: the gross rounded down, the net (gross −
    fee, exact) rounded down, the fee their difference. What is withdrawn (the rounded net)
    is never more than the exact net, and the fee never more than the rounded gross it is
    taken from: rounding the fee up on its own took 0.000001 off a gross that rounded to 0
    (a negative net_paid). The fee is the exact fee rounded down or up, never further."""
    ctx = EXACT_CONTEXT
    gross = round_usdc_down(redemption.gross)
    net = round_usdc_down(ctx.subtract(redemption.gross, redemption.exchange_fee))
    return gross, ctx.subtract(gross, net)


def fill_report(
    redemption: Redemption,
    status: RedemptionStatus,
    reason: str | None = None,
    code: HoldCode | None = None,
) -> RedemptionFill:
    return RedemptionFill(
        client_order_id=redemption.client_order_id,
        quantity=round_index_down(redemption.quantity),
        sold_quantity=round_index_down(redemption.sold),
        proceeds=round_usdc_down(redemption.net_proceeds),
        fill_rate=round_rate(redemption.fill_rate),
        status=status,
        reason=reason,
        reason_code=code,
    )


def build_redemption_invoice(redemption: Redemption, now: datetime) -> RedemptionInvoice:
    """The invoice of a paid (or ended) redemption: burns, lots, prices, fees, payout."""
    # (lot id, crossed) → [quantity, sale value, fee, pnl]: one line per lot and venue/cross
    merged: dict[tuple[int, bool], list[Decimal]] = {}
    first: dict[tuple[int, bool], tuple[InstrumentId, Decimal]] = {}
    _, exchange_fee = proceeds_parts(redemption)
    for d in redemption.disposals:
        key = (d.lot_id, d.crossed)
        figures = merged.setdefault(key, [ZERO, ZERO, ZERO, ZERO])
        # Exact sums: the same lines however the lot was split over pieces and batches (a
        # restart may split a redemption over two batches; issue 10), so the average sale
        # price of pieces at one price is that price, not a 34-digit rounding of it.
        figures[0] = exact_add(figures[0], d.quantity)
        figures[1] = exact_add(figures[1], exact_multiply(d.quantity, d.sale_price))
        figures[2] += d.sale_fee
        figures[3] += d.pnl
        first.setdefault(key, (d.asset, d.cost_price))
    fees = split_fee(exchange_fee, [f[2] for f in merged.values()])
    lots = tuple(
        RedemptionLot(
            asset=first[key][0],
            lot_id=key[0],
            quantity=canonical(figures[0]),
            cost_price=first[key][1],
            sale_price=invoice_price(figures[1], figures[0]),
            fee=fees[i],
            pnl=round_usdc(figures[3]),
            crossed=key[1],
        )
        for i, (key, figures) in enumerate(merged.items())
    )
    gross, exchange_fee = proceeds_parts(redemption)
    withdrawal_fee = redemption.withdrawal_fee
    redeemed = redemption.burned
    vwap = invoice_price(redemption.gross, redemption.sold) if redemption.sold > 0 else ZERO
    mid = redemption.arrival_mid or ZERO
    slippage = ((mid - vwap) / mid * BPS).quantize(BPS_QUANTUM) if mid > 0 and vwap > 0 else ZERO
    return RedemptionInvoice(
        client_order_id=redemption.client_order_id,
        symbol=redemption.symbol,
        quantity=redemption.escrowed,
        redeemed_quantity=redeemed,
        returned_quantity=redemption.escrowed - redeemed,
        burns=tuple(redemption.burns),
        lots=lots,
        arrival_mid=round_usdc(mid),
        vwap=round_usdc(vwap),
        slippage_bps=slippage,
        gross_proceeds=gross,
        exchange_fee=exchange_fee,
        redemption_fee=ZERO,
        withdrawal_fee=withdrawal_fee,
        net_paid=gross - exchange_fee - withdrawal_fee,
        payout_tx=redemption.payout_tx,
        realised_pnl=round_usdc(sum((d.pnl for d in redemption.disposals), ZERO)),
        timestamp=now,
        basket_version=redemption.basket_version,
    )


class NetFlow:
    """Net redemptions over a rolling window (USDC at the sell limit price): redemptions
    engaged count up, issuance engaged counts down. A redemption that would take the net above
    the limit waits FIFO (reference §6.1 item 8: Reserve's hourly redemption throttle)."""

    def __init__(self, limit: Decimal, window: timedelta) -> None:
        self.limit = limit
        self.window = window
        self._events: deque[tuple[datetime, Decimal]] = deque()
        self._net = ZERO

    def add(self, now: datetime, value: Decimal) -> None:
        self._events.append((now, value))
        self._net += value

    def net(self, now: datetime) -> Decimal:
        while self._events and now - self._events[0][0] >= self.window:
            _, value = self._events.popleft()
            self._net -= value
        return self._net

    def headroom(self, now: datetime) -> Decimal:
        left = self.limit - self.net(now)
        return left if left > 0 else ZERO
