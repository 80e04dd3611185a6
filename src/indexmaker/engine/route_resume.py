"""Given-up collateral hops and how they are routed again (issue 11).

The router gives a hop up after its tries (engine/collateral_router.py); the lot stays the client's,
in transit, where the hop left it. It is routed again, under the same hop key (the adapter
carries on from what the earlier attempts did on chain, so nothing moves twice):
- `route_retry_after` ([solver], SolverConfig) after it was given up, on the first tick past
  that time (the tick's own time: replay resumes it at the same input);
- on the next deposit (collateral_hops.deposit: the path may work again);
- on a `ResumeRoutes` input: the restarted service's recovery puts one in when lots are still
  given up after replay (app/recovery.py), the operator one by `indexmaker routes resume`
  (app/operator_requests.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from indexmaker.core.errors import InvalidInputError
from indexmaker.core.events import Alert, ResumeRoutes

if TYPE_CHECKING:
    from indexmaker.engine.collateral import CollateralLot
    from indexmaker.engine.engine import Engine


@dataclass(frozen=True, slots=True)
class GivenUpHop:
    """A given-up hop: its key, its lot, the bridge it waits for, the amount (USDC) it moves,
    when (the giving-up input's time; None: not known) and why it was given up."""

    hop_key: str
    lot: CollateralLot
    bridge: str
    amount: Decimal
    at: datetime | None
    reason: str

    @property
    def name(self) -> str:
        """The lot's operator name, "ORIGIN#SEQ" (ResumeRoutes.lot)."""
        return lot_name(self.lot)


def lot_name(lot: CollateralLot) -> str:
    """The lot's operator name, as in its hop key: "ORIGIN#SEQ" (the designation it was
    deposited on and its deposit number; a merged lot's names joined by "+")."""
    return lot.name


def resume_routes(engine: Engine, event: ResumeRoutes) -> None:
    """Route the lot `event.lot` names again (None: every given-up lot). A name no given-up
    lot has is refused (InvalidInputError naming the lots that are given up), nothing
    changed; none given up with `lot` None is no news."""
    hops = engine.router.given_up_hops()
    chosen = [h for h in hops if event.lot is None or h.name == event.lot]
    if event.lot is not None and not chosen:
        names = ", ".join(h.name for h in hops) or "none"
        raise InvalidInputError("lot", f"{event.lot} is not a given-up lot (given up: {names})")
    _resume(engine, chosen, event.why)


def resume_due(engine: Engine, now: datetime) -> None:
    """Route again every lot given up at least `route_retry_after` before `now`."""
    after = engine.solver.config.route_retry_after
    due = [h for h in engine.router.given_up_hops() if h.at is not None and h.at + after <= now]
    if due:
        _resume(engine, due, f"{after.total_seconds():g} s after it was given up")


def _resume(engine: Engine, hops: list[GivenUpHop], why: str) -> None:
    commands = engine.router.resume({h.hop_key for h in hops})
    engine.solver.out.extend(commands)
    for hop, command in zip(hops, commands, strict=True):
        engine.solver.out.append(
            Alert(
                "route_resumed",
                f"lot {hop.name} resumed ({why}): {command.transfer_id} {hop.bridge} "
                f"{command.source} -> {command.destination}, {hop.amount} USDC",
            )
        )


def retry_at(engine: Engine, hop: GivenUpHop) -> datetime | None:
    """When the hop is routed again of itself (None: time not known)."""
    return None if hop.at is None else hop.at + engine.solver.config.route_retry_after


def given_up_view(engine: Engine) -> list[dict[str, str | None]]:
    """The given-up lots for the operator (`indexmaker routes`), oldest first: lot name,
    client, amount (USDC), where it waits, the bridge, why and when given up (ISO 8601) and
    when it is routed again of itself."""

    def iso(at: datetime | None) -> str | None:
        return None if at is None else at.isoformat()

    return [
        {
            "lot": hop.name,
            "client": f"{hop.lot.client[0]}:{hop.lot.client[1]}",
            "amount": f"{hop.amount:f}",
            "location": str(hop.lot.location),
            "bridge": hop.bridge,
            "waits": hop.lot.held,
            "reason": hop.reason,
            "given_up_at": iso(hop.at),
            "retry_at": iso(retry_at(engine, hop)),
        }
        for hop in engine.router.given_up_hops()
    ]


def held_view(engine: Engine) -> list[dict[str, str]]:
    """The lots held on their chain below their route's cost (engine/route_holds.py: routed
    with the client's next deposit there, not by a resume), by client then deposit: lot
    name, client, amount (USDC), where and why it waits."""
    return [
        {
            "lot": lot_name(lot),
            "client": f"{client[0]}:{client[1]}",
            "amount": f"{lot.gross:f}",
            "location": str(lot.location),
            "waits": lot.held,
        }
        for client in engine.collateral.clients()
        for lot in engine.collateral.ledger(client).lots
        if lot.below_cost
    ]
