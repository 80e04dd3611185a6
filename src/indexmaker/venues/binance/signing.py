"""Request signing for Binance Spot (rest-api.md / web-socket-api.md "Signed requests").

- REST: the payload is the percent-encoded query string exactly as sent; the signature is
  appended as the last parameter. HMAC-SHA256 gives lower-case hex, Ed25519 gives base64
  (percent-encoded in the query).
- WebSocket API: every parameter but `signature`, sorted by name, joined `k=v&...`, values as
  UTF-8 and not percent-encoded.

Keys live only in `Credentials`, whose repr never shows them (secrets are never logged).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from indexmaker.core.errors import InvalidInputError

Params = Mapping[str, object]


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):  # a float would sign one text and send another
        raise InvalidInputError("params", "floats are not sent to the venue; pass Decimal or str")
    return str(value)


@dataclass(frozen=True, slots=True)
class Credentials:
    """One API key with its secret: HMAC (`hmac_secret`) or Ed25519 (`ed25519_key`).

    Ed25519 is required for WebSocket API `session.logon` (and so `userDataStream.subscribe`).
    """

    api_key: str
    hmac_secret: str | None = field(default=None, repr=False)
    ed25519_key: Ed25519PrivateKey | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.api_key:
            raise InvalidInputError("binance.api_key", "empty")
        if self.hmac_secret is None and self.ed25519_key is None:
            raise InvalidInputError("binance.api_key", "needs an HMAC secret or an Ed25519 key")

    def __repr__(self) -> str:
        kind = "ed25519" if self.ed25519_key is not None else "hmac"
        return f"Credentials(api_key={self.api_key[:4]}…, kind={kind})"

    @property
    def is_ed25519(self) -> bool:
        return self.ed25519_key is not None

    @classmethod
    def from_env(cls, prefix: str = "BINANCE_") -> Credentials | None:
        """`<prefix>API_KEY` with `<prefix>SECRET_KEY` (HMAC) and/or `<prefix>PRIVATE_KEY_FILE`
        (an unencrypted PKCS#8 PEM Ed25519 key). None when no key is set."""
        api_key = os.environ.get(prefix + "API_KEY")
        if not api_key:
            return None
        key_file = os.environ.get(prefix + "PRIVATE_KEY_FILE")
        return cls(
            api_key=api_key,
            hmac_secret=os.environ.get(prefix + "SECRET_KEY") or None,
            ed25519_key=load_ed25519_pem(Path(key_file).read_bytes()) if key_file else None,
        )

    # ------------------------------------------------------------------ signing

    def sign(self, payload: str) -> str:
        """Signature of `payload`: Ed25519 (base64) when an Ed25519 key is set, else HMAC hex."""
        if self.ed25519_key is not None:
            return base64.b64encode(self.ed25519_key.sign(payload.encode())).decode()
        assert self.hmac_secret is not None
        return hmac.new(self.hmac_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def load_ed25519_pem(pem: bytes) -> Ed25519PrivateKey:
    key = load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInputError("binance.private_key_file", "not an Ed25519 private key")
    return key


def rest_query(params: Params) -> str:
    """Percent-encoded query string, in the given order (the bytes signed are the bytes sent)."""
    return urlencode([(name, _text(value)) for name, value in params.items()])


def signed_rest_query(credentials: Credentials, params: Params) -> str:
    """`params` (which must hold `timestamp`) with `&signature=` appended."""
    query = rest_query(params)
    return f"{query}&signature={quote(credentials.sign(query), safe='')}"


def ws_payload(params: Params) -> str:
    """WebSocket API signature payload: sorted `k=v` pairs, raw UTF-8 values."""
    return "&".join(
        f"{name}={_text(params[name])}" for name in sorted(params) if name != "signature"
    )


def signed_ws_params(credentials: Credentials, params: Params) -> dict[str, object]:
    """`params` plus `apiKey` and `signature`, ready for a WebSocket API request."""
    full: dict[str, object] = {name: _text(value) for name, value in params.items()}
    full["apiKey"] = credentials.api_key
    full["signature"] = credentials.sign(ws_payload(full))
    return full
