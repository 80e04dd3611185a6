"""Signed trading endpoints (TRADE / USER_DATA): order place/test/cancel/query, openOrders,
cancel-all, account, myTrades, rateLimit/order. The same functions serve the WebSocket API
(`order.place`, `order.status`, ...), so both APIs answer alike."""

from __future__ import annotations

from typing import TYPE_CHECKING

from indexmaker.venues.binance_sim.errors import ApiError, missing
from indexmaker.venues.binance_sim.exchange import now_ms
from indexmaker.venues.binance_sim.order_params import client_id_param, int_param, parse_order
from indexmaker.venues.binance_sim.rest import Caller, Params, Route

if TYPE_CHECKING:
    from indexmaker.venues.binance_sim.server import Simulator

UNKNOWN_5XX = ApiError(
    -1001, "Internal error; unable to process your request. Please try again.", status=503
)
UNKNOWN_1007 = ApiError(
    -1007,
    "Timeout waiting for response from backend server. Send status unknown; "
    "execution status unknown.",
    status=408,
)


class TradingApi:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def _account(self, caller: Caller) -> str:
        assert caller.account is not None
        return caller.account

    def place(self, params: Params, caller: Caller) -> object:
        sim, now = self.sim, now_ms()
        account = self._account(caller)
        request = parse_order(sim.exchange, params, sim.trading.auto_id())
        faults = sim.faults.orders
        if faults.reject_next:
            faults.reject_next -= 1
            raise ApiError(-2010, "Order rejected by the simulator (fault injection).")
        if faults.rate_limit_next:
            faults.rate_limit_next -= 1  # refused before the matcher; counts toward no ban
            raise ApiError(
                -1015,
                "Too many new orders; current limit is 50 orders per 10 SECOND.",
                status=429,
                retry_after=faults.rate_limit_ms / 1000,
            )
        sim.limiter.charge_order(account, now)
        hold_ms = 0
        if faults.hold_next:
            faults.hold_next -= 1  # a busy matching engine: the order waits, cancellable
            hold_ms = faults.hold_ms
        order = sim.trading.place(account, request, now, hold_ms)
        if faults.unknown_next:
            faults.unknown_next -= 1  # the order did execute; the answer says nothing about it
            raise UNKNOWN_1007 if faults.unknown_mode == "-1007" else UNKNOWN_5XX
        if faults.result_next and request.resp_type == "FULL":
            faults.result_next -= 1  # the fills reach the client through the user stream only
            return order.result("RESULT", now)
        return order.result(request.resp_type, now)

    def test(self, params: Params, caller: Caller) -> object:
        parse_order(self.sim.exchange, params, "test")
        if params.get("computeCommissionRates") == "true":
            maker, taker = self.sim.config.maker_commission, self.sim.config.taker_commission
            return {
                "standardCommissionForOrder": {"maker": f"{maker:.8f}", "taker": f"{taker:.8f}"},
                "taxCommissionForOrder": {"maker": "0.00000000", "taker": "0.00000000"},
                "discount": {
                    "enabledForAccount": False,
                    "enabledForSymbol": False,
                    "discountAsset": "BNB",
                    "discount": "0.00000000",
                },
            }
        return {}

    def _symbol(self, params: Params) -> str:
        if not params.get("symbol"):
            raise missing("symbol")
        return self.sim.exchange.spec(params["symbol"]).symbol

    def _ids(self, params: Params) -> tuple[int | None, str | None]:
        order_id = int_param(params, "orderId")
        client_id = client_id_param(params, "origClientOrderId")
        if order_id is None and client_id is None:
            raise ApiError(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        return order_id, client_id

    def cancel(self, params: Params, caller: Caller) -> object:
        symbol = self._symbol(params)
        order_id, client_id = self._ids(params)
        now = now_ms()
        order, cancel_id = self.sim.trading.cancel(
            self._account(caller),
            symbol,
            order_id,
            client_id,
            client_id_param(params, "newClientOrderId"),
            now,
        )
        return order.cancelled(cancel_id, now)

    def query(self, params: Params, caller: Caller) -> object:
        symbol = self._symbol(params)
        order_id, client_id = self._ids(params)
        return self.sim.trading.find(self._account(caller), symbol, order_id, client_id).query()

    def open_orders(self, params: Params, caller: Caller) -> object:
        symbol = self._symbol(params) if params.get("symbol") else None
        return [o.query() for o in self.sim.trading.open_orders(self._account(caller), symbol)]

    def cancel_all(self, params: Params, caller: Caller) -> object:
        symbol = self._symbol(params)
        now = now_ms()
        orders = self.sim.trading.cancel_all(self._account(caller), symbol, now)
        if not orders:
            raise ApiError(-2011, "Unknown order sent.")
        return [o.cancelled(self.sim.trading.auto_id(), now) for o in orders]

    def account(self, params: Params, caller: Caller) -> object:
        sim = self.sim
        account = sim.trading.account(self._account(caller))
        maker, taker = sim.config.maker_commission, sim.config.taker_commission
        return {
            "makerCommission": int(maker * 10000),
            "takerCommission": int(taker * 10000),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": f"{maker:.8f}",
                "taker": f"{taker:.8f}",
                "buyer": "0.00000000",
                "seller": "0.00000000",
            },
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": now_ms(),
            "accountType": "SPOT",
            "balances": account.balance_rows(omit_zero=params.get("omitZeroBalances") == "true"),
            "permissions": ["SPOT"],
            "uid": account.uid,
        }

    def my_trades(self, params: Params, caller: Caller) -> object:
        symbol = self._symbol(params)
        order_id = int_param(params, "orderId")
        from_id = int_param(params, "fromId")
        start, end = int_param(params, "startTime"), int_param(params, "endTime")
        limit = int_param(params, "limit") or 500
        if limit > 1000:
            raise ApiError(-1130, "Invalid data sent for a parameter: limit.")
        if start is not None and end is not None and end - start > 86_400_000:
            raise ApiError(-1127, "More than 24 hours between startTime and endTime.")
        rows = []
        for trade in self.sim.trading.store.trades.get(self._account(caller), ()):
            if trade.symbol != symbol:
                continue
            if order_id is not None and trade.order_id != order_id:
                continue
            if from_id is not None and trade.trade_id < from_id:
                continue
            if (start is not None and trade.time < start) or (end is not None and trade.time > end):
                continue
            rows.append(trade.row())
        return rows[:limit] if from_id is not None else rows[-limit:]

    def all_orders(self, params: Params, caller: Caller) -> object:
        symbol = self._symbol(params)
        account = self._account(caller)
        orders = [
            o
            for (a, s, _), o in sorted(self.sim.trading.store.orders.items())
            if a == account and s == symbol
        ]
        return [o.query() for o in orders[-(int_param(params, "limit") or 500) :]]

    def order_rate(self, params: Params, caller: Caller) -> object:
        return [
            r
            for r in self.sim.limiter.ws_rate_limits(caller.ip, self._account(caller), now_ms())
            if r["rateLimitType"] == "ORDERS"
        ]


def trading_routes(sim: Simulator, api: TradingApi) -> dict[tuple[str, str], Route]:
    def open_weight(params: Params) -> int:
        return 6 if params.get("symbol") else 80

    def trades_weight(params: Params) -> int:
        return 5 if params.get("orderId") else 20

    def test_weight(params: Params) -> int:
        return 20 if params.get("computeCommissionRates") == "true" else 1

    return {
        ("POST", "/api/v3/order"): Route(api.place, signed=True, order=True),
        ("POST", "/api/v3/order/test"): Route(api.test, weight=test_weight, signed=True),
        ("DELETE", "/api/v3/order"): Route(api.cancel, signed=True),
        ("GET", "/api/v3/order"): Route(api.query, weight=4, signed=True),
        ("GET", "/api/v3/openOrders"): Route(api.open_orders, weight=open_weight, signed=True),
        ("DELETE", "/api/v3/openOrders"): Route(api.cancel_all, signed=True),
        ("GET", "/api/v3/allOrders"): Route(api.all_orders, weight=20, signed=True),
        ("GET", "/api/v3/account"): Route(api.account, weight=20, signed=True),
        ("GET", "/api/v3/myTrades"): Route(api.my_trades, weight=trades_weight, signed=True),
        ("GET", "/api/v3/rateLimit/order"): Route(api.order_rate, weight=40, signed=True),
    }
