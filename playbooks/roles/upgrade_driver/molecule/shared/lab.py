"""Bring the lab fleet up for a molecule scenario (or reuse one already up) and down again only if we started it.

Usage: python3 lab.py up|down STATE_DIR. ``up`` copies the lab's inventory to STATE_DIR/hosts.yml, which the
scenario passes to ansible-playbook; a marker in STATE_DIR says whether ``down`` may stop the lab.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[5]
sys.path.insert(0, str(ROOT))

from orchestrator.lab.lab import Lab  # noqa: E402 - the checkout is put on the path first


def main(action: str, state_dir: str) -> int:
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    marker = state / "lab-started-by-molecule"
    lab = Lab()
    if action == "up":
        if lab.is_up():
            current = lab.state()
            inventory = Path(current.inventory) if current and current.inventory else None
            if inventory is not None and not inventory.is_absolute():
                inventory = ROOT / inventory  # `upgrade lab up` run from the checkout writes a relative path
            print("reusing the lab that is already up")
        else:
            inventory = Path(lab.up(6, state / "lab").inventory)
            marker.write_text("started\n")
            print("lab started")
        if inventory is None or not inventory.exists():
            print("the running lab has no inventory", file=sys.stderr)
            return 1
        shutil.copyfile(inventory, state / "hosts.yml")
        return 0
    if action == "down":
        if marker.exists():
            lab.down()
            marker.unlink()
            print("lab stopped")
        else:
            print("lab left as it was (not started by this scenario)")
        return 0
    print(f"unknown action {action}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
