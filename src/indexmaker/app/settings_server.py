"""The settings file's `[server]` section (FIX/JSON server, app/settings.py): paths, limits,
sessions, the unauthenticated guard's windows and the anti-bot gate."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, model_validator

from indexmaker.app.settings_types import DAY as _DAY
from indexmaker.app.settings_types import (
    AmountOrZero,
    ChainId,
    Count,
    PositiveSeconds,
    RateLimitSettings,
    UrlPath,
)
from indexmaker.app.settings_types import SettingsModel as _Model
from indexmaker.app.settings_types import unique_names as _unique_names
from indexmaker.app.settings_types import window_field as _window
from indexmaker.app.settings_types import windows_field as _windows
from indexmaker.server.wire_values import (
    CANCEL_INDEX_ORDER,
    CANCEL_QUOTE_REQUEST,
    CHALLENGE_REQUEST,
    NEW_INDEX_ORDER,
    NEW_QUOTE_REQUEST,
    RESEND_REQUEST,
)

_WEIGHED = (
    NEW_INDEX_ORDER,
    CANCEL_INDEX_ORDER,
    NEW_QUOTE_REQUEST,
    CANCEL_QUOTE_REQUEST,
    RESEND_REQUEST,
    CHALLENGE_REQUEST,
)


class UnauthenticatedSettings(_Model):
    """What traffic nobody authenticated may cost (server/guard.py): per source address,
    all of it together (below the global windows), and strikes per session."""

    source_limits: list[RateLimitSettings] = _windows(
        ("source_10s", 500, 10), ("source_1m", 10_000, 60)
    )
    anonymous_limits: list[RateLimitSettings] = _windows(
        ("anonymous_10s", 1_000, 10), ("anonymous_1m", 50_000, 60)
    )
    strike_limit: RateLimitSettings = _window("strikes_10s", 20, 10)
    strike_out_limit: RateLimitSettings = _window("strike_outs_1m", 3, 60)
    unreadable_weight: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    max_tracked_sources: Count = 10_000

    @model_validator(mode="after")
    def _names(self) -> UnauthenticatedSettings:
        _unique_names(self.source_limits, "source_limits")
        _unique_names(self.anonymous_limits, "anonymous_limits")
        return self


class SessionSettings(_Model):
    """FIX session limits (SPEC §5): per session, per client and global windows."""

    timestamp_window: PositiveSeconds = Decimal(60)
    max_sessions_per_client: Count = 8
    session_limits: list[RateLimitSettings] = _windows(
        ("session_10s", 100, 10), ("session_1m", 2_000, 60)
    )
    client_limits: list[RateLimitSettings] = _windows(
        ("client_10s", 200, 10), ("client_1m", 10_000, 60), ("client_1d", 100_000, _DAY)
    )
    global_limits: list[RateLimitSettings] = _windows(
        ("global_10s", 2_000, 10), ("global_1m", 100_000, 60)
    )
    weights: dict[str, Annotated[int, Field(ge=0, le=1_000_000)]] = Field(
        default_factory=lambda: {
            NEW_INDEX_ORDER: 10,
            CANCEL_INDEX_ORDER: 5,
            NEW_QUOTE_REQUEST: 5,
            CANCEL_QUOTE_REQUEST: 3,
            RESEND_REQUEST: 1,
            CHALLENGE_REQUEST: 1,
        }
    )
    outbox_capacity: Count = 1_000
    outbox_retention: PositiveSeconds = Decimal(_DAY)
    outbox_total: Count = 100_000
    max_tracked_clients: Count = 100_000
    # One-use signatures (SPEC §5 Replay): signing keys remembered, and per key its spent
    # ids and signature r values (for the nonce-reuse check); oldest out first.
    max_signing_keys: Count = 100_000
    max_spent_ids_per_key: Count = 10_000
    max_r_per_key: Count = 1_000
    unauthenticated: UnauthenticatedSettings = Field(default_factory=UnauthenticatedSettings)

    @model_validator(mode="after")
    def _names(self) -> SessionSettings:
        unknown = sorted(set(self.weights) - set(_WEIGHED))
        if unknown:
            raise ValueError(f"weights: unknown message types {unknown}; known: {list(_WEIGHED)}")
        _unique_names(self.session_limits, "session_limits")
        _unique_names(self.client_limits, "client_limits")
        _unique_names(self.global_limits, "global_limits")
        return self


class AntiBotSettings(_Model):
    """New orders need `min_balance` of `token` ("usdc": the chain's collateral token, or
    "native": ETH) on the client's chain (server/balance_gate.py); balances cached for `ttl`
    seconds. Off by default: the in-process simulated chain has no wallets to read."""

    enabled: bool = False
    token: Literal["usdc", "native"] = "usdc"
    min_balance: AmountOrZero = Decimal(1)
    ttl: PositiveSeconds = Decimal(30)
    failure_ttl: PositiveSeconds = Decimal(1)  # a failed read refuses for this long
    max_entries: Count = 100_000  # addresses cached (least recently used out first)


class ServerSettings(_Model):
    """`[server]`: where the FIX/JSON server listens (host, port, paths), frame and buffer
    sizes in bytes, durations in seconds, session caps, accepted chain ids and signatures."""

    host: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:_-]+$")] = (
        "127.0.0.1"
    )
    port: Annotated[int, Field(ge=0, le=65535)] = 3000  # 0: any free port
    path: UrlPath = "/ws"
    quote_path: UrlPath | None = None
    order_path: UrlPath | None = None
    max_frame_bytes: Annotated[int, Field(ge=512, le=16 * 1024 * 1024)] = 16 * 1024
    heartbeat: PositiveSeconds = Decimal(20)
    max_sessions: Count = 10_000
    send_buffer_limit: Annotated[int, Field(ge=64 * 1024, le=1024**3)] = 1024 * 1024
    send_buffer_total: Annotated[int, Field(ge=64 * 1024, le=64 * 1024**3)] = 64 * 1024 * 1024
    send_buffer_floor: Annotated[int, Field(ge=1024, le=1024**3)] = 64 * 1024
    socket_send_buffer: Annotated[int, Field(ge=4096, le=64 * 1024 * 1024)] | None = 256 * 1024
    max_unauthenticated_sessions: Count = 5_000
    max_connections_per_source: Count = 64
    unauthenticated_idle: PositiveSeconds = Decimal(60)
    close_grace: PositiveSeconds = Decimal(2)
    allowed_chain_ids: list[ChainId] | None = None
    # Refuse requests signed over the reference text {"msg_type","id"} only (SPEC §5 Replay).
    require_extended_signatures: bool = False
    # Also accept signatures over sha256(text): the reference's own test client signs so.
    accept_legacy_sha256: bool = False
    session: SessionSettings = Field(default_factory=SessionSettings)
    antibot: AntiBotSettings = Field(default_factory=AntiBotSettings)

    @model_validator(mode="after")
    def _distinct_paths(self) -> ServerSettings:
        paths = [p for p in (self.path, self.quote_path, self.order_path) if p is not None]
        if len(set(paths)) != len(paths):
            raise ValueError(f"path, quote_path and order_path must differ, got {paths}")
        return self
