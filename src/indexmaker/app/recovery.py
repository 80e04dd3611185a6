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
- a redemption's escrow, burns, withdrawal and payout (EscrowIndex, BurnIndex, its
  RouteCollateral, WithdrawCollateral) whose answer the engine has not seen: carried out again
  under the same escrow / payment / transfer / withdrawal id (custody, the exchange's
  `withdrawOrderId` and custody's release id each take a key once); a release of unsold
  index units (ReleaseIndex, no answer expected) whose effect was not marked done: again too.
- client messages (SendToClient) not marked delivered: handed to the FIX server again.
- collateral lots whose hop the router had given up (still given up after replay): routed
  again once by a `ResumeRoutes` input (journalled like any input, so a second restart replays
  the resume and carries its hop on under the same transfer id instead of resuming twice);
  the hop keeps its key, so the bridge adapter carries on from the chain's state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from indexmaker.core.events import (
    BurnIndex,
    Command,
    EngineInput,
    EscrowIndex,
    ExchangeOrderStatusUnknown,
    MintIndex,
    PlaceExchangeOrder,
    ReleaseIndex,
    ResumeRoutes,
    RouteCollateral,
    SendToClient,
    WithdrawCollateral,
)
from indexmaker.core.ids import ExchangeOrderId, PaymentId, TransferId
from indexmaker.core.ports import StorePort
from indexmaker.engine.engine import Engine

RESTART = "the service restarted; reconciling with the venue"
RESUMED_ON_RESTART = "restart"


@dataclass(slots=True)
class RecoveryPlan:
    replayed: int = 0
    snapshot_seq: int = 0  # the journal entry the restored snapshot was taken after (0: none)
    inputs: list[EngineInput] = field(default_factory=list)  # submitted before trading
    redo: list[Command] = field(default_factory=list)  # carried out again under the same keys
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
    redemption_effects: dict[tuple[type, str], Command] = {}  # the latest of each key
    pending = store.pending()
    unmarked = {item.key for item in pending}
    releases: list[Command] = []
    for item in store.effects():
        command = item.command
        if isinstance(command, PlaceExchangeOrder):
            sent.add(command.order_id)
        elif isinstance(command, RouteCollateral):
            routes[command.transfer_id] = command  # the latest attempt
        elif isinstance(command, MintIndex):
            mints[command.payment_id] = command
        elif isinstance(command, EscrowIndex | BurnIndex | WithdrawCollateral):
            redemption_effects[(type(command), _key(command))] = command
        elif isinstance(command, ReleaseIndex) and item.key in unmarked:
            releases.append(command)
    plan.messages = [i.command for i in pending if isinstance(i.command, SendToClient)]
    store.mark_done(item.key for item in pending)
    for tracked in engine.tracker.open_orders():
        if tracked.order_id in sent:
            plan.inputs.append(
                ExchangeOrderStatusUnknown(tracked.order_id, tracked.command.instrument, RESTART)
            )
    plan.redo.extend(c for t, c in routes.items() if engine.router.is_in_flight(t))
    plan.redo.extend(c for p, c in mints.items() if engine.solver.minter.is_minting(p))
    plan.redo.extend(c for t, c in routes.items() if engine.redemptions.awaits_chain(c))
    plan.redo.extend(c for c in redemption_effects.values() if engine.redemptions.awaits_chain(c))
    plan.redo.extend(releases)
    if engine.router.given_up():
        plan.inputs.append(ResumeRoutes(None, RESUMED_ON_RESTART))
    return plan


def _key(command: EscrowIndex | BurnIndex | WithdrawCollateral) -> str:
    if isinstance(command, EscrowIndex):
        return command.escrow_id
    if isinstance(command, BurnIndex):
        return command.payment_id
    return command.withdrawal_id
