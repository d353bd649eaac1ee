"""When each host's running jobs are expected to end, read from Slurm (one ``squeue``) for the drain-aware order.

Only Slurm is read: hosts whose ``upgrade_scheduler`` is ``kubernetes`` (or ``none``) get no expected end, so
a flowing run treats them as free now, as it does without drain knowledge. A pod has no declared end (no time
limit), so there is nothing comparable to read from the API server.

A node's expected end is the latest end among the jobs on it: Slurm's end time (``%e``, start plus the time
limit while a job runs), else start plus time limit. A node with a job that has no expected end (time limit
``UNLIMITED``, a suspended job, no readable time) is left out of the map: the order cannot know when it is
free. Slurm node names map back to the inventory's host names through ``upgrade_scheduler_node``.

Times: squeue prints local time without a zone (``2026-12-02T05:10:00``). The reader runs squeue with
``TZ=UTC`` and ``SLURM_TIME_FORMAT=standard`` so the text is UTC in ISO form whatever the controller's zone or
the user's settings (no daylight-saving fold either), and returns aware datetimes.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from orchestrator.adapters.slurm_hostlist import expand_hostlist
from orchestrator.errors import SchedulerError
from orchestrator.model.inventory import InventoryHost
from orchestrator.model.stack import SchedulerKind
from orchestrator.ports import DrainEnds

# job id | state | nodes | start | end | time limit; '|' is in none of them (Slurm node names cannot hold it)
SQUEUE_FORMAT = "%i|%T|%N|%S|%e|%l"
# the states in which a job holds its nodes; a pending job holds none yet
HOLDING_STATES = "RUNNING,COMPLETING,CONFIGURING,SUSPENDED"
NO_END_STATES = frozenset({"SUSPENDED"})  # its clock is stopped: the end Slurm prints will move
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class SlurmJob:
    """One line of squeue: the nodes a job holds and when it is expected to end (None: no expected end)."""

    job: str
    nodes: tuple[str, ...]
    end: datetime | None


def parse_time(text: str, tz: tzinfo) -> datetime | None:
    """squeue's ``2026-12-02T05:10:00`` in zone ``tz`` -> aware datetime; ``N/A``, ``Unknown``, ``None``: None."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def parse_limit(text: str) -> timedelta | None:
    """A Slurm time limit (``[D-]HH:MM:SS``, ``MM:SS``, ``M``, ``D-HH[:MM]``) -> timedelta; UNLIMITED and
    anything else (``INVALID``, ``NOT_SET``, garbage): None."""
    text = text.strip()
    days, _, clock = text.rpartition("-") if "-" in text else ("0", "", text)
    parts = clock.split(":")
    if not days.isdigit() or not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        return None
    numbers = [int(p) for p in parts]
    if "-" in text:  # days-hours[:minutes[:seconds]]
        hours, minutes, seconds = [*numbers, 0, 0][:3]
    elif len(numbers) == 3:
        hours, minutes, seconds = numbers
    else:  # minutes[:seconds]
        hours, (minutes, seconds) = 0, [*numbers, 0][:2]
    return timedelta(days=int(days), hours=hours, minutes=minutes, seconds=seconds)


def parse_squeue(text: str, tz: tzinfo = UTC) -> tuple[list[SlurmJob], list[str]]:
    """Lines printed with ``-h -o SQUEUE_FORMAT`` -> the jobs, and the lines it could not read (left out)."""
    jobs: list[SlurmJob] = []
    unreadable: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != 6 or not fields[0].strip():
            unreadable.append(line)
            continue
        job, state, nodelist, start, end, limit = (f.strip() for f in fields)
        if not nodelist or nodelist in ("(null)", "None"):
            continue  # holds no node (yet)
        try:
            nodes = tuple(expand_hostlist(nodelist))
        except ValueError:
            unreadable.append(line)
            continue
        jobs.append(SlurmJob(job, nodes, _expected_end(state, start, end, limit, tz)))
    return jobs, unreadable


def _expected_end(state: str, start: str, end: str, limit: str, tz: tzinfo) -> datetime | None:
    length = parse_limit(limit)
    if state in NO_END_STATES or length is None:  # UNLIMITED: Slurm prints start + 1 year as its end
        return None
    started = parse_time(start, tz)
    return parse_time(end, tz) or (started + length if started is not None else None)


def node_ends(jobs: Sequence[SlurmJob]) -> dict[str, datetime]:
    """Per node, the latest expected end of its jobs; a node with any job without one is left out."""
    ends: dict[str, datetime] = {}
    for job in jobs:
        for node in job.nodes:
            if job.end is not None and (node not in ends or job.end > ends[node]):
                ends[node] = job.end
    open_ended = open_ended_nodes(jobs)
    return {n: e for n, e in ends.items() if n not in open_ended}


def open_ended_nodes(jobs: Iterable[SlurmJob]) -> set[str]:
    """The nodes running a job without an expected end."""
    return {node for job in jobs if job.end is None for node in job.nodes}


def slurm_nodes(hosts: Iterable[InventoryHost]) -> dict[str, str]:
    """Slurm node name -> inventory host name, for the hosts Slurm schedules."""
    return {h.scheduler.node_name or h.name: h.name for h in hosts if h.scheduler.kind is SchedulerKind.SLURM}


def squeue_env(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` (with its ``SLURM_CONF``) without the user's squeue defaults, times in UTC ISO form."""
    env = {k: v for k, v in base.items() if not k.startswith("SQUEUE_")}
    return {**env, "TZ": "UTC", "SLURM_TIME_FORMAT": "standard"}


class SlurmDrainEnds:
    """The :class:`~orchestrator.ports.DrainEndsSource` for Slurm: one ``squeue`` for every host.

    ``env``: the environment squeue runs in (``SLURM_CONF`` for a cluster other than the system's); default
    this process's. Raises :class:`SchedulerError` when squeue cannot be run or fails.
    """

    def __init__(self, env: Mapping[str, str] | None = None, squeue: str = "squeue",
                 timeout_s: float = TIMEOUT_S) -> None:
        self.env = env
        self.squeue = squeue
        self.timeout_s = timeout_s

    def argv(self) -> list[str]:
        return [self.squeue, "--noheader", "--all", f"--states={HOLDING_STATES}", f"--format={SQUEUE_FORMAT}"]

    def __call__(self, hosts: Sequence[InventoryHost]) -> DrainEnds:
        names = slurm_nodes(hosts)
        if not names:
            return DrainEnds({})
        argv = self.argv()
        try:
            proc = subprocess.run(argv, env=squeue_env(os.environ if self.env is None else self.env),
                                  capture_output=True, text=True, timeout=self.timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SchedulerError(self.squeue, str(exc)) from None
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            raise SchedulerError(self.squeue, last.removeprefix(f"{os.path.basename(self.squeue)}: "))
        jobs, unreadable = parse_squeue(proc.stdout, UTC)
        ends = node_ends(jobs)
        return DrainEnds({names[n]: end for n, end in ends.items() if n in names}, tuple(unreadable),
                         tuple(sorted(names[n] for n in open_ended_nodes(jobs) if n in names)))
