"""Sending transactions with web3.py's AsyncWeb3: one nonce manager per sender, gas estimated
with headroom, EIP-1559 fees, receipts awaited with a timeout and a fee-bumped replacement
(same nonce) when a transaction is stuck. Every failure becomes a RetryableError (try again:
network, timeout after the last replacement) or a NonRetryableError (reverted, refused by the
node).

Units: gas in gas units, fees in wei per gas (ints, as the JSON-RPC carries them); the bump is
an exact integer ratio, rounded up, at least +1 wei, never a float.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3, Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError

from indexmaker.chain.failover import TRANSPORT_ERRORS
from indexmaker.core.errors import NetworkError, NonRetryableError, RetryableError
from indexmaker.store.chain_txs import PendingTx
from indexmaker.store.crash import NO_CRASH, CrashPoints


class TxTimeoutError(RetryableError):
    """No receipt for any version of the transaction within the timeouts; `hashes` were sent."""

    def __init__(self, message: str, hashes: list[str]) -> None:
        super().__init__(message)
        self.hashes = hashes


class TxRevertedError(NonRetryableError):
    """The transaction was mined with status 0, or its simulation reverts (gas estimation).

    `data`: the revert data as 0x-hex when the node returned it (custom error selector first).
    """

    def __init__(self, message: str, data: str = "") -> None:
        super().__init__(message)
        self.data = data

    def is_error(self, signature: str) -> bool:
        """True when the revert is the custom error `signature`, e.g. "AlreadyMinted(bytes32)"."""
        selector = "0x" + bytes(Web3.keccak(text=signature)[:4]).hex()
        return self.data.startswith(selector)


class TxRefusedError(NonRetryableError):
    """The node refused the transaction (bad nonce, underpriced, insufficient funds...)."""


class TxJournal(Protocol):
    """Durable record of sent, unmined transactions (store/chain_txs.py's SqlChainTxs)."""

    def record(self, tx: PendingTx) -> None: ...

    def settle(self, chain_id: int, sender: str, nonce: int) -> None: ...

    def pending(self, chain_id: int, sender: str) -> list[PendingTx]: ...


class NonceManager:
    """Hands out a sender's nonces in order, once each, across concurrent senders.

    The first reservation reads the chain's pending count; after a failed send, `resync()`
    makes the next reservation read it again (a gap would stall every later transaction).
    """

    def __init__(self, w3: AsyncWeb3[Any], address: str) -> None:
        self._w3, self._address = w3, address
        self._next: int | None = None
        self._lock = asyncio.Lock()

    async def reserve(self) -> int:
        async with self._lock:
            if self._next is None:
                self._next = await self._w3.eth.get_transaction_count(
                    self._address,  # type: ignore[arg-type]
                    "pending",
                )
            nonce = self._next
            self._next += 1
            return nonce

    async def resync(self) -> None:
        async with self._lock:
            self._next = None


@dataclass(frozen=True)
class TxPolicy:
    """Gas headroom (percent over the estimate), receipt timeout per attempt (s), fee bump
    (percent, ≥ 10: nodes refuse smaller replacements), replacements after the first send."""

    gas_headroom_pct: int = 20
    receipt_timeout_s: float = 30.0
    bump_pct: int = 25
    max_replacements: int = 3
    poll_s: float = 0.1


def _bump(value: int, pct: int) -> int:
    """value × (100 + pct) / 100 rounded up, and at least value + 1."""
    return max(value + 1, -(-value * (100 + pct) // 100))


def _refused(exc: Exception) -> Exception:
    message = str(exc)
    if isinstance(exc, ContractLogicError):
        data = exc.data if isinstance(exc.data, str) else ""
        return TxRevertedError(f"reverted: {message}", data)
    if isinstance(exc, Web3RPCError | ValueError):
        return TxRefusedError(f"refused by the node: {message}")
    if isinstance(exc, TRANSPORT_ERRORS):  # unreachable, reset, HTTP error status, timeout
        return NetworkError(f"RPC unreachable: {message}")
    return exc


class TxSender:
    """Signs and sends `account`'s transactions on `w3`; see the module docstring."""

    def __init__(
        self, w3: AsyncWeb3[Any], account: LocalAccount, policy: TxPolicy | None = None
    ) -> None:
        self._w3, self._account = w3, account
        self.policy = policy or TxPolicy()
        self.nonces = NonceManager(w3, account.address)
        self.sent: list[str] = []  # every hash sent, in order (replacements included)
        self._chain_id: int | None = None
        # Where sent and unmined transactions are kept (store/chain_txs.py); None: memory only.
        self.journal: TxJournal | None = None
        self._recovered = False
        self._recovering = asyncio.Lock()
        # Chain-step crash points of the crash tests (store/crash.py; set by the composition
        # root): the adapters sending through this sender call `crash.step`.
        self.crash: CrashPoints = NO_CRASH

    @property
    def address(self) -> str:
        """The sender's address (checksummed)."""
        return str(self._account.address)

    async def _prepare(self, tx: Mapping[str, Any]) -> dict[str, Any]:
        w3, policy = self._w3, self.policy
        await self._chain()
        full: dict[str, Any] = {**tx, "from": self._account.address, "chainId": self._chain_id}
        full.setdefault("value", 0)
        if "gas" not in full:
            estimate = await w3.eth.estimate_gas(full)  # type: ignore[arg-type]
            full["gas"] = -(-estimate * (100 + policy.gas_headroom_pct) // 100)
        if "maxFeePerGas" not in full:
            block = await w3.eth.get_block("latest")
            tip = await w3.eth.max_priority_fee
            full["maxPriorityFeePerGas"] = tip
            full["maxFeePerGas"] = 2 * int(block.get("baseFeePerGas", 0)) + tip
        return full

    async def send(self, tx: Mapping[str, Any], recorded_step: str = "") -> Any:
        """Send `tx` ({to, data, value?, gas?, fees?}); return its receipt once mined with status 1.

        Raises TxRevertedError (status 0 or the estimate reverts), TxRefusedError,
        NetworkError, or TxTimeoutError after the last replacement. With a `journal`, the
        transactions left pending by an earlier run are settled first (`recover`).
        `recorded_step`: the chain step (store/crash.py) reached once the first version is
        in the journal, before it is broadcast.
        """
        await self.recover()
        try:
            full = await self._prepare(tx)
        except Exception as exc:
            raise _refused(exc) from exc
        full["nonce"] = await self.nonces.reserve()
        return await self._drive(full, [], first_raw=None, recorded_step=recorded_step)

    async def recover(self) -> int:
        """Settle the transactions an earlier run of this sender left without a receipt (in
        `journal`), once per sender object, before any new one is sent: a mined one is done;
        one whose nonce another transaction used is superseded; one the node still holds is
        awaited and fee-bumped as usual; one the node forgot is rebroadcast as the very same
        signed bytes (same hash: it cannot be mined twice). Returns how many were pending.
        Raises as `send` for a pending one that is stuck or reverted (each is settled
        before the error leaves, so the next call goes on)."""
        if self.journal is None or self._recovered:
            return 0
        async with self._recovering:
            if self._recovered:
                return 0
            chain_id = await self._chain()
            pending = self.journal.pending(chain_id, self.address)
            try:
                for tx in pending:
                    await self._resume(tx)
            finally:
                await self.nonces.resync()
            self._recovered = True
            return len(pending)

    async def _resume(self, tx: PendingTx) -> None:
        assert self.journal is not None
        receipt = await self._wait_any(list(tx.hashes), 0)
        if receipt is None:
            used = await self._w3.eth.get_transaction_count(
                self._account.address,
                "latest",
            )
            if used > tx.nonce:  # another transaction took the nonce: ours never will be mined
                self.journal.settle(tx.chain_id, tx.sender, tx.nonce)
                return
            await self._drive(dict(tx.fields), list(tx.hashes), first_raw=tx.raw)  # settles
            return
        self.journal.settle(tx.chain_id, tx.sender, tx.nonce)
        if receipt["status"] != 1:
            raise TxRevertedError(f"transaction {tx.hashes[-1]} (sent before a restart) reverted")

    async def _chain(self) -> int:
        if self._chain_id is None:
            self._chain_id = await self._w3.eth.chain_id
        return self._chain_id

    async def _drive(
        self,
        full: dict[str, Any],
        hashes: list[str],
        first_raw: bytes | None,
        recorded_step: str = "",
    ) -> Any:
        """Broadcast `full` (or, first, `first_raw`: the same transaction as signed before a
        restart), then replace it with bumped fees after each receipt timeout; the receipt.
        `recorded_step`: as `send`'s."""
        for attempt in range(self.policy.max_replacements + 1):
            if attempt:
                full["maxFeePerGas"] = _bump(full["maxFeePerGas"], self.policy.bump_pct)
                full["maxPriorityFeePerGas"] = _bump(
                    full["maxPriorityFeePerGas"], self.policy.bump_pct
                )
            if attempt == 0 and first_raw is not None:
                raw, tx_hash = first_raw, hashes[-1]
            else:
                signed = self._account.sign_transaction(full)
                raw, tx_hash = bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()
                self._note(full, [*hashes, tx_hash], raw)
                if recorded_step and not hashes:
                    self.crash.step(recorded_step)
            try:
                await self._w3.eth.send_raw_transaction(raw)
            except Exception as exc:
                if not hashes and first_raw is None:
                    error = _refused(exc)
                    if not isinstance(error, NetworkError):  # refused: nothing is pending
                        self._settle(full)
                    await self.nonces.resync()
                    raise error from exc
                # A version the node refuses (already known, or the first was just mined, or
                # an underpriced replacement): keep waiting for one that is.
            if tx_hash not in hashes:
                hashes.append(tx_hash)
                self.sent.append(tx_hash)
            receipt = await self._wait_any(hashes, self.policy.receipt_timeout_s)
            if receipt is not None:
                self._settle(full)
                if receipt["status"] != 1:
                    mined = "0x" + bytes(receipt["transactionHash"]).hex()
                    raise TxRevertedError(f"transaction {mined} reverted")
                return receipt
        raise TxTimeoutError(
            f"no receipt after {self.policy.max_replacements} replacements (nonce {full['nonce']})",
            hashes,
        )

    def _note(self, full: dict[str, Any], hashes: list[str], raw: bytes) -> None:
        """Write the version about to leave to the journal (before it leaves)."""
        if self.journal is not None:
            chain_id = int(full["chainId"])
            self.journal.record(
                PendingTx(chain_id, self.address, int(full["nonce"]), tuple(hashes), raw, full)
            )

    def _settle(self, full: dict[str, Any]) -> None:
        if self.journal is not None:
            self.journal.settle(int(full["chainId"]), self.address, int(full["nonce"]))

    async def _wait_any(self, hashes: list[str], timeout: float) -> Any:
        """The receipt of whichever of `hashes` got mined, or None after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            for h in hashes:
                try:
                    return await self._w3.eth.get_transaction_receipt(h)  # type: ignore[arg-type]
                except TransactionNotFound:
                    continue
                except TRANSPORT_ERRORS as exc:
                    raise NetworkError(f"RPC unreachable: {exc}") from exc
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(self.policy.poll_s)
