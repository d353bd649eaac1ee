"""A real Slurm cluster (Debian's slurmctld/slurmd 22.05 + munge) whose nodes are the lab hosts.

Everything runs on loopback: one slurmd per node (``-N NODE``, its own port), fake GPUs as character
devices listed in gres.conf. ``scontrol reboot`` runs a RebootProgram that reboots the lab host and
restarts that node's slurmd with ``-b``. Client commands need ``SLURM_CONF`` (see :func:`env`), or the
``/etc/slurm/slurm.conf`` link the lab makes when no other configuration is there.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.lab.config import LabPaths, asset
from orchestrator.lab.errors import LabError
from orchestrator.lab.fleet import LabHost
from orchestrator.lab.hosts import Proc, start_time

CTLD_PORT = 16817
FIRST_NODE_PORT = 17001
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")


def slurm_dir(paths: LabPaths) -> Path:
    return paths.run / "slurm"


def conf_path(paths: LabPaths) -> Path:
    return slurm_dir(paths) / "slurm.conf"


def env(paths: LabPaths) -> dict[str, str]:
    """The environment for Slurm client commands (sinfo, scontrol, sbatch) against the lab cluster."""
    return {**os.environ, "SLURM_CONF": str(conf_path(paths))}


def available() -> bool:
    return all(shutil.which(b) for b in ("slurmctld", "slurmd", "munged", "scontrol"))


def _write_conf(paths: LabPaths, hosts: list[LabHost]) -> None:
    d = slurm_dir(paths)
    munge = d / "munge"
    for sub in ("state", "spool", "dev", "munge"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    munge.chmod(0o700)
    reboot = d / "reboot-node"
    reboot.write_text(f"#!/bin/sh\nexec {sys.executable} {asset('slurm', 'reboot_node.py')} {paths.run} \"$PPID\"\n")
    reboot.chmod(0o755)
    lines = [
        "ClusterName=gpulab", "SlurmctldHost=localhost(127.0.0.1)", f"SlurmctldPort={CTLD_PORT}",
        "AuthType=auth/munge", f"AuthInfo=socket={munge / 'munge.socket'}", "CredType=cred/munge",
        "SlurmUser=root", "SlurmdUser=root", f"StateSaveLocation={d / 'state'}",
        f"SlurmdSpoolDir={d / 'spool'}/%n", f"SlurmctldPidFile={d / 'slurmctld.pid'}",
        f"SlurmdPidFile={d}/slurmd-%n.pid", f"SlurmctldLogFile={d / 'slurmctld.log'}",
        f"SlurmdLogFile={d}/slurmd-%n.log", "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core", "GresTypes=gpu", "ReturnToService=2",
        "SchedulerType=sched/backfill", "MpiDefault=none", f"RebootProgram={reboot}", "ResumeTimeout=120",
        "SlurmdTimeout=300", "SlurmctldTimeout=30", "MinJobAge=30", "KillWait=5",
        "SlurmdParameters=config_overrides", "CommunicationParameters=NoInAddrAny,NoCtldInAddrAny",
    ]
    gres = []
    for i, h in enumerate(hosts):
        g = h.gpu
        dev = d / "dev" / h.name
        dev.mkdir(parents=True, exist_ok=True)
        for n in range(g.count):
            node = dev / f"nvidia{n}"
            if not node.exists():
                os.mknod(node, 0o20666, os.makedev(195, n))
        lines.append(f"NodeName={h.name} NodeHostname=localhost NodeAddr=127.0.0.1 Port={FIRST_NODE_PORT + i} "
                     f"CPUs=32 RealMemory=512000 Gres=gpu:{g.slurm_type}:{g.count} State=UNKNOWN")
        gres.append(f"NodeName={h.name} Name=gpu Type={g.slurm_type} File={dev}/nvidia[0-{g.count - 1}]")
    pools: dict[str, list[str]] = {}
    for h in hosts:
        pools.setdefault(h.pool, []).append(h.name)
    for pool, names in pools.items():
        lines.append(f"PartitionName={pool} Nodes={','.join(names)} MaxTime=INFINITE State=UP")
    lines.append("PartitionName=all Nodes=ALL Default=YES MaxTime=INFINITE State=UP")
    conf_path(paths).write_text("\n".join(lines) + "\n")
    (d / "gres.conf").write_text("\n".join(gres) + "\n")
    key = munge / "munge.key"
    if not key.exists():
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)


def _spawn(cmd: list[str], log: Path) -> Proc:
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return Proc.of(proc.pid)


def start_slurmd(paths: LabPaths, node: str, rebooted: bool = False) -> Proc:
    cmd = ["slurmd", "-D", "-N", node, "-f", str(conf_path(paths))] + (["-b"] if rebooted else [])
    return _spawn(cmd, slurm_dir(paths) / f"slurmd-{node}.out")


def start(paths: LabPaths, hosts: list[LabHost]) -> dict[str, Proc]:
    """Start munged, slurmctld and one slurmd per host; returns the processes by role."""
    if not available():
        raise LabError("slurm", "slurmctld/slurmd/munged not installed",
                       "apt-get install slurmctld slurmd slurm-client munge")
    _write_conf(paths, hosts)
    d = slurm_dir(paths)
    munge = d / "munge"
    procs = {"munged": _spawn(["munged", "-F", "-f", f"--socket={munge / 'munge.socket'}",
                               f"--key-file={munge / 'munge.key'}", f"--pid-file={munge / 'munged.pid'}",
                               f"--seed-file={munge / 'munged.seed'}", f"--log-file={munge / 'munged.log'}"],
                              d / "munged.out")}
    deadline = time.monotonic() + 5
    while not (munge / "munge.socket").exists():
        if time.monotonic() > deadline:
            raise LabError("slurm", "munged did not start", f"see {d / 'munged.out'}")
        time.sleep(0.02)
    procs["slurmctld"] = _spawn(["slurmctld", "-D", "-c", "-i", "-f", str(conf_path(paths))], d / "slurmctld.out")
    for h in hosts:
        procs[f"slurmd:{h.name}"] = start_slurmd(paths, h.name)
    if not SYSTEM_CONF.exists() and SYSTEM_CONF.parent.is_dir() and not SYSTEM_CONF.is_symlink():
        SYSTEM_CONF.symlink_to(conf_path(paths))
    return procs


def wait_ready(paths: LabPaths, nodes: list[str], timeout: float = 20.0) -> None:
    """Wait until every node is idle (registered with its GRES), so the lab is usable on return."""
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        proc = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], env=env(paths), capture_output=True,
                              text=True, check=False)
        states = dict(line.split() for line in proc.stdout.splitlines() if len(line.split()) == 2)
        if all(states.get(n) == "idle" for n in nodes):
            return
        time.sleep(0.2)
    raise LabError("slurm", f"nodes not idle after {timeout:g} s: {states}", f"see {slurm_dir(paths)}")


def pidfile_proc(path: Path, expect: str) -> Proc | None:
    """A daemon that Slurm itself restarted (slurmd after a reboot) is found through its pid file."""
    try:
        pid = int(path.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError, IndexError):
        return None
    started = start_time(pid)
    return Proc(pid=pid, start=started) if expect in cmdline and started is not None else None


def stop(paths: LabPaths, procs: dict[str, Proc]) -> None:
    d = slurm_dir(paths)
    found = list(procs.values())
    for pidfile in d.glob("slurmd-*.pid"):
        p = pidfile_proc(pidfile, str(conf_path(paths)))
        if p:
            found.append(p)
    for p in found:
        p.kill()
    deadline = time.monotonic() + 5
    while any(p.alive() for p in found) and time.monotonic() < deadline:
        time.sleep(0.02)
    if SYSTEM_CONF.is_symlink() and os.readlink(SYSTEM_CONF) == str(conf_path(paths)):
        SYSTEM_CONF.unlink()


def run(paths: LabPaths, *args: str, check: bool = True) -> str:
    """Run a Slurm client command against the lab cluster; returns stdout."""
    proc = subprocess.run(list(args), env=env(paths), capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"slurm: {' '.join(args)}", proc.stderr.strip() or f"exit {proc.returncode}")
    return proc.stdout
