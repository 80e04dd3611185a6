"""The order budget is the venue's own (SPEC §6, engine/order_budget.py): a venue's stated
order windows replace `[solver] order_rate_limits`, a batch of more assets than one window
allows goes out over several windows without a refusal or an alert per order, buys and sells
alike (rebalance rounds too), and a replay of the journal gives the same commands."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from indexmaker.core.codec import encode
from indexmaker.core.events import (
    Alert,
    Command,
    NewIndexOrderRequest,
    OrderLimitWindow,
    PlaceExchangeOrder,
    RateLimitFeedback,
    VenueOrderLimits,
)
from indexmaker.core.ids import ClientOrderId, Symbol, Venue, client_key, instrument
from indexmaker.core.money import money_context
from indexmaker.core.rebalance_events import RebalanceIndex, RebalanceWeight
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.engine import Engine, EngineSetup
from indexmaker.engine.throttle import RateLimit
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.index import Basket, BasketAsset
from indexmaker.model.redemption import RedemptionState
from indexmaker.model.side import Side
from indexmaker.sim.chain import SimulatedChain
from indexmaker.sim.exchange import SimulatedExchange
from indexmaker.sim.world import SimulatedWorld

D = Decimal
S = timedelta(seconds=1)
ASSETS = tuple(instrument(f"A{n:02d}USDC") for n in range(12))
IDX = Symbol("IDX")
ALICE = client_key(8453, "0x" + "a1" * 20)
BINANCE = Venue("binance")
# The venue states 10 orders per 10 s; the engine uses 90% of it: 9.
VENUE_LIMIT = RateLimit("ORDERS_10S", 10, 10 * S)
KEPT = 9


def _world(config: SolverConfig | None = None, limit: RateLimit = VENUE_LIMIT) -> SimulatedWorld:
    baskets = {"IDX": Basket(IDX, tuple(BasketAsset(a, D(1)) for a in ASSETS))}
    books = {a: ([(D("9.99"), D(10_000))], [(D(10), D(10_000))]) for a in ASSETS}
    rules = {a: InstrumentRules(a, a.pair.removesuffix("USDC"), "USDC") for a in ASSETS}
    exchange = SimulatedExchange(books, rules=rules, order_limits=(limit,))
    setup = EngineSetup(baskets, config or SolverConfig(), rules=rules)
    return SimulatedWorld(setup, exchange, SimulatedChain())


def _buy(world: SimulatedWorld, amount: str = "1200") -> None:
    world.deposit(ALICE, D(amount))
    world.submit(NewIndexOrderRequest(ALICE, ClientOrderId("b1"), IDX, Side.BUY, D(amount)))


def _placed_at(world: SimulatedWorld) -> list[timedelta]:
    """When each exchange order left, from the world's start."""
    start = world.clock.now()
    times: list[timedelta] = []

    def record(command: Command) -> None:
        if isinstance(command, PlaceExchangeOrder):
            times.append(world.clock.now() - start)

    world.on_command = record
    return times


def test_the_venues_windows_replace_the_default_budget() -> None:
    world = _world()
    assert world.engine.tracker.limiter.limits == [RateLimit("ORDERS_10S", KEPT, 10 * S)]


def test_an_explicit_budget_is_kept_whatever_the_venue_states() -> None:
    config = SolverConfig(venue_order_limits=False)
    with money_context():
        world = _world(config)
        assert world.engine.tracker.limiter.limits == list(config.order_rate_limits)
        _buy(world)
        world.advance(8 * S)
    # The engine sent all 12 at once; the venue refused what its 10 allowed no more of.
    assert len(world.exchange.orders_refused) == 2


def test_a_batch_larger_than_the_window_goes_out_over_two_windows_without_refusals() -> None:
    with money_context():
        world = _world()
        placed = _placed_at(world)
        _buy(world)
        assert world.run_until(lambda: world.engine.orders.open_count() == 0, 60 * S)
    # Ready at 4 s (two 2 s hops): 9 orders go on that tick, the other 3 when the window
    # has room again, 10 s later; one batch, its notice says 3 wait; nothing refused.
    assert placed == [4 * S] * KEPT + [14 * S] * (len(ASSETS) - KEPT)
    created, completed = world.log.batches
    assert (created.kind, created.asset_count) == ("created", len(ASSETS))
    assert created.details == {"orders_waiting": str(len(ASSETS) - KEPT)}
    assert completed.kind == "completed"
    assert world.exchange.orders_refused == [] and world.log.alerts == []


def test_a_sell_batch_uses_the_same_budget() -> None:
    with money_context():
        world = _world()
        _buy(world)
        assert world.run_until(lambda: world.engine.orders.open_count() == 0, 60 * S)
        world.advance(10 * S)  # the buy's window is over
        placed = _placed_at(world)
        units = world.chain.minted[(ALICE, IDX)]
        world.submit(NewIndexOrderRequest(ALICE, ClientOrderId("s1"), IDX, Side.SELL, units))
        redemption = world.engine.redemptions.get(ALICE, ClientOrderId("s1"))
        assert redemption is not None
        assert world.run_until(lambda: redemption.state is RedemptionState.PAID, 60 * S)
    # 9 sell orders at once, 3 after the window: the sell batch's notice says so.
    assert len(placed) == len(ASSETS)
    assert placed[KEPT] - placed[0] == 10 * S and placed[KEPT - 1] == placed[0]
    sells = [b for b in world.log.batches if b.details.get("side") == "sell"]
    assert sells[0].details["orders_waiting"] == str(len(ASSETS) - KEPT)
    assert world.exchange.orders_refused == [] and world.log.alerts == []


def test_a_replay_of_the_journal_gives_the_same_commands_and_budget() -> None:
    with money_context():
        world = _world()
        live: list[Command] = []
        world.on_command = live.append
        _buy(world)
        assert world.run_until(lambda: world.engine.orders.open_count() == 0, 60 * S)
        fresh = Engine(world.engine.setup, world.clock)
        replayed = fresh.replay(world.engine.journal.entries())
    kinds = {type(e.event) for e in world.engine.journal.entries()}
    assert VenueOrderLimits in kinds
    assert [encode(c) for c in replayed][-len(live) :] == [encode(c) for c in live]
    assert fresh.tracker.limiter.limits == world.engine.tracker.limiter.limits


def test_a_statement_that_cannot_be_a_budget_changes_nothing() -> None:
    world = _world()
    before = world.engine.tracker.limiter.limits
    bad = [
        VenueOrderLimits(BINANCE, ()),
        VenueOrderLimits(BINANCE, (OrderLimitWindow("ORDERS_10S", 0, 10 * S, 10),)),
        VenueOrderLimits(BINANCE, (OrderLimitWindow("ORDERS_10S", 11, 10 * S, 10),)),
        VenueOrderLimits(BINANCE, (OrderLimitWindow("ORDERS_10S", 9, timedelta(0), 10),)),
    ]
    for statement in bad:
        out = world.engine.handle(statement)
        assert [type(c) for c in out] == [Alert], statement
        assert world.engine.tracker.limiter.limits == before


def test_one_alert_per_back_off_not_one_per_refused_order() -> None:
    world = _world()
    wait = RateLimitFeedback(BINANCE, retry_after=30 * S, reason="429")
    alerts = [len(world.engine.handle(wait)) for _ in range(5)]
    assert alerts == [1, 0, 0, 0, 0]
    world.advance(31 * S)  # the back-off is over: the next one is news again
    assert len(world.engine.handle(wait)) == 1
    # The venue's count of a window we keep is charged; of one we do not keep, ignored.
    assert world.engine.handle(RateLimitFeedback(BINANCE, "REQUEST_WEIGHT_1M", 5000)) == []
    world.advance(31 * S)
    world.engine.handle(RateLimitFeedback(BINANCE, "ORDERS_10S", 7))
    assert world.engine.tracker.limiter.headroom(world.clock.now()) == {"ORDERS_10S": 2}


def test_a_rebalance_round_uses_the_same_budget() -> None:
    with money_context():
        world = _world(limit=RateLimit("ORDERS_10S", 5, 10 * S))  # 4 kept
        _buy(world)
        assert world.run_until(lambda: world.engine.orders.open_count() == 0, 60 * S)
        world.advance(10 * S)  # the buy's windows are over
        placed = _placed_at(world)
        # Half the value of the last six assets moves to the first six: a round sells six
        # legs, the next buys six.
        weights = tuple(
            RebalanceWeight(a, D("1.5") if n < len(ASSETS) // 2 else D("0.5"))
            for n, a in enumerate(ASSETS)
        )
        world.submit(RebalanceIndex(IDX, "p1", weights))
        world.advance(30 * S)
    rounds = [b for b in world.log.batches if b.details.get("side") == "rebalance"]
    assert (rounds[0].kind, rounds[0].asset_count) == ("created", 6)
    assert rounds[0].details["orders_waiting"] == "2"
    assert placed[4] - placed[0] == 10 * S and placed[3] == placed[0]
    assert world.exchange.orders_refused == [] and world.log.alerts == []


def test_no_batch_forms_while_the_budget_admits_no_order() -> None:
    with money_context():
        world = _world()
        placed = _placed_at(world)
        world.submit(RateLimitFeedback(BINANCE, retry_after=30 * S, reason="429"))
        _buy(world)  # ready at 4 s
        world.advance(29 * S)
        assert world.log.batches == [] and placed == []  # nothing engaged meanwhile
        assert world.run_until(lambda: world.engine.orders.open_count() == 0, 60 * S)
    # The batch forms when the back-off ends, and sends what the window allows.
    assert placed[0] == 30 * S and len(placed) == len(ASSETS)
    assert world.log.batches[0].details == {"orders_waiting": str(len(ASSETS) - KEPT)}
