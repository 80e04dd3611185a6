"""Order entry and matching per symbol: price-time priority over the book's FIFO levels;
LIMIT GTC / IOC / FOK, LIMIT_MAKER, MARKET (quantity or quoteOrderQty); partial fills;
self-trade prevention (faqs/stp_faq.md); balances locked per order (what an order locks and
may take: order_sizing.py). What one trade moves (quote amount, commission, balances) is
settlement.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from indexmaker.venues.binance_sim.accounts import Account
from indexmaker.venues.binance_sim.book import Entry
from indexmaker.venues.binance_sim.config import SimConfig
from indexmaker.venues.binance_sim.errors import ApiError, cancel_rejected, rejected
from indexmaker.venues.binance_sim.exchange import Exchange, now_ms
from indexmaker.venues.binance_sim.limits import Limiter
from indexmaker.venues.binance_sim.order_params import OrderRequest
from indexmaker.venues.binance_sim.order_sizing import available, lock_for, remaining
from indexmaker.venues.binance_sim.order_store import OrderStore
from indexmaker.venues.binance_sim.orders import Order, Trade
from indexmaker.venues.binance_sim.settlement import (
    position_event,
    settle_balances,
    trade_amounts,
)

ZERO = Decimal(0)
UserListener = Callable[[str, dict[str, object]], None]  # (account, event)


class Trading:
    def __init__(self, exchange: Exchange, limiter: Limiter, config: SimConfig) -> None:
        self.exchange = exchange
        self.limiter = limiter
        self.config = config
        self.accounts: dict[str, Account] = {}
        self.store = OrderStore(config.retention)  # orders and trades, bounded
        self.open: dict[tuple[str, str, int], Order] = {}
        self.listeners: list[UserListener] = []
        self.order_ids: dict[str, int] = {}
        self.trade_ids: dict[str, int] = {}
        self._prevented = 0
        self._auto_ids = 0
        self._events: list[tuple[str, dict[str, object]]] = []
        exchange.cross = self.market_take

    # ---------------------------------------------------------------- accounts
    def account(self, name: str) -> Account:
        account = self.accounts.get(name)
        if account is None:
            account = self.accounts[name] = Account(name, 1000 + len(self.accounts))
        return account

    def fund(self, name: str, quote: Decimal, base_worth: Decimal) -> None:
        """Starting balances: `quote` USDC and about `base_worth` USDC of every base asset."""
        account = self.account(name)
        account.credit("USDC", quote)
        for symbol, spec in self.exchange.specs.items():
            mid = self.exchange.reference_price(symbol)
            if mid and spec.base not in account.balances:
                account.credit(spec.base, (base_worth / mid // spec.step) * spec.step)
        account.take_changes()

    # ------------------------------------------------------------------ orders
    def place(self, account_name: str, request: OrderRequest, now: int, hold_ms: int = 0) -> Order:
        """Run an already validated order; raises -2010 for engine rejections. `hold_ms` > 0
        (fault injection): the order is open (NEW, listed, cancellable) and matches only that
        much later, as it would have at once."""
        spec = request.spec
        account = self.account(account_name)
        key = (account_name, spec.symbol, request.client_order_id)
        previous = self.store.by_client.get(key)
        if previous is not None and previous.is_open:
            raise rejected("Duplicate order sent.")
        open_here = sum(1 for (a, s, _) in self.open if a == account_name and s == spec.symbol)
        if open_here >= spec.max_num_orders:
            raise rejected("Filter failure: MAX_NUM_ORDERS")
        book = self.exchange.books[spec.symbol]
        buy = request.side == "BUY"
        if request.type == "LIMIT_MAKER":
            best = book.best(not buy)
            ticks = spec.ticks(request.price)
            if best is not None and (best.price <= ticks if buy else best.price >= ticks):
                raise rejected("Order would immediately match and take.")
        lock_for(account, request, book, self.config)  # raises when short, before anything
        order_id = self.order_ids.get(spec.symbol, 0) + 1
        self.order_ids[spec.symbol] = order_id
        order = Order(
            spec=spec,
            order_id=order_id,
            client_order_id=request.client_order_id,
            account=account_name,
            side=request.side,
            type=request.type,
            time_in_force=request.time_in_force,
            price=request.price,
            orig_qty=request.quantity,
            orig_quote_qty=request.quote_qty,
            stp_mode=request.stp_mode,
            time=now,
            update_time=now,
            locked=request.lock,
        )
        self.store.add(order)
        self._events.append((account_name, order.report("NEW", now)))
        if hold_ms > 0:
            self.open[(account_name, spec.symbol, order_id)] = order
            asyncio.get_running_loop().call_later(hold_ms / 1000, self._run_held, order)
            self._flush(now)
            return order
        self._execute(order, now)
        return order

    def _run_held(self, order: Order) -> None:
        """A held order's turn: what it would have done when placed, unless cancelled since."""
        if not order.is_open:
            return
        self.open.pop((order.account, order.symbol, order.order_id), None)
        self._execute(order, now_ms())

    def _execute(self, order: Order, now: int) -> None:
        spec = order.spec
        book = self.exchange.books[spec.symbol]
        if order.time_in_force == "FOK" and available(order, book) < remaining(order):
            self._close(order, "EXPIRED", now, "INSUFFICIENT_LIQUIDITY")
        else:
            self._match(order, now)
            self._finish_taker(order, now)
        self.exchange.committed(spec.symbol)
        self._flush(now)

    def _match(self, order: Order, now: int) -> None:
        spec = order.spec
        book = self.exchange.books[spec.symbol]
        buy = order.side == "BUY"
        limit = spec.ticks(order.price) if order.type != "MARKET" else None
        by_quote = order.type == "MARKET" and order.orig_quote_qty > 0
        while order.status in ("NEW", "PARTIALLY_FILLED"):
            level = book.best(not buy)
            if level is None or (
                limit is not None and (level.price > limit if buy else level.price < limit)
            ):
                return
            price = spec.price_of(level.price)
            for entry in list(level.entries):
                if by_quote:
                    wanted = int((order.orig_quote_qty - order.cum_quote) / price / spec.step)
                else:
                    wanted = remaining(order)
                if wanted <= 0:
                    return
                maker = entry.order
                if (
                    maker is not None
                    and maker.account == order.account
                    and order.stp_mode != "NONE"
                ):
                    if self._prevent(order, maker, entry, wanted, now):
                        return
                    continue
                self._trade(spec.symbol, order, entry, level.price, min(entry.qty, wanted), now)
                if order.status not in ("NEW", "PARTIALLY_FILLED"):
                    return

    def _finish_taker(self, order: Order, now: int) -> None:
        if not order.is_open:
            return
        if order.type == "MARKET" and order.orig_quote_qty > 0:
            order.orig_qty = order.executed_qty  # the venue reports what was bought
            best = self.exchange.books[order.symbol].best(order.side != "BUY")
            left = order.orig_quote_qty - order.cum_quote
            if order.trades and (
                best is None or left < order.spec.price_of(best.price) * order.spec.step
            ):
                order.status = "FILLED"  # less than one step's worth is left of the budget
                self._release(order)
                return
        if order.type == "MARKET":
            self._close(order, "EXPIRED", now, "INSUFFICIENT_LIQUIDITY")
        elif order.time_in_force == "IOC":
            self._close(order, "EXPIRED", now, "UNFILLED_IOC_QUANTITY_EXPIRED")
        elif remaining(order) > 0:
            self.rest(order)

    def rest(self, order: Order) -> None:
        """`order` rests in its book (last at its price) and is listed as open."""
        spec = order.spec
        order.entry = self.exchange.books[spec.symbol].add(
            order.side == "BUY", spec.ticks(order.price), remaining(order), order
        )
        self.open[(order.account, spec.symbol, order.order_id)] = order

    def _trade(
        self, symbol: str, taker: Order | None, entry: Entry, ticks: int, steps: int, now: int
    ) -> None:
        spec = self.exchange.specs[symbol]
        book = self.exchange.books[spec.symbol]
        trade_id = self.trade_ids.get(spec.symbol, 0) + 1
        self.trade_ids[spec.symbol] = trade_id
        price, qty = spec.price_of(ticks), spec.qty_of(steps)
        book.reduce(entry, steps)
        maker = entry.order
        if maker is not None:
            if entry.qty <= 0:
                maker.entry = None
            self._settle(maker, trade_id, price, qty, True, now)
        if taker is not None:
            self._settle(taker, trade_id, price, qty, False, now)

    def _settle(
        self, order: Order, trade_id: int, price: Decimal, qty: Decimal, maker: bool, now: int
    ) -> None:
        rate = self.config.maker_commission if maker else self.config.taker_commission
        quote, commission, asset = trade_amounts(
            order, price, qty, rate, self.config.commission_asset
        )
        settle_balances(self.account(order.account), order, qty, quote, commission, asset)
        first = not order.trades
        order.executed_qty += qty
        order.cum_quote += quote
        order.update_time = now
        trade = Trade(
            order.spec.symbol,
            trade_id,
            order.order_id,
            price,
            qty,
            quote,
            commission,
            asset,
            now,
            order.side == "BUY",
            maker,
        )
        order.trades.append(trade)
        self.store.add_trade(order.account, trade)
        if first:
            self.limiter.first_fill(order.account, now)  # the unfilled-order count gives 1 back
        if order.orig_quote_qty > 0:  # MARKET by quoteOrderQty: done when the budget is
            done = order.cum_quote >= order.orig_quote_qty
        else:
            done = order.executed_qty >= order.orig_qty
        order.status = "FILLED" if done else "PARTIALLY_FILLED"
        self._events.append((order.account, order.report("TRADE", now, trade)))
        if done:
            self._release(order)

    def _prevent(self, taker: Order, maker: Order, entry: Entry, wanted: int, now: int) -> bool:
        """Self-trade prevention; True when the taker is done."""
        self._prevented += 1
        mode = taker.stp_mode
        taker.prevented_match_id = maker.prevented_match_id = self._prevented
        if mode == "DECREMENT":
            steps = min(wanted, entry.qty)
            amount = taker.spec.qty_of(steps)
            taker.prevented_qty += amount
            maker.prevented_qty += amount
            self.exchange.books[taker.symbol].reduce(entry, steps)
            if entry.qty <= 0:
                maker.entry = None
                self._close(maker, "EXPIRED_IN_MATCH", now, None, "TRADE_PREVENTION")
            if remaining(taker) <= 0:
                self._close(taker, "EXPIRED_IN_MATCH", now, None, "TRADE_PREVENTION")
                return True
            return False
        if mode in ("EXPIRE_MAKER", "EXPIRE_BOTH"):
            maker.prevented_qty += maker.spec.qty_of(entry.qty)
            self._close(maker, "EXPIRED_IN_MATCH", now, None, "TRADE_PREVENTION")
        if mode in ("EXPIRE_TAKER", "EXPIRE_BOTH"):
            taker.prevented_qty += taker.spec.qty_of(wanted)
            self._close(taker, "EXPIRED_IN_MATCH", now, None, "TRADE_PREVENTION")
            return True
        return False

    def _release(self, order: Order) -> None:
        if order.locked:
            asset = order.spec.quote if order.side == "BUY" else order.spec.base
            self.account(order.account).unlock(asset, order.locked)
            order.locked = ZERO
        self.open.pop((order.account, order.symbol, order.order_id), None)
        self.store.closed(order, order.update_time)

    def _close(
        self, order: Order, status: str, now: int, reason: str | None, execution: str | None = None
    ) -> None:
        if order.entry is not None:
            self.exchange.books[order.symbol].remove(order.entry)
            order.entry = None
        order.status = status
        order.update_time = now
        order.expiry_reason = reason
        self._release(order)
        kind = execution or ("CANCELED" if status == "CANCELED" else "EXPIRED")
        self._events.append((order.account, order.report(kind, now)))

    def market_take(self, symbol: str, is_bid: bool, ticks: int, steps: int) -> int:
        """The market model quotes through resting user orders: they fill (as makers)."""
        book = self.exchange.books[symbol]
        now = now_ms()
        while steps > 0:
            level = book.best(not is_bid)
            if level is None or (level.price > ticks if is_bid else level.price < ticks):
                break
            for entry in list(level.entries):
                take = min(entry.qty, steps)
                if entry.order is None:
                    book.reduce(entry, take)
                else:
                    self._trade(symbol, None, entry, level.price, take, now)
                steps -= take
                if steps <= 0:
                    break
        self._flush(now)
        return steps

    # ----------------------------------------------------------------- cancels
    def find(self, account: str, symbol: str, order_id: int | None, client_id: str | None) -> Order:
        return self.store.find(account, symbol, order_id, client_id)

    def cancel(
        self,
        account: str,
        symbol: str,
        order_id: int | None,
        client_id: str | None,
        cancel_id: str | None,
        now: int,
    ) -> tuple[Order, str]:
        """Cancel an open order; returns it and the cancel's own client id. -2011 otherwise."""
        try:
            order = self.find(account, symbol, order_id, client_id)
        except ApiError:
            raise cancel_rejected() from None
        if not order.is_open:
            raise cancel_rejected()
        new_id = cancel_id or self.auto_id()
        self._close(order, "CANCELED", now, None)
        event = self._events[-1][1]
        event["c"], event["C"] = new_id, order.client_order_id  # as the venue reports a cancel
        self.exchange.committed(symbol)
        self._flush(now)
        return order, new_id

    def cancel_all(self, account: str, symbol: str, now: int) -> list[Order]:
        keys = [k for k in self.open if k[0] == account and k[1] == symbol]
        return [self.cancel(account, symbol, k[2], None, None, now)[0] for k in keys]

    def cancel_symbol(self, symbol: str) -> None:
        """Delisting: every open order of the symbol, in every account, is cancelled."""
        now = now_ms()
        for account, sym, order_id in [k for k in self.open if k[1] == symbol]:
            self.cancel(account, sym, order_id, None, None, now)

    def open_orders(self, account: str, symbol: str | None) -> list[Order]:
        return [
            o
            for k, o in sorted(self.open.items())
            if k[0] == account and (symbol is None or k[1] == symbol)
        ]

    def auto_id(self) -> str:
        self._auto_ids += 1
        return f"sim{self._auto_ids:019d}"

    # ------------------------------------------------------------------ events
    def _flush(self, now: int) -> None:
        events, self._events = self._events, []
        touched: list[str] = []
        for account, event in events:
            self._emit(account, event)
            if account not in touched:
                touched.append(account)
        for name in touched:
            holder = self.account(name)
            changed = holder.take_changes()
            if changed:
                self._emit(name, self.position_event(holder, changed, now))

    def position_event(self, account: Account, assets: list[str], now: int) -> dict[str, object]:
        """`outboundAccountPosition` of `assets` (settlement.py)."""
        return position_event(account, assets, now)

    def _emit(self, account: str, event: dict[str, Any]) -> None:
        for listener in self.listeners:
            listener(account, event)
