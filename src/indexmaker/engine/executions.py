"""Venue reports about exchange orders, between the order tracker and the batches.

Fills open inventory lots (a commission converted per SPEC §6) and are allocated to their
batch, or carried when the batch has completed (a late fill); closes complete batches; an
unknown status or a lost execution starts a reconciliation (`QueryExchangeOrder`), whose
`ExchangeOrderReport` settles the order; a rejected asset cools down, doubling per repeat,
so a persistent reject is not hammered. Ordering and idempotency: docs/adapters.md.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from indexmaker.core.events import (
    Alert,
    Command,
    ExchangeFill,
    ExchangeOrderClosed,
    ExchangeOrderReport,
    ExchangeOrderStatus,
    ExchangeOrderStatusUnknown,
    QueryExchangeOrder,
)
from indexmaker.core.holds import HoldCode, HoldReason
from indexmaker.core.ids import InstrumentId
from indexmaker.engine.batches import Allocation, Batch, BatchManager
from indexmaker.engine.commission import lot_terms
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.inventory import InventoryManager
from indexmaker.engine.prices import MarketData
from indexmaker.engine.tracker import OrderTracker
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.side import Side

if TYPE_CHECKING:
    from indexmaker.engine.balances import VenueBalances
    from indexmaker.engine.rebalance import RebalanceManager
    from indexmaker.engine.redemptions import RedemptionManager


class ExecutionReports:
    def __init__(
        self,
        config: SolverConfig,
        market: MarketData,
        inventory: InventoryManager,
        batches: BatchManager,
        tracker: OrderTracker,
        rules: dict[InstrumentId, InstrumentRules],
        out: list[Command],
        allocate: Callable[[list[Allocation], datetime], None],
        finish: Callable[[Batch, datetime], None],
    ) -> None:
        self.config = config
        self.market = market
        self.inventory = inventory
        self.batches = batches
        self.tracker = tracker
        self.rules = rules  # shared with the solver: a RulesUpdate is seen by both
        self.out = out
        self._allocate = allocate
        self._finish = finish
        # asset -> (retry not before, consecutive rejects, last reason)
        self._cooldown: dict[InstrumentId, tuple[datetime, int, str]] = {}
        # The sell side's batches (redemptions); sell executions are sales, not lots.
        self.sells: RedemptionManager | None = None
        # Rebalance rounds (engine/rebalance.py): their executions move an index's holdings.
        self.rebalance: RebalanceManager | None = None
        # The venue's balances (engine/balances.py): an asset short there holds its orders.
        self.balances: VenueBalances | None = None

    def on_fill(self, fill: ExchangeFill, now: datetime) -> None:
        """Deduplicated by trade id; opens a lot; allocates it or carries it (late fill)."""
        tracked = self.tracker.on_fill(fill)
        if tracked is None:
            known = self.tracker.get(fill.order_id) is not None
            code = "duplicate_or_bad_fill" if known else "unknown_order_fill"
            self.out.append(Alert(code, f"ignored fill {fill.trade_id} of {fill.order_id}"))
            return
        if fill.cumulative_quantity > tracked.filled and not tracked.reconciling:
            # The venue counts more than we were told: an execution was lost on the way.
            tracked.reconciling = True
            self.out.append(
                Alert(
                    "fills_missing",
                    f"{fill.order_id}: venue cumulative {fill.cumulative_quantity}, "
                    f"received {tracked.filled}; reconciling",
                )
            )
            self.out.append(QueryExchangeOrder(fill.order_id, fill.instrument))
        batch = self.batches.get(tracked.batch_id)
        command = tracked.command
        self._cooldown.pop(command.instrument, None)  # the venue trades it again
        terms = lot_terms(fill, self.rules.get(command.instrument), self.market)
        if terms.unpriced is not None:
            self.out.append(
                Alert(
                    "commission_unpriced",
                    f"fill {fill.trade_id} of {fill.order_id}: no USDC price for "
                    f"{terms.unpriced}; commission {fill.commission} recorded as fee 0",
                )
            )
        if self.rebalance is not None and self.rebalance.owns(tracked.batch_id):
            self.rebalance.on_fill(tracked.batch_id, command.side, fill, terms, now)
            return
        if command.side is Side.SELL and self.sells is not None:
            self.sells.on_fill(
                tracked.batch_id,
                fill.order_id,
                fill.trade_id,
                command.instrument,
                fill.price,
                fill.quantity,
                terms.fee,
            )
            return
        # A late fill (its batch completed) opens an unreserved lot: the next batch of the
        # asset uses it first (carry-over), so no bought quantity goes unrecorded.
        lot = self.inventory.open_lot(
            command.instrument,
            fill.trade_id,
            fill.price,
            terms.quantity,
            terms.fee,
            now,
            reserved_by=batch.batch_id if batch is not None else None,
        )
        if batch is not None:
            self._allocate(self.batches.on_lot(batch, lot), now)
        else:
            self.out.append(
                Alert(
                    "late_fill",
                    f"fill {fill.trade_id} of {fill.order_id} after batch {tracked.batch_id} "
                    f"completed: lot {lot.lot_id} carried",
                )
            )

    def on_closed(self, closed: ExchangeOrderClosed, now: datetime) -> None:
        tracked = self.tracker.on_closed(closed)
        if tracked is None:
            self.out.append(Alert("unknown_order_close", f"ignored close of {closed.order_id}"))
            return
        if closed.status is ExchangeOrderStatus.REJECTED:
            self._cool_down(tracked.command.instrument, closed.reason or "rejected", now)
            self.out.append(
                Alert(
                    "exchange_reject",
                    f"{tracked.command.instrument} order {closed.order_id} of batch "
                    f"{tracked.batch_id} rejected: {closed.reason}",
                )
            )
        if self.rebalance is not None and self.rebalance.owns(tracked.batch_id):
            self.rebalance.on_closed(tracked.batch_id, now)
            return
        if self.sells is not None and self.sells.owns_batch(tracked.batch_id):
            self.sells.on_closed(tracked.batch_id, now)
            return
        batch = self.batches.get(tracked.batch_id)
        if batch is not None and self.batches.on_order_closed(batch):
            self._finish(batch, now)

    def on_status_unknown(self, event: ExchangeOrderStatusUnknown) -> None:
        """The adapter does not know whether the venue took the order: ask, never resend."""
        tracked = self.tracker.on_unknown(event.order_id, event.reason)
        if tracked is None:
            self.out.append(Alert("unknown_order_status", f"ignored {event.order_id}"))
            return
        tracked.reconciling = True
        self.out.append(QueryExchangeOrder(event.order_id, tracked.command.instrument))

    def on_report(self, report: ExchangeOrderReport, now: datetime) -> None:
        """The venue's word on an order. Fills it reports are delivered as `ExchangeFill`s
        before the report (docs/adapters.md); a final status closes the order."""
        tracked = self.tracker.get(report.order_id)
        if tracked is None or tracked.status.is_final:
            return  # already settled: a report repeats what we know
        if report.cumulative_quantity > tracked.filled:
            self.out.append(
                Alert(
                    "fills_missing",
                    f"{report.order_id}: venue reports {report.cumulative_quantity} filled, "
                    f"{tracked.filled} received",
                )
            )
        if report.status is None:
            # Why the status was unknown (the place's own failure) is the cause; the venue's
            # "no such order" only confirms nothing reached it.
            unknown = report.reason or "the venue does not know the order"
            reason = f"{tracked.reason}; {unknown}" if tracked.reason else unknown
            closed = ExchangeOrderClosed(
                report.order_id, report.instrument, ExchangeOrderStatus.REJECTED, reason
            )
            self.on_closed(closed, now)
        elif report.status.is_final:
            closed = ExchangeOrderClosed(
                report.order_id, report.instrument, report.status, report.reason
            )
            self.on_closed(closed, now)
        elif report.status is ExchangeOrderStatus.LIVE:
            self.tracker.on_accepted(report.order_id)

    def _cool_down(self, asset: InstrumentId, reason: str, now: datetime) -> None:
        """Back off an asset the venue refused, so a persistent reject is not hammered."""
        _, repeats, _ = self._cooldown.get(asset, (now, 0, reason))
        wait = min(self.config.reject_cooldown * (2**repeats), self.config.max_reject_cooldown)
        self._cooldown[asset] = (now + wait, repeats + 1, reason)

    def blocked_assets(self, now: datetime) -> dict[InstrumentId, HoldReason]:
        """Assets no batch may trade now, with the hold to give the orders: cooling down after
        a venue reject, or short at the venue (issue 10: a discrepancy that cannot be resolved
        automatically is an alert, and the affected orders wait until a balance covers the
        lots again; engine/balances.py)."""
        blocked = {
            asset: HoldReason(
                HoldCode.COOLING_DOWN,
                f"{asset} refused by the venue ({reason}); retry after {until.isoformat()}",
            )
            for asset, (until, _, reason) in self._cooldown.items()
            if until > now
        }
        if self.balances is not None:
            for asset, why in self.balances.blocked(self.rules).items():
                blocked.setdefault(asset, HoldReason(HoldCode.BALANCE_SHORT, why))
        return blocked
