"""The wallet's deposit and withdrawal history in the simulator's state file (state_file.py),
so a restarted simulator answers a `withdrawOrderId` it took before with that withdrawal (as
Binance does: "withdrawOrderId ... client id for withdraw", idempotent per account) instead of
paying it a second time.

Kept: every transfer the wallet holds (those still moving and the newest `max_transfers`
finished, as in memory: wallet.py's bound), in arrival order with its arrival number, the
order they finished in (what is forgotten first), the chain deposits already taken in by
(tx id, log index), and the last arrival number (ids never repeat). `withdrawOrderId`s are
rebuilt from the kept withdrawals. Not resumed: an on-chain withdrawal the hot wallet had not
seen mined when the process stopped stays at status 4 (processing); its id is still
recognised, so it is never paid twice (docs/exchange-sim.md).
"""

from __future__ import annotations

from collections import deque
from dataclasses import fields
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from indexmaker.venues.binance_sim.wallet_records import Transfer

if TYPE_CHECKING:
    from indexmaker.venues.binance_sim.wallet import Wallet

_DECIMALS = frozenset({"amount", "fee"})
_FIELDS = tuple(f.name for f in fields(Transfer))


def version(wallet: Wallet) -> tuple[int, ...]:
    """Changes whenever a transfer arrives, moves on (status, tx id) or is forgotten, or a
    chain deposit is seen: a cheap walk of what is kept (bounded by max_transfers)."""
    transfers = wallet.transfers.values()
    return (
        wallet.last_number,
        len(wallet.transfers),
        sum(t.status for t in transfers),
        sum(1 for t in transfers if t.tx_id),
        len(wallet._chain_seen),
    )


def dump(wallet: Wallet) -> dict[str, Any]:
    rows = []
    for number, transfer in wallet.transfers.items():
        row = {name: getattr(transfer, name) for name in _FIELDS}
        row.update({name: str(row[name]) for name in _DECIMALS})
        rows.append([number, row])
    return {
        "last_number": wallet.last_number,
        "transfers": rows,
        "finished": list(wallet._finished),
        "chain_seen": [list(key) for key in wallet._chain_seen],
    }


def restore(wallet: Wallet, state: dict[str, Any]) -> None:
    """Replace `wallet`'s history by `state` (from `dump`). Raises KeyError, TypeError or
    ArithmeticError for a malformed one (state_file.py names the file)."""
    transfers: dict[int, Transfer] = {}
    for number, row in state["transfers"]:
        values = {name: row[name] for name in _FIELDS}
        values.update({name: Decimal(row[name]) for name in _DECIMALS})
        transfers[int(number)] = Transfer(**values)
    wallet.transfers = transfers
    wallet.last_number = int(state["last_number"])
    wallet._finished = deque(int(n) for n in state["finished"] if int(n) in transfers)
    wallet._by_client = {}
    for transfer in transfers.values():  # arrival order: the first withdrawal of an id wins
        if transfer.kind == "withdraw" and transfer.client_id:
            wallet._by_client.setdefault((transfer.account, transfer.client_id), transfer)
    wallet._chain_seen.clear()
    for tx_id, log_index in state["chain_seen"]:
        wallet._chain_seen[(str(tx_id), int(log_index))] = None
