"""Hops the chain reported PENDING: asked about again until their completion comes.

A `HopReport(PENDING)` (the answer to a `QueryHop`) says the hop was taken and its
`HopCompleted` will follow. If that push is lost, nothing would ever ask again and the lot
would stay in transit for good. So a pending hop is asked about again (`QueryHop`, by its
transfer id: never a resend) `interval` after each PENDING answer, driven by the core's ticks;
once it has been pending for `alert_after`, one `hop_pending` alert names it and the asking
stops (the operator takes over; a completion arriving later still completes it). The number of
re-asks is thereby bounded by `alert_after / interval` (issue 6, docs/adapters.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from indexmaker.core.events import Alert, QueryHop
from indexmaker.core.ids import TransferId


@dataclass(slots=True)
class _Pending:
    query: QueryHop
    since: datetime  # the first PENDING answer
    ask_at: datetime | None  # None: a query is out, its answer re-arms the ask
    alerted: bool = False  # pending too long: reported once, asked about no more


class PendingHops:
    """Re-asks about hops reported pending; alerts once about one pending too long."""

    def __init__(self, interval: timedelta, alert_after: timedelta) -> None:
        if interval <= timedelta(0) or alert_after < interval:
            raise ValueError("need 0 < hop_query_interval <= hop_pending_alert")
        self.interval = interval
        self.alert_after = alert_after
        self._pending: dict[TransferId, _Pending] = {}  # insertion order: deterministic

    def on_pending(self, query: QueryHop, now: datetime) -> None:
        """The chain answered PENDING for `query`'s hop: ask again after the interval."""
        entry = self._pending.get(query.transfer_id)
        if entry is None:
            self._pending[query.transfer_id] = _Pending(query, now, now + self.interval)
        elif entry.ask_at is None and not entry.alerted:
            entry.ask_at = now + self.interval
        # else: a repeat answer (already armed) or an alerted hop: nothing to arm

    def forget(self, transfer_id: TransferId) -> None:
        """The hop completed, failed, or was found missing: no more asking."""
        self._pending.pop(transfer_id, None)

    def due(self, now: datetime, in_flight: Callable[[TransferId], bool]) -> list[QueryHop | Alert]:
        """The queries (and alerts) due at `now`; hops no longer in flight are dropped."""
        out: list[QueryHop | Alert] = []
        for transfer_id, entry in list(self._pending.items()):
            if not in_flight(transfer_id):
                del self._pending[transfer_id]
                continue
            if entry.ask_at is None or now < entry.ask_at:
                continue
            if now - entry.since >= self.alert_after:
                entry.ask_at, entry.alerted = None, True
                out.append(
                    Alert(
                        "hop_pending",
                        f"{transfer_id} pending for {now - entry.since} "
                        f"(since {entry.since.isoformat()}); no longer asked about",
                    )
                )
                continue
            entry.ask_at = None  # re-armed by the answer (or asked at once if it fails)
            out.append(entry.query)
        return out

    def asking(self) -> list[TransferId]:
        """Transfer ids still watched (for fingerprints and tests)."""
        return list(self._pending)
