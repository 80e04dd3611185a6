"""Per-session FIX protocol state, authentication, rate limits, fan-out and resend: pure.

The WebSocket server drives it per frame, with `now` from the injected clock:

    parsed = parse_request(frame)                    # WireError -> NAK
    verdict = hub.admit(session, parsed, now)        # Rejected -> NAK(reason); nothing advances
    verified = verify_request(parsed)                # signed types only -> NAK "Not authorised"
    verdict = hub.authorise(session, parsed, verified)  # replay, compromised key, session cap
    hub.accept(session, parsed, authenticated)       # seq advances; the client is authenticated
    ACK(ref_seq_num) ; engine.handle(parsed.request) # or hub.resend(...) / a Challenge

Checks run cheapest first and the signature (the expensive one) last, after the rate limits,
so a flood costs little. Only an ACKed message consumes a sequence number; every NAK carries
the last accepted seq_num as `ref_seq_num` (SPEC §5) and the refused one as `refused_seq_num`.

Sessions and clients (SPEC §5 Authentication). A session may carry requests for several
clients (chain_id, address): a reference front end asks for quotes for several addresses on
one socket. It is *authenticated for a client* only once it presented a valid signature that
spends an id the server never saw from that key: a new client_order_id, or a challenge the
server issued to this very session (`ChallengeRequest` → `Challenge {challenge}` → a
`ResendRequest` signed over it). A replayed signature is refused (replay.py) and so
authenticates nothing. Private responses (order acceptances, fills, invoices, and resends) go
only to sessions authenticated for their client; quote responses only to the session that
asked for that quote, so claiming an address in an unsigned quote yields nothing of its owner's.
The per-client session cap counts authenticated sessions only, checked after the signature.

Resend. Every business response gets a server-wide, strictly increasing `server_seq` (carried
in `standard_header.server_seq`) and is kept in its client's outbox (bounded in count and age).
A reconnecting client asks for a challenge, then sends a signed `ResendRequest
{last_server_seq, challenge}`: everything of that client after it is sent again with
`poss_dup: true` and the new session's seq_nums, and everything up to it is dropped (the
request is the acknowledgement). If some of the missed responses were already evicted, the
batch says so (`complete=False`) so the server can tell the client to reconcile. ACK/NAK are
replies to one session's frames and are never stored. The outbox is in memory here; with a
store, `serve` numbers engine messages durably and rebuilds it on start (store/fix_outbox.py).

Rate limits: sliding windows (engine.throttle) charged by message weight (orders weigh more
than quotes; the reference's table); who pays for a frame is quotas.py's to say.

Memory: the outbox keeps at most `outbox_total` responses across clients, and quote answers
(prices of the moment, answers to unsigned requests) are numbered but never stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Final

from indexmaker.core.ids import ClientKey
from indexmaker.engine.throttle import RateLimiter
from indexmaker.server.encoding import FullSigner, PreparedMessage, Stamp, encode_prepared
from indexmaker.server.guard import Guard
from indexmaker.server.messages import ParsedRequest
from indexmaker.server.outbox import Outbox, ResendBatch, StoredResponse, server_seq_epoch
from indexmaker.server.quotas import Quotas
from indexmaker.server.redemption_wire import REDEMPTION_TYPES
from indexmaker.server.replay import SignatureLedger
from indexmaker.server.session_state import Rejected, SessionConfig, SessionState
from indexmaker.server.signing import Verified
from indexmaker.server.wire_values import (
    CANCEL_INDEX_ORDER,
    CANCEL_INDEX_QUOTE,
    CANCEL_QUOTE_REQUEST,
    INDEX_ORDER_FILL,
    INDEX_QUOTE_RESPONSE,
    MINT_INVOICE,
    NEW_INDEX_ORDER,
    NEW_INDEX_QUOTE,
    NEW_QUOTE_REQUEST,
    REPLAYED_SIGNATURE,
    RESEND_REQUEST,
)

__all__ = [  # the outbox's and session_state's names stay importable from here (one import point)
    "Outbox",
    "Rejected",
    "ResendBatch",
    "SessionConfig",
    "SessionHub",
    "SessionState",
    "StoredResponse",
    "server_seq_epoch",
]

PRIVATE_RESPONSE_TYPES: Final = frozenset(
    {NEW_INDEX_ORDER, CANCEL_INDEX_ORDER, INDEX_ORDER_FILL, MINT_INVOICE, *REDEMPTION_TYPES}
)
QUOTE_RESPONSE_TYPES: Final = frozenset({NEW_INDEX_QUOTE, INDEX_QUOTE_RESPONSE, CANCEL_INDEX_QUOTE})
_QUOTE_REQUEST_TYPES: Final = frozenset({NEW_QUOTE_REQUEST, CANCEL_QUOTE_REQUEST})
MAX_OPEN_CHALLENGES: Final = 4  # per session: issued, not yet spent (oldest first out)


class SessionHub:
    """All sessions of the server: admission (seq, time, limits), fan-out and resend."""

    def __init__(
        self,
        config: SessionConfig | None = None,
        outbox: Outbox | None = None,
        last_server_seq: int = 0,
        full_signer: FullSigner | None = None,
    ) -> None:
        self.config = config or SessionConfig()
        cfg = self.config
        self.outbox = outbox or Outbox(
            cfg.outbox_capacity, cfg.outbox_retention, last_server_seq, total=cfg.outbox_total
        )
        self.guard = Guard(cfg.unauthenticated)
        self.quotas = Quotas(
            cfg.weights,
            cfg.client_limits,
            cfg.global_limits,
            cfg.max_tracked_clients,
            self.guard,
            cfg.unauthenticated.unreadable_weight,
        )
        self.signatures = SignatureLedger(
            cfg.max_signing_keys, cfg.max_spent_ids_per_key, cfg.max_r_per_key
        )
        self._full_signer = full_signer
        self._sessions: dict[str, SessionState] = {}
        # Authenticated sessions per client: where its private responses go.
        self._by_client: dict[ClientKey, dict[str, SessionState]] = {}
        # (client, client_quote_id) -> the session that asked: where its quote responses go.
        self._quote_asker: dict[tuple[ClientKey, str], str] = {}

    # ------------------------------------------------------------ lifecycle

    def open_session(
        self, session_id: str, full_signing: bool = False, source: str = ""
    ) -> SessionState:
        if session_id in self._sessions:
            raise ValueError(f"session {session_id!r} is already open")
        limiter = RateLimiter(self.config.session_limits)
        strikes = self.guard.new_strike_counter()
        session = SessionState(session_id, limiter, full_signing, strikes, source)
        self._sessions[session_id] = session
        return session

    def close_session(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return
        for client in session.authenticated_clients:
            peers = self._by_client.get(client)
            if peers is not None:
                peers.pop(session_id, None)
                if not peers:
                    del self._by_client[client]
        for key in session.quote_keys:
            if self._quote_asker.get(key) == session_id:
                del self._quote_asker[key]

    def open_sessions(self) -> int:
        """Sessions open in the hub (a session being closed has already left it)."""
        return len(self._sessions)

    def sessions_of(self, client: ClientKey) -> Iterator[SessionState]:
        """The sessions authenticated for `client`."""
        return iter(tuple(self._by_client.get(client, {}).values()))

    def full_signer_for(self, session: SessionState) -> FullSigner | None:
        return self._full_signer if session.full_signing else None

    # ------------------------------------------------------------ incoming

    def admit(
        self, session: SessionState, request: ParsedRequest, now: datetime
    ) -> Rejected | None:
        """Every check short of the signature; charges the rate limits only when admitted."""
        rejected = session.check_sequence(request.seq_num)
        if rejected is not None:
            return rejected
        skew = abs((now - request.timestamp).total_seconds())
        if skew > self.config.timestamp_window.total_seconds():
            return Rejected(f"Timestamp too far off: {skew:.1f} s from server time")
        return self._charge(session, request, now)

    def replayed(self, request: ParsedRequest) -> Rejected | None:
        """A reference-form signature whose (msg_type, id) its address already spent: refused
        before the signature is verified, so replay floods cost a lookup, not a verify."""
        if request.nonce is not None or request.msg_type == RESEND_REQUEST:
            return None  # nonce / challenge ids: `authorise` decides, with its own reasons
        if self.signatures.is_spent(request.client[1], (request.msg_type, request.signed_id)):
            return Rejected(
                f"{REPLAYED_SIGNATURE}: {request.msg_type} {request.signed_id!r} was already "
                "used by this key; a signature authorises one request (sign a new id or nonce)"
            )
        return None

    def issue_challenge(self, session: SessionState, challenge: str) -> None:
        """Remember a nonce sent to this session; a ResendRequest signed over it spends it."""
        session.challenges.append(challenge)
        if len(session.challenges) > MAX_OPEN_CHALLENGES:
            session.challenges.popleft()

    def authorise(
        self, session: SessionState, request: ParsedRequest, verified: Verified
    ) -> Rejected | None:
        """After the signature verified: is it unspent (one use, SPEC §5 Replay), is its key
        sound, may this session be authenticated for the client? Changes nothing if refused;
        if admitted, spends the signature (call `accept` next)."""
        address = request.client[1]
        if request.msg_type == RESEND_REQUEST and request.signed_id not in session.challenges:
            return Rejected(
                "challenge: not issued to this session or already used; "
                "send a ChallengeRequest and sign the Challenge it returns"
            )
        spent_id: tuple[str, ...] = (request.msg_type, request.signed_id)
        if verified.extended and request.nonce is not None:
            spent_id = (*spent_id, request.nonce)
        reason = self.signatures.check(address, spent_id, verified.r, verified.digest)
        if reason is not None:
            return Rejected(reason, compromised=self.signatures.is_compromised(address))
        client = request.client
        if not session.is_authenticated(client):
            peers = self._by_client.get(client, {})
            if len(peers) >= self.config.max_sessions_per_client:
                return Rejected("too many sessions for this client")
        self.signatures.spend(address, spent_id, verified.r, verified.digest, request.request)
        if request.msg_type == RESEND_REQUEST:
            session.challenges.remove(request.signed_id)
        return None

    def accept(
        self,
        session: SessionState,
        request: ParsedRequest,
        authenticated: bool,
        now: datetime | None = None,
    ) -> None:
        """After ACK: advance the seq; `authenticated` (the request passed `authorise`) makes
        the session a receiver of that client's private responses, and a signed request is
        charged to its client and the global window here (given `now`), once it is known to
        come from that client."""
        session.last_in_seq = request.seq_num
        client = request.client
        if authenticated and now is not None and request.needs_signature:
            self.quotas.charge_verified(client, request.msg_type, now)
        session.client = client
        if authenticated and client not in session.authenticated_clients:
            session.authenticated_clients.add(client)
            self._by_client.setdefault(client, {})[session.session_id] = session
        if request.msg_type in _QUOTE_REQUEST_TYPES:
            key = (client, request.signed_id)
            self._quote_asker[key] = session.session_id
            session.quote_keys.add(key)

    def refused(self, session: SessionState, now: datetime) -> bool:
        """A frame refused for what it is (unreadable, invalid, unauthorised, replayed, out of
        sequence): it costs its session and its source a little, and counts as a strike.
        True when the session has struck out and must be closed."""
        return self.quotas.refused(session.limiter, session.strikes, session.source, now)

    def _charge(
        self, session: SessionState, request: ParsedRequest, now: datetime
    ) -> Rejected | None:
        client = request.client
        limited = self.quotas.admit(
            session.limiter,
            session.source,
            client,
            request.msg_type,
            request.needs_signature,
            session.is_authenticated(client),
            now,
        )
        return Rejected(limited.reason, limited.retry_after) if limited is not None else None

    def tracked_clients(self) -> int:
        return self.quotas.tracked_clients()

    # ------------------------------------------------------------ outgoing

    def deliver(
        self,
        client: ClientKey,
        message: PreparedMessage,
        now: datetime,
        server_seq: int | None = None,
    ) -> list[tuple[str, bytes]]:
        """Store a business response and frame it for each eligible open session: a quote
        response for the session that asked, anything else for every session authenticated
        for the client. `server_seq`: its durable number, if the caller has one."""
        if message.msg_type in QUOTE_RESPONSE_TYPES:
            # Prices of the moment: numbered like the rest (a client's cursor and restart
            # detection see them) but never stored for a resend.
            server_seq = self.outbox.number(server_seq)
        else:
            server_seq = self.outbox.store(client, message, now, server_seq).server_seq
        if message.msg_type in QUOTE_RESPONSE_TYPES:
            asker = self._quote_session(client, message)
            targets: tuple[SessionState, ...] = (asker,) if asker is not None else ()
        else:
            targets = tuple(self._by_client.get(client, {}).values())
        frames = []
        for session in targets:
            stamp = Stamp(session.next_out_seq(), now, server_seq=server_seq)
            full = self.full_signer_for(session)
            frames.append((session.session_id, encode_prepared(message, client, stamp, full)))
        return frames

    def restore(
        self, client: ClientKey, message: PreparedMessage, at: datetime, server_seq: int
    ) -> None:
        """Keep a response sent by an earlier life of the process, under its number, for
        resends (store/fix_outbox.py); quote responses are never kept."""
        if message.msg_type not in QUOTE_RESPONSE_TYPES:
            self.outbox.store(client, message, at, server_seq)

    def _quote_session(self, client: ClientKey, message: PreparedMessage) -> SessionState | None:
        key = (client, message.signed_id)
        session_id = self._quote_asker.get(key)
        session = self._sessions.get(session_id) if session_id is not None else None
        final = message.msg_type != NEW_INDEX_QUOTE or message.body.get("status") != "new"
        if final and session_id is not None:  # answered, refused or cancelled: forget it
            del self._quote_asker[key]
            if session is not None:
                session.quote_keys.discard(key)
        return session

    def resend(
        self,
        session: SessionState,
        last_server_seq: int,
        now: datetime,
        client: ClientKey | None = None,
    ) -> tuple[list[bytes], bool]:
        """Frames of what `client` (default: the session's last) missed after
        `last_server_seq`, and whether that is everything (False: some were evicted; the
        client should reconcile). Nothing unless the session is authenticated for it."""
        client = client or session.client
        if client is None or not session.is_authenticated(client):
            return [], True
        self.outbox.acknowledge(client, last_server_seq)
        batch = self.outbox.since(client, last_server_seq, now)
        full = self.full_signer_for(session)
        frames = []
        for stored in batch.responses:
            stamp = Stamp(session.next_out_seq(), now, server_seq=stored.server_seq, poss_dup=True)
            frames.append(encode_prepared(stored.message, client, stamp, full))
        return frames, batch.complete
