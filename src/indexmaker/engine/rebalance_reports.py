"""Rebalance figures: what is left per asset, and the report of a start, a round or the end
(issue 12; reference §6.2 item 9 and §3.3).

- left = units outstanding × new quantity − held, per asset (assets leaving the basket have a
  target of 0);
- value = Σ held × mid + the index's cash, at the current mids;
- progression = Σ min(held, target) × mid / value (what is already in the right place);
- accuracy = 1 − Σ |held − target| × mid / value (a tracking error needing no benchmark
  series);
- cost = fees + slippage against the cut-over mid (implementation shortfall), in USDC and in
  bps of the value traded;
- what is left = Σ |left| × mid, in USDC.
Money is rounded to USDC's 6 decimals (half-even), ratios to 12 (core/money.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from indexmaker.core.ids import InstrumentId
from indexmaker.core.money import ROUNDING_NOISE, round_rate, round_usdc, usdc_text
from indexmaker.core.rebalance_events import RebalanceAssetLine, RebalanceReport
from indexmaker.engine.holdings import IndexHoldings
from indexmaker.engine.prices import MarketData
from indexmaker.model.rebalance import Rebalance

ZERO = Decimal(0)
ONE = Decimal(1)
BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class Leftover:
    instrument: InstrumentId
    target: Decimal
    held: Decimal
    quantity: Decimal  # target − held: > 0 to buy, < 0 to sell
    mid: Decimal  # now, or the cut-over mid when the book has none


def leftovers(rebalance: Rebalance, holdings: IndexHoldings, market: MarketData) -> list[Leftover]:
    """Per asset of the rebalance (cut-over order), what is left to trade."""
    symbol = rebalance.target.symbol
    units = holdings.units_of(symbol)
    targets = {a.instrument: a.quantity for a in rebalance.target.assets}
    result = []
    for instrument, progress in rebalance.assets.items():
        target = units * targets.get(instrument, ZERO)
        held = holdings.held_of(symbol, instrument)
        prices = market.prices(instrument)
        mid = prices.mid if prices is not None and prices.mid is not None else None
        result.append(
            Leftover(instrument, target, held, target - held, mid or progress.arrival_mid)
        )
    return result


def done_reason(
    left: list[Leftover], cash: Decimal, fee_factor: Decimal, least: Decimal
) -> str | None:
    """Why a rebalance is over, or None while it has something to trade: every leg below
    `least` (min_asset_volley), or buys left that the sales' cash no longer funds. Never
    while it cannot trade only because every sell leg is below the minimum (below_minimums:
    it waits, nothing was sold)."""
    if below_minimums(left, cash, fee_factor, least) is not None:
        return None
    sells = [x for x in left if x.quantity < 0 and -x.quantity * x.mid >= least]
    buys = [x for x in left if x.quantity > 0 and x.quantity * x.mid >= least]
    if not sells and not buys:
        return "on target (what is left is below min_asset_volley)"
    if not sells and cash / fee_factor < least:
        return "sales spent: what is left to buy stays underweight"
    return None


def below_minimums(
    left: list[Leftover], cash: Decimal, fee_factor: Decimal, least: Decimal
) -> str | None:
    """Why a rebalance off target cannot trade now, or None: buys of at least `least`
    (min_asset_volley, USDC) wait for cash that only sales give, and every sell leg is worth
    less than `least` (the venue minimum the planner keeps to), so nothing can be sold. Not
    "sales spent": nothing was sold. Client flow (redemptions, buys of the index) or a
    larger index makes the legs tradable again."""
    # A leg of 34th-digit noise (a fully sold asset's -4E-33) is sold, not waiting.
    sells = [x for x in left if -x.quantity > ROUNDING_NOISE]
    buys = [x for x in left if x.quantity > 0 and x.quantity * x.mid >= least]
    if not sells or not buys or cash / fee_factor >= least:
        return None
    if any(-x.quantity * x.mid >= least for x in sells):
        return None
    largest = max(-x.quantity * x.mid for x in sells)
    wanted = sum((x.quantity * x.mid for x in buys), ZERO)
    return (
        f"every sell leg is below min_asset_volley {least} USDC (the largest of "
        f"{len(sells)}: {usdc_text(largest)} USDC), so nothing can be sold to fund "
        f"{len(buys)} buy leg(s) worth {usdc_text(wanted)} USDC; waiting for client flow "
        "or larger holdings"
    )


def build_report(
    rebalance: Rebalance,
    holdings: IndexHoldings,
    market: MarketData,
    kind: str,
    reason: str | None = None,
) -> RebalanceReport:
    symbol = rebalance.target.symbol
    left = leftovers(rebalance, holdings, market)
    cash = holdings.cash_of(symbol)
    value = cash + sum((max(x.held, ZERO) * x.mid for x in left), ZERO)
    placed = sum((min(max(x.held, ZERO), x.target) * x.mid for x in left), ZERO)
    off = sum((abs(x.quantity) * x.mid for x in left), ZERO)
    lines = []
    traded = fees = slippage = ZERO
    for x in left:
        progress = rebalance.assets[x.instrument]
        traded += progress.traded
        fees += progress.fees
        slippage += progress.slippage
        lines.append(
            RebalanceAssetLine(
                instrument=x.instrument,
                target=x.target,
                held=x.held,
                left=x.quantity,
                bought=progress.bought,
                sold=progress.sold,
                crossed=progress.crossed,
                arrival_mid=progress.arrival_mid,
                fees=round_usdc(progress.fees),
                slippage=round_usdc(progress.slippage),
            )
        )
    cost = fees + slippage
    return RebalanceReport(
        symbol=symbol,
        version=rebalance.version,
        kind=kind,
        round=rebalance.rounds,
        units=holdings.units_of(symbol),
        progression=round_rate(placed / value) if value > 0 else ONE,
        accuracy=round_rate(ONE - off / value) if value > 0 else ONE,
        traded=round_usdc(traded),
        fees=round_usdc(fees),
        slippage=round_usdc(slippage),
        cost_bps=round_rate(cost / traded * BPS) if traded > 0 else ZERO,
        cash=round_usdc(cash),
        orders=rebalance.orders,
        assets=tuple(lines),
        reason=reason,
        left_value=round_usdc(off),
    )
