"""A redemption's proceeds leaving the exchange through its wallet API (issue 12's withdraw
hop), keyed by `withdrawOrderId` = the hop key (the redemption's id): the exchange takes a
key once, so a resend after a timeout or a restart never withdraws twice (Binance
wallet/capital/withdraw; docs/exchange-sim.md).

`withdraw_from_exchange` is the withdrawal itself (the network's fee comes off the amount, so
the account is debited exactly the proceeds); `RoutedChainPort` (chain/routing.py) runs it and
then checks the transaction on the trading chain. `ExchangeWithdrawBridge` is the `withdraw`
bridge of `serve --venue binance` on the in-process simulated chain (`[sim] withdraw_to`):
the exchange simulator's withdrawal is the hop, done once the exchange reports it completed;
there is no chain to check the transaction on.
"""

from __future__ import annotations

from decimal import Decimal

from indexmaker.chain.exchange_wallet import ExchangeWallet, Withdrawal
from indexmaker.chain.hops import HopRunner
from indexmaker.core.chain_events import HopReport, QueryHop, RouteCollateral
from indexmaker.core.money import exact_sub
from indexmaker.core.ports import EventSink


async def withdraw_from_exchange(
    wallet: ExchangeWallet,
    coin: str,
    network: str,
    to: str,
    command: RouteCollateral,
    key: str,
    timeout_s: float,
) -> Withdrawal:
    """Withdraw `command.amount` less the network's fee to `to` under `key` and wait until the
    exchange completed it. Raises WithdrawalRefused (refused, cancelled, failed) or
    WithdrawalNotDone (not completed within `timeout_s`)."""
    fee = await wallet.withdraw_fee(coin, network)
    await wallet.withdraw(coin, network, to, exact_sub(command.amount, fee), key)
    return await wallet.wait_withdrawn(coin, key, timeout_s)


class ExchangeWithdrawBridge:
    """`BridgePort` named `name` (`[solver] withdraw_bridge`): exchange → `address` on
    `network`, carried out in the background (chain/hops.py's `HopRunner`); `hop_status`
    answers from it (NOT_FOUND is safe: the exchange keys the withdrawal)."""

    def __init__(
        self,
        name: str,
        wallet: ExchangeWallet,
        address: str,
        *,
        coin: str = "USDC",
        network: str = "BASE",
        timeout_s: float = 120.0,
    ) -> None:
        self._name = name
        self.wallet, self.address = wallet, address
        self.coin, self.network = coin, network
        self.timeout_s = timeout_s
        self.runner = HopRunner("exchange_withdrawal", timeout_s)

    @property
    def name(self) -> str:
        return self._name

    async def start(self, sink: EventSink) -> None:
        self.runner.start(sink)

    async def stop(self) -> None:
        await self.runner.stop()

    async def relay(self, command: RouteCollateral) -> None:
        self.runner.submit(command, self._withdraw)

    async def hop_status(self, query: QueryHop) -> HopReport:
        return self.runner.status(query)

    async def _withdraw(self, key: str, command: RouteCollateral) -> tuple[Decimal, Decimal]:
        done = await withdraw_from_exchange(
            self.wallet,
            self.coin,
            self.network,
            self.address,
            command,
            key,
            self.timeout_s,
        )
        return done.amount, exact_sub(command.amount, done.amount)
