"""A session's settings and state (SPEC §5): the limits and weights it is admitted under
(SessionConfig), a refusal (Rejected), and one connection's sequence numbers, clients and
challenges (SessionState). The hub that drives them is session.py."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType

from indexmaker.core.ids import ClientKey
from indexmaker.engine.throttle import RateLimit, RateLimiter
from indexmaker.server.guard import GuardConfig
from indexmaker.server.wire_values import (
    CANCEL_INDEX_ORDER,
    CANCEL_QUOTE_REQUEST,
    CHALLENGE_REQUEST,
    NEW_INDEX_ORDER,
    NEW_QUOTE_REQUEST,
    RESEND_REQUEST,
)

_SEC, _MIN, _DAY = timedelta(seconds=1), timedelta(minutes=1), timedelta(days=1)


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Defaults are the reference's "development" limits and message weights."""

    timestamp_window: timedelta = timedelta(seconds=60)
    max_sessions_per_client: int = 8
    session_limits: tuple[RateLimit, ...] = (
        RateLimit("session_10s", 100, 10 * _SEC),
        RateLimit("session_1m", 2_000, _MIN),
    )
    client_limits: tuple[RateLimit, ...] = (
        RateLimit("client_10s", 200, 10 * _SEC),
        RateLimit("client_1m", 10_000, _MIN),
        RateLimit("client_1d", 100_000, _DAY),
    )
    global_limits: tuple[RateLimit, ...] = (
        RateLimit("global_10s", 2_000, 10 * _SEC),
        RateLimit("global_1m", 100_000, _MIN),
    )
    weights: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType(
            {
                NEW_INDEX_ORDER: 10,
                CANCEL_INDEX_ORDER: 5,
                NEW_QUOTE_REQUEST: 5,
                CANCEL_QUOTE_REQUEST: 3,
                RESEND_REQUEST: 1,
                CHALLENGE_REQUEST: 1,
            }
        )
    )
    outbox_capacity: int = 1_000  # responses kept per client
    outbox_retention: timedelta = timedelta(hours=24)
    outbox_total: int = 100_000  # responses kept across every client (oldest evicted first)
    max_tracked_clients: int = 100_000  # per-client limiters kept (least recently used go)
    # One-use signatures (replay.py): keys remembered, and per key its spent ids and r values.
    max_signing_keys: int = 100_000
    max_spent_ids_per_key: int = 10_000
    max_r_per_key: int = 1_000
    unauthenticated: GuardConfig = field(default_factory=GuardConfig)  # guard.py


@dataclass(frozen=True, slots=True)
class Rejected:
    """A NAK reason; `retry_after` is set for rate limiting (the hint is also in `reason`)."""

    reason: str
    retry_after: timedelta | None = None
    compromised: bool = False  # the signing key leaked its private key: tell the operator


class SessionState:
    """One connection: sequence numbers both ways, the clients it speaks for and those it is
    authenticated for, the challenges issued to it, its own rate limiter."""

    __slots__ = (
        "authenticated_clients",
        "challenges",
        "client",
        "full_signing",
        "last_in_seq",
        "limiter",
        "out_seq",
        "quote_keys",
        "session_id",
        "source",
        "strikes",
    )

    def __init__(
        self,
        session_id: str,
        limiter: RateLimiter,
        full_signing: bool = False,
        strikes: RateLimiter | None = None,
        source: str = "",
    ) -> None:
        self.session_id = session_id
        self.limiter = limiter
        self.strikes = strikes or RateLimiter((GuardConfig().strike_limit,))  # refused frames
        self.source = source  # the peer's address (guard.py)
        self.client: ClientKey | None = None  # the client of the last accepted request
        self.authenticated_clients: set[ClientKey] = set()
        self.challenges: deque[str] = deque()
        self.full_signing = full_signing  # every frame signed over its whole content
        self.quote_keys: set[tuple[ClientKey, str]] = set()  # quotes asked here, unanswered
        self.last_in_seq = 0  # the first client message must carry 1
        self.out_seq = 0

    @property
    def authenticated(self) -> bool:
        """Authenticated for at least one client."""
        return bool(self.authenticated_clients)

    def is_authenticated(self, client: ClientKey) -> bool:
        return client in self.authenticated_clients

    @property
    def expected_seq(self) -> int:
        return self.last_in_seq + 1

    def next_out_seq(self) -> int:
        """seq_num for the next frame this session sends (ACK, NAK, response, resend)."""
        self.out_seq += 1
        return self.out_seq

    def check_sequence(self, seq_num: int) -> Rejected | None:
        if seq_num != self.expected_seq:
            # The reference's wording, so its clients' log scrapers keep working.
            return Rejected(f"Invalid sequence number: {seq_num}; Last valid: {self.last_in_seq}")
        return None
