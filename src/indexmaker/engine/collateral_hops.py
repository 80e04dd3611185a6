"""Collateral deposits and the hops that route them to the exchange (SPEC §2, §7).

A deposit observed on a chain starts its route (engine/collateral_router.py); each hop's
completion starts the next, and the last makes the collateral ready for waiting buys. A lot
that cannot pay the cost of its route from where it is waits there, held, merged with the
client's next lot there into one hop once they cover it (route_holds.py). A hop
whose outcome is unknown is asked about (pending_hops.py); a failed one is retried or
reported. A redemption's own withdrawals are answered in redemption_settlement.py.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from indexmaker.core.errors import InvalidInputError
from indexmaker.core.events import (
    Alert,
    DepositObserved,
    HopCompleted,
    HopFailed,
    HopReport,
    HopState,
    RouteCostQuoted,
)
from indexmaker.core.ids import TransferId
from indexmaker.core.money import exact_add, usdc_text
from indexmaker.engine.collateral import CollateralLot
from indexmaker.engine.route_holds import merge_lots, path_from
from indexmaker.engine.route_resume import lot_name

if TYPE_CHECKING:
    from indexmaker.engine.engine import Engine


def deposit(engine: Engine, event: DepositObserved, now: datetime) -> None:
    if not engine.router.can_route(event.designation):
        raise InvalidInputError("designation", f"no route from {event.designation}")
    lot = engine.collateral.on_deposit(
        event.client, event.seq_num, event.amount, event.designation, event.block_number
    )
    if lot is None:
        return  # the chain delivered this deposit before
    route_lot(engine, lot, now)
    # A new deposit: the path may work again, so given-up hops are resumed (issue 11).
    engine.solver.out.extend(engine.router.resume())


def hop_in_flight(engine: Engine, transfer_id: TransferId) -> bool:
    """A collateral hop or a redemption's withdrawal still under way."""
    settlement = engine.redemptions.settlement
    return engine.router.is_in_flight(transfer_id) or settlement.withdrawing(transfer_id)


def hop_completed(engine: Engine, event: HopCompleted, now: datetime) -> None:
    result = engine.router.on_completed(event.transfer_id, event.amount_received)
    if result is None:
        if not engine.router.completed(event.transfer_id):  # else: a repeat, no news
            engine.solver.out.append(Alert("unknown_transfer", f"{event.transfer_id} completed"))
        return
    lot, hop, fee = result
    engine.pending_hops.forget(event.transfer_id)
    engine.collateral.on_hop(lot, hop.destination, fee, hop.bridge)
    route_lot(engine, lot, now)


def route_lot(engine: Engine, lot: CollateralLot, now: datetime) -> None:
    """`lot` is where it is (deposited, or a hop brought it): ready at the destination; else
    with the client's lots held there, routed on as one lot when they are above the cost of
    the route from there (merged when there are several), or held there (route_holds.py)."""
    router, holds = engine.router, engine.route_holds
    if lot.location == router.destination:
        engine.collateral.mark_ready(lot)
        engine.solver.collateral_changed(lot.client)
        engine.solver.tick_collateral(now)
        return
    held = holds.held_at(lot.client, lot.location)
    cost = holds.route_cost(path_from(router, lot.location))
    if exact_add(lot.net, *(h.net for h in held)) <= cost:  # nothing would be left: held
        holds.hold(lot, cost)
        if not held:  # one alert per held group: a flood of dust deposits is not an alert flood
            engine.solver.out.append(Alert("collateral_held", _held_message(lot, held, cost)))
        return
    _route_group(engine, [*holds.take(lot.client, lot.location), lot])


def route_cost_quoted(engine: Engine, event: RouteCostQuoted) -> None:
    """A new cost of the hop from `event.source`: every held group its route now leaves
    something of is routed (in the order they were first held: the same in every replay)."""
    router, holds = engine.router, engine.route_holds
    holds.quote(router.hop_from(event.source), event.source, event.bridge, event.cost)
    for client, location in holds.groups():
        held = holds.held_at(client, location)
        cost = holds.route_cost(path_from(router, location))
        if exact_add(*(lot.net for lot in held)) > cost:
            _route_group(engine, holds.take(client, location))
        else:
            holds.still_held(held, cost)


def _route_group(engine: Engine, lots: list[CollateralLot]) -> None:
    """Send `lots` (one client's, at one designation) on their next hop as one lot."""
    lot = lots[0] if len(lots) == 1 else merge_lots(engine.collateral.ledger(lots[0].client), lots)
    command = engine.router.start(lot)
    if command is not None:
        engine.solver.out.append(command)


def _held_message(lot: CollateralLot, held: list[CollateralLot], cost: Decimal) -> str:
    total = exact_add(lot.net, *(h.net for h in held))
    return (
        f"lot {lot.name} of client {lot.client[0]}:{lot.client[1]} ({usdc_text(lot.net)} USDC, "
        f"{usdc_text(total)} with the lots held with it) {lot.held}; routed with the "
        f"client's next lot there once they are above {usdc_text(cost)} USDC"
    )


def hop_report(engine: Engine, event: HopReport, now: datetime) -> None:
    """The chain's answer about a hop whose outcome was unknown: done counts as its
    completion, pending waits for it, not found resends it under the same id."""
    if event.state is HopState.PENDING:
        query = engine.router.on_status_unknown(event.transfer_id)
        if query is not None:  # still in flight: ask again later (pending_hops.py)
            engine.pending_hops.on_pending(query, now)
        return
    if event.state is HopState.DONE:
        if event.amount_received is None:
            raise InvalidInputError("amount_received", "a done hop names what arrived")
        # The router works the fee out itself (sent − received); the report's is a note.
        fee = event.fee if event.fee is not None else Decimal(0)
        hop_completed(engine, HopCompleted(event.transfer_id, event.amount_received, fee), now)
    elif event.state is HopState.NOT_FOUND:
        if not engine.router.is_in_flight(event.transfer_id):
            return
        engine.pending_hops.forget(event.transfer_id)
        resend = engine.router.on_not_found(event.transfer_id)
        if resend is None:
            route_failed(engine, event.transfer_id, event.reason or "not found", now)
        else:
            engine.solver.out.append(resend)


def hop_failed(engine: Engine, event: HopFailed, now: datetime) -> None:
    engine.pending_hops.forget(event.transfer_id)
    retry = engine.router.on_failed(event.transfer_id)
    if retry is None:
        route_failed(engine, event.transfer_id, event.reason, now)
    else:
        engine.solver.out.append(retry)


def route_failed(engine: Engine, transfer_id: TransferId, reason: str, now: datetime) -> None:
    """The router gave the hop up: one alert naming the lot, where it waits (still the
    client's, in transit) and every way it resumes (engine/route_resume.py)."""
    message = f"{transfer_id} failed for good: {reason}"
    lot = engine.router.held(transfer_id)
    if lot is not None:
        engine.router.note_given_up(transfer_id, now, reason)
        name = lot_name(lot)
        after = engine.solver.config.route_retry_after
        message += (
            f"; lot {name} of client {lot.client[0]}:{lot.client[1]} ({lot.net} USDC) waits "
            f"{lot.held}; it is routed again at {(now + after).isoformat()} "
            f"([solver] route_retry_after), on the next deposit, when the service restarts, "
            f"or now by `indexmaker routes resume --lot {name}`"
        )
    engine.solver.out.append(Alert("route_failed", message))
