"""Rebalance manager: an index's holdings moved to a new basket version in rounds (issue 12;
SPEC §1 item 8; reference §6.2).

Cut-over (docs/decisions.md): a `RebalanceIndex` replaces the index's basket with the next
version at once, so every buy batch formed from then on buys the new basket (batches already
open keep theirs); redemptions sell the holdings basket (engine/holdings.py), pro rata from
what is held. Targets are never frozen: each round computes, per asset, target = units
outstanding × new quantity and left = target − held, so client buys and sells during the
rebalance change what is left exactly as they change the holdings.

A round (one at a time per index) sells every asset above target
and buys every asset below it as far as the index's cash allows (sales fund buys: USDC is the
bridge asset, reference §6.2 item 3), with the buy side's rules mirrored: limit = best ask ×
(1 + threshold) up / best bid × (1 − threshold) down to the tick, size within the book's
liquidity inside the limit (first max_levels levels), at most `rebalance_max_tranche` USDC
per asset, a buy grossed up for a commission the venue takes in the bought asset (SPEC §6),
rounded down by the venue's filters so a tranche never overshoots its target
(reference §6.2 item 7); a leg below min_asset_volley is dust and waits. Before the venue a
round nets against issuer inventory nobody uses (taken at the lot's cost) and crosses against
the tick's client batches (crossing.py: at the mid, no fee); only the rest is sent. An asset
whose mid left its cut-over mid by more than `rebalance_price_band` waits (item 6). Pacing
is per asset (item 5): an asset whose tranche went to the venue sends none for
`rebalance_interval` after its round closed, while the others go on in the next rounds. The
rebalance completes when nothing above min_asset_volley is left, or only buys are left and
the cash cannot pay one, or after `rebalance_ttl`; reports: rebalance_reports.py; the
trades booked into holdings, cash and lots: rebalance_ledger.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from indexmaker.core.errors import InvalidInputError
from indexmaker.core.events import Alert, BatchEvent, Command, ExchangeFill
from indexmaker.core.holds import HoldReason
from indexmaker.core.ids import BatchId, ClientOrderId, InstrumentId, Symbol, TradeId
from indexmaker.core.money import round_usdc
from indexmaker.core.rebalance_events import RebalanceIndex
from indexmaker.engine.batch_events import waiting_detail
from indexmaker.engine.commission import LotTerms
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.crossing import Crossing
from indexmaker.engine.holdings import IndexHoldings, SellBaskets
from indexmaker.engine.inventory import InventoryManager
from indexmaker.engine.prices import MarketData
from indexmaker.engine.rebalance_ledger import RebalanceLedger
from indexmaker.engine.rebalance_plan import RoundPlan, RoundPlanner
from indexmaker.engine.rebalance_reports import (
    Leftover,
    below_minimums,
    build_report,
    done_reason,
    leftovers,
)
from indexmaker.engine.strategy import BatchPlan
from indexmaker.engine.tracker import OrderTracker
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.index import Basket
from indexmaker.model.order import OrderUpdate
from indexmaker.model.rebalance import AssetProgress, Rebalance, rebased_basket
from indexmaker.model.redemption import Redemption
from indexmaker.model.side import Side

if TYPE_CHECKING:
    from indexmaker.engine.batches import Batch
    from indexmaker.engine.redemptions import RedemptionManager
    from indexmaker.engine.sell_batches import SellBatch

ZERO = Decimal(0)
ONE = Decimal(1)
# Give a buy batch of the tick a lot crossed at the mid (the solver's `cross_lot`).
CrossLot = Callable[["Batch", Crossing, TradeId, datetime], None]


@dataclass(slots=True)
class _Round:
    rebalance: Rebalance
    pending: dict[InstrumentId, Decimal] = field(default_factory=dict)  # signed, in flight
    open_orders: int = 0


class RebalanceManager:
    def __init__(
        self,
        config: SolverConfig,
        baskets: dict[Symbol, Basket],
        sell_baskets: SellBaskets,
        market: MarketData,
        inventory: InventoryManager,
        holdings: IndexHoldings,
        tracker: OrderTracker,
        rules: Mapping[InstrumentId, InstrumentRules],
        out: list[Command],
        new_batch_id: Callable[[], BatchId],
    ) -> None:
        self.config = config
        self.baskets = baskets
        self.sell_baskets = sell_baskets
        self.market = market
        self.inventory = inventory
        self.holdings = holdings
        self.tracker = tracker
        self.rules = rules
        self.out = out
        self._new_batch_id = new_batch_id
        self.active: dict[Symbol, Rebalance] = {}  # by cut-over order
        self.finished: list[Rebalance] = []
        self._rounds: dict[BatchId, _Round] = {}
        self._open: dict[Symbol, BatchId] = {}
        self.redemptions: RedemptionManager | None = None
        self.planner = RoundPlanner(config, market, inventory, holdings, rules)
        # Assets cooling down after a venue reject or short at the venue
        # (ExecutionReports.blocked_assets).
        self.blocked: Callable[[datetime], Mapping[InstrumentId, HoldReason]] | None = None

    @property
    def ledger(self) -> RebalanceLedger:
        """Books the rounds' trades (stateless: not part of the engine's snapshot)."""
        return RebalanceLedger(self.config, self.inventory, self.holdings)

    # ------------------------------------------------------------------ proposal

    def start(self, event: RebalanceIndex, now: datetime) -> None:
        """Cut over to the next basket version (validated first: a refused proposal raises
        InvalidInputError and changes nothing)."""
        current = self.baskets.get(event.symbol)
        if current is None:
            raise InvalidInputError("symbol", f"no index {event.symbol}")
        if event.deadline is not None and now > event.deadline:
            raise InvalidInputError("deadline", f"{event.proposal_id} expired at {event.deadline}")
        held = self.holdings.assets_of(event.symbol)
        wanted = [*held, *(a.instrument for a in current.assets)]
        wanted += [w.instrument for w in event.weights]
        mids: dict[InstrumentId, Decimal] = {}
        for instrument in wanted:
            prices = self.market.prices(instrument)
            if prices is None or prices.mid is None:
                raise InvalidInputError("weights", f"no mid price for {instrument}")
            if instrument not in self.rules:
                raise InvalidInputError("weights", f"{instrument} has no known exchange filters")
            mids[instrument] = prices.mid
        target = rebased_basket(current, event.weights, mids)
        previous = self.active.pop(event.symbol, None)
        if previous is not None:
            self._finish(previous, now, f"superseded by version {target.version}")
        assets = {i: AssetProgress(i, mids[i]) for i in dict.fromkeys(wanted)}
        rebalance = Rebalance(target, event.proposal_id, now, assets, next_round_at=now)
        self.baskets[event.symbol] = target  # the cut-over: new buys price the new basket
        self.sell_baskets.rebalanced.add(event.symbol)
        self.holdings.touch(event.symbol)
        self.active[event.symbol] = rebalance
        self._report(rebalance, "started")

    # ------------------------------------------------------------------ planning

    def plan(
        self,
        now: datetime,
        buy_plan: BatchPlan[OrderUpdate] | None,
        sell_plan: BatchPlan[Redemption] | None,
    ) -> RoundPlan | None:
        """At most one round a tick, of the first index that is due; nets it against idle
        inventory and crosses it with the tick's client plans (returned, netted)."""
        selling = (
            set(self.redemptions.batch.groups)
            if self.redemptions and self.redemptions.batch
            else set()
        )
        if sell_plan is not None:
            selling |= {e.update.symbol for e in sell_plan.entries}
        for symbol, rebalance in list(self.active.items()):
            if symbol in self._open or symbol in selling:
                continue  # one round at a time; never beside a redemption of the index
            if now - rebalance.started_at >= self.config.rebalance_ttl:
                expired = f"expired after {self.config.rebalance_ttl}"
                if rebalance.waiting is not None:
                    expired = f"stopped: below minimums ({expired}; {rebalance.waiting})"
                self._finish(rebalance, now, expired)
                continue
            if rebalance.next_round_at is not None and now < rebalance.next_round_at:
                continue
            left = leftovers(rebalance, self.holdings, self.market)
            cash = self.holdings.cash_of(symbol)
            cfg = self.config
            stuck = below_minimums(left, cash, cfg.fee_factor, cfg.min_asset_volley)
            if stuck is not None:  # off target, cannot trade: say why once, look again later
                self._wait(rebalance, stuck, now)
                continue
            rebalance.waiting = None
            done = self._done_reason(rebalance, left)
            if done is not None:
                self._finish(rebalance, now, done)
                continue
            blocked = self.blocked(now) if self.blocked is not None else {}
            planned = self.planner.plan(rebalance, left, buy_plan, sell_plan, blocked, now)
            if planned is not None:
                return planned
            rebalance.next_round_at = self._next_look(rebalance, now)
        return None

    def _wait(self, rebalance: Rebalance, why: str, now: datetime) -> None:
        """Nothing can trade while off target: an operator alert and a report the first
        time (never `completed`: /v1/rebalances keeps it open), then look again after
        `rebalance_interval` until client flow makes the legs tradable or the TTL ends it."""
        if rebalance.waiting is None:
            symbol = rebalance.target.symbol
            self.out.append(
                Alert("rebalance_below_minimum", f"{symbol} v{rebalance.version}: {why}")
            )
            self._report(rebalance, "waiting", why)
        rebalance.waiting = why
        rebalance.next_round_at = now + self.config.rebalance_interval

    def _next_look(self, rebalance: Rebalance, now: datetime) -> datetime:
        """Nothing could trade now: look again after `rebalance_interval` (the books, the
        band or a cool-down may change), or as soon as a paced asset is due."""
        paced = [
            p.next_tranche_at
            for p in rebalance.assets.values()
            if p.next_tranche_at is not None and p.next_tranche_at > now
        ]
        return min([now + self.config.rebalance_interval, *paced])

    def _done_reason(self, rebalance: Rebalance, left: list[Leftover]) -> str | None:
        cash, cfg = self.holdings.cash_of(rebalance.target.symbol), self.config
        return done_reason(left, cash, cfg.fee_factor, cfg.min_asset_volley)

    # ------------------------------------------------------------------ a round

    def open(
        self,
        plan: RoundPlan,
        buy_batch: Batch | None,
        sell_batch: SellBatch | None,
        cross_lot: CrossLot,
        now: datetime,
    ) -> None:
        """Carry out a planned round: idle inventory and crossings at once, the rest sent."""
        rebalance = plan.rebalance
        symbol = rebalance.target.symbol
        batch_id = self._new_batch_id()
        rnd = self._rounds[batch_id] = _Round(rebalance)
        rebalance.round_id = batch_id
        rebalance.round_ids.add(batch_id)
        self._open[symbol] = batch_id
        owner = ClientOrderId(f"rebalance:{symbol}:v{rebalance.version}")
        for instrument, quantity in plan.idle:
            self.ledger.take_idle(rebalance, owner, instrument, quantity, now)
        for crossing in plan.to_buyers:
            if buy_batch is None:
                break
            trade = TradeId(f"x{buy_batch.batch_id}-{batch_id}")
            self.ledger.sold(
                rebalance, crossing.instrument, crossing.quantity, crossing.price, ZERO
            )
            rebalance.assets[crossing.instrument].crossed -= crossing.quantity
            cross_lot(buy_batch, crossing, trade, now)
        for crossing in plan.from_sellers:
            if sell_batch is None or self.redemptions is None:
                break
            trade = TradeId(f"x{batch_id}-{sell_batch.batch_id}")
            lot = self.inventory.open_lot(
                crossing.instrument, trade, crossing.price, crossing.quantity, ZERO, now, None, True
            )
            self.ledger.bought(rebalance, owner, lot, now)
            rebalance.assets[crossing.instrument].crossed += crossing.quantity
            self.redemptions.cross_in(sell_batch, crossing, trade)
        for planned in plan.orders:
            self.tracker.send(
                batch_id, planned.instrument, planned.side, planned.price, planned.quantity, now
            )
            sign = ONE if planned.side is Side.BUY else -ONE
            rnd.pending[planned.instrument] = sign * planned.quantity
            rnd.open_orders += 1
            rebalance.orders += 1
        self.holdings.touch(symbol)
        notional = sum((o.quantity * o.price for o in plan.orders), ZERO)
        waiting = self.tracker.waiting(now)
        self._batch_event(batch_id, "created", symbol, rnd.open_orders, notional, waiting)
        if rnd.open_orders == 0:
            self._close_round(batch_id, now)

    def reserved(self, symbol: Symbol) -> dict[InstrumentId, Decimal]:
        """What the open round of `symbol` is selling (not for redemptions meanwhile)."""
        batch_id = self._open.get(symbol)
        if batch_id is None:
            return {}
        return {a: -q for a, q in self._rounds[batch_id].pending.items() if q < 0}

    def owns(self, batch_id: BatchId) -> bool:
        return batch_id in self._rounds

    def on_fill(
        self, batch_id: BatchId, side: Side, fill: ExchangeFill, terms: LotTerms, now: datetime
    ) -> None:
        """An execution of a round (also after the round closed: never lost, its side read
        from the order, not from what the round still expects)."""
        rnd = self._rounds[batch_id]
        rebalance = rnd.rebalance
        symbol = rebalance.target.symbol
        asset = fill.instrument
        pending = rnd.pending.get(asset, ZERO)
        if side is Side.SELL:
            self.ledger.sold(rebalance, asset, fill.quantity, fill.price, terms.fee)
            rebalance.assets[asset].sold += fill.quantity
            rnd.pending[asset] = min(ZERO, pending + fill.quantity)
        else:
            owner = ClientOrderId(f"rebalance:{symbol}:v{rebalance.version}")
            lot = self.inventory.open_lot(
                asset, fill.trade_id, fill.price, terms.quantity, terms.fee, now, None
            )
            self.ledger.bought(rebalance, owner, lot, now)
            rebalance.assets[asset].bought += terms.quantity
            rnd.pending[asset] = max(ZERO, pending - fill.quantity)
        self.holdings.touch(symbol)

    def on_closed(self, batch_id: BatchId, now: datetime) -> None:
        rnd = self._rounds.get(batch_id)
        if rnd is None or rnd.open_orders <= 0:
            return
        rnd.open_orders -= 1
        if rnd.open_orders == 0:
            self._close_round(batch_id, now)

    def _close_round(self, batch_id: BatchId, now: datetime) -> None:
        rnd = self._rounds[batch_id]
        rebalance = rnd.rebalance
        symbol = rebalance.target.symbol
        # Pacing is per asset (reference §6.2 item 5: let the book refill): an asset whose
        # tranche went to the venue waits `rebalance_interval`; the others (crossed, taken
        # from idle inventory, or not traded: e.g. buys the round's sales now pay) are due at
        # the next tick.
        due = now + self.config.rebalance_interval
        for instrument in rnd.pending:  # every asset the round sent an order for
            rebalance.assets[instrument].next_tranche_at = due
        rnd.pending.clear()
        if self._open.get(symbol) == batch_id:
            del self._open[symbol]
        rebalance.round_id = None
        rebalance.rounds += 1
        rebalance.next_round_at = None
        self.holdings.touch(symbol)
        self._batch_event(batch_id, "completed", symbol, len(rebalance.assets), ZERO)
        if self.active.get(symbol) is rebalance:
            self._report(rebalance, "round")
            done = self._done_reason(rebalance, leftovers(rebalance, self.holdings, self.market))
            if done is not None:
                self._finish(rebalance, now, done)

    def _batch_event(
        self, batch_id: BatchId, kind: str, symbol: Symbol, assets: int, notional: Decimal,
        wait: int = 0,
    ) -> None:  # fmt: skip
        """A round as operators see batches (logs, metrics): no client order in it; `wait`
        orders queued for the order budget (`waiting_detail`)."""
        details = {"side": "rebalance", "symbol": symbol} | waiting_detail(wait, assets)
        self.out.append(BatchEvent(batch_id, kind, 0, assets, round_usdc(notional), details))

    def _finish(self, rebalance: Rebalance, now: datetime, reason: str) -> None:
        symbol = rebalance.target.symbol
        if self.active.get(symbol) is rebalance:
            del self.active[symbol]
        rebalance.done = True
        self.finished.append(rebalance)
        self._report(rebalance, "completed", reason)

    def _report(self, rebalance: Rebalance, kind: str, reason: str | None = None) -> None:
        self.out.append(build_report(rebalance, self.holdings, self.market, kind, reason))
