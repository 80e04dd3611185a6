"""The settings file's shared field types (app/settings.py): finite Decimals in ranges,
durations in seconds, counts, URL paths, chain ids, JSON-RPC URLs, one rate-limit window, and
the strict frozen base model every section derives from, and a validation error as one
`section.name: reason` line."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

MAX_AMOUNT = Decimal("1e12")  # USDC; far above any real volley, far below what overflows
DAY = 86_400
WEEK = 7 * DAY


def decimal_field(
    *,
    gt: int | str | None = None,
    ge: int | str | None = None,
    lt: int | str | None = None,
    le: int | str | Decimal | None = None,
) -> Any:
    """A finite Decimal field (strings, integers and TOML floats accepted; not booleans)."""

    def bound(value: int | str | Decimal | None) -> Decimal | None:
        return None if value is None else Decimal(value)

    return Field(
        strict=False, allow_inf_nan=False, gt=bound(gt), ge=bound(ge), lt=bound(lt), le=bound(le)
    )


Amount = Annotated[Decimal, decimal_field(gt=0, le=MAX_AMOUNT)]
AmountOrZero = Annotated[Decimal, decimal_field(ge=0, le=MAX_AMOUNT)]
Rate = Annotated[Decimal, decimal_field(gt=0, le=1)]
# Durations in seconds; at least a millisecond where zero would mean a busy loop.
Seconds = Annotated[Decimal, decimal_field(ge=0, le=WEEK)]
PositiveSeconds = Annotated[Decimal, decimal_field(ge="0.001", le=WEEK)]
Count = Annotated[int, Field(ge=1, le=10_000_000)]
UrlPath = Annotated[str, Field(pattern=r"^/[A-Za-z0-9._~/-]*$", max_length=200)]
ChainId = Annotated[int, Field(ge=1, le=2**32 - 1)]


def _url_check(schemes: str, expected: str) -> Callable[[str], str]:
    """A validator of `schemes`://host[:port][/path] URLs, refused as `expected` (the value is
    not echoed: a provider's URL often carries its API key)."""
    pattern = re.compile(schemes + r"://[A-Za-z0-9.\[\]:_-]+(/[^\s\"'<>]*)?")

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"expected {expected} JSON-RPC URL (host, optional path)")
        return value

    return check


# A JSON-RPC endpoint: http(s)://host[:port][/path] (web3's HTTP provider; no WebSocket).
RpcUrl = Annotated[
    str, Field(max_length=2048), AfterValidator(_url_check("https?", "an http:// or https://"))
]
# A JSON-RPC WebSocket endpoint (log subscriptions): ws(s)://host[:port][/path].
WsUrl = Annotated[
    str, Field(max_length=2048), AfterValidator(_url_check("wss?", "a ws:// or wss://"))
]
CHAIN_IDS = ("42161", "8453")  # the path's source and trading chains (TOML keys are strings)


class SettingsModel(BaseModel):
    """Every section's base: strict types (no silent coercion), unknown names refused, frozen."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class RateLimitSettings(SettingsModel):
    """One sliding window: at most `limit` weight inside any `interval` seconds."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    limit: Count
    interval: Annotated[Decimal, decimal_field(ge="0.001", le=WEEK)]


def windows_field(*windows: tuple[str, int, int]) -> Any:
    """A field whose default is a fresh list of rate-limit windows, each (name, limit in
    weight units, interval in seconds): a new list per model, never one shared."""
    return Field(
        default_factory=lambda: [
            RateLimitSettings(name=name, limit=limit, interval=Decimal(seconds))
            for name, limit, seconds in windows
        ]
    )


def window_field(name: str, limit: int, seconds: int) -> Any:
    """A field whose default is one rate-limit window (name, limit, interval in seconds)."""
    return Field(
        default_factory=lambda: RateLimitSettings(name=name, limit=limit, interval=Decimal(seconds))
    )


def unique_names(limits: list[RateLimitSettings], field: str) -> None:
    """Raises ValueError naming `field` when two of its windows share a name."""
    names = [limit.name for limit in limits]
    if len(set(names)) != len(names):
        raise ValueError(f"{field}: window names must be unique, got {names}")


def first_error(error: ValidationError, sources: dict[str, str]) -> str:
    """The first validation error as one `section.name: reason` line (`server.port: must be
    less than or equal to 65535 (got 70000)`); `sources` renames a setting to where its value
    came from (`{"server.port": "--port"}`)."""
    detail = error.errors(include_url=False)[0]
    where = ""
    for part in detail["loc"]:
        if isinstance(part, int):
            where += f"[{part}]"  # the n-th entry of a list: order_rate_limits[0].limit
        elif part != "[key]":
            where += f".{part}" if where else str(part)
    message: str = detail["msg"]
    if detail["type"] == "value_error":
        # A model check names its own field ("fee_factor: …") after pydantic's prefix.
        message = message.removeprefix("Value error, ")
        name, sep, reason = message.partition(": ")
        if sep and " " not in name:
            where, message = (f"{where}.{name}" if where else name), reason
    elif detail["type"] == "extra_forbidden":
        message = "unknown setting"
    elif detail["type"] == "missing":
        message = "required, missing"
    elif detail["type"] in ("model_type", "model_attributes_type", "dict_type"):
        message = f"expected a table of settings ([{where}]), got {detail.get('input')!r}"
    elif detail["type"] in ("decimal_type", "is_instance_of"):
        message = 'expected a decimal number, e.g. 0.01 or "0.01"'
    else:
        message = re.sub(r"^\w+ should", "must", message)  # "Input should be" → "must be"
        value = detail.get("input")
        shown = str(value) if isinstance(value, Decimal) else repr(value)
        message += f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
    where = sources.get(where, where)
    return f"{where}: {message}" if where else message
