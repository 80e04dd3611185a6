"""A sell's floor is what the client is paid (issue 12): checked against the least net of the
exchange, redemption and withdrawal fees (engine/sell_proceeds.py), the same figure a sell
quote's expected_proceeds gives."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from indexmaker.core.events import (
    IndexQuoteResponse,
    NewQuoteRequest,
    RedemptionFill,
    RedemptionInvoice,
)
from indexmaker.core.ids import ClientQuoteId
from indexmaker.core.money import USDC_QUANTUM, round_up_to_step, round_usdc_down
from indexmaker.engine.sell_proceeds import WithdrawalFees, least_net, least_withdrawn
from indexmaker.model.side import Side
from indexmaker.sim.chain import BridgeTerms
from indexmaker.sim.scenario import ScenarioRun

from .sell_setup import IDX, order, sent, world

D = Decimal
MICRO = D("0.000001")


def _charge_withdrawals(state: ScenarioRun, fee: str) -> None:
    """The venue's withdrawal (the `withdraw` hop) keeps `fee` USDC from now on."""
    state.world.chain.bridges["withdraw"] = BridgeTerms(fixed_fee=D(fee))


def _stops(state: ScenarioRun) -> list[RedemptionFill]:
    return [m for m in sent(state) if isinstance(m, RedemptionFill) and m.status.value == "stopped"]


def test_least_withdrawn_keeps_one_micro_usdc_for_the_withdrawals_rounding() -> None:
    # 25 units at P = 39.7: V = 992.5, the exchange keeps at most 0.1 %: 992.5 × 0.999 =
    # 991.5075, less 0.000001.
    assert least_withdrawn(D("992.5"), D("1.001")) == D("991.507499")
    # Why the micro-USDC: a gross of 1.0000005 withdraws down(1.0000005) − up(0.0010000005)
    # = 1 − 0.001001 = 0.998999, one micro-USDC below down(1.0000005 × 0.999) = 0.999.
    assert least_withdrawn(D("1.0000005"), D("1.001")) == D("0.998999")
    assert least_withdrawn(D("0.000001"), D("1.001")) == 0  # never negative
    # A withdrawal fee of 1.5 + 0.1 %: 991.507499 − up(1.5 + 0.991507499) = 989.015991.
    assert least_net(D("992.5"), D("1.001"), lambda usdc: D("1.5") + usdc / 1000) == D("989.015991")
    assert least_net(D("1"), D("1.001"), lambda usdc: D(5)) == 0


@given(
    value=st.decimals(min_value=D("0.000001"), max_value=D(10**7), places=9),
    above=st.decimals(min_value=D(0), max_value=D(1000), places=9),
    factor=st.decimals(min_value=D(1), max_value=D("1.01"), places=6),
    charged=st.decimals(min_value=D(0), max_value=D(1), places=6),
)
def test_a_sale_at_or_above_the_limits_withdraws_at_least_the_estimate(
    value: Decimal, above: Decimal, factor: Decimal, charged: Decimal
) -> None:
    # The sale brings G >= V and the exchange charges a share of it up to fee_factor − 1;
    # the withdrawal sends down(G) − up(fee) (redemption_reports.proceeds_parts).
    gross = value + above
    fee = gross * (factor - 1) * charged
    withdrawn = round_usdc_down(gross) - round_up_to_step(fee, USDC_QUANTUM)
    assert withdrawn >= least_withdrawn(value, factor)


@given(
    fixed=st.decimals(min_value=D(0), max_value=D(50), places=6),
    rate=st.decimals(min_value=D(0), max_value=D("0.05"), places=6),
    seen=st.decimals(min_value=D(1), max_value=D(10**6), places=6),
    amount=st.decimals(min_value=D(0), max_value=D(10**6), places=6),
)
def test_the_fee_expected_from_the_last_payout_covers_an_unchanged_fee_schedule(
    fixed: Decimal, rate: Decimal, seen: Decimal, amount: Decimal
) -> None:
    fees = WithdrawalFees()
    fees.record(8453, seen, fixed + rate * seen)
    assert fees.expected(8453, amount) >= fixed + rate * amount


def test_configured_and_observed_withdrawal_fees_per_client_chain() -> None:
    fees = WithdrawalFees(D(1), D("0.001"))
    assert fees.expected(42161, D(1000)) == D(2)  # 1 + 0.1 % of 1000
    fees.record(42161, D("991.5075"), D("1.505"))
    assert fees.expected(42161, D(100)) == D("1.505")  # the payout's fee above 1.1 configured
    assert fees.expected(42161, D(1000)) == D(2)  # configured above 1.505 and 1.517…
    assert fees.expected(42161, D("3966.03")) == D("6.02")  # as a rate: 4 × 1.505 > 4.96603
    assert fees.expected(8453, D(100)) == D("1.1")  # nothing seen on that chain


def test_a_floor_at_the_net_sells_and_is_paid_one_a_micro_usdc_above_stops() -> None:
    # [solver] withdrawal_fee = 1.5, the venue's withdrawal keeps 1.5. alice's 25 units at the
    # sell limits P = 2 × 9.9 + 19.9 = 39.7 (threshold 0): V = 992.5; least withdrawn 992.5 ×
    # (2 − 1.001) − 0.000001 = 991.507499; least net 991.507499 − 1.5 = 990.007499.
    floor = D("990.007499")
    above = world(withdrawal_fee="1.5")
    _charge_withdrawals(above, "1.5")
    above.world.submit(order("alice", above, "S1", Side.SELL, "25", floor=str(floor + MICRO)))
    above.world.advance(timedelta(seconds=8))
    (stop,) = _stops(above)
    assert stop.sold_quantity == 0 and above.world.log.exchange_orders[2:] == []
    assert stop.reason == (
        "floor 990.007500 USDC is above the 990.007499 USDC net of fees its 25 units would pay "
        "at the bids within the limit; not sold"
    )
    state = world(withdrawal_fee="1.5")
    _charge_withdrawals(state, "1.5")
    state.world.submit(order("alice", state, "S1", Side.SELL, "25", floor=str(floor)))
    state.world.advance(timedelta(seconds=8))
    assert _stops(state) == []
    invoice = sent(state)[-1]
    assert isinstance(invoice, RedemptionInvoice) and invoice.redeemed_quantity == D(25)
    # Sold at the limits: gross 992.5, the exchange's 0.1 % = 0.9925, withdrawn 991.5075, of
    # which 1.5 stays with the venue: 990.0075 paid, the micro-USDC kept for the rounding above
    # the floor (gross fell on a micro-USDC step here).
    assert (invoice.gross_proceeds, invoice.exchange_fee) == (D("992.5"), D("0.9925"))
    assert (invoice.withdrawal_fee, invoice.net_paid) == (D("1.5"), D("990.0075"))
    assert invoice.net_paid == state.world.chain.paid[state.client("alice")]
    assert D(0) <= invoice.net_paid - floor <= MICRO


def test_a_floor_set_from_a_quote_counts_the_last_payouts_withdrawal_fee() -> None:
    # Nothing configured: bob's redemption is paid first and the venue keeps 1.5 of its
    # 991.5075. alice's quote of 25 units then expects 991.507499 − 1.5 (the larger of 1.5 and
    # 991.507499 × 1.5 / 991.5075); a floor set to it sells and is paid.
    state = world()
    _charge_withdrawals(state, "1.5")
    state.world.submit(order("bob", state, "S1", Side.SELL, "25"))
    state.world.advance(timedelta(seconds=8))
    assert state.world.chain.paid[state.client("bob")] == D("990.0075")
    alice = state.client("alice")
    state.world.submit(NewQuoteRequest(alice, ClientQuoteId("q"), IDX, Side.SELL, D(25)))
    state.world.advance(timedelta(milliseconds=100))
    (quote,) = [m for m in sent(state) if isinstance(m, IndexQuoteResponse)]
    assert quote.expected_proceeds == D("990.007499")
    state.world.submit(
        order("alice", state, "S2", Side.SELL, "25", floor=str(quote.expected_proceeds))
    )
    state.world.advance(timedelta(seconds=8))
    assert _stops(state) == []
    assert state.world.chain.paid[alice] == D("990.0075")


def test_a_withdrawal_fee_raised_after_the_check_is_paid_below_the_floor() -> None:
    # What docs/decisions.md states: the floor is checked before the sale; a fee the venue
    # raises between the check and the payout comes off what is paid (the proceeds are never
    # held back), the invoice shows it and the next floors expect it.
    state = world(withdrawal_fee="1.5")
    _charge_withdrawals(state, "1.5")
    state.world.submit(order("alice", state, "S1", Side.SELL, "25", floor="990.007499"))
    state.world.advance(timedelta(seconds=1.3))  # checked and sold; not yet withdrawn
    assert state.world.log.exchange_orders[2:] != []
    _charge_withdrawals(state, "2")
    state.world.advance(timedelta(seconds=8))
    invoice = sent(state)[-1]
    assert isinstance(invoice, RedemptionInvoice)
    assert (invoice.withdrawal_fee, invoice.net_paid) == (D(2), D("989.5075"))
    fees = state.world.engine.redemptions.settlement
    assert fees.expected_withdrawal_fee(state.client("bob"), D(100)) == D(2)


def _paid_over_a_return_hop(state: ScenarioRun, seeded: bool) -> None:
    """Clients of the scenario's chain are paid on another chain after `across_back`, which
    keeps 0.25 USDC; `seeded`: serve's wiring, the hop's known cost in return_hop_fees."""
    settlement = state.world.engine.redemptions.settlement
    chain_id = state.client("alice")[0]
    hops = ((chain_id, "across_back", "EVM:ARBITRUM:USDC"),)
    fees = ((chain_id, D("0.25")),) if seeded else ()
    settlement.config = replace(settlement.config, return_hops=hops, return_hop_fees=fees)
    state.world.chain.bridges["across_back"] = BridgeTerms(fixed_fee=D("0.25"))


def _quote(state: ScenarioRun, name: str, qid: str) -> IndexQuoteResponse:
    client = state.client(name)
    state.world.submit(NewQuoteRequest(client, ClientQuoteId(qid), IDX, Side.SELL, D(25)))
    state.world.advance(timedelta(milliseconds=100))
    (quote,) = [m for m in sent(state) if isinstance(m, IndexQuoteResponse)]
    return quote


def test_a_first_payout_over_the_return_hop_is_expected_with_the_hops_cost() -> None:
    # [solver] withdrawal_fee 1.5 (the venue's, charged), the way back keeps 0.25, known before
    # any payout: 25 units at P = 39.7, least withdrawn 991.507499 (as above); expected fee
    # 1.5 + 0.25 = 1.75, least net 989.757499: the quote's figure and the floor's.
    state = world(withdrawal_fee="1.5")
    _charge_withdrawals(state, "1.5")
    _paid_over_a_return_hop(state, seeded=True)
    alice = state.client("alice")
    settlement = state.world.engine.redemptions.settlement
    assert settlement.expected_withdrawal_fee(alice, D("991.507499")) == D("1.75")
    quote = _quote(state, "alice", "q")
    assert quote.expected_proceeds == D("989.757499")
    state.world.submit(order("alice", state, "S1", Side.SELL, "25", floor="989.757499"))
    state.world.advance(timedelta(seconds=12))
    assert _stops(state) == []
    invoice = sent(state)[-1]
    assert isinstance(invoice, RedemptionInvoice) and invoice.redeemed_quantity == D(25)
    # gross 992.5 − 0.9925 exchange fee = 991.5075 withdrawn; the venue keeps 1.5 and the
    # bridge back 0.25: the fee charged is the 1.75 expected, 989.7575 paid on the client's
    # chain, the micro-USDC of the rounding above the floor.
    assert (invoice.withdrawal_fee, invoice.net_paid) == (D("1.75"), D("989.7575"))
    assert state.world.chain.paid[alice] == D("989.7575")
    # After it, the payout seen is the estimate (fixed 1.75 or its rate): the seed is not
    # counted twice.
    assert settlement.expected_withdrawal_fee(alice, D("991.5075")) == D("1.75")


def test_without_the_return_hops_cost_a_floor_above_the_net_sells_and_is_paid_below_it() -> None:
    # What serve did before return_hop_fees: the first payout's estimate left out the way back
    # (1.5 expected, 1.75 charged), so a floor of 989.8 (below 990.007499, above the 989.7575
    # the sale pays) was sold and paid 989.7575. Seeded, the same floor stops before selling.
    unseeded = world(withdrawal_fee="1.5")
    _charge_withdrawals(unseeded, "1.5")
    _paid_over_a_return_hop(unseeded, seeded=False)
    assert _quote(unseeded, "alice", "q").expected_proceeds == D("990.007499")
    unseeded.world.submit(order("alice", unseeded, "S1", Side.SELL, "25", floor="989.8"))
    unseeded.world.advance(timedelta(seconds=12))
    invoice = sent(unseeded)[-1]
    assert isinstance(invoice, RedemptionInvoice) and invoice.net_paid == D("989.7575")
    seeded = world(withdrawal_fee="1.5")
    _charge_withdrawals(seeded, "1.5")
    _paid_over_a_return_hop(seeded, seeded=True)
    seeded.world.submit(order("alice", seeded, "S1", Side.SELL, "25", floor="989.8"))
    seeded.world.advance(timedelta(seconds=12))
    (stop,) = _stops(seeded)
    assert stop.sold_quantity == 0 and seeded.world.log.exchange_orders[2:] == []
    assert "above the 989.757499 USDC net of fees" in stop.reason
