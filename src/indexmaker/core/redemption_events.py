"""Client messages of the sell side (redemption): fill reports and the redemption invoice.

A redemption is a sell `NewIndexOrder` for index units (SPEC §1 item 7, issue 12). Its fill
report and invoice differ from the buy side's: the quantity is index units handed back, the
money is proceeds paid out. Shapes follow `/work/shared/reference/redemption-and-rebalance.md`
§6.1 items 11-12. Every USDC figure has 6 decimals, every index quantity 18 (rounded down).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum

from indexmaker.core.holds import HoldCode
from indexmaker.core.ids import ClientOrderId, InstrumentId, PaymentId, Symbol, TxHash


class RedemptionStatus(Enum):
    """What a redemption fill report says about the order (the client-facing state)."""

    ESCROWED = "escrowed"  # tokens in custody, waiting for a batch
    QUEUED = "queued"  # held back by the redemption throttle (FIFO)
    STOPPED = "stopped"  # the client's floor is above what the book pays now
    IN_PROGRESS = "in progress"
    SOLD = "sold"  # every unit to be sold is sold; burning and paying follow


@dataclass(frozen=True, slots=True)
class RedemptionFill:
    """Progress of one sell order: index units sold so far and what they brought (USDC)."""

    client_order_id: ClientOrderId
    quantity: Decimal  # index units the order redeems
    sold_quantity: Decimal  # index units whose proceeds are confirmed
    proceeds: Decimal  # gross proceeds so far minus exchange fees (USDC)
    fill_rate: Decimal  # sold / quantity
    status: RedemptionStatus
    reason: str | None = None  # for people: may name figures of the moment
    reason_code: HoldCode | None = None  # a hold's stable code (core/holds.py)


@dataclass(frozen=True, slots=True)
class RedemptionBurn:
    """One burn: the index units of one (order, batch) whose proceeds were confirmed."""

    payment_id: PaymentId
    quantity: Decimal
    tx_hash: TxHash | None


@dataclass(frozen=True, slots=True)
class RedemptionLot:
    """One inventory lot disposed of for this redemption, FIFO (realised PnL per lot)."""

    asset: InstrumentId
    lot_id: int
    quantity: Decimal
    cost_price: Decimal  # what the lot was bought at
    sale_price: Decimal  # what it was sold at
    fee: Decimal  # this redemption's share of the sale's exchange fee (USDC)
    pnl: Decimal  # quantity × (sale − cost) − sale fee − the lot's own fee share (USDC)
    crossed: bool = False  # sold to buyers of the same tick at the batch mid, no exchange fee


@dataclass(frozen=True, slots=True)
class RedemptionInvoice:
    """What a redemption sold, burned and paid (issue 12; reference §6.1 item 11).

    net_paid = gross_proceeds − exchange_fee − redemption_fee − withdrawal_fee. slippage_bps
    is (arrival mid − VWAP) / arrival mid × 10,000: positive when the sale got less than mid.
    """

    client_order_id: ClientOrderId
    symbol: Symbol
    quantity: Decimal  # index units asked to redeem
    redeemed_quantity: Decimal  # sold and burned
    returned_quantity: Decimal  # unsold, handed back from custody
    burns: tuple[RedemptionBurn, ...]
    lots: tuple[RedemptionLot, ...]
    arrival_mid: Decimal  # index mid price when the order arrived (USDC per unit)
    vwap: Decimal  # gross proceeds / redeemed quantity
    slippage_bps: Decimal
    gross_proceeds: Decimal
    exchange_fee: Decimal
    redemption_fee: Decimal
    withdrawal_fee: Decimal
    net_paid: Decimal
    payout_tx: TxHash | None
    realised_pnl: Decimal
    timestamp: datetime
    basket_version: int = 1  # the basket version its units were sold on (issue 12)
