"""The chain port of the collateral path over two EVM chains (SPEC §1, §7; issue 11).

- Deposits: custody on every chain of `ports` (the source chain 42161 and the trading chain
  8453), each reported as `DepositObserved` on its own designation; the core routes a source
  chain deposit through the Across bridge (chain/bridge.py) to the trading chain's custody,
  and a trading-chain deposit straight on.
- `transfer` (the "wallet" hop, trading chain → exchange): the trading chain's custody releases
  the amount to the exchange's deposit address (asked from the exchange API at start:
  `deposit_address(coin, network)`), keyed on chain by the hop key (chain/hops.py); the hop
  completes once the exchange has credited that transaction (its deposit history), and the
  lot's fee is the release's gas in USDC (also when an earlier run released it: its receipt
  is found by the custody's release event, so a restart charges what an uninterrupted hop does).
- `transfer` over the `withdraw` bridge (a redemption's proceeds, exchange → trading chain):
  the exchange's withdrawal (`withdrawOrderId` = the hop key, the redemption's id: a resend
  never withdraws twice) of the amount less the network's withdrawal fee, to the trading
  chain's custody (the trading wallet); done once the exchange reports it completed and its
  transaction succeeded on the trading chain: what arrived, and the exchange's fee.
- `mint`/`burn`/`escrow`/`release_index` on the trading chain (index tokens live there);
  `withdraw` (a payout to a client) on the chain of its source designation; `balance` of a
  designation's custody.
- Route costs (chain/route_costs.py): when given a `quoter`, every hop's cost is quoted to the
  core at start, before any deposit is reported, and again when it moves; a lot that cannot
  pay its route is held on its chain by the core, never sent (engine/route_holds.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from indexmaker.chain.connector import Web3ChainPort
from indexmaker.chain.eth_price import FixedEthPrice, PriceSource
from indexmaker.chain.exchange_wallet import ExchangeWallet, WithdrawalRefused
from indexmaker.chain.exchange_withdrawals import withdraw_from_exchange
from indexmaker.chain.hops import HopRunner, gas_cost_usdc, tx_hash
from indexmaker.chain.route_costs import RouteCostQuoter
from indexmaker.core.chain_events import (
    BurnIndex,
    EscrowIndex,
    HopReport,
    MintIndex,
    QueryHop,
    ReleaseIndex,
    RouteCollateral,
    WithdrawCollateral,
)
from indexmaker.core.errors import InvalidInputError
from indexmaker.core.ids import Designation
from indexmaker.core.money import exact_sub
from indexmaker.core.ports import EventSink


class RoutedChainPort:
    """`ChainPort` over the chains in `ports` (by designation); `trading` mints and pays the
    exchange at `exchange` (a designation) through `wallet`."""

    def __init__(
        self,
        ports: Mapping[Designation, Web3ChainPort],
        trading: Designation,
        exchange: Designation,
        wallet: ExchangeWallet,
        *,
        coin: str = "USDC",
        network: str = "BASE",
        eth_usdc: Decimal = Decimal(3000),
        timeout_s: float = 120.0,
        withdraw_bridge: str = "withdraw",  # [solver] withdraw_bridge: exchange → trading chain
        price: PriceSource | None = None,
        quoter: RouteCostQuoter | None = None,
    ) -> None:
        """`price`: USDC per ETH for gas (chain/eth_price.py; default: the fixed `eth_usdc`);
        `quoter`: the route's hop costs for the core (None: none quoted, nothing held)."""
        if trading not in ports:
            raise InvalidInputError("trading", f"no chain for {trading}")
        self.ports, self.trading = dict(ports), ports[trading]
        self.exchange, self.wallet = exchange, wallet
        self.coin, self.network = coin, network
        self.price = price or FixedEthPrice(eth_usdc)
        self.timeout_s = timeout_s
        self.runner = HopRunner("exchange_deposit", timeout_s)
        self.withdraw_bridge = withdraw_bridge
        self.withdrawals = HopRunner("exchange_withdrawal", timeout_s)
        self.deposit_address = ""
        self.quoter = quoter

    async def start(self, sink: EventSink) -> None:
        self.deposit_address = await self.wallet.deposit_address(self.coin, self.network)
        self.runner.start(sink)
        self.withdrawals.start(sink)
        if self.quoter is not None:  # before any deposit: the core knows what a hop costs
            await self.quoter.start(sink)
        for port in self.ports.values():
            await port.start(sink)

    async def stop(self) -> None:
        if self.quoter is not None:
            await self.quoter.stop()
        await self.runner.stop()
        await self.withdrawals.stop()
        for port in self.ports.values():
            await port.stop()

    async def transfer(self, command: RouteCollateral) -> None:
        if command.bridge == self.withdraw_bridge:
            self._check_withdrawal(command)
            self.withdrawals.submit(command, self._withdraw_from_exchange)
            return
        if command.bridge and command.bridge != "wallet":
            raise InvalidInputError("bridge", f"{command.bridge} is a BridgePort's hop")
        if command.source != self.trading.settings.designation:
            raise InvalidInputError(
                "source", f"pays the exchange from {self.trading.settings.designation}"
            )
        if command.destination != self.exchange:
            raise InvalidInputError("destination", f"no route to {command.destination}")
        if command.amount <= 0:  # custody refuses to release nothing: a revert on every retry
            raise InvalidInputError("amount", f"{command.amount} USDC is nothing to pay")
        self.runner.submit(command, self._pay_exchange)

    async def _pay_exchange(self, key: str, command: RouteCollateral) -> tuple[Decimal, Decimal]:
        release_key = f"transfer:{key}"
        receipt = await self.trading.release(release_key, self.deposit_address, command.amount)
        if receipt is None:  # released by an earlier attempt (a restart): its gas all the same
            tx = await self.trading.released_tx(release_key, command.from_block)
            receipt = await self.trading.w3.eth.get_transaction_receipt(tx)  # type: ignore[arg-type]
        else:
            self.trading.tx.crash.step("wallet_released")  # the exchange has not credited it
        tx = tx_hash(receipt)
        gas = gas_cost_usdc([receipt], await self.price.eth_usdc())
        await self.wallet.wait_credited(self.coin, tx, self.timeout_s)
        received = max(exact_sub(command.amount, gas), Decimal(0))
        return received, exact_sub(command.amount, received)

    def _check_withdrawal(self, command: RouteCollateral) -> None:
        if command.source != self.exchange:
            raise InvalidInputError("source", f"withdraws from {self.exchange}")
        if command.destination != self.trading.settings.designation:
            raise InvalidInputError(
                "destination", f"withdraws to {self.trading.settings.designation}"
            )

    async def _withdraw_from_exchange(
        self, key: str, command: RouteCollateral
    ) -> tuple[Decimal, Decimal]:
        to = self.trading.settings.custody
        done = await withdraw_from_exchange(
            self.wallet, self.coin, self.network, to, command, key, self.timeout_s
        )
        receipt = await self.trading.w3.eth.get_transaction_receipt(done.tx_id)  # type: ignore[arg-type]
        if int(receipt["status"]) != 1:
            raise WithdrawalRefused(f"withdrawal {key}: transaction {done.tx_id} reverted")
        return done.amount, exact_sub(command.amount, done.amount)

    async def hop_status(self, query: QueryHop) -> HopReport:
        """As `HopRunner.status` (chain/hops.py), of the exchange's withdrawals for the
        `withdraw` bridge: NOT_FOUND is safe there too, as the exchange keys a withdrawal by
        its `withdrawOrderId`."""
        if query.bridge == self.withdraw_bridge:
            return self.withdrawals.status(query)
        return self.runner.status(query)

    async def mint(self, command: MintIndex) -> None:
        await self.trading.mint(command)

    async def burn(self, command: BurnIndex) -> None:
        await self.trading.burn(command)

    async def escrow(self, command: EscrowIndex) -> None:
        await self.trading.escrow(command)

    async def release_index(self, command: ReleaseIndex) -> None:
        await self.trading.release_index(command)

    async def withdraw(self, command: WithdrawCollateral) -> None:
        await self._port(command.source).withdraw(command)

    async def balance(self, designation: str) -> Decimal:
        return await self._port(designation).balance(designation)

    def _port(self, designation: str) -> Web3ChainPort:
        port = self.ports.get(Designation(designation))
        if port is None:
            raise InvalidInputError("designation", f"no chain for {designation}")
        return port
