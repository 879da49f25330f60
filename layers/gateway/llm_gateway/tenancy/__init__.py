"""Users: gateway keys (stored hashed), their policies, per-user windows and budgets on the shared
metering machinery, and the usage ledger users and reports read."""
