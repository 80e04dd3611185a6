"""The supervised runtime (app/runtime.py) against faulty simulated peers behind the ports.

Every peer is the in-process simulator with a fault switched on; every wait is bounded.
What must hold: a failing or hanging port call becomes an input the core understands
(reconcile, a hop asked about before any resend, retried mint), the engine task never ends
for good, a full queue refuses client requests with a reason, and a long engine step does not
stop the event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest

from indexmaker.app.health import HealthLimits
from indexmaker.app.runtime import BUSY, Runtime, RuntimeLimits, SystemClock
from indexmaker.core.errors import NetworkError, RejectedError
from indexmaker.core.events import (
    Alert,
    BatchEvent,
    ClientResponse,
    Command,
    MintIndex,
    MintInvoice,
    NewIndexOrderRequest,
    NewIndexQuoteResponse,
    NewQuoteRequest,
    PlaceExchangeOrder,
    QueryExchangeOrder,
    QueryHop,
    RequestStatus,
    RouteCollateral,
    Tick,
)
from indexmaker.core.ids import (
    ClientKey,
    ClientOrderId,
    ClientQuoteId,
    InstrumentId,
    Symbol,
    client_key,
    instrument,
)
from indexmaker.core.ports import StorePort
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.engine import Engine, EngineSetup
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.index import Basket, BasketAsset
from indexmaker.model.side import Side
from indexmaker.sim.adapters import ChainFaults, SimBridge, SimChainPort
from indexmaker.sim.chain import BridgeTerms, SimulatedChain
from indexmaker.sim.exchange import SimulatedExchange
from indexmaker.sim.venue import SimVenue, VenueFaults

D = Decimal
MS = timedelta(milliseconds=1)
ALICE = client_key(42161, "0x" + "a" * 40)
AAA, BBB, IDX = instrument("AAAUSDC"), instrument("BBBUSDC"), Symbol("IDX")
BASKETS = {"IDX": Basket(IDX, (BasketAsset(AAA, D("2")), BasketAsset(BBB, D("1"))))}
# Known rules with no filter set (0 disables each): a pair without rules is not traded.
RULES = {i: InstrumentRules(i, i.pair.removesuffix("USDC"), "USDC") for i in (AAA, BBB)}


def books() -> dict[
    InstrumentId, tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]
]:
    return {
        AAA: ([(D("9.9"), D("1000"))], [(D("10"), D("1000"))]),
        BBB: ([(D("19.9"), D("1000"))], [(D("20"), D("1000"))]),
    }


@dataclass
class Rig:
    runtime: Runtime
    venue: SimVenue
    chain: SimChainPort
    sent: list[tuple[ClientKey, ClientResponse]] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)

    def alerts(self, code: str) -> list[Alert]:
        return [c for c in self.commands if isinstance(c, Alert) and c.code == code]

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [c for c in self.commands if isinstance(c, kind)]

    def invoices(self) -> list[MintInvoice]:
        return [m for _, m in self.sent if isinstance(m, MintInvoice)]

    async def until(self, done: Callable[[], bool], timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.005)

    async def order(self, amount: str = "1000", coid: str = "o-1") -> None:
        await self.chain.deposit(ALICE, D(amount))
        self.runtime.submit(
            NewIndexOrderRequest(ALICE, ClientOrderId(coid), IDX, Side.BUY, D(amount))
        )


def build(
    venue_faults: VenueFaults | None = None,
    chain_faults: ChainFaults | None = None,
    limits: RuntimeLimits | None = None,
    chain: SimChainPort | None = None,
    config: SolverConfig | None = None,
    across_delay: timedelta = 5 * MS,
    store: StorePort | None = None,
) -> Rig:
    """`store`: also the engine's journal (durable before effect), as `serve` wires it."""
    config = config or SolverConfig(tick=10 * MS, mint_idle=50 * MS)
    setup = EngineSetup(baskets=BASKETS, config=config, rules=RULES)
    engine = Engine(setup, SystemClock(), store, compact_market=store is not None)
    venue = SimVenue(SimulatedExchange(books()), 2 * MS, faults=venue_faults)
    sim_chain = SimulatedChain(
        bridges={
            "across": BridgeTerms(D("0.5"), D(0), across_delay),
            "wallet": BridgeTerms(delay=MS),
        },
        mint_delay=2 * MS,
    )
    chain = chain or SimChainPort(sim_chain, chain_faults)
    bridges = {name: SimBridge(name, chain) for name in ("across", "wallet")}
    limits = limits or RuntimeLimits(
        command_timeout=50 * MS,
        query_backoff=5 * MS,
        unknown_retry=20 * MS,
        watchdog_period=10 * MS,
    )
    runtime = Runtime(engine, venue, chain, bridges, limits, store=store)
    rig = Rig(runtime, venue, chain)
    runtime.deliver = lambda client, message: rig.sent.append((client, message))
    runtime.observers.append(rig.commands.append)
    return rig


@pytest.fixture
async def running() -> AsyncIterator[Callable[..., Rig]]:
    started: list[Rig] = []

    def make(**kwargs: object) -> Rig:
        rig = build(**kwargs)  # type: ignore[arg-type]
        started.append(rig)
        return rig

    yield make
    for rig in started:
        await rig.runtime.stop()


async def test_an_order_is_minted_through_the_ports(running: Callable[..., Rig]) -> None:
    rig = running()
    await rig.runtime.start()
    await rig.order()
    await rig.until(lambda: bool(rig.invoices()))
    assert rig.invoices()[0].client_order_id == "o-1"
    assert rig.runtime.health().engine_alive


async def test_a_placement_that_raises_is_reconciled_and_closed_as_never_placed(
    running: Callable[..., Rig],
) -> None:
    rig = running(venue_faults=VenueFaults(place_error=NetworkError("connection reset")))
    await rig.runtime.start()
    await rig.order()
    await rig.until(lambda: any(b.kind == "completed" for b in rig.of(BatchEvent)))
    # Unknown, then queried by client order id; the venue does not know it: rejected.
    queries = rig.of(QueryExchangeOrder)
    rejects = rig.alerts("exchange_reject")
    assert len(queries) == 2 and len(rejects) == 2  # one per asset of the basket
    assert all("order does not exist" in a.message for a in rejects)
    assert rig.runtime.health().engine_alive


async def test_a_placement_that_hangs_is_recovered_from_the_venue_by_reconciliation(
    running: Callable[..., Rig],
) -> None:
    # The venue executes the orders, but our call never returns and no report is pushed:
    # only the status query can tell the engine what happened.
    rig = running(venue_faults=VenueFaults(place_hangs=True, lose_reports=True))
    await rig.runtime.start()
    await rig.order()
    await rig.until(lambda: bool(rig.invoices()))
    assert rig.invoices()[0].fill_rate > D("0.99")
    placed = {o.order_id for o in rig.of(PlaceExchangeOrder)}
    assert {q.order_id for q in rig.of(QueryExchangeOrder)} == placed  # each asked once
    assert len(rig.of(QueryExchangeOrder)) == len(placed)
    assert not rig.alerts("exchange_reject") and not rig.alerts("fills_missing")


async def test_a_hop_refused_definitely_is_hop_failed_and_retried_under_new_ids(
    running: Callable[..., Rig],
) -> None:
    rig = running(chain_faults=ChainFaults(transfer_error=RejectedError("bridge paused")))
    await rig.runtime.start()
    await rig.order()
    await rig.until(lambda: bool(rig.alerts("route_failed")))
    routes = rig.of(RouteCollateral)
    assert len(routes) == 3 and len({r.transfer_id for r in routes}) == 3
    assert not rig.of(QueryHop)  # nothing can have moved: no need to ask
    assert "hop across refused: bridge paused" in rig.alerts("route_failed")[0].message
    assert rig.chain.hops == {}
    assert rig.runtime.health().engine_alive


@pytest.mark.parametrize(
    "faults",
    [ChainFaults(transfer_error=NetworkError("rpc down")), ChainFaults(hangs=True)],
    ids=["raises", "hangs"],
)
async def test_a_hop_that_did_not_happen_is_asked_about_then_resent_under_its_id(
    running: Callable[..., Rig], faults: ChainFaults
) -> None:
    rig = running(chain_faults=faults)
    await rig.runtime.start()
    await rig.order()
    await rig.until(lambda: bool(rig.alerts("route_failed")))
    routes, queries = rig.of(RouteCollateral), rig.of(QueryHop)
    # One transfer id throughout; every resend came after the chain said it has no trace.
    assert len(routes) == 3 and {r.transfer_id for r in routes} == {routes[0].transfer_id}
    assert len(queries) == 3 and all(q.transfer_id == routes[0].transfer_id for q in queries)
    order = [type(c) for c in rig.commands if isinstance(c, RouteCollateral | QueryHop)]
    assert order == [RouteCollateral, QueryHop] * 3
    assert "no such transfer" in rig.alerts("route_failed")[0].message
    assert rig.chain.hops == {}  # nothing ever moved


async def test_a_hop_that_timed_out_but_happened_is_not_repeated(
    running: Callable[..., Rig],
) -> None:
    # The chain moves the amount but the call never returns and its completion is lost:
    # only asking the chain can tell, and a resend under a new id would move it twice.
    faults = ChainFaults(transfer_hangs_after_move=True, lose_hop_reports=True)
    rig = running(chain_faults=faults)
    await rig.runtime.start()
    await rig.order()
    await rig.until(lambda: bool(rig.invoices()))
    routes = rig.of(RouteCollateral)
    ids = [r.transfer_id for r in routes]
    assert routes and len(set(ids)) == len(ids)  # each hop sent once, never again
    assert sorted(rig.chain.hops) == sorted(ids)  # and each moved exactly once
    assert {q.transfer_id for q in rig.of(QueryHop)} == set(ids)
    assert not rig.alerts("route_failed") and not rig.alerts("unknown_transfer")
    # The ledger charged each hop's fee once, as the chain took it.
    fees = sum((done.fee for done, _ in rig.chain.hops.values()), D(0))
    assert fees > 0 and rig.runtime.engine.collateral.ledger(ALICE).fees == fees
    assert rig.invoices()[0].client_order_id == "o-1"


async def test_a_pending_hop_whose_completion_is_lost_is_asked_about_again_until_done(
    running: Callable[..., Rig],
) -> None:
    # The across hop takes 300 ms; its call times out at 50 ms and the chain answers PENDING;
    # the completion push is lost. Only asking again (every 40 ms) learns that it arrived.
    config = SolverConfig(
        tick=10 * MS, mint_idle=50 * MS, hop_query_interval=40 * MS, hop_pending_alert=5_000 * MS
    )
    faults = ChainFaults(transfer_hangs_after_move=True, lose_hop_reports=True)
    rig = running(chain_faults=faults, config=config, across_delay=300 * MS)
    await rig.runtime.start()
    await rig.order()
    await rig.until(lambda: bool(rig.invoices()))
    first = rig.of(RouteCollateral)[0]
    asked = [q for q in rig.of(QueryHop) if q.transfer_id == first.transfer_id]
    assert len(asked) >= 3  # the first question after the timeout, then re-asks
    assert [r.transfer_id for r in rig.of(RouteCollateral)].count(first.transfer_id) == 1
    assert len(rig.chain.hops) == len(rig.of(RouteCollateral))  # each hop moved once
    assert not rig.alerts("hop_pending") and not rig.alerts("route_failed")


async def test_a_hop_pending_too_long_raises_one_alert(running: Callable[..., Rig]) -> None:
    config = SolverConfig(tick=10 * MS, hop_query_interval=20 * MS, hop_pending_alert=100 * MS)
    faults = ChainFaults(transfer_hangs_after_move=True, lose_hop_reports=True)
    rig = running(chain_faults=faults, config=config, across_delay=timedelta(hours=1))
    await rig.runtime.start()
    await rig.order()
    await rig.until(lambda: bool(rig.alerts("hop_pending")))
    asked = len(rig.of(QueryHop))
    await asyncio.sleep(0.2)  # long enough for several more intervals: no more asking
    assert len(rig.of(QueryHop)) == asked and len(rig.alerts("hop_pending")) == 1
    assert 2 <= asked <= 6  # the first question, then re-asks until the alert
    assert rig.runtime.health().engine_alive


class FlakyMint(SimChainPort):
    """Fails the first mint call, as an RPC that drops one request."""

    def __init__(self, chain: SimulatedChain) -> None:
        super().__init__(chain)
        self.mint_calls = 0

    async def mint(self, command: MintIndex) -> None:
        self.mint_calls += 1
        if self.mint_calls == 1:
            raise NetworkError("nonce too low")
        await super().mint(command)


async def test_a_failed_mint_is_retried_and_mints_once(running: Callable[..., Rig]) -> None:
    sim_chain = SimulatedChain(
        bridges={"across": BridgeTerms(D("0.5"), D(0), 5 * MS), "wallet": BridgeTerms(delay=MS)},
        mint_delay=2 * MS,
    )
    flaky = FlakyMint(sim_chain)
    rig = running(chain=flaky)
    await rig.runtime.start()
    await rig.order()
    await rig.until(lambda: bool(rig.invoices()))
    assert flaky.mint_calls == 2  # MintFailed, then the core sent the same MintIndex again
    mints = rig.of(MintIndex)
    assert len(mints) == 2 and mints[0] == mints[1]
    assert len(sim_chain.payments) == 1


async def test_an_engine_error_is_contained_and_the_next_input_handled(
    running: Callable[..., Rig],
) -> None:
    rig = running()
    real = rig.runtime.engine.handle
    calls = 0

    def explode_once(event):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("bug")
        return real(event)

    rig.runtime.engine.handle = explode_once  # type: ignore[method-assign]
    await rig.runtime.start()
    rig.runtime.submit(NewQuoteRequest(ALICE, ClientQuoteId("q-1"), IDX, Side.BUY, D(100)))
    await rig.until(lambda: bool(rig.sent))
    assert rig.runtime.health().engine_alive and calls > 1


async def test_a_delivery_that_raises_does_not_stop_the_engine(
    running: Callable[..., Rig],
) -> None:
    rig = running()
    delivered: list[ClientResponse] = []

    def drop_then_deliver(client: ClientKey, message: ClientResponse) -> None:
        if not delivered:
            delivered.append(message)
            raise ConnectionResetError("Cannot write to closing transport")
        delivered.append(message)

    rig.runtime.deliver = drop_then_deliver
    await rig.runtime.start()
    for n in (1, 2):
        rig.runtime.submit(NewQuoteRequest(ALICE, ClientQuoteId(f"q-{n}"), IDX, Side.BUY, D(9)))
    await rig.until(lambda: len(delivered) >= 3)  # q-1's second message and q-2 still sent
    assert rig.runtime.health().engine_alive


async def test_the_watchdog_restarts_an_engine_task_that_ended(
    running: Callable[..., Rig],
) -> None:
    rig = running()
    await rig.runtime.start()
    task = rig.runtime._engine_task
    assert task is not None
    task.cancel()
    await rig.until(lambda: rig.runtime.engine_restarts == 1)
    rig.runtime.submit(NewQuoteRequest(ALICE, ClientQuoteId("q-1"), IDX, Side.BUY, D(100)))
    await rig.until(lambda: bool(rig.sent))
    assert rig.runtime.health().engine_alive


async def test_a_full_queue_refuses_client_requests_with_the_reason() -> None:
    rig = build(limits=RuntimeLimits(queue_size=2))  # not started: nothing drains the queue
    for n in range(3):
        rig.runtime.submit(NewQuoteRequest(ALICE, ClientQuoteId(f"q-{n}"), IDX, Side.BUY, D(1)))
    assert rig.sent == [
        (ALICE, NewIndexQuoteResponse(ClientQuoteId("q-2"), RequestStatus.REJECTED, BUSY))
    ]
    report = rig.runtime.health()
    assert report.queue_depth == 2 and not report.healthy
    assert any("input queue 2/2" in p for p in report.problems)


async def test_an_adapter_waits_while_the_queue_is_full() -> None:
    rig = build(limits=RuntimeLimits(queue_size=1))
    await rig.runtime.put(Tick(SystemClock().now()))
    blocked = asyncio.create_task(rig.runtime.put(Tick(SystemClock().now())))
    await asyncio.sleep(0.01)
    assert not blocked.done()  # back-pressure: the adapter waits, nothing is dropped
    blocked.cancel()
    await asyncio.gather(blocked, return_exceptions=True)


async def test_a_long_engine_step_leaves_the_event_loop_running(
    running: Callable[..., Rig],
) -> None:
    rig = running()
    release = threading.Event()
    real = rig.runtime.engine.handle

    def slow_tick(event):  # type: ignore[no-untyped-def]
        if isinstance(event, Tick):
            release.wait(timeout=5)  # a tick of 10,000 orders, as long as the test wants
        return real(event)

    rig.runtime.engine.handle = slow_tick  # type: ignore[method-assign]
    await rig.runtime.start()
    await rig.until(lambda: rig.runtime._step_started is not None)
    beats = 0
    for _ in range(20):  # the loop keeps turning while the tick is held
        await asyncio.sleep(0.001)
        beats += 1
    assert beats == 20 and rig.runtime.health().engine_step_seconds > 0
    assert rig.runtime.health().engine_alive
    release.set()
    await rig.until(lambda: rig.runtime._step_started is None)


async def test_quiet_waits_out_a_tick_in_the_worker_thread(
    running: Callable[..., Rig],
) -> None:
    """The query API reads the engine right after `quiet()`: never while a tick runs."""
    rig = running()
    release = threading.Event()
    in_tick = threading.Event()
    real = rig.runtime.engine.handle

    def slow_tick(event):  # type: ignore[no-untyped-def]
        if isinstance(event, Tick):
            in_tick.set()
            release.wait(timeout=5)
            in_tick.clear()
        return real(event)

    rig.runtime.engine.handle = slow_tick  # type: ignore[method-assign]
    await rig.runtime.start()
    await rig.until(in_tick.is_set)

    async def read() -> bool:
        await rig.runtime.quiet()
        return rig.runtime._in_worker is None  # what a synchronous reader would see now

    reader = asyncio.create_task(read())
    for _ in range(20):  # bounded: the reader stays blocked while the tick is held
        await asyncio.sleep(0.002)
    assert not reader.done()
    release.set()
    assert await asyncio.wait_for(reader, 5)


async def test_a_stale_book_makes_health_fail_naming_it(running: Callable[..., Rig]) -> None:
    limits = RuntimeLimits(health=HealthLimits(max_book_age=20 * MS))
    rig = running(limits=limits)
    await rig.runtime.start()
    await rig.until(lambda: rig.runtime.health().book_age_seconds is not None)
    await rig.until(lambda: not rig.runtime.health().healthy)
    problems = rig.runtime.health().problems
    assert any(p.startswith("book ") and "s old" in p for p in problems), problems


async def test_a_query_the_venue_cannot_answer_leaves_the_order_unknown_and_asks_again(
    running: Callable[..., Rig],
) -> None:
    faults = VenueFaults(place_hangs=True, lose_reports=True, status_error=NetworkError("502"))
    rig = running(venue_faults=faults)
    await rig.runtime.start()
    await rig.order()
    await rig.until(lambda: len(rig.of(QueryExchangeOrder)) >= 4)  # two rounds per order
    assert not rig.invoices() and not rig.alerts("exchange_reject")  # nothing guessed
    faults.status_error = None  # the venue answers again: the next round settles them
    await rig.until(lambda: bool(rig.invoices()))
