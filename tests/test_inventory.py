"""Inventories load through Ansible's own parser (INI, YAML, scripts); bad ones fail in one line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from orchestrator.adapters.inventory import load_inventory
from orchestrator.errors import InventoryError
from orchestrator.model.inventory import PoolGroups, deprecation_notice
from orchestrator.model.stack import SchedulerKind

EXAMPLE = Path(__file__).resolve().parents[1] / "inventories" / "example"


def write(tmp_path: Path, name: str, text: str, mode: int = 0o644) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    path.chmod(mode)
    return path


def test_example_inventory_maps_group_and_host_vars() -> None:
    hosts = {h.name: h for h in load_inventory(EXAMPLE)}
    assert "login-01" not in hosts  # upgrade_managed=false
    assert len(hosts) == 12
    h100 = hosts["gpu-h100-06"]
    assert (h100.pool, str(h100.gpu), h100.gpu_count, h100.nvswitch) == ("train-h100", "H100", 8, True)
    assert h100.domains.rack == "r02" and h100.domains.switch == "leaf-02"
    assert h100.scheduler.kind == SchedulerKind.SLURM and h100.scheduler.node_name == "h100n06"
    assert h100.connection.address == "127.0.2.16" and h100.connection.user == "root"
    a100 = hosts["gpu-a100-04"]
    assert a100.cordoned_by_hand and "Xid 79" in (a100.cordon_reason or "")
    assert hosts["gpu-v100-01"].nvswitch is False and hosts["gpu-v100-01"].gpu.architecture == "Volta"  # type: ignore[union-attr]


def test_limit_uses_ansible_patterns() -> None:
    names = [h.name for h in load_inventory(EXAMPLE, limit="legacy_v100:gpu-a100-01")]
    assert names == ["gpu-a100-01", "gpu-v100-01", "gpu-v100-02"]
    with pytest.raises(InventoryError, match="matches no host"):
        load_inventory(EXAMPLE, limit="nosuchgroup")


def test_yaml_inventory(tmp_path: Path) -> None:
    path = write(tmp_path, "hosts.yml", """
        all:
          children:
            pool_a:
              vars: {upgrade_pool: a, upgrade_model: "NVIDIA A100-SXM4-80GB", upgrade_gpu_count: 8}
              hosts:
                n1: {ansible_host: 127.0.0.21, ansible_port: 2201, upgrade_rack: r1}
                n2: {ansible_host: 127.0.0.22, upgrade_nvswitch: true}
        """)
    hosts = load_inventory(path)
    assert [h.name for h in hosts] == ["n1", "n2"]
    assert hosts[0].connection.port == 2201 and hosts[0].gpu.name == "A100"  # type: ignore[union-attr]
    assert hosts[1].nvswitch is True and hosts[1].groups == ("pool_a",)


def test_dynamic_inventory_script(tmp_path: Path) -> None:
    path = write(tmp_path, "inventory.py", """\
        #!/usr/bin/env python3
        import json, sys
        data = {"gpu": {"hosts": ["d1"], "vars": {"upgrade_pool": "dyn", "upgrade_model": "H100"}},
                "_meta": {"hostvars": {"d1": {"ansible_host": "127.0.0.31", "upgrade_rack": "r9"}}}}
        print(json.dumps(data if "--list" in sys.argv else {}))
        """, mode=0o755)
    [host] = load_inventory(path)
    assert (host.name, host.pool, host.domains.rack, host.connection.address) == ("d1", "dyn", "r9", "127.0.0.31")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[p]\nn1 upgrade_pool=p upgrade_rak=r1\n", "host n1: unknown variable upgrade_rak (did you mean upgrade_rack"),
        ("[p]\nn1 upgrade_model=H100\n", "host n1: no upgrade_pool"),
        ("[p]\nn1 gpu_model=H100 gpu_clock_lock=1507,1507\n", "host n1: no upgrade_pool"),
        ("[p]\nn1 upgrade_pool=p upgrade_nvswitch=perhaps\n", "host n1: upgrade_nvswitch: 'perhaps' is not a"),
        ("[p]\nn1 gpu_pool=p gpu_nvswitch=perhaps\n", "host n1: gpu_nvswitch: 'perhaps' is not a boolean"),
        ("[p]\nn1 gpu_pool=p gpu_scheduler=pbs\n", "host n1: gpu_scheduler: 'pbs' is not one of slurm"),
        ("[p]\nn1 gpu_pool=p gpu_count=-1\n", "host n1: gpu_count: -1 is not between 0"),
        ("[p\nn1 x=\n", "hosts.ini"),
    ],
)
def test_bad_inventories_fail_in_one_line_naming_file_and_host(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, "hosts.ini", text)
    with pytest.raises(InventoryError) as err:
        load_inventory(path)
    message = str(err.value)
    assert expected in message and str(path) in message and "\n" not in message


def test_missing_and_empty_inventories(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="inventory not found"):
        load_inventory(tmp_path / "nope.ini")
    empty = write(tmp_path, "empty.ini", "[p]\nlogin upgrade_managed=false\n")
    with pytest.raises(InventoryError, match="no managed GPU hosts"):
        load_inventory(empty)


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yml", "all:\n  hosts:\n    a: [\n")
    with pytest.raises(InventoryError) as err:
        load_inventory(path)
    assert "YAML" in str(err.value) and "line 4" in str(err.value)


def test_a_static_inventory_is_listed_once_and_again_when_it_changes(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = write(tmp_path, "hosts.ini", "[p]\nn1 upgrade_pool=p upgrade_model=H100 upgrade_rack=r1\n")
    assert [h.domains.rack for h in load_inventory(path)] == ["r1"]
    entries = list((tmp_path / "cache" / "gpu-upgrade" / "inventory").glob("*.json"))
    assert len(entries) == 1  # Ansible's listing, kept by the inventory's content
    # the cache answers: an entry doctored by hand shows (it is never consulted for another content)
    doctored = json.loads(entries[0].read_text())
    doctored["data"]["_meta"]["hostvars"]["n1"]["upgrade_rack"] = "from-the-cache"
    entries[0].write_text(json.dumps(doctored))
    assert [h.domains.rack for h in load_inventory(path)] == ["from-the-cache"]
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "p.yml").write_text("upgrade_switch: leaf-7\n")  # a vars file counts as content
    assert [(h.domains.rack, h.domains.switch) for h in load_inventory(path)] == [("r1", "leaf-7")]
    path.write_text("[p]\nn1 upgrade_pool=p upgrade_model=H100 upgrade_rack=r2\nn2 upgrade_pool=p upgrade_model=H100\n")
    assert [h.name for h in load_inventory(path)] == ["n1", "n2"]


def test_a_script_inventory_is_asked_every_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    counter = tmp_path / "calls"
    path = write(tmp_path, "inventory.py", f"""\
        #!/usr/bin/env python3
        import json, pathlib, sys
        calls = pathlib.Path({str(counter)!r})
        calls.write_text(calls.read_text() + "x" if calls.exists() else "x")
        data = {{"gpu": {{"hosts": ["d1"], "vars": {{"upgrade_pool": "dyn", "upgrade_model": "H100"}}}}}}
        print(json.dumps(data if "--list" in sys.argv else {{}}))
        """, mode=0o755)
    load_inventory(path)
    once = len(counter.read_text())
    load_inventory(path)
    assert once >= 1 and len(counter.read_text()) == 2 * once  # Ansible ran the script again
    assert not (tmp_path / "cache").exists()


def test_old_names_are_read_with_one_deprecation_line_for_the_inventory(tmp_path: Path) -> None:
    path = write(tmp_path, "hosts.ini", """
        [p]
        n1 gpu_pool=p gpu_model=H100 gpu_rack=r1 gpu_nvswitch=true
        n2 gpu_pool=p gpu_model=H100 gpu_rack=r2 upgrade_rack=r9
        """)
    hosts = {h.name: h for h in load_inventory(path)}
    assert (hosts["n1"].pool, hosts["n1"].domains.rack, hosts["n1"].nvswitch) == ("p", "r1", True)
    assert hosts["n2"].domains.rack == "r9"  # the new name wins where both are set
    notice = deprecation_notice(str(path), list(hosts.values()))
    assert notice is not None and "\n" not in notice and str(path) in notice
    assert "gpu_pool -> upgrade_pool" in notice and "gpu_rack -> upgrade_rack" in notice
    assert notice.count("gpu_pool") == 1  # one line for the inventory, each name once
    renamed = write(tmp_path, "new.ini", "[p]\nn1 upgrade_pool=p upgrade_model=H100\n")
    assert deprecation_notice(str(renamed), load_inventory(renamed)) is None


def test_foreign_gpu_variables_are_ignored_and_models_the_catalogue_lacks_are_kept(tmp_path: Path) -> None:
    path = write(tmp_path, "hosts.yml", """
        all:
          vars: {gpu_clock_lock: "1507,1507", gpu_clock_reset: no, gpu_operator_version: v24.9.0}
          children:
            p:
              hosts:
                n1: {upgrade_pool: p, upgrade_model: NVIDIA RTX A5000}
        """)
    [host] = load_inventory(path)
    assert host.gpu is None and host.gpu_declared == "NVIDIA RTX A5000" and host.legacy_vars == ()
    assert deprecation_notice(str(path), [host]) is None


def test_pools_from_groups_patterns_then_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "hosts.ini", """
        [login]
        login01
        [pool_h100]
        g1
        [pool_a100]
        g2
        [cpu]
        c1
        [special]
        g3 upgrade_pool=own
        [legacy]
        g4
        """)
    by_prefix = {h.name: h.pool for h in load_inventory(path, pools=PoolGroups.parse("pool_*"))}
    assert by_prefix == {"g1": "pool_h100", "g2": "pool_a100", "g3": "own"}  # login01, c1, g4: not managed
    both = PoolGroups.parse("pool_h100", {"legacy": "old-v100", "pool_a100": "infer"})
    assert {h.name: h.pool for h in load_inventory(path, pools=both)} == {
        "g1": "pool_h100", "g2": "infer", "g3": "own", "g4": "old-v100"}
    assert [h.name for h in load_inventory(path, pools=PoolGroups.parse("nothing"))] == ["g3"]
    bare = write(tmp_path, "bare.ini", "[kube-node]\ngpu01\n")
    with pytest.raises(InventoryError, match="no managed GPU hosts in the inventory in the groups slurm-node"):
        load_inventory(bare, pools=PoolGroups.parse("slurm-node"))
    with pytest.raises(InventoryError, match="--pool-from-group"):
        PoolGroups.parse("a,,b")
