"""The resend outbox (SPEC §5): business responses kept per client under a server-wide,
strictly increasing `server_seq`, bounded per client (count, age) and in total; pure.

Kept until the client acknowledges them (a ResendRequest names the last it holds) or evicted;
a resend that reaches back past an eviction says so (`ResendBatch.complete` False), and so does
a cursor from an earlier run of the server. In memory here; a store can persist
`StoredResponse`s behind the same calls.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from indexmaker.core.ids import ClientKey
from indexmaker.server.encoding import PreparedMessage

_UNIX_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    server_seq: int
    client: ClientKey
    message: PreparedMessage
    stored_at: datetime


@dataclass(frozen=True, slots=True)
class ResendBatch:
    responses: tuple[StoredResponse, ...]
    complete: bool  # False: some responses after last_server_seq were already evicted


class Outbox:
    """Per-client responses with a server-wide sequence, kept until acknowledged or evicted.

    `last_server_seq` is where this run's numbering starts after: a store restores it on
    restart; until then the server passes a per-start epoch (`server_seq_epoch`), so a
    restarted server never reuses a number a client already holds (SPEC §5)."""

    def __init__(
        self,
        capacity: int,
        retention: timedelta,
        last_server_seq: int = 0,
        total: int | None = None,
    ) -> None:
        self._capacity = capacity
        self._retention = retention
        self._total = total  # None: no cap across clients
        self._last = last_server_seq
        self._start = last_server_seq  # numbers at or below it were given by an earlier run
        self._queues: dict[ClientKey, deque[StoredResponse]] = {}
        # Every stored response in server_seq order, for the cap across clients; entries
        # already acknowledged or expired are skipped lazily when they reach the front.
        self._order: deque[StoredResponse] = deque()
        self._stored = 0
        # Per client, the highest seq evicted unacknowledged: a resend from before it is lossy.
        # Bounded like the responses; a forgotten entry raises `_lost_floor`, which makes
        # every resend from before it report itself incomplete (conservative, never wrong).
        self._lost_through: OrderedDict[ClientKey, int] = OrderedDict()
        self._lost_floor = 0

    @property
    def start(self) -> int:
        """The last server_seq of earlier runs; this run's numbers are all above it."""
        return self._start

    @property
    def last_server_seq(self) -> int:
        return self._last

    def resume(self, start: int, last: int, lost_through: int = 0) -> None:
        """Continue numbering after `last`; numbers at or below `start` belong to runs before
        durable numbering, and a resend from before `lost_through` is incomplete (what was
        not restored). Call before anything is stored (store/fix_outbox.py)."""
        self._start = start
        self._last = last
        self._lost_floor = max(self._lost_floor, lost_through)

    def number(self, server_seq: int | None = None) -> int:
        """The server_seq for a response that is delivered but not kept: `server_seq` when
        the caller numbers it (durably), else the next one."""
        self._last = server_seq if server_seq is not None else self._last + 1
        return self._last

    def store(
        self,
        client: ClientKey,
        message: PreparedMessage,
        now: datetime,
        server_seq: int | None = None,
    ) -> StoredResponse:
        """Keep `message` under the next server_seq, or under `server_seq` given by the
        caller (a durable number, always above the last; store/fix_outbox.py)."""
        self._last = server_seq if server_seq is not None else self._last + 1
        stored = StoredResponse(self._last, client, message, now)
        queue = self._queues.setdefault(client, deque())
        queue.append(stored)
        self._stored += 1
        if self._total is not None:
            self._order.append(stored)
        self._expire(client, queue, now)
        self._enforce_total()
        return stored

    def __len__(self) -> int:
        """Responses stored across every client."""
        return self._stored

    def _enforce_total(self) -> None:
        if self._total is None:
            return
        order = self._order
        while order and (self._stored > self._total or len(order) > 2 * self._total + 16):
            oldest = order.popleft()
            queue = self._queues.get(oldest.client)
            if queue and queue[0] is oldest:
                # The oldest overall is always the front of its client's queue (seq order).
                self._mark_lost(oldest.client, queue.popleft().server_seq)
                self._stored -= 1
                if not queue:
                    del self._queues[oldest.client]

    def since(self, client: ClientKey, last_server_seq: int, now: datetime) -> ResendBatch:
        queue = self._queues.get(client)
        if queue is not None:
            self._expire(client, queue, now)
        responses = tuple(r for r in queue or () if r.server_seq > last_server_seq)
        # A cursor from an earlier run: what it missed there is gone with that run's memory.
        earlier_run = 0 < last_server_seq <= self._start
        lost = max(self._lost_through.get(client, 0), self._lost_floor)
        complete = lost <= last_server_seq and not earlier_run
        return ResendBatch(responses, complete)

    def held_after(self, client: ClientKey, server_seq: int) -> int:
        """How many stored responses for `client` are numbered above `server_seq` (what a
        resume from there would resend, before expiry); a pure query."""
        queue = self._queues.get(client)
        return sum(1 for r in queue or () if r.server_seq > server_seq)

    def acknowledge(self, client: ClientKey, server_seq: int) -> None:
        """The client has everything through `server_seq`: drop it."""
        queue = self._queues.get(client)
        while queue and queue[0].server_seq <= server_seq:
            queue.popleft()
            self._stored -= 1
        if queue is not None and not queue:
            del self._queues[client]

    def _expire(self, client: ClientKey, queue: deque[StoredResponse], now: datetime) -> None:
        horizon = now - self._retention
        while queue and (len(queue) > self._capacity or queue[0].stored_at < horizon):
            self._mark_lost(client, queue.popleft().server_seq)
            self._stored -= 1
        if not queue:
            self._queues.pop(client, None)

    def _mark_lost(self, client: ClientKey, server_seq: int) -> None:
        lost = self._lost_through
        lost[client] = server_seq
        lost.move_to_end(client)
        limit = self._total if self._total is not None else 100_000
        while len(lost) > limit:
            _, forgotten = lost.popitem(last=False)
            self._lost_floor = max(self._lost_floor, forgotten)


def server_seq_epoch(started: datetime) -> int:
    """Microseconds since 1970 at the server's start: the number this run's server_seqs
    start after. A run would have to send more than a million stored responses per second
    of its life to reach the next run's epoch (and stays below 2**53, safe in JSON)."""
    return (started - _UNIX_EPOCH) // timedelta(microseconds=1)
