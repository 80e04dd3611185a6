"""Instruments the venue does not trade now (halted, delisted), from `InstrumentStatus`.

SPEC §6 / issue 9: a symbol that stops trading is taken out of new batches (the adapter's
`BookInvalid` does that: the solver never prices an invalid book) and the operator is alerted.
This ledger turns each change into one `Alert` (a repeat of the same status says nothing new)
and holds what is not trading, for health and metrics.
"""

from __future__ import annotations

from indexmaker.core.events import Alert, InstrumentStatus
from indexmaker.core.ids import InstrumentId


class Listings:
    def __init__(self) -> None:
        self.not_trading: dict[InstrumentId, str] = {}  # instrument -> the venue's status

    def on_status(self, event: InstrumentStatus) -> list[Alert]:
        """`instrument_halted` when it stops (or its stopped status changes), and
        `instrument_trading` when one that had stopped trades again; else nothing."""
        instrument = event.instrument
        if event.trading:
            was = self.not_trading.pop(instrument, None)
            if was is None:
                return []
            return [Alert("instrument_trading", f"{instrument}: trading again (was {was})")]
        if self.not_trading.get(instrument) == event.status:
            return []
        self.not_trading[instrument] = event.status
        return [
            Alert(
                "instrument_halted",
                f"{instrument}: {event.status} at the venue; taken out of new batches",
            )
        ]
