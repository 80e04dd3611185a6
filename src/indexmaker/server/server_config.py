"""Settings of the FIX/JSON WebSocket server (SPEC §5); [server] in the service's config."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from indexmaker.server.balance_gate import AntiBotConfig
from indexmaker.server.session import SessionConfig


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 3000
    path: str = "/ws"  # every message type
    quote_path: str | None = None  # optional quote-only endpoint (reference deployment)
    order_path: str | None = None  # optional order-only endpoint
    max_frame_bytes: int = 16 * 1024
    heartbeat: timedelta = timedelta(seconds=20)  # idle ping; no pong in time closes
    max_sessions: int = 10_000
    send_buffer_limit: int = 1024 * 1024  # unsent bytes before a slow session is closed
    send_buffer_total: int = 64 * 1024 * 1024  # unsent bytes across sessions (connection.py)
    send_buffer_floor: int = 64 * 1024  # what any session may queue even past the total
    max_unauthenticated_sessions: int = 5_000  # beyond it, the least recently active goes
    max_connections_per_source: int = 64  # unauthenticated connections per peer address
    unauthenticated_idle: timedelta = timedelta(seconds=60)  # no accepted message: closed
    close_grace: timedelta = timedelta(seconds=2)  # for a close handshake before an abort
    # Kernel send buffer per connection (SO_SNDBUF; None: the OS's autotuning, up to several
    # MB per socket): bounds what a peer that never reads can hold outside our process.
    socket_send_buffer: int | None = 256 * 1024
    allowed_chain_ids: frozenset[int] | None = None
    # Refuse requests signed over the reference text {"msg_type","id"} (SPEC §5 Replay).
    require_extended_signatures: bool = False
    # Also accept signatures over sha256(text): the reference's test client signs that way.
    accept_legacy_sha256: bool = False
    session: SessionConfig = field(default_factory=SessionConfig)
    antibot: AntiBotConfig = field(default_factory=AntiBotConfig)
