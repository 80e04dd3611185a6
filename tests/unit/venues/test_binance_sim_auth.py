"""The simulator's signature checks against published vectors: Binance's two HMAC examples
(rest-api.md, web-socket-api.md; the same key pair is the simulator's default HMAC key) and
RFC 8032's Ed25519 test vectors."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from indexmaker.venues.binance_sim.auth import (
    ApiKey,
    KeyStore,
    check_time,
    rest_payload,
    verify,
    ws_payload,
)
from indexmaker.venues.binance_sim.config import (
    TEST_ED25519_API_KEY,
    TEST_ED25519_PRIVATE_PEM,
    TEST_ED25519_SEED,
    TEST_HMAC_API_KEY,
)
from indexmaker.venues.binance_sim.errors import ApiError

REST_EXAMPLE = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
REST_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
WS_SIGNATURE = "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"
RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]


def test_rest_hmac_vector_verifies_with_the_default_key() -> None:
    key = KeyStore().get(TEST_HMAC_API_KEY)
    payload, signature = rest_payload(REST_EXAMPLE + f"&signature={REST_SIGNATURE}", "")
    assert payload == REST_EXAMPLE and signature == REST_SIGNATURE
    verify(key, payload, signature)
    verify(key, payload, signature.upper())  # hex is case-insensitive
    with pytest.raises(ApiError) as bad:
        verify(key, payload.replace("price=0.1", "price=0.2"), signature)
    assert bad.value.code == -1022


def test_rest_payload_is_query_then_body() -> None:
    payload, signature = rest_payload("symbol=LTCBTC&side=BUY", "type=LIMIT&signature=abc")
    assert (payload, signature) == ("symbol=LTCBTC&side=BUYtype=LIMIT", "abc")


def test_ws_api_hmac_vector_sorted_payload() -> None:
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01000000",
        "price": "52000.00",
        "recvWindow": 100,
        "timestamp": 1645423376532,
        "apiKey": TEST_HMAC_API_KEY,
        "signature": WS_SIGNATURE,
    }
    payload = ws_payload(params)
    assert payload.startswith(f"apiKey={TEST_HMAC_API_KEY}&price=52000.00&quantity=0.01000000")
    verify(KeyStore().get(TEST_HMAC_API_KEY), payload, WS_SIGNATURE)


@pytest.mark.parametrize(("seed", "message", "signature"), RFC8032)
def test_ed25519_rfc8032_vectors(seed: str, message: str, signature: str) -> None:
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))
    assert private.sign(bytes.fromhex(message)).hex() == signature
    key = ApiKey("k", "a", ed25519=private.public_key())
    # verify() takes text payloads; RFC 8032's messages are ASCII or empty here.
    verify(
        key, bytes.fromhex(message).decode(), base64.b64encode(bytes.fromhex(signature)).decode()
    )
    with pytest.raises(ApiError):
        verify(key, "tampered", base64.b64encode(bytes.fromhex(signature)).decode())


def test_documented_ed25519_test_key_signs_a_logon() -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    private = load_pem_private_key(TEST_ED25519_PRIVATE_PEM.encode(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    assert private.private_bytes_raw().hex() == TEST_ED25519_SEED
    payload = ws_payload({"apiKey": TEST_ED25519_API_KEY, "timestamp": 1649729878532})
    signature = base64.b64encode(private.sign(payload.encode())).decode()
    key = KeyStore().get(TEST_ED25519_API_KEY)
    assert isinstance(key.ed25519, Ed25519PublicKey)
    verify(key, payload, signature)
    with pytest.raises(ApiError):
        verify(key, payload, "not base64!")


def test_timing_rule() -> None:
    now = 1_700_000_000_000
    check_time({"timestamp": str(now - 4999)}, now)
    check_time({"timestamp": str(now + 999)}, now)
    check_time({"timestamp": str(now - 59_000), "recvWindow": "60000"}, now)
    for params in (
        {"timestamp": str(now - 5001)},
        {"timestamp": str(now + 1000)},
        {"timestamp": str(now - 200), "recvWindow": "100.5"},
    ):
        with pytest.raises(ApiError) as late:
            check_time(params, now)
        assert late.value.code == -1021
    with pytest.raises(ApiError) as missing:
        check_time({}, now)
    assert missing.value.code == -1102
    # Not a finite number: -1100 naming the parameter (NaN once got past the parse to a 500).
    for params, name in (
        ({"timestamp": "NaN"}, "timestamp"),
        ({"timestamp": "sNaN"}, "timestamp"),
        ({"timestamp": "-Infinity"}, "timestamp"),
        ({"timestamp": "12x"}, "timestamp"),
        ({"timestamp": str(now), "recvWindow": "abc"}, "recvWindow"),
        ({"timestamp": str(now), "recvWindow": "NaN"}, "recvWindow"),
    ):
        with pytest.raises(ApiError) as bad:
            check_time(params, now)
        assert bad.value.code == -1100 and f"'{name}'" in bad.value.msg


def test_unknown_and_missing_keys_are_refused_with_401() -> None:
    store = KeyStore()
    for api_key, code in ((None, -2014), ("nope", -2015)):
        with pytest.raises(ApiError) as refused:
            store.get(api_key)
        assert (refused.value.code, refused.value.status) == (code, 401)
