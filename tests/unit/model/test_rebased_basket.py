"""model/rebalance.py rebased_basket: the next basket version does not depend on the
caller's Decimal context (a proposal replayed from the journal gives the same basket)."""

from __future__ import annotations

from decimal import Context, Decimal, localcontext

from indexmaker.core.ids import Symbol, instrument
from indexmaker.core.money import money_context
from indexmaker.core.rebalance_events import RebalanceWeight
from indexmaker.model.index import Basket, BasketAsset
from indexmaker.model.rebalance import rebased_basket

AAA, BBB, CCC = instrument("AAAUSDC"), instrument("BBBUSDC"), instrument("CCCUSDC")


def test_the_same_basket_under_any_context() -> None:
    current = Basket(
        Symbol("IDX"), (BasketAsset(AAA, Decimal("2.5")), BasketAsset(BBB, Decimal(1)))
    )
    mids = {AAA: Decimal("10.123"), BBB: Decimal("20.7"), CCC: Decimal("3.3")}
    weights = (RebalanceWeight(AAA, Decimal(1)), RebalanceWeight(CCC, Decimal("2.0001")))
    with money_context():
        expected = rebased_basket(current, weights, mids)
    for prec in (5, 28, 60):
        with localcontext(Context(prec=prec)):
            assert rebased_basket(current, weights, mids) == expected
    # V = 2.5 x 10.123 + 20.7 = 46.0075 USDC; AAA gets 1/3.0001 of it at 10.123:
    # 46.0075 / (3.0001 x 10.123) = 1.514898958404438973
    assert expected.assets[0].quantity == Decimal("1.514898958404438973")
