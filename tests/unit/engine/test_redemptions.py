"""The sell side's rules one at a time (issue 12), on the simulated world: escrow refused,
cancel, the redemption throttle, opposite-side orders, repeated chain answers, conservation."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from indexmaker.core.events import (
    BookSnapshot,
    BurnConfirmed,
    CancelIndexOrderRequest,
    CancelIndexOrderResponse,
    Command,
    HopCompleted,
    HopReport,
    HopState,
    HopStatusUnknown,
    IndexEscrowed,
    IndexQuoteResponse,
    NewIndexOrderResponse,
    NewQuoteRequest,
    QueryHop,
    RedemptionFill,
    RedemptionInvoice,
    ReleaseIndex,
    RequestStatus,
    RouteCollateral,
    SendToClient,
    WithdrawalCompleted,
    WithdrawCollateral,
)
from indexmaker.core.holds import HoldCode
from indexmaker.core.ids import (
    Address,
    ClientOrderId,
    ClientQuoteId,
    Designation,
    PaymentId,
    TransferId,
    TxHash,
    WithdrawalId,
    instrument,
)
from indexmaker.core.redemption_events import RedemptionStatus
from indexmaker.model.redemption import RedemptionState
from indexmaker.model.side import Side
from indexmaker.server.client_redemption import decode_redemption
from indexmaker.server.redemption_wire import redemption_body

from .sell_setup import IDX, floor_held, order, sent, world

D = Decimal


def test_a_sell_of_tokens_the_client_does_not_hold_is_refused_and_sells_nothing() -> None:
    state = world()
    mark = len(state.world.log.messages)
    state.world.submit(order("alice", state, "S1", Side.SELL, "30"))
    state.world.advance(timedelta(seconds=2))
    (accepted, refused) = sent(state, mark)
    assert isinstance(accepted, NewIndexOrderResponse) and accepted.status is RequestStatus.NEW
    assert refused == NewIndexOrderResponse(
        ClientOrderId("S1"),
        RequestStatus.REJECTED,
        "index tokens not moved into custody: the client holds 25.000000000000000000 IDX, not 30",
    )
    assert [o.side for o in state.world.log.exchange_orders] == [Side.BUY, Side.BUY]
    assert state.world.chain.minted[(state.client("alice"), IDX)] == D(25)
    assert state.world.log.alerts == []


def test_a_cancel_returns_the_units_not_engaged_and_the_rest_is_paid() -> None:
    # The first batch sells 10 of 25 units (AAA liquidity 20 within the limit); the cancel of
    # 100 units takes the 15 not engaged: the redemption ends with 10 redeemed, 15 returned.
    state = world()
    alice = state.client("alice")
    state.world.submit(order("alice", state, "S1", Side.SELL, "25"))
    state.world.advance(timedelta(seconds=0.95))  # escrowed at 6.1 s
    # The engine sees only 20 AAA bid at 9.9 (the venue has more): 10 units fit the batch.
    state.world.submit(
        BookSnapshot(instrument("AAAUSDC"), ((D("9.9"), D("20")),), ((D("10"), D("1000")),))
    )
    state.world.advance(timedelta(seconds=0.05))  # 6.1 s: escrowed, batch formed
    redemption = state.world.engine.redemptions.get(alice, ClientOrderId("S1"))
    assert redemption is not None and redemption.engaged == D(10)
    mark = len(state.world.log.messages)
    # A cancel may name index units to 18 decimals (the wire's cancel has no side).
    state.world.submit(
        CancelIndexOrderRequest(alice, ClientOrderId("S1"), IDX, D("0.000000000000000001"))
    )
    assert sent(state, mark) == [
        CancelIndexOrderResponse(
            ClientOrderId("S1"),
            RequestStatus.CANCELED,
            "0.000000000000000001 index units taken off the sell",
        )
    ]
    assert redemption.quantity == D("24.999999999999999999")
    mark += 1
    state.world.submit(CancelIndexOrderRequest(alice, ClientOrderId("S1"), IDX, D(100)))
    assert sent(state, mark) == [  # asked for 100, took the 15 not engaged, and says so
        CancelIndexOrderResponse(
            ClientOrderId("S1"),
            RequestStatus.CANCELED,
            "14.999999999999999999 index units taken off the sell",
        )
    ]
    assert redemption.quantity == D(10)
    state.world.submit(CancelIndexOrderRequest(alice, ClientOrderId("S1"), IDX, D(1)))
    (refused,) = sent(state, mark + 1)
    assert isinstance(refused, CancelIndexOrderResponse)
    assert refused.reason == "nothing to cancel: every unit is engaged or sold"
    state.world.advance(timedelta(seconds=6))
    invoice = sent(state)[-1]
    assert isinstance(invoice, RedemptionInvoice)
    assert (invoice.redeemed_quantity, invoice.returned_quantity) == (D(10), D(15))
    assert state.world.chain.minted[(alice, IDX)] == D(15)  # the 15 came back
    assert state.world.chain.burned[IDX] == D(10)
    assert invoice.net_paid == state.world.chain.paid[alice] > 0


def test_the_throttle_lets_the_first_in_line_take_the_headroom_and_queues_the_rest() -> None:
    # Net redemptions allowed: 500 USDC an hour (alice's purchase has left the window). Her
    # 25 units (992.5 at the limits) get a batch scaled to 500; bob's redemption waits behind
    # hers and is told why.
    state = world(max_net_redemption="500", redemption_ttl="3h")
    state.world.advance(timedelta(hours=1))
    state.world.submit(order("alice", state, "S1", Side.SELL, "25"))
    state.world.submit(order("bob", state, "S2", Side.SELL, "5"))
    state.world.advance(timedelta(seconds=1.05))
    sells = [o for o in state.world.log.exchange_orders if o.side is Side.SELL]
    assert sum((o.quantity * o.price for o in sells), D(0)) == D(500)
    queued = [m for m in sent(state) if isinstance(m, RedemptionFill) and m.client_order_id == "S2"]
    assert queued[-1].status is RedemptionStatus.QUEUED
    assert queued[-1].reason is not None and "of 500 USDC; waits FIFO" in queued[-1].reason
    redemptions = state.world.engine.redemptions
    assert redemptions.flow.net(state.world.clock.now()) == D(500)
    # An hour later the rest of alice's (12.41 units, 492.5) fits, bob's 198.5 does not;
    # another hour and bob's sells.
    state.world.advance(timedelta(hours=1, seconds=10))
    invoices = [m for m in sent(state) if isinstance(m, RedemptionInvoice)]
    assert [i.client_order_id for i in invoices] == ["S1"]
    state.world.advance(timedelta(hours=1, seconds=10))
    invoices = [m for m in sent(state) if isinstance(m, RedemptionInvoice)]
    assert {i.client_order_id: i.redeemed_quantity for i in invoices} == {"S1": 25, "S2": 5}
    assert state.world.log.alerts == []


def test_issuance_offsets_redemptions_in_the_throttle() -> None:
    state = world(max_net_redemption="500")
    flow = state.world.engine.redemptions.flow
    # The purchases engaged 2000 of issuance within the hour: 2500 of redemptions fit.
    assert flow.headroom(state.world.clock.now()) == D(2500)
    state.world.advance(timedelta(hours=1))
    assert flow.headroom(state.world.clock.now()) == D(500)


def test_a_sell_flips_a_buy_queue_with_nothing_engaged_into_a_redemption() -> None:
    # SPEC §3: bob's buy of 500 waits for collateral (nothing engaged). At the buy limit
    # P = 2 x 10 + 20 = 40 his sell of 3 units weighs 3 x 40 x 1.001 = 120.12 USDC: the buy
    # is reduced to 379.88 and nothing flips.
    state = world()
    bob = state.client("bob")
    state.world.submit(order("bob", state, "B1", Side.BUY, "500"))
    mark = len(state.world.log.messages)
    state.world.submit(order("bob", state, "S1", Side.SELL, "3"))
    assert sent(state, mark) == [
        NewIndexOrderResponse(
            ClientOrderId("S1"), RequestStatus.NEW, "reduced the buy by 120.12 USDC"
        ),
        CancelIndexOrderResponse(
            ClientOrderId("S1"),
            RequestStatus.CANCELED,
            "done: nothing left to sell (reduced the buy by 120.12 USDC; none of its index "
            "units sold)",
        ),
    ]
    update = state.world.engine.orders.update(bob, ClientOrderId("B1"))
    assert update is not None and update.amount == D("379.88")
    # A sell of 10 units (400.4 USDC) takes the remaining 379.88 and flips the rest,
    # 10 - 379.88 / 40.04 = 0.512487512487512488 units, into a redemption.
    state.world.submit(order("bob", state, "S2", Side.SELL, "10"))
    assert state.world.engine.orders.update(bob, ClientOrderId("B1")) is None
    redemption = state.world.engine.redemptions.get(bob, ClientOrderId("S2"))
    assert redemption is not None
    assert redemption.quantity == D("0.512487512487512487")
    (flipped,) = [m for m in sent(state, mark) if getattr(m, "client_order_id", "") == "S2"]
    assert isinstance(flipped, NewIndexOrderResponse) and flipped.reason is not None
    assert flipped.reason.startswith("reduced the buy by 379.88 USDC; redemption R1: waiting")


def test_a_buy_reduces_the_clients_redemption_before_it_sells() -> None:
    state = world()
    alice = state.client("alice")
    redemption = floor_held(state, "alice")
    # A buy of 397 USDC weighs 10 units at the sell limit P = 39.7.
    state.world.submit(order("alice", state, "A2", Side.BUY, "397"))
    assert redemption.quantity == D(15)
    assert state.world.engine.orders.update(alice, ClientOrderId("A2")) is None


def test_a_buy_leaving_a_redemption_below_the_minimum_takes_all_of_it() -> None:
    # Review (issue 12 #6). alice's 25 units wait (floor). A buy of 987.5 USDC weighs
    # 987.5 / 39.7 = 24.874... units at the sell limit: the 0.125944584382871536 left would
    # be worth 5 USDC at the bids, below the 10 USDC minimum order, a sell that could never
    # go to the venue. The whole redemption is taken off instead: closed, its 25 units
    # returned, no buy queued (987.5 - 25 x 39.7 < 0), the client told why.
    state = world()
    alice = state.client("alice")
    redemption = floor_held(state, "alice")
    mark = len(state.world.log.messages)
    state.world.submit(order("alice", state, "A2", Side.BUY, "987.5"))
    (answer,) = [m for m in sent(state, mark) if isinstance(m, NewIndexOrderResponse)]
    assert answer == NewIndexOrderResponse(
        ClientOrderId("A2"),
        RequestStatus.NEW,
        "reduced the redemption by 25.000000000000000000 index units (all not yet engaged or "
        "sold: the rest would have been below the minimum order)",
    )
    assert redemption.quantity == 0 and redemption.closing == "reduced by a buy"
    assert state.world.engine.orders.update(alice, ClientOrderId("A2")) is None
    state.world.advance(timedelta(seconds=3))
    released = state.world.log.escrows[-1]
    assert isinstance(released, ReleaseIndex) and released.quantity == D(25)
    assert state.world.chain.minted[(alice, IDX)] == D(25)  # back with alice
    # A buy leaving at least the minimum reduces by its weight only (the test above: 397).
    bobs = floor_held(state, "bob")
    state.world.submit(order("bob", state, "A2", Side.BUY, "496.25"))  # 12.5 units
    assert bobs.quantity == D("12.5") and bobs.closing is None


def test_a_sell_stopped_by_its_floor_is_told_once_while_the_bids_move() -> None:
    # The reason names the net the bids would pay; it moves with every book, the reason does
    # not: one message, not one a tick.
    state = world()
    floor_held(state, "alice")
    for n, bid in enumerate(("9.89", "9.88", "9.9")):
        state.world.submit(
            BookSnapshot(instrument("AAAUSDC"), ((D(bid), D("2000")),), ((D("10"), D("1000")),))
        )
        state.world.advance(timedelta(seconds=1 + n))
    stops = [
        m for m in sent(state) if isinstance(m, RedemptionFill) and m.status.value == "stopped"
    ]
    assert len(stops) == 1 and stops[0].reason is not None
    assert stops[0].reason.startswith("floor 1000.000000 USDC is above the 991.507499 USDC net")
    assert stops[0].reason_code is HoldCode.BELOW_FLOOR
    # On the wire: the code for programs beside the text for people; the SDK reads both.
    msg_type, _, body = redemption_body(stops[0])
    assert (body["reason_code"], body["reason"]) == ("below_floor", stops[0].reason)
    decoded = decode_redemption(msg_type, body, {})
    assert (decoded.reason_code, decoded.reason) == ("below_floor", stops[0].reason)


def test_a_hold_is_told_again_when_its_code_changes() -> None:
    # Stopped by the floor; then the bids vanish (no sell price: escrowed, another code);
    # then they come back under the floor: stopped again. One report per (status, code).
    state = world()
    floor_held(state, "alice")
    mark = len(state.world.log.messages)
    for bids in ((), ((D("9.89"), D("2000")),), ((D("9.88"), D("2000")),)):
        state.world.submit(BookSnapshot(instrument("AAAUSDC"), bids, ((D("10"), D("1000")),)))
        state.world.advance(timedelta(seconds=1))
    holds = [
        (m.status, m.reason_code, m.reason)
        for m in sent(state, mark)
        if isinstance(m, RedemptionFill)
    ]
    assert [(status, code) for status, code, _ in holds] == [
        (RedemptionStatus.ESCROWED, HoldCode.NO_PRICE),
        (RedemptionStatus.STOPPED, HoldCode.BELOW_FLOOR),
    ]
    assert holds[0][2] == "no price for binance:AAAUSDC"


def test_a_repeated_burn_confirmation_counts_once() -> None:
    state = world()
    state.world.submit(order("alice", state, "S1", Side.SELL, "25"))
    state.world.advance(timedelta(seconds=1.3))  # sold; burn R1-B2 asked, not yet confirmed
    state.world.submit(BurnConfirmed(PaymentId("R1-B2")))
    state.world.submit(BurnConfirmed(PaymentId("R1-B2")))
    assert [a.code for a in state.world.log.alerts] == ["unknown_burn"]
    state.world.advance(timedelta(seconds=5))
    invoice = sent(state)[-1]
    assert isinstance(invoice, RedemptionInvoice) and invoice.redeemed_quantity == D(25)
    assert len(invoice.burns) == 1


def test_a_withdrawal_of_unknown_outcome_is_asked_about_and_resent_only_under_its_id() -> None:
    state = world(withdraw_delay="1h")  # the venue takes its time: the test answers for it
    alice = state.client("alice")
    state.world.submit(order("alice", state, "S1", Side.SELL, "25"))
    state.world.advance(timedelta(seconds=3))  # sold, burned, withdrawal R1 sent
    redemption = state.world.engine.redemptions.get(alice, ClientOrderId("S1"))
    assert redemption is not None and redemption.state is RedemptionState.WITHDRAWING
    engine = state.world.engine
    (query,) = engine.handle(HopStatusUnknown(TransferId("R1"), "timeout"))
    assert query == QueryHop(TransferId("R1"), "withdraw", D("991.5075"))
    (resend,) = engine.handle(HopReport(TransferId("R1"), HopState.NOT_FOUND))
    assert isinstance(resend, RouteCollateral) and resend.transfer_id == "R1"
    assert engine.handle(HopReport(TransferId("R1"), HopState.PENDING)) == []
    (payout,) = engine.handle(HopReport(TransferId("R1"), HopState.DONE, D("990.5"), D(1)))
    assert isinstance(payout, WithdrawCollateral)
    assert (payout.withdrawal_id, payout.amount) == ("R1", D("990.5"))
    assert engine.handle(HopCompleted(TransferId("R1"), D("990.5"), D(1))) == []  # a repeat
    assert redemption.withdrawal_fee == D("1.0075")


def test_a_withdrawal_reported_pending_is_asked_about_again_then_alerted_then_paid() -> None:
    # The withdrawal R1 takes an hour on the venue; its first outcome timed out and the chain
    # said PENDING. The core asks again 30 s after each PENDING answer (the chain answers
    # PENDING 1 s after each question: at 30, 61 and 92 s) until it has been pending for
    # 2 minutes, alerts once and asks no more; the completion, pushed after the hour, still
    # pays the client.
    state = world(withdraw_delay="1h", hop_query_interval="30s", hop_pending_alert="2m")
    alice = state.client("alice")
    r1 = TransferId("R1")
    state.world.submit(order("alice", state, "S1", Side.SELL, "25"))
    state.world.advance(timedelta(seconds=3))  # sold, burned, withdrawal R1 sent
    redemption = state.world.engine.redemptions.get(alice, ClientOrderId("S1"))
    assert redemption is not None and redemption.state is RedemptionState.WITHDRAWING
    engine = state.world.engine
    (query,) = engine.handle(HopStatusUnknown(r1, "timeout"))
    assert engine.handle(HopReport(r1, HopState.PENDING)) == []
    asked: list[tuple[timedelta, QueryHop]] = []
    start = state.world.clock.now()

    def answer(command: Command) -> None:
        if isinstance(command, QueryHop):
            asked.append((state.world.clock.now() - start, command))
            state.world.schedule(timedelta(seconds=1), HopReport(r1, HopState.PENDING))

    state.world.on_command = answer
    state.world.advance(timedelta(minutes=5))
    # The same question each time (never a resend), one interval after each PENDING answer.
    assert [q for _, q in asked] == [query] * 3
    assert [t.total_seconds() for t, _ in asked] == [30, 61, 92]
    (alert,) = [a for a in state.world.log.alerts if a.code == "hop_pending"]
    assert "R1" in alert.message
    assert engine.pending_hops.asking() == [r1]  # watched, no longer asked
    state.world.advance(timedelta(hours=1))  # the push arrives
    assert redemption.state is RedemptionState.PAID and state.world.chain.paid[alice] > 0
    assert engine.pending_hops.asking() == []


def test_a_sell_quote_expects_the_withdrawal_fee_of_the_last_payout_on_the_clients_chain() -> None:
    # Before any payout no withdrawal fee is expected; alice's redemption then withdraws
    # 991.5075, receives 990.5 and pays out with a 0.4975 fee: 1.505 of 991.5075, read as a
    # fixed fee and as a rate, the larger for each amount (engine/sell_proceeds.py).
    state = world(withdraw_delay="1h")
    engine = state.world.engine
    settlement = engine.redemptions.settlement
    alice = state.client("alice")
    assert settlement.expected_withdrawal_fee(alice, D(1000)) == 0
    state.world.submit(order("alice", state, "S1", Side.SELL, "25"))
    state.world.advance(timedelta(seconds=3))  # sold, burned, withdrawal R1 sent
    r1 = TransferId("R1")
    (payout,) = engine.handle(HopReport(r1, HopState.DONE, D("990.5"), D(1)))
    assert isinstance(payout, WithdrawCollateral)
    engine.handle(WithdrawalCompleted(payout.withdrawal_id, TxHash("0x01"), D("0.4975")))
    redemption = engine.redemptions.get(alice, ClientOrderId("S1"))
    assert redemption is not None and redemption.state is RedemptionState.PAID
    assert settlement.expected_withdrawal_fee(alice, D("991.5075")) == D("1.505")
    assert settlement.expected_withdrawal_fee(alice, D(100)) == D("1.505")  # as a fixed fee
    double = settlement.expected_withdrawal_fee(alice, D("1983.015"))  # as a rate: 2 × 1.505
    assert double == D("3.01")
    assert settlement.expected_withdrawal_fee((alice[0] + 1, alice[1]), D(100)) == 0
    # bob's sell quote of 10 units in the next tick: V = 10 × 39.7 = 397 (P = 2 × 9.9 + 19.9,
    # threshold 0), withdrawn at least 397 × (2 − 1.001) − 0.000001 = 396.602999, less the
    # expected 1.505 (above 396.602999 × 1.505 / 991.5075 = 0.60…): 395.097999.
    state.world.submit(
        NewQuoteRequest(state.client("bob"), ClientQuoteId("q"), IDX, Side.SELL, D(10))
    )
    mark = len(state.world.log.messages)
    state.world.advance(timedelta(milliseconds=100))
    (answer,) = [m for m in sent(state, mark) if isinstance(m, IndexQuoteResponse)]
    assert answer.index_price == D("39.7")
    assert answer.expected_proceeds == D("395.097999")


def test_a_client_of_another_chain_is_paid_there_after_the_proceeds_cross_back() -> None:
    # return_hops: a client of alice's chain is paid from its designation, over across_back.
    state = world(withdraw_delay="1h")
    engine = state.world.engine
    alice = state.client("alice")
    source = Designation("EVM:ARBITRUM:USDC")
    settlement = engine.redemptions.settlement
    hops = ((alice[0], "across_back", str(source)),)
    settlement.config = replace(settlement.config, return_hops=hops)
    state.world.submit(order("alice", state, "S1", Side.SELL, "25"))
    state.world.advance(timedelta(milliseconds=100))  # the escrow asked of the chain
    # The chain's answer names the escrow's block (the simulated chain's names none): the
    # return hop's look-ups on the trading chain start there (issue 11).
    engine.handle(IndexEscrowed(PaymentId("R1"), TxHash("0xesc"), 4_321))
    state.world.advance(timedelta(seconds=3))  # sold, burned, withdrawal R1 sent
    redemption = engine.redemptions.get(alice, ClientOrderId("S1"))
    assert redemption is not None and redemption.escrow_block == 4_321
    back = TransferId("R1~return")
    (cross,) = engine.handle(HopCompleted(TransferId("R1"), D("990.5"), D(1)))
    assert cross == RouteCollateral(
        back, alice, "across_back", Designation("EVM:BASE:USDC"), source, D("990.5"), back,
        from_block=4_321,
    )  # fmt: skip
    assert redemption.state is RedemptionState.BRIDGING
    assert engine.redemptions.awaits_chain(cross)  # recovery would send it again
    assert engine.handle(HopCompleted(TransferId("R1"), D("990.5"), D(1))) == []  # a repeat
    (query,) = engine.handle(HopStatusUnknown(back, "timeout"))
    assert query == QueryHop(back, "across_back", D("990.5"))
    assert engine.handle(HopReport(back, HopState.NOT_FOUND)) == [cross]  # the same id again
    (payout,) = engine.handle(HopCompleted(back, D("990.3"), D("0.2")))
    assert payout == WithdrawCollateral(
        WithdrawalId("R1"), alice, source, Address(alice[1]), D("990.3")
    )
    assert engine.handle(HopCompleted(back, D("990.3"), D("0.2"))) == []  # a repeat
    # The bridge's 0.2 is the client's, beside the exchange's 1.0075 withdrawal fee.
    commands = engine.handle(WithdrawalCompleted(WithdrawalId("R1"), TxHash("0xpay"), D(0)))
    (invoice,) = [c.message for c in commands if isinstance(c, SendToClient)]
    assert isinstance(invoice, RedemptionInvoice)
    assert (invoice.withdrawal_fee, invoice.net_paid) == (D("1.2075"), D("990.3"))
    assert invoice.net_paid == (
        invoice.gross_proceeds
        - invoice.exchange_fee
        - invoice.redemption_fee
        - invoice.withdrawal_fee
    )
