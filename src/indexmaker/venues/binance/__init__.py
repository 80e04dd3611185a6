"""Binance Spot connectors: market data (diff-depth sync), orders and user data (WebSocket API).

Every URL and key is configuration (`BinanceEndpoints`, `BinanceCredentials`), so the local
exchange simulator and the real exchange are reached by the same code.
"""
