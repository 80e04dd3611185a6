"""The wallet's records (wallet.py) and how the venue shows them: a coin's network as
`GET /sapi/v1/capital/config/getall` lists it, a deposit or withdrawal (`Transfer`) as the
deposit and withdraw histories list it, shaped as binance-connector-python's wallet client
documents them. Statuses: deposits 0 pending, 6 credited, 1 success; withdrawals 4
processing, 6 completed, 5 failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

STEP_MS = 500  # each deposit / withdrawal status lasts this long


@dataclass(frozen=True, slots=True)
class Network:
    coin: str
    network: str
    is_default: bool
    withdraw_fee: Decimal
    withdraw_min: Decimal
    multiple: Decimal = Decimal("0.00000001")
    min_confirm: int = 12
    tag: bool = False

    def row(self) -> dict[str, object]:
        return {
            "network": self.network,
            "coin": self.coin,
            "withdrawIntegerMultiple": f"{self.multiple:.8f}",
            "isDefault": self.is_default,
            "depositEnable": True,
            "withdrawEnable": True,
            "depositDesc": "",
            "withdrawDesc": "",
            "specialTips": "",
            "name": self.network,
            "resetAddressStatus": False,
            "addressRegex": "^(0x)[0-9A-Fa-f]{40}$",
            "memoRegex": "",
            "withdrawFee": f"{self.withdraw_fee:.8f}",
            "withdrawMin": f"{self.withdraw_min:.8f}",
            "withdrawMax": "9999999999.99999999",
            "minConfirm": self.min_confirm,
            "unLockConfirm": self.min_confirm * 2,
            "sameAddress": False,
            "estimatedArrivalTime": 1,
            "busy": False,
            "contractAddressUrl": "",
            "contractAddress": "",
        }


@dataclass(slots=True)
class Transfer:
    kind: str  # "deposit" | "withdraw"
    ident: str
    account: str
    coin: str
    network: str
    amount: Decimal
    address: str
    tx_id: str
    created: int
    status: int
    fee: Decimal = Decimal(0)
    client_id: str = ""
    confirmations: int = 0
    needed: int = 12
    history: list[int] = field(default_factory=list)
    block: int | None = None  # the chain block of an on-chain deposit (None: admin endpoint)
    on_chain: bool = False  # a withdrawal the hot wallet sends (its status follows the chain)


def deposit_row(t: Transfer) -> dict[str, Any]:
    """A deposit as `GET /sapi/v1/capital/deposit/hisrec` lists it."""
    return {
        "id": t.ident,
        "amount": f"{t.amount:.8f}",
        "coin": t.coin,
        "network": t.network,
        "status": t.status,
        "address": t.address,
        "addressTag": "",
        "txId": t.tx_id,
        "insertTime": t.created,
        "completeTime": t.created + STEP_MS if t.status else None,
        "transferType": 0,
        "confirmTimes": f"{t.confirmations}/{t.needed}",
        "unlockConfirm": t.needed * 2,
        "walletType": 0,
    }


def withdraw_row(t: Transfer) -> dict[str, Any]:
    """A withdrawal as `GET /sapi/v1/capital/withdraw/history` lists it."""
    row: dict[str, Any] = {
        "id": t.ident,
        "amount": f"{t.amount:.8f}",
        "transactionFee": f"{t.fee:.8f}",
        "coin": t.coin,
        "status": t.status,
        "address": t.address,
        "txId": t.tx_id,
        "applyTime": _time_text(t.created),
        "network": t.network,
        "transferType": 0,
        "info": "",
        "confirmNo": 12 if t.status == 6 else 0,
        "walletType": 0,
        "txKey": "",
    }
    if t.client_id:
        row["withdrawOrderId"] = t.client_id
    if t.status == 6:
        row["completeTime"] = _time_text(t.created + STEP_MS)
    return row


def _time_text(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
