"""JSON-RPC failover across several URLs of one chain, as a web3.py provider.

`FailoverHTTPProvider(urls)` is web3.py's AsyncHTTPProvider with a list of endpoints: a
request goes to the endpoint that answered last; when it cannot be reached (connection refused
or reset, HTTP error status, timeout) the same request goes to the next URL, once round the
list. Only transport failures move on: a JSON-RPC error answer (a revert, a refused
transaction) is the chain's answer and is returned as is, from whichever node gave it.

web3.py's own per-URL retry (five attempts with back-off for read methods) is turned off here:
with a second URL, moving on is faster than waiting on a dead node; with one URL the caller's
retry (LogFollower's next poll, the hop runner) does the waiting. When every URL failed, it
raises NetworkError (core.errors: retryable) naming the last failure.

Resending a signed transaction to another node is safe: it is the same transaction (same
nonce, same hash), so at most one of its copies can be mined.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiohttp import ClientError, ClientTimeout
from eth_typing import URI
from web3 import AsyncHTTPProvider
from web3.types import RPCEndpoint

from indexmaker.chain.http_provider import OwnSessionHTTPProvider
from indexmaker.core.errors import NetworkError

TRANSPORT_ERRORS = (ClientError, OSError, asyncio.TimeoutError)


class FailoverHTTPProvider(OwnSessionHTTPProvider):
    """See the module docstring. `urls`: one or more http(s) JSON-RPC URLs of the same chain;
    `timeout_s`: per request and URL."""

    def __init__(self, urls: Sequence[str], timeout_s: float = 10.0) -> None:
        if not urls:
            raise ValueError("urls: at least one RPC URL")
        super().__init__(
            urls[0],
            request_kwargs={"timeout": ClientTimeout(total=timeout_s)},
            exception_retry_configuration=None,
        )
        self.urls = tuple(URI(url) for url in urls)
        self._active = 0
        self.failovers = 0  # times a request moved on to another URL

    @property
    def active_url(self) -> str:
        """The URL requests go to first (the last one that answered)."""
        return self.urls[self._active]

    async def _make_request(self, method: RPCEndpoint, request_data: bytes) -> bytes:
        last: BaseException | None = None
        start = self._active
        for step in range(len(self.urls)):
            index = (start + step) % len(self.urls)
            try:
                data: bytes = await self._request_session_manager.async_make_post_request(
                    self.urls[index], request_data, **self.get_request_kwargs()
                )
            except TRANSPORT_ERRORS as exc:
                last = exc
                continue
            if index != self._active:
                self._active = index
                self.failovers += 1
            self.endpoint_uri = self.urls[index]
            return data
        raise NetworkError(
            f"no RPC URL answered {method} ({len(self.urls)} tried): {last!r}"
        ) from last

    async def make_batch_request(self, batch_requests: Any) -> Any:
        raise NotImplementedError("batch requests are not used over failover")


def rpc_provider(urls: Sequence[str]) -> AsyncHTTPProvider:
    """web3's provider for one chain's `urls` (the first tried first): failover across them
    when there are several, the plain HTTP provider for one; both on a session of their own
    (chain/http_provider.py: a cancelled RPC must not hang the process's later ones)."""
    return FailoverHTTPProvider(urls) if len(urls) > 1 else OwnSessionHTTPProvider(urls[0])
