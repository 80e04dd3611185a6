"""server_seq across restarts (SPEC §5): a per-start epoch, so a restarted server never
reuses a number, and a resend from an earlier run's cursor is reported incomplete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from indexmaker.core.ids import client_key
from indexmaker.server.session import Outbox, SessionHub, server_seq_epoch

from .test_server_session import fill
from .wire_helpers import TEST_ADDRESS

START = datetime(2026, 11, 29, 18, 0, tzinfo=UTC)
CLIENT = client_key(42161, TEST_ADDRESS)


def test_the_epoch_is_microseconds_since_1970() -> None:
    assert server_seq_epoch(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert server_seq_epoch(START) == 1_795_975_200_000_000
    assert server_seq_epoch(START + timedelta(microseconds=1)) == 1_795_975_200_000_001
    assert server_seq_epoch(START) < 2**53  # exact in every JSON reader


def test_a_restart_never_reuses_a_server_seq() -> None:
    first = SessionHub(last_server_seq=server_seq_epoch(START))
    given = [first.outbox.store(CLIENT, fill(), START).server_seq for _ in range(1_000)]
    assert given == list(range(given[0], given[0] + 1_000))
    # The next start is at least a millisecond later: above all 1,000 numbers of the first.
    second = SessionHub(last_server_seq=server_seq_epoch(START + timedelta(milliseconds=1)))
    assert second.outbox.store(CLIENT, fill(), START).server_seq > max(given)


def test_a_resend_from_an_earlier_runs_cursor_is_incomplete() -> None:
    epoch = server_seq_epoch(START)
    outbox = Outbox(100, timedelta(hours=1), last_server_seq=epoch)
    stored = outbox.store(CLIENT, fill(), START)
    # The client's cursor is from the run before: what it missed there is gone.
    earlier = outbox.since(CLIENT, epoch - 5, START)
    assert earlier.responses == (stored,) and earlier.complete is False
    # From nothing (0) or from this run's own numbers, nothing is missing.
    assert outbox.since(CLIENT, 0, START).complete is True
    assert outbox.since(CLIENT, stored.server_seq, START).complete is True
    assert outbox.since(CLIENT, stored.server_seq, START).responses == ()
