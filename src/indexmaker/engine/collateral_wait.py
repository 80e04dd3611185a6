"""Buy updates waiting for their collateral (SPEC §3 ManageCollateral), FIFO per client.

An update accepted before the client's collateral is ready waits here. When a client's ready
collateral grows its waiting updates are tried in arrival order, up to the first that does not
fit; an update that waits longer than `collateral_timeout` is refused (InvalidCollateral) with
what was ready and in transit. Reserved updates become Ready and the client hears so.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from indexmaker.core.errors import InsufficientFundsError
from indexmaker.core.events import (
    Command,
    FillStatus,
    NewIndexOrderResponse,
    RequestStatus,
    SendToClient,
)
from indexmaker.core.ids import ClientKey
from indexmaker.core.money import usdc_text
from indexmaker.engine.collateral import ClientLedger, CollateralManager
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.index_orders import IndexOrderManager
from indexmaker.model.order import OrderStatus, OrderUpdate


class CollateralWait:
    def __init__(
        self,
        config: SolverConfig,
        orders: IndexOrderManager,
        collateral: CollateralManager,
        out: list[Command],
        report: Callable[[OrderUpdate, FillStatus], None],
    ) -> None:
        self.config = config
        self.orders = orders
        self.collateral = collateral
        self.out = out
        self._report = report  # the solver's fill report (COLLATERAL_READY)
        self._waiting: dict[int, OrderUpdate] = {}  # ManageCollateral, by arrival
        self._waiting_by_client: dict[ClientKey, dict[int, OrderUpdate]] = {}
        # Clients whose ready collateral grew, in the order it grew: a dict, not a set, so the
        # order they are served in (and their reports) is the same in every process.
        self._changed: dict[ClientKey, None] = {}

    def add(self, update: OrderUpdate) -> None:
        """`update` waits for collateral; reserved at once if the client's is ready."""
        update.move_to(OrderStatus.MANAGE_COLLATERAL)
        self._waiting[update.arrival] = update
        self._waiting_by_client.setdefault(update.client, {})[update.arrival] = update
        self._reserve_for(update.client)

    def changed(self, client: ClientKey) -> None:
        """The client's ready collateral grew: its waiting updates are tried on the next check."""
        self._changed[client] = None

    def forget(self, update: OrderUpdate) -> None:
        self._waiting.pop(update.arrival, None)
        mine = self._waiting_by_client.get(update.client)
        if mine is not None:
            mine.pop(update.arrival, None)
            if not mine:
                del self._waiting_by_client[update.client]

    def check(self, now: datetime) -> None:
        """Reserve for clients whose collateral changed; refuse updates waiting too long."""
        # Only clients whose collateral changed can have become reservable: O(changes).
        while self._changed:
            client = next(iter(self._changed))
            del self._changed[client]
            self._reserve_for(client)
        # Waiting updates are in arrival (= time) order: expire from the oldest, stop early.
        while self._waiting:
            update = next(iter(self._waiting.values()))
            if now - update.received_at < self.config.collateral_timeout:
                break
            self.forget(update)
            self._fail_collateral(update)
            self._changed[update.client] = None  # its later updates may fit now

    def _reserve_for(self, client: ClientKey) -> None:
        """Reserve for the client's waiting updates in FIFO order, up to the first that cannot."""
        for update in list(self._waiting_by_client.get(client, {}).values()):
            try:
                reservation = self.collateral.reserve(
                    update.client, update.client_order_id, update.amount
                )
            except InsufficientFundsError:
                return  # later updates wait behind this one
            self.forget(update)
            update.reservation = reservation
            update.management_fee = reservation.fee
            if update.net_amount <= 0:
                self.collateral.release(update.client, update.client_order_id)
                self._fail(update, f"amount {update.amount} does not cover routing fees")
                continue
            update.move_to(OrderStatus.READY)
            self._report(update, FillStatus.COLLATERAL_READY)

    def reason(self, update: OrderUpdate) -> str:
        """What an order accepted without its collateral waits for, and until when."""
        ledger = self.collateral.ledger(update.client)
        return (
            f"waiting for collateral: need {update.amount}, "
            f"ready {usdc_text(ledger.ready_available())}, "
            f"in transit {usdc_text(ledger.in_transit())}{_held(ledger)}; refused if not "
            f"ready within {self.config.collateral_timeout}"
        )

    def _fail_collateral(self, update: OrderUpdate) -> None:
        ledger = self.collateral.ledger(update.client)
        self._fail(
            update,
            f"collateral not ready within {self.config.collateral_timeout}: need {update.amount}, "
            f"ready {usdc_text(ledger.ready_available())}, "
            f"in transit {usdc_text(ledger.in_transit())}{_held(ledger)}",
        )

    def _fail(self, update: OrderUpdate, reason: str) -> None:
        """InvalidCollateral: the update leaves and the client is told why."""
        update.move_to(OrderStatus.INVALID_COLLATERAL)
        update.reason = reason
        self.orders.remove(update)
        response = NewIndexOrderResponse(update.client_order_id, RequestStatus.REJECTED, reason)
        self.out.append(SendToClient(update.client, response))


def _held(ledger: ClientLedger) -> str:
    """ ", held X (below the route's cost)" when the client has lots held on their chain."""
    held = ledger.held()
    return f", held {usdc_text(held)} (below the route's cost)" if held > 0 else ""
