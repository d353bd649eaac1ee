"""Joining inventory and facts: hardware the catalogue lacks never blocks the fleet."""

from __future__ import annotations

from orchestrator.hostside.collector import collect
from orchestrator.model.facts import FactsSnapshot, parse_host_facts
from orchestrator.model.fleet import build_fleet
from orchestrator.model.inventory import host_from_vars
from tests.support.simhost import SimHost

AT = "2026-12-01T00:00:00+00:00"


def _facts(hosts: dict[str, SimHost]) -> FactsSnapshot:
    return FactsSnapshot(collected_at=AT, hosts=[
        parse_host_facts(n, AT, collect(h.run, h.read, h.listdir, h.resolve, h.modules_root))
        for n, h in hosts.items()])


def test_unknown_models_are_planned_by_architecture_with_one_warning_per_model() -> None:
    sims = {f"a{i}": SimHost(gpu_name="NVIDIA RTX A5000", gpu_count=4, architecture="Ampere", compute_cap="8.6")
            for i in range(5)}
    sims["dev"] = SimHost(gpu_name="Graphics Device", gpu_count=8, architecture="N/A", compute_cap="")
    sims["h1"] = SimHost()
    inventory = [host_from_vars("inv", n, {"upgrade_pool": "p"}, ["p"]) for n in sims]
    built = build_fleet(inventory, _facts(sims))
    hosts = {h.name: h for h in built.fleet.hosts}
    assert sorted(hosts) == ["a0", "a1", "a2", "a3", "a4", "h1"]
    assert (hosts["a0"].gpu.architecture, str(hosts["a0"].gpu.compute_capability)) == ("Ampere", "8.6")
    assert hosts["h1"].gpu.catalogued and hosts["h1"].gpu.name == "H100"
    assert list(built.unknown) == ["dev"] and "'Graphics Device'" in built.unknown["dev"]
    model_lines = [w for w in built.warnings if "not in the catalogue" in w]
    assert len(model_lines) == 1 and "'NVIDIA RTX A5000'" in model_lines[0] and "5 hosts" in model_lines[0]
    assert "a0, a1, a2 and 2 more" in model_lines[0]


def test_an_inventory_declared_model_is_used_when_nvidia_smi_names_none_the_catalogue_knows() -> None:
    sims = {"d1": SimHost(gpu_name="Graphics Device", gpu_count=8, architecture="N/A", compute_cap=""),
            "d2": SimHost(gpu_name="Graphics Device", gpu_count=8, architecture="Hopper", compute_cap="9.0")}
    inventory = [host_from_vars("inv", n, {"upgrade_pool": "p", "upgrade_model": "H200"}, ["p"]) for n in sims]
    built = build_fleet(inventory, _facts(sims))
    assert {h.name: h.gpu.name for h in built.fleet.hosts} == {"d1": "H200", "d2": "H200"}
    assert not built.unknown
    assert any("d1: nvidia-smi reports 'Graphics Device' (not in the catalogue); using the inventory's "
               "upgrade_model H200" in w for w in built.warnings)


def test_a_declared_model_the_catalogue_lacks_on_a_host_that_lists_no_gpu_is_one_line() -> None:
    sims = {"n1": SimHost(driver=None, cuda=None)}
    inventory = [host_from_vars("inv", "n1", {"upgrade_pool": "p", "upgrade_model": "RTX A5000"}, ["p"])]
    built = build_fleet(inventory, _facts(sims))
    assert not built.fleet.hosts and "'RTX A5000' (upgrade_model) is not in the catalogue" in built.unknown["n1"]
