"""The exchange's wallet as the collateral router needs it (Binance SAPI "capital" endpoints,
served alike by the exchange simulator): the deposit address of a coin on a network, the
status of a deposit by its transaction hash, and withdrawals keyed by `withdrawOrderId`.

Binance deposit statuses (wallet/capital/deposite-history): 0 pending, 6 credited but cannot
withdraw, 7 wrong deposit, 8 waiting user confirm, 1 success, 2 rejected. Credited means 6 or 1.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from web3 import Web3

from indexmaker.core.errors import NonRetryableError, RetryableError
from indexmaker.core.money import round_usdc, round_usdc_down
from indexmaker.venues.binance.rest import BinanceRest

CREDITED = (1, 6)
REFUSED = (2, 7)
# Withdrawal statuses (wallet/capital/withdraw-history): 0 email sent, 1 cancelled, 2 awaiting
# approval, 3 rejected, 4 processing, 5 failure, 6 completed.
WITHDRAWN = 6
NOT_WITHDRAWN = (1, 3, 5)
# SAPI weights are counted per account (UID) at Binance, apart from the IP's request weight
# the connector's limiter keeps: a withdrawal charges that limiter 1, not its UID weight.
SAPI_WEIGHT = 1


class DepositRefused(NonRetryableError):
    """The exchange says the deposit was wrong or rejected (status 2 or 7)."""


class DepositNotCredited(RetryableError):
    """The exchange has not credited the deposit within the wait."""


class WithdrawalRefused(NonRetryableError):
    """The exchange cancelled, rejected or failed the withdrawal, or refused to make it."""


class WithdrawalNotDone(RetryableError):
    """The withdrawal has not completed within the wait."""


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A completed withdrawal: what left for the address (USDC), the exchange's fee, the
    transaction on the destination chain."""

    amount: Decimal
    fee: Decimal
    tx_id: str


class ExchangeWallet:
    def __init__(self, rest: BinanceRest, poll_s: float = 0.25) -> None:
        self.rest, self.poll_s = rest, poll_s

    async def deposit_address(self, coin: str, network: str) -> str:
        """The account's deposit address for `coin` on `network` (checksummed)."""
        answer = await self.rest.signed(
            "GET", "/sapi/v1/capital/deposit/address", {"coin": coin, "network": network}, weight=10
        )
        return Web3.to_checksum_address(answer["address"])

    async def deposit_status(self, coin: str, tx_id: str) -> int | None:
        """The status of the deposit made by transaction `tx_id` (None: not seen yet)."""
        rows = await self.rest.signed(
            "GET", "/sapi/v1/capital/deposit/hisrec", {"coin": coin, "txId": tx_id}, weight=1
        )
        return int(rows[0]["status"]) if rows else None

    async def wait_credited(self, coin: str, tx_id: str, timeout_s: float) -> None:
        """Return once the deposit is credited; DepositRefused, or DepositNotCredited after
        `timeout_s` (polling every `poll_s`)."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = await self.deposit_status(coin, tx_id)
            if status in CREDITED:
                return
            if status in REFUSED:
                raise DepositRefused(f"exchange refused deposit {tx_id} (status {status})")
            if time.monotonic() >= deadline:
                raise DepositNotCredited(f"deposit {tx_id} not credited (status {status})")
            await asyncio.sleep(self.poll_s)

    async def withdraw_fee(self, coin: str, network: str) -> Decimal:
        """The exchange's fee for withdrawing `coin` on `network` (capital/config/getall)."""
        coins = await self.rest.signed("GET", "/sapi/v1/capital/config/getall", {}, weight=10)
        for entry in coins:
            if entry["coin"] == coin:
                for net in entry["networkList"]:
                    if net["network"] == network:
                        return Decimal(net["withdrawFee"])
        raise WithdrawalRefused(f"the exchange does not withdraw {coin} on {network}")

    async def withdraw(
        self, coin: str, network: str, address: str, amount: Decimal, withdraw_order_id: str
    ) -> str:
        """Ask for `amount` of `coin` to `address` on `network` under `withdraw_order_id`: the
        exchange's withdrawal id (a repeated `withdraw_order_id` gets the first one's id and
        moves nothing more). The account is debited `amount` plus the network's fee."""
        params = {
            "coin": coin,
            "network": network,
            "address": address,
            "amount": f"{amount:f}",
            "withdrawOrderId": withdraw_order_id,
        }
        answer = await self.rest.signed(
            "POST", "/sapi/v1/capital/withdraw/apply", params, weight=SAPI_WEIGHT
        )
        return str(answer["id"])

    async def withdrawal_status(self, coin: str, withdraw_order_id: str) -> dict[str, Any] | None:
        """The withdrawal made under `withdraw_order_id` (its history row), or None."""
        rows = await self.rest.signed(
            "GET",
            "/sapi/v1/capital/withdraw/history",
            {"coin": coin, "withdrawOrderId": withdraw_order_id},
            weight=SAPI_WEIGHT,
        )
        return dict(rows[0]) if rows else None

    async def wait_withdrawn(
        self, coin: str, withdraw_order_id: str, timeout_s: float
    ) -> Withdrawal:
        """Once the withdrawal is completed with its transaction: what it sent. WithdrawalRefused
        (cancelled, rejected, failed), or WithdrawalNotDone after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            row = await self.withdrawal_status(coin, withdraw_order_id)
            status = None if row is None else int(row["status"])
            if row is not None and status == WITHDRAWN and row.get("txId"):
                # The exchange prints 8 decimals; USDC moves in 6 on chain (never more).
                amount = round_usdc_down(Decimal(row["amount"]))
                fee = round_usdc(Decimal(row["transactionFee"]))
                return Withdrawal(amount, fee, str(row["txId"]))
            if status in NOT_WITHDRAWN:
                raise WithdrawalRefused(f"withdrawal {withdraw_order_id}: status {status}")
            if time.monotonic() >= deadline:
                raise WithdrawalNotDone(f"withdrawal {withdraw_order_id} not done ({status})")
            await asyncio.sleep(self.poll_s)
