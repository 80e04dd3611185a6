"""The in-process simulated chain on disk (`serve` with a data directory): a restarted service
finds the chain as it left it, as a real chain outlives the service (issue 10's crash harness
kills `serve` between a mint and the sell of what it minted, and around every burn and payout).

What is kept: what each client holds and custody holds per index, what was burned and paid, the
mints' payment ids and every escrow/burn/release/payout id carried out with its transaction,
and the transaction counter (hashes never repeat). Not kept: deposits (the service numbers them
after the last it journalled) and hops in flight (a resent hop is carried out again: the
simulated bridges move no balances). Written after every change, atomically
(store/files.py); the format is versioned and another one is refused, never guessed at.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec

from indexmaker.core.ids import Symbol, client_key
from indexmaker.sim.chain import SimulatedChain
from indexmaker.store.files import write_atomically

STATE_FILE = "sim-chain.json"
FORMAT = 1


class ChainStateError(ValueError):
    """The file cannot be used (unreadable, another format)."""


def save_chain(chain: SimulatedChain, path: Path) -> None:
    """Write what `chain` holds to `path` now; raises OSError when the disk refuses."""
    state = {
        "format": FORMAT,
        "minted": [[c[0], c[1], s, str(q)] for (c, s), q in sorted(chain.minted.items())],
        "custody": {s: str(q) for s, q in sorted(chain.custody.items())},
        "burned": {s: str(q) for s, q in sorted(chain.burned.items())},
        "paid": [[c[0], c[1], str(q)] for c, q in sorted(chain.paid.items())],
        "payments": sorted(chain.payments),
        "done": dict(sorted(chain.done.items())),
        "next_tx": chain.next_tx,
    }
    write_atomically(path, msgspec.json.encode(state))


def load_chain(chain: SimulatedChain, path: Path) -> bool:
    """Fill `chain` from `path` and keep it there from now on; False (and nothing loaded) when
    there is no file yet. Raises ChainStateError naming the file and the problem."""
    chain.path = path
    try:
        state = msgspec.json.decode(path.read_bytes())
    except FileNotFoundError:
        return False
    except (OSError, msgspec.DecodeError) as error:
        raise ChainStateError(f"{path}: unreadable: {error}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ChainStateError(f"{path}: not a simulated chain state of format {FORMAT}")
    try:
        chain.minted = {
            (client_key(int(c), str(a)), Symbol(s)): Decimal(q) for c, a, s, q in state["minted"]
        }
        chain.custody = {Symbol(s): Decimal(q) for s, q in state["custody"].items()}
        chain.burned = {Symbol(s): Decimal(q) for s, q in state["burned"].items()}
        chain.paid = {client_key(int(c), str(a)): Decimal(q) for c, a, q in state["paid"]}
        chain.payments = {str(p) for p in state["payments"]}
        chain.done = {str(k): str(v) for k, v in state["done"].items()}
        chain.next_tx = int(state["next_tx"])
    except (KeyError, TypeError, ValueError, ArithmeticError) as error:
        raise ChainStateError(f"{path}: malformed: {error!r}") from None
    return True
