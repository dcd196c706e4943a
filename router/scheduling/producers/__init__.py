"""Data producers that plugins read: prefix indexes, load trackers, latency predictors."""
