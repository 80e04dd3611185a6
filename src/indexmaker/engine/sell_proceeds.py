"""What a sale pays the client at least: the figure a sell's floor and a sell quote use (issue 12).

A redemption pays down(gross − exchange fee) − withdrawal fee (engine/redemption_reports.py;
the redemption fee is 0). Before a sale its least value is estimated from V = units × P, P the
index's value at the sell limit prices (fills never go below a limit):

- exchange fee: at most V × (fee_factor − 1) (fee_factor − 1 is the fee rate the service
  allows for, the buy side's P × q × fee_factor mirrored), so the exchange's part pays at least
  V × (2 − fee_factor);
- `least_withdrawn`: that, rounded down to the micro-USDC, less one micro-USDC (a margin kept
  from when the gross was rounded down and the fee up on their own; the net rounded down once
  is never below the estimate);
- `WithdrawalFees.expected`: what withdrawing it and paying it out costs on the client's chain
  (the venue's withdrawal fee, a return bridge's fee, the payout's gas), rounded up.

The net is non-decreasing in what the sale really brings (fee rates below 1), so a sale at or
above the limits with fees within these estimates pays at least the estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_CEILING, Context, Decimal, DivisionByZero, InvalidOperation, Overflow

from indexmaker.core.money import (
    EXACT_CONTEXT,
    USDC_QUANTUM,
    exact_add,
    round_up_to_step,
    round_usdc_down,
)

ZERO = Decimal(0)
TWO = Decimal(2)
# A fee estimate is a quotient: rounded toward +inf, never below the exact share.
_UP_CONTEXT = Context(
    prec=34, rounding=ROUND_CEILING, traps=[InvalidOperation, DivisionByZero, Overflow]
)


def least_withdrawn(value: Decimal, fee_factor: Decimal) -> Decimal:
    """USDC withdrawn at least from a sale of value `value` (units × P at the sell limits,
    USDC), the exchange charging at most (fee_factor − 1) of it: down(value × (2 − fee_factor))
    − 1 micro-USDC (the withdrawal's rounding), never below 0. Exact under any context."""
    kept = EXACT_CONTEXT.multiply(value, EXACT_CONTEXT.subtract(TWO, fee_factor))
    least = EXACT_CONTEXT.subtract(round_usdc_down(kept), USDC_QUANTUM)
    return least if least > 0 else ZERO


def least_net(
    value: Decimal, fee_factor: Decimal, withdrawal_fee: Callable[[Decimal], Decimal] | None
) -> Decimal:
    """USDC paid to the client at least for a sale of value `value` (see the module): the
    least withdrawn less the expected withdrawal fee of that amount rounded up to the
    micro-USDC, never below 0. Sell floors (redemption_candidates.py) and sell quotes'
    expected_proceeds (quotes.py) both use it."""
    withdrawn = least_withdrawn(value, fee_factor)
    fee = ZERO
    if withdrawal_fee is not None and withdrawn > 0:
        fee = round_up_to_step(withdrawal_fee(withdrawn), USDC_QUANTUM)
    net = EXACT_CONTEXT.subtract(withdrawn, fee)
    return net if net > 0 else ZERO


class WithdrawalFees:
    """The withdrawal fee (USDC) the engine expects for a payout of the proceeds: venue
    withdrawal, return bridge (if the client's chain is paid over one) and payout gas together,
    as `Redemption.withdrawal_fee` records them.

    For an amount A on the client's chain: the larger of the configured fee (`fixed` + `rate`
    × A: [solver] withdrawal_fee and withdrawal_fee_rate) and what the last paid redemption of
    that chain id suggests: its fee f for W withdrawn, read both as a fixed fee (f) and as a
    rate (A × f / W). The larger of those two is never below f0 + r × A for any fee of the
    form f0 + r × W, so an unchanged venue/bridge/gas schedule never costs more than expected.
    Before the first payout to a chain, `seed` (the return hop's known cost for a client of a
    chain paid over one: `SolverConfig.return_hop_fees`) is added to the configured fee: that
    payout's fee includes the crossing. 0 on a chain with no payout yet, no configured fee and
    no return hop.
    """

    def __init__(self, fixed: Decimal = ZERO, rate: Decimal = ZERO) -> None:
        self._fixed = fixed
        self._rate = rate
        self._last: dict[int, tuple[Decimal, Decimal]] = {}  # chain id → (withdrawn, fee)

    def record(self, chain_id: int, withdrawn: Decimal, fee: Decimal) -> None:
        """A redemption of a client of `chain_id` was paid: `withdrawn` USDC left the
        exchange and `fee` of it did not reach the client."""
        if withdrawn > 0:
            self._last[chain_id] = (withdrawn, fee)

    def expected(self, chain_id: int, amount: Decimal, seed: Decimal = ZERO) -> Decimal:
        """USDC the payout of `amount` to a client of `chain_id` is expected to cost (exact or
        rounded up, never below the estimate's exact value); `seed` (USDC, >= 0) counts only
        until a payout to that chain has been recorded."""
        configured = exact_add(self._fixed, EXACT_CONTEXT.multiply(self._rate, amount))
        last = self._last.get(chain_id)
        if last is None:
            return exact_add(configured, seed)
        withdrawn, fee = last
        as_rate = _UP_CONTEXT.divide(EXACT_CONTEXT.multiply(amount, fee), withdrawn)
        return max(configured, fee, as_rate)
