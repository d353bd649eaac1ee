"""Executing a plan: host state machine, crash-safe journal, run lock (waves and gates build on these)."""
