"""Per-lot fees on an invoice add up to its exchange fee (SPEC §4: the invoice lists every lot)."""

from decimal import Decimal, localcontext

from hypothesis import given
from hypothesis import strategies as st

from indexmaker.core.money import round_usdc
from indexmaker.engine.invoices import split_fee


def test_rounded_lot_fees_add_up_to_the_invoice_fee() -> None:
    # Three lots of 0.0000014 each: rounded one by one they give 0.000003, the total 0.000004.
    shares = [Decimal("0.0000014")] * 3 + [Decimal("0.0000002")]
    total = round_usdc(sum(shares, Decimal(0)))
    fees = split_fee(total, shares)
    assert total == Decimal("0.000004")
    assert sum(fees, Decimal(0)) == total
    assert fees == [Decimal("0.000002"), Decimal("0.000001"), Decimal("0.000001"), Decimal("0")]


@given(
    st.lists(
        st.decimals(min_value=0, max_value=5, places=12, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=81,
    ),
    st.integers(min_value=3, max_value=34),
)
def test_split_is_exact_and_within_a_micro_usdc_of_each_share(
    shares: list[Decimal], precision: int
) -> None:
    total = round_usdc(sum(shares, Decimal(0)))
    with localcontext() as ctx:
        ctx.prec = precision  # a hostile caller's context changes nothing
        fees = split_fee(total, shares)
    assert sum(fees, Decimal(0)) == total
    for fee, share in zip(fees, shares, strict=True):
        assert abs(fee - share) < Decimal("0.000001")
