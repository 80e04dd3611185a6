"""No dust sells, no negative payouts (issue 12): the sell minimum at acceptance, on cancel and on
a flip (engine/sell_size.py), and the invoice's proceeds rounding (redemption_reports.py).

Scenario 10's market (test_redemptions.world): IDX = 2 AAA + 1 BBB, best bids 9.9 and 19.9, so
one unit is worth 2 x 9.9 + 19.9 = 39.7 USDC at the bids. min_order 10: the smallest sell is
10 / 39.7 = 0.25188916876574307304... rounded up to 18 decimals, 0.251889168765743074 units.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from indexmaker.core.events import (
    BookSnapshot,
    CancelIndexOrderRequest,
    CancelIndexOrderResponse,
    IndexQuoteResponse,
    NewIndexOrderResponse,
    NewIndexQuoteResponse,
    NewQuoteRequest,
    RequestStatus,
)
from indexmaker.core.ids import (
    ClientOrderId,
    ClientQuoteId,
    PaymentId,
    Symbol,
    client_key,
    instrument,
)
from indexmaker.core.money import round_usdc_down
from indexmaker.engine.redemption_reports import build_redemption_invoice, proceeds_parts
from indexmaker.engine.sell_size import smallest_sell
from indexmaker.model.redemption import Redemption
from indexmaker.model.side import BookSide, Side

from .sell_setup import IDX, order, sent, world

D = Decimal
MINIMUM = "the minimum order of 10 USDC (0.251889168765743074 index units at 39.7 USDC per unit"


def test_the_smallest_sell_is_worth_the_minimum_and_one_unit_less_is_not() -> None:
    units = smallest_sell(D(10), D("39.7"))
    assert units == D("0.251889168765743074")
    assert units * D("39.7") >= 10 > (units - D("1e-18")) * D("39.7")
    assert smallest_sell(D(10), D("2.5")) == D(4)  # an exact quotient is not rounded up


def test_a_sell_below_the_minimum_is_refused_naming_it_and_changes_nothing() -> None:
    state = world()
    alice = state.client("alice")
    escrows = len(state.world.log.escrows)
    mark = len(state.world.log.messages)
    state.world.submit(order("alice", state, "S1", Side.SELL, "0.000000000000000001"))
    state.world.submit(order("alice", state, "S2", Side.SELL, "0.251889168765743073"))
    assert sent(state, mark) == [
        NewIndexOrderResponse(
            ClientOrderId("S1"),
            RequestStatus.REJECTED,
            "amount 0.000000000000000001 index units is worth less than 0.000001 USDC at the "
            f"current bids, below {MINIMUM} at the bids)",
        ),
        NewIndexOrderResponse(
            ClientOrderId("S2"),
            RequestStatus.REJECTED,
            "amount 0.251889168765743073 index units is worth 9.999999 USDC at the current "
            f"bids, below {MINIMUM} at the bids)",
        ),
    ]
    redemptions = state.world.engine.redemptions
    assert redemptions.open_redemptions() == [] and len(state.world.log.escrows) == escrows
    assert redemptions.get(alice, ClientOrderId("S1")) is None
    # One unit more is the minimum: accepted and asked into custody.
    state.world.submit(order("alice", state, "S3", Side.SELL, "0.251889168765743074"))
    (accepted,) = sent(state, mark + 2)
    assert isinstance(accepted, NewIndexOrderResponse) and accepted.status is RequestStatus.NEW
    assert len(state.world.log.escrows) == escrows + 1


def test_a_sell_quote_below_the_minimum_is_refused_with_the_orders_reason() -> None:
    # Review (issue 12 #2): a 1e-18 sell quote answered 0 expected proceeds, not why.
    state = world()
    alice = state.client("alice")
    mark = len(state.world.log.messages)
    for qid, units in (("q1", "0.000000000000000001"), ("q2", "0.251889168765743074")):
        state.world.submit(NewQuoteRequest(alice, ClientQuoteId(qid), IDX, Side.SELL, D(units)))
    state.world.advance(timedelta(milliseconds=100))
    refused, accepted, answer = sent(state, mark)
    assert refused == NewIndexQuoteResponse(
        ClientQuoteId("q1"),
        RequestStatus.REJECTED,
        "amount 0.000000000000000001 index units is worth less than 0.000001 USDC at the "
        f"current bids, below {MINIMUM} at the bids)",
    )
    assert accepted == NewIndexQuoteResponse(ClientQuoteId("q2"), RequestStatus.NEW)
    assert isinstance(answer, IndexQuoteResponse) and answer.quantity_possible == D(
        "0.251889168765743074"
    )


def test_a_sell_quote_asked_before_the_bids_is_refused_when_they_come() -> None:
    # Without bids the quote cannot be valued: it waits (NEW); priced later, it is refused
    # with the reason instead of a price.
    state = world()
    alice = state.client("alice")
    bbb = instrument("BBBUSDC")
    book = state.world.engine.market.book(bbb)
    assert book is not None
    bids, asks = book.depth()
    kept = (tuple(book.levels(BookSide.BIDS, bids)), tuple(book.levels(BookSide.ASKS, asks)))
    state.world.submit(BookSnapshot(bbb, (), kept[1]))
    mark = len(state.world.log.messages)
    state.world.submit(NewQuoteRequest(alice, ClientQuoteId("q"), IDX, Side.SELL, D("0.1")))
    state.world.advance(timedelta(milliseconds=300))
    assert sent(state, mark) == [NewIndexQuoteResponse(ClientQuoteId("q"), RequestStatus.NEW)]
    state.world.submit(BookSnapshot(bbb, *kept))
    state.world.advance(timedelta(milliseconds=300))
    _, late = sent(state, mark)
    assert isinstance(late, NewIndexQuoteResponse) and late.status is RequestStatus.REJECTED
    assert late.reason is not None and late.reason.startswith(
        "amount 0.1 index units is worth 3.97 USDC at the current bids, below the minimum"
    )
    assert state.world.engine.quotes.pending() == 0


def test_a_cancel_may_not_leave_a_remainder_below_the_minimum() -> None:
    state = world()
    alice = state.client("alice")
    state.world.submit(order("alice", state, "S1", Side.SELL, "1"))
    redemption = state.world.engine.redemptions.get(alice, ClientOrderId("S1"))
    assert redemption is not None
    mark = len(state.world.log.messages)

    def cancel(units: str) -> CancelIndexOrderResponse:
        at = len(state.world.log.messages)
        state.world.submit(CancelIndexOrderRequest(alice, ClientOrderId("S1"), IDX, D(units)))
        (response,) = sent(state, at)
        assert isinstance(response, CancelIndexOrderResponse)
        return response

    # 1 - 0.9 = 0.1 units, 3.97 USDC at the bids: refused, the units stay on sale.
    refused = cancel("0.9")
    assert refused.status is RequestStatus.REJECTED
    assert refused.reason == (
        f"would leave 0.1 index units worth 3.97 USDC, below {MINIMUM} at the bids); "
        "cancel all 1 or at most 0.748110831234256926"
    )
    assert redemption.quantity == D(1)
    assert cancel("0.748110831234256927").status is RequestStatus.REJECTED
    # At most 1 - 0.251889168765743074: leaves exactly the minimum.
    assert cancel("0.748110831234256926").status is RequestStatus.CANCELED
    assert redemption.quantity == D("0.251889168765743074")
    assert cancel("0.1").status is RequestStatus.REJECTED  # at the minimum: no smaller
    assert cancel("0.251889168765743074").status is RequestStatus.CANCELED  # all of it
    assert len(sent(state, mark)) == 5


def test_a_sell_flipping_a_buy_redeems_no_rest_below_the_minimum() -> None:
    # bob's buy of 500 waits for collateral. At the buy limit P = 40 his sell of 12.6 units
    # weighs 12.6 x 40 x 1.001 = 504.504 USDC: it takes the whole 500 and the rest,
    # 12.6 - 500 / 40.04 = 0.112487512487512487 units (18 decimals, down), is worth
    # 0.112487512487512487 x 39.7 = 4.465754... USDC at the bids: not redeemed.
    state = world()
    bob = state.client("bob")
    state.world.submit(order("bob", state, "B1", Side.BUY, "500"))
    mark = len(state.world.log.messages)
    escrows = len(state.world.log.escrows)
    state.world.submit(order("bob", state, "S1", Side.SELL, "12.6"))
    assert sent(state, mark) == [
        NewIndexOrderResponse(
            ClientOrderId("S1"),
            RequestStatus.NEW,
            "reduced the buy by 500 USDC; the other 0.112487512487512487 index units were not "
            "redeemed: amount 0.112487512487512487 index units is worth 4.465754 USDC at the "
            f"current bids, below {MINIMUM} at the bids)",
        ),
        CancelIndexOrderResponse(
            ClientOrderId("S1"),
            RequestStatus.CANCELED,
            "done: the other 0.112487512487512487 index units are not sold (reduced the buy "
            "by 500 USDC; none of its index units sold)",
        ),
    ]
    assert state.world.engine.orders.update(bob, ClientOrderId("B1")) is None
    assert state.world.engine.redemptions.get(bob, ClientOrderId("S1")) is None
    assert len(state.world.log.escrows) == escrows


def _redemption(gross: Decimal, fee: Decimal) -> Redemption:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    client = client_key(1, "0x" + "11" * 20)
    redemption = Redemption(
        PaymentId("R1"), client, ClientOrderId("S"), Symbol("IDX"), D(1), D(1), None, at, 1
    )
    redemption.gross, redemption.exchange_fee = gross, fee
    return redemption


def test_a_fee_on_a_gross_that_rounds_to_nothing_is_nothing() -> None:
    # The reviewer's invoice: gross 0.0000003 (shown 0.000000) and a fee of 0.0000000003 shown
    # rounded up as 0.000001 gave net_paid -0.000001. The net 0.0000002997 rounds down to 0,
    # the fee is what the rounded gross loses: 0.
    assert proceeds_parts(_redemption(D("0.0000003"), D("0.0000000003"))) == (D(0), D(0))
    invoice = build_redemption_invoice(_redemption(D("0.0000003"), D("0.0000000003")), _AT)
    assert (invoice.gross_proceeds, invoice.exchange_fee, invoice.net_paid) == (0, 0, 0)
    # gross 12.3456785, fee 0.0123456785: net 12.3333328215 -> 12.333332; the fee
    # 12.345678 - 12.333332 = 0.012346 (the exact fee rounded up here).
    parts = proceeds_parts(_redemption(D("12.3456785"), D("0.0123456785")))
    assert parts == (D("12.345678"), D("0.012346"))
    # gross 1.0000009, fee 0.0000019: net 0.999999 exactly; the fee 0.000001 (rounded down).
    assert proceeds_parts(_redemption(D("1.0000009"), D("0.0000019"))) == (D(1), D("0.000001"))


_AT = datetime(2026, 1, 1, tzinfo=UTC)
_USDC = st.decimals(min_value=0, max_value=10**6, places=12, allow_nan=False)


@given(gross=_USDC, share=st.decimals(min_value=0, max_value=1, places=6))
def test_the_fee_never_exceeds_the_gross_and_the_net_never_the_exact_net(
    gross: Decimal, share: Decimal
) -> None:
    fee = gross * share  # a sale's fee is a share of what it brought (never more)
    shown_gross, shown_fee = proceeds_parts(_redemption(gross, fee))
    net = shown_gross - shown_fee
    assert 0 <= shown_fee <= shown_gross
    assert 0 <= net <= gross - fee and net == round_usdc_down(gross - fee)
    assert abs(shown_fee - fee) < D("0.000001")  # the exact fee rounded down or up
    invoice = build_redemption_invoice(_redemption(gross, fee), _AT)
    assert invoice.net_paid == net >= 0 and invoice.exchange_fee == shown_fee
