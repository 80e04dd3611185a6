"""Lot quantities and invoice prices at a fixed, named precision (issue 12, house rule "every
rounding explicit, named, exact under any context"): core/money.py asset_share_down,
invoice_price and canonical; engine/redemption_reports.py build_redemption_invoice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, localcontext

from indexmaker.core.ids import ClientOrderId, InstrumentId, LotId, PaymentId, Symbol, client_key
from indexmaker.core.money import (
    ASSET_QUANTUM,
    asset_share_down,
    canonical,
    invoice_price,
    money_context,
)
from indexmaker.engine.redemption_reports import build_redemption_invoice
from indexmaker.model.redemption import LotDisposal, Redemption

D = Decimal
_AT = datetime(2026, 1, 1, tzinfo=UTC)
_BTC = InstrumentId("binance", "BTCUSDC")


def test_a_third_of_a_lot_has_no_digit_past_the_asset_quantum_and_never_exceeds_the_share() -> None:
    with money_context():
        units = D(1) / D(3)  # 34 threes: what units_at gives a 1/3 fill
    share = asset_share_down(units, D("0.00016591101016525287"))
    exact = units * D("0.00016591101016525287")  # the default context, to compare
    assert share.as_tuple().exponent >= ASSET_QUANTUM.as_tuple().exponent
    assert share == D("0.000055303670055084")  # the reviewer's 0.0000553036700550842899…
    assert share <= exact < share + ASSET_QUANTUM
    with localcontext() as ctx:
        ctx.prec = 5  # a caller's small context changes nothing
        assert asset_share_down(units, D("0.00016591101016525287")) == share


def test_invoice_prices_and_quantities_have_one_form() -> None:
    assert invoice_price(D("10"), D("3")) == D("3.333333333333")
    assert invoice_price(D("10"), D("4")) == D("2.5")  # no trailing zeros
    assert str(canonical(D("0.0008848587208813486400000000000000000"))) == "0.00088485872088134864"
    assert canonical(D("0E-18")) == 0 and str(canonical(D("0E-18"))) == "0"


def _redemption(pieces: list[Decimal], price: Decimal) -> Redemption:
    client = client_key(1, "0x" + "11" * 20)
    redemption = Redemption(
        PaymentId("R1"), client, ClientOrderId("S"), Symbol("IDX"), D(1), D(1), None, _AT, 1
    )
    for piece in pieces:
        redemption.disposals.append(
            LotDisposal(LotId(242), _BTC, piece, D("100000"), D(0), price, D("0.001"))
        )
    redemption.sold = D(1)
    redemption.gross = sum((p * price for p in pieces), D(0))
    redemption.exchange_fee = D("0.001") * len(pieces)
    return redemption


def test_the_invoice_reads_the_same_under_a_small_context_and_after_a_restart() -> None:
    price = D("109955.9938417133866912345")  # a fill price with more digits than the quantum
    # The same lot sold in two pieces; after a restart the replay gives the same values in
    # another form (trailing zeros), as the reviewer saw.
    before = [D("0.00044242936044067432"), D("0.00044242936044067432")]
    after = [D("0.000442429360440674320000000000000"), D("0.00044242936044067432000")]
    with money_context():
        reference = build_redemption_invoice(_redemption(before, price), _AT)
    with localcontext() as ctx:
        ctx.prec = 10
        small = build_redemption_invoice(_redemption(before, price), _AT)
        restarted = build_redemption_invoice(_redemption(after, price), _AT)
    assert small == reference
    (lot,) = reference.lots
    assert f"{lot.quantity:f}" == "0.00088485872088134864"
    assert f"{lot.sale_price:f}" == "109955.993841713387"  # 12 decimals, half-even, canonical
    for invoice in (small, restarted):
        (other,) = invoice.lots
        assert f"{other.quantity:f} {other.sale_price:f}" == f"{lot.quantity:f} {lot.sale_price:f}"
