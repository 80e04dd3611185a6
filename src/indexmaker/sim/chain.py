"""An in-process simulated chain: custody deposits, bridge hops with fees, index mints, and
the sell side's escrow, burns, releases and payouts (each once per id, as the contracts).

Given a `path` (`serve` with a data directory: sim/chain_state.py), what it holds and which ids
it has carried out outlive the process, as a real chain outlives the service: a restarted
service escrows tokens it minted before, and a resent mint, escrow, burn or payout moves
nothing again but is answered with the first outcome (`again`), as the custody contract and
its connector report a repeat with the first transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

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
REFUSED = "refused: "  # an outcome in `done` that is a refusal (its reason follows)


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
    # escrow/burn/release/payout ids carried out: their transaction ("" none; REFUSED + the
    # reason: an escrow refused)
    done: dict[str, str] = field(default_factory=dict)
    next_tx: int = 1
    path: Path | None = None  # kept there after every change (sim/chain_state.py)

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
        self._changed()
        return self.mint_delay, MintConfirmed(command.payment_id)

    def _tx(self) -> TxHash:
        tx = TxHash(f"0x{(1 << 200) + self.next_tx:064x}")
        self.next_tx += 1
        return tx

    def _once(self, key: str) -> bool:
        if key in self.done:
            return False
        self.done[key] = ""
        return True

    def _record(self, key: str, outcome: str) -> str:
        self.done[key] = outcome
        self._changed()
        return outcome

    def _changed(self) -> None:
        if self.path is not None:
            from indexmaker.sim.chain_state import save_chain

            save_chain(self, self.path)

    def again(
        self, command: MintIndex | EscrowIndex | BurnIndex | WithdrawCollateral
    ) -> tuple[timedelta, EngineInput] | None:
        """The first outcome of a mint, escrow, burn or payout carried out before (a resend
        after a timeout or a restart), None when it was not."""
        match command:
            case MintIndex():
                found = command.payment_id in self.payments
                return (self.mint_delay, MintConfirmed(command.payment_id)) if found else None
            case EscrowIndex():
                outcome = self.done.get(f"escrow:{command.escrow_id}")
                if outcome is None:
                    return None
                if outcome.startswith(REFUSED):
                    failed = IndexEscrowFailed(command.escrow_id, outcome.removeprefix(REFUSED))
                    return self.mint_delay, failed
                return self.mint_delay, IndexEscrowed(command.escrow_id, TxHash(outcome))
            case BurnIndex():
                outcome = self.done.get(f"burn:{command.payment_id}")
                if outcome is None:
                    return None
                return self.mint_delay, BurnConfirmed(command.payment_id, TxHash(outcome))
            case WithdrawCollateral():
                outcome = self.done.get(f"payout:{command.withdrawal_id}")
                if outcome is None:
                    return None
                paid = WithdrawalCompleted(command.withdrawal_id, TxHash(outcome), ZERO)
                return self.mint_delay, paid

    def escrow(self, command: EscrowIndex) -> tuple[timedelta, EngineInput] | None:
        """Move the client's tokens into custody, or refuse if it holds fewer."""
        once = f"escrow:{command.escrow_id}"
        if not self._once(once):
            return None
        key = (command.client, command.symbol)
        held = self.minted.get(key, ZERO)
        if held < command.quantity:
            reason = f"the client holds {held} {command.symbol}, not {command.quantity}"
            self._record(once, REFUSED + reason)
            return self.mint_delay, IndexEscrowFailed(command.escrow_id, reason)
        self.minted[key] = held - command.quantity
        self.custody[command.symbol] = self.custody.get(command.symbol, ZERO) + command.quantity
        tx = TxHash(self._record(once, self._tx()))
        return self.mint_delay, IndexEscrowed(command.escrow_id, tx)

    def burn(self, command: BurnIndex) -> tuple[timedelta, BurnConfirmed] | None:
        once = f"burn:{command.payment_id}"
        if not self._once(once):
            return None
        self.custody[command.symbol] = self.custody.get(command.symbol, ZERO) - command.quantity
        self.burned[command.symbol] = self.burned.get(command.symbol, ZERO) + command.quantity
        tx = TxHash(self._record(once, self._tx()))
        return self.mint_delay, BurnConfirmed(command.payment_id, tx)

    def release(self, command: ReleaseIndex) -> None:
        if not self._once(f"release:{command.escrow_id}"):
            return
        self.custody[command.symbol] = self.custody.get(command.symbol, ZERO) - command.quantity
        key = (command.client, command.symbol)
        self.minted[key] = self.minted.get(key, ZERO) + command.quantity
        self._changed()

    def payout(self, command: WithdrawCollateral) -> tuple[timedelta, WithdrawalCompleted] | None:
        once = f"payout:{command.withdrawal_id}"
        if not self._once(once):
            return None
        self.paid[command.client] = self.paid.get(command.client, ZERO) + command.amount
        tx = TxHash(self._record(once, self._tx()))
        return self.mint_delay, WithdrawalCompleted(command.withdrawal_id, tx, ZERO)
