"""A run's decisions, pure: host and wave state, admission under the limits, failure budget, stragglers."""
