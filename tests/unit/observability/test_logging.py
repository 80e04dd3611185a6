"""observability/logging.py: JSON or key=value lines, secrets masked, context bound."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest

from indexmaker.observability.logging import MASK, bound, log_event, setup_logging


def emit(json_format: bool, capsys: pytest.CaptureFixture[str]) -> list[str]:
    setup_logging("INFO", json=json_format)
    try:
        with bound(order="im-7", batch=3, client="0xab"):
            log_event(
                "exchange_order",
                amount=Decimal("0.100000000000000000000000000001"),
                api_secret="s3cr3t",
                private_key="0xac0974",
                signature="0xdead",
                public_key="04ab",
            )
        log_event("quiet", logging.DEBUG, note="below the level")
        return capsys.readouterr().err.splitlines()
    finally:
        logging.getLogger("indexmaker").handlers.clear()
        logging.getLogger("indexmaker").propagate = True


def test_json_lines_carry_bound_context_exact_amounts_and_no_secrets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    (line,) = emit(True, capsys)
    record = json.loads(line)
    assert list(record)[:3] == ["event", "level", "timestamp"]
    assert record["event"] == "exchange_order" and record["level"] == "info"
    assert (record["order"], record["batch"], record["client"]) == ("im-7", 3, "0xab")
    assert record["amount"] == "0.100000000000000000000000000001"  # every digit, as text
    assert record["api_secret"] == record["private_key"] == record["signature"] == MASK
    assert record["public_key"] == "04ab"
    assert "s3cr3t" not in line and "0xac0974" not in line


def test_terminal_lines_are_key_value_with_secrets_masked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    (line,) = emit(False, capsys)
    assert " INFO exchange_order " in line
    assert "order=im-7" in line and f"api_secret={MASK}" in line and "s3cr3t" not in line
