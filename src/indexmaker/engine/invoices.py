"""Mint invoices (SPEC §4): what an update spent, on what, and what goes back to the client."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from indexmaker.core.errors import InvariantViolation
from indexmaker.core.events import CollateralPosition, InvoiceLot, MintInvoice
from indexmaker.core.invoice_terms import invoice_terms, terms_hash
from indexmaker.core.money import (
    USDC_QUANTUM,
    exact_add,
    exact_sub,
    round_index_down,
    round_rate,
    round_usdc,
    round_usdc_down,
)
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
    exchange_fee = round_usdc(update.exchange_fee)
    fees = split_fee(exchange_fee, [fee for _, fee, _ in merged.values()])
    lots = tuple(
        InvoiceLot(
            last.asset,
            lot_id,
            last.price,
            quantity,
            fees[i],
            original_quantity=last.lot_quantity,
            remaining_quantity=last.lot_remaining,
            original_fee=last.lot_fee,
            created_at=last.opened_at,
            assigned_at=last.assigned_at,
        )
        for i, (lot_id, (quantity, _, last)) in enumerate(merged.items())
    )
    if update.payment_id is None:
        raise InvariantViolation(f"{update.client_order_id} invoiced before its mint")
    # Round the parts and derive the rest, so the invoice adds up to the last micro-USDC:
    # total = paid + remaining + management fee, paid = assets value + exchange fee.
    # The ledger keeps the exact change; the two differ by less than 0.000001.
    total = round_usdc(update.amount)
    paid = round_usdc(update.spent)
    management_fee = round_usdc(update.management_fee)
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
        basket_version=update.basket_version,
    )


def invoice_hash(invoice: MintInvoice) -> str:
    """0x + the SHA-256 (hex) of the invoice's terms as the client receives them
    (core/invoice_terms.py: every body field fixed when the mint is asked for; not
    `timestamp`, `position`, `invoice_hash`, `mint_tx_hash`). Recorded on chain with the mint
    (Custody.invoiceHashOf), so anyone holding the invoice body recomputes it from the body
    alone and checks it against the chain (`indexmaker verify-invoice`)."""
    return terms_hash(invoice_terms(invoice))


def split_fee(total: Decimal, shares: list[Decimal]) -> list[Decimal]:
    """Per-lot fees in USDC (6 dp) that add up exactly to `total` (the invoice's rounded
    exchange fee): each exact share is rounded down, and the micro-USDC left over go one each to
    the largest remainders (earliest lot first on ties). Falls back to plain rounding per lot if
    the shares do not round to `total` (they differ from it only in the 34th digit)."""
    floors = [round_usdc_down(share) for share in shares]
    left = exact_sub(total, *floors)
    scaled = left.scaleb(6)  # exact: micro-USDC left over
    units = int(scaled) if scaled == scaled.to_integral_value() else -1
    if not 0 <= units <= len(shares):
        return [round_usdc(share) for share in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: (-exact_sub(shares[i], floors[i]), i))
    for i in by_remainder[:units]:
        floors[i] = exact_add(floors[i], USDC_QUANTUM)
    return floors
