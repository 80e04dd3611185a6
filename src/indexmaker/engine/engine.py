"""The engine: the one entry point of the core.

`Engine.handle(input)` journals the input, applies it, and returns the commands the
adapters must carry out. One task owns the engine, so nothing here needs a lock. A failure
while handling one input is contained: it becomes an `Alert`, never a crash.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, localcontext

from indexmaker.core.clock import Clock
from indexmaker.core.errors import IndexMakerError
from indexmaker.core.events import (
    Alert,
    BookInvalid,
    BookSnapshot,
    BookUpdate,
    BurnConfirmed,
    BurnFailed,
    CancelIndexOrderRequest,
    CancelQuoteRequest,
    Command,
    DepositObserved,
    EngineInput,
    ExchangeFill,
    ExchangeOrderAccepted,
    ExchangeOrderClosed,
    ExchangeOrderReport,
    ExchangeOrderStatusUnknown,
    HopCompleted,
    HopFailed,
    HopReport,
    HopStatusUnknown,
    IndexEscrowed,
    IndexEscrowFailed,
    InstrumentStatus,
    MintConfirmed,
    MintFailed,
    NewIndexOrderRequest,
    NewQuoteRequest,
    RateLimitFeedback,
    RebalanceIndex,
    ResumeRoutes,
    RouteCostQuoted,
    RulesUpdate,
    SendToClient,
    Tick,
    TradePrint,
    VenueBalance,
    VenueOrderLimits,
    WithdrawalCompleted,
    WithdrawalFailed,
)
from indexmaker.core.ids import Designation, InstrumentId, Symbol
from indexmaker.core.journal import Journal, JournalEntry, MemoryJournal
from indexmaker.core.money import MONEY_CONTEXT
from indexmaker.engine.balances import VenueBalances
from indexmaker.engine.batches import BatchManager
from indexmaker.engine.client_orders import cancel_order, new_order, reduce_buy
from indexmaker.engine.collateral import CollateralManager
from indexmaker.engine.collateral_hops import (
    deposit,
    hop_completed,
    hop_failed,
    hop_in_flight,
    hop_report,
    route_cost_quoted,
)
from indexmaker.engine.collateral_router import CollateralRouter, Hop
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.holdings import SellBaskets
from indexmaker.engine.index_orders import IndexOrderManager
from indexmaker.engine.inventory import InventoryManager
from indexmaker.engine.listings import Listings
from indexmaker.engine.order_budget import rate_limit_feedback, venue_order_limits
from indexmaker.engine.pending_hops import PendingHops
from indexmaker.engine.prices import MarketData
from indexmaker.engine.quotes import QuoteManager
from indexmaker.engine.rebalance import RebalanceManager
from indexmaker.engine.redemptions import RedemptionManager
from indexmaker.engine.route_holds import RouteHolds
from indexmaker.engine.route_resume import resume_due, resume_routes
from indexmaker.engine.sell_batches import SellAllocator
from indexmaker.engine.solver import Solver
from indexmaker.engine.throttle import RateLimiter
from indexmaker.engine.tracker import OrderTracker
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.index import Basket
from indexmaker.model.order import IndexOrder
from indexmaker.model.side import BookSide

SOURCE_CHAIN = Designation("EVM:ARBITRUM:USDC")
TRADING_CHAIN = Designation("EVM:BASE:USDC")
EXCHANGE_ACCOUNT = Designation("BINANCE:ACCOUNT:USDC")


def default_hops() -> list[Hop]:
    """Source chain → Across bridge → trading chain → exchange deposit address."""
    return [
        Hop("across", SOURCE_CHAIN, TRADING_CHAIN),
        Hop("wallet", TRADING_CHAIN, EXCHANGE_ACCOUNT),
    ]


def default_deposit_chains() -> dict[int, str]:
    """The source chain (Arbitrum) and the trading chain (Base), SPEC §7."""
    return {42161: "Arbitrum", 8453: "Base"}


@dataclass(frozen=True, slots=True)
class EngineSetup:
    baskets: Mapping[str, Basket]
    config: SolverConfig = field(default_factory=SolverConfig)
    rules: Mapping[InstrumentId, InstrumentRules] = field(default_factory=dict)
    hops: list[Hop] = field(default_factory=default_hops)
    destination: Designation = EXCHANGE_ACCOUNT
    # SPEC §7: chain id → name of each chain the service takes deposits on; an order naming
    # another chain is rejected at once (SPEC §3). None accepts any chain id.
    deposit_chains: Mapping[int, str] | None = field(default_factory=default_deposit_chains)


# What a snapshot of the engine holds: every ledger, never the journal, clock or setup (those
# belong to the process that restores it).
_NOT_STATE = frozenset({"setup", "clock", "journal", "compact_market", "books_on_read"})


class Engine:
    def __init__(
        self,
        setup: EngineSetup,
        clock: Clock,
        journal: Journal | None = None,
        compact_market: bool = False,
        books_on_read: bool = True,
    ) -> None:
        """`compact_market`: journal market data at decision granularity instead of per diff
        (docs/decisions.md, "Book snapshots journalled when a decision reads them"): a book
        snapshot or diff is applied without a journal entry; a book changed since it was last
        journalled is journalled once, whole, as a `BookSnapshot` when an input first reads it
        (a tick that decides, a quote, a fill's fee...), right before that input's entry.
        Replay then sees exactly the books every decision saw, and an idle service journals
        only its ticks. `books_on_read` False: every changed book before every input that is
        not market data, read or not (the former rule: the books any decision could have
        seen, ~75 rows per idle tick of a 76-asset service; `[store] journal_books`)."""
        self.setup = setup
        self.clock = clock
        self.journal: Journal = journal if journal is not None else MemoryJournal()
        self.compact_market = compact_market
        self.books_on_read = books_on_read
        config = setup.config
        self.baskets: dict[Symbol, Basket] = {Symbol(k): v for k, v in setup.baskets.items()}
        self.market = MarketData()
        self.orders = IndexOrderManager(config.min_order, setup.deposit_chains)
        self.collateral = CollateralManager()
        self.router = CollateralRouter(setup.hops, setup.destination)
        self.route_holds = RouteHolds()
        self.pending_hops = PendingHops(config.hop_query_interval, config.hop_pending_alert)
        self.quotes = QuoteManager(config)
        self.inventory = InventoryManager()
        self.batches = BatchManager(self.inventory)
        self.balances = VenueBalances(self.inventory)
        self.listings = Listings()
        self.tracker = OrderTracker(RateLimiter(config.order_rate_limits))
        self.solver = Solver(
            config,
            self.baskets,
            self.market,
            self.orders,
            self.collateral,
            self.quotes,
            self.inventory,
            self.batches,
            self.tracker,
            dict(setup.rules),
        )
        holdings = self.solver.holdings
        # Redemptions of a rebalanced index sell what is held per unit (engine/holdings.py).
        sell_baskets = SellBaskets(self.baskets, holdings)
        self.redemptions = RedemptionManager(
            config,
            sell_baskets,
            self.market,
            self.solver.strategy,
            self.tracker,
            SellAllocator(self.inventory, holdings),
            self.solver.rules,
            self.solver.out,
            self.batches.new_id,
            self.solver.executions.blocked_assets,
            setup.destination,
            TRADING_CHAIN,
        )
        self.solver.redemptions = self.redemptions
        self.redemptions.settlement.pending_hops = self.pending_hops  # withdrawals asked too
        self.solver.executions.sells = self.redemptions
        self.solver.executions.balances = self.balances  # a short asset holds its orders
        self.rebalance = RebalanceManager(
            config,
            self.baskets,
            sell_baskets,
            self.market,
            self.inventory,
            holdings,
            self.tracker,
            self.solver.rules,
            self.solver.out,
            self.batches.new_id,
        )
        self.rebalance.redemptions = self.redemptions
        self.rebalance.blocked = self.solver.executions.blocked_assets
        sell_baskets.reserved = self.rebalance.reserved
        self.solver.rebalance = self.solver.executions.rebalance = self.rebalance

    # ------------------------------------------------------------------ entry point

    def handle(self, event: EngineInput) -> list[Command]:
        """Journal `event` at the clock's time, apply it, return the commands it caused."""
        now = self.clock.now()
        if not self.compact_market:
            self.journal.append(now, event)
            return self._apply(event, now)
        market = self.market
        if isinstance(event, BookSnapshot | BookUpdate):
            market.unjournaled.add(event.instrument)
            return self._apply(event, now)
        if isinstance(event, BookInvalid):
            market.unjournaled.discard(event.instrument)
        elif market.unjournaled and not self.books_on_read:
            self._journal_books(now)
        elif market.unjournaled:
            # A book is journalled when this input first reads it, before the value is used;
            # the input's own entry follows those books (it changes no book itself).
            market.on_read = lambda instrument: self._journal_book(instrument, now)
            try:
                return self._apply(event, now)
            finally:
                market.on_read = None
                self.journal.append(now, event)
        self.journal.append(now, event)
        return self._apply(event, now)

    def _journal_book(self, instrument: InstrumentId, now: datetime) -> None:
        """The book of `instrument` as it is now, whole, as a `BookSnapshot` entry."""
        book = self.market.current_book(instrument)
        if book is None:  # a diff before any snapshot was dropped: nothing to record
            return
        self.market.journaled(instrument)
        bids, asks = book.depth()
        self.journal.append(
            now,
            BookSnapshot(
                instrument,
                tuple(book.levels(BookSide.BIDS, bids)),
                tuple(book.levels(BookSide.ASKS, asks)),
            ),
        )

    def _journal_books(self, now: datetime) -> None:
        """Every book changed since it was last journalled, in instrument order."""
        unjournaled = self.market.unjournaled
        for instrument in sorted(unjournaled, key=str):
            self._journal_book(instrument, now)
        unjournaled.clear()

    def snapshot(self) -> bytes:
        """Every ledger of the engine as bytes (pickle), for `restore` in a process running
        the same build (the store keys snapshots by a build fingerprint). Market data not yet
        journalled is journalled first, so the snapshot matches the journal up to its end."""
        if self.market.unjournaled:
            self._journal_books(self.clock.now())
        state = {k: v for k, v in self.__dict__.items() if k not in _NOT_STATE}
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, snapshot: bytes) -> None:
        """Replace every ledger with those of `snapshot` (from `snapshot()` of this build).
        The bytes come from our own store, never from a peer: unpickling trusts them."""
        state = pickle.loads(snapshot)
        self.__dict__.update(state)

    def replay(self, entries: Iterable[JournalEntry]) -> list[Command]:
        """Rebuild state from journal entries, in their order, each at its journalled time
        (the engine's own clock is not read) and without journalling them again. Returns every
        command the entries caused: the same, byte for byte once encoded, as when they were
        first handled — in any process (no decision depends on hash order)."""
        commands: list[Command] = []
        for entry in entries:
            commands.extend(self._apply(entry.event, entry.at))
        return commands

    def _apply(self, event: EngineInput, now: datetime) -> list[Command]:
        out = self.solver.out
        try:
            with localcontext(MONEY_CONTEXT):
                self._dispatch(event, now)
        except (IndexMakerError, ArithmeticError) as error:
            # Validation happens before mutation, so a refused input leaves the ledgers whole.
            out.append(Alert(type(error).__name__, f"{type(event).__name__}: {error}"))
        except Exception as error:  # a bug: report it loudly, but one input never stops us
            out.append(Alert("internal_error", f"{type(event).__name__}: {error!r}"))
        commands = list(out)
        out.clear()
        return commands

    def _dispatch(self, event: EngineInput, now: datetime) -> None:
        solver = self.solver
        settlement = self.redemptions.settlement
        settlement.now = now
        match event:
            case Tick():
                solver.tick(now)
                in_flight = functools.partial(hop_in_flight, self)
                solver.out.extend(self.pending_hops.due(now, in_flight))
                resume_due(self, now)
            case BookSnapshot() | BookUpdate() | BookInvalid() | TradePrint():
                self.market.apply(event)
            case ExchangeFill():
                solver.executions.on_fill(event, now)
            case ExchangeOrderClosed():
                solver.executions.on_closed(event, now)
            case ExchangeOrderAccepted():
                self.tracker.on_accepted(event.order_id)
            case ExchangeOrderStatusUnknown():
                solver.executions.on_status_unknown(event)
            case ExchangeOrderReport():
                solver.executions.on_report(event, now)
            case RulesUpdate():
                solver.rules[event.instrument] = event.rules
            case InstrumentStatus():
                solver.out.extend(self.listings.on_status(event))
            case RateLimitFeedback():
                solver.out.extend(rate_limit_feedback(self.tracker, event, now))
            case VenueOrderLimits():
                venue_order_limits(self.tracker, event, self.setup.config, now)
            case VenueBalance():
                solver.out.extend(self.balances.on_balance(event, solver.rules))
            case NewIndexOrderRequest():
                new_order(self, event, now)
            case CancelIndexOrderRequest():
                cancel_order(self, event)
            case NewQuoteRequest():
                known = event.symbol in self.baskets
                response = self.quotes.request(event, known, self.redemptions.refusal)
                solver.out.append(SendToClient(event.client, response))
            case CancelQuoteRequest():
                solver.out.append(SendToClient(event.client, self.quotes.cancel(event)))
            case DepositObserved():
                deposit(self, event, now)
            case RouteCostQuoted():
                route_cost_quoted(self, event)
            case HopCompleted() | HopFailed() | HopStatusUnknown() | HopReport() if (
                settlement.owns_transfer(event.transfer_id)
            ):
                settlement.on_withdrawn(event)
            case HopCompleted():
                hop_completed(self, event, now)
            case HopFailed():
                hop_failed(self, event, now)
            case HopStatusUnknown():
                query = self.router.on_status_unknown(event.transfer_id)
                if query is not None:
                    solver.out.append(query)
            case HopReport():
                hop_report(self, event, now)
            case ResumeRoutes():
                resume_routes(self, event)
            case MintConfirmed():
                solver.minter.on_confirmed(event.payment_id, now, event.tx_hash)
            case MintFailed():
                solver.minter.on_failed(event)
            case BurnConfirmed() | BurnFailed():
                settlement.on_burn(event)
            case WithdrawalCompleted() | WithdrawalFailed() if settlement.owns_payout(
                event.withdrawal_id
            ):
                settlement.on_paid(event)
            case WithdrawalCompleted() | WithdrawalFailed():
                solver.out.append(Alert("unknown_withdrawal", f"{event!r}"))
            case IndexEscrowed():
                self.redemptions.on_escrowed(event)
            case IndexEscrowFailed():
                self.redemptions.on_escrow_failed(event)
            case RebalanceIndex():
                self.rebalance.start(event, now)

    def reduce_buy(self, order: IndexOrder, amount: Decimal) -> None:
        """Take `amount` USDC not yet engaged off a buy queue, newest first (SPEC §3)."""
        reduce_buy(self, order, amount)
