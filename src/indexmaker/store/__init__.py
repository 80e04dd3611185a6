"""Durable state: the engine's input journal and the outbox of effects (docs/decisions.md,
"Durable state: a journal of inputs plus an outbox of effects")."""
