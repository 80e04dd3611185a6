"""The query API's response shapes (pydantic), which also give its OpenAPI schema.

Money and quantities are decimal strings (USDC for collateral, fees and values; base-asset
units for lots and exchange orders; index units for filled quantities), never JSON numbers,
so no client parses them as floats. Times are ISO 8601 in UTC.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from indexmaker.server.wire_values import fmt_decimal

T = TypeVar("T")
# Positional decimal text always ("1E+3" would break clients), the same as the FIX wire.
Num = Annotated[Decimal, PlainSerializer(fmt_decimal, return_type=str)]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Page(_Out, Generic[T]):
    """One page of a listing. `next_cursor`: pass it as `cursor` for the next page; null on
    the last page."""

    items: list[T]
    next_cursor: str | None = None


class ApiError(_Out):
    error: str = Field(description="what was wrong, naming the parameter: `limit: …`")


class Health(_Out):
    status: str = Field(description='"ok" or "unhealthy"')
    problems: list[str]
    engine_alive: bool
    loop_lag_ms: float
    queue_depth: int
    queue_capacity: int
    store: str = Field(
        description='"sqlite" or "postgresql" (durable), "memory" (nothing survives)'
    )
    journal_seq: int = Field(description="last committed journal entry (0 without a store)")


class CollateralPosition(_Out):
    """A client's collateral balances in USDC (SPEC §3), rounded to the micro-USDC."""

    chain_id: int
    address: str
    deposited: Num
    fees: Num = Field(description="routing fees of every lot")
    unconfirmed: Num = Field(description="deposited, still on its way to the exchange")
    ready: Num = Field(description="at the exchange, reserved by no order")
    preauth: Num = Field(description="reserved by open order updates, not yet spent")
    spent: Num = Field(description="spent on index orders, all time")
    held: Num = Field(
        default=Decimal(0),
        description="held on its chain, below the cost of its route to the exchange; routed "
        "with the client's next deposit there once they cover it (not in unconfirmed)",
    )


class CollateralLot(_Out):
    seq_num: int = Field(description="the custody deposit's number; -1 for returned change")
    gross: Num
    location: str = Field(description="where it is now, e.g. EVM:ARBITRUM:USDC")
    fee: Num = Field(description="routing fees so far")
    ready: bool
    available: Num = Field(description="gross not yet reserved")
    hops: list[str]
    held: str = Field(
        default="",
        description="why it waits where it is, e.g. \"held: below the route's cost 0.76 USDC "
        "on EVM:ARBITRUM:USDC\" ('' when it is not held)",
    )
    transit: str = Field(
        default="",
        description='the hop it is on while one is in flight, e.g. "in transit: across hop '
        "T20 to EVM:BASE:USDC\" (its location stays the hop's source until the hop "
        "completes; '' when no hop is in flight)",
    )


class Reservation(_Out):
    client_order_id: str
    gross: Num
    fee: Num
    spent: Num


class ClientCollateral(CollateralPosition):
    lots: list[CollateralLot]
    reservations: list[Reservation]


class InventorySummary(_Out):
    venue: str
    pair: str
    lots: int = Field(description="lots held (bought, not all disposed)")
    quantity: Num = Field(description="base-asset units bought in those lots")
    free: Num = Field(description="not yet assigned to any order: issuer inventory")


class LotAssignment(_Out):
    client_order_id: str
    quantity: Num
    price: Num
    fee: Num


class InventoryLot(_Out):
    lot_id: int
    venue: str
    pair: str
    trade_id: str
    price: Num
    quantity: Num
    fee: Num = Field(description="commission in USDC")
    free: Num
    assigned: Num
    opened_at: datetime
    reserved_by_batch: int | None
    assignments: list[LotAssignment]


class OrderUpdate(_Out):
    """One NewIndexOrder of a client the engine holds (SPEC §3). A buy: amounts in USDC,
    quantities in index units. A sell (a redemption, issue 12): `amount`, `engaged`,
    `remaining` and `filled_quantity` (sold) in index units, `proceeds` its net USDC so far;
    `management_fee` and `spent` are a buy's (0)."""

    chain_id: int
    address: str
    client_order_id: str
    symbol: str
    side: str
    status: str = Field(description="Open, ManageCollateral, Ready, Engaged, …, Minted")
    amount: Num
    management_fee: Num
    engaged: Num
    spent: Num
    remaining: Num
    filled_quantity: Num
    fill_rate: Num
    batch_id: int | None
    payment_id: str | None
    received_at: datetime
    last_fill_at: datetime | None
    reason: str | None
    proceeds: Num | None = Field(
        default=None, description="a sell's: USDC its sales brought, net of exchange fees"
    )


class OrderRecord(_Out):
    """One index order as the store keeps it (durable: closed and old ones too, after a
    restart), in the state its client was told (SPEC §5 messages)."""

    chain_id: int
    address: str
    client_order_id: str
    symbol: str
    side: str
    status: str = Field(
        description="received, accepted, rejected, canceled, filling, minted, redeemed"
    )
    reason: str | None
    amount: Num = Field(description="USDC for a buy, index units for a sell")
    filled_quantity: Num = Field(description="index units")
    collateral_spent: Num = Field(
        description="a buy: USDC spent; a sell: net USDC proceeds so far (paid, once redeemed)"
    )
    fill_rate: Num
    payment_id: str | None
    received_at: datetime
    updated_at: datetime


class BatchRecord(_Out):
    """One batch as the store keeps it (durable: completed ones too, after a restart)."""

    batch_id: int
    side: str
    status: str = Field(description="created (in flight) or completed")
    created_at: datetime
    completed_at: datetime | None
    order_count: int
    asset_count: int
    notional: Num = Field(description="USDC")
    details: dict[str, str]


class BatchAsset(_Out):
    venue: str
    pair: str
    demand: Num
    received: Num
    exchange_orders: list[str]


class Batch(_Out):
    batch_id: int
    created_at: datetime
    engaged: Num
    notional: Num
    open_exchange_orders: int
    symbols: list[str]
    client_order_ids: list[str]
    assets: list[BatchAsset]


class RebalanceAsset(_Out):
    """One asset of a rebalance: quantities in asset units, money in USDC."""

    venue: str
    pair: str
    target_quantity: Num  # per index unit, in the new basket (0: leaves the basket)
    arrival_mid: Num
    bought: Num
    sold: Num
    crossed: Num
    fees: Num
    slippage: Num
    traded: Num


class Rebalance(_Out):
    """A curator update being carried out or done (issue 12; engine/rebalance.py)."""

    symbol: str
    version: int  # the basket version moved to
    proposal_id: str
    started_at: datetime
    done: bool
    rounds: int
    exchange_orders: int
    cash: Num  # sale proceeds not yet spent on buys
    assets: list[RebalanceAsset]


class ExchangeOrder(_Out):
    order_id: str = Field(description="our client order id at the venue")
    batch_id: int
    venue: str
    pair: str
    side: str
    price: Num
    quantity: Num
    status: str = Field(description="pending, live, unknown, filled, cancelled, expired, …")
    filled: Num
    commission: Num
    trades: int
    reason: str | None
    created_at: datetime | None
    sent_at: datetime | None


class InvoiceLot(_Out):
    lot_id: int
    venue: str
    pair: str
    quantity: Num
    price: Num
    fee: Num


class Invoice(_Out):
    chain_id: int
    address: str
    client_order_id: str
    payment_id: str
    symbol: str
    minted_at: datetime
    filled_quantity: Num
    total_amount: Num
    amount_paid: Num
    amount_remaining: Num
    management_fee: Num
    assets_value: Num
    exchange_fee: Num
    fill_rate: Num
    lots: list[InvoiceLot]
    basket_version: int = Field(description="the index's basket version the units were bought on")
    invoice_hash: str | None = Field(
        description="0x + SHA-256 of the invoice's terms, recorded by custody with the mint "
        "on a chain (SPEC §7; core/invoice_terms.py: recomputed from `body` alone)"
    )
    mint_tx_hash: str | None = Field(
        description="the mint's transaction on the trading chain (8453); null on the "
        "simulated chain"
    )
    body: dict[str, Any] = Field(
        description="the MintInvoice body exactly as the client was sent it over FIX (SPEC §5): "
        "save an item and `indexmaker verify-invoice FILE` checks it against the chain"
    )


class RedemptionBurn(_Out):
    payment_id: str
    quantity: Num = Field(description="index units burned")
    tx_hash: str | None = Field(description="the burn's transaction on 8453; null: simulated")


class RedemptionLot(_Out):
    """An inventory lot sold for the redemption, FIFO, with its realised PnL (USDC)."""

    lot_id: int
    venue: str
    pair: str
    quantity: Num
    cost_price: Num
    sale_price: Num
    fee: Num = Field(description="this redemption's share of the sale's exchange fee")
    pnl: Num
    crossed: bool = Field(description="sold to a buy batch of the same tick at the mid")


class RedemptionInvoice(_Out):
    """What a sell order (a redemption, issue 12) sold, burned and paid: net_paid =
    gross_proceeds - exchange_fee - redemption_fee - withdrawal_fee (USDC), paid by
    `payout_tx`; quantities in index units."""

    chain_id: int
    address: str
    client_order_id: str
    symbol: str
    redeemed_at: datetime
    quantity: Num = Field(description="index units asked to redeem")
    redeemed_quantity: Num = Field(description="sold and burned")
    returned_quantity: Num = Field(description="not sold, handed back from custody")
    arrival_mid: Num
    vwap: Num
    slippage_bps: Num
    gross_proceeds: Num
    exchange_fee: Num
    redemption_fee: Num
    withdrawal_fee: Num
    net_paid: Num
    payout_tx: str | None = Field(description="the payout's transaction; null: simulated")
    realised_pnl: Num
    basket_version: int
    burns: list[RedemptionBurn]
    lots: list[RedemptionLot]
