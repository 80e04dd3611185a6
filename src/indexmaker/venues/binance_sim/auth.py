"""API keys and signed requests (rest-api.md "SIGNED endpoint security", web-socket-api.md).

REST: the signed payload is the query string followed by the body (no separator), exactly as
sent, minus the `signature` parameter. WS-API: every parameter but `signature`, sorted by name,
joined `k=v&...`, no percent-encoding. HMAC-SHA256 signatures are hex (any case); Ed25519 are
base64. Timing: timestamp < server time + 1000 ms and server time - timestamp <= recvWindow
(default 5000, at most 60000, may carry 3 decimals), else -1021.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from indexmaker.venues.binance_sim.config import (
    TEST_ED25519_API_KEY,
    TEST_ED25519_SEED,
    TEST_HMAC_API_KEY,
    TEST_HMAC_API_KEY_2,
    TEST_HMAC_SECRET,
    TEST_HMAC_SECRET_2,
)
from indexmaker.venues.binance_sim.errors import ApiError, missing

BAD_KEY = "Invalid API-key, IP, or permissions for action."


@dataclass(frozen=True, slots=True)
class ApiKey:
    api_key: str
    account: str
    hmac_secret: bytes | None = None
    ed25519: Ed25519PublicKey | None = None

    @property
    def kind(self) -> str:
        return "HMAC_SHA256" if self.hmac_secret is not None else "ED25519"


def default_keys() -> dict[str, ApiKey]:
    """The documented test keys: account `main` (HMAC + Ed25519), account `second` (HMAC)."""
    ed_public = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(TEST_ED25519_SEED)).public_key()
    keys = [
        ApiKey(TEST_HMAC_API_KEY, "main", hmac_secret=TEST_HMAC_SECRET.encode()),
        ApiKey(TEST_ED25519_API_KEY, "main", ed25519=ed_public),
        ApiKey(TEST_HMAC_API_KEY_2, "second", hmac_secret=TEST_HMAC_SECRET_2.encode()),
    ]
    return {key.api_key: key for key in keys}


def verify(key: ApiKey, payload: str, signature: str) -> None:
    """-1022 unless `signature` signs `payload` with `key`."""
    data = payload.encode()
    if key.hmac_secret is not None:
        expected = hmac.new(key.hmac_secret, data, hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, signature.lower()):
            return
    elif key.ed25519 is not None:
        try:
            key.ed25519.verify(base64.b64decode(signature, validate=True), data)
            return
        except (InvalidSignature, binascii.Error, ValueError):
            pass
    raise ApiError(-1022, "Signature for this request is not valid.")


def check_time(params: dict[str, str], now: int) -> None:
    """The timing rule; -1021 outside the window, -1102/-1100 for a missing or bad value."""
    stamp_text = params.get("timestamp")
    if not stamp_text:
        raise missing("timestamp")
    stamp = _number(stamp_text, "timestamp")
    window = _number(params.get("recvWindow") or "5000", "recvWindow")
    if window <= 0 or window > 60000:
        raise ApiError(-1131, "recvWindow must be less than 60000")
    if stamp >= now + 1000:
        raise ApiError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if now - stamp > window:
        raise ApiError(-1021, "Timestamp for this request is outside of the recvWindow.")


def _number(text: str, name: str) -> Decimal:
    """A finite decimal parameter; -1100 naming it otherwise ("NaN", "sNaN" and "Infinity"
    parse as Decimals but compare or order badly: refused here, as Binance does)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise ApiError(-1100, f"Illegal characters found in parameter '{name}'.")
    return value


def rest_payload(raw_query: str, raw_body: str) -> tuple[str, str | None]:
    """(signed payload, signature) from the raw query and body; the signature parameter is
    cut out of whichever carries it."""
    signature: str | None = None
    parts: list[str] = []
    for raw in (raw_query, raw_body):
        kept = []
        for item in raw.split("&") if raw else []:
            if item.startswith("signature="):
                from urllib.parse import unquote

                signature = unquote(item[len("signature=") :])
            else:
                kept.append(item)
        parts.append("&".join(kept))
    return parts[0] + parts[1], signature


def ws_payload(params: dict[str, object]) -> str:
    return "&".join(f"{k}={_text(v)}" for k, v in sorted(params.items()) if k != "signature")


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        import json

        return json.dumps(value, separators=(",", ":"))
    return str(value)


class KeyStore:
    def __init__(self) -> None:
        self.keys = default_keys()

    def get(self, api_key: str | None) -> ApiKey:
        if not api_key:
            raise ApiError(-2014, "API-key format invalid.", status=401)
        key = self.keys.get(api_key)
        if key is None:
            raise ApiError(-2015, BAD_KEY, status=401)
        return key
