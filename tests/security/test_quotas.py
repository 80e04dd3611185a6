"""Issue 8, "Quotas nobody can steal": per-client limits count only authenticated sessions and
are charged after the signature verifies; unauthenticated traffic has its own windows below
the global one. Each attack of the issue, replayed over real loopback sockets."""

from __future__ import annotations

from datetime import timedelta

from indexmaker.engine.throttle import RateLimit
from indexmaker.server.guard import GuardConfig
from indexmaker.server.session import SessionConfig
from indexmaker.server.ws_server import ServerConfig

from .edge import HONEST_SOURCE, Wallet, peers, running_server

TEN_S = timedelta(seconds=10)


def config(**session: object) -> ServerConfig:
    return ServerConfig(port=0, session=SessionConfig(**session))  # type: ignore[arg-type]


def kind(frame: dict[str, object]) -> str:
    return str(frame["standard_header"]["msg_type"])  # type: ignore[index]


async def test_unsigned_quotes_naming_a_victim_do_not_lock_it_out() -> None:
    victim = Wallet()
    async with running_server(config()) as server, peers(server.url) as hostile:
        squatters = [await hostile() for _ in range(8)]
        for n, squatter in enumerate(squatters):  # each claims the victim's address
            reply = await squatter.request(
                lambda seq, n=n, s=squatter: s.wallet.quote(seq, f"s{n}", victim.address)
            )
            assert kind(reply) == "ACK"
        async with peers(server.url, HONEST_SOURCE) as honest:
            own = await honest(victim)
            reply = await own.request(lambda seq: victim.order(seq, "v-1"))
            assert kind(reply) == "ACK", reply


async def test_forged_orders_naming_a_victim_do_not_spend_its_rate_window() -> None:
    victim = Wallet()
    limits = {"client_limits": (RateLimit("client_10s", 30, TEN_S),)}  # three orders
    async with running_server(config(**limits)) as server, peers(server.url) as hostile:
        forgers = [await hostile() for _ in range(6)]  # 5 each: within their session windows
        refusals = []
        for n in range(30):  # signed by the forger's key, naming the victim's address
            forger = forgers[n % 6]
            reply = await forger.request(
                lambda seq, n=n, f=forger: f.wallet.order(seq, f"f{n}", victim.address)
            )
            refusals.append(reply.get("reason", "").startswith("Not authorised"))
        assert all(refusals) and len(refusals) == 30
        async with peers(server.url, HONEST_SOURCE) as honest:
            own = await honest(victim)
            for n in range(3):  # the victim's whole window is still its own
                reply = await own.request(lambda seq, n=n: victim.order(seq, f"v-{n}"))
                assert kind(reply) == "ACK", reply
            reply = await own.request(lambda seq: victim.order(seq, "v-3"))
            assert "Rate limit exceeded (client)" in reply["reason"]


async def test_anonymous_sockets_cannot_exhaust_the_global_window() -> None:
    limits = {
        "session_limits": (RateLimit("session_10s", 100, TEN_S),),
        "global_limits": (RateLimit("global_10s", 400, TEN_S),),
        "unauthenticated": GuardConfig(
            source_limits=(RateLimit("source_10s", 10_000, TEN_S),),
            anonymous_limits=(RateLimit("anonymous_10s", 200, TEN_S),),
        ),
    }
    async with running_server(config(**limits)) as server, peers(server.url) as hostile:
        # Thirty anonymous sockets, each quoting (weight 5) until refused: 30 × 100 > 400.
        scopes: dict[str, int] = {}
        for _ in range(30):
            anon = await hostile()
            for n in range(21):
                reply = await anon.request(lambda seq, n=n, a=anon: a.wallet.quote(seq, f"q{n}"))
                if kind(reply) == "NAK":
                    scope = reply["reason"].split("(")[1].split(")")[0]
                    scopes[scope] = scopes.get(scope, 0) + 1
                    break
        assert "global" not in scopes and scopes["unauthenticated"] >= 28
        async with peers(server.url, HONEST_SOURCE) as honest:
            for _ in range(2):  # 2 × 100 of weight: what the anonymous cap left in the global
                client = await honest()
                for n in range(10):
                    reply = await client.request(
                        lambda seq, n=n, c=client: c.wallet.order(seq, f"o{n}")
                    )
                    assert kind(reply) == "ACK", (n, reply)


async def test_unauthenticated_traffic_of_one_source_is_capped_per_source() -> None:
    limits = {"unauthenticated": GuardConfig(source_limits=(RateLimit("source_10s", 50, TEN_S),))}
    async with running_server(config(**limits)) as server, peers(server.url) as hostile:
        refused = None
        for _ in range(5):
            anon = await hostile()
            for n in range(5):
                reply = await anon.request(lambda seq, n=n, a=anon: a.wallet.quote(seq, f"q{n}"))
                if kind(reply) == "NAK":
                    refused = reply["reason"]
                    break
            if refused:
                break
        assert refused is not None and "Rate limit exceeded (source)" in refused
        async with peers(server.url, HONEST_SOURCE) as elsewhere:
            anon = await elsewhere()
            reply = await anon.request(lambda seq: anon.wallet.quote(seq, "q"))
            assert kind(reply) == "ACK"


async def test_a_replayed_signed_frame_is_refused_without_verifying_it_again() -> None:
    from unittest import mock

    from indexmaker.server import authentication

    async with running_server(config()) as server, peers(server.url) as hostile:
        victim = Wallet()
        own = await hostile(victim)
        captured = victim.order(1, "v-1")
        assert kind(await own.request(lambda seq: captured)) == "ACK"
        replayer = await hostile()
        with mock.patch.object(
            authentication, "verify_request", side_effect=AssertionError("verified a replay")
        ):
            reply = await replayer.request(lambda seq: captured)
        assert "Replayed signature" in reply["reason"]
