"""Client index orders reaching the engine: new orders and cancels (SPEC §3).

A new buy queues an update that waits for its collateral; a new sell opens a redemption
(engine/redemptions.py). Either against the client's open order on the other side of the same
index is weighed there first (engine/opposite_side.py). A cancel takes USDC not yet engaged
off a buy queue, or index units not yet sold off a redemption. Every refusal is answered with
its reason and changes nothing.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from indexmaker.core.errors import IndexMakerError, InvariantViolation
from indexmaker.core.events import (
    CancelIndexOrderRequest,
    CancelIndexOrderResponse,
    NewIndexOrderRequest,
    NewIndexOrderResponse,
    RequestStatus,
    SendToClient,
)
from indexmaker.engine.index_orders import OrderRejected
from indexmaker.engine.opposite_side import buy_against_sell, sell_against_buy
from indexmaker.model.order import IndexOrder, OrderStatus, OrderUpdate
from indexmaker.model.side import Side

if TYPE_CHECKING:
    from indexmaker.engine.engine import Engine


def new_order(engine: Engine, request: NewIndexOrderRequest, now: datetime) -> None:
    out = engine.solver.out
    try:
        if request.symbol not in engine.baskets:
            raise OrderRejected(f"unknown symbol {request.symbol}", OrderStatus.INVALID_SYMBOL)
        engine.orders.check_new(request)
    except OrderRejected as rejected:
        engine.orders.reject_id(request.client, request.client_order_id)
        response = NewIndexOrderResponse(
            request.client_order_id, RequestStatus.REJECTED, rejected.reason
        )
        out.append(SendToClient(request.client, response))
        return
    if request.side is Side.SELL:
        order = engine.orders.find(request.client, request.symbol)
        if order is not None:  # SPEC §3: a sell against the client's buy queue
            sell_against_buy(engine, request, order, now)
            return
        engine.orders.reject_id(request.client, request.client_order_id)  # seen: no replay
        refused = engine.redemptions.refusal(request)
        if refused is not None:  # too small a sell for the venue and the issuer
            response = NewIndexOrderResponse(
                request.client_order_id, RequestStatus.REJECTED, refused
            )
            out.append(SendToClient(request.client, response))
            return
        engine.redemptions.accept(request, engine.orders.next_arrival(), now)
        return
    redemption = engine.redemptions.find(request.client, request.symbol)
    if redemption is not None:  # SPEC §3: a buy against the client's redemption
        left = buy_against_sell(engine, request, redemption, now)
        if left is None:
            return
        request = dataclasses.replace(request, amount=left)
    update = engine.orders.add(request, now)
    at = len(out)
    out.append(
        SendToClient(
            request.client, NewIndexOrderResponse(request.client_order_id, RequestStatus.NEW)
        )
    )
    engine.solver.wait_for_collateral(update, now)
    if update.status is OrderStatus.MANAGE_COLLATERAL:  # tell the client what it waits for
        response = NewIndexOrderResponse(
            request.client_order_id, RequestStatus.NEW, engine.solver.waiting_reason(update)
        )
        out[at] = SendToClient(request.client, response)


def cancel_order(engine: Engine, request: CancelIndexOrderRequest) -> None:
    out = engine.solver.out
    redemption = engine.redemptions.get(request.client, request.client_order_id)
    if redemption is not None and redemption.symbol == request.symbol:
        engine.redemptions.cancel(request, redemption)
        return
    try:
        order = engine.orders.check_cancel(request)
    except OrderRejected as rejected:
        response = CancelIndexOrderResponse(
            request.client_order_id, RequestStatus.REJECTED, rejected.reason
        )
        out.append(SendToClient(request.client, response))
        return
    try:
        reduce_buy(engine, order, request.amount)
    except IndexMakerError as error:  # refused before any change; the client hears why
        response = CancelIndexOrderResponse(
            request.client_order_id, RequestStatus.REJECTED, f"cancel refused: {error}"
        )
        out.append(SendToClient(request.client, response))
        raise
    response = CancelIndexOrderResponse(request.client_order_id, RequestStatus.CANCELED)
    out.append(SendToClient(request.client, response))


def reduce_buy(engine: Engine, order: IndexOrder, amount: Decimal) -> None:
    """Take `amount` USDC not yet engaged off a buy queue, newest first (SPEC §3)."""
    reserved = {u.client_order_id for u in order.updates if has_reservation(engine, u)}
    # Validate against the collateral ledger first: both ledgers change, or neither.
    plan = engine.orders.plan_reduction(order, amount)
    for update, take in plan:
        if update.client_order_id in reserved:
            available = engine.collateral.unspent_of(update.client, update.client_order_id)
            if take > available:
                raise InvariantViolation(
                    f"{update.client_order_id}: cancel of {take} > unspent {available}"
                )
    for reduction in engine.orders.apply_reduction(plan):
        update = reduction.update
        if update.client_order_id in reserved:
            if reduction.removed:
                engine.collateral.release(update.client, update.client_order_id)
            else:
                engine.collateral.reduce(update.client, update.client_order_id, reduction.amount)
        engine.solver.collateral_changed(update.client)
        if reduction.removed:
            engine.solver.forget_waiting(update)
        else:
            engine.solver.settle(update)


def has_reservation(engine: Engine, update: OrderUpdate) -> bool:
    ledger = engine.collateral.ledger(update.client)
    return update.client_order_id in ledger.reservations
