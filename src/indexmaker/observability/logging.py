"""Structured logs: one event name, then key=value fields. Secrets never go in fields."""

from __future__ import annotations

import logging
import sys
from typing import Any

_LOGGER = logging.getLogger("indexmaker")


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("indexmaker")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    if not _LOGGER.isEnabledFor(level):
        return
    text = " ".join(f"{key}={_value(value)}" for key, value in fields.items())
    _LOGGER.log(level, "%s %s", event, text)


def _value(value: Any) -> str:
    text = str(value)
    return f'"{text}"' if " " in text else text
