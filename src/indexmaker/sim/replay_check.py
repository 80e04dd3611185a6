"""A fixed full lifecycle on the simulated world, and the replay of its journal.

The harness of the replay-across-processes test: `python -m indexmaker.sim.replay_check live`
runs the lifecycle and prints its journal and its commands; `... replay JOURNAL` replays a
journal on a fresh engine and prints the commands. Each line is one record in the versioned
codec (`core/codec.py`), so two processes can be compared byte for byte whatever their
PYTHONHASHSEED.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from indexmaker.core.clock import ManualClock
from indexmaker.core.codec import decode_entry, encode, encode_entry
from indexmaker.core.events import (
    CancelIndexOrderRequest,
    Command,
    NewIndexOrderRequest,
    NewQuoteRequest,
    RebalanceIndex,
)
from indexmaker.core.ids import ClientOrderId, ClientQuoteId, Symbol, client_key, instrument
from indexmaker.core.journal import JournalEntry
from indexmaker.core.rebalance_events import RebalanceWeight
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.engine import Engine, EngineSetup
from indexmaker.model.filters import InstrumentRules
from indexmaker.model.index import Basket, BasketAsset
from indexmaker.model.side import Side
from indexmaker.sim.chain import BridgeTerms, SimulatedChain
from indexmaker.sim.exchange import Behaviour, SimulatedExchange
from indexmaker.sim.world import SimulatedWorld

D = Decimal
AAA, BBB, CCC = instrument("AAAUSDC"), instrument("BBBUSDC"), instrument("CCCUSDC")
CLIENTS = tuple(client_key(42161, f"0x{n:040x}") for n in range(1, 7))


def setup() -> EngineSetup:
    return EngineSetup(
        {
            "IDX": Basket(Symbol("IDX"), (BasketAsset(AAA, D(2)), BasketAsset(BBB, D(1)))),
            "TRI": Basket(
                Symbol("TRI"),
                (BasketAsset(AAA, D(1)), BasketAsset(BBB, D("0.5")), BasketAsset(CCC, D(3))),
            ),
        },
        # Known rules with every filter disabled: a symbol without rules is not traded.
        SolverConfig(rebalance_interval=timedelta(seconds=2)),
        rules={s: InstrumentRules(s, s.pair.removesuffix("USDC"), "USDC") for s in (AAA, BBB, CCC)},
    )


def _books() -> dict:  # type: ignore[type-arg]
    return {
        AAA: ([(D("9.9"), D("500"))], [(D("10"), D("300")), (D("10.05"), D("300"))]),
        BBB: ([(D("19.9"), D("500"))], [(D("20"), D("150")), (D("20.1"), D("150"))]),
        CCC: ([(D("4.9"), D("900"))], [(D("5"), D("900"))]),
    }


def lifecycle() -> tuple[list[JournalEntry], list[Command]]:
    """Six clients, two indexes, bridge hops, partial fills over several batches, a quote, a
    cancel, queued second orders waiting for the change of the first, mints and invoices;
    then two redemptions paid out with their invoices; then IDX is rebalanced into CCC
    (which TRI holds too) while a client buys it."""
    exchange = SimulatedExchange(
        _books(), behaviour={BBB: Behaviour(fill_ratio=D("0.7"), splits=2)}
    )
    chain = SimulatedChain(
        bridges={"across": BridgeTerms(D("0.5"), D("0.001")), "wallet": BridgeTerms(D(0), D(0))}
    )
    world = SimulatedWorld(setup(), exchange, chain)
    commands: list[Command] = []
    world.on_command = commands.append
    for n, client in enumerate(CLIENTS):
        world.deposit(client, D(520 + 10 * n))
    world.advance(timedelta(seconds=5))  # both hops done for everyone at the same instant
    for n, client in enumerate(CLIENTS):
        index = Symbol("IDX" if n % 2 else "TRI")
        first = NewIndexOrderRequest(client, ClientOrderId(f"c{n}-1"), index, Side.BUY, D(480))
        world.submit(first)
        # Waits for collateral: only the first order's change can make room for it.
        # (ready after the first: 38.98 + 9.99n; the first's change is ~4 USDC)
        amount = D(41 + 10 * n)
        second = NewIndexOrderRequest(client, ClientOrderId(f"c{n}-2"), index, Side.BUY, amount)
        world.submit(second)
    world.submit(NewQuoteRequest(CLIENTS[0], ClientQuoteId("q1"), Symbol("IDX"), Side.BUY, D(100)))
    world.advance(timedelta(milliseconds=300))
    world.submit(CancelIndexOrderRequest(CLIENTS[1], ClientOrderId("c1-2"), Symbol("IDX"), D(5)))
    world.advance(timedelta(seconds=60))
    # Two redemptions (issue 12): escrow, sell batches, burns, withdrawal, payout, invoice.
    # The venue fills BBB in full again, so they sell out (a partial leg is scenario 11's).
    exchange.behaviour[BBB] = Behaviour()
    for n, units in ((0, D("1.5")), (3, D(2))):
        index = Symbol("IDX" if n % 2 else "TRI")
        sell = NewIndexOrderRequest(CLIENTS[n], ClientOrderId(f"c{n}-s"), index, Side.SELL, units)
        world.submit(sell)
    world.advance(timedelta(seconds=30))
    weights = (
        RebalanceWeight(AAA, D(40)),
        RebalanceWeight(BBB, D(30)),
        RebalanceWeight(CCC, D(30)),
    )
    world.submit(RebalanceIndex(Symbol("IDX"), "p1", weights))
    world.deposit(CLIENTS[5], D(300))
    buy = NewIndexOrderRequest(CLIENTS[5], ClientOrderId("c5-3"), Symbol("IDX"), Side.BUY, D(300))
    world.submit(buy)
    world.advance(timedelta(seconds=12))
    return list(world.engine.journal.entries()), commands


def replay(entries: Sequence[JournalEntry]) -> list[Command]:
    return Engine(setup(), ManualClock()).replay(entries)


def main(argv: Sequence[str]) -> int:
    out = sys.stdout.buffer
    if argv[:1] == ["live"]:
        entries, commands = lifecycle()
        out.write(b"".join(encode_entry(e) + b"\n" for e in entries))
        out.write(b"--\n")
        out.write(b"".join(encode(c) + b"\n" for c in commands))
        return 0
    if argv[:1] == ["replay"] and len(argv) == 2:
        lines = Path(argv[1]).read_bytes().splitlines()
        commands = replay([decode_entry(line) for line in lines if line])
        out.write(b"".join(encode(c) + b"\n" for c in commands))
        return 0
    print("usage: python -m indexmaker.sim.replay_check live | replay JOURNAL", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
