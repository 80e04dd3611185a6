"""ECDSA nonce reuse (issue 8): the reference's test client signs every message with the same
r, so its user's private key can be computed from two of its frames. The server refuses such
a signature, tells the client why, tells the operator (an ERROR log line), and refuses the key
from then on. Over real sockets; the signatures are made here with a chosen k."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from eth_account import Account
from eth_keys.backends.native.jacobian import fast_multiply
from eth_keys.constants import SECPK1_G, SECPK1_N

from indexmaker.core.ids import ClientOrderId
from indexmaker.server.signing import eip191_digest
from integration.test_protocol import ORDER, Live, fast_config, start_live


@pytest.fixture
async def live() -> AsyncIterator[Live]:
    live = await start_live(fast_config())
    try:
        yield live
    finally:
        await live.http.close()
        await live.stop()


def sign_with_k(key: bytes, text: str, k: int) -> str:
    """r‖s over the EIP-191 digest of `text` with the nonce k (low-s), as a broken signer."""
    z = int.from_bytes(eip191_digest(text), "big")
    d = int.from_bytes(key, "big")
    r = fast_multiply(SECPK1_G, k)[0] % SECPK1_N
    s = pow(k, -1, SECPK1_N) * (z + r * d) % SECPK1_N
    s = min(s, SECPK1_N - s)
    return "0x" + r.to_bytes(32, "big").hex() + s.to_bytes(32, "big").hex()


def recover_key(z1: int, s1: int, z2: int, s2: int, r: int) -> int:
    """What anyone holding two such frames can do (up to the sign of s, as low-s hides it)."""
    for a in (s1, SECPK1_N - s1):
        for b in (s2, SECPK1_N - s2):
            if a == b:
                continue
            k = (z1 - z2) * pow(a - b, -1, SECPK1_N) % SECPK1_N
            yield (a * k - z1) * pow(r, -1, SECPK1_N) % SECPK1_N


async def test_a_repeated_r_is_refused_and_the_key_retired(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    account = Account.create()
    key = bytes(account.key)
    wire = await live.connect(account)
    k = 0x1234567890ABCDEF  # the same nonce for every signature, as the broken client does

    def order(cid: str) -> dict[str, object]:
        frame = wire.build("NewIndexOrder", {"client_order_id": cid, **ORDER})
        text = '{"msg_type":"NewIndexOrder","id":"' + cid + '"}'
        frame["standard_trailer"]["signature"] = [sign_with_k(key, text, k)]
        return frame

    first = order("k-1")
    await wire.send(first)
    await wire.expect("ACK", ref_seq_num=1)
    wire.seq = 1
    second = order("k-2")
    # The leak is real: the two frames give the private key away.
    sig1 = bytes.fromhex(first["standard_trailer"]["signature"][0][2:])
    sig2 = bytes.fromhex(second["standard_trailer"]["signature"][0][2:])
    r = int.from_bytes(sig1[:32], "big")
    assert r == int.from_bytes(sig2[:32], "big")
    z1 = int.from_bytes(eip191_digest('{"msg_type":"NewIndexOrder","id":"k-1"}'), "big")
    z2 = int.from_bytes(eip191_digest('{"msg_type":"NewIndexOrder","id":"k-2"}'), "big")
    s1, s2 = int.from_bytes(sig1[32:], "big"), int.from_bytes(sig2[32:], "big")
    assert int.from_bytes(key, "big") in set(recover_key(z1, s1, z2, s2, r))
    with caplog.at_level(logging.ERROR, logger="indexmaker"):
        reason = await wire.refused(second, "Signature nonce reuse", ref=1, refused_seq=2)
    assert "compromised" in reason
    assert any(
        "client_key_compromised" in rec.getMessage() and account.address.lower() in rec.getMessage()
        for rec in caplog.records
    ), [rec.getMessage() for rec in caplog.records]
    assert live.service.engine.orders.update(wire.key, ClientOrderId("k-2")) is None
    # From then on the key is refused even with a sound signature, on any session.
    other = await live.connect(account)
    await other.refused(
        other.build("NewIndexOrder", {"client_order_id": "k-3", **ORDER}), "compromised"
    )
    assert live.service.engine.orders.update(wire.key, ClientOrderId("k-3")) is None
