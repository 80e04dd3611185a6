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
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import AsyncWeb3, Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError

from indexmaker.chain.failover import TRANSPORT_ERRORS
from indexmaker.core.errors import NetworkError, NonRetryableError, RetryableError


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

    @property
    def address(self) -> str:
        """The sender's address (checksummed)."""
        return str(self._account.address)

    async def _prepare(self, tx: Mapping[str, Any]) -> dict[str, Any]:
        w3, policy = self._w3, self.policy
        if self._chain_id is None:
            self._chain_id = await w3.eth.chain_id
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

    async def send(self, tx: Mapping[str, Any]) -> Any:
        """Send `tx` ({to, data, value?, gas?, fees?}); return its receipt once mined with status 1.

        Raises TxRevertedError (status 0 or the estimate reverts), TxRefusedError,
        NetworkError, or TxTimeoutError after the last replacement.
        """
        try:
            full = await self._prepare(tx)
        except Exception as exc:
            raise _refused(exc) from exc
        full["nonce"] = await self.nonces.reserve()
        hashes: list[str] = []
        for attempt in range(self.policy.max_replacements + 1):
            if attempt:
                full["maxFeePerGas"] = _bump(full["maxFeePerGas"], self.policy.bump_pct)
                full["maxPriorityFeePerGas"] = _bump(
                    full["maxPriorityFeePerGas"], self.policy.bump_pct
                )
            signed = self._account.sign_transaction(full)
            try:
                tx_hash = await self._w3.eth.send_raw_transaction(signed.raw_transaction)
            except Exception as exc:
                if not hashes:
                    await self.nonces.resync()
                    raise _refused(exc) from exc
                # A replacement the node refuses (e.g. the first was just mined): keep waiting.
            else:
                hashes.append("0x" + bytes(tx_hash).hex())
                self.sent.append(hashes[-1])
            receipt = await self._wait_any(hashes, self.policy.receipt_timeout_s)
            if receipt is not None:
                if receipt["status"] != 1:
                    mined = "0x" + bytes(receipt["transactionHash"]).hex()
                    raise TxRevertedError(f"transaction {mined} reverted")
                return receipt
        raise TxTimeoutError(
            f"no receipt after {self.policy.max_replacements} replacements (nonce {full['nonce']})",
            hashes,
        )

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
