"""EVM chain adapters: local anvil nodes, contract artifacts and deployment (issue 11, SPEC §7)."""
