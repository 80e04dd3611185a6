"""Redeemed index tokens in custody (issue 12, SPEC §3 sell side) on one EVM chain:
`Custody.escrowIndex` / `burnEscrowed` / `releaseIndex` (contracts/Custody.sol).

Keys on chain: escrow id = keccak256(the redemption's id `R<n>`), burn id = keccak256(the
burn's payment id `R<n>-B<batch>`); the contract refuses a repeat of either, so a resend after
a timeout or a restart moves nothing twice. A repeat is reported as done only when what the
chain holds under that key is what the command asks (same client and units); anything else
is a final error (a fresh store's ids against an older custody), never reported as done.

Units: index tokens have 18 decimals (`index_to_units` rounds down: never more than asked).
The burn records keccak256("payment_id|escrow_id|chain_id|address|symbol|quantity"), the
hash of its terms, beside the burn (`Custody.burnHashOf`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from web3 import Web3

from indexmaker.chain.across import event_topic
from indexmaker.core.chain_events import (
    BurnConfirmed,
    BurnIndex,
    EscrowIndex,
    IndexEscrowed,
    ReleaseIndex,
)
from indexmaker.core.errors import NonRetryableError
from indexmaker.core.ids import TxHash
from indexmaker.core.money import index_to_units, units_to_index

if TYPE_CHECKING:
    from indexmaker.chain.connector import Web3ChainPort


class EscrowRefused(NonRetryableError):
    """The client has not approved custody for, or does not hold, the units to escrow; or the
    escrow id was used on chain for another escrow."""


def burn_terms_hash(command: BurnIndex) -> bytes:
    """keccak256 of the burn's terms (module docstring), recorded with the burn."""
    chain_id, address = command.client
    text = (
        f"{command.payment_id}|{command.escrow_id}|{chain_id}|{address}|{command.symbol}|"
        f"{command.quantity}"
    )
    return bytes(Web3.keccak(text=text))


def _show(units: int) -> str:
    """Index units as a plain number without trailing zeros, for messages ("2.5", "0")."""
    text = f"{units_to_index(units):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _tx(receipt: Any) -> TxHash:
    return TxHash("0x" + bytes(receipt["transactionHash"]).hex())


class IndexEscrow:
    """Escrow, burn from escrow and release through `port`'s custody and issuer."""

    def __init__(self, port: Web3ChainPort) -> None:
        self.port = port
        abi = port.custody_contract.abi
        self._escrowed_topic = event_topic(abi, "IndexEscrowed")
        self._burned_topic = event_topic(abi, "IndexBurned")
        self._erc20 = port.token_abi

    def _token(self, symbol: str) -> Any:
        address = Web3.to_checksum_address(self.port.token_address(symbol))
        return self.port.w3.eth.contract(address=address, abi=self._erc20)

    async def escrow(self, command: EscrowIndex) -> IndexEscrowed:
        """Pull the client's units into custody once; EscrowRefused when it cannot be done."""
        custody = self.port.custody_contract
        key = Web3.keccak(text=command.escrow_id)
        units = index_to_units(command.quantity)
        client = Web3.to_checksum_address(command.client[1])
        held = await custody.functions.escrows(key).call()
        if int(held[2]) != 0:  # (token, client, amount, burned, released)
            return await self._earlier_escrow(command, held, units)
        token = self._token(command.symbol)
        allowance = int(await token.functions.allowance(client, custody.address).call())
        balance = int(await token.functions.balanceOf(client).call())
        if balance < units or allowance < units:
            raise EscrowRefused(
                f"{client} holds {_show(balance)} {command.symbol} and approved custody "
                f"{custody.address} for {_show(allowance)}, not {_show(units)}"
            )
        call = custody.functions.escrowIndex(token.address, key, client, units)
        receipt = await self.port.send_once(call, "AlreadyEscrowed(bytes32)")
        if receipt is None:  # a concurrent resend got there first
            held = await custody.functions.escrows(key).call()
            return await self._earlier_escrow(command, held, units)
        return IndexEscrowed(command.escrow_id, _tx(receipt), int(receipt["blockNumber"]))

    async def _earlier_escrow(self, command: EscrowIndex, held: Any, units: int) -> IndexEscrowed:
        same = str(held[1]).lower() == command.client[1].lower() and int(held[2]) == units
        if not same:
            raise EscrowRefused(
                f"escrow id {command.escrow_id} was used before (client {held[1]}, {held[2]} units)"
            )
        key = bytes(Web3.keccak(text=command.escrow_id))
        log = await self.port.custody_log(self._escrowed_topic, key)
        return IndexEscrowed(command.escrow_id, _tx(log), int(log["blockNumber"]))

    async def burn(self, command: BurnIndex) -> BurnConfirmed:
        """Burn from the escrow once per payment id; the burn's transaction (the earlier one's
        after a repeat)."""
        assert command.escrow_id is not None
        call = self.port.custody_contract.functions.burnEscrowed(
            Web3.keccak(text=command.escrow_id),
            Web3.keccak(text=command.payment_id),
            index_to_units(command.quantity),
            burn_terms_hash(command),
        )
        receipt = await self.port.send_once(call, "AlreadyBurned(bytes32)")
        if receipt is None:
            key = bytes(Web3.keccak(text=command.payment_id))
            return BurnConfirmed(
                command.payment_id, TxHash(await self.port.log_tx(self._burned_topic, key))
            )
        return BurnConfirmed(command.payment_id, _tx(receipt))

    async def release(self, command: ReleaseIndex) -> None:
        """Return the unsold units once (a closed escrow counts as released before)."""
        call = self.port.custody_contract.functions.releaseIndex(
            Web3.keccak(text=command.escrow_id), index_to_units(command.quantity)
        )
        await self.port.send_once(call, "EscrowClosed(bytes32)")
