"""Signing against the docs' published vectors (rest-api.md, web-socket-api.md)."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from indexmaker.core.errors import InvalidInputError
from indexmaker.venues.binance.signing import (
    Credentials,
    signed_rest_query,
    signed_ws_params,
    ws_payload,
)

DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def test_rest_hmac_matches_published_vector() -> None:
    creds = Credentials(DOC_KEY, hmac_secret=DOC_SECRET)
    params = {
        "symbol": "LTCBTC",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": 1,
        "price": Decimal("0.1"),
        "recvWindow": 5000,
        "timestamp": 1499827319559,
    }
    query = signed_rest_query(creds, params)
    assert query.endswith(
        "&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )


def test_ws_api_hmac_matches_published_vector() -> None:
    creds = Credentials(DOC_KEY, hmac_secret=DOC_SECRET)
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01000000",
        "price": "52000.00",
        "recvWindow": 100,
        "timestamp": 1645423376532,
    }
    signed = signed_ws_params(creds, params)
    assert signed["signature"] == (
        "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
    )


def test_ed25519_signature_verifies_with_public_key_and_is_base64() -> None:
    key = Ed25519PrivateKey.generate()
    creds = Credentials("k", ed25519_key=key)
    signed = signed_ws_params(creds, {"timestamp": 1, "b": "x y@z"})
    payload = ws_payload(signed)
    assert payload == "apiKey=k&b=x y@z&timestamp=1"  # not percent-encoded
    key.public_key().verify(base64.b64decode(str(signed["signature"])), payload.encode())
    query = signed_rest_query(creds, {"b": "x y@z", "timestamp": 1})
    assert query.startswith("b=x+y%40z&timestamp=1&signature=")
    assert "+" not in query.split("signature=")[1].replace("%2B", "")  # base64 '+' is escaped


def test_floats_are_refused_and_secrets_not_in_repr() -> None:
    creds = Credentials(DOC_KEY, hmac_secret=DOC_SECRET)
    with pytest.raises(InvalidInputError):
        signed_rest_query(creds, {"price": 0.1})
    assert DOC_SECRET not in repr(creds)
    assert DOC_KEY not in repr(creds)
