"""Conservation laws over random order/fill sequences (hypothesis).

Random deposits, orders, cancels, venue behaviour (fill ratios, splits, rejects), book refills
and clock steps run on the simulated world; afterwards, and after every step:
- per client, collateral deposited = spent + unspent + routing fees (to 1e-24 relative: the
  34-digit context rounds pro-rata fee shares in the last digit);
- for every lot, the assignments sum exactly to `assigned` and never exceed the lot's quantity;
- no balance is below zero (lots, reservations, order updates);
- every index quantity minted is backed by assigned lots in basket proportion (1e-18 relative).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from indexmaker.core.events import CancelIndexOrderRequest, NewIndexOrderRequest
from indexmaker.core.ids import ClientOrderId, InstrumentId, Symbol, instrument
from indexmaker.core.money import exact_add, money_context
from indexmaker.model.lot import Lot
from indexmaker.model.order import OrderUpdate
from indexmaker.model.side import Side
from indexmaker.sim.exchange import Behaviour
from indexmaker.sim.scenario import Scenario, ScenarioRun, build, duration

D = Decimal
ZERO = D(0)
TOLERANCE = D("1e-24")  # far below USDC's 1e-6 and the index token's 1e-18
CLIENTS = ("alice", "bob", "carol")
INDEXES = {"IDX1": {"AAAUSDC": "2", "BBBUSDC": "1"}, "IDX2": {"AAAUSDC": "0.5", "CCCUSDC": "3"}}
ASSETS = ("AAAUSDC", "BBBUSDC", "CCCUSDC")
MID = {"AAAUSDC": D("10"), "BBBUSDC": D("20"), "CCCUSDC": D("3.7")}


def _levels(mid: Decimal, depth: Decimal) -> tuple[list[list[str]], list[list[str]]]:
    bids = [[str(mid * (1 - D("0.001") * i)), str(depth)] for i in range(1, 4)]
    asks = [[str(mid * (1 + D("0.001") * i)), str(depth)] for i in range(0, 4)]
    return bids, asks


amounts = st.sampled_from(["7", "50", "333.33", "1000", "2500.5", "12000"]).map(D)
spans = st.sampled_from(["100ms", "300ms", "2s", "5s", "11s"])
actions = st.one_of(
    st.tuples(st.just("deposit"), st.sampled_from(CLIENTS), amounts),
    st.tuples(
        st.just("order"), st.sampled_from(CLIENTS), st.sampled_from(sorted(INDEXES)), amounts
    ),
    st.tuples(
        st.just("cancel"), st.sampled_from(CLIENTS), st.sampled_from(sorted(INDEXES)), amounts
    ),
    st.tuples(
        st.just("behaviour"),
        st.sampled_from(ASSETS),
        st.sampled_from(["0", "0.3", "0.5", "0.996", "1"]).map(D),
        st.booleans(),
        st.integers(1, 3),
    ),
    st.tuples(st.just("refill"), st.sampled_from(ASSETS), st.sampled_from(["5", "40", "400"])),
    st.tuples(st.just("advance"), spans),
    st.tuples(st.just("advance"), spans),
)


def _world(fixed_fee: str, rate: str, threshold: str, fee_factor: str) -> ScenarioRun:
    books: dict[str, Any] = {}
    for asset in ASSETS:
        bids, asks = _levels(MID[asset], D("40"))
        books[asset] = {"bids": bids, "asks": asks}
    data = {
        "config": {
            "price_threshold": threshold,
            "fee_factor": fee_factor,
            "max_volley": "3000",
            "min_total_volley_available": "100",
            # Orders of 7 USDC (below the default 10 minimum) keep padding in the mix.
            "min_order": "1",
        },
        "indexes": INDEXES,
        "books": books,
        "bridges": {"across": {"fixed_fee": fixed_fee, "rate": rate}},
    }
    state = build(Scenario("conservation", Path("conservation"), data))
    lots: list[Lot] = []
    inventory = state.world.engine.inventory
    open_lot = inventory.open_lot

    def recording_open_lot(*args: Any, **kwargs: Any) -> Lot:
        lot = open_lot(*args, **kwargs)
        lots.append(lot)
        return lot

    inventory.open_lot = recording_open_lot  # type: ignore[method-assign]
    state.world.all_lots = lots  # type: ignore[attr-defined]
    return state


def _check_laws(state: ScenarioRun, *, refusals: bool = True) -> None:
    engine = state.world.engine
    collateral = engine.collateral
    for name in CLIENTS:
        client = state.client(name)
        ledger = collateral.ledger(client)
        unspent = collateral.unspent(client)
        # Exact up to the 34-digit context: pro-rata fee shares are rounded quotients.
        gap = ledger.deposited - (ledger.spent + unspent + ledger.fees)
        assert abs(gap) <= TOLERANCE * max(ledger.deposited, D(1)), (name, gap)
        assert unspent >= 0 and ledger.spent >= 0 and ledger.fees >= 0
        for lot in ledger.lots:
            assert lot.available >= 0 and lot.fee >= 0 and lot.fee_charged <= lot.fee
        for reservation in ledger.reservations.values():
            assert 0 <= reservation.spent <= reservation.net
    lots: list[Lot] = state.world.all_lots  # type: ignore[attr-defined]
    for lot in lots:
        # Lot figures are kept exactly (a rounded sum could exceed the lot), so sum exactly.
        assigned = exact_add(*(a.quantity for a in lot.assignments))
        assert assigned == lot.assigned
        assert lot.assigned + lot.disposed <= lot.quantity, lot
        assert lot.free >= 0
        assert lot.fee_assigned <= lot.fee * (1 + TOLERANCE), (lot.lot_id, lot.fee_assigned)
        fees = sum((a.fee for a in lot.assignments), ZERO)
        assert fees <= lot.fee * (1 + TOLERANCE), (lot.lot_id, fees, lot.fee)
    for update in state.updates.values():
        assert update.spent >= 0 and update.engaged >= 0
        # `remaining` is net - spent - engaged: three 34-digit figures, so allow their noise.
        floor = -TOLERANCE * max(update.amount, D(1))
        assert update.remaining >= floor, (update.client_order_id, update.remaining)
        assert update.spent <= update.net_amount - floor, (update.client_order_id, update.spent)
    # Every mint is backed by lots assigned to its update, in basket proportion.
    by_payment = {u.payment_id: u for u in state.updates.values() if u.payment_id is not None}
    minted: dict[tuple[Any, Symbol], Decimal] = {}
    for mint in state.world.log.mints:
        update = by_payment[mint.payment_id]
        assert mint.quantity <= update.filled_quantity
        _assert_backed(update, mint.quantity)
        key = (mint.client, mint.symbol)
        minted[key] = minted.get(key, ZERO) + mint.quantity
    assert minted == state.world.chain.minted
    # A ledger refusing a change means the engine tried something inconsistent.
    refused = [a for a in state.world.log.alerts if a.code == "InvariantViolation"]
    assert not (refusals and refused), refused[0]
    # An order status outside the transition table, or a crash, is an engine bug whatever the
    # venue did.
    bugs = [a for a in state.world.log.alerts if a.code in ("IllegalTransition", "internal_error")]
    assert not bugs, bugs[0]


def _assert_backed(update: OrderUpdate, quantity: Decimal) -> None:
    per_asset: dict[InstrumentId, Decimal] = {}
    for assignment in update.lots:
        per_asset[assignment.asset] = per_asset.get(assignment.asset, ZERO) + assignment.quantity
    for asset, basket_quantity in INDEXES[update.symbol].items():
        backed = per_asset.get(instrument(asset), ZERO) / D(basket_quantity)
        # Backing equals the filled quantity up to the context's rounding noise.
        assert abs(backed - update.filled_quantity) <= D("1e-18") * update.filled_quantity
        assert backed >= quantity * (1 - D("1e-18")), (asset, backed, quantity)


@settings(
    max_examples=200,
    deadline=None,
    # CI must not be flaky: the same 200 examples every run. Search wider locally with
    # `--hypothesis-seed=N` and a raised max_examples; pin what it finds with @example.
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    funding=st.lists(st.sampled_from(["0", "600", "3000", "15000"]).map(D), min_size=3, max_size=3),
    steps=st.lists(actions, min_size=1, max_size=30),
    fixed_fee=st.sampled_from(["0", "0.5"]),
    rate=st.sampled_from(["0", "0.001"]),
    # fee_factor above the venue fee (0.1%), at SPEC defaults, below it, and the exact fit
    # (fee_factor 1.001 = venue fee, threshold 0: orders sized to spend exactly their net).
    pricing=st.sampled_from([("0", "1.0011"), ("0.01", "1.002"), ("0.003", "1.0"), ("0", "1.001")]),
)
# Found by hypothesis: `free` (quantity - assigned, a 34-digit difference) rounded up by one unit
# of the 34th digit, and taking it assigned a third-of-a-fill lot 1e-33 beyond its quantity.
@example(
    funding=[D("0"), D("0"), D("600")],
    steps=[
        ("order", "carol", "IDX2", D("50")),
        ("advance", "5s"),
        ("order", "carol", "IDX2", D("50")),
        ("advance", "2s"),
        ("order", "carol", "IDX1", D("333.33")),
        ("behaviour", "AAAUSDC", D("0"), False, 1),
        ("behaviour", "BBBUSDC", D("0.5"), False, 3),
        ("advance", "100ms"),
    ],
    fixed_fee="0",
    rate="0.001",
    pricing=("0", "1.0011"),
)
def test_conservation_over_random_sequences(
    funding: list[Decimal],
    steps: list[tuple[Any, ...]],
    fixed_fee: str,
    rate: str,
    pricing: tuple[str, str],
) -> None:
    with money_context():
        state = _world(fixed_fee, rate, *pricing)
        world = state.world
        for name, amount in zip(CLIENTS, funding, strict=True):
            if amount > 0:  # most examples start funded, so orders get somewhere
                world.deposit(state.client(name), amount)
        counter = 0
        last_id: dict[tuple[str, str], ClientOrderId] = {}
        for step in steps:
            match step:
                case ("deposit", name, amount):
                    world.deposit(state.client(name), amount)
                case ("order", name, index, amount):
                    counter += 1
                    order_id = ClientOrderId(f"{name}-{counter}")
                    client = state.client(name)
                    world.submit(
                        NewIndexOrderRequest(client, order_id, Symbol(index), Side.BUY, amount)
                    )
                    update = world.engine.orders.update(client, order_id)
                    if update is not None:
                        state.updates[order_id] = update
                        last_id[(name, index)] = order_id
                case ("cancel", name, index, amount):
                    order_id = last_id.get((name, index), ClientOrderId("none"))
                    world.submit(
                        CancelIndexOrderRequest(state.client(name), order_id, Symbol(index), amount)
                    )
                case ("behaviour", asset, ratio, reject, splits):
                    world.exchange.behaviour[instrument(asset)] = Behaviour(
                        fill_ratio=ratio, reject="rejected" if reject else None, splits=splits
                    )
                case ("refill", asset, depth):
                    bids, asks = _levels(MID[asset], D(depth))
                    book = world.exchange.books[instrument(asset)]
                    book.apply_snapshot(
                        [(D(p), D(q)) for p, q in bids], [(D(p), D(q)) for p, q in asks]
                    )
                    for snapshot in world.exchange.snapshots():
                        if snapshot.instrument == instrument(asset):
                            world.submit(snapshot)
                case ("advance", span):
                    world.advance(duration(span))
            _check_laws(state, refusals=False)
        # Let everything in flight land and every mintable order mint.
        for asset in ASSETS:
            world.exchange.behaviour[instrument(asset)] = Behaviour()
        world.advance(duration("30s"))
        _check_laws(state, refusals=False)


def test_exact_fit_never_overspends() -> None:
    """Regression: the realised cost of an exact fit rounded 1e-32 above net."""
    with money_context():
        state = _world("0", "0", "0", "1.001")
        world = state.world
        alice = state.client("alice")
        world.deposit(alice, D("600"))
        world.submit(
            NewIndexOrderRequest(alice, ClientOrderId("A1"), Symbol("IDX1"), Side.BUY, D("50"))
        )
        update = world.engine.orders.update(alice, ClientOrderId("A1"))
        assert update is not None
        state.updates[ClientOrderId("A1")] = update
        world.advance(duration("30s"))
        _check_laws(state)


def test_cancel_after_a_fill_keeps_ledgers_in_step() -> None:
    """Regression: update and reservation summed `spent` differently; validate first."""
    with money_context():
        state = _world("0", "0.001", "0.01", "1.002")  # SPEC defaults
        world = state.world
        alice = state.client("alice")
        world.deposit(alice, D("600"))
        for order_id, wait in (("A1", "4s"), ("A2", "300ms")):
            world.submit(
                NewIndexOrderRequest(
                    alice, ClientOrderId(order_id), Symbol("IDX2"), Side.BUY, D("7")
                )
            )
            update = world.engine.orders.update(alice, ClientOrderId(order_id))
            assert update is not None
            state.updates[ClientOrderId(order_id)] = update
            world.advance(duration(wait))
        world.submit(CancelIndexOrderRequest(alice, ClientOrderId("A2"), Symbol("IDX2"), D("7")))
        _check_laws(state)
