"""Inventories shaped like real GPU clusters' (DeepOps, Dell Omnia, kubespray) plan without edits, from a
facts snapshot: pools from their own groups, their own ``gpu_*`` variables ignored, hardware the catalogue
lacks planned by what the host reports, a host nothing describes left out in one line. See
tests/fixtures/real-inventories/README.md for where each layout comes from."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.adapters.ansible import list_inventory
from orchestrator.adapters.inventory import load_inventory
from orchestrator.model.inventory import PoolGroups
from orchestrator.planner.artifact import load_plan
from tests.inputs.cli import judge, upgrade

HERE = Path(__file__).resolve().parent / "fixtures" / "real-inventories"
NOW = "2026-12-01T00:00:00+00:00"

CASES = {
    # fleet: (inventory, options, {host: pool} planned, {host: reason excluded}, warning about a model)
    "deepops": (HERE / "deepops" / "config" / "inventory", ["--pool-from-group", "kube-node,slurm-node"],
                {"gpu01": "kube-node", "gpu02": "kube-node", "gpu03": "slurm-node"},
                {"gpu04": "'Graphics Device' is not in the catalogue and the host reports neither"},
                "GPU model 'NVIDIA RTX A5000' is not in the catalogue: planned as Ampere (compute capability 8.6"),
    "omnia": (HERE / "omnia" / "inventory", [],
              {"127.0.7.102": "ai", "127.0.7.103": "hpc", "127.0.7.104": "hpc", "127.0.7.105": "ai"},
              {"127.0.7.106": "nvidia-smi listed no GPU"},
              "GPU model 'Quadro P2000' is not in the catalogue: planned as Pascal (compute capability 6.1"),
    "kubespray": (HERE / "kubespray" / "inventory" / "gpu-cluster" / "hosts.yaml", ["--pool-from-group", "kube_node"],
                  {"node2": "kube_node", "node3": "kube_node", "node4": "kube_node", "node5": "kube_node"}, {},
                  "GPU model 'NVIDIA RTX A5000' is not in the catalogue: planned as Ampere"),
}


@pytest.mark.parametrize("fleet", sorted(CASES))
def test_real_cluster_inventories_plan_without_edits(fleet: str, tmp_path: Path) -> None:
    inventory, options, planned, excluded, warning = CASES[fleet]
    out = tmp_path / "plan.json"
    result = upgrade("plan", "-i", str(inventory), str(HERE / fleet / "desired.yaml"), "--facts",
                     str(HERE / fleet / "facts.json"), *options, "-o", str(out), "--now", NOW)
    judge(result, {0}, [])
    plan = load_plan(out)
    assert {h.name: h.pool for h in plan.hosts} == planned
    assert {e.host for e in plan.excluded} == excluded.keys()
    for e in plan.excluded:
        assert excluded[e.host] in e.reason
    if fleet != "omnia":  # the model the catalogue lacks is planned under the name the host gives it
        assert any(h.gpu == "NVIDIA RTX A5000" for h in plan.hosts)
    warnings = [line for line in result.err_lines if line.startswith("warning: GPU model")]
    assert len(warnings) == 1 and warning in warnings[0]  # one line per unknown model, naming it
    assert "deprecated" not in result.err  # nothing of ours is spelled the old way in these inventories
    if options:  # apply re-reads the same pools: the setting travels in the plan's sources
        assert plan.sources["pool_from_group"] == options[1]


def test_deepops_keeps_its_own_gpu_variables_and_needs_a_pool_source() -> None:
    inventory = CASES["deepops"][0]
    hostvars = list_inventory(inventory)["_meta"]["hostvars"]
    assert hostvars["gpu03"]["gpu_clock_lock"] == "1507,1507" and hostvars["gpu03"]["gpu_clock_reset"] is False
    # Without a pool source the first host is one clear line, exit 2, naming the way out.
    result = upgrade("plan", "-i", str(inventory), str(HERE / "deepops" / "desired.yaml"), "--facts",
                     str(HERE / "deepops" / "facts.json"), "--now", NOW)
    judge(result, {2}, ["gpu01"])
    assert "no upgrade_pool" in result.err and "--pool-from-group" in result.err
    # The control plane and login nodes are in no pool group: not managed.
    hosts = load_inventory(inventory, pools=PoolGroups.parse("kube-node,slurm-node"))
    assert [h.name for h in hosts] == ["gpu01", "gpu02", "gpu03", "gpu04"]


def test_a_bad_pool_setting_is_one_line() -> None:
    inventory = CASES["kubespray"][0]
    result = upgrade("plan", "-i", str(inventory), str(HERE / "kubespray" / "desired.yaml"), "--facts",
                     str(HERE / "kubespray" / "facts.json"), "--pool-from-group", "kube_node,,etcd", "--now", NOW)
    judge(result, {2}, ["--pool-from-group"])
    result = upgrade("plan", "-i", str(inventory), str(HERE / "kubespray" / "desired.yaml"), "--facts",
                     str(HERE / "kubespray" / "facts.json"), "--pool-from-group", "gpu_*", "--now", NOW)
    judge(result, {2}, [str(inventory)])
    assert "no managed GPU hosts in the inventory in the groups gpu_*" in result.err
