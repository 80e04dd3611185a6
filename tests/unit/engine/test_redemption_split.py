"""Issue 10: a redemption a restart split over two sell batches ends as one sold in one batch.

A kill between a sell batch's commit and its exchange orders leaving makes recovery find
them unknown at the venue: the batch completes with what it had (units sold ahead) and the
next batch engages the rest, to 34 digits. The crash harness (tests/crash) found the
redemption then burned one unit of the token's 18th decimal less and returned it, and its
invoice's average sale prices off in the 34th digit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from indexmaker.core.chain_events import BurnIndex, ReleaseIndex
from indexmaker.core.events import Command
from indexmaker.core.ids import (
    ClientOrderId,
    Designation,
    LotId,
    PaymentId,
    Symbol,
    client_key,
    instrument,
)
from indexmaker.core.money import MONEY_CONTEXT, exact_add, money_context
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.redemption_reports import build_redemption_invoice
from indexmaker.engine.redemption_settlement import RedemptionSettlement
from indexmaker.model.redemption import LotDisposal, Redemption, RedemptionState

D = Decimal
NOW = datetime(2026, 11, 30, tzinfo=UTC)
QUANTITY = D("0.000020504574850")  # the crash run's second sell (15 decimals, as asked)


def _redemption() -> Redemption:
    redemption = Redemption(
        PaymentId("R2"), client_key(42161, "0x" + "c" * 40), ClientOrderId("c3-s"),
        Symbol("SYL2"), QUANTITY, QUANTITY, None, NOW, 1,
    )  # fmt: skip
    redemption.move_to(RedemptionState.READY)
    return redemption


def _settlement(out: list[Command]) -> RedemptionSettlement:
    return RedemptionSettlement(
        SolverConfig(),
        out,
        {},
        lambda *_: None,
        lambda _: None,
        Designation("BINANCE:ACCOUNT:USDC"),
        Designation("EVM:BASE:USDC"),
    )


def test_a_redemption_sold_over_two_batches_burns_all_it_sold_and_returns_nothing() -> None:
    out: list[Command] = []
    settlement = _settlement(out)
    redemption = _redemption()
    with money_context():
        # Batch 1 sold what was sold ahead (34 significant digits, far below the 18th
        # decimal); batch 2 engaged the rest as the 34-digit context gave it, and sold it.
        first = D("1.206606523955878977104429954778901E-10")  # 34 digits, down to 1e-43
        rest = MONEY_CONTEXT.subtract(QUANTITY, first)
        redemption.sold = first
        settlement.burn(redemption, 14)
    redemption.sold = exact_add(first, rest)  # as the allocation books it (sell_batches)
    assert D(0) < QUANTITY - redemption.sold < D("1E-38")  # a hair under: not a sale
    settlement.burn(redemption, 15)
    burns = [c for c in out if isinstance(c, BurnIndex)]
    assert [b.payment_id for b in burns] == ["R2-B14", "R2-B15"]
    assert burns[0].quantity == D("1.20660652E-10")  # floor to the token's 18 decimals
    assert sum(b.quantity for b in burns) == QUANTITY == redemption.burn_requested
    settlement.close(redemption, "sold")
    assert not [c for c in out if isinstance(c, ReleaseIndex)]


def test_an_unsold_rest_above_dust_is_not_burned() -> None:
    out: list[Command] = []
    redemption = _redemption()
    redemption.sold = QUANTITY - D("1E-20")
    _settlement(out).burn(redemption, 3)
    (burn,) = [c for c in out if isinstance(c, BurnIndex)]
    assert burn.quantity == QUANTITY - D("1E-18")


def _invoice_prices(pieces: list[Decimal]) -> list[Decimal]:
    redemption = _redemption()
    asset = instrument("OPUSDC")
    for quantity in pieces:
        redemption.disposals.append(
            LotDisposal(
                LotId(4), asset, quantity, D("412.0794"), D(0), D("411.75"), D("0.0001"), False
            )
        )
    redemption.sold = redemption.gross = D(1)
    with money_context():
        invoice = build_redemption_invoice(redemption, NOW)
    return [lot.sale_price for lot in invoice.lots]


def test_a_lot_sold_in_two_pieces_at_one_price_is_invoiced_at_that_price() -> None:
    whole = D("0.01799693669191158421204807500000000")
    first = D("2.224491460308627041518584171248580E-7")  # the piece batch 1 sold ahead
    assert _invoice_prices([whole]) == _invoice_prices([first, whole - first]) == [D("411.75")]
