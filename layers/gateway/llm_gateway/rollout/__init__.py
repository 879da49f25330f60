"""Safe rollout: which users the new routing serves (cohorts), and the percentage (the flag)."""
