"""The exchange's wallet as the collateral router needs it (Binance SAPI "capital" endpoints,
served alike by the exchange simulator): the deposit address of a coin on a network, and the
status of a deposit by its transaction hash.

Binance deposit statuses (wallet/capital/deposite-history): 0 pending, 6 credited but cannot
withdraw, 7 wrong deposit, 8 waiting user confirm, 1 success, 2 rejected. Credited means 6 or 1.
"""

from __future__ import annotations

import asyncio
import time

from web3 import Web3

from indexmaker.core.errors import NonRetryableError, RetryableError
from indexmaker.venues.binance.rest import BinanceRest

CREDITED = (1, 6)
REFUSED = (2, 7)


class DepositRefused(NonRetryableError):
    """The exchange says the deposit was wrong or rejected (status 2 or 7)."""


class DepositNotCredited(RetryableError):
    """The exchange has not credited the deposit within the wait."""


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
