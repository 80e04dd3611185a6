"""Across spoke-pool helpers (npm `@across-protocol/contracts` 5.0.27 ABI): bytes32 addresses,
the relay data a relayer fills from a `FundsDeposited` log, one-leaf relayer refund roots, and
the address a pool takes admin calls from.

Source of the rules: Across's SpokePool.sol / MerkleLib.sol in that package. Addresses are
bytes32 (left-padded 20-byte EVM addresses); `fillRelay` needs the deposit's fields exactly as
emitted, with the origin chain id added; a refund leaf is proven by keccak256(abi.encode(leaf)),
which is the whole root when the bundle has one leaf (an empty proof). Across v3 pays both a
relayer's repayment and an expired deposit's refund to its depositor through such leaves on the
chain that holds the deposit's input (the dataworker's bundle).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eth_abi.abi import encode
from eth_typing import ChecksumAddress
from web3 import Web3

REFUND_LEAF_TYPE = "(uint256,uint256,uint256[],uint32,address,address[])"


def _canonical(param: Mapping[str, Any]) -> str:
    """An ABI input's canonical type; a struct as its parenthesised components."""
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_canonical(c) for c in param["components"])
        return f"({inner}){kind[5:]}"
    return kind


def event_topic(abi: Sequence[Mapping[str, Any]], name: str) -> bytes:
    """keccak256 of event `name`'s canonical signature (topic 0 of its logs)."""
    event = next(e for e in abi if e.get("type") == "event" and e.get("name") == name)
    signature = f"{name}({','.join(_canonical(i) for i in event['inputs'])})"
    return bytes(Web3.keccak(text=signature))


def to_bytes32(address: str) -> bytes:
    """A 20-byte hex address as Across's bytes32 (12 zero bytes, then the address)."""
    raw = bytes.fromhex(address.removeprefix("0x"))
    if len(raw) != 20:
        raise ValueError(f"address: expected 20 bytes, got {len(raw)}")
    return b"\x00" * 12 + raw


def from_bytes32(value: bytes) -> str:
    """Across's bytes32 back to a checksummed address; ValueError if the high 12 bytes are set."""
    if len(value) != 32 or any(value[:12]):
        raise ValueError("bytes32 does not hold an EVM address")
    return Web3.to_checksum_address(value[12:])


def relay_data(deposit_args: Mapping[str, Any], origin_chain_id: int) -> dict[str, Any]:
    """The `fillRelay` relayData for a decoded `FundsDeposited` event's args.

    exclusivityDeadline is the one the origin pool emitted (already an absolute time).
    """
    a = deposit_args
    return {
        "depositor": a["depositor"],
        "recipient": a["recipient"],
        "exclusiveRelayer": a["exclusiveRelayer"],
        "inputToken": a["inputToken"],
        "outputToken": a["outputToken"],
        "inputAmount": a["inputAmount"],
        "outputAmount": a["outputAmount"],
        "originChainId": origin_chain_id,
        "depositId": a["depositId"],
        "fillDeadline": a["fillDeadline"],
        "exclusivityDeadline": a["exclusivityDeadline"],
        "message": a["message"],
    }


def refund_leaf(
    chain_id: int, token: str, refunds: Sequence[tuple[str, int]], leaf_id: int = 0
) -> dict[str, Any]:
    """A RelayerRefundLeaf paying `refunds` ((relayer, amount in token units)) on `chain_id`."""
    return {
        "amountToReturn": 0,
        "chainId": chain_id,
        "refundAmounts": [amount for _, amount in refunds],
        "leafId": leaf_id,
        "l2TokenAddress": token,
        "refundAddresses": [addr for addr, _ in refunds],
    }


def one_leaf_root(leaf: Mapping[str, Any]) -> bytes:
    """The relayer refund root of a bundle holding only `leaf` (MerkleLib.verifyRelayerRefund)."""
    values = (
        leaf["amountToReturn"],
        leaf["chainId"],
        list(leaf["refundAmounts"]),
        leaf["leafId"],
        leaf["l2TokenAddress"],
        list(leaf["refundAddresses"]),
    )
    return bytes(Web3.keccak(encode([REFUND_LEAF_TYPE], [values])))


def leaf_id(deposit_id: int) -> int:
    """The leaf id of a one-leaf bundle paying for deposit `deposit_id`: its low 32 bits.

    The leaf id is part of the leaf's hash, so two refunds of the same amount to the same
    address for different deposits get different roots (a root is looked up to know whether
    it was posted already); the claimed bitmap is per bundle, so any id serves it."""
    return deposit_id % (1 << 32)


def expired_refund_leaf(deposit_args: Mapping[str, Any], origin_chain_id: int) -> dict[str, Any]:
    """The leaf refunding an expired deposit (decoded `FundsDeposited` args) to its depositor:
    its whole inputAmount of inputToken on the origin chain (Across v3: an unfilled deposit
    past its fillDeadline is refunded on the origin chain in the bundle's refund leaf)."""
    a = deposit_args
    refund = (from_bytes32(a["depositor"]), int(a["inputAmount"]))
    token = from_bytes32(a["inputToken"])
    return refund_leaf(origin_chain_id, token, [refund], leaf_id(int(a["depositId"])))


def repayment_leaf(deposit_args: Mapping[str, Any], relayer: str, chain_id: int) -> dict[str, Any]:
    """The leaf repaying `relayer` on `chain_id` (the fill's repayment chain, here the origin)
    for filling the deposit: its inputAmount of inputToken (no LP fee on the local chains)."""
    a = deposit_args
    token = from_bytes32(a["inputToken"])
    return refund_leaf(
        chain_id, token, [(relayer, int(a["inputAmount"]))], leaf_id(int(a["depositId"]))
    )


# Lib_PredeployAddresses.L2_CROSS_DOMAIN_MESSENGER: OP's pool takes admin calls from it.
OP_MESSENGER = "0x4200000000000000000000000000000000000007"
ARBITRUM_CHAIN_ID = 42161


def admin_relay_address(chain_id: int, admin: str) -> ChecksumAddress:
    """Where a pool's admin calls must come from: Arbitrum's alias of the admin (42161),
    else OP's messenger predeploy (Arbitrum_SpokePool / Ovm_SpokePool `_requireAdminSender`)."""
    if chain_id == ARBITRUM_CHAIN_ID:
        return arbitrum_alias(admin)
    return Web3.to_checksum_address(OP_MESSENGER)


ARBITRUM_ALIAS_OFFSET = 0x1111000000000000000000000000000000001111


def arbitrum_alias(l1_address: str) -> ChecksumAddress:
    """The L2 sender of an L1 contract's message on Arbitrum (CrossDomainAddressUtils): the
    address plus 0x1111…1111 modulo 2**160. Arbitrum_SpokePool's admin calls must come from it.
    """
    value = (int(l1_address, 16) + ARBITRUM_ALIAS_OFFSET) % (1 << 160)
    return Web3.to_checksum_address(value.to_bytes(20, "big"))
