"""Anti-bot gate (issue 11, the user's open item "check minimum balance of the wallet to
prevent bots"): a new index order from an address holding less than `min_balance` of the
configured token on its own chain is refused with a NAK naming the balance and the minimum.
With token "usdc" (the deposit USDC) the collateral the client holds with us counts too
(`held`: its unspent collateral in the engine, app/service.py): a client who deposited
everything into custody has an empty wallet and still trades (review of issue 11).

Balances come from the chain port (chain/balances.py reads them over JSON-RPC) and, with the
collateral held, are cached per (chain id, address) for `ttl`, so a client sending many
orders costs one RPC per `ttl`, not one per message; the cache holds at most `max_entries`
addresses (least recently used goes). A deposit made after a refusal counts once its `ttl`
has passed. The check runs after the signature verified, so an unsigned flood costs no
RPC. A failed read refuses the order ("retry later") and is remembered for `failure_ttl`
only: an RPC outage never lets orders through unchecked, nor costs one RPC per message.

The gate is synchronous on a cache hit (`verdict`); on a miss the session's reader awaits
`fetch` before the frame goes on, so a session's frames keep their order and other sessions
are not held up.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Final, Literal, Protocol

from indexmaker.core.ids import ClientKey
from indexmaker.core.money import ZERO, exact_add, round_usdc

# (chain id, address, token) -> the address's balance in whole token units. Raises on a failed
# read (any exception: the order is refused, never let through).
BalanceReader = Callable[[int, str, str], Awaitable[Decimal]]
Token = Literal["usdc", "native"]
# client -> the USDC it holds with us (deposited, not spent). Read once per balance read.
HeldReader = Callable[[ClientKey], Awaitable[Decimal]]


class _Collateral(Protocol):
    def unspent(self, client: ClientKey) -> Decimal: ...


def collateral_held(collateral: _Collateral, quiet: Callable[[], Awaitable[None]]) -> HeldReader:
    """A HeldReader over the engine's collateral ledger (engine/collateral.py `unspent`:
    unreserved lots net of their fees, and reservations not spent), read after `quiet`
    (Runtime.quiet: no engine step half done in the worker thread)."""

    async def held(client: ClientKey) -> Decimal:
        await quiet()
        return collateral.unspent(client)

    return held


@dataclass(frozen=True)
class AntiBotConfig:
    """`token`: "usdc" (the chain's collateral token, 6 decimals) or "native" (ETH, 18);
    `min_balance` in whole token units; `ttl` how long a read balance is trusted."""

    enabled: bool = False
    token: Token = "usdc"
    min_balance: Decimal = Decimal(1)
    ttl: timedelta = timedelta(seconds=30)
    failure_ttl: timedelta = timedelta(seconds=1)
    max_entries: int = 100_000


class _Miss:
    """The balance is not cached (or expired): `fetch` it, then ask again."""


MISS: Final = _Miss()


class BalanceGate:
    """See the module docstring. `clock`: monotonic seconds."""

    def __init__(
        self,
        config: AntiBotConfig,
        reader: BalanceReader,
        clock: Callable[[], float] = time.monotonic,
        held: HeldReader | None = None,
    ) -> None:
        self.config = config
        self._reader = reader
        self._clock = clock
        # Collateral held with us counts toward a minimum in the deposit USDC only.
        self._held = held if config.token == "usdc" else None
        # client -> (wallet balance or the failure text, collateral held, expiry)
        self._cache: OrderedDict[ClientKey, tuple[Decimal | str, Decimal, float]] = OrderedDict()
        self.reads = 0  # RPC reads made (for tests and metrics)

    def verdict(self, client: ClientKey) -> str | _Miss | None:
        """None: admitted; a refusal reason; or MISS when the balance must be fetched first."""
        entry = self._cache.get(client)
        if entry is None or entry[2] <= self._clock():
            return MISS
        self._cache.move_to_end(client)
        return self._judge(client, entry[0], entry[1])

    async def fetch(self, client: ClientKey) -> str | None:
        """Read `client`'s balance through the reader, cache it (or the failure); the verdict
        on the fresh value: None (admitted) or the refusal reason."""
        self.reads += 1
        value: Decimal | str
        held = ZERO
        try:
            value = await self._reader(client[0], client[1], self.config.token)
            if self._held is not None:
                held = await self._held(client)
            ttl = self.config.ttl
        except Exception as exc:  # any failed read refuses, never admits
            name = type(exc).__name__
            value = f"balance check unavailable on chain {client[0]}: retry later ({name})"
            ttl = self.config.failure_ttl
        self._cache[client] = (value, held, self._clock() + ttl.total_seconds())
        self._cache.move_to_end(client)
        while len(self._cache) > self.config.max_entries:
            self._cache.popitem(last=False)
        return self._judge(client, value, held)

    def _judge(self, client: ClientKey, value: Decimal | str, held: Decimal) -> str | None:
        if isinstance(value, str):
            return value
        if exact_add(value, held) < self.config.min_balance:
            with_us = (
                "" if self._held is None else f" and {round_usdc(held)} USDC deposited with us"
            )
            return (
                f"balance too low: {client[1]} holds {value:f} {self.config.token.upper()} on "
                f"chain {client[0]}{with_us}, the minimum to trade is {self.config.min_balance}"
            )
        return None
