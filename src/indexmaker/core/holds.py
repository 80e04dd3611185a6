"""Why an order waits outside a batch (issue 12): a stable code beside the human text.

The text names figures that move with the books (a floor against the net price the bids pay,
the throttle's flow), so it changes every tick; the code does not. A redemption is told once
per (status, code) (engine/redemptions.py), and its fill report carries both: `reason_code`
for programs, `reason` for people (core/redemption_events.RedemptionFill). A ready buy that a
batch leaves out is told the same way, once per code until it is engaged again
(engine/solver.py; core/events.IndexOrderFill).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class HoldCode(Enum):
    """Why an order is not in this batch (values travel on the wire as `reason_code`)."""

    NO_PRICE = "no_price"  # an asset of the basket has no price on this side (SPEC §4 step 4)
    COOLING_DOWN = "cooling_down"  # the venue refused an asset: it waits out a cool-down
    NO_LIQUIDITY = "no_liquidity"  # too little within the limit price (SPEC §4 step 6)
    NOT_TRADABLE = "not_tradable"  # no known exchange filters, or they refuse the size (§6)
    BELOW_MINIMUM = "below_minimum"  # a sell leg below min_asset_volley: waits for more
    OTHER_SIDE = "other_side"  # an order of the other side is never mixed into a batch
    BELOW_FLOOR = "below_floor"  # the client's min_proceeds is above what the bids pay
    THROTTLED = "throttled"  # net redemptions of the window at the limit: waits FIFO
    BALANCE_SHORT = "balance_short"  # the venue holds less of an asset than our lots (issue
    # 10): its orders wait until a balance report covers the lots again
    OVER_ABSORB_LIMIT = "over_absorb_limit"  # legs below the venue minimum would raise the
    # issuer's absorbed inventory above max_issuer_absorb: waits for buys, the books or more
    # redemptions


@dataclass(frozen=True, slots=True)
class HoldReason:
    """A hold's code and its text (which may name figures of the moment)."""

    code: HoldCode
    text: str

    def __str__(self) -> str:
        return self.text
