"""Order and trade records of the simulated venue, and their Binance shapes: the order
response (ACK / RESULT / FULL), the query answer, the cancel answer, `executionReport`, and a
`myTrades` row (rest-api.md, user-data-stream.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from indexmaker.venues.binance_sim.symbols import SymbolSpec, fmt8

ZERO = Decimal(0)
OPEN = ("NEW", "PARTIALLY_FILLED")


@dataclass(slots=True)
class Trade:
    symbol: str
    trade_id: int
    order_id: int
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool

    def fill(self) -> dict[str, object]:
        """One entry of a FULL order response's `fills`."""
        return {
            "price": fmt8(self.price),
            "qty": fmt8(self.qty),
            "commission": fmt8(self.commission),
            "commissionAsset": self.commission_asset,
            "tradeId": self.trade_id,
        }

    def row(self) -> dict[str, object]:
        """One `myTrades` row."""
        return {
            "symbol": self.symbol,
            "id": self.trade_id,
            "orderId": self.order_id,
            "orderListId": -1,
            "price": fmt8(self.price),
            "qty": fmt8(self.qty),
            "quoteQty": fmt8(self.quote_qty),
            "commission": fmt8(self.commission),
            "commissionAsset": self.commission_asset,
            "time": self.time,
            "isBuyer": self.is_buyer,
            "isMaker": self.is_maker,
            "isBestMatch": True,
        }


@dataclass(slots=True)
class Order:
    spec: SymbolSpec
    order_id: int
    client_order_id: str
    account: str
    side: str
    type: str
    time_in_force: str
    price: Decimal  # 0 for MARKET
    orig_qty: Decimal
    orig_quote_qty: Decimal
    stp_mode: str
    time: int
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    status: str = "NEW"
    update_time: int = 0
    locked: Decimal = ZERO  # what this order still holds locked (quote for buys, base for sells)
    entry: Any = None  # its book entry while it rests
    trades: list[Trade] = field(default_factory=list)
    expiry_reason: str | None = None
    prevented_qty: Decimal = ZERO
    prevented_match_id: int | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def symbol(self) -> str:
        return self.spec.symbol

    def result(self, resp_type: str, transact_time: int) -> dict[str, object]:
        out: dict[str, object] = {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "transactTime": transact_time,
        }
        if resp_type == "ACK":
            return out
        out.update(
            price=fmt8(self.price),
            origQty=fmt8(self.orig_qty),
            executedQty=fmt8(self.executed_qty),
            origQuoteOrderQty=fmt8(self.orig_quote_qty),
            cummulativeQuoteQty=fmt8(self.cum_quote),
            status=self.status,
            timeInForce=self.time_in_force,
            type=self.type,
            side=self.side,
            workingTime=self.time if self.status != "REJECTED" else -1,
            selfTradePreventionMode=self.stp_mode,
        )
        if self.expiry_reason:
            out["expiryReason"] = self.expiry_reason
        if self.prevented_match_id is not None:
            out["preventedMatchId"] = self.prevented_match_id
            out["preventedQuantity"] = fmt8(self.prevented_qty)
        if resp_type == "FULL":
            out["fills"] = [t.fill() for t in self.trades]
        return out

    def query(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "price": fmt8(self.price),
            "origQty": fmt8(self.orig_qty),
            "executedQty": fmt8(self.executed_qty),
            "cummulativeQuoteQty": fmt8(self.cum_quote),
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
            "stopPrice": "0.00000000",
            "icebergQty": "0.00000000",
            "time": self.time,
            "updateTime": self.update_time or self.time,
            "isWorking": True,
            "workingTime": self.time,
            "origQuoteOrderQty": fmt8(self.orig_quote_qty),
            "selfTradePreventionMode": self.stp_mode,
        }

    def cancelled(self, cancel_id: str, transact_time: int) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "origClientOrderId": self.client_order_id,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": cancel_id,
            "transactTime": transact_time,
            "price": fmt8(self.price),
            "origQty": fmt8(self.orig_qty),
            "executedQty": fmt8(self.executed_qty),
            "origQuoteOrderQty": fmt8(self.orig_quote_qty),
            "cummulativeQuoteQty": fmt8(self.cum_quote),
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
            "selfTradePreventionMode": self.stp_mode,
        }

    def report(
        self, execution: str, now: int, trade: Trade | None = None, reject: str = "NONE"
    ) -> dict[str, object]:
        """An `executionReport` event (user-data-stream.md)."""
        return {
            "e": "executionReport",
            "E": now,
            "s": self.symbol,
            "c": self.client_order_id,
            "S": self.side,
            "o": self.type,
            "f": self.time_in_force,
            "q": fmt8(self.orig_qty),
            "p": fmt8(self.price),
            "P": "0.00000000",
            "F": "0.00000000",
            "g": -1,
            "C": "",
            "x": execution,
            "X": self.status,
            "r": reject,
            "i": self.order_id,
            "l": fmt8(trade.qty if trade else ZERO),
            "z": fmt8(self.executed_qty),
            "L": fmt8(trade.price if trade else ZERO),
            "n": fmt8(trade.commission) if trade else "0",
            "N": trade.commission_asset if trade else None,
            "T": trade.time if trade else now,
            "t": trade.trade_id if trade else -1,
            "v": self.prevented_match_id if self.prevented_match_id is not None else -1,
            "I": 0,
            "w": self.is_open and self.entry is not None,
            "m": trade.is_maker if trade else False,
            "M": False,
            "O": self.time,
            "Z": fmt8(self.cum_quote),
            "Y": fmt8(trade.quote_qty if trade else ZERO),
            "Q": fmt8(self.orig_quote_qty),
            "W": self.time,
            "V": self.stp_mode,
        }
