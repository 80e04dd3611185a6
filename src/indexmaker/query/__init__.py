"""The read-only query API (issue 10): HTTP JSON for operators and clients."""
