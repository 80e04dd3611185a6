"""The simulator pays withdrawals on the trading chain from its hot wallet, as the exchange does
(SPEC §6; issue 12: a redemption's proceeds leave the exchange for the trading chain).

A withdrawal on the watched chain's network (`--chain-network`) whose account was debited
(wallet.py) is sent as a real `transfer(address, amount)` of the collateral token (6 decimals)
from the hot wallet, whose key comes from `$EXCHANGE_SIM_HOT_WALLET_KEY` (never logged; local
chains use one of anvil's public test keys, funded by whoever starts them). The withdrawal is
status 4 (processing, no `txId`) until the transaction is mined, then 6 (completed) with the
real `txId`; a transfer the chain refuses or reverts is status 5 (failure) and the debit is
credited back, as Binance refunds a failed withdrawal; one whose outcome is unknown (a
timeout) stays processing. One task per withdrawal; a repeated
`withdrawOrderId` never reaches here (wallet.py answers it with the first withdrawal).
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from eth_account import Account
from web3 import AsyncWeb3, Web3

from indexmaker.chain.connector import disconnect
from indexmaker.chain.failover import rpc_provider
from indexmaker.chain.tx import TxSender
from indexmaker.core.errors import NonRetryableError
from indexmaker.core.money import usdc_to_units
from indexmaker.observability.logging import log_event
from indexmaker.venues.binance_sim.config import ChainWatchConfig

if TYPE_CHECKING:
    from indexmaker.venues.binance_sim.wallet_records import Transfer

_TRANSFER_ABI = [
    {
        "type": "function",
        "name": "transfer",
        "stateMutability": "nonpayable",
        "inputs": [
            {"name": "to", "type": "address"},
            {"name": "value", "type": "uint256"},
        ],
        "outputs": [{"name": "", "type": "bool"}],
    }
]
COMPLETED, FAILURE = 6, 5


class ChainPayer:
    """Sends withdrawals of `config.network` on chain from the hot wallet `key`."""

    def __init__(self, config: ChainWatchConfig, key: str) -> None:
        self.network, self.coin = config.network, config.coin
        self._w3: AsyncWeb3[Any] = AsyncWeb3(rpc_provider((config.rpc_url,)))
        account = Account.from_key(key)
        self.address = account.address
        self._sender = TxSender(self._w3, account)
        self._token = self._w3.eth.contract(
            address=Web3.to_checksum_address(config.token), abi=_TRANSFER_ABI
        )
        self._tasks: set[asyncio.Task[None]] = set()

    def pays(self, network: str, coin: str) -> bool:
        return network == self.network and coin == self.coin

    def pay(self, transfer: Transfer, refund: Any, finished: Any) -> None:
        """Send `transfer` in the background; `refund()` credits the debit back on failure;
        `finished()` once it is final (completed or failed: the wallet's bound counts it)."""
        task = asyncio.create_task(self._send(transfer, refund, finished))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, transfer: Transfer, refund: Any, finished: Any) -> None:
        units = usdc_to_units(Decimal(transfer.amount))
        call = self._token.functions.transfer(Web3.to_checksum_address(transfer.address), units)
        try:
            receipt = await self._sender.send(
                {"to": self._token.address, "data": call._encode_transaction_data()}
            )
        except NonRetryableError as error:  # reverted or refused: nothing moved
            transfer.status = FAILURE
            refund()
            finished()
            log_event("exchange_sim.withdrawal_failed", id=transfer.ident, error=repr(error))
            return
        except Exception as error:  # it may still be mined: stays processing, never refunded
            log_event("exchange_sim.withdrawal_unconfirmed", id=transfer.ident, error=repr(error))
            return
        transfer.tx_id = "0x" + bytes(receipt["transactionHash"]).hex()
        transfer.status = COMPLETED
        finished()
        log_event(
            "exchange_sim.withdrawal_sent",
            id=transfer.ident,
            amount=str(transfer.amount),
            tx=transfer.tx_id,
        )

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await disconnect(self._w3)
