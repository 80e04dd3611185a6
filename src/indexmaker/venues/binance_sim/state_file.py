"""The simulator's accounts on disk (`--state-dir`): a restarted simulator is the same venue.

What is kept: every account's balances (free, locked) and uid, the orders the order store
holds (open ones go back into their books at their price, behind the market model's quotes of
that price), each account's `myTrades` history, which closed orders were archived (-2026), and
the per-symbol order/trade id counters, so ids never repeat, and the wallet's deposit and
withdrawal history with its `withdrawOrderId`s (wallet_state.py; optional in the file: one
written before it was kept loads with an empty history). All of it is bounded as in memory
(order_store.py's and wallet.py's retention), so the file is too. Not kept: the market model
(books restart from the seed), rate-limit windows and bans (docs/exchange-sim.md).

The file, `exchange-sim-state.json` in the directory, is replaced atomically (a temporary file
in the same directory, fsync, rename, fsync of the directory): a crash, SIGKILL included,
leaves the previous or the new state, never a torn one. It is written at shutdown and every
`every_ms` while something changed, so a SIGKILL loses at most that much.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from indexmaker.store.files import write_atomically
from indexmaker.venues.binance_sim import wallet_state
from indexmaker.venues.binance_sim.orders import Order, Trade

if TYPE_CHECKING:
    from indexmaker.venues.binance_sim.trading import Trading
    from indexmaker.venues.binance_sim.wallet import Wallet

STATE_FILE = "exchange-sim-state.json"
FORMAT = 1  # bumped when the layout changes; another number is refused, never guessed at

_TRADE_FIELDS = ("symbol", "trade_id", "order_id", "time", "is_buyer", "is_maker")
_TRADE_DECIMALS = ("price", "qty", "quote_qty", "commission")
_ORDER_FIELDS = (
    "order_id",
    "client_order_id",
    "account",
    "side",
    "type",
    "time_in_force",
    "stp_mode",
    "time",
    "status",
    "update_time",
    "expiry_reason",
    "prevented_match_id",
)
_ORDER_DECIMALS = (
    "price",
    "orig_qty",
    "orig_quote_qty",
    "executed_qty",
    "cum_quote",
    "locked",
    "prevented_qty",
)


class StateError(ValueError):
    """The state file cannot be used (unreadable, another format, a symbol not listed)."""


class StateFile:
    """Loads and saves `Trading`'s accounts, orders and trades, and the `Wallet`'s transfers
    when one is given, in `directory`."""

    def __init__(self, directory: Path, every_ms: int = 1000) -> None:
        self.directory = directory
        self.path = directory / STATE_FILE
        self.every_ms = every_ms
        self.saves = 0
        self._saved: tuple[int, ...] | None = None
        self._next_ms = 0

    # ------------------------------------------------------------------ writes
    def save(self, trading: Trading, wallet: Wallet | None = None) -> None:
        """Write the state now (atomically); raises OSError when the disk refuses."""
        state = _dump(trading)
        if wallet is not None:
            state["wallet"] = wallet_state.dump(wallet)
        write_atomically(self.path, msgspec.json.encode(state))
        self._saved = _fingerprint(trading, wallet)
        self.saves += 1

    def maybe_save(self, trading: Trading, now_ms: int, wallet: Wallet | None = None) -> bool:
        """Save when `every_ms` has passed since the last look and something changed."""
        if now_ms < self._next_ms:
            return False
        self._next_ms = now_ms + self.every_ms
        if _fingerprint(trading, wallet) == self._saved:
            return False
        self.save(trading, wallet)
        return True

    # ------------------------------------------------------------------- reads
    def load(self, trading: Trading, wallet: Wallet | None = None) -> bool:
        """Replace `trading`'s accounts, orders and trades (and `wallet`'s transfers, when the
        file has them) by the file's; False when there is no file yet (a first start).
        Raises StateError naming the problem."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return False
        except OSError as error:
            raise StateError(f"--state-dir: cannot read {self.path}: {error}") from None
        try:
            state = msgspec.json.decode(raw)
            if not isinstance(state, dict) or state.get("format") != FORMAT:
                raise StateError(f"--state-dir: {self.path} is not format {FORMAT}")
            _restore(trading, state)
            if wallet is not None and "wallet" in state:
                wallet_state.restore(wallet, state["wallet"])
        except (msgspec.DecodeError, KeyError, TypeError, ValueError, ArithmeticError) as error:
            raise StateError(f"--state-dir: {self.path} is unreadable: {error!r}") from None
        self._saved = _fingerprint(trading, wallet)
        return True


def _fingerprint(trading: Trading, wallet: Wallet | None) -> tuple[int, ...]:
    """Changes whenever a balance, an order, a trade or a wallet transfer does (every one of
    the first three moves a balance or an id counter), without walking the orders."""
    return (
        sum(account.version for account in trading.accounts.values()),
        len(trading.accounts),
        sum(trading.order_ids.values()),
        sum(trading.trade_ids.values()),
        *(wallet_state.version(wallet) if wallet is not None else ()),
    )


def _dump(trading: Trading) -> dict[str, Any]:
    store = trading.store
    trades: dict[int, int] = {}  # id(trade) -> index in the list: each trade written once
    trade_rows: list[dict[str, Any]] = []

    def ref(trade: Trade) -> int:
        index = trades.get(id(trade))
        if index is None:
            index = trades[id(trade)] = len(trade_rows)
            row: dict[str, Any] = {name: getattr(trade, name) for name in _TRADE_FIELDS}
            row.update({name: str(getattr(trade, name)) for name in _TRADE_DECIMALS})
            row["commission_asset"] = trade.commission_asset
            trade_rows.append(row)
        return index

    orders = []
    for order in store.orders.values():
        row = {name: getattr(order, name) for name in _ORDER_FIELDS}
        row.update({name: str(getattr(order, name)) for name in _ORDER_DECIMALS})
        row["symbol"] = order.symbol
        row["trades"] = [ref(trade) for trade in order.trades]
        orders.append(row)
    return {
        "format": FORMAT,
        "accounts": [
            {
                "name": account.name,
                "uid": account.uid,
                "balances": {
                    asset: [str(free), str(locked)]
                    for asset, (free, locked) in account.balances.items()
                },
            }
            for account in trading.accounts.values()
        ],
        "order_ids": trading.order_ids,
        "trade_ids": trading.trade_ids,
        "orders": orders,
        "closed": [list(key) for key in store.closed_keys()],
        "archived": [list(key) for key in store.archived_keys()],
        "history": {
            account: [ref(trade) for trade in history] for account, history in store.trades.items()
        },
        "trades": trade_rows,
    }


def _restore(trading: Trading, state: dict[str, Any]) -> None:
    specs = trading.exchange.specs
    for row in state["orders"]:
        if row["symbol"] not in specs:
            raise StateError(
                f"--state-dir: the state has orders of {row['symbol']}, which this market does "
                "not list (start with the same --indexes/--symbols)"
            )
    trades = []
    for row in state["trades"]:
        values = {name: row[name] for name in _TRADE_FIELDS}
        values.update({name: Decimal(row[name]) for name in _TRADE_DECIMALS})
        trades.append(Trade(commission_asset=row["commission_asset"], **values))
    trading.accounts.clear()
    for row in state["accounts"]:
        account = trading.account(row["name"])
        account.uid = int(row["uid"])
        account.balances = {
            asset: [Decimal(free), Decimal(locked)]
            for asset, (free, locked) in row["balances"].items()
        }
        account.take_changes()
    trading.order_ids.update({k: int(v) for k, v in state["order_ids"].items()})
    trading.trade_ids.update({k: int(v) for k, v in state["trade_ids"].items()})
    store = trading.store
    by_key: dict[tuple[str, str, int], Order] = {}
    for row in state["orders"]:
        values = {name: row[name] for name in _ORDER_FIELDS}
        values.update({name: Decimal(row[name]) for name in _ORDER_DECIMALS})
        order = Order(spec=specs[row["symbol"]], **values)
        order.trades = [trades[index] for index in row["trades"]]
        store.add(order)
        by_key[(order.account, order.symbol, order.order_id)] = order
        if order.is_open:
            trading.rest(order)  # back in its book, behind what the market model quotes there
    for account, symbol, order_id in state["closed"]:
        order = by_key[(account, symbol, int(order_id))]
        store.closed(order, order.update_time)
    store.restore_archived([tuple(key) for key in state["archived"]])
    for account, refs in state["history"].items():
        history = store.trades[account] = deque(maxlen=store.retention.max_trades)
        history.extend(trades[index] for index in refs)
