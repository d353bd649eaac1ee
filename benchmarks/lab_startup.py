"""Print how long the lab takes to come up (6 hosts, Slurm included) and to go down; root, Linux.

The first run also builds the cached rootfs (about 40 s) and package repository; the figures that matter
are from the second run on. Usage: python3 benchmarks/lab_startup.py [--hosts N] [--rounds R]
"""

from __future__ import annotations

import argparse
import time

from orchestrator.lab.lab import Lab


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    lab = Lab()
    if lab.is_up():
        raise SystemExit("a lab is already up: run `upgrade lab down` first")
    print("cache:", {k: round(v, 2) for k, v in lab.prepare_cache().items()})
    for i in range(args.rounds):
        t0 = time.monotonic()
        state = lab.up(args.hosts, inventory_dir=__import__("pathlib").Path("/tmp/gpu-lab-bench-inventory"))
        up = time.monotonic() - t0
        t0 = time.monotonic()
        lab.down()
        down = time.monotonic() - t0
        parts = ", ".join(f"{k} {v:.2f}" for k, v in state.timings.items() if k not in ("rootfs", "repo"))
        print(f"round {i + 1}: {args.hosts} hosts up in {up:.2f} s ({parts}); down in {down:.2f} s")


if __name__ == "__main__":
    main()
