"""The SDK's view of the sell side (issue 12): `IndexRedemptionFill` and `RedemptionInvoice`
frames as typed events (server/redemption_wire.py writes them; field names are the core's,
core/redemption_events.py). Decimals stay Decimal; a missing tx hash is None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from indexmaker.server.client_events import ServerMessage, wire_body
from indexmaker.server.redemption_wire import REDEMPTION_FILL, REDEMPTION_INVOICE


@dataclass(frozen=True, slots=True)
class RedemptionFill(ServerMessage):
    """Progress of a sell order: index units sold so far and what they brought (USDC)."""

    client_order_id: str
    quantity: Decimal
    sold_quantity: Decimal
    proceeds: Decimal
    fill_rate: Decimal
    status: str  # escrowed | queued | stopped | in progress | sold
    reason: str | None = None
    reason_code: str | None = None  # a hold's stable code (core/holds.HoldCode values)


@dataclass(frozen=True, slots=True)
class RedemptionBurn:
    payment_id: str
    quantity: Decimal
    tx_hash: str | None


@dataclass(frozen=True, slots=True)
class RedemptionLotSold:
    """One inventory lot disposed of for the redemption, FIFO (the wire's `lots` entry,
    core/redemption_events.RedemptionLot): `quantity` of `asset` (an instrument, e.g.
    BTCUSDC) bought at `cost_price` and sold at `sale_price` (USDC per unit); `fee` the sale's
    commission share and `pnl` the realised PnL (USDC); `crossed` if netted internally
    against a buy instead of sold on the venue."""

    asset: str
    lot_id: int
    quantity: Decimal
    cost_price: Decimal
    sale_price: Decimal
    fee: Decimal
    pnl: Decimal
    crossed: bool = False


@dataclass(frozen=True, slots=True)
class RedemptionInvoice(ServerMessage):
    """What a sell order sold, burned and paid: net_paid = gross_proceeds − exchange_fee −
    redemption_fee − withdrawal_fee, paid by `payout_tx`; `lots` are the lots sold."""

    client_order_id: str
    symbol: str
    quantity: Decimal
    redeemed_quantity: Decimal
    returned_quantity: Decimal
    burns: tuple[RedemptionBurn, ...]
    lots: tuple[RedemptionLotSold, ...]
    arrival_mid: Decimal
    vwap: Decimal
    slippage_bps: Decimal
    gross_proceeds: Decimal
    exchange_fee: Decimal
    redemption_fee: Decimal
    withdrawal_fee: Decimal
    net_paid: Decimal
    payout_tx: str | None
    realised_pnl: Decimal
    basket_version: int = 1  # the index's basket version its units were sold on (issue 12)
    body: dict[str, Any] = field(default_factory=dict, compare=False)  # as received


def _dec(frame: dict[str, Any], name: str) -> Decimal:
    return Decimal(str(frame[name]))


def _lot(entry: dict[str, Any]) -> RedemptionLotSold:
    return RedemptionLotSold(
        str(entry["asset"]),
        int(entry["lot_id"]),
        quantity=_dec(entry, "quantity"),
        cost_price=_dec(entry, "cost_price"),
        sale_price=_dec(entry, "sale_price"),
        fee=_dec(entry, "fee"),
        pnl=_dec(entry, "pnl"),
        crossed=bool(entry.get("crossed", False)),
    )


def decode_redemption(
    msg_type: str, frame: dict[str, Any], meta: dict[str, Any]
) -> RedemptionFill | RedemptionInvoice:
    """A verified redemption frame's event (KeyError/ValueError on a malformed one)."""
    cid = str(frame["client_order_id"])
    if msg_type == REDEMPTION_FILL:
        return RedemptionFill(
            cid,
            quantity=_dec(frame, "quantity"),
            sold_quantity=_dec(frame, "sold_quantity"),
            proceeds=_dec(frame, "proceeds"),
            fill_rate=_dec(frame, "fill_rate"),
            status=str(frame["status"]),
            reason=frame.get("reason"),
            reason_code=frame.get("reason_code"),
            **meta,
        )
    if msg_type != REDEMPTION_INVOICE:
        raise ValueError(f"not a redemption message: {msg_type!r}")
    burns = tuple(
        RedemptionBurn(str(b["payment_id"]), _dec(b, "quantity"), b.get("tx_hash"))
        for b in frame.get("burns", [])
    )
    return RedemptionInvoice(
        cid,
        symbol=str(frame["symbol"]),
        quantity=_dec(frame, "quantity"),
        redeemed_quantity=_dec(frame, "redeemed_quantity"),
        returned_quantity=_dec(frame, "returned_quantity"),
        burns=burns,
        lots=tuple(_lot(lot) for lot in frame.get("lots", [])),
        arrival_mid=_dec(frame, "arrival_mid"),
        vwap=_dec(frame, "vwap"),
        slippage_bps=_dec(frame, "slippage_bps"),
        gross_proceeds=_dec(frame, "gross_proceeds"),
        exchange_fee=_dec(frame, "exchange_fee"),
        redemption_fee=_dec(frame, "redemption_fee"),
        withdrawal_fee=_dec(frame, "withdrawal_fee"),
        net_paid=_dec(frame, "net_paid"),
        payout_tx=frame.get("payout_tx"),
        realised_pnl=_dec(frame, "realised_pnl"),
        basket_version=int(frame.get("basket_version", 1)),
        body=wire_body(frame),
        **meta,
    )
