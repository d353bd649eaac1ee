"""Rolling-upgrade orchestrator for the GPU software stack of NVIDIA fleets."""

__version__ = "0.1.0"
