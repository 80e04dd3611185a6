"""Structured logs (structlog): one event name, then fields; JSON in production, key=value
lines on a terminal. Secrets never go out: any field whose name says key, secret, password,
token, signature or passphrase is masked (a public key stays), whatever the caller passed;
and a secret's value registered with `register_secret` (the server's signing key, API keys
and secrets, as they are loaded) is masked wherever it shows up, in any field's text (an
error message quoting a request, say).

Context binds with `bound(order=..., batch=..., instrument=..., client=...)`: every event
logged inside the block (in that task) carries those fields.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog

_LOGGER = logging.getLogger("indexmaker")
FORMAT_ENV = "INDEXMAKER_LOG_FORMAT"  # "json" or "console"; default: console on a terminal
_SECRET_WORDS = ("secret", "password", "passphrase", "token", "signature", "private", "key")
_PUBLIC = frozenset({"public_key", "server_public_key", "key_source"})
MASK = "***"
Event = MutableMapping[str, Any]
_SECRETS: set[str] = set()
MIN_SECRET = 8  # shorter values would mask ordinary text


def register_secret(value: str) -> None:
    """Mask `value` (and its hex body without 0x, in either case) in every logged text from
    now on. Values shorter than 8 characters are not registered (they are no secret)."""
    value = value.strip()
    body = value[2:] if value[:2] in ("0x", "0X") else value
    for form in {value, body, body.lower(), body.upper()}:
        if len(form) >= MIN_SECRET:
            _SECRETS.add(form)


def mask_secrets(text: str) -> str:
    """`text` with every registered secret replaced by MASK (longest first): for texts that
    leave the process other than through a log line (an error's reason kept in the journal,
    an alert), e.g. an RPC client's error quoting its URL with the provider's key."""
    if not _SECRETS or not any(secret in text for secret in _SECRETS):
        return text
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _redact_values(_logger: Any, _name: str, event: Event) -> Event:
    for field, value in event.items():
        if isinstance(value, str):
            event[field] = mask_secrets(value)
    return event


def _redact(_logger: Any, _name: str, event: Event) -> Event:
    for field in list(event):
        lowered = field.lower()
        if lowered not in _PUBLIC and any(word in lowered for word in _SECRET_WORDS):
            event[field] = MASK
    return event


def _plain(value: Any) -> Any:
    """Decimals, ids and times as their text: JSON keeps every digit of an amount."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def _stringify(_logger: Any, _name: str, event: Event) -> Event:
    for field, value in event.items():
        event[field] = _plain(value)
    return event


def _console(_logger: Any, _name: str, event: Event) -> str:
    """`<time> <LEVEL> <event> key=value ...`, quoting values with spaces."""
    head = f"{event.pop('timestamp', '')} {str(event.pop('level', '')).upper()} "
    head += str(event.pop("event", ""))
    fields = " ".join(f"{key}={_quoted(value)}" for key, value in event.items())
    return f"{head} {fields}" if fields else head


def _quoted(value: Any) -> str:
    text = str(value)
    return f'"{text}"' if " " in text else text


def _json(_logger: Any, _name: str, event: Event) -> str:
    """One JSON object a line, the event name, level and time first."""
    ordered = {key: event.pop(key) for key in ("event", "level", "timestamp") if key in event}
    ordered.update(event)
    return _JSON(_logger, _name, ordered)  # type: ignore[return-value]


_JSON = structlog.processors.JSONRenderer()


def _renderer(json: bool) -> structlog.types.Processor:
    return _json if json else _console


def setup_logging(level: str = "INFO", json: bool | None = None) -> None:
    """Log to stderr: JSON when `json` (default: $INDEXMAKER_LOG_FORMAT, else JSON unless
    stderr is a terminal), readable key=value lines otherwise."""
    if json is None:
        chosen = os.environ.get(FORMAT_ENV, "").lower()
        json = chosen == "json" or (chosen != "console" and not sys.stderr.isatty())
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                timestamper,
                _renderer(json),
            ],
        )
    )
    root = logging.getLogger("indexmaker")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        _redact,
        _stringify,
        _redact_values,  # after _stringify: an exception's text is checked too
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)
_STRUCT = structlog.stdlib.get_logger("indexmaker")


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    if not _LOGGER.isEnabledFor(level):
        return
    _STRUCT.log(level, event, **fields)


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Bind context fields (order, batch, instrument, client) for the events logged inside."""
    with structlog.contextvars.bound_contextvars(**fields):
        yield


def bind(**fields: Any) -> None:
    """Bind context fields for the rest of the current task (or until `unbind`)."""
    structlog.contextvars.bind_contextvars(**fields)


def unbind(*names: str) -> None:
    structlog.contextvars.unbind_contextvars(*names)
