"""Frame builders shared by the server tests (a plain module: no fixtures magic)."""

from __future__ import annotations

import json
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.datatypes import PrivateKey

# Hardhat's first default account: public test key, also used by the reference's own tests.
TEST_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
TEST_ACCOUNT = Account.from_key(TEST_KEY)
TEST_ADDRESS = TEST_ACCOUNT.address  # EIP-55 mixed case
TEST_PUBLIC_KEY = "0x04" + PrivateKey(bytes.fromhex(TEST_KEY[2:])).public_key.to_bytes().hex()
TIMESTAMP = "2025-10-01T00:00:00.000Z"

BODIES: dict[str, dict[str, Any]] = {
    "NewIndexOrder": {"client_order_id": "O-1", "symbol": "SY100", "side": "1", "amount": "1000"},
    "CancelIndexOrder": {"client_order_id": "O-1", "symbol": "SY100", "amount": "250.5"},
    "NewQuoteRequest": {"client_quote_id": "Q-1", "symbol": "SY100", "side": "buy", "amount": "10"},
    "CancelQuoteRequest": {"client_quote_id": "Q-1", "symbol": "SY100"},
    "ResendRequest": {"last_server_seq": 0, "challenge": "challenge-1"},
}
ID_FIELD = {
    "NewIndexOrder": "client_order_id",
    "CancelIndexOrder": "client_order_id",
    "NewQuoteRequest": "client_quote_id",
    "CancelQuoteRequest": "client_quote_id",
    "ResendRequest": "challenge",
}


def eth_sign(text: str, key: str = TEST_KEY) -> str:
    """Signature by an independent implementation (eth-account), 65 bytes r‖s‖v."""
    return "0x" + bytes(Account.sign_message(encode_defunct(text=text), key).signature).hex()


def frame(
    msg_type: str,
    *,
    seq: int = 1,
    sign: bool = True,
    timestamp: str = TIMESTAMP,
    **overrides: Any,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "standard_header": {
            "msg_type": msg_type,
            "sender_comp_id": "CLIENT",
            "target_comp_id": "SERVER",
            "seq_num": seq,
            "timestamp": timestamp,
        },
        "chain_id": 1,
        "address": TEST_ADDRESS,
    }
    obj.update(BODIES.get(msg_type, {}))
    obj.update(overrides)
    if sign:
        signed_id = obj.get(ID_FIELD.get(msg_type, ""))
        if signed_id is None:
            signed_id = str(obj.get("last_server_seq"))
        text = '{"msg_type":"' + msg_type + '","id":"' + str(signed_id) + '"}'
        obj["standard_trailer"] = {"public_key": [TEST_PUBLIC_KEY], "signature": [eth_sign(text)]}
    return obj


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
