"""The simulator watches the trading chain for deposits, as the exchange does (SPEC §6, §7).

A `Transfer(from, to, value)` log of the collateral token (ERC-20, 6 decimals) whose `to`
is one of the simulator's deposit addresses on `network` (wallet.py: one per account, coin and
network) becomes a pending deposit of that account (status 0, `confirmTimes` n/m in the
deposit history) and is credited once it has the network's `minConfirm` confirmations (the
deposit's own block counts as the first): the account's balance rises and its user-data
subscribers get `balanceUpdate` then `outboundAccountPosition`. Each (tx hash, log index) is
credited once. Logs are read by block range after a cursor (chain/logs.py), so a dropped RPC
loses nothing; an unreachable node is retried every `poll_s`.

Not modelled: reorgs of a pending deposit (a local anvil does not reorg by itself), the
unlock confirmations before a deposit may be withdrawn.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from web3 import AsyncWeb3, Web3

from indexmaker.chain.connector import disconnect
from indexmaker.chain.failover import rpc_provider
from indexmaker.chain.logs import LogFollower
from indexmaker.core.errors import NetworkError
from indexmaker.core.money import units_to_usdc
from indexmaker.observability.logging import log_event
from indexmaker.venues.binance_sim.config import ChainWatchConfig
from indexmaker.venues.binance_sim.exchange import now_ms

if TYPE_CHECKING:
    from indexmaker.venues.binance_sim.wallet import Wallet

TRANSFER_TOPIC = bytes(Web3.keccak(text="Transfer(address,address,uint256)"))


def _topic(address: str) -> bytes:
    return b"\x00" * 12 + bytes.fromhex(address.removeprefix("0x"))


class ChainDepositWatcher:
    """Credits `accounts`' deposits on one chain to `wallet`; see the module docstring."""

    def __init__(self, wallet: Wallet, config: ChainWatchConfig, accounts: list[str]) -> None:
        self.wallet, self.config = wallet, config
        wallet.min_confirm[config.network] = config.confirmations
        self._accounts = {
            wallet.address(account, config.coin, config.network).lower(): account
            for account in accounts
        }
        self._w3: AsyncWeb3[Any] = AsyncWeb3(rpc_provider((config.rpc_url,)))
        recipients = [_topic(address) for address in sorted(self._accounts)]
        self.follower = LogFollower(
            self._w3,
            [Web3.to_checksum_address(config.token)],
            start_block=config.start_block,
            topics=[TRANSFER_TOPIC, None, recipients],
            poll_s=config.poll_s,
        )

    async def poll_once(self) -> None:
        """Take in new transfers, then count confirmations at the current head."""
        await self.follower.poll_once(self._on_log)
        try:
            head = await self._w3.eth.block_number
        except OSError as exc:
            raise NetworkError(f"RPC unreachable: {exc}") from exc
        for transfer in self.wallet.confirm_chain(self.config.network, head, now_ms()):
            log_event(
                "exchange_sim.deposit_credited",
                account=transfer.account,
                amount=str(transfer.amount),
                tx=transfer.tx_id,
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every `poll_s` until `stop`, then close the RPC session; one failing poll never
        ends the watch."""
        try:
            await self._watch(stop)
        finally:
            await disconnect(self._w3)

    async def _watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.poll_once()
            except NetworkError:
                pass  # the next poll resumes from the same cursor
            except Exception as error:  # a bad log must not stop crediting the others
                log_event("exchange_sim.chain_watch_failed", error=repr(error))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.poll_s)

    async def _on_log(self, log: Any) -> None:
        to = "0x" + bytes(log["topics"][2])[12:].hex()
        account = self._accounts.get(to.lower())
        if account is None:
            return
        amount = units_to_usdc(int.from_bytes(bytes(log["data"]), "big"))
        tx_id = "0x" + bytes(log["transactionHash"]).hex()
        transfer = self.wallet.chain_deposit(
            account,
            self.config.coin,
            self.config.network,
            amount,
            tx_id,
            int(log["logIndex"]),
            int(log["blockNumber"]),
        )
        if transfer is not None:
            log_event("exchange_sim.deposit_seen", account=account, amount=str(amount), tx=tx_id)
