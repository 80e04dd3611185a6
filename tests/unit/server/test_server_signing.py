"""EIP-191 verification against an independent signer (eth-account), and the refusals."""

from __future__ import annotations

import pytest
from coincurve import PrivateKey

from indexmaker.server.messages import ParsedRequest, parse_request
from indexmaker.server.signing import (
    SECP256K1_N,
    SignatureError,
    Signer,
    address_of,
    check_request_signature,
    eip191_digest,
    signing_text,
    verify_text,
)

from .wire_helpers import TEST_ADDRESS, TEST_KEY, TEST_PUBLIC_KEY, dumps, eth_sign, frame

TEXT = signing_text("NewIndexOrder", "O-1")
OTHER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # hardhat #1


def parsed(obj: dict[str, object]) -> ParsedRequest:
    result = parse_request(dumps(obj))
    assert isinstance(result, ParsedRequest), result
    return result


def test_signing_text_is_exact() -> None:
    assert TEXT == '{"msg_type":"NewIndexOrder","id":"O-1"}'


def test_eth_account_signatures_are_accepted_65_and_64_bytes() -> None:
    sig65 = eth_sign(TEXT)
    verify_text(TEXT, sig65, TEST_PUBLIC_KEY, TEST_ADDRESS)
    verify_text(TEXT, sig65[:130], TEST_PUBLIC_KEY, TEST_ADDRESS.lower())  # r‖s only
    verify_text(TEXT, sig65[2:], TEST_PUBLIC_KEY[2:], TEST_ADDRESS)  # no 0x prefixes


def test_address_derivation_matches_eth_account() -> None:
    assert address_of(bytes.fromhex(TEST_PUBLIC_KEY[2:])) == TEST_ADDRESS.lower()


def test_tampered_text_or_signature_refused() -> None:
    sig = eth_sign(TEXT)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_text(signing_text("NewIndexOrder", "O-2"), sig, TEST_PUBLIC_KEY, TEST_ADDRESS)
    flipped = sig[:10] + ("0" if sig[10] != "0" else "1") + sig[11:]
    with pytest.raises(SignatureError):
        verify_text(TEXT, flipped, TEST_PUBLIC_KEY, TEST_ADDRESS)


def test_high_s_refused() -> None:
    raw = bytes.fromhex(eth_sign(TEXT)[2:])
    s = int.from_bytes(raw[32:64], "big")
    high = raw[:32] + (SECP256K1_N - s).to_bytes(32, "big")
    # The high-s twin is mathematically valid: refusing it is policy (malleability).
    with pytest.raises(SignatureError, match="low-s"):
        verify_text(TEXT, high.hex(), TEST_PUBLIC_KEY, TEST_ADDRESS)


def test_wrong_address_or_key_refused() -> None:
    sig = eth_sign(TEXT)
    with pytest.raises(SignatureError, match="does not match address"):
        verify_text(TEXT, sig, TEST_PUBLIC_KEY, "0x" + "11" * 20)
    other = Signer(OTHER_KEY)
    with pytest.raises(SignatureError, match="does not match address"):
        verify_text(TEXT, sig, other.public_key_hex, TEST_ADDRESS)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_text(TEXT, sig, other.public_key_hex, other.address)


@pytest.mark.parametrize(
    ("sig", "key", "match"),
    [
        ("0x1234", TEST_PUBLIC_KEY, "64 or 65 bytes"),
        ("zz" * 64, TEST_PUBLIC_KEY, "not hex"),
        ("00" * 64, TEST_PUBLIC_KEY, "out of range"),
        (None, "0x02" + TEST_PUBLIC_KEY[4:68], "uncompressed"),
        (None, "0x04" + "00" * 64, "not a curve point"),
    ],
)
def test_malformed_inputs(sig: str | None, key: str, match: str) -> None:
    with pytest.raises(SignatureError, match=match):
        verify_text(TEXT, sig or eth_sign(TEXT), key, TEST_ADDRESS)


def test_reference_vector_is_sha256_not_eip191() -> None:
    # The reference repository's own test vector (hardhat #0 key) verifies only as
    # sha256(text): refused by default, accepted in the legacy compatibility mode.
    text = signing_text("NewIndexOrder", "Q-1755874673593")
    sig = (
        "0xbf169e19c6cc1762ddeb0c8fbcd46d9e7b3131b8e277bc1e55aa841c6d81ab10"
        "540c2b77b7818c300a9aca691e5e1918d958d7b3fcf80bd7724a9cbb4705cb11"
    )
    with pytest.raises(SignatureError):
        verify_text(text, sig, TEST_PUBLIC_KEY, TEST_ADDRESS)
    verify_text(text, sig, TEST_PUBLIC_KEY, TEST_ADDRESS, accept_legacy_sha256=True)


def test_check_request_signature() -> None:
    assert check_request_signature(parsed(frame("NewIndexOrder"))) is None
    assert check_request_signature(parsed(frame("CancelIndexOrder"))) is None
    assert check_request_signature(parsed(frame("ResendRequest", last_server_seq=3))) is None
    assert check_request_signature(parsed(frame("NewQuoteRequest", sign=False))) is None
    unsigned = check_request_signature(parsed(frame("NewIndexOrder", sign=False)))
    assert isinstance(unsigned, SignatureError) and "missing" in str(unsigned)
    # A valid signature over another id (replaying a trailer onto another order) fails.
    good = frame("NewIndexOrder")
    good["client_order_id"] = "O-2"
    assert isinstance(check_request_signature(parsed(good)), SignatureError)


def test_signer_round_trip_and_low_s() -> None:
    signer = Signer(bytes.fromhex(TEST_KEY[2:]))
    assert signer.address == TEST_ADDRESS.lower()
    assert signer.public_key_hex == TEST_PUBLIC_KEY
    for i in range(20):
        text = signing_text("ACK", str(i))
        sig = signer.sign_text(text)
        assert len(sig) == 2 + 128
        assert int(sig[66:], 16) <= SECP256K1_N // 2
        verify_text(text, sig, signer.public_key_hex, signer.address)
        # Same digest as eth-account's encode_defunct path: the signatures are deterministic.
        assert sig == eth_sign(text)[:130]
    with pytest.raises(ValueError):
        Signer(b"\x01" * 31)


def test_digest_is_eip191() -> None:
    key = PrivateKey(bytes.fromhex(TEST_KEY[2:]))
    sig = key.sign_recoverable(eip191_digest(TEXT), hasher=None)
    assert "0x" + sig[:64].hex() == eth_sign(TEXT)[:130]


def test_ack_nak_signatures_are_cached_least_recently_used_first() -> None:
    # A session past the cache's size keeps its recent seq numbers cached: its ACKs, and the
    # NAKs that name its last accepted seq, cost no signing operation (refusals stay cheap).
    signer = Signer(TEST_KEY)
    first = signer.trailer_for("ACK", "1")
    for seq in range(2, 10_002):
        signer.trailer_for("ACK", str(seq))
        assert signer.trailer_for("NAK", str(seq)) is signer.trailer_for("NAK", str(seq))
    assert signer.trailer_for("ACK", "10001") is signer.trailer_for("ACK", "10001")
    assert signer.trailer_for("ACK", "1") is not first  # the oldest went, and is re-signed
    assert signer.trailer_for("ACK", "1") == first  # deterministic: the very same bytes
