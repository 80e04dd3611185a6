"""A collateral reservation: gross collateral pre-authorised for one order update.

Only the collateral manager (engine/collateral.py) changes it; the order update reads its
`spent` through `OrderUpdate.reservation`, so there is one figure of what an update spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(slots=True)
class Reservation:
    gross: Decimal  # USDC as deposited
    fee: Decimal  # routing fees of the collateral reserved (the update's management fee)
    spent: Decimal = ZERO  # assets value + exchange fees charged so far

    @property
    def net(self) -> Decimal:
        return self.gross - self.fee
