"""A Binance-Spot-wire exchange simulator, run as its own process (`indexmaker exchange-sim`).

It speaks the subset of Binance Spot's REST API, WebSocket API and market/user-data streams
that connectors use (shared/reference/binance-spot-api.md), over a seeded synthetic market or
a replay of recorded depth, with faults switchable at run time (docs/exchange-sim.md).
"""
