"""web3.py's async HTTP provider with an aiohttp session of its own (no process-wide lock).

Why: in web3.py 7.x (7.16.0 installed) every async HTTP request first takes the cached
session through `HTTPSessionManager.async_cache_and_return_session`, under a `threading.Lock`
that is a class attribute (shared by every provider in the process) and acquired in a thread
pool (`web3/_utils/async_caching.py: async_lock`). If the awaiting task is cancelled there (our
`asyncio.wait_for`/`asyncio.timeout` around RPC calls: chain/hops.py, chain/bridge.py,
app/command_runner.py), the `finally` releases a lock it does not own while the pool thread
later takes it for good: every later HTTP RPC of the process waits forever
(ethereum/web3.py issue #3867; fix PR #3872 not released).

`OwnSessionHTTPProvider` keeps web3's request path (retry configuration, batch requests,
error handling) and swaps only the session look-up: one `aiohttp.ClientSession` per provider
and event loop, created synchronously on first use (nothing to await, so nothing a
cancellation can interrupt halfway) and closed by `disconnect()`. Sessions are built as web3
builds them (`raise_for_status=True`, a fresh TCP connection per request).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector
from eth_typing import URI
from web3 import AsyncHTTPProvider
from web3._utils.http_session_manager import HTTPSessionManager


class OwnSessionManager(HTTPSessionManager):
    """web3's session manager, except that async sessions are this object's own: one per
    event loop, shared by every URL it is asked for, with no lock (one loop is one thread)."""

    def __init__(self) -> None:
        super().__init__()
        self._own: dict[int, tuple[asyncio.AbstractEventLoop, ClientSession]] = {}

    async def async_cache_and_return_session(
        self,
        endpoint_uri: URI,
        session: ClientSession | None = None,
        request_timeout: ClientTimeout | None = None,
    ) -> ClientSession:
        """The session for the running loop (`session` is adopted if there is none yet)."""
        loop = asyncio.get_running_loop()
        entry = self._own.get(id(loop))
        if entry is not None and entry[0] is loop and not entry[1].closed:
            return entry[1]
        if session is None:
            session = ClientSession(raise_for_status=True, connector=TCPConnector(force_close=True))
        self._own[id(loop)] = (loop, session)
        return session

    async def close_sessions(self) -> None:
        """Close the sessions of the running loop and forget those of closed loops (their
        sockets went with the loop)."""
        loop = asyncio.get_running_loop()
        own, self._own = self._own, {}
        for session_loop, session in own.values():
            if session_loop is loop:
                await session.close()
            elif not session_loop.is_closed():
                self._own[id(session_loop)] = (session_loop, session)


class OwnSessionHTTPProvider(AsyncHTTPProvider):
    """AsyncHTTPProvider (same arguments) on an `OwnSessionManager`; see the module
    docstring. `disconnect()` closes its session."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._own_sessions = OwnSessionManager()
        self._request_session_manager = self._own_sessions

    async def disconnect(self) -> None:
        await self._own_sessions.close_sessions()
