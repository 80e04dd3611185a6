"""An in-process simulated chain: custody deposits, bridge hops with fees, index mints."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal

from indexmaker.core.events import (
    DepositObserved,
    HopCompleted,
    MintConfirmed,
    MintIndex,
    RouteCollateral,
)
from indexmaker.core.ids import ClientKey, Designation, Symbol, TxHash
from indexmaker.core.money import USDC_QUANTUM

ZERO = Decimal(0)
SOURCE_CHAIN = Designation("EVM:ARBITRUM:USDC")


@dataclass(frozen=True, slots=True)
class BridgeTerms:
    fixed_fee: Decimal = ZERO
    rate: Decimal = ZERO  # share of the amount
    delay: timedelta = timedelta(seconds=2)

    def fee(self, amount: Decimal) -> Decimal:
        fee = self.fixed_fee + (amount * self.rate).quantize(USDC_QUANTUM, rounding=ROUND_CEILING)
        return min(fee, amount)


@dataclass(slots=True)
class SimulatedChain:
    source: Designation = SOURCE_CHAIN
    bridges: dict[str, BridgeTerms] = field(default_factory=dict)
    mint_delay: timedelta = timedelta(seconds=1)
    minted: dict[tuple[ClientKey, Symbol], Decimal] = field(default_factory=dict)
    payments: set[str] = field(default_factory=set)
    next_seq: int = 1
    confirmations: int = 12  # reported with every deposit: the simulated chain is final at once

    def deposit(self, client: ClientKey, amount: Decimal) -> DepositObserved:
        """One deposit per block, one log per transaction: tx hash and block follow the
        custody contract's sequence number, so every run names the same transactions."""
        seq = self.next_seq
        self.next_seq += 1
        return DepositObserved(
            client,
            seq,
            amount,
            self.source,
            tx_hash=TxHash(f"0x{seq:064x}"),
            log_index=0,
            block_number=seq,
            confirmations=self.confirmations,
        )

    def route(self, command: RouteCollateral) -> tuple[timedelta, HopCompleted]:
        terms = self.bridges.get(command.bridge, BridgeTerms())
        fee = terms.fee(command.amount)
        return terms.delay, HopCompleted(command.transfer_id, command.amount - fee, fee)

    def mint(self, command: MintIndex) -> tuple[timedelta, MintConfirmed] | None:
        """Mint once per payment id, as the custody contract does; None for a repeat."""
        if command.payment_id in self.payments:
            return None
        self.payments.add(command.payment_id)
        key = (command.client, command.symbol)
        self.minted[key] = self.minted.get(key, ZERO) + command.quantity
        return self.mint_delay, MintConfirmed(command.payment_id)
