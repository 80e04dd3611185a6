"""Wallet (SAPI) endpoints for the chain issue, shaped as binance-connector-python's wallet
client documents them: coin/network configuration, deposit address per coin and network,
deposit history, withdraw with `withdrawOrderId` idempotency, withdraw history.

Deposits arrive two ways: the admin endpoint `POST /sim/deposit` (status 0 pending → 6
credited → 1 success on a 0.5 s timer), or a real transfer to the deposit address on the
trading chain (`chain_deposits.py`): pending from its block, credited (6) once it has the
network's `minConfirm` confirmations, as the exchange does; a `balanceUpdate` user-data event
when credited. Withdrawals debit amount + fee at once (`balanceUpdate`), then go 4
(processing) → 6 (completed); on the watched chain's network with a hot wallet
(`chain_withdrawals.py`) they are real transfers on that chain, completed once mined with
their real `txId` (5, failure, when the chain refuses one). The records, and the rows the
histories show: wallet_records.py.

Bounded like the order store (order_store.py): transfers still moving are always kept; of the
finished ones (deposits at 1, withdrawals at 6) the newest `max_transfers` stay in the
histories, the oldest forgotten first with its `withdrawOrderId` (a repeat of a forgotten one
is a new withdrawal); chain deposits already taken in are remembered by (tx id, log index) up
to the same count, the oldest forgotten first (the chain scan only moves forward).
"""

from __future__ import annotations

import hashlib
import itertools
from collections import OrderedDict, deque
from decimal import Decimal
from typing import TYPE_CHECKING

from indexmaker.venues.binance_sim.errors import ApiError, missing
from indexmaker.venues.binance_sim.exchange import now_ms
from indexmaker.venues.binance_sim.order_params import decimal_param, int_param
from indexmaker.venues.binance_sim.rest import Caller, Params, Route
from indexmaker.venues.binance_sim.wallet_records import (
    STEP_MS,
    Network,
    Transfer,
    deposit_row,
    withdraw_row,
)

if TYPE_CHECKING:
    from indexmaker.venues.binance_sim.chain_withdrawals import ChainPayer
    from indexmaker.venues.binance_sim.server import Simulator

MAX_TRANSFERS = 10_000  # finished transfers kept in the histories (all accounts)
USDC_NETWORKS = ("BASE", "ARBITRUM", "ETH")  # the default (first) is the trading chain's


class Wallet:
    def __init__(self, sim: Simulator, max_transfers: int = MAX_TRANSFERS) -> None:
        self.sim = sim
        self.max_transfers = max_transfers
        self.transfers: dict[int, Transfer] = {}  # by arrival number, oldest first
        self.last_number = 0  # the arrival number of the newest transfer (state_file.py)
        self._made_up = itertools.count(1)  # for tx ids of admin-endpoint deposits
        self._finished: deque[int] = deque()  # arrival numbers, in finishing order
        self._by_client: dict[tuple[str, str], Transfer] = {}
        self.min_confirm: dict[str, int] = {}  # network → minConfirm, where not the default 12
        # (tx id, log index) of chain deposits taken in, oldest first
        self._chain_seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self.payer: ChainPayer | None = None  # pays withdrawals on the watched chain

    # ------------------------------------------------------------------ data
    def networks(self, coin: str) -> list[Network]:
        if coin == "USDC":
            return [
                Network(
                    "USDC",
                    n,
                    i == 0,
                    Decimal("0.1") if n != "ETH" else Decimal("2"),
                    Decimal("1"),
                    min_confirm=self.min_confirm.get(n, 12),
                )
                for i, n in enumerate(USDC_NETWORKS)
            ]
        return [Network(coin, coin, True, Decimal("0.0001"), Decimal("0.001"))]

    def coins(self) -> list[str]:
        specs = self.sim.exchange.specs.values()
        return sorted({s.base for s in specs} | {s.quote for s in specs})

    def network(self, coin: str, name: str | None) -> Network:
        if coin not in self.coins():
            raise ApiError(-4007, f"Coin {coin} is not supported.")
        for net in self.networks(coin):
            if (name is None and net.is_default) or net.network == name:
                return net
        raise ApiError(-4077, f"Network {name} is not supported for {coin}.")

    def address(self, account: str, coin: str, network: str) -> str:
        digest = hashlib.sha256(f"{account}:{coin}:{network}".encode()).hexdigest()
        return "0x" + digest[:40]

    # ----------------------------------------------------------- transitions
    def deposit(
        self, account: str, coin: str, amount: Decimal, network: str | None, tx_id: str | None
    ) -> Transfer:
        """A deposit seen on chain (admin endpoint): pending first, credited a moment later."""
        net = self.network(coin, network)
        stamp = now_ms()
        serial = next(self._made_up)
        made_up = "0x" + hashlib.sha256(f"dep{serial}{stamp}".encode()).hexdigest()
        return self._new_deposit(account, net, amount, tx_id or made_up, None)

    def _new_deposit(
        self, account: str, net: Network, amount: Decimal, tx_id: str, block: int | None
    ) -> Transfer:
        number = self.last_number = self.last_number + 1
        transfer = Transfer(
            "deposit",
            str(number),
            account,
            net.coin,
            net.network,
            amount,
            self.address(account, net.coin, net.network),
            tx_id,
            now_ms(),
            0,
            needed=net.min_confirm,
            block=block,
        )
        self.transfers[number] = transfer
        return transfer

    def chain_deposit(
        self,
        account: str,
        coin: str,
        network: str,
        amount: Decimal,
        tx_id: str,
        log_index: int,
        block: int,
    ) -> Transfer | None:
        """A transfer to `account`'s deposit address seen in `block`: pending until confirmed
        (`confirm_chain`). None when this (tx id, log index) was seen before."""
        key = (tx_id, log_index)
        if key in self._chain_seen:
            return None
        self._chain_seen[key] = None
        if len(self._chain_seen) > self.max_transfers:
            self._chain_seen.popitem(last=False)
        return self._new_deposit(account, self.network(coin, network), amount, tx_id, block)

    def confirm_chain(self, network: str, head: int, now: int) -> list[Transfer]:
        """Count confirmations of `network`'s pending chain deposits at chain head `head` (the
        deposit's own block is the first); credit each that reached its `needed`."""
        credited = []
        for t in self.transfers.values():
            if t.block is None or t.network != network or t.status != 0:
                continue
            t.confirmations = min(max(head - t.block + 1, 0), t.needed)
            if t.confirmations >= t.needed:
                t.status = 6  # then 1 on the next tick: its unlock confirmations are not modelled
                self._balance_update(t.account, t.coin, t.amount, now)
                credited.append(t)
        return credited

    def tick(self, now: int) -> None:
        for number, t in self.transfers.items():
            if t.kind == "deposit" and t.status == 0 and t.block is not None:
                continue  # an on-chain deposit waits for its confirmations (confirm_chain)
            if (
                t.kind == "deposit"
                and t.status in (0, 6)
                and now - t.created >= STEP_MS * (1 if t.status == 0 else 2)
            ):
                if t.status == 0:
                    t.status = 6
                    t.confirmations = t.needed
                    self._balance_update(t.account, t.coin, t.amount, now)
                else:
                    t.status = 1
                    self._finished.append(number)
            elif (
                t.kind == "withdraw"
                and t.status == 4
                and not t.on_chain  # the hot wallet's transfer decides (chain_withdrawals.py)
                and now - t.created >= STEP_MS
            ):
                t.status = 6
                self._finished.append(number)
        while len(self._finished) > self.max_transfers:  # amortised O(1) per transfer
            gone = self.transfers.pop(self._finished.popleft())
            if gone.client_id and self._by_client.get((gone.account, gone.client_id)) is gone:
                del self._by_client[(gone.account, gone.client_id)]

    def _balance_update(self, account: str, coin: str, delta: Decimal, now: int) -> None:
        trading = self.sim.trading
        holder = trading.account(account)
        holder.credit(coin, delta)
        holder.take_changes()
        event = {"e": "balanceUpdate", "E": now, "a": coin, "d": f"{delta:.8f}", "T": now}
        for listener in trading.listeners:
            listener(account, event)
        for listener in trading.listeners:
            listener(account, trading.position_event(holder, [coin], now))

    # ------------------------------------------------------------- endpoints
    def config_getall(self, params: Params, caller: Caller) -> object:
        holder = self.sim.trading.account(caller.account or "")
        return [
            {
                "coin": coin,
                "depositAllEnable": True,
                "withdrawAllEnable": True,
                "name": coin,
                "free": f"{holder.free(coin):.8f}",
                "locked": f"{holder.locked(coin):.8f}",
                "freeze": "0",
                "withdrawing": "0",
                "ipoing": "0",
                "ipoable": "0",
                "storage": "0",
                "isLegalMoney": False,
                "trading": True,
                "networkList": [n.row() for n in self.networks(coin)],
            }
            for coin in self.coins()
        ]

    def deposit_address(self, params: Params, caller: Caller) -> object:
        coin = params.get("coin") or ""
        if not coin:
            raise missing("coin")
        net = self.network(coin.upper(), params.get("network"))
        address = self.address(caller.account or "", net.coin, net.network)
        return {"address": address, "coin": net.coin, "tag": "", "url": ""}

    def deposit_history(self, params: Params, caller: Caller) -> object:
        rows = []
        for t in self.transfers.values():
            if t.kind != "deposit" or t.account != caller.account:
                continue
            if params.get("coin") and t.coin != params["coin"].upper():
                continue
            if params.get("status") and str(t.status) != params["status"]:
                continue
            if params.get("txId") and t.tx_id != params["txId"]:
                continue
            rows.append(deposit_row(t))
        offset, limit = int_param(params, "offset") or 0, int_param(params, "limit") or 1000
        return list(reversed(rows))[offset : offset + limit]

    def withdraw(self, params: Params, caller: Caller) -> object:
        account = caller.account or ""
        for name in ("coin", "address", "amount"):
            if not params.get(name):
                raise missing(name)
        coin = params["coin"].upper()
        client_id = params.get("withdrawOrderId") or ""
        if client_id and (account, client_id) in self._by_client:
            return {"id": self._by_client[(account, client_id)].ident}  # idempotent
        net = self.network(coin, params.get("network"))
        amount = decimal_param(params, "amount")
        assert amount is not None
        if params.get("addressTag") and not net.tag:
            raise ApiError(-4106, "Address tag is not supported on this network; omit addressTag.")
        if amount < net.withdraw_min:
            raise ApiError(-4022, f"The withdrawal amount must be at least {net.withdraw_min}.")
        if amount % net.multiple:
            raise ApiError(-4021, f"The withdrawal amount must be a multiple of {net.multiple}.")
        # transactionFeeFlag=true: the fee comes out of the amount; else on top of it.
        inside = params.get("transactionFeeFlag") == "true"
        debit = amount if inside else amount + net.withdraw_fee
        holder = self.sim.trading.account(account)
        if holder.free(coin) < debit:
            raise ApiError(-4026, "User has insufficient balance.")
        stamp = now_ms()
        number = self.last_number = self.last_number + 1
        transfer = Transfer(
            "withdraw",
            hashlib.sha256(f"wd{number}{stamp}".encode()).hexdigest()[:32],
            account,
            coin,
            net.network,
            amount - net.withdraw_fee if inside else amount,
            params["address"],
            "0x" + hashlib.sha256(f"tx{number}{stamp}".encode()).hexdigest(),
            stamp,
            4,
            fee=net.withdraw_fee,
            client_id=client_id,
        )
        self.transfers[number] = transfer
        if client_id:
            self._by_client[(account, client_id)] = transfer
        self._balance_update(account, coin, -debit, stamp)
        if self.payer is not None and self.payer.pays(net.network, coin):
            transfer.on_chain, transfer.tx_id = True, ""  # no txId until it is sent
            self.payer.pay(
                transfer,
                refund=lambda: self._balance_update(account, coin, debit, now_ms()),
                finished=lambda: self._finished.append(number),
            )
        return {"id": transfer.ident}

    def withdraw_history(self, params: Params, caller: Caller) -> object:
        ids = set(params.get("idList", "").split(",")) - {""}
        rows = []
        for t in self.transfers.values():
            if t.kind != "withdraw" or t.account != caller.account:
                continue
            if params.get("coin") and t.coin != params["coin"].upper():
                continue
            if params.get("withdrawOrderId") and t.client_id != params["withdrawOrderId"]:
                continue
            if ids and t.ident not in ids:
                continue
            rows.append(withdraw_row(t))
        return list(reversed(rows))

    def system_status(self, params: Params, caller: Caller) -> object:
        if self.sim.maintenance:
            return {"status": 1, "msg": "system maintenance"}
        return {"status": 0, "msg": "normal"}


def wallet_routes(wallet: Wallet) -> dict[tuple[str, str], Route]:
    return {
        ("GET", "/sapi/v1/system/status"): Route(wallet.system_status, sapi=True),
        ("GET", "/sapi/v1/capital/config/getall"): Route(
            wallet.config_getall, 10, signed=True, sapi=True
        ),
        ("GET", "/sapi/v1/capital/deposit/address"): Route(
            wallet.deposit_address, 10, signed=True, sapi=True
        ),
        ("GET", "/sapi/v1/capital/deposit/hisrec"): Route(
            wallet.deposit_history, 1, signed=True, sapi=True
        ),
        ("POST", "/sapi/v1/capital/withdraw/apply"): Route(
            wallet.withdraw, 900, signed=True, sapi=True
        ),
        ("GET", "/sapi/v1/capital/withdraw/history"): Route(
            wallet.withdraw_history, 18000, signed=True, sapi=True
        ),
    }
