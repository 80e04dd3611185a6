"""Where the simulated venue keeps its orders and trades, bounded as Binance bounds them.

Binance archives an order that ended CANCELED or EXPIRED with nothing executed once it is
older than 90 days: a query then answers -2026 "Order was canceled or expired with no
executed qty over 90 days ago and has been archived." (errors.md; reference §9). The
simulator does the same after `archive_after_ms`, and adds bounds of its own so a long run
keeps a flat memory: at most `max_closed_orders` closed orders (the oldest closed is forgotten
first, and then answers -2013 like an order that never existed), at most `max_trades` trades
per account for `myTrades`, and at most `max_archived` archived ids remembered for -2026.
Open orders are never pruned. Pruning happens when an order closes, so its cost is amortised
over the closes (no timer, no scan).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

from indexmaker.venues.binance_sim.errors import ApiError, unknown_order
from indexmaker.venues.binance_sim.orders import Order, Trade

OrderKey = tuple[str, str, int]  # (account, symbol, orderId)
ClientKey = tuple[str, str, str]  # (account, symbol, clientOrderId)
NINETY_DAYS_MS = 90 * 86_400_000
UNFILLED_ENDS = ("CANCELED", "EXPIRED", "EXPIRED_IN_MATCH")  # archived when nothing executed


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    archive_after_ms: int = NINETY_DAYS_MS  # closed unfilled CANCELED/EXPIRED -> -2026
    max_closed_orders: int = 10_000  # closed orders kept for queries, all accounts
    max_trades: int = 10_000  # myTrades history per account
    max_archived: int = 10_000  # archived order ids that still answer -2026
    max_transfers: int = 10_000  # finished deposits and withdrawals kept (wallet.py)


def archived_order() -> ApiError:
    return ApiError(
        -2026,
        "Order was canceled or expired with no executed qty over 90 days ago and has been "
        "archived.",
    )


class OrderStore:
    """Orders by id and by client id, closed-order retention, and each account's trades."""

    def __init__(self, retention: RetentionConfig | None = None) -> None:
        self.retention = retention or RetentionConfig()
        self.orders: dict[OrderKey, Order] = {}
        self.by_client: dict[ClientKey, Order] = {}  # the latest order with that client id
        self.trades: dict[str, deque[Trade]] = {}
        self._closed: OrderedDict[OrderKey, Order] = OrderedDict()  # in closing order
        self._unfilled: deque[tuple[int, OrderKey]] = deque()  # (closed at ms, key)
        self._archived: OrderedDict[OrderKey | ClientKey, None] = OrderedDict()
        self.pruned = 0  # closed orders forgotten or archived so far

    # ------------------------------------------------------------------ writes
    def add(self, order: Order) -> None:
        key = (order.account, order.symbol, order.order_id)
        self.orders[key] = order
        self.by_client[(order.account, order.symbol, order.client_order_id)] = order

    def add_trade(self, account: str, trade: Trade) -> None:
        history = self.trades.get(account)
        if history is None:
            history = self.trades[account] = deque(maxlen=self.retention.max_trades)
        history.append(trade)

    def closed(self, order: Order, now: int) -> None:
        """`order` reached a final status at `now` (ms); prunes what the bounds say."""
        key = (order.account, order.symbol, order.order_id)
        if self.orders.get(key) is not order or key in self._closed:
            return
        self._closed[key] = order
        if order.status in UNFILLED_ENDS and not order.trades:
            self._unfilled.append((now, key))
        self._prune(now)

    def _prune(self, now: int) -> None:
        retention = self.retention
        horizon = now - retention.archive_after_ms
        unfilled = self._unfilled
        while unfilled and unfilled[0][0] <= horizon:
            key = unfilled.popleft()[1]
            order = self._closed.pop(key, None)
            if order is not None:  # not already forgotten by the count bound
                self._forget(key, order, archive=True)
        while len(self._closed) > retention.max_closed_orders:
            key, order = self._closed.popitem(last=False)
            self._forget(key, order, archive=False)
        # Entries beyond the newest `max_closed_orders` name orders closed before every order
        # still kept: the count bound forgot them already.
        while len(unfilled) > retention.max_closed_orders:
            unfilled.popleft()

    def _forget(self, key: OrderKey, order: Order, archive: bool) -> None:
        self.pruned += 1
        del self.orders[key]
        client_key = (order.account, order.symbol, order.client_order_id)
        if self.by_client.get(client_key) is order:
            del self.by_client[client_key]
        if archive:
            archived = self._archived
            archived[key] = None
            archived[client_key] = None
            while len(archived) > 2 * self.retention.max_archived:  # two ids per order
                archived.popitem(last=False)

    # ------------------------------------------------------------------- reads
    def find(self, account: str, symbol: str, order_id: int | None, client_id: str | None) -> Order:
        """By orderId (and client id if both are given) or by client id; -2026 for an
        archived order, -2013 for one the venue does not know (or no longer keeps)."""
        order = None
        if order_id is not None:
            key: OrderKey | ClientKey = (account, symbol, order_id)
            order = self.orders.get((account, symbol, order_id))
            if order is not None and client_id and order.client_order_id != client_id:
                raise unknown_order()
        elif client_id:
            key = (account, symbol, client_id)
            order = self.by_client.get((account, symbol, client_id))
        else:
            raise unknown_order()
        if order is None:
            raise archived_order() if key in self._archived else unknown_order()
        return order

    def closed_keys(self) -> list[OrderKey]:
        """Closed orders still kept, oldest closed first (state_file.py)."""
        return list(self._closed)

    def archived_keys(self) -> list[OrderKey | ClientKey]:
        """Ids that answer -2026, oldest first (state_file.py)."""
        return list(self._archived)

    def restore_archived(self, keys: list[OrderKey | ClientKey]) -> None:
        """Ids archived before a restart answer -2026 again (state_file.py)."""
        for key in keys:
            self._archived[key] = None

    def sizes(self) -> dict[str, int]:
        """How much is held: the count-based measure of the bounds (tests, /sim admin)."""
        return {
            "orders": len(self.orders),
            "by_client": len(self.by_client),
            "closed": len(self._closed),
            "unfilled_closed": len(self._unfilled),
            "archived_ids": len(self._archived),
            "trades": sum(len(t) for t in self.trades.values()),
        }
