"""engine/quotes.py: quote requests, answers at current limit prices, cancel.

IDX = 2 AAA + 1 BBB, asks AAA 10 (×100) and 10.05 (×100), BBB 20 (×100): limits 10.10 and
20.20, P = 40.40. Liquidity in index units: AAA 200/2 = 100, BBB 100/1 = 100.
"""

from __future__ import annotations

from decimal import Context, Decimal, localcontext
from fractions import Fraction

from indexmaker.core.events import (
    BookSnapshot,
    CancelIndexQuoteResponse,
    CancelQuoteRequest,
    IndexQuoteResponse,
    NewIndexQuoteResponse,
    NewQuoteRequest,
    RequestStatus,
)
from indexmaker.core.ids import ClientQuoteId, Symbol, client_key, instrument
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.prices import MarketData
from indexmaker.engine.quotes import QuoteManager
from indexmaker.model.index import Basket, BasketAsset
from indexmaker.model.side import Side

D = Decimal
ALICE = client_key(42161, "0x" + "a" * 40)
BOB = client_key(42161, "0x" + "b" * 40)
AAA, BBB = instrument("AAAUSDC"), instrument("BBBUSDC")
IDX_SYMBOL = Symbol("IDX")
IDX = Basket(IDX_SYMBOL, (BasketAsset(AAA, D(2)), BasketAsset(BBB, D(1))))
BASKETS = {IDX_SYMBOL: IDX}


def market(aaa_asks: tuple[tuple[str, str], ...] = (("10", "100"), ("10.05", "100"))) -> MarketData:
    m = MarketData()
    m.apply(BookSnapshot(AAA, ((D("9.9"), D(1)),), tuple((D(p), D(q)) for p, q in aaa_asks)))
    m.apply(BookSnapshot(BBB, ((D("19.9"), D(1)),), ((D(20), D(100)),)))
    return m


def quote(
    cid: str, amount: str, side: Side = Side.BUY, symbol: Symbol = IDX_SYMBOL
) -> NewQuoteRequest:
    return NewQuoteRequest(ALICE, ClientQuoteId(cid), symbol, side, D(amount))


def test_compute_quantities_and_index_price() -> None:
    q = QuoteManager(SolverConfig())
    result = q.compute(IDX, market(), D("1012.02"))
    # possible = 1012.02 / 1.002 / 40.40 = 1010 / 40.40 = 25; liquidity allows 100 → 25.
    assert result == (D(25), D(25), D("40.40"))


def test_fillable_now_cut_by_liquidity() -> None:
    q = QuoteManager(SolverConfig())
    # AAA 30 within the limit → 15 index units; possible is still 25.
    assert q.compute(IDX, market((("10", "30"),)), D("1012.02")) == (D(25), D(15), D("40.40"))


def test_fillable_now_cut_by_max_order_volley() -> None:
    q = QuoteManager(SolverConfig(max_order_volley=D("1010")))
    # 1012020 / 1.002 = 1010000 → possible 25000; one batch uses at most 1010 → 25.
    assert q.compute(IDX, market(), D("1012020")) == (D(25000), D(25), D("40.40"))


def test_liquidity_beyond_max_levels_ignored() -> None:
    q = QuoteManager(SolverConfig(max_levels=1))
    # Only AAA's first level counts: 40 AAA → 20 index units < the 25 wanted.
    assert q.compute(IDX, market((("10", "40"), ("10.05", "1000"))), D("1012.02")) == (
        D(25),
        D(20),
        D("40.40"),
    )


def test_compute_without_price_is_none() -> None:
    q = QuoteManager(SolverConfig())
    m = MarketData()
    m.apply(BookSnapshot(AAA, (), ((D(10), D(1)),)))
    assert q.compute(IDX, m, D("100")) is None


def test_request_answer_flow() -> None:
    q = QuoteManager(SolverConfig())
    assert q.request(quote("Q1", "1012.02"), known_symbol=True) == NewIndexQuoteResponse(
        ClientQuoteId("Q1"), RequestStatus.NEW
    )
    assert q.pending() == 1
    answers = q.answer(BASKETS, market())
    assert answers == [(ALICE, IndexQuoteResponse(ClientQuoteId("Q1"), D(25), D(25), D("40.40")))]
    assert q.pending() == 0
    # Answered quotes are closed: cancelling one is refused.
    response = q.cancel(CancelQuoteRequest(ALICE, ClientQuoteId("Q1"), IDX_SYMBOL))
    assert response.status is RequestStatus.REJECTED


def test_unpriceable_quote_waits() -> None:
    q = QuoteManager(SolverConfig())
    q.request(quote("Q1", "100"), known_symbol=True)
    assert q.answer(BASKETS, MarketData()) == []
    assert q.pending() == 1
    assert len(q.answer(BASKETS, market())) == 1


def test_rejections_change_nothing() -> None:
    q = QuoteManager(SolverConfig())
    q.request(quote("Q1", "100"), known_symbol=True)
    cases = [
        (quote("Q2", "100", symbol=Symbol("NOPE")), False, "unknown symbol NOPE"),
        (quote("Q4", "0"), True, "amount must be > 0"),
        (quote("Q5", "-1"), True, "amount must be > 0"),
        (quote("Q1", "100"), True, "quote Q1 is already open"),
    ]
    for request, known, reason in cases:
        response = q.request(request, known_symbol=known)
        assert response == NewIndexQuoteResponse(
            request.client_quote_id, RequestStatus.REJECTED, reason
        )
    assert q.pending() == 1


def test_non_finite_amount_rejected() -> None:
    q = QuoteManager(SolverConfig())
    for cid, amount in (("Q1", "NaN"), ("Q2", "Infinity")):
        assert q.request(quote(cid, amount), known_symbol=True).status is RequestStatus.REJECTED
    assert q.pending() == 0


def test_same_quote_id_for_two_clients() -> None:
    q = QuoteManager(SolverConfig())
    q.request(quote("Q1", "100"), known_symbol=True)
    other = NewQuoteRequest(BOB, ClientQuoteId("Q1"), IDX_SYMBOL, Side.BUY, D("100"))
    assert q.request(other, known_symbol=True).status is RequestStatus.NEW
    assert q.pending() == 2


def test_cancel() -> None:
    q = QuoteManager(SolverConfig())
    q.request(quote("Q1", "100"), known_symbol=True)
    wrong_symbol = q.cancel(CancelQuoteRequest(ALICE, ClientQuoteId("Q1"), Symbol("OTHER")))
    assert wrong_symbol == CancelIndexQuoteResponse(
        ClientQuoteId("Q1"), RequestStatus.REJECTED, "no open quote Q1 for OTHER"
    )
    unknown = q.cancel(CancelQuoteRequest(ALICE, ClientQuoteId("Q9"), IDX_SYMBOL))
    assert unknown.status is RequestStatus.REJECTED
    assert q.pending() == 1
    done = q.cancel(CancelQuoteRequest(ALICE, ClientQuoteId("Q1"), IDX_SYMBOL))
    assert done == CancelIndexQuoteResponse(ClientQuoteId("Q1"), RequestStatus.CANCELED)
    assert q.pending() == 0
    assert q.answer(BASKETS, market()) == []


def test_quote_deducts_expected_routing_fees_and_rounds_to_18_decimals() -> None:
    q = QuoteManager(SolverConfig())
    # SPEC §4: ((1012.52 − 0.5 routing fees) / 1.002) / 40.40 = 25 exactly.
    assert q.compute(IDX, market(), D("1012.52"), D("0.5")) == (D(25), D(25), D("40.40"))
    # 1000 / 1.002 / 40.40 = 998.003992… / 40.40 = 24.7030691… (34 digits): sent rounded down
    # to 18 decimals, never as a 30-digit string, and never above the exact quotient.
    possible, fillable, price = q.compute(IDX, market(), D(1000)) or (D(0), D(0), D(0))
    assert possible == fillable == D("24.703069109306140194")
    assert possible <= D(1000) / D("1.002") / D("40.40")
    assert possible.as_tuple().exponent == -18 and price.as_tuple().exponent == -6
    # Fees larger than the amount leave nothing possible, not a negative quantity.
    assert q.compute(IDX, market(), D(1), D(2)) == (D(0), D(0), D("40.40"))


def test_answer_asks_the_routing_fee_of_the_quoting_client() -> None:
    q = QuoteManager(SolverConfig())
    q.request(quote("Q1", "1012.52"), known_symbol=True)
    asked: list[tuple[object, Decimal]] = []

    def fee(client: object, amount: Decimal) -> Decimal:
        asked.append((client, amount))
        return D("0.5")

    answers = q.answer(BASKETS, market(), fee)
    assert asked == [(ALICE, D("1012.52"))]
    assert answers == [(ALICE, IndexQuoteResponse(ClientQuoteId("Q1"), D(25), D(25), D("40.40")))]


# ---------------------------------------------------------------- sell (redemption) quotes


def sell_market() -> MarketData:
    """Bids AAA 9.9 (×100) and 9.80 (×1000), BBB 19.9 (×30): with the 1% threshold the sell
    limits are 9.801 and 19.701, P = 2 × 9.801 + 19.701 = 39.303; 9.80 is below AAA's limit,
    so the liquidity within the limits is AAA 100 / 2 = 50 and BBB 30 / 1 = 30 index units."""
    m = MarketData()
    m.apply(BookSnapshot(AAA, ((D("9.9"), D(100)), (D("9.80"), D(1000))), ((D(10), D(100)),)))
    m.apply(BookSnapshot(BBB, ((D("19.9"), D(30)),), ((D(20), D(100)),)))
    return m


def test_a_sell_quote_prices_the_units_at_the_bids_net_of_fees() -> None:
    q = QuoteManager(SolverConfig())
    # 40 units: all possible; 30 fit the bids now (BBB). Proceeds (engine/sell_proceeds.py):
    # V = 40 × 39.303 = 1572.12; the exchange keeps at most fee_factor − 1 = 0.2 % of it:
    # 1572.12 × 0.998 = 1568.97576, less 1 micro-USDC for the withdrawal's rounding.
    assert q.compute_sell(IDX, sell_market(), D(40)) == (
        D(40),
        D(30),
        D("39.303000"),
        D("1568.975759"),
    )
    # A withdrawal fee of 0.1 %: 1.568975759 rounded up to 1.568976 off 1568.975759 =
    # 1567.406783; and one batch takes at most max_order_volley / P = 786.06 / 39.303
    # = 20 units.
    capped = QuoteManager(SolverConfig(max_order_volley=D("786.06")))
    assert capped.compute_sell(IDX, sell_market(), D(40), lambda usdc: usdc / 1000) == (
        D(40),
        D(20),
        D("39.303000"),
        D("1567.406783"),
    )
    # Fees above the proceeds leave 0, never a negative amount; no bid means no quote yet.
    assert q.compute_sell(IDX, sell_market(), D(1), lambda usdc: usdc * 2)[3] == 0  # type: ignore[index]
    empty = MarketData()
    empty.apply(BookSnapshot(AAA, (), ((D(10), D(1)),)))
    assert q.compute_sell(IDX, empty, D(1)) is None


def test_a_sell_quote_request_is_answered_with_its_expected_proceeds() -> None:
    q = QuoteManager(SolverConfig())
    new = q.request(quote("S1", "40", side=Side.SELL), known_symbol=True)
    assert new == NewIndexQuoteResponse(ClientQuoteId("S1"), RequestStatus.NEW)
    q.request(quote("B1", "1012.02"), known_symbol=True)
    answers = dict(
        (r.client_quote_id, r)
        for _, r in q.answer(BASKETS, sell_market(), withdrawal_fee=lambda _, usdc: usdc / 1000)
        if isinstance(r, IndexQuoteResponse)
    )
    assert answers[ClientQuoteId("S1")] == IndexQuoteResponse(
        ClientQuoteId("S1"), D(40), D(30), D("39.303000"), D("1567.406783")
    )
    # The buy quote in the same tick: priced at the asks, no proceeds.
    assert answers[ClientQuoteId("B1")].expected_proceeds is None
    assert answers[ClientQuoteId("B1")].index_price == D("40.40")
    # A rebalanced index sells its holdings basket: the sell quote prices that one.
    holdings = {IDX_SYMBOL: Basket(IDX_SYMBOL, (BasketAsset(BBB, D(2)),))}
    q.request(quote("S2", "10", side=Side.SELL), known_symbol=True)
    ((_, answer),) = q.answer(BASKETS, sell_market(), sell_baskets=holdings)
    # P = 2 × 19.701 = 39.402; BBB 30 / 2 = 15 units fit; 394.02 × 0.998 − 0.000001.
    assert answer == IndexQuoteResponse(
        ClientQuoteId("S2"), D(10), D(10), D("39.402000"), D("393.231959")
    )


def test_a_quote_at_a_price_that_does_not_divide_is_the_exact_quotient_on_18_decimals() -> None:
    """1000 / 1.002 / 40.40 = 24.70345… with no end: the quotient of 1000 by 1.002 × 40.40 =
    40.4808, floored on the token's 18 decimals as one exact division (issue 12 review), the
    same under a caller's tiny context."""
    q = QuoteManager(SolverConfig())
    exact = Fraction(1000) / Fraction("40.4808")
    units = D(exact.numerator * 10**18 // exact.denominator).scaleb(-18)
    assert q.compute(IDX, market(), D(1000)) == (units, units, D("40.40"))
    with localcontext(Context(prec=10)):
        assert q.compute(IDX, market(), D(1000)) == (units, units, D("40.40"))
