"""/v1/collateral names the hop a lot is on while it is in flight (issue 11 review): the lot is
still booked at the hop's source, so without it the money in Across looked unconfirmed there."""

from __future__ import annotations

from decimal import Decimal

from indexmaker.core.events import HopCompleted, HopFailed
from indexmaker.engine.engine import EXCHANGE_ACCOUNT, SOURCE_CHAIN, TRADING_CHAIN, Engine
from indexmaker.query import views

from .test_engine import ALICE, deposit_event
from .test_route_holds import quoted, routes

D = Decimal


def _transit(e: Engine) -> list[tuple[str, str, list[str]]]:
    answer = views.client_collateral(e, ALICE)
    assert answer is not None
    return [(lot.location, lot.transit, lot.hops) for lot in answer.lots]


def test_a_lot_on_a_hop_says_which_until_the_hop_completes() -> None:
    e = quoted()
    (across,) = routes(e.handle(deposit_event(ALICE, 1, D(300), SOURCE_CHAIN)))
    note = f"in transit: across hop {across.transfer_id} to {TRADING_CHAIN}"
    assert _transit(e) == [(SOURCE_CHAIN, note, [])]
    # Refused: retried under a new transfer id, which the status names.
    (again,) = routes(e.handle(HopFailed(across.transfer_id, "refused")))
    assert again.transfer_id != across.transfer_id
    note = f"in transit: across hop {again.transfer_id} to {TRADING_CHAIN}"
    assert _transit(e) == [(SOURCE_CHAIN, note, [])]
    (wallet,) = routes(e.handle(HopCompleted(again.transfer_id, D("299.25"), D("0.75"))))
    note = f"in transit: wallet hop {wallet.transfer_id} to {EXCHANGE_ACCOUNT}"
    ((location, transit, hops),) = _transit(e)
    assert (location, transit) == (TRADING_CHAIN, note) and len(hops) == 1
    e.handle(HopCompleted(wallet.transfer_id, D("299.04"), D("0.21")))
    ((location, transit, hops),) = _transit(e)
    assert (location, transit) == (EXCHANGE_ACCOUNT, "") and len(hops) == 2
