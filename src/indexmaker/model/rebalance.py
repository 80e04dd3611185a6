"""Rebalancing (issue 12; SPEC §1 item 8): a new basket version from the curator's weights,
and the state of moving an index's holdings to it.

The new basket keeps the index value at the cut-over: V = Σ old quantity × mid, and each
named asset gets quantity = (weight / Σ weights) × V / mid, rounded down to 18 decimals
(reference §6.2 item 1: quantities from reference prices taken at proposal time; rounding
down never asks a unit for more than it is worth).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal, localcontext

from indexmaker.core.errors import InvalidInputError
from indexmaker.core.ids import BatchId, InstrumentId
from indexmaker.core.money import EXACT_CONTEXT, MONEY_CONTEXT, exact_add
from indexmaker.core.rebalance_events import RebalanceWeight
from indexmaker.model.index import Basket, BasketAsset

ZERO = Decimal(0)
QUANTITY_QUANTUM = Decimal("1e-18")  # basket quantities, as the index token's decimals
WEIGHT_QUANTUM = Decimal("1e-8")  # the informational percent weight


def round_quantity_down(value: Decimal) -> Decimal:
    """A basket quantity: 18 decimals, rounded down (exact under any context)."""
    return value.quantize(QUANTITY_QUANTUM, rounding=ROUND_FLOOR, context=EXACT_CONTEXT)


def rebased_basket(
    current: Basket, weights: Sequence[RebalanceWeight], mids: Mapping[InstrumentId, Decimal]
) -> Basket:
    """The next basket version of `current` for `weights` at `mids` (USDC per asset unit).

    Raises InvalidInputError (naming the field) for a negative or non-finite weight, an asset
    named twice, all weights 0, or an asset of either basket without a mid. The same result
    under any Decimal context (quotients to 34 digits, MONEY_CONTEXT)."""
    seen: set[InstrumentId] = set()
    total = ZERO
    for entry in weights:
        if not entry.weight.is_finite() or entry.weight < 0:
            raise InvalidInputError("weights", f"{entry.instrument}: weight {entry.weight}")
        if entry.instrument in seen:
            raise InvalidInputError("weights", f"{entry.instrument} named twice")
        seen.add(entry.instrument)
        total = exact_add(total, entry.weight)
    if total <= 0:
        raise InvalidInputError("weights", f"{current.symbol}: every weight is 0")
    for instrument in [a.instrument for a in current.assets] + [w.instrument for w in weights]:
        if mids.get(instrument) is None:
            raise InvalidInputError("weights", f"no mid price for {instrument}")
    assets = []
    # The quotients round to the project's 34 digits whatever the caller's context (a
    # curator's proposal replayed from the journal must give the same basket again).
    with localcontext(MONEY_CONTEXT):
        value = sum((a.quantity * mids[a.instrument] for a in current.assets), ZERO)
        for entry in weights:
            if entry.weight == 0:
                continue
            share = entry.weight / total
            quantity = round_quantity_down(share * value / mids[entry.instrument])
            if quantity <= 0:
                raise InvalidInputError("weights", f"{entry.instrument}: quantity rounds to 0")
            percent = (share * 100).quantize(
                WEIGHT_QUANTUM, rounding=ROUND_FLOOR, context=EXACT_CONTEXT
            )
            assets.append(BasketAsset(entry.instrument, quantity, percent))
    return Basket(current.symbol, tuple(assets), current.version + 1)


@dataclass(slots=True)
class AssetProgress:
    """One asset of a rebalance: what was traded for it, at what cost."""

    instrument: InstrumentId
    arrival_mid: Decimal  # mid at the cut-over: the benchmark of slippage
    bought: Decimal = ZERO  # on the venue
    sold: Decimal = ZERO
    crossed: Decimal = ZERO  # signed: + taken in from client flow, − given to it
    fees: Decimal = ZERO  # USDC
    slippage: Decimal = ZERO  # USDC, > 0 a cost against the arrival mid
    traded: Decimal = ZERO  # USDC value of every trade (venue and crossed)
    pending: Decimal = ZERO  # signed quantity in flight in the open round (+ buy, − sell)
    # Pacing (reference §6.2 item 5): no venue tranche of this asset before then (its last
    # one closed `rebalance_interval` earlier); None: due now.
    next_tranche_at: datetime | None = None


@dataclass(slots=True)
class Rebalance:
    """An index moving to basket `target` (its version is the rebalance's)."""

    target: Basket
    proposal_id: str
    started_at: datetime
    assets: dict[InstrumentId, AssetProgress]
    cash: Decimal = ZERO  # proceeds not yet spent on buys (USDC)
    rounds: int = 0
    orders: int = 0
    round_id: BatchId | None = None  # the open round
    round_orders: int = 0  # its exchange orders not yet closed
    round_ids: set[BatchId] = field(default_factory=set)  # every round's batch id
    next_round_at: datetime | None = None  # nothing could trade: look again then
    done: bool = False
    # Why it cannot trade while off target (legs below min_asset_volley), once alerted;
    # None while it trades. Its end after rebalance_ttl names it ("stopped: below minimums").
    waiting: str | None = None

    @property
    def version(self) -> int:
        return self.target.version
