"""engine/strategy.py: SPEC §4 steps 1–9, with every expectation worked out by hand.

Basket IDX = 2 AAA + 1 BBB. Asks AAA 10, BBB 20; threshold 0.01 → limits AAA 10.10 and
BBB 20.20, so P = 2 × 10.10 + 20.20 = 40.40. An update with 1012.02 remaining gives
usable = 1012.02 / 1.002 = 1010 and q = 1010 / 40.40 = 25 (all exact).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from indexmaker.core.events import BookSnapshot
from indexmaker.core.holds import HoldCode, HoldReason
from indexmaker.core.ids import ClientOrderId, Symbol, client_key, instrument
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.prices import MarketData
from indexmaker.engine.strategy import PlannedAssetOrder, Strategy
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.index import Basket, BasketAsset
from indexmaker.model.order import OrderStatus, OrderUpdate
from indexmaker.model.side import Side

D = Decimal
NOW = datetime(2025, 10, 1, tzinfo=UTC)
AAA, BBB, CCC = instrument("AAAUSDC"), instrument("BBBUSDC"), instrument("CCCUSDC")
IDX = Basket(Symbol("IDX"), (BasketAsset(AAA, D(2)), BasketAsset(BBB, D(1))))
ONLY_A = Basket(Symbol("ONLYA"), (BasketAsset(AAA, D(1)),))

Levels = list[tuple[str, str]]


def market(books: dict[Symbol, tuple[Levels, Levels]]) -> MarketData:
    m = MarketData()
    for symbol, (bids, asks) in books.items():
        m.apply(
            BookSnapshot(
                symbol,
                tuple((D(p), D(q)) for p, q in bids),
                tuple((D(p), D(q)) for p, q in asks),
            )
        )
    return m


def default_books(aaa_asks: Levels | None = None, bbb_asks: Levels | None = None) -> MarketData:
    return market(
        {
            AAA: ([("9.9", "100")], aaa_asks or [("10", "100"), ("10.05", "100")]),
            BBB: ([("19.9", "100")], bbb_asks or [("20", "100")]),
        }
    )


_arrivals = iter(range(1, 10_000))


IDX_SYMBOL = Symbol("IDX")


def ready(amount: str, symbol: Symbol = IDX_SYMBOL, fee: str = "0") -> OrderUpdate:
    arrival = next(_arrivals)
    return OrderUpdate(
        client=client_key(1, f"0x{arrival:040x}"),
        client_order_id=ClientOrderId(f"O{arrival}"),
        symbol=symbol,
        side=Side.BUY,
        amount=D(amount),
        received_at=NOW,
        arrival=arrival,
        _status=OrderStatus.READY,
        management_fee=D(fee),
    )


def strategy(**overrides: object) -> Strategy:
    return Strategy(SolverConfig(**overrides))  # type: ignore[arg-type]


BIG_CAP = D("50000")
# Known rules with every filter disabled (SPEC §6: a symbol without known rules is not traded).
RULES = {s: InstrumentRules(s, s.pair.removesuffix("USDC"), "USDC") for s in (AAA, BBB, CCC)}


# ---------------------------------------------------------------- steps 2, 4, 5


def test_limit_prices_buy_and_sell() -> None:
    s = strategy()
    m = default_books()
    # Buys: best ask × 1.01; sells: best bid × 0.99.
    t = s.config.price_threshold
    assert [m.limit_price(a, Side.BUY, t) for a in (AAA, BBB)] == [D("10.10"), D("20.20")]
    assert [m.limit_price(a, Side.SELL, t) for a in (AAA, BBB)] == [D("9.801"), D("19.701")]
    assert m.limit_price(CCC, Side.BUY, t) is None


def test_limit_prices_on_the_tick_round_away_from_the_book() -> None:
    s = strategy()
    m = default_books()
    t, tick = s.config.price_threshold, D("0.25")
    # Buy: 10 × 1.01 = 10.10 → up to 10.25; sell: 9.9 × 0.99 = 9.801 → down to 9.75.
    assert m.limit_price(AAA, Side.BUY, t, tick) == D("10.25")
    assert m.limit_price(AAA, Side.SELL, t, tick) == D("9.75")
    # The plan prices the index on the tick too: P = 2 × 10.25 + 20.20.
    rules = {**RULES, AAA: InstrumentRules(AAA, "AAA", "USDC", tick_size=tick)}
    plan = s.plan([(ready("1012.02"), IDX)], m, {}, rules, BIG_CAP)
    assert plan.entries[0].index_price == D("40.70")


def test_usable_quantity_uses_fee_factor_and_max_order_volley() -> None:
    s = strategy()
    assert s.usable_quantity(D("1012.02"), D("40.40")) == D(25)
    # 20040 / 1.002 = 20000 > max_order_volley 10000 → 10000 / 40 = 250.
    assert s.usable_quantity(D("20040"), D("40")) == D(250)
    assert s.usable_quantity(D("0"), D("40")) == 0
    assert s.usable_quantity(D("-5"), D("40")) == 0


def test_usable_quantity_of_a_sell_is_index_units_capped_by_max_order_volley() -> None:
    s = strategy()
    assert s.usable_quantity(D("25"), D("40"), Side.SELL) == D(25)
    assert s.usable_quantity(D("300"), D("40"), Side.SELL) == D(250)  # 10000 / 40


def sell(units: str) -> OrderUpdate:
    update = ready("0")
    update.side = Side.SELL
    update.amount = D(units)  # a sell's amount is index units
    return update


def test_a_sell_batch_takes_bids_within_the_limit_rounded_down() -> None:
    s = strategy()
    rules = {
        AAA: InstrumentRules(AAA, "AAA", "USDC", tick_size=D("0.25")),
        BBB: InstrumentRules(BBB, "BBB", "USDC", tick_size=D("0.5")),
    }
    m = market(
        {
            AAA: ([("9.9", "30"), ("9.8", "100")], [("10", "100")]),
            BBB: ([("19.9", "100")], [("20", "100")]),
        }
    )
    u = sell("20")
    plan = s.plan([(u, IDX)], m, {AAA: D(15)}, rules, BIG_CAP, side=Side.SELL)
    # Limits: AAA 9.801 → 9.75 on its tick (so only the 9.9 and 9.8 bids count), BBB 19.701
    # → 19.5. P = 2 × 9.75 + 19.5 = 39. The bids allow 130 AAA, so 20 units fit whole;
    # 15 AAA sold ahead (by an earlier batch) are not sold again: 40 − 15 = 25 go out.
    (entry,) = plan.entries
    assert (entry.update, entry.index_price, entry.quantity) == (u, D(39), D(20))
    assert plan.asset_orders == (
        PlannedAssetOrder(AAA, D("9.75"), D(25), D(40), D(15), Side.SELL),
        PlannedAssetOrder(BBB, D("19.5"), D(20), D(20), D(0), Side.SELL),
    )


def test_a_sell_batch_sees_only_bid_liquidity() -> None:
    s = strategy()
    m = market({AAA: ([("9.9", "3")], [("10", "1000")]), BBB: ([("19.9", "100")], [])})
    plan = s.plan([(sell("20"), IDX)], m, {}, RULES, BIG_CAP, side=Side.SELL)
    (entry,) = plan.entries
    assert entry.quantity == D("1.5")  # 3 AAA bid within the limit / 2 AAA per unit


def test_an_order_of_the_other_side_is_deferred_not_mixed_in() -> None:
    s = strategy()
    buy = ready("1012.02")
    plan = s.plan([(buy, IDX)], default_books(), {}, {}, BIG_CAP, side=Side.SELL)
    assert plan.entries == () and plan.deferred == (
        (buy, HoldReason(HoldCode.OTHER_SIDE, "a buy order in a sell batch")),
    )


def test_basic_plan() -> None:
    s = strategy()
    u = ready("1012.02")
    plan = s.plan([(u, IDX)], default_books(), {}, RULES, BIG_CAP)
    (entry,) = plan.entries
    assert entry.update is u
    assert entry.index_price == D("40.40")
    assert entry.quantity == D(25)
    # Step 9: engaged = P × q × fee_factor = 40.40 × 25 × 1.002 = 1012.02.
    assert entry.engaged == D("1012.02")
    assert plan.notional == D(1010)  # 25 × 40.40
    assert plan.deferred == ()
    # Step 8: AAA 50 units, notional 50 × 10.10 = 505.0 (already a 0.1 multiple) → 50.
    assert plan.asset_orders == (
        PlannedAssetOrder(AAA, D("10.10"), D(50), D(50), D(0)),
        PlannedAssetOrder(BBB, D("20.20"), D(25), D(25), D(0)),
    )


def test_management_fee_reduces_usable() -> None:
    s = strategy()
    # amount 1012.52, fee 0.5 → remaining 1012.02 → q 25.
    plan = s.plan([(ready("1012.52", fee="0.5"), IDX)], default_books(), {}, RULES, BIG_CAP)
    assert plan.entries[0].quantity == D(25)


def test_max_order_volley_caps_each_order() -> None:
    s = strategy(max_order_volley=D("1010"))
    # remaining 5000 → 5000/1.002 ≈ 4990 > 1010 → usable 1010 → q = 25.
    plan = s.plan([(ready("5000"), IDX)], default_books(), {}, RULES, BIG_CAP)
    assert plan.entries[0].quantity == D(25)
    assert plan.entries[0].engaged == D("1012.02")


# ---------------------------------------------------------------- steps 3 and 6


def test_liquidity_within_limit_only() -> None:
    s = strategy()
    # AAA: 20 @ 10 and 10 @ 10.05 are within 10.10; 1000 @ 10.20 is beyond it → 30.
    m = default_books(aaa_asks=[("10", "20"), ("10.05", "10"), ("10.20", "1000")])
    plan = s.plan([(ready("1012.02"), IDX)], m, {}, RULES, BIG_CAP)
    # AAA demand 50, liquidity 30 → ratio 0.6 → q = 15.
    (entry,) = plan.entries
    assert entry.quantity == D(15)
    assert entry.engaged == D("607.212")  # 40.40 × 15 = 606; × 1.002 = 607.212
    assert plan.notional == D(606)
    # AAA 30 (notional 303.0), BBB 15 (303.0).
    assert [(a.instrument, a.quantity) for a in plan.asset_orders] == [(AAA, D(30)), (BBB, D(15))]


def test_liquidity_capped_to_max_levels() -> None:
    s = strategy(max_levels=1)
    m = default_books(aaa_asks=[("10", "20"), ("10.05", "10")])
    plan = s.plan([(ready("1012.02"), IDX)], m, {}, RULES, BIG_CAP)
    # Only the first level (20) counts: ratio 20/50 = 0.4 → q = 10.
    assert plan.entries[0].quantity == D(10)


def test_cut_to_the_tightest_asset() -> None:
    s = strategy()
    # AAA 30 of 50 (0.6), BBB 10 of 25 (0.4): the tighter 0.4 wins → q = 10.
    m = default_books(aaa_asks=[("10", "30")], bbb_asks=[("20", "10")])
    plan = s.plan([(ready("1012.02"), IDX)], m, {}, RULES, BIG_CAP)
    assert plan.entries[0].quantity == D(10)
    assert [(a.instrument, a.quantity) for a in plan.asset_orders] == [(AAA, D(20)), (BBB, D(10))]


def test_liquidity_shared_pro_rata_between_orders() -> None:
    s = strategy()
    u1 = ready("1012.02")  # wants 25
    u2 = ready("505.01")  # 505.01/1.002 = 504.0119... → wants 12.475...
    m = default_books(aaa_asks=[("10", "30")])
    plan = s.plan([(u1, IDX), (u2, IDX)], m, {}, RULES, BIG_CAP)
    e1, e2 = plan.entries
    want1 = D(25)
    want2 = D("505.01") / D("1.002") / D("40.40")
    # AAA demand 2 × (want1 + want2) against 30: both get the same fraction of what they want.
    ratio = D(30) / (2 * (want1 + want2))
    assert e1.quantity == want1 * ratio
    assert e2.quantity == want2 * ratio
    assert abs(2 * (e1.quantity + e2.quantity) - D(30)) < D("1e-24")


def test_min_asset_volley_fails_only_orders_needing_that_asset() -> None:
    s = strategy()
    # BBB liquidity 0.2 × limit 20.20 = 4.04 < min_asset_volley 5.
    m = default_books(bbb_asks=[("20", "0.2")])
    needs_b = ready("1012.02")
    only_a = ready("101.202", symbol=Symbol("ONLYA"))  # 101.202/1.002 = 101 → q = 10
    plan = s.plan([(needs_b, IDX), (only_a, ONLY_A)], m, {}, RULES, BIG_CAP)
    assert plan.deferred == (
        (
            needs_b,
            HoldReason(
                HoldCode.NO_LIQUIDITY, "liquidity of binance:BBBUSDC below min_asset_volley"
            ),
        ),
    )
    (entry,) = plan.entries
    assert entry.update is only_a and entry.quantity == D(10)
    # Refitted without IDX: AAA only for ONLYA, 10 units, notional 101.
    assert plan.asset_orders == (PlannedAssetOrder(AAA, D("10.10"), D(10), D(10), D(0)),)
    assert plan.notional == D(101)


def test_limit_follows_the_best_ask() -> None:
    s = strategy()
    # BBB's best ask 21 → limit 21.21 → P = 20.20 + 21.21 = 41.41; its whole level is within.
    m = default_books(bbb_asks=[("21", "100")])
    plan = s.plan([(ready("1012.02"), IDX)], m, {}, RULES, BIG_CAP)
    (entry,) = plan.entries
    assert entry.index_price == D("41.41")
    assert entry.quantity == D(1010) / D("41.41")


# ---------------------------------------------------------------- step 7


def test_max_volley_scales_orders_and_exchange_orders() -> None:
    s = strategy()
    u = ready("1012.02")
    plan = s.plan([(u, IDX)], default_books(), {}, RULES, D("505"))
    # notional 1010 > V 505 → scale 0.5 → q 12.5, engaged 40.40 × 12.5 × 1.002 = 506.01.
    (entry,) = plan.entries
    assert entry.quantity == D("12.5") and entry.engaged == D("506.01")
    assert plan.notional == D(505)
    # Exchange orders scale too: AAA 25 (252.5), BBB 12.5 (252.5).
    assert [(a.instrument, a.quantity) for a in plan.asset_orders] == [
        (AAA, D(25)),
        (BBB, D("12.5")),
    ]


def test_cap_not_hit_leaves_sizes() -> None:
    s = strategy()
    plan = s.plan([(ready("1012.02"), IDX)], default_books(), {}, RULES, D("1010"))
    assert plan.entries[0].quantity == D(25) and plan.notional == D(1010)


# ---------------------------------------------------------------- step 8


def test_padding_to_volley_step() -> None:
    s = strategy(price_threshold=D("0"))
    # Limits 10 and 20, P = 40. remaining 100.22004 → usable 100.02 → q = 2.5005.
    plan = s.plan([(ready("100.22004"), IDX)], default_books(), {}, RULES, BIG_CAP)
    assert plan.entries[0].quantity == D("2.5005")
    # AAA need 5.001 → notional 50.01 → padded up to 50.1 → 5.01 units;
    # BBB need 2.5005 → 50.01 → 50.1 → 2.505 units. Demand stays unpadded.
    assert plan.asset_orders == (
        PlannedAssetOrder(AAA, D(10), D("5.01"), D("5.001"), D(0)),
        PlannedAssetOrder(BBB, D(20), D("2.505"), D("2.5005"), D(0)),
    )


def test_padding_to_min_asset_volley() -> None:
    s = strategy(price_threshold=D("0"))
    # remaining 4.008 → usable 4 → q = 0.1; AAA 0.2 (2 USDC) and BBB 0.1 (2 USDC) each pad to 5.
    plan = s.plan([(ready("4.008"), IDX)], default_books(), {}, RULES, BIG_CAP)
    assert plan.entries[0].quantity == D("0.1")
    assert plan.notional == D(4)
    assert [(a.instrument, a.quantity, a.demand) for a in plan.asset_orders] == [
        (AAA, D("0.5"), D("0.2")),
        (BBB, D("0.25"), D("0.1")),
    ]


def test_carried_lots_reduce_the_exchange_quantity() -> None:
    s = strategy()
    plan = s.plan([(ready("1012.02"), IDX)], default_books(), {AAA: D(20)}, RULES, BIG_CAP)
    # AAA need 50, carried 20 → buy 30 (303.0 notional).
    aaa = plan.asset_orders[0]
    assert (aaa.instrument, aaa.quantity, aaa.demand, aaa.carried) == (AAA, D(30), D(50), D(20))


def test_carried_lots_covering_demand_buy_nothing() -> None:
    s = strategy()
    plan = s.plan([(ready("1012.02"), IDX)], default_books(), {AAA: D(60)}, RULES, BIG_CAP)
    assert plan.asset_orders[0] == PlannedAssetOrder(AAA, D("10.10"), D(0), D(50), D(60))


def test_carried_lots_add_to_liquidity_in_the_fit() -> None:
    s = strategy()
    # AAA book 30 + carried 20 = 50 = demand: no cut.
    m = default_books(aaa_asks=[("10", "30")])
    plan = s.plan([(ready("1012.02"), IDX)], m, {AAA: D(20)}, RULES, BIG_CAP)
    assert plan.entries[0].quantity == D(25)
    assert plan.asset_orders[0].quantity == D(30)


def test_venue_filters_applied() -> None:
    s = strategy()
    rules = {
        **RULES,
        AAA: InstrumentRules(AAA, "AAA", "USDC", tick_size=D("0.1"), step_size=D("1")),
    }
    plan = s.plan([(ready("1012.02"), IDX)], default_books(), {}, rules, BIG_CAP)
    # 10.10 is on the 0.1 tick; 50 is on the step.
    assert plan.asset_orders[0].price == D("10.1") and plan.asset_orders[0].quantity == D(50)


def test_venue_filter_refusal_defers_orders_needing_the_asset() -> None:
    s = strategy()
    rules = {**RULES, BBB: InstrumentRules(BBB, "BBB", "USDC", min_notional=D("100000"))}
    u = ready("1012.02")
    plan = s.plan([(u, IDX)], default_books(), {}, rules, BIG_CAP)
    assert plan.entries == ()
    assert plan.deferred == (
        (u, HoldReason(HoldCode.NOT_TRADABLE, "binance:BBBUSDC refused by the venue's NOTIONAL")),
    )


# ---------------------------------------------------------------- missing prices


def test_missing_price_defers_never_guesses() -> None:
    s = strategy()
    m = market({AAA: ([("9.9", "100")], [("10", "100")])})  # no BBB book at all
    u = ready("1012.02")
    a = ready("101.202", symbol=Symbol("ONLYA"))
    plan = s.plan([(u, IDX), (a, ONLY_A)], m, {}, RULES, BIG_CAP)
    assert plan.deferred == ((u, HoldReason(HoldCode.NO_PRICE, "no price for binance:BBBUSDC")),)
    assert [e.update for e in plan.entries] == [a]
    assert [o.instrument for o in plan.asset_orders] == [AAA]


def test_empty_ask_side_is_a_missing_price() -> None:
    s = strategy()
    m = market({AAA: ([("9.9", "100")], [("10", "100")]), BBB: ([("19.9", "100")], [])})
    u1, u2 = ready("1012.02"), ready("1012.02")
    plan = s.plan([(u1, IDX), (u2, IDX)], m, {}, RULES, BIG_CAP)
    assert plan.entries == () and plan.asset_orders == () and plan.notional == 0
    reason = HoldReason(HoldCode.NO_PRICE, "no price for binance:BBBUSDC")
    assert plan.deferred == ((u1, reason), (u2, reason))


def test_a_symbol_without_known_filters_is_not_traded() -> None:
    s = strategy()
    u = ready("1012.02")
    rules = {AAA: RULES[AAA]}  # BBB's rules are unknown
    plan = s.plan([(u, IDX)], default_books(), {}, rules, BIG_CAP)
    assert plan.entries == () and plan.asset_orders == ()
    assert plan.deferred == (
        (
            u,
            HoldReason(
                HoldCode.NOT_TRADABLE, "binance:BBBUSDC has no known exchange filters; not traded"
            ),
        ),
    )


def test_padding_ignores_arithmetic_noise_after_a_volley_scale() -> None:
    # Issue 7: ONLYA at limit 100 (threshold 0), step 0.2. remaining 3303.3 → usable 3300 →
    # q = 33, notional 3300 > V = 550 → scale 1/6 (34 digits) → q ≈ 5.5, notional ≈ 550, an
    # exact multiple of 0.2 up to noise in the 34th digit: padded to 550, not 550.2.
    s = strategy(price_threshold=D("0"), fee_factor=D("1.001"), asset_volley_step=D("0.2"))
    m = market({AAA: ([("99", "100")], [("100", "100")])})
    plan = s.plan([(ready("3303.3", symbol=Symbol("ONLYA")), ONLY_A)], m, {}, RULES, D("550"))
    (order,) = plan.asset_orders
    assert D(0) < order.demand - D("5.5") < D("1e-24")  # the noise is there, above 5.5
    assert order.quantity == D("5.5")


def test_lot_size_padding_covers_the_batch_demand() -> None:
    # Issue 7: BTC step 0.00001 at limit 110000 (threshold 0). remaining 10.503966 → usable
    # 10.483 → q = demand = 0.0000953 BTC. Notional 10.483 pads to 10.5 → 0.0000954545… BTC,
    # which LOT_SIZE alone rounds down to 0.00009 (below the demand: fill rate ~94.4%). The
    # order must be 0.0001, the demand rounded up to the step, within the 1 BTC visible.
    btc = instrument("BTCUSDC")
    basket = Basket(Symbol("B"), (BasketAsset(btc, D(1)),))
    rules = {btc: InstrumentRules(btc, "BTC", "USDC", tick_size=D("0.01"), step_size=D("0.00001"))}
    s = strategy(price_threshold=D("0"))
    m = market({btc: ([("109999", "1")], [("110000", "1")])})
    plan = s.plan([(ready("10.503966", symbol=Symbol("B")), basket)], m, {}, rules, BIG_CAP)
    (order,) = plan.asset_orders
    assert order.demand == D("0.0000953")
    assert (order.price, order.quantity) == (D("110000.00"), D("0.0001"))


def test_lot_size_cover_stays_within_the_visible_liquidity() -> None:
    # Only 0.00009 BTC visible: the fit cuts q to 0.00009 and the order buys exactly that.
    btc = instrument("BTCUSDC")
    basket = Basket(Symbol("B"), (BasketAsset(btc, D(1)),))
    rules = {btc: InstrumentRules(btc, "BTC", "USDC", step_size=D("0.00001"))}
    s = strategy(price_threshold=D("0"))
    m = market({btc: ([("109999", "1")], [("110000", "0.00009")])})
    plan = s.plan([(ready("10.503966", symbol=Symbol("B")), basket)], m, {}, rules, BIG_CAP)
    (order,) = plan.asset_orders
    assert order.demand == D("0.00009") and order.quantity == D("0.00009")
