"""Our Binance orders: tracked before they are sent, their reports turned into engine events
once each (pure: no I/O).

Both the order answer (`order.place` FULL: every fill of an IOC) and the user-data stream
(`executionReport`) report the same trades; fills are deduplicated by (symbol, trade id), an
order is accepted and closed once, and a fill reported after its order closed is still
delivered (SPEC §6). Commissions follow SPEC §6: charged in the base asset they reduce the
fill's quantity (and are valued at the fill price), in the quote asset they are the fee, in
another asset they are converted to the quote asset at that asset's current price.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from indexmaker.core.events import (
    EngineInput,
    ExchangeFill,
    ExchangeOrderAccepted,
    ExchangeOrderClosed,
    ExchangeOrderStatus,
    PlaceExchangeOrder,
)
from indexmaker.core.ids import ExchangeOrderId, Symbol, TradeId
from indexmaker.core.money import MONEY_CONTEXT, ZERO, dec
from indexmaker.model.filters import SymbolRules

_CTX = MONEY_CONTEXT.copy()

# Binance order status -> ours (enums.md). PENDING_CANCEL is unused on Spot.
STATUS = {
    "NEW": ExchangeOrderStatus.LIVE,
    "PENDING_NEW": ExchangeOrderStatus.LIVE,
    "PARTIALLY_FILLED": ExchangeOrderStatus.LIVE,
    "PENDING_CANCEL": ExchangeOrderStatus.LIVE,
    "FILLED": ExchangeOrderStatus.FILLED,
    "CANCELED": ExchangeOrderStatus.CANCELLED,
    "REJECTED": ExchangeOrderStatus.REJECTED,
    "EXPIRED": ExchangeOrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": ExchangeOrderStatus.EXPIRED,
}

PriceOf = Callable[[str, str], Decimal | None]  # (asset, quote) -> price of 1 asset in quote


def text(value: Decimal) -> str:
    """A Decimal as Binance wants it: plain notation, never scientific (python-binance #23)."""
    return format(value, "f")


@dataclass(slots=True)
class TrackedOrder:
    order: PlaceExchangeOrder
    status: ExchangeOrderStatus = ExchangeOrderStatus.PENDING
    venue_order_id: int | None = None
    filled: Decimal = ZERO
    accepted: bool = False
    closed: bool = False
    trade_ids: set[int] = field(default_factory=set)


class OrderBookkeeping:
    """Every order we sent, by our client order id, and the trades already reported."""

    def __init__(self, rules: Mapping[Symbol, SymbolRules], price_of: PriceOf) -> None:
        self.rules = rules
        self.price_of = price_of
        self.orders: dict[ExchangeOrderId, TrackedOrder] = {}
        self._seen_trades: set[tuple[str, int]] = set()
        self.duplicates = 0
        self.unpriced_commissions = 0

    # ------------------------------------------------------------------ before sending

    def track(self, order: PlaceExchangeOrder) -> TrackedOrder:
        """Record the order before it leaves; a second track of the same id is refused."""
        if order.order_id in self.orders:
            raise ValueError(f"order {order.order_id} is already tracked")
        tracked = TrackedOrder(order)
        self.orders[order.order_id] = tracked
        return tracked

    def place_params(self, order: PlaceExchangeOrder) -> dict[str, object]:
        """`order.place` / `POST /api/v3/order` parameters of a LIMIT IOC with our id."""
        return {
            "symbol": order.symbol,
            "side": order.side.name,
            "type": "LIMIT",
            "timeInForce": "IOC",
            "price": text(order.price),
            "quantity": text(order.quantity),
            "newClientOrderId": order.order_id,
            "newOrderRespType": "FULL",
        }

    # ------------------------------------------------------------------ reports

    def on_order_answer(self, answer: Mapping[str, Any]) -> list[EngineInput]:
        """An `order.place` (FULL) / `order.status` / `order.cancel` result."""
        tracked = self.orders.get(ExchangeOrderId(str(answer.get("clientOrderId", ""))))
        if tracked is None:
            orig = answer.get("origClientOrderId")
            tracked = self.orders.get(ExchangeOrderId(str(orig))) if orig else None
        if tracked is None:
            return []
        events: list[EngineInput] = []
        if "orderId" in answer:
            tracked.venue_order_id = int(answer["orderId"])
        self._accept(tracked, events)
        for fill in answer.get("fills") or ():
            self._fill(
                tracked,
                int(fill["tradeId"]),
                dec(str(fill["price"])),
                dec(str(fill["qty"])),
                dec(str(fill["commission"])),
                str(fill["commissionAsset"]),
                events,
            )
        self._close(tracked, str(answer.get("status", "")), answer.get("expiryReason"), events)
        return events

    def on_trades(
        self, order_id: ExchangeOrderId, trades: list[Mapping[str, Any]]
    ) -> list[EngineInput]:
        """`myTrades` rows of one order (reconciliation)."""
        tracked = self.orders.get(order_id)
        if tracked is None:
            return []
        events: list[EngineInput] = []
        for row in trades:
            self._fill(
                tracked,
                int(row["id"]),
                dec(str(row["price"])),
                dec(str(row["qty"])),
                dec(str(row["commission"])),
                str(row["commissionAsset"]),
                events,
            )
        return events

    def on_execution_report(self, report: Mapping[str, Any]) -> list[EngineInput]:
        """A user-data `executionReport` (user-data-stream.md): x = execution type,
        X = order status, t = trade id, l/L = last quantity/price, n/N = commission."""
        client_id = str(report.get("C") or report.get("c") or "")
        tracked = self.orders.get(ExchangeOrderId(client_id))
        if tracked is None:
            tracked = self.orders.get(ExchangeOrderId(str(report.get("c", ""))))
        if tracked is None:
            return []  # not ours (another process on the account, or forgotten)
        events: list[EngineInput] = []
        tracked.venue_order_id = int(report.get("i", 0)) or tracked.venue_order_id
        execution = report.get("x")
        if execution == "REJECTED":
            self._close(tracked, "REJECTED", report.get("r"), events)
            return events
        self._accept(tracked, events)
        if execution == "TRADE":
            self._fill(
                tracked,
                int(report["t"]),
                dec(str(report["L"])),
                dec(str(report["l"])),
                dec(str(report.get("n") or "0")),
                str(report.get("N") or ""),
                events,
            )
        self._close(tracked, str(report.get("X", "")), None, events)
        return events

    def on_rejected(self, order_id: ExchangeOrderId, reason: str) -> list[EngineInput]:
        """A definite refusal before the engine took the order (-1013, -2010, ...)."""
        tracked = self.orders.get(order_id)
        if tracked is None:
            return []
        events: list[EngineInput] = []
        self._close(tracked, "REJECTED", reason, events)
        return events

    # ------------------------------------------------------------------ internals

    def _accept(self, tracked: TrackedOrder, events: list[EngineInput]) -> None:
        if not tracked.accepted and not tracked.closed:
            tracked.accepted = True
            tracked.status = ExchangeOrderStatus.LIVE
            events.append(ExchangeOrderAccepted(tracked.order.order_id))

    def _close(
        self, tracked: TrackedOrder, status: str, reason: object, events: list[EngineInput]
    ) -> None:
        ours = STATUS.get(status)
        if ours is None or not ours.is_final or tracked.closed:
            return
        tracked.closed = True
        tracked.status = ours
        events.append(
            ExchangeOrderClosed(tracked.order.order_id, ours, str(reason) if reason else None)
        )

    def _fill(
        self,
        tracked: TrackedOrder,
        trade_id: int,
        price: Decimal,
        quantity: Decimal,
        commission: Decimal,
        commission_asset: str,
        events: list[EngineInput],
    ) -> None:
        order = tracked.order
        key = (order.symbol, trade_id)
        if key in self._seen_trades:
            self.duplicates += 1
            return
        self._seen_trades.add(key)
        tracked.trade_ids.add(trade_id)
        tracked.filled = _CTX.add(tracked.filled, quantity)
        net_quantity, fee = self.commission(
            order.symbol, price, quantity, commission, commission_asset
        )
        events.append(
            ExchangeFill(order.order_id, TradeId(str(trade_id)), price, net_quantity, fee)
        )

    def commission(
        self, symbol: Symbol, price: Decimal, quantity: Decimal, amount: Decimal, asset: str
    ) -> tuple[Decimal, Decimal]:
        """(quantity received, fee in the quote asset) for one fill (SPEC §6)."""
        if not amount:
            return quantity, ZERO
        rules = self.rules.get(symbol)
        base = rules.base_asset if rules else ""
        quote = rules.quote_asset if rules else ""
        if asset == quote:
            return quantity, amount
        if asset == base:
            return _CTX.subtract(quantity, amount), _CTX.multiply(amount, price)
        rate = self.price_of(asset, quote)
        if rate is None:
            self.unpriced_commissions += 1  # counted and alerted by the venue adapter
            return quantity, ZERO
        return quantity, _CTX.multiply(amount, rate)
