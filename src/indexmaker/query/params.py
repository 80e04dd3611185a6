"""Query parameters of the query API: declared once per route (the same declaration checks
a request and describes it in the OpenAPI schema), and keyset cursors.

Every refusal is a `BadRequest` naming the parameter (`limit: must be an integer from 1 to
500, got 'x'`); the API answers it with 400 and changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from indexmaker.server.wire_values import check_address

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
Kind = Literal["int", "str", "address", "time", "enum", "bool"]
T = TypeVar("T")


class BadRequest(ValueError):
    """A parameter the API cannot take; the message names it."""


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: Kind
    description: str
    choices: tuple[str, ...] = ()  # kind "enum"
    minimum: int | None = None  # kind "int"
    maximum: int | None = None
    where: Literal["query", "path"] = "query"

    def schema(self) -> dict[str, Any]:
        """Its JSON Schema (OpenAPI 3.1)."""
        match self.kind:
            case "int":
                out: dict[str, Any] = {"type": "integer"}
                if self.minimum is not None:
                    out["minimum"] = self.minimum
                if self.maximum is not None:
                    out["maximum"] = self.maximum
                return out
            case "address":
                return {"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$"}
            case "time":
                return {"type": "string", "format": "date-time"}
            case "enum":
                return {"type": "string", "enum": list(self.choices)}
            case "bool":
                return {"type": "boolean"}
        return {"type": "string", "maxLength": 128}

    def parse(self, text: str) -> Any:
        """The value of `text`, or BadRequest naming this parameter."""
        try:
            return self._parse(text)
        except ValueError as error:
            raise BadRequest(f"{self.name}: {error}") from None

    def _parse(self, text: str) -> Any:
        match self.kind:
            case "int":
                low = self.minimum if self.minimum is not None else -(2**63)
                high = self.maximum if self.maximum is not None else 2**63 - 1
                if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 20:
                    raise ValueError(f"must be an integer from {low} to {high}, got {text!r}")
                value = int(text)
                if not low <= value <= high:
                    raise ValueError(f"must be an integer from {low} to {high}, got {text!r}")
                return value
            case "address":
                if len(text) != 42:
                    raise ValueError(f"expected 0x and 40 hex digits, got {text[:60]!r}")
                return check_address(text)
            case "time":
                return parse_time(text)
            case "enum":
                if text not in self.choices:
                    raise ValueError(f"expected one of {list(self.choices)}, got {text[:60]!r}")
                return text
            case "bool":
                if text not in ("true", "false"):
                    raise ValueError(f"expected true or false, got {text[:60]!r}")
                return text == "true"
        if not text or len(text) > 128:
            raise ValueError("expected 1 to 128 characters")
        return text


LIMIT = Param("limit", "int", f"page size (default {DEFAULT_LIMIT})", minimum=1, maximum=MAX_LIMIT)
CURSOR = Param("cursor", "str", "the `next_cursor` of the previous page (opaque)")
PAGING = (LIMIT, CURSOR)


def parse_time(text: str) -> datetime:
    """ISO 8601 with a timezone (`2026-11-29T21:00:00Z`); ValueError otherwise."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected an ISO 8601 time, got {text[:60]!r}") from None
    if at.tzinfo is None:
        raise ValueError(f"give a timezone (e.g. {text[:40]}Z), got {text[:60]!r}")
    return at


def parse(declared: Sequence[Param], query: Mapping[str, str]) -> dict[str, Any]:
    """The declared query parameters present in `query`, parsed. A parameter not declared,
    or given twice, is a BadRequest (a typo never silently widens a listing)."""
    names = {p.name for p in declared if p.where == "query"}
    unknown = sorted(set(query) - names)
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown parameter; this endpoint takes {sorted(names)}")
    values: dict[str, Any] = {}
    for param in declared:
        if param.where != "query" or param.name not in query:
            continue
        given = query.getall(param.name) if hasattr(query, "getall") else [query[param.name]]
        if len(given) > 1:
            raise BadRequest(f"{param.name}: given {len(given)} times, expected once")
        values[param.name] = param.parse(given[0])
    _check_range(values)
    values.setdefault("limit", DEFAULT_LIMIT)
    return values


def _check_range(values: Mapping[str, Any]) -> None:
    """A time range's `to` (exclusive) must come after its `from`: an empty or reversed
    range is a mistake in the request, never silently an empty page."""
    since, until = values.get("from"), values.get("to")
    if since is not None and until is not None and until <= since:
        raise BadRequest(
            f"to: {until.isoformat()} is not after from {since.isoformat()} "
            "(the range is from, inclusive, to to, exclusive)"
        )


# ---------------------------------------------------------------- keyset cursors

Key = tuple[Any, ...]
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # SQLite INTEGER and PostgreSQL BIGINT


def encode_cursor(key: Iterable[Any]) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, shape: Sequence[type]) -> Key:
    """The key a cursor carries, checked against the listing's key `shape`."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError):
        raise BadRequest("cursor: not a cursor this API gave out") from None
    if (
        not isinstance(key, list)
        or len(key) != len(shape)
        or not all(type(v) is t for v, t in zip(key, shape, strict=True))
    ):
        raise BadRequest("cursor: not a cursor of this listing")
    if any(type(v) is int and not INT64_MIN <= v <= INT64_MAX for v in key):
        # Keys are store row ids and times: a forged one past SQL's 64-bit integers is
        # refused here, not by the database (which answered 500).
        raise BadRequest("cursor: not a cursor this API gave out")
    return tuple(key)


def page(
    items: Iterable[T], key: Callable[[T], Key], shape: Sequence[type], values: Mapping[str, Any]
) -> tuple[list[T], str | None]:
    """One page of `items` in key order after the request's cursor, and the next cursor."""
    after = decode_cursor(values["cursor"], shape) if "cursor" in values else None
    limit: int = values["limit"]
    ordered = sorted(((key(i), i) for i in items), key=lambda pair: pair[0])
    chosen = [(k, i) for k, i in ordered if after is None or k > after]
    taken = chosen[:limit]
    more = len(chosen) > limit
    return [i for _, i in taken], encode_cursor(taken[-1][0]) if more else None
