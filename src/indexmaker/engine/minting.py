"""Minting (SPEC §3): mintable order updates become `MintIndex` commands, and a confirmation
ends the update with its invoice.

A fully mintable update is minted at the next tick, a partly mintable one once its fills have
been quiet for `mint_idle`. A retryable `MintFailed` resends the same payment id (the custody
contract refuses a repeat, so a retry never mints twice), at most `MINT_ATTEMPTS` sends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from indexmaker.core.events import (
    Alert,
    Command,
    MintFailed,
    MintIndex,
    MintInvoice,
    SendToClient,
)
from indexmaker.core.ids import ClientKey, PaymentId
from indexmaker.core.money import round_index_down
from indexmaker.engine.collateral import CollateralManager
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.index_orders import IndexOrderManager
from indexmaker.engine.invoices import build_invoice, invoice_hash
from indexmaker.model.order import OrderStatus, OrderUpdate

MINT_ATTEMPTS = 3  # sends of one MintIndex before a retryable failure goes to the operator


class Minter:
    def __init__(
        self,
        config: SolverConfig,
        orders: IndexOrderManager,
        collateral: CollateralManager,
        out: list[Command],
        collateral_changed: Callable[[ClientKey], None],
    ) -> None:
        self.config = config
        self.orders = orders
        self.collateral = collateral
        self.out = out
        self._collateral_changed = collateral_changed
        self._mintable: dict[int, OrderUpdate] = {}  # by arrival: minted in arrival order
        self._minting: dict[PaymentId, OrderUpdate] = {}
        self._next_payment = 1
        self._mint_attempts: dict[PaymentId, int] = {}
        # The invoice's terms, fixed when the mint is asked for: their hash goes on chain.
        self._invoices: dict[PaymentId, tuple[MintInvoice, str]] = {}

    def queue(self, update: OrderUpdate) -> None:
        """A partly or fully mintable update waits here for `mint_ready`."""
        self._mintable[update.arrival] = update

    def mint_ready(self, now: datetime) -> None:
        """Mint what is due now: fully mintable at once, partly mintable after mint_idle."""
        for arrival, update in list(self._mintable.items()):
            if update.status.is_done:
                del self._mintable[arrival]
                continue
            idle = update.last_fill_at is None or now - update.last_fill_at >= self.config.mint_idle
            if update.status is OrderStatus.FULLY_MINTABLE or idle:
                del self._mintable[arrival]
                self._mint(update, now)

    def _mint(self, update: OrderUpdate, now: datetime) -> None:
        payment_id = PaymentId(f"P{self._next_payment}")
        self._next_payment += 1
        update.payment_id = payment_id
        update.move_to(OrderStatus.MINTING)
        self._minting[payment_id] = update
        terms = build_invoice(update, now)
        self._invoices[payment_id] = (terms, invoice_hash(terms))
        self.out.append(self._command(payment_id, update))

    def _command(self, payment_id: PaymentId, update: OrderUpdate) -> MintIndex:
        quantity = round_index_down(update.filled_quantity)
        digest = self._invoices[payment_id][1]
        return MintIndex(payment_id, update.client, update.symbol, quantity, digest)

    def is_minting(self, payment_id: PaymentId) -> bool:
        """A mint was asked for and neither confirmed nor failed (recovery re-checks it)."""
        return payment_id in self._minting

    def on_failed(self, event: MintFailed) -> None:
        """Retry a retryable failure with the same payment id (the contract refuses a repeat,
        so it never mints twice), at most `MINT_ATTEMPTS` times; then the operator decides."""
        update = self._minting.get(event.payment_id)
        if update is None:
            self.out.append(Alert("unknown_mint", f"failure of unknown payment {event.payment_id}"))
            return
        attempts = self._mint_attempts.get(event.payment_id, 1)
        if event.retryable and attempts < MINT_ATTEMPTS:
            self._mint_attempts[event.payment_id] = attempts + 1
            self.out.append(self._command(event.payment_id, update))
            return
        self.out.append(
            Alert(
                "mint_failed",
                f"{event.payment_id} for {update.client_order_id} failed after {attempts} "
                f"attempt(s): {event.reason}; left minting for the operator",
            )
        )

    def on_confirmed(self, payment_id: PaymentId, now: datetime, tx_hash: str | None) -> None:
        """The change returns to the client, the update ends, the client gets the invoice:
        the terms fixed at the mint (whose hash is on chain), with the mint's transaction."""
        update = self._minting.pop(payment_id, None)
        self._mint_attempts.pop(payment_id, None)
        terms, digest = self._invoices.pop(payment_id, (None, ""))
        if update is None:
            self.out.append(Alert("unknown_mint", f"confirmation of unknown payment {payment_id}"))
            return
        self.collateral.release(update.client, update.client_order_id)  # change back to client
        self._collateral_changed(update.client)
        update.move_to(OrderStatus.MINTED)
        self.orders.remove(update)
        position = self.collateral.position(update.client)
        if terms is None:  # cannot happen: every minting update has its terms
            terms = build_invoice(update, now)
            digest = invoice_hash(terms)
        invoice = replace(
            terms, timestamp=now, position=position, invoice_hash=digest, mint_tx_hash=tx_hash
        )
        self.out.append(SendToClient(update.client, invoice))
