"""An in-process simulated chain: custody deposits, bridge hops with fees, index mints, and
the sell side's escrow, burns, releases and payouts (each once per id, as the contracts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal

from indexmaker.core.events import (
    BurnConfirmed,
    BurnIndex,
    DepositObserved,
    EngineInput,
    EscrowIndex,
    HopCompleted,
    IndexEscrowed,
    IndexEscrowFailed,
    MintConfirmed,
    MintIndex,
    ReleaseIndex,
    RouteCollateral,
    WithdrawalCompleted,
    WithdrawCollateral,
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
    # `minted` is what each client holds; escrowed tokens sit in custody until burned/released.
    custody: dict[Symbol, Decimal] = field(default_factory=dict)
    burned: dict[Symbol, Decimal] = field(default_factory=dict)
    paid: dict[ClientKey, Decimal] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)  # escrow/burn/release/payout ids carried out
    next_tx: int = 1

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

    def _tx(self) -> TxHash:
        tx = TxHash(f"0x{(1 << 200) + self.next_tx:064x}")
        self.next_tx += 1
        return tx

    def _once(self, key: str) -> bool:
        if key in self.done:
            return False
        self.done.add(key)
        return True

    def escrow(self, command: EscrowIndex) -> tuple[timedelta, EngineInput] | None:
        """Move the client's tokens into custody, or refuse if it holds fewer."""
        if not self._once(f"escrow:{command.escrow_id}"):
            return None
        key = (command.client, command.symbol)
        held = self.minted.get(key, ZERO)
        if held < command.quantity:
            reason = f"the client holds {held} {command.symbol}, not {command.quantity}"
            return self.mint_delay, IndexEscrowFailed(command.escrow_id, reason)
        self.minted[key] = held - command.quantity
        self.custody[command.symbol] = self.custody.get(command.symbol, ZERO) + command.quantity
        return self.mint_delay, IndexEscrowed(command.escrow_id, self._tx())

    def burn(self, command: BurnIndex) -> tuple[timedelta, BurnConfirmed] | None:
        if not self._once(f"burn:{command.payment_id}"):
            return None
        self.custody[command.symbol] = self.custody.get(command.symbol, ZERO) - command.quantity
        self.burned[command.symbol] = self.burned.get(command.symbol, ZERO) + command.quantity
        return self.mint_delay, BurnConfirmed(command.payment_id, self._tx())

    def release(self, command: ReleaseIndex) -> None:
        if not self._once(f"release:{command.escrow_id}"):
            return
        self.custody[command.symbol] = self.custody.get(command.symbol, ZERO) - command.quantity
        key = (command.client, command.symbol)
        self.minted[key] = self.minted.get(key, ZERO) + command.quantity

    def payout(self, command: WithdrawCollateral) -> tuple[timedelta, WithdrawalCompleted] | None:
        if not self._once(f"payout:{command.withdrawal_id}"):
            return None
        self.paid[command.client] = self.paid.get(command.client, ZERO) + command.amount
        return self.mint_delay, WithdrawalCompleted(command.withdrawal_id, self._tx(), ZERO)
