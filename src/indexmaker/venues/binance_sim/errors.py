"""Binance's error answer `{"code": -1121, "msg": "Invalid symbol."}` as an exception.

Codes and texts follow binance-spot-api-docs errors.md; the HTTP status follows rest-api.md
("HTTP Return Codes"): 4XX for a bad request, 429/418 for limits, 5XX for unknown outcomes.
"""

from __future__ import annotations


class ApiError(Exception):
    """A refusal in Binance's shape. `status` is the HTTP (or WS-API) status; `retry_after` is
    seconds until the limit or ban ends (REST `Retry-After`, WS-API `data.retryAfter`)."""

    def __init__(
        self, code: int, msg: str, status: int = 400, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status
        self.retry_after = retry_after

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


def bad_symbol() -> ApiError:
    return ApiError(-1121, "Invalid symbol.")


def missing(name: str) -> ApiError:
    return ApiError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def bad_value(name: str) -> ApiError:
    return ApiError(
        -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
    )


def invalid(message: str) -> ApiError:
    return ApiError(-1130, message)


def filter_failure(name: str) -> ApiError:
    return ApiError(-1013, f"Filter failure: {name}")


def rejected(message: str) -> ApiError:
    """A new order refused by the matching engine (errors.md 'other errors' under -2010)."""
    return ApiError(-2010, message)


def unknown_order() -> ApiError:
    return ApiError(-2013, "Order does not exist.")


def cancel_rejected() -> ApiError:
    return ApiError(-2011, "Unknown order sent.")
