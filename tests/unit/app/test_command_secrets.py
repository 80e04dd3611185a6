"""app/command_runner.py: a port's error that quotes a secret (an RPC client's error naming
its URL with the provider's key) reaches the core, and so the journal and alerts, masked."""

from __future__ import annotations

import asyncio
import secrets
from decimal import Decimal
from typing import Any

from indexmaker.app.command_runner import CommandRunner
from indexmaker.app.runtime_config import RuntimeLimits
from indexmaker.core.chain_events import MintFailed, MintIndex
from indexmaker.core.ids import PaymentId, Symbol, client_key
from indexmaker.observability.logging import MASK, mask_secrets, register_secret


class _FailingChain:
    """A chain port whose mint fails the way web3's HTTP provider does, quoting its URL."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def mint(self, command: MintIndex) -> None:
        raise ConnectionError(f"Max retries exceeded with url: {self.url}")


async def test_a_port_error_reaches_the_core_with_secrets_masked() -> None:
    key = secrets.token_hex(16)
    register_secret(key)
    url = f"https://rpc.example.invalid/v2/{key}"
    inputs: list[Any] = []

    async def put(event: Any) -> None:
        inputs.append(event)

    runner = CommandRunner(
        venue=None,  # type: ignore[arg-type]
        chain=_FailingChain(url),  # type: ignore[arg-type]
        bridges={},
        limits=RuntimeLimits(),
        put=put,
        deliver=lambda client, message: None,
    )
    mint = MintIndex(
        PaymentId("P1"), client_key(8453, "0x" + "a" * 40), Symbol("SY100"), Decimal(1)
    )
    runner.carry_out(mint)
    for _ in range(100):  # bounded: the task fails at once
        if inputs:
            break
        await asyncio.sleep(0.01)
    await runner.stop()
    (failed,) = inputs
    assert isinstance(failed, MintFailed) and failed.retryable
    assert key not in failed.reason and MASK in failed.reason
    assert "rpc.example.invalid" in failed.reason  # the host stays readable
    assert mask_secrets("nothing secret here") == "nothing secret here"
