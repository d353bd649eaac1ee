"""The Slurm drain-ends reader: squeue's text as Slurm 22.05 prints it (captured from the lab with the reader's
own arguments), hostlists, the mapping to inventory names, and a squeue that fails."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from orchestrator.adapters.drain_ends import (
    SlurmDrainEnds,
    node_ends,
    open_ended_nodes,
    parse_limit,
    parse_squeue,
    slurm_nodes,
    squeue_env,
)
from orchestrator.adapters.inventory import load_inventory
from orchestrator.adapters.slurm_hostlist import expand_hostlist
from orchestrator.app.gather import job_ends
from orchestrator.errors import SchedulerError
from orchestrator.ports import DrainEnds

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventories" / "example"

# squeue --noheader --all --states=RUNNING,COMPLETING,CONFIGURING,SUSPENDED --format='%i|%T|%N|%S|%e|%l'
# on the lab (TZ=UTC, SLURM_TIME_FORMAT=standard): a 2-node job, days in the limit, UNLIMITED, a suspended job
CAPTURED = """\
1|RUNNING|gpu-h100-[01-02]|2026-12-02T05:13:43|2026-12-02T05:33:43|20:00
2|RUNNING|gpu-a100-01|2026-12-02T05:13:43|2026-12-03T07:13:43|1-02:00:00
3|RUNNING|gpu-v100-01|2026-12-02T05:13:43|NONE|UNLIMITED
4|RUNNING|gpu-h100-03|2026-12-02T05:13:43|2026-12-02T05:18:43|5:00
6|SUSPENDED|gpu-h100-04|2026-12-02T05:13:43|2026-12-02T06:43:43|1:30:00
"""


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_each_node_gets_its_jobs_end_and_open_ended_jobs_leave_their_node_out() -> None:
    jobs, unreadable = parse_squeue(CAPTURED)
    assert unreadable == []
    assert node_ends(jobs) == {"gpu-h100-01": at("2026-12-02T05:33:43"), "gpu-h100-02": at("2026-12-02T05:33:43"),
                               "gpu-a100-01": at("2026-12-03T07:13:43"), "gpu-h100-03": at("2026-12-02T05:18:43")}


def test_the_latest_job_on_a_node_counts_and_one_unlimited_job_makes_the_node_open_ended() -> None:
    text = """\
7|RUNNING|gpu-h100-[01-02],gpu-a100-01|2026-12-02T04:10:00|2026-12-02T05:10:00|1:00:00
8|RUNNING|gpu-h100-02|2026-12-02T04:10:00|2026-12-02T09:10:00|5:00:00
9|COMPLETING|gpu-h100-01|2026-12-02T03:00:00|2026-12-02T04:00:00|1:00:00
10|RUNNING|gpu-a100-01|2026-12-01T05:00:00|2027-12-01T05:00:00|UNLIMITED
"""
    jobs = parse_squeue(text)[0]
    assert node_ends(jobs) == {"gpu-h100-01": at("2026-12-02T05:10:00"), "gpu-h100-02": at("2026-12-02T09:10:00")}
    assert open_ended_nodes(jobs) == {"gpu-a100-01"}  # busy with no end: neither free nor timed
    assert open_ended_nodes(parse_squeue(CAPTURED)[0]) == {"gpu-v100-01", "gpu-h100-04"}  # UNLIMITED, suspended


def test_an_unknown_end_is_start_plus_the_limit_and_no_start_is_no_end() -> None:
    text = """\
11|RUNNING|gpu-h100-01|2026-12-02T04:10:00|Unknown|2-00:00:00
12|RUNNING|gpu-h100-02|2026-12-02T04:10:00|N/A|30
13|CONFIGURING|gpu-h100-03|N/A|N/A|1:00:00
14|PENDING||N/A|N/A|5:00
"""
    jobs, unreadable = parse_squeue(text)
    assert unreadable == []
    assert [j.job for j in jobs] == ["11", "12", "13"]  # the pending job holds no node
    assert node_ends(jobs) == {"gpu-h100-01": at("2026-12-04T04:10:00"), "gpu-h100-02": at("2026-12-02T04:40:00")}


def test_times_are_read_in_the_zone_squeue_printed_them_in() -> None:
    line = "1|RUNNING|n1|2026-07-01T10:00:00|2026-07-01T12:00:00|2:00:00\n"
    (job,), _ = parse_squeue(line, ZoneInfo("Europe/Berlin"))
    assert job.end == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    env = squeue_env({"SLURM_CONF": "/x/slurm.conf", "SQUEUE_FORMAT": "%i", "SQUEUE_STATES": "PD", "TZ": "EST"})
    assert env == {"SLURM_CONF": "/x/slurm.conf", "TZ": "UTC", "SLURM_TIME_FORMAT": "standard"}


@pytest.mark.parametrize("text,limit", [
    ("20:00", timedelta(minutes=20)), ("1:30:00", timedelta(hours=1, minutes=30)), ("5", timedelta(minutes=5)),
    ("1-02:00:00", timedelta(days=1, hours=2)), ("3-12", timedelta(days=3, hours=12)),
    ("UNLIMITED", None), ("INVALID", None), ("NOT_SET", None), ("1:2:3:4", None), ("-5", None), ("", None),
])
def test_slurm_time_limits(text: str, limit: timedelta | None) -> None:
    assert parse_limit(text) == limit


def test_garbage_and_hostile_lines_are_left_out_and_named_never_a_crash() -> None:
    bad = ["squeue: error: slurm_load_jobs error: Socket timed out", "1|RUNNING|n1|x",
           "2|RUNNING|n[1-2|2026-12-02T04:10:00|2026-12-02T05:10:00|1:00:00",
           "3|RUNNING|n[0-99999999]|2026-12-02T04:10:00|2026-12-02T05:10:00|1:00:00",
           "4|RUNNING|n[5-1]|2026-12-02T04:10:00|2026-12-02T05:10:00|1:00:00",
           "5|RUNNING|a b|2026-12-02T04:10:00|2026-12-02T05:10:00|1:00:00",
           "6|RUNNING|n1|2026-12-02T04:10:00|2026-12-02T05:10:00|1:00:00|extra"]
    hostile = "7|RUNNING|$(reboot);../../etc|2026-12-02T04:10:00|2026-12-02T05:10:00|1:00:00"
    good = "8|RUNNING|n1|2026-12-02T04:10:00|garbage|1:00:00"
    jobs, unreadable = parse_squeue("\n".join([*bad, hostile, good]) + "\n")
    assert unreadable == bad
    assert node_ends(jobs) == {"$(reboot);../../etc": at("2026-12-02T05:10:00"), "n1": at("2026-12-02T05:10:00")}


@pytest.mark.parametrize("text,names", [
    ("gpu-h100-01", ["gpu-h100-01"]),
    ("gpu-h100-[01-02],gpu-a100-01", ["gpu-h100-01", "gpu-h100-02", "gpu-a100-01"]),
    ("n[8-10,12]", ["n8", "n9", "n10", "n12"]),
    ("n[098-101]", ["n098", "n099", "n100", "n101"]),
    ("r[1-2]n[01-02]-ib", ["r1n01-ib", "r1n02-ib", "r2n01-ib", "r2n02-ib"]),
])
def test_hostlists_expand_like_scontrol_show_hostnames(text: str, names: list[str]) -> None:
    assert expand_hostlist(text) == names


@pytest.mark.parametrize("text", ["", "n[1-2", "n1-2]", "n[[1]]", "n[a-b]", "n[]", "a,,b", "n[0-999999]"])
def test_what_is_not_a_hostlist_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        expand_hostlist(text)


def test_slurm_node_names_map_back_to_inventory_names_and_kubernetes_hosts_are_not_asked() -> None:
    hosts = load_inventory(EXAMPLE)
    nodes = slurm_nodes(hosts)
    assert nodes["h100n06"] == "gpu-h100-06"  # upgrade_scheduler_node differs from the inventory name
    assert "gpu-h100-06" not in nodes
    kubernetes = {h.name for h in hosts if h.scheduler.kind == "kubernetes"}
    assert kubernetes and not kubernetes & set(nodes.values())
    assert SlurmDrainEnds(squeue="/nonexistent/squeue")([h for h in hosts if h.name in kubernetes]).ends == {}


def test_a_squeue_that_cannot_run_or_fails_is_one_scheduler_error(tmp_path: Path) -> None:
    hosts = load_inventory(EXAMPLE)
    with pytest.raises(SchedulerError, match=r"^/nonexistent/squeue: .*No such file"):
        SlurmDrainEnds(squeue="/nonexistent/squeue")(hosts)
    if shutil.which("squeue") is None:
        pytest.skip("squeue not installed (apt-get install slurm-client)")
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=x\nNotAKey=1\n")  # squeue stops at once (a missing file asks DNS first)
    with pytest.raises(SchedulerError) as caught:
        SlurmDrainEnds(env={"PATH": "/usr/bin:/bin", "SLURM_CONF": str(conf)})(hosts)
    assert str(caught.value) == "squeue: fatal: Unable to process configuration file"


def test_the_plans_job_ends_keep_open_ended_hosts_as_never_free_and_a_failing_squeue_is_a_warning() -> None:
    hosts = load_inventory(EXAMPLE)
    found = DrainEnds({"gpu-h100-01": at("2026-12-02T05:10:00")}, ("garbage",), ("gpu-a100-01",))
    ends, notes = job_ends(lambda _hosts: found, hosts)
    assert ends == {"gpu-h100-01": at("2026-12-02T05:10:00"), "gpu-a100-01": None}
    assert notes == ["job ends: 1 line(s) of the scheduler's answer not understood, left out (first: 'garbage')"]
    ends, notes = job_ends(SlurmDrainEnds(squeue="/nonexistent/squeue"), hosts)
    assert ends is None  # no knowledge: the canary by name, not "every host idle"
    assert len(notes) == 1 and notes[0].startswith("canary by job ends off: /nonexistent/squeue: ")
