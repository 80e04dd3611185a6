"""One FIX/JSON frame's way from the socket to the engine (SPEC §5), for the server
(ws_server.py): parse → admit (session, seq, timestamp, rate limits) → signature → authorise
(one use, key sound, session cap) → anti-bot balance (balance_gate.py) → ACK → the engine, or
a NAK naming why. Every refusal counts against its session and source (a strike); a session
that strikes out is closed. Replies are numbered only once queued on the connection.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime

from indexmaker.core.clock import Clock
from indexmaker.core.events import ClientRequest, NewIndexOrderRequest
from indexmaker.core.ids import ClientKey
from indexmaker.server.authentication import authenticate
from indexmaker.server.balance_gate import MISS, BalanceGate
from indexmaker.server.connection import Connection
from indexmaker.server.encoding import (
    PreparedMessage,
    Stamp,
    encode_prepared,
    prepare_ack,
    prepare_challenge,
    prepare_nak,
)
from indexmaker.server.messages import (
    ChallengeRequest,
    ParsedRequest,
    ResendRequest,
    WireError,
    WireLimits,
    parse_request,
)
from indexmaker.server.server_config import ServerConfig
from indexmaker.server.session import SessionHub
from indexmaker.server.signing import Signer
from indexmaker.server.unauthenticated import UnauthenticatedSessions

TOO_SLOW = "too slow: unsent bytes over the limit"
# (connection, close code, reason, flush first): the server's way to close a session.
Close = Callable[[Connection, int, str, bool], None]


class FrameHandler:
    """Takes each received frame of a connection through the steps of the module docstring;
    `submit` hands an admitted request to the engine, `close` ends a session."""

    def __init__(
        self,
        config: ServerConfig,
        hub: SessionHub,
        signer: Signer,
        clock: Clock,
        submit: Callable[[ClientRequest], None],
        unauthenticated: UnauthenticatedSessions,
        close: Close,
    ) -> None:
        self.config = config
        self.hub = hub
        self.signer = signer
        self._clock = clock
        self._submit = submit
        self._unauthenticated = unauthenticated
        self._close = close
        self._limits = WireLimits(config.max_frame_bytes, config.allowed_chain_ids)
        # Anti-bot: new orders need a minimum balance on the client's chain (balance_gate.py).
        self.balance_gate: BalanceGate | None = None

    def on_frame(
        self,
        connection: Connection,
        data: bytes,
        only: frozenset[str] | None,
        exclude: frozenset[str],
    ) -> ParsedRequest | None:
        """Handle one frame; returns it instead when the anti-bot gate must read the client's
        balance first (the caller awaits `after_balance`)."""
        now = self._clock.now()
        state = connection.state
        parsed = parse_request(data, self._limits)
        if isinstance(parsed, WireError):
            self._refuse(connection, parsed.ref_seq_num, parsed.reason, now, parsed.client)
            return None
        if (only is not None and parsed.msg_type not in only) or parsed.msg_type in exclude:
            reason = f"{parsed.msg_type} is not served here"
            self._refuse(connection, parsed.seq_num, reason, now, parsed.client)
            return None
        verdict = self.hub.admit(state, parsed, now)
        if verdict is not None:
            if verdict.retry_after is not None:  # over a rate limit: a NAK with a hint
                self._nak(connection, parsed.seq_num, verdict.reason, parsed.client)
            else:
                self._refuse(connection, parsed.seq_num, verdict.reason, now, parsed.client)
            return None
        authenticated = parsed.needs_signature
        if authenticated:
            refused = authenticate(
                self.hub,
                state,
                parsed,
                require_extended=self.config.require_extended_signatures,
                accept_legacy_sha256=self.config.accept_legacy_sha256,
            )
            if refused is not None:
                self._refuse(connection, parsed.seq_num, refused.reason, now, parsed.client)
                return None
            gate = self.balance_gate
            if gate is not None and isinstance(parsed.request, NewIndexOrderRequest):
                balance = gate.verdict(parsed.client)
                if balance is MISS:
                    return parsed
                if isinstance(balance, str):
                    self._refuse(connection, parsed.seq_num, balance, now, parsed.client)
                    return None
        self._admit(connection, parsed, authenticated, now)
        return None

    async def after_balance(self, connection: Connection, parsed: ParsedRequest) -> None:
        """The anti-bot gate's read for a signed order, then its NAK or its admission."""
        assert self.balance_gate is not None
        reason = await self.balance_gate.fetch(parsed.client)
        if connection.closing:
            return
        now = self._clock.now()
        if reason is not None:
            self._refuse(connection, parsed.seq_num, reason, now, parsed.client)
        else:
            self._admit(connection, parsed, True, now)

    def _admit(
        self, connection: Connection, parsed: ParsedRequest, authenticated: bool, now: datetime
    ) -> None:
        state = connection.state
        self.hub.accept(state, parsed, authenticated, now)
        self._unauthenticated.active(connection)
        self._send(connection, prepare_ack(parsed.seq_num, self.signer), parsed.client)
        self._dispatch(connection, parsed)

    def _dispatch(self, connection: Connection, parsed: ParsedRequest) -> None:
        request = parsed.request
        if isinstance(request, ChallengeRequest):
            challenge = secrets.token_urlsafe(18)  # 144 bits, 24 characters
            self.hub.issue_challenge(connection.state, challenge)
            self._send(connection, prepare_challenge(challenge, self.signer), parsed.client)
            return
        if isinstance(request, ResendRequest):
            frames, complete = self.hub.resend(
                connection.state, request.last_server_seq, self._clock.now(), request.client
            )
            for n, frame in enumerate(frames):
                # A resend batch is bounded by the outbox's per-client capacity; it is taken
                # whole by a connection with nothing queued (a fresh reconnect).
                if not connection.send(frame, force=True):
                    connection.state.out_seq -= len(frames) - n
                    self._close(connection, 1008, TOO_SLOW, False)
                    return
            if not complete:
                # Not a refusal: the ResendRequest was accepted (its ACK went first), so no
                # refused_seq_num; ref_seq_num is its own seq, the last accepted.
                self._nak(
                    connection,
                    None,
                    "resend incomplete: some responses expired; reconcile your orders",
                    parsed.client,
                )
            return
        self._submit(request)

    def _refuse(
        self,
        connection: Connection,
        refused_seq_num: int | None,
        reason: str,
        now: datetime,
        client: ClientKey | None = None,
    ) -> None:
        """NAK a frame refused for what it is; it counts against the limits and as a strike."""
        struck_out = self.hub.refused(connection.state, now)
        self._nak(connection, refused_seq_num, reason, client)
        if struck_out:
            self.hub.guard.struck_out(connection.source, now)
            self._close(connection, 1008, "too many refused frames", True)

    def _nak(
        self,
        connection: Connection,
        refused_seq_num: int | None,
        reason: str,
        client: ClientKey | None = None,
    ) -> None:
        """A NAK of a frame that did not advance the sequence (SPEC §5): `ref_seq_num` is the
        last accepted seq_num, where reference clients continue; the refused one is named in
        the reason and in `refused_seq_num`. Its signature depends on `ref_seq_num` alone, so
        refusals are served from the signer's cache (cheap, whatever the peer sends)."""
        state = connection.state
        if refused_seq_num is not None and not reason.startswith("Invalid sequence number"):
            reason = f"{reason} (seq_num {refused_seq_num} refused)"
        nak = prepare_nak(state.last_in_seq, reason, self.signer, refused_seq_num)
        self._send(connection, nak, client or state.client)

    def _send(
        self, connection: Connection, message: PreparedMessage, client: ClientKey | None
    ) -> None:
        """Number and queue one reply; a session too far behind is closed instead (and the
        frame is not numbered)."""
        state = connection.state
        stamp = Stamp(state.out_seq + 1, self._clock.now())
        full = self.hub.full_signer_for(state)
        if connection.send(encode_prepared(message, client, stamp, full)):
            state.next_out_seq()
        elif not connection.closing:
            self._close(connection, 1008, TOO_SLOW, False)
