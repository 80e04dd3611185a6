"""The signature steps of a signed request (SPEC §5 "Replay", "Authentication"), cheapest
first: a reference-form id its key already spent is refused by a lookup before any
verification; then the signature is verified (NOT_AUTHORISED, with the cause only when the
server requires extended signatures and the request lacks a nonce, so the client can fix it);
then the hub decides whether it may authenticate the session (one use, a sound key, the
per-client session cap). A key caught reusing its ECDSA nonce is reported to the operator."""

from __future__ import annotations

import logging

from indexmaker.observability.logging import log_event
from indexmaker.server.messages import ParsedRequest
from indexmaker.server.session import Rejected, SessionHub, SessionState
from indexmaker.server.signing import NOT_AUTHORISED, SignatureError, verify_request


def authenticate(
    hub: SessionHub,
    session: SessionState,
    request: ParsedRequest,
    *,
    require_extended: bool,
    accept_legacy_sha256: bool,
) -> Rejected | None:
    """Why the signed `request` is refused (None: authorised, and its signature spent)."""
    replay = hub.replayed(request)
    if replay is not None:
        return replay
    verified = verify_request(
        request, require_extended=require_extended, accept_legacy_sha256=accept_legacy_sha256
    )
    if isinstance(verified, SignatureError):
        if require_extended and request.nonce is None:
            return Rejected(f"{NOT_AUTHORISED}: {verified}")
        return Rejected(NOT_AUTHORISED)
    verdict = hub.authorise(session, request, verified)
    if verdict is not None and verdict.compromised:
        # The operator must know: this wallet's private key is public now.
        log_event(
            "client_key_compromised",
            logging.ERROR,
            address=request.client[1],
            chain_id=request.client[0],
            session=session.session_id,
        )
    return verdict
