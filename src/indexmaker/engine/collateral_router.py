"""Collateral router: moves each deposit lot hop by hop between designations to the exchange
(SPEC §2, §7), retries a refused hop, gives a hop up after `max_attempts` and resumes it
(route_resume.py). The lots themselves are engine/collateral.py's.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from indexmaker.core.errors import InvariantViolation
from indexmaker.core.events import QueryHop, RouteCollateral
from indexmaker.core.ids import Designation, TransferId
from indexmaker.engine.collateral import CollateralLot
from indexmaker.engine.route_resume import GivenUpHop

KEEP_COMPLETED = 4096  # completed transfer ids remembered, so a repeated report is no alert


class RouteError(InvariantViolation):
    pass


@dataclass(frozen=True, slots=True)
class Hop:
    bridge: str
    source: Designation
    destination: Designation


@dataclass(slots=True)
class _Transfer:
    lot: CollateralLot
    hop: Hop
    amount: Decimal
    attempts: int = 1
    command: RouteCollateral | None = None
    given_up_at: datetime | None = None  # when given up (the input's time), and why
    reason: str = ""


class CollateralRouter:
    """Moves each deposit lot hop by hop to the exchange designation."""

    def __init__(self, hops: list[Hop], destination: Designation, max_attempts: int = 3) -> None:
        self._next_hop = {hop.source: hop for hop in hops}
        self.destination = destination
        self._max_attempts = max_attempts
        self._transfers: dict[TransferId, _Transfer] = {}
        self._completed: OrderedDict[TransferId, None] = OrderedDict()
        # Hops given up after max_attempts, by hop key: their lots wait where the hop left
        # them (held) until `resume` routes them again (issue 11).
        self._given_up: dict[str, _Transfer] = {}
        self._next_id = 1

    def hop_from(self, source: Designation) -> Hop | None:
        """The hop that leaves `source` (None: none, e.g. at the destination)."""
        return self._next_hop.get(source)

    def hops(self) -> list[Hop]:
        return list(self._next_hop.values())

    def can_route(self, source: Designation) -> bool:
        location = source
        for _ in range(len(self._next_hop) + 1):
            if location == self.destination:
                return True
            hop = self._next_hop.get(location)
            if hop is None:
                return False
            location = hop.destination
        return False

    def start(self, lot: CollateralLot) -> RouteCollateral | None:
        """The first hop's command, or None when the lot already sits at the destination."""
        if lot.location == self.destination:
            return None
        return self._command(lot, self._hop_from(lot.location), lot.net, attempts=1)

    def on_completed(
        self, transfer_id: TransferId, received: Decimal
    ) -> tuple[CollateralLot, Hop, Decimal] | None:
        """(lot, hop, fee); None for an unknown transfer. The lot's next hop (if any) is the
        caller's to start once the fee is booked (`start`: it may be held below its cost)."""
        transfer = self._transfers.get(transfer_id)
        if transfer is None:
            return None
        if not received.is_finite() or received < 0 or received > transfer.amount:
            # Validate before forgetting the transfer: a bad report must not strand the lot.
            raise RouteError(f"{transfer_id}: received {received} of {transfer.amount}")
        del self._transfers[transfer_id]
        self._completed[transfer_id] = None
        while len(self._completed) > KEEP_COMPLETED:
            self._completed.popitem(last=False)
        return transfer.lot, transfer.hop, transfer.amount - received

    def completed(self, transfer_id: TransferId) -> bool:
        """The transfer completed recently (a repeated report of it is no news)."""
        return transfer_id in self._completed

    def on_failed(self, transfer_id: TransferId) -> RouteCollateral | None:
        """A definite refusal (nothing moved): retry the same hop under a new id, up to
        max_attempts; None when given up."""
        transfer = self._transfers.pop(transfer_id, None)
        if transfer is None:
            return None
        if transfer.attempts >= self._max_attempts:
            self._give_up(transfer)
            return None
        return self._command(transfer.lot, transfer.hop, transfer.amount, transfer.attempts + 1)

    def on_status_unknown(self, transfer_id: TransferId) -> QueryHop | None:
        """The hop may have happened: ask the chain or bridge by its transfer id before any
        resend. None when the transfer is no longer in flight (it completed meanwhile)."""
        transfer = self._transfers.get(transfer_id)
        if transfer is None:
            return None
        return QueryHop(transfer_id, transfer.hop.bridge, transfer.amount)

    def on_not_found(self, transfer_id: TransferId) -> RouteCollateral | None:
        """The chain has no trace of the hop: resend it under the same transfer id (the
        chain refuses a repeat, so a late original never moves the amount twice), up to
        max_attempts. None when given up or no longer in flight."""
        transfer = self._transfers.get(transfer_id)
        if transfer is None or transfer.command is None:
            return None
        if transfer.attempts >= self._max_attempts:
            del self._transfers[transfer_id]
            self._give_up(transfer)
            return None
        transfer.attempts += 1
        return transfer.command

    def held(self, transfer_id: TransferId) -> CollateralLot | None:
        """The lot of a transfer given up (waiting where its hop left it), else None."""
        for transfer in self._given_up.values():
            if transfer.command is not None and transfer.command.transfer_id == transfer_id:
                return transfer.lot
        return None

    def given_up(self) -> list[CollateralLot]:
        """Lots whose hop was given up, waiting for `resume` (oldest first)."""
        return [transfer.lot for transfer in self._given_up.values()]

    def note_given_up(self, transfer_id: TransferId, at: datetime, reason: str) -> None:
        """Record when (the input's time) and why the hop of `transfer_id` was given up."""
        for transfer in self._given_up.values():
            if transfer.command is not None and transfer.command.transfer_id == transfer_id:
                transfer.given_up_at, transfer.reason = at, reason

    def given_up_hops(self) -> list[GivenUpHop]:
        """Every given-up hop (oldest first): its lot, hop, amount, when and why."""
        return [
            GivenUpHop(key, t.lot, t.hop.bridge, t.amount, t.given_up_at, t.reason)
            for key, t in self._given_up.items()
        ]

    def resume(self, hop_keys: Collection[str] | None = None) -> list[RouteCollateral]:
        """Route given-up lots again (those of `hop_keys`; None: every one) from where their
        hop left them: the same hop (same hop key, so an adapter carries on from what the
        earlier attempts did on chain and never moves twice) under a new transfer id, with
        max_attempts tries again. Oldest first."""
        out = []
        for key, transfer in list(self._given_up.items()):
            if hop_keys is not None and key not in hop_keys:
                continue
            del self._given_up[key]
            transfer.lot.held = ""
            out.append(self._command(transfer.lot, transfer.hop, transfer.amount, attempts=1))
        return out

    def _give_up(self, transfer: _Transfer) -> None:
        lot, hop = transfer.lot, transfer.hop
        lot.held = f"at {hop.source} after the {hop.bridge} hop to {hop.destination} gave up"
        if transfer.command is not None:
            self._given_up[transfer.command.hop_key] = transfer

    def in_flight(self) -> int:
        return len(self._transfers)

    def transit_notes(self) -> dict[int, str]:
        """By `id()` of each lot with a hop in flight: "in transit: <bridge> hop <transfer
        id> to <destination>" (the query API's lot status; the lot is still booked at the
        hop's source until the hop completes)."""
        return {
            id(t.lot): f"in transit: {t.hop.bridge} hop {transfer_id} to {t.hop.destination}"
            for transfer_id, t in self._transfers.items()
        }

    def is_in_flight(self, transfer_id: TransferId) -> bool:
        """The transfer's hop has neither completed nor failed (recovery re-checks it)."""
        return transfer_id in self._transfers

    def _hop_from(self, location: Designation) -> Hop:
        hop = self._next_hop.get(location)
        if hop is None:
            raise RouteError(f"no route from {location} to {self.destination}")
        return hop

    def _command(
        self, lot: CollateralLot, hop: Hop, amount: Decimal, attempts: int
    ) -> RouteCollateral:
        transfer_id = TransferId(f"T{self._next_id}")
        self._next_id += 1
        command = RouteCollateral(
            transfer_id=transfer_id,
            client=lot.client,
            bridge=hop.bridge,
            source=hop.source,
            destination=hop.destination,
            amount=amount,
            hop_key=f"{lot.name}:{hop.bridge}",
            # A block of the hop's source chain only when it is the deposit's (issue 11).
            from_block=lot.block if hop.source == lot.origin else 0,
        )
        self._transfers[transfer_id] = _Transfer(lot, hop, amount, attempts, command)
        return command
