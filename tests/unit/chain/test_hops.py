"""chain/hops.py: one hop runs once per hop key whatever ids it is asked under, its result is
reported under the latest id and answers status queries; a failure or a stall is "unknown"
(never "failed": something may have moved); gas is charged in USDC rounded up."""

from __future__ import annotations

import asyncio
from decimal import Context, Decimal, localcontext

from indexmaker.chain.hops import HopRunner, gas_cost_usdc
from indexmaker.core.chain_events import (
    HopCompleted,
    HopReport,
    HopState,
    HopStatusUnknown,
    QueryHop,
    RouteCollateral,
)
from indexmaker.core.ids import Designation, TransferId, client_key

CLIENT = client_key(42161, "0x" + "11" * 20)


def _hop(tid: str, key: str = "EVM:ARBITRUM:USDC#7:across") -> RouteCollateral:
    return RouteCollateral(
        TransferId(tid),
        CLIENT,
        "across",
        Designation("EVM:ARBITRUM:USDC"),
        Designation("EVM:BASE:USDC"),
        Decimal(100),
        key,
    )


def _query(tid: str) -> QueryHop:
    return QueryHop(TransferId(tid), "across", Decimal(100))


async def test_one_hop_runs_once_reports_under_the_latest_id_and_answers_status() -> None:
    runner = HopRunner("across", timeout_s=10)
    pushed: list[object] = []

    async def sink(event: object) -> None:
        pushed.append(event)

    runner.start(sink)  # type: ignore[arg-type]
    release = asyncio.Event()
    calls: list[str] = []

    async def work(key: str, command: RouteCollateral) -> tuple[Decimal, Decimal]:
        calls.append(key)
        await release.wait()
        return Decimal("99.8"), Decimal("0.2")

    runner.submit(_hop("T1"), work)
    await asyncio.sleep(0)
    runner.submit(_hop("T2"), work)  # the router's retry of the same hop while it runs
    assert runner.status(_query("T1")).state is HopState.PENDING
    assert runner.status(_query("T2")).state is HopState.PENDING
    release.set()
    for _ in range(100):  # bounded
        if pushed:
            break
        await asyncio.sleep(0.01)
    assert calls == ["EVM:ARBITRUM:USDC#7:across"]  # never twice at once
    assert pushed == [HopCompleted(TransferId("T2"), Decimal("99.8"), Decimal("0.2"))]
    done = HopReport(TransferId("T1"), HopState.DONE, Decimal("99.8"), Decimal("0.2"))
    assert runner.status(_query("T1")) == done
    assert runner.status(_query("T9")).state is HopState.NOT_FOUND
    assert runner.running() == 0


async def test_a_failing_or_stalled_hop_is_unknown_never_failed() -> None:
    runner = HopRunner("exchange_deposit", timeout_s=0.05)
    pushed: list[object] = []

    async def sink(event: object) -> None:
        pushed.append(event)

    runner.start(sink)  # type: ignore[arg-type]

    async def broken(key: str, command: RouteCollateral) -> tuple[Decimal, Decimal]:
        raise ConnectionError("node went away after the release")

    async def stalled(key: str, command: RouteCollateral) -> tuple[Decimal, Decimal]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    runner.submit(_hop("T1", "a"), broken)
    runner.submit(_hop("T2", "b"), stalled)
    for _ in range(200):  # bounded
        if len(pushed) == 2:
            break
        await asyncio.sleep(0.01)
    assert all(isinstance(e, HopStatusUnknown) for e in pushed)
    reasons = {e.transfer_id: e.reason for e in pushed if isinstance(e, HopStatusUnknown)}
    assert "node went away" in reasons[TransferId("T1")]
    assert "stalled" in reasons[TransferId("T2")]
    # Nothing runs under them any more: a resend (same hop key) is what the router does next.
    assert runner.status(_query("T1")).state is HopState.NOT_FOUND
    await runner.stop()


def test_gas_is_charged_in_usdc_rounded_up_to_the_micro_usdc() -> None:
    receipts = [
        {"gasUsed": 21_000, "effectiveGasPrice": 1_000_000_007},
        {"gasUsed": 50_000, "effectiveGasPrice": 2_000_000_000},
    ]
    # 21,000 × 1,000,000,007 + 50,000 × 2e9 = 121,000,000,147,000 wei = 0.000121000000147 ETH;
    # × 3000 = 0.363000000441 USDC → 0.363001 (rounded up: the issuer is never short of gas).
    assert gas_cost_usdc(receipts, Decimal(3000)) == Decimal("0.363001")
    assert gas_cost_usdc([], Decimal(3000)) == 0
    with localcontext(Context(prec=3)):  # a caller's context rounds nothing (it made 0.363000)
        assert gas_cost_usdc(receipts, Decimal(3000)) == Decimal("0.363001")
