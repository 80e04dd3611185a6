"""Checks and formats of single wire values: addresses, ids, symbols, decimal amounts.

Each check raises ValueError with a reason fit to send back to the client in a NAK
("<field>: <what is wrong>"), and returns the normalised value.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Final

from indexmaker.core.invoice_terms import wire_decimal
from indexmaker.core.money import USDC_DECIMALS

# msg_type strings, exactly as the reference spells them.
NEW_INDEX_ORDER: Final = "NewIndexOrder"
CANCEL_INDEX_ORDER: Final = "CancelIndexOrder"
NEW_QUOTE_REQUEST: Final = "NewQuoteRequest"
CANCEL_QUOTE_REQUEST: Final = "CancelQuoteRequest"
RESEND_REQUEST: Final = "ResendRequest"  # ours: resume after reconnect (session.py)
CHALLENGE_REQUEST: Final = "ChallengeRequest"  # ours: ask for a server nonce (session.py)
CHALLENGE: Final = "Challenge"  # ours: the server nonce, answer to a ChallengeRequest
ACK: Final = "ACK"
NAK: Final = "NAK"
INDEX_ORDER_FILL: Final = "IndexOrderFill"
MINT_INVOICE: Final = "MintInvoice"
NEW_INDEX_QUOTE: Final = "NewIndexQuote"
INDEX_QUOTE_RESPONSE: Final = "IndexQuoteResponse"
CANCEL_INDEX_QUOTE: Final = "CancelIndexQuote"

REQUEST_TYPES: Final = frozenset(
    {
        NEW_INDEX_ORDER,
        CANCEL_INDEX_ORDER,
        NEW_QUOTE_REQUEST,
        CANCEL_QUOTE_REQUEST,
        RESEND_REQUEST,
        CHALLENGE_REQUEST,
    }
)
# How a NAK for a spent signature starts (SPEC §5 Replay): the SDK reads it on a resend as
# "the first copy was accepted" (client.py), so the words are one constant for both sides.
REPLAYED_SIGNATURE: Final = "Replayed signature"
# Quotes carry no signature in the reference protocol; everything else must be signed (a
# ChallengeRequest asks for the nonce a signature is then made over, so it cannot be).
UNSIGNED_REQUEST_TYPES: Final = frozenset(
    {NEW_QUOTE_REQUEST, CANCEL_QUOTE_REQUEST, CHALLENGE_REQUEST}
)
ZERO_ADDRESS: Final = "0x" + "0" * 40

_ADDRESS_RE: Final = re.compile(r"0x[0-9a-fA-F]{40}")
# Ids are embedded verbatim in the signed text {"msg_type":"…","id":"<id>"}: a quote or a
# backslash would make that text ambiguous, so printable ASCII without them, no spaces.
_ID_RE: Final = re.compile(r"[!#-\[\]-~]{1,64}")
_NONCE_RE: Final = re.compile(r"[A-Za-z0-9_-]{8,64}")
_SYMBOL_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
# Plain decimals only: no sign, exponent, NaN/Infinity, blanks, or bare "." edges.
_DECIMAL_RE: Final = re.compile(r"([0-9]+)(?:\.([0-9]+))?")

MAX_AMOUNT_CHARS: Final = 40
MAX_INTEGER_DIGITS: Final = 15  # 10^15 USDC: far beyond any supply, well inside the context


def check_address(value: str) -> str:
    """A 0x EVM address; returned lower-case (the client key form).

    Mixed case is accepted without an EIP-55 check: for signed messages the address must
    anyway equal the one derived from the public key, which is the stronger test.
    """
    if not _ADDRESS_RE.fullmatch(value):
        raise ValueError("address: expected 0x followed by 40 hex digits")
    return value.lower()


def check_id(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected a string, got {_json_type(value)}")
    if not _ID_RE.fullmatch(value):
        raise ValueError(
            f"{field}: 1-64 printable ASCII characters, no spaces, quotes or backslashes"
        )
    return value


def check_nonce(field: str, value: Any) -> str:
    """A client nonce or a server challenge: 8-64 letters, digits, '_' or '-'."""
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected a string, got {_json_type(value)}")
    if not _NONCE_RE.fullmatch(value):
        raise ValueError(f"{field}: 8-64 letters, digits, '_' or '-'")
    return value


def check_symbol(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"symbol: expected a string, got {_json_type(value)}")
    if not _SYMBOL_RE.fullmatch(value):
        raise ValueError("symbol: 1-32 letters, digits, '.', '_' or '-'")
    return value


def check_amount(field: str, value: Any, decimals: int = USDC_DECIMALS) -> Decimal:
    """A positive USDC amount as a decimal string with at most `decimals` decimals.

    Trailing zeros past the limit are tolerated ("1.50000000" is exactly 1.5): the limit is
    on the value's precision, not on how a client's formatter pads it.
    """
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected a decimal string, got {_json_type(value)}")
    if len(value) > MAX_AMOUNT_CHARS:
        raise ValueError(f"{field}: longer than {MAX_AMOUNT_CHARS} characters")
    match = _DECIMAL_RE.fullmatch(value)
    if match is None:
        raise ValueError(
            f"{field}: {value!r} is not a plain decimal "
            "(digits with an optional '.' fraction; no sign, exponent, NaN or Infinity)"
        )
    integer, fraction = match.group(1), (match.group(2) or "").rstrip("0")
    if len(fraction) > decimals:
        raise ValueError(f"{field}: more than {decimals} decimals")
    if len(integer.lstrip("0")) > MAX_INTEGER_DIGITS:
        raise ValueError(f"{field}: too large")
    amount = Decimal(value)
    if amount <= 0:
        raise ValueError(f"{field}: must be greater than 0")
    return amount


fmt_decimal = wire_decimal  # one spelling for every body (the invoice hash depends on it)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
