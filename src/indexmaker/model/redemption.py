"""Redemptions: sell orders for index units, from escrow to payout (issue 12, SPEC §1 item 7).

A redemption's state changes in one place, `Redemption.move_to`, along `TRANSITIONS`:

    Escrowing → Ready ⇄ Engaged → Settling → Withdrawing → Paying → Paid
                  (Ready/Engaged → Settling also when cancelled, expired or stopped for good)

`quantity` is what the client asked to redeem; `sold` the index units whose proceeds were
allocated to it (34 digits); `burn_requested` the 18-decimal units sent to burn so far. When it
settles, escrowed = burned + returned exactly on the token's 18 decimals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum

import msgspec

from indexmaker.core.errors import InvariantViolation
from indexmaker.core.holds import HoldCode
from indexmaker.core.ids import (
    BatchId,
    ClientKey,
    ClientOrderId,
    InstrumentId,
    LotId,
    PaymentId,
    Symbol,
    TxHash,
)
from indexmaker.core.redemption_events import RedemptionBurn, RedemptionStatus
from indexmaker.model.index import Basket
from indexmaker.model.side import Side

ZERO = Decimal(0)


class RedemptionState(Enum):
    ESCROWING = "Escrowing"  # EscrowIndex sent, tokens not yet in custody
    READY = "Ready"  # escrowed; waits for a sell batch (or the throttle, or its floor)
    ENGAGED = "Engaged"  # part of an open sell batch
    SETTLING = "Settling"  # no more selling; burns outstanding
    WITHDRAWING = "Withdrawing"  # proceeds leaving the exchange (idempotency key: order id)
    BRIDGING = "Bridging"  # proceeds crossing to the client's chain (idempotency key: id + hop)
    PAYING = "Paying"  # paying the client on chain
    PAID = "Paid"
    REJECTED = "Rejected"  # never escrowed: nothing sold, nothing to return


_R = RedemptionState
TRANSITIONS: dict[RedemptionState, frozenset[RedemptionState]] = {
    _R.ESCROWING: frozenset({_R.READY, _R.REJECTED}),
    _R.READY: frozenset({_R.ENGAGED, _R.SETTLING}),
    _R.ENGAGED: frozenset({_R.READY, _R.SETTLING}),
    _R.SETTLING: frozenset({_R.WITHDRAWING, _R.PAID}),
    _R.WITHDRAWING: frozenset({_R.PAYING, _R.BRIDGING}),
    _R.BRIDGING: frozenset({_R.PAYING}),
    _R.PAYING: frozenset({_R.PAID}),
    _R.PAID: frozenset(),
    _R.REJECTED: frozenset(),
}


class LotDisposal(msgspec.Struct, frozen=True, gc=False):
    """Part of an inventory lot sold for a redemption, FIFO, with its realised PnL (USDC).

    A msgspec Struct, not a dataclass: a sell batch makes one per redemption, asset and lot
    (81,000 for 1,000 redemptions of SY100) and a frozen dataclass spends ~1 µs in
    `object.__setattr__` per instance; untracked by the cycle collector (`gc=False`: it holds
    only Decimals, strings, ints and a bool), so a large allocation triggers no collections.
    """

    lot_id: LotId
    asset: InstrumentId
    quantity: Decimal
    cost_price: Decimal
    cost_fee: Decimal  # the lot's buy fee, pro rata to `quantity`
    sale_price: Decimal
    sale_fee: Decimal  # the sale's exchange fee, pro rata to `quantity`
    crossed: bool = False  # sold to a buy batch of the same tick at the mid, no venue fee

    @property
    def pnl(self) -> Decimal:
        """Realised: what the quantity brought net of its sale fee, minus what it cost."""
        return self.quantity * (self.sale_price - self.cost_price) - self.sale_fee - self.cost_fee


@dataclass(frozen=True, slots=True)
class FloorPricing:
    """The sell price a redemption held below its floor was last priced at, and what that
    price was made of (engine/redemption_candidates.py): the books are read again only once
    one of these differs."""

    basket: Basket  # the sell basket, quantities and version
    bids: tuple[tuple[Decimal | None, Decimal], ...]  # per basket asset: best bid, tick size
    price: Decimal  # P at the sell limits, USDC per index unit
    at: datetime  # when the books were last looked at for it


@dataclass(slots=True)
class Redemption:
    """One sell NewIndexOrder. Index units throughout except the USDC proceeds and fees."""

    redemption_id: PaymentId  # the service's id: escrow, withdrawal and payout key
    client: ClientKey
    client_order_id: ClientOrderId
    symbol: Symbol
    quantity: Decimal  # index units to redeem (reduced by a cancel)
    escrowed: Decimal  # index units asked into custody
    min_proceeds: Decimal | None
    received_at: datetime
    arrival: int
    arrival_mid: Decimal | None = None
    _state: RedemptionState = RedemptionState.ESCROWING
    escrow_tx: TxHash | None = None
    escrow_block: int = 0  # the escrow's block on the trading chain (0: not known)
    batch_id: BatchId | None = None
    engaged: Decimal = ZERO  # index units in the open sell batch
    sold: Decimal = ZERO
    gross: Decimal = ZERO  # Σ quantity × sale price (USDC)
    exchange_fee: Decimal = ZERO
    disposals: list[LotDisposal] = field(default_factory=list)
    burn_requested: Decimal = ZERO
    pending_burns: dict[PaymentId, Decimal] = field(default_factory=dict)
    burns: list[RedemptionBurn] = field(default_factory=list)
    closing: str | None = None  # why no more units are sold (cancel, expiry, all sold)
    # The last hold told to the client (status, code): told once, not once a tick.
    notice: tuple[RedemptionStatus, HoldCode] | None = None
    withdrawn: Decimal = ZERO  # USDC sent to withdraw from the exchange
    received: Decimal = ZERO  # USDC that reached the trading chain
    withdrawal_fee: Decimal = ZERO
    payout_tx: TxHash | None = None
    basket_version: int = 1  # of the basket its latest sell batch sold (engine/rebalance.py)
    # While held below its floor: what it was priced from (not priced again until it moves).
    floor_pricing: FloorPricing | None = None

    side = Side.SELL

    @property
    def state(self) -> RedemptionState:
        return self._state

    def move_to(self, state: RedemptionState) -> None:
        """The one place a redemption's state changes; anything else is an engine bug."""
        if state not in TRANSITIONS[self._state]:
            raise InvariantViolation(
                f"redemption {self.client_order_id}: no transition "
                f"{self._state.value} → {state.value}"
            )
        self._state = state

    @property
    def engageable(self) -> Decimal:
        """Index units a sell batch may still take (0 once closing or engaged)."""
        if self.closing is not None or self._state is not RedemptionState.READY:
            return ZERO
        left = self.quantity - self.sold
        return left if left > 0 else ZERO

    @property
    def net_proceeds(self) -> Decimal:
        return self.gross - self.exchange_fee

    @property
    def burned(self) -> Decimal:
        return sum((b.quantity for b in self.burns), ZERO)

    @property
    def fill_rate(self) -> Decimal:
        return self.sold / self.quantity if self.quantity > 0 else ZERO
