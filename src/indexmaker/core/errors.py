"""One root exception; a retryable branch and a non-retryable branch below it."""

from __future__ import annotations

from datetime import timedelta

_MS = timedelta(milliseconds=1)


class IndexMakerError(Exception):
    """Root of every error this project raises on purpose."""


class RetryableError(IndexMakerError):
    """Trying again later may succeed."""


class NetworkError(RetryableError):
    pass


def retry_after_ms(wait: timedelta) -> int:
    """A retry hint in whole milliseconds, rounded UP (at least 1): waiting exactly the hint
    is never too early. Integer arithmetic on timedelta, so no float or context rounding."""
    return max(1, -(-wait // _MS))


class RateLimitedError(RetryableError):
    def __init__(self, message: str, retry_after_ms: int) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms

    @classmethod
    def after(cls, message: str, wait: timedelta) -> RateLimitedError:
        """`message` with a hint of `wait` rounded up to whole milliseconds."""
        return cls(message, retry_after_ms(wait))


class ServiceUnavailableError(RetryableError):
    """A needed input (a price, a book) is missing right now."""


class NonRetryableError(IndexMakerError):
    """The same request will fail again."""


class InvalidInputError(NonRetryableError):
    """A request or a value is malformed; names the field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidOrderError(NonRetryableError):
    pass


class InsufficientFundsError(NonRetryableError):
    pass


class RejectedError(NonRetryableError):
    pass


class InvariantViolation(IndexMakerError):
    """A ledger would become inconsistent; the change was refused before any mutation."""
