"""Mint invoices (SPEC §4): what an update spent, on what, and what goes back to the client."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from indexmaker.core.errors import InvariantViolation
from indexmaker.core.events import CollateralPosition, InvoiceLot, MintInvoice
from indexmaker.core.money import round_index_down, round_rate, round_usdc
from indexmaker.model.lot import LotAssignment
from indexmaker.model.order import OrderUpdate

ZERO = Decimal(0)


def build_invoice(
    update: OrderUpdate, now: datetime, position: CollateralPosition | None = None
) -> MintInvoice:
    """The mint invoice of SPEC §4 for a minted update, with one line per lot behind it, and
    the client's collateral `position` after the mint (SPEC §5, the reference's field)."""
    merged: dict[int, tuple[Decimal, Decimal, LotAssignment]] = {}
    for a in update.lots:  # one line per lot, however many fills it was taken in
        quantity, fee, _ = merged.get(a.lot_id, (ZERO, ZERO, a))
        merged[a.lot_id] = (quantity + a.quantity, fee + a.fee, a)
    lots = tuple(
        InvoiceLot(
            last.asset,
            lot_id,
            last.price,
            quantity,
            round_usdc(fee),
            original_quantity=last.lot_quantity,
            remaining_quantity=last.lot_remaining,
            original_fee=last.lot_fee,
            created_at=last.opened_at,
            assigned_at=last.assigned_at,
        )
        for lot_id, (quantity, fee, last) in merged.items()
    )
    if update.payment_id is None:
        raise InvariantViolation(f"{update.client_order_id} invoiced before its mint")
    # Round the parts and derive the rest, so the invoice adds up to the last micro-USDC:
    # total = paid + remaining + management fee, paid = assets value + exchange fee.
    # The ledger keeps the exact change; the two differ by less than 0.000001.
    total = round_usdc(update.amount)
    paid = round_usdc(update.spent)
    management_fee = round_usdc(update.management_fee)
    exchange_fee = round_usdc(update.exchange_fee)
    return MintInvoice(
        client_order_id=update.client_order_id,
        payment_id=update.payment_id,
        symbol=update.symbol,
        filled_quantity=round_index_down(update.filled_quantity),
        total_amount=total,
        amount_paid=paid,
        amount_remaining=total - management_fee - paid,
        management_fee=management_fee,
        assets_value=paid - exchange_fee,
        exchange_fee=exchange_fee,
        fill_rate=round_rate(update.fill_rate),
        lots=lots,
        timestamp=now,
        position=position,
    )
