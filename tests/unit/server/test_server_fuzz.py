"""Property tests: parse_request never raises, whatever arrives on the socket."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexmaker.core.events import NewIndexOrderRequest
from indexmaker.server.messages import ParsedRequest, WireError, WireLimits, parse_request
from indexmaker.server.signing import check_request_signature

from .wire_helpers import BODIES, dumps, frame

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIMITS = WireLimits(max_frame_bytes=4096)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
FIELDS = [
    "standard_header",
    "chain_id",
    "address",
    "standard_trailer",
    "msg_type",
    "seq_num",
    "timestamp",
    *{k for body in BODIES.values() for k in body},
]


def check(data: bytes | str) -> ParsedRequest | WireError:
    result = parse_request(data, LIMITS)
    assert isinstance(result, ParsedRequest | WireError)
    if isinstance(result, WireError):
        assert result.reason
        assert result.ref_seq_num is None or 0 <= result.ref_seq_num < 2**32
    else:
        # A parsed request must survive the next pipeline step too.
        check_request_signature(result)
    return result


@SETTINGS
@given(st.binary(max_size=600))
def test_arbitrary_bytes(data: bytes) -> None:
    check(data)


@SETTINGS
@given(json_values)
def test_arbitrary_json(value: Any) -> None:
    check(json.dumps(value))


@SETTINGS
@given(st.sampled_from(sorted(BODIES)), st.data())
def test_valid_frames_truncated_anywhere(msg_type: str, data: st.DataObject) -> None:
    raw = dumps(frame(msg_type))
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
    result = check(raw[:cut])
    if cut < len(raw):
        assert isinstance(result, WireError)


@SETTINGS
@given(
    st.sampled_from([*sorted(BODIES), "ACK", "", "x" * 100]),
    st.lists(st.tuples(st.sampled_from(FIELDS), json_values), max_size=4),
    st.sampled_from([None, "standard_header"]),
)
def test_wrong_types_in_known_places(
    msg_type: str, replacements: list[tuple[str, Any]], nest: str | None
) -> None:
    obj = frame(msg_type)
    for name, value in replacements:
        header = obj.get("standard_header")
        nested = nest and isinstance(header, dict) and name in header
        target: dict[str, Any] = header if nested else obj  # type: ignore[assignment]
        target[name] = value
    check(dumps(obj))


@SETTINGS
@given(st.integers(min_value=1, max_value=200_000))
def test_oversized_frames(size: int) -> None:
    padded = frame("NewIndexOrder", padding="x" * size)
    result = check(dumps(padded))
    if len(dumps(padded)) > LIMITS.max_frame_bytes:
        assert isinstance(result, WireError) and result.reason.startswith("frame too large")


@SETTINGS
@given(st.text(max_size=50))
def test_amount_text(amount: str) -> None:
    result = check(dumps(frame("NewIndexOrder", amount=amount)))
    if isinstance(result, ParsedRequest):
        assert isinstance(result.request, NewIndexOrderRequest)
        value = result.request.amount
        assert value > 0 and value == value.quantize(Decimal("0.000001"))
