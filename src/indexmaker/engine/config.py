"""Solver parameters (SPEC §4 defaults). Every one is configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from indexmaker.engine.throttle import RateLimit


def _binance_order_limits() -> tuple[RateLimit, ...]:
    # Binance spot's published order-rate limits for one account: the budget of a venue
    # that does not state its own (a Binance account states them: engine/order_budget.py).
    return (
        RateLimit("ORDERS_10S", 100, timedelta(seconds=10)),
        RateLimit("ORDERS_1D", 200_000, timedelta(days=1)),
    )


@dataclass(frozen=True, slots=True)
class SolverConfig:
    price_threshold: Decimal = Decimal("0.01")
    max_levels: int = 5
    fee_factor: Decimal = Decimal("1.002")
    max_order_volley: Decimal = Decimal("10000")
    max_volley: Decimal = Decimal("50000")
    min_asset_volley: Decimal = Decimal("5")
    asset_volley_step: Decimal = Decimal("0.1")
    max_total_volley: Decimal = Decimal("100000")
    min_total_volley_available: Decimal = Decimal("1000")
    max_batch_size: int = 16
    # SPEC §3: the smallest order accepted (USDC, at most 6 decimals); collateral an order has
    # not engaged starts another batch only from this amount up.
    min_order: Decimal = Decimal("10")
    tick: timedelta = timedelta(milliseconds=100)
    collateral_timeout: timedelta = timedelta(minutes=30)
    partly_mintable_rate: Decimal = Decimal("0.99")
    fully_mintable_rate: Decimal = Decimal("0.9999")
    mint_idle: timedelta = timedelta(seconds=10)
    # A sell held below its floor looks at the books again this often (they may have moved
    # every tick; each look journals the books that did: engine/redemption_candidates.py).
    floor_recheck: timedelta = timedelta(seconds=1)
    # After a venue reject an asset waits before it is tried again, doubling per repeat.
    reject_cooldown: timedelta = timedelta(seconds=5)
    max_reject_cooldown: timedelta = timedelta(minutes=5)
    order_rate_limits: tuple[RateLimit, ...] = field(default_factory=_binance_order_limits)
    # True: a venue's own order-count windows (`VenueOrderLimits`) replace order_rate_limits
    # once it states them; False: order_rate_limits stay, whatever the venue says (override).
    venue_order_limits: bool = True
    # Sell side (issue 12): net redemptions (USDC at the sell limit, minus issuance engaged)
    # allowed per rolling window before redemptions queue FIFO (reference §6.1 item 8).
    max_net_redemption: Decimal = Decimal("500000")
    redemption_window: timedelta = timedelta(hours=1)
    # A redemption not fully sold by then stops selling; its unsold units are returned.
    redemption_ttl: timedelta = timedelta(hours=1)
    # A sell leg the venue would refuse (below min_asset_volley) is taken by the issuer into
    # its idle inventory at the mid while that absorbed inventory (USDC at the mids) stays
    # within this cap; a redemption that alone needs more is refused at acceptance
    # (engine/absorption.py). 0: such legs wait.
    max_issuer_absorb: Decimal = Decimal("500")
    # What a payout of redemption proceeds is expected to cost at least (USDC fixed + rate of
    # the amount: the venue's withdrawal fee for the network, a return bridge, payout gas);
    # sell floors and quotes take the larger of this and the last payout seen on the client's
    # chain (engine/sell_proceeds.py).
    withdrawal_fee: Decimal = Decimal(0)
    withdrawal_fee_rate: Decimal = Decimal(0)
    # The collateral hop that withdraws proceeds from the exchange to the trading chain.
    withdraw_bridge: str = "withdraw"
    # (client chain id, bridge, designation): a redemption of a client of that chain crosses
    # `bridge` from the trading chain to that designation before it is paid there (issue 12);
    # a chain not listed is paid on the trading chain.
    return_hops: tuple[tuple[int, str, str], ...] = ()
    # (client chain id, USDC): what crossing the return hop to that chain is known to cost
    # (the bridge's fee and its transactions' gas). Until a payout to that chain has been
    # seen, sell floors and quotes expect it on top of withdrawal_fee (engine/sell_proceeds.py).
    return_hop_fees: tuple[tuple[int, Decimal], ...] = ()
    # A hop the chain reported PENDING is asked about again this long after each answer
    # (its completion push may be lost); pending this long, it is alerted and left alone.
    hop_query_interval: timedelta = timedelta(seconds=30)
    hop_pending_alert: timedelta = timedelta(minutes=30)
    # A hop given up after its tries is routed again this long after (engine/route_resume.py).
    route_retry_after: timedelta = timedelta(minutes=10)
    # Rebalancing (issue 12, reference §6.2): an asset sends no venue tranche for
    # rebalance_interval after its previous one closed (pacing per asset; the other assets go
    # on), each round moves at most rebalance_max_tranche USDC of one asset, an asset whose mid left
    # its cut-over mid by more than rebalance_price_band waits, and a rebalance ends after
    # rebalance_ttl whatever is left.
    rebalance_interval: timedelta = timedelta(seconds=60)
    rebalance_max_tranche: Decimal = Decimal("10000")
    rebalance_price_band: Decimal = Decimal("0.02")
    rebalance_ttl: timedelta = timedelta(days=1)

    def __post_init__(self) -> None:
        positive = {
            "fee_factor": self.fee_factor,
            "max_order_volley": self.max_order_volley,
            "max_volley": self.max_volley,
            "asset_volley_step": self.asset_volley_step,
            "max_total_volley": self.max_total_volley,
            "min_order": self.min_order,
            "max_net_redemption": self.max_net_redemption,
            "rebalance_max_tranche": self.rebalance_max_tranche,
            "rebalance_price_band": self.rebalance_price_band,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if self.max_issuer_absorb < 0:
            raise ValueError(f"max_issuer_absorb must be >= 0, got {self.max_issuer_absorb}")
        if self.withdrawal_fee < 0 or not 0 <= self.withdrawal_fee_rate < 1:
            raise ValueError("need withdrawal_fee >= 0 and 0 <= withdrawal_fee_rate < 1")
        for chain_id, fee in self.return_hop_fees:
            if not fee >= 0:
                raise ValueError(f"return_hop_fees: chain {chain_id}: fee must be >= 0, got {fee}")
        if self.fee_factor < 1:
            raise ValueError("fee_factor must be >= 1")
        if not 0 <= self.price_threshold < 1:
            raise ValueError("price_threshold must be in [0, 1)")
        if not timedelta(0) < self.hop_query_interval <= self.hop_pending_alert:
            raise ValueError("need 0 < hop_query_interval <= hop_pending_alert")
        if self.route_retry_after <= timedelta(0):
            raise ValueError("route_retry_after must be > 0")
        if self.max_levels < 1 or self.max_batch_size < 1:
            raise ValueError("max_levels and max_batch_size must be >= 1")
        if not 0 < self.partly_mintable_rate <= self.fully_mintable_rate <= 1:
            raise ValueError("need 0 < partly_mintable_rate <= fully_mintable_rate <= 1")
