"""The server's unauthenticated connections (SPEC §5 "Authentication", "Limits"; issue 8).

They are capped per source address (guard.py counts them) and in total; one that has had no
accepted message for `idle` is closed (slowloris), and when a cap is reached a new connection
evicts the least recently active one, so idle squatters cannot fill `max_sessions`. A session
leaves this set once a signature verifies on it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import timedelta

from indexmaker.server.connection import Connection
from indexmaker.server.guard import Guard

Close = Callable[[Connection, int, str], None]  # (connection, close code, reason)


class UnauthenticatedSessions:
    """Unauthenticated connections, least recently active first, with that time (loop time)."""

    def __init__(
        self,
        guard: Guard,
        connections: Mapping[str, Connection],
        close: Close,
        idle: timedelta,
        cap: int,
    ) -> None:
        self._guard = guard
        self._connections = connections  # the server's open connections, by session id
        self._close = close
        self._idle = idle.total_seconds()
        self._cap = cap
        self._last: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._last)

    def opened(self, connection: Connection) -> None:
        self._last[connection.state.session_id] = asyncio.get_running_loop().time()
        self._guard.connection_opened(connection.source)

    def release(self, connection: Connection) -> None:
        """The connection is closing: it leaves the caps at once (room for others)."""
        if self._last.pop(connection.state.session_id, None) is not None:
            self._guard.connection_released(connection.source)

    def active(self, connection: Connection) -> None:
        """An accepted message: refresh the idle deadline, or leave the unauthenticated caps
        once a signature verified on the session."""
        session_id = connection.state.session_id
        if session_id not in self._last:
            return
        if connection.state.authenticated:
            del self._last[session_id]
            self._guard.connection_released(connection.source)
        else:
            self._last[session_id] = asyncio.get_running_loop().time()
            self._last.move_to_end(session_id)

    def make_room(self, full: bool) -> bool:
        """Room for one more connection: evict the least recently active unauthenticated
        one when a cap is reached (`full`: max_sessions is); False when every session is
        authenticated (503)."""
        crowded = len(self._last) >= self._cap
        if not (full or crowded):
            return True
        for session_id in self._last:
            connection = self._connections.get(session_id)
            if connection is not None and not connection.closing:
                self._close(connection, 1008, "server busy: idle unauthenticated session closed")
                return True
        return not full

    async def sweep(self) -> None:
        """Close unauthenticated sessions with no accepted message for too long (slowloris);
        runs until cancelled."""
        idle = self._idle
        period = min(1.0, idle / 4)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            horizon = loop.time() - idle
            for session_id, last in list(self._last.items()):
                if last > horizon:
                    break  # least recently active first: the rest are younger
                connection = self._connections.get(session_id)
                if connection is not None:
                    self._close(connection, 1008, f"no authenticated activity for {idle:g} s")
                self._last.pop(session_id, None)
