"""Recovery on start: rebuild the engine from the durable journal, then settle with the
outside world before trading (issue 10; docs/decisions.md, "Durable state").

What the outbox says about each kind of effect after a crash, and what is done about it:

- exchange orders (PlaceExchangeOrder): sent or maybe sent. Never resent: every order the
  engine still holds open whose place command was committed is reported to the engine as
  `ExchangeOrderStatusUnknown`, so the engine asks the venue by client order id through the
  venue port (`QueryExchangeOrder`) and settles by what the venue says; fills are taken by
  trade id, so one seen twice counts once. An order the venue does not know closes as
  rejected and its batch goes on; a fill the venue reports but we never saw is an operator
  alert (`fills_missing`) and that order waits.
- transfers (RouteCollateral) and mints (MintIndex) whose outcome the engine has not seen:
  carried out again under the same transfer id / payment id, which the chain side takes at
  most once (the custody contract refuses a repeated payment id).
- client messages (SendToClient) not marked delivered: handed to the FIX server again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from indexmaker.core.events import (
    EngineInput,
    ExchangeOrderStatusUnknown,
    MintIndex,
    PlaceExchangeOrder,
    RouteCollateral,
    SendToClient,
)
from indexmaker.core.ids import ExchangeOrderId, PaymentId, TransferId
from indexmaker.core.ports import StorePort
from indexmaker.engine.engine import Engine

RESTART = "the service restarted; reconciling with the venue"


@dataclass(slots=True)
class RecoveryPlan:
    replayed: int = 0
    snapshot_seq: int = 0  # the journal entry the restored snapshot was taken after (0: none)
    inputs: list[EngineInput] = field(default_factory=list)  # submitted before trading
    redo: list[RouteCollateral | MintIndex] = field(default_factory=list)  # same keys again
    messages: list[SendToClient] = field(default_factory=list)  # not known delivered
    last_deposit_seq: int = 0  # the simulated chain continues after it


def recover(engine: Engine, store: StorePort, fingerprint: str | None = None) -> RecoveryPlan:
    """Restore the newest snapshot of this build (`fingerprint`; None: never) and replay
    every committed input after it into `engine` (their commands were carried out or are in
    the outbox), then plan what the outside world must be asked or told again. Marks every
    pending outbox item done (the plan supersedes it) without committing."""
    plan = RecoveryPlan()
    snapshot = store.latest_snapshot(fingerprint) if fingerprint is not None else None
    after = 0
    if snapshot is not None:
        after, state = snapshot
        engine.restore(state)
        plan.snapshot_seq = after
    replayed = 0
    for entry in store.entries(after):
        engine.replay((entry,))
        replayed += 1
    plan.replayed = replayed
    plan.last_deposit_seq = engine.collateral.last_deposit_seq()
    sent: set[ExchangeOrderId] = set()
    routes: dict[TransferId, RouteCollateral] = {}
    mints: dict[PaymentId, MintIndex] = {}
    for item in store.effects():
        command = item.command
        if isinstance(command, PlaceExchangeOrder):
            sent.add(command.order_id)
        elif isinstance(command, RouteCollateral):
            routes[command.transfer_id] = command  # the latest attempt
        elif isinstance(command, MintIndex):
            mints[command.payment_id] = command
    pending = store.pending()
    plan.messages = [i.command for i in pending if isinstance(i.command, SendToClient)]
    store.mark_done(item.key for item in pending)
    for tracked in engine.tracker.open_orders():
        if tracked.order_id in sent:
            plan.inputs.append(
                ExchangeOrderStatusUnknown(tracked.order_id, tracked.command.instrument, RESTART)
            )
    plan.redo.extend(c for t, c in routes.items() if engine.router.is_in_flight(t))
    plan.redo.extend(c for p, c in mints.items() if engine.solver.minter.is_minting(p))
    return plan
