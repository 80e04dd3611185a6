"""EIP-191 signatures of FIX messages (SPEC §5), on libsecp256k1 through coincurve.

Signed text: {"msg_type":"<msg_type>","id":"<id>"} (no spaces, that key order). Digest:
keccak256("\\x19Ethereum Signed Message:\\n" + len(text) + text). Signature: r‖s, 64 bytes hex
(a 65-byte r‖s‖v is accepted by ignoring v), low-s only. `public_key[0]`: the 65-byte
uncompressed key 0x04…, whose address (last 20 bytes of keccak256 of the 64 key bytes) must
equal the message's `address`.

Extended signed text (ours, beyond the reference; SPEC §5 "Replay"): a request that carries a
top-level `nonce` (the client's, 8-64 characters) is signed over the canonical JSON of the whole
frame without its `standard_trailer`: keys sorted at every level, no whitespace, UTF-8 (what
`msgspec.json.encode(frame, order="sorted")` writes). Every field is covered, the header too, so
nothing in it can be changed after signing. A session opened with `?signing=full` gets every
server frame signed the same way (`full_text`), so a frame altered in transit fails to verify.

We verify against the given key instead of recovering it: v may be absent, and verification
skips recovery's extra point work. Parsed keys and their addresses are cached because a client
signs many messages with one key, and parsing a point costs about as much as a verify.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import msgspec
from coincurve import PrivateKey, PublicKey
from coincurve.ecdsa import cdata_to_der, deserialize_compact
from Crypto.Hash import keccak as _keccak

from indexmaker.server.messages import ParsedRequest

SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N: Final = SECP256K1_N // 2
NOT_AUTHORISED: Final = "Not authorised"  # the reference's NAK reason, verbatim
_SEQ_SIGNED: Final = frozenset({"ACK", "NAK"})  # messages whose signed id is a seq number
_SEQ_TRAILER_CACHE: Final = 8192  # ACK/NAK trailers kept (a few MB at most)


class SignatureError(ValueError):
    """Why a signature was refused (for logs; the client only sees NOT_AUTHORISED)."""


def keccak256(data: bytes) -> bytes:
    # pycryptodome's keccak (pulled in by eth-account) measured ~30% faster than eth_hash's
    # dispatcher for these short inputs.
    return _keccak.new(digest_bits=256, data=data).digest()


def signing_text(msg_type: str, signed_id: str) -> str:
    return '{"msg_type":"' + msg_type + '","id":"' + signed_id + '"}'


_CANONICAL: Final = msgspec.json.Encoder(order="sorted")
_GENERIC: Final = msgspec.json.Decoder()


def full_text(frame: dict[str, Any]) -> str:
    """The extended signed text of a frame: canonical JSON of everything but the trailer."""
    return _CANONICAL.encode({k: v for k, v in frame.items() if k != "standard_trailer"}).decode()


def full_text_of_raw(raw: bytes | str) -> str:
    """`full_text` of a received frame's bytes (decoded generically, then made canonical)."""
    obj = _GENERIC.decode(raw)
    if not isinstance(obj, dict):
        raise SignatureError("frame is not a JSON object")
    return full_text(obj)


def eip191_digest(text: str) -> bytes:
    data = text.encode()
    return keccak256(b"\x19Ethereum Signed Message:\n" + str(len(data)).encode() + data)


def address_of(uncompressed_key: bytes) -> str:
    """Lower-case 0x address of a 65-byte uncompressed public key."""
    return "0x" + keccak256(uncompressed_key[1:])[-20:].hex()


def _unhex(value: str, what: str) -> bytes:
    text = value[2:] if value[:2] in ("0x", "0X") else value
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise SignatureError(f"{what} is not hex") from None


@lru_cache(maxsize=4096)
def _parse_key(key_hex: str) -> tuple[PublicKey, str]:
    raw = _unhex(key_hex, "public key")
    if len(raw) != 65 or raw[0] != 0x04:
        raise SignatureError("public key must be 65-byte uncompressed (0x04…)")
    try:
        key = PublicKey(raw)
    except ValueError:
        raise SignatureError("public key is not a curve point") from None
    return key, address_of(raw)


@dataclass(frozen=True, slots=True)
class Verified:
    """A signature that verified: its r (for the nonce-reuse check) and the digest it signs."""

    r: int
    digest: bytes
    extended: bool = False


def _compact_signature(sig_hex: str) -> bytes:
    raw = _unhex(sig_hex, "signature")
    if len(raw) == 65:
        raw = raw[:64]  # r‖s‖v: v only helps recovery, which we do not need
    if len(raw) != 64:
        raise SignatureError(f"signature must be 64 or 65 bytes, got {len(raw)}")
    r = int.from_bytes(raw[:32], "big")
    s = int.from_bytes(raw[32:], "big")
    if not (0 < r < SECP256K1_N and 0 < s < SECP256K1_N):
        raise SignatureError("signature r or s out of range")
    if s > _HALF_N:
        # Malleability: (r, n-s) verifies too; only the canonical low-s form is accepted.
        raise SignatureError("signature is not low-s")
    return raw


def verify_text(
    text: str,
    signature_hex: str,
    public_key_hex: str,
    address: str,
    *,
    accept_legacy_sha256: bool = False,
) -> Verified:
    """Raise SignatureError unless `text` is signed by that key and the key owns `address`.

    `accept_legacy_sha256` also accepts a signature over plain sha256(text): the reference's
    earlier servers (and the test vector its current code still carries) used that digest.
    Off by default; SPEC §5 says EIP-191.
    """
    key, key_address = _parse_key(public_key_hex)
    if key_address != address.lower():
        raise SignatureError("public key does not match address")
    compact = _compact_signature(signature_hex)
    der = cdata_to_der(deserialize_compact(compact))
    r = int.from_bytes(compact[:32], "big")
    digest = eip191_digest(text)
    if key.verify(der, digest, hasher=None):
        return Verified(r, digest)
    legacy = hashlib.sha256(text.encode()).digest()
    if accept_legacy_sha256 and key.verify(der, legacy, None):
        return Verified(r, legacy)
    raise SignatureError("signature does not verify")


def verify_request(
    request: ParsedRequest,
    *,
    require_extended: bool = False,
    accept_legacy_sha256: bool = False,
) -> Verified | SignatureError:
    """The verified signature of a signed request, or why it is refused.

    A request with a `nonce` is checked against the extended text (every field); one without
    against the reference text {"msg_type","id"}, unless `require_extended` (a server setting).
    """
    if not request.public_keys or not request.signatures:
        return SignatureError("missing public_key or signature")
    try:
        if request.nonce is not None:
            text = full_text_of_raw(request.frame)
        elif require_extended:
            return SignatureError("this server requires the extended signed text (with a nonce)")
        else:
            text = signing_text(request.msg_type, request.signed_id)
        verified = verify_text(
            text,
            request.signatures[0],
            request.public_keys[0],
            request.client[1],
            accept_legacy_sha256=accept_legacy_sha256,
        )
    except SignatureError as exc:
        return exc
    except (msgspec.DecodeError, ValueError) as exc:  # frame already parsed once: unlikely
        return SignatureError(f"frame unreadable for the extended text: {exc}")
    if request.nonce is not None:
        return Verified(verified.r, verified.digest, extended=True)
    return verified


def check_request_signature(
    request: ParsedRequest, *, accept_legacy_sha256: bool = False
) -> SignatureError | None:
    """None when the request is authorised; quotes need no signature (reference protocol)."""
    if not request.needs_signature:
        return None
    verdict = verify_request(request, accept_legacy_sha256=accept_legacy_sha256)
    return verdict if isinstance(verdict, SignatureError) else None


class Signer:
    """The server's key: signs outgoing messages so clients can verify them."""

    def __init__(self, private_key: bytes | str) -> None:
        raw = _unhex(private_key, "private key") if isinstance(private_key, str) else private_key
        if len(raw) != 32:
            raise ValueError("private key must be 32 bytes")
        self._key = PrivateKey(raw)
        uncompressed = self._key.public_key.format(compressed=False)
        self.public_key_hex: Final = "0x" + uncompressed.hex()
        self.address: Final = address_of(uncompressed)
        # Least recently used first: a long session's current seq numbers stay cached, and
        # NAKs (whose ref is the session's last accepted seq) keep hitting it (cheap refusals).
        self._seq_trailers: OrderedDict[tuple[str, str], dict[str, list[str]]] = OrderedDict()

    def sign_full(self, frame: dict[str, Any]) -> dict[str, list[str]]:
        """Trailer signing the frame's whole content (extended mode): never cached."""
        return {
            "public_key": [self.public_key_hex],
            "signature": [self.sign_text(full_text(frame))],
        }

    def sign_text(self, text: str) -> str:
        """0x r‖s hex (64 bytes); libsecp256k1 always produces low-s."""
        recoverable = self._key.sign_recoverable(eip191_digest(text), hasher=None)
        return "0x" + recoverable[:64].hex()

    def trailer_for(self, msg_type: str, signed_id: str) -> dict[str, list[str]]:
        # ACK/NAK sign only {msg_type, ref_seq_num}: the same few small seq numbers recur on
        # every session, and RFC 6979 signatures are deterministic, so caching them returns
        # the very same bytes without a signing operation on the ACK path (see benchmarks).
        key = (msg_type, signed_id)
        cache = self._seq_trailers
        cached = cache.get(key)
        if cached is not None:
            cache.move_to_end(key)
            return cached
        signature = self.sign_text(signing_text(msg_type, signed_id))
        trailer = {"public_key": [self.public_key_hex], "signature": [signature]}
        if msg_type in _SEQ_SIGNED:
            cache[key] = trailer
            if len(cache) > _SEQ_TRAILER_CACHE:
                cache.popitem(last=False)
        return trailer
