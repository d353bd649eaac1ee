"""RebootProgram of the lab's Slurm: reboot the lab host of the slurmd that ran us, then restart that
slurmd with -b once the host's sshd answers again (as a node that comes back from a reboot would).

Usage (from the generated wrapper): reboot_node.py RUNDIR SLURMD_PID
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time


def parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])


def main(run: str, slurmd_pid: int) -> int:
    # slurmd runs us through system(): walk up to the slurmd that has our node's -N.
    while True:
        with open(f"/proc/{slurmd_pid}/cmdline", "rb") as fh:
            args = fh.read().decode().split("\0")
        if "-N" in args or slurmd_pid <= 1:
            break
        slurmd_pid = parent(slurmd_pid)
    node = args[args.index("-N") + 1]
    conf = args[args.index("-f") + 1]
    with open(f"{run}/lab.json") as fh:
        lab = json.load(fh)
    host = next(h for h in lab["hosts"] if h["name"] == node)
    pid1 = lab["pids"][node]
    if os.fork():
        return 0  # slurmd sees the RebootProgram succeed
    os.setsid()
    time.sleep(0.5)
    os.kill(pid1["pid"], signal.SIGUSR1)
    os.kill(slurmd_pid, signal.SIGTERM)
    time.sleep(1.5)  # the host is down for at least its downtime
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host["address"], host["port"]), timeout=0.5):
                break
        except OSError:
            time.sleep(0.2)
    with open(f"{run}/slurm/slurmd-{node}.out", "ab") as log:
        subprocess.Popen(["slurmd", "-D", "-b", "-N", node, "-f", conf], stdin=subprocess.DEVNULL, stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
