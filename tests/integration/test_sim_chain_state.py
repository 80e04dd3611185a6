"""The simulated chain outlives `serve` (sim/chain_state.py; issue 10's crash harness with the
sell side): a restarted service escrows tokens minted before its crash, and a mint, escrow,
burn or payout it sends again after the restart moves nothing twice and is answered with the
first outcome (before, a restart forgot every mint, so a sell after it was refused; and had
the chain been kept, a resent burn would have got no answer and the redemption would wait
for ever)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from indexmaker.core.events import (
    BurnConfirmed,
    BurnIndex,
    EngineInput,
    EscrowIndex,
    IndexEscrowed,
    IndexEscrowFailed,
    MintConfirmed,
    MintIndex,
    WithdrawalCompleted,
    WithdrawCollateral,
)
from indexmaker.core.ids import (
    Address,
    ClientKey,
    Designation,
    PaymentId,
    Symbol,
    WithdrawalId,
    client_key,
)
from indexmaker.sim.adapters import SimChainPort
from indexmaker.sim.chain import SimulatedChain
from indexmaker.sim.chain_state import STATE_FILE, ChainStateError, load_chain

D = Decimal
IDX = Symbol("IDX")
ALICE: ClientKey = client_key(42161, "0x" + "a1" * 20)
BOB: ClientKey = client_key(42161, "0x" + "b2" * 20)


class Life:
    """One life of the service's simulated chain: a port over the chain kept at `path`."""

    def __init__(self, path: Path) -> None:
        self.chain = SimulatedChain(mint_delay=timedelta(0))
        load_chain(self.chain, path)
        self.port = SimChainPort(self.chain)
        self.heard: list[EngineInput] = []

    async def __aenter__(self) -> Life:
        async def sink(event: EngineInput) -> None:
            self.heard.append(event)

        await self.port.start(sink)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.port.stop()

    async def answers(self, count: int) -> list[EngineInput]:
        for _ in range(200):  # bounded: each answer is one loop turn away
            if len(self.heard) >= count:
                break
            await asyncio.sleep(0.005)
        return self.heard


def _mint(pid: str, client: ClientKey, quantity: str) -> MintIndex:
    return MintIndex(PaymentId(pid), client, IDX, D(quantity))


async def test_a_restarted_chain_holds_what_was_minted_and_escrows_it(tmp_path: Path) -> None:
    path = tmp_path / STATE_FILE
    async with Life(path) as first:
        await first.port.mint(_mint("P1", ALICE, "2.5"))
        assert await first.answers(1) == [MintConfirmed(PaymentId("P1"))]
    async with Life(path) as second:  # the service was killed: a new process, the same chain
        assert second.chain.minted[(ALICE, IDX)] == D("2.5")
        await second.port.escrow(EscrowIndex(PaymentId("R1"), ALICE, IDX, D(2)))
        await second.port.escrow(EscrowIndex(PaymentId("R2"), BOB, IDX, D(1)))  # holds none
        answered = await second.answers(2)
    escrowed = next(e for e in answered if isinstance(e, IndexEscrowed))
    refused = next(e for e in answered if isinstance(e, IndexEscrowFailed))
    assert escrowed.escrow_id == "R1" and escrowed.tx_hash is not None
    assert refused.escrow_id == "R2" and "holds 0" in refused.reason
    assert second.chain.minted[(ALICE, IDX)] == D("0.5") and second.chain.custody[IDX] == 2


async def test_what_is_sent_again_after_a_restart_is_done_once_and_answered_as_the_first(
    tmp_path: Path,
) -> None:
    path = tmp_path / STATE_FILE
    mint = _mint("P1", ALICE, "3")
    escrow = EscrowIndex(PaymentId("R1"), ALICE, IDX, D(2))
    burn = BurnIndex(PaymentId("R1-B2"), ALICE, IDX, D("1.5"), escrow_id=PaymentId("R1"))
    payout = WithdrawCollateral(
        WithdrawalId("R1"), ALICE, Designation("EVM:BASE:USDC"), Address(ALICE[1]), D("98.5")
    )
    async with Life(path) as first:
        for command in (mint, escrow, burn, payout, escrow):  # the escrow's resend: no 2nd move
            await getattr(first.port, _CALL[type(command)])(command)
        before = await first.answers(5)
    kept = (dict(first.chain.done), first.chain.burned[IDX], first.chain.paid[ALICE])
    async with Life(path) as second:
        for command in (mint, escrow, burn, payout):
            await getattr(second.port, _CALL[type(command)])(command)
        after = await second.answers(4)
        assert (dict(second.chain.done), second.chain.burned[IDX], second.chain.paid[ALICE]) == (
            kept
        )
        assert second.chain.minted[(ALICE, IDX)] == D(1)  # escrowed once, not twice
        assert second.port.burns == [] and second.port.withdrawals == []  # nothing moved
    assert before[:4] == after  # the first outcome, transaction and all
    assert before[4] == before[1]
    assert isinstance(after[2], BurnConfirmed) and after[2].tx_hash
    assert isinstance(after[3], WithdrawalCompleted) and after[3].tx_hash


_CALL = {
    MintIndex: "mint",
    EscrowIndex: "escrow",
    BurnIndex: "burn",
    WithdrawCollateral: "withdraw",
}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{not json", "unreadable"),
        (b'{"format": 99}', "format 1"),
        (b'{"format": 1}', "malformed"),
    ],
)
def test_an_unusable_chain_file_is_refused_naming_it(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / STATE_FILE
    path.write_bytes(content)
    with pytest.raises(ChainStateError, match=problem) as refused:
        load_chain(SimulatedChain(), path)
    assert str(path) in str(refused.value)
