"""Records of rebalancing (issue 12; SPEC §1 item 8): the curator's update going in, the
rebalance's reports coming out.

`RebalanceIndex` is an engine input: new weights for an index, from config or the CLI today
(a chain source, e.g. a curator contract's event, can feed the same record later). The core
turns it into a new basket version and trades the inventory towards it in rounds
(engine/rebalance.py). `RebalanceReport` is an operator-facing command (like `BatchEvent`):
one when the rebalance starts, one per round, one at the end. Figures follow
`/work/shared/reference/redemption-and-rebalance.md` §6.2 item 9: progression and basket
accuracy (reference §3.3), cost as fees plus slippage against the arrival mid, what is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from indexmaker.core.ids import InstrumentId, Symbol


@dataclass(frozen=True, slots=True)
class RebalanceWeight:
    instrument: InstrumentId
    weight: Decimal  # share of the index value; weights are relative (normalised by their sum)


@dataclass(frozen=True, slots=True)
class RebalanceIndex:
    """Input: the curator's new weights for `symbol`. An asset of the current basket that is
    not named (or named with weight 0) is removed. Refused (an Alert, nothing changes) when a
    weight is negative or not finite, all are 0, an asset has no mid price, or the proposal
    arrives after its `deadline` (a stale proposal must not start: reference §3.2, PR #195)."""

    symbol: Symbol
    proposal_id: str
    weights: tuple[RebalanceWeight, ...]
    deadline: datetime | None = None


@dataclass(frozen=True, slots=True)
class RebalanceAssetLine:
    """One asset of a rebalance report. Quantities in asset units, money in USDC."""

    instrument: InstrumentId
    target: Decimal  # units outstanding × new basket quantity
    held: Decimal  # what backs the index's units now
    left: Decimal  # target − held: > 0 still to buy, < 0 still to sell
    bought: Decimal  # on the venue, this rebalance so far
    sold: Decimal
    crossed: Decimal  # moved against client flow of the same tick at the mid (signed: + in)
    arrival_mid: Decimal  # mid at the cut-over
    fees: Decimal
    slippage: Decimal  # Σ |price − arrival mid| × quantity, signed: > 0 is a cost


@dataclass(frozen=True, slots=True)
class RebalanceReport:
    """Command (operator output): a rebalance's state after its start, a round, or its end.

    progression = Σ min(held, target) × mid / value; accuracy = 1 − Σ |held − target| × mid /
    value (value = Σ held × mid + cash, all at current mids); cost = fees + slippage, in USDC
    and in bps of the value traded (reference §6.2 item 9)."""

    symbol: Symbol
    version: int  # the basket version being moved to
    kind: str  # "started" | "round" | "waiting" (cannot trade off target: `reason`) | "completed"
    round: int  # rounds completed so far
    units: Decimal  # index units outstanding
    progression: Decimal
    accuracy: Decimal
    traded: Decimal  # value traded on the venue and crossed, USDC
    fees: Decimal
    slippage: Decimal
    cost_bps: Decimal
    cash: Decimal  # sale proceeds not yet spent on buys
    orders: int  # exchange orders sent so far
    assets: tuple[RebalanceAssetLine, ...]
    reason: str | None = None
    left_value: Decimal = Decimal(0)  # Σ |left| × mid: what is still to trade, USDC
