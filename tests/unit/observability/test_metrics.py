"""Prometheus metrics of the service: operator alerts by code and the instruments the venue
does not trade, as a scrape shows them."""

from __future__ import annotations

from indexmaker.core.events import Alert, BatchEvent
from indexmaker.core.ids import BatchId
from indexmaker.observability.metrics import ServiceMetrics


def test_alerts_are_counted_by_code_and_not_trading_is_a_gauge() -> None:
    metrics = ServiceMetrics()
    metrics.observe_command(Alert("instrument_halted", "binance:ETHUSDC: HALT"))
    metrics.observe_command(Alert("instrument_halted", "binance:SOLUSDC: delisted"))
    metrics.observe_command(Alert("instrument_trading", "binance:ETHUSDC: trading again"))
    metrics.observe_command(BatchEvent(BatchId(1), "created", 1, 1, 0))  # type: ignore[arg-type]
    metrics.not_trading.set(1)
    text = metrics.render().decode()
    assert 'indexmaker_alerts_total{code="instrument_halted"} 2.0' in text
    assert 'indexmaker_alerts_total{code="instrument_trading"} 1.0' in text
    assert "indexmaker_instruments_not_trading 1.0" in text
