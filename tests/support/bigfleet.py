"""Generated fleets of any size: for the planner (models) and for the CLI (a YAML inventory and a facts snapshot).

21 pools (7 each of H100, A100, V100) on racks of 16 and leaf switches of 64; two stacks per pool (drift: one
host in five got a newer NCCL by hand); 1% cordoned by hand, 1% without facts; every host's repositories offer
the simulated hosts' builds, except one host in 97 whose mirror lacks the target's CUDA toolkit (excluded,
no build), one in 31 whose mirror carries an older driver build too, and one in 41 that holds its NCCL and
driver packages (its rollback puts the holds back). The desired state is the example's
(plans/example.yaml) with ``max_unavailable: 10%``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import yaml

from orchestrator.model.desired import DesiredState, PoolTarget, TargetStack, load_desired
from orchestrator.model.gpus import resolve_gpu
from orchestrator.model.stack import Connection, FailureDomains, Fleet, Host, HostPackages, SoftwareStack
from orchestrator.planner import UnknownHost
from tests.support.simhost import REPOSITORY

ROOT = Path(__file__).resolve().parents[2]
BASE = {"driver": "535.183.01", "kernel_module": "proprietary", "cuda": "12.2.2", "cudnn": "8.9.7.29-1+cuda12.2",
        "nccl": "2.18.5-1+cuda12.2", "fabric_manager": "535.183.01", "dcgm": "1:3.3.9",
        "container_toolkit": "1.14.6-1"}
INSTALLED = {"nvidia-driver-535": "535.183.01-0ubuntu1", "cuda-toolkit-12-2": "12.2.2-1",
             "libcudnn8": "8.9.7.29-1+cuda12.2", "libnccl2": "2.18.5-1+cuda12.2",
             "datacenter-gpu-manager": "1:3.3.9", "nvidia-container-toolkit": "1.14.6-1",
             "nvidia-fabricmanager-535": "535.183.01-1"}
EXAMPLE = ROOT / "inventories" / "example"
KINDS = [("train-h100", "H100", True), ("infer-a100", "A100", True), ("legacy-v100", "V100", False)]


def _indexes() -> tuple[HostPackages, HostPackages, HostPackages, HostPackages]:
    full = {k: tuple(v) for k, v in REPOSITORY.items()}
    no_cuda13 = {k: v for k, v in full.items() if k != "cuda-toolkit-13-0"}
    old_driver = {**full, "nvidia-driver-535": ("535.54.03-0ubuntu1", "535.183.01-0ubuntu1")}
    return (HostPackages(manager="apt", installed=INSTALLED, available=full),
            HostPackages(manager="apt", installed=INSTALLED, available=no_cuda13),
            HostPackages(manager="apt", installed=INSTALLED, available=old_driver),
            HostPackages(manager="apt", installed=INSTALLED, available=full, held=("libnccl2", "nvidia-driver-535")))


def desired_state() -> tuple[DesiredState, dict[str, str]]:
    example = load_desired(ROOT / "plans" / "example.yaml")
    pools = {f"{kind}-{j}": kind for kind, _, _ in KINDS for j in range(7)}
    desired = DesiredState(
        pools={p: PoolTarget(target=TargetStack.model_validate(example.pools[k].target.model_dump()),
                             workloads=example.pools[k].workloads) for p, k in sorted(pools.items())},
        policy=example.policy.model_copy(update={"max_unavailable": "10%"}) if example.policy else None,
    )
    return desired, pools


def fleet(n: int) -> tuple[Fleet, list[UnknownHost], DesiredState]:
    """``n`` hosts named gpu-0000000 ..., the unknown ones, and the desired state."""
    desired, _ = desired_state()
    stacks = {}
    for kind, _, nvswitch in KINDS:
        old = dict(BASE) if nvswitch else {k: v for k, v in BASE.items() if k != "fabric_manager"}
        drifted = {**old, "nccl": "2.21.5-1+cuda12.4"}
        stacks[kind] = (SoftwareStack.model_validate(old), SoftwareStack.model_validate(drifted))
    full, no_cuda13, old_driver, held = _indexes()
    connection = Connection(address="127.0.0.1")
    models = {gpu: resolve_gpu(gpu) for _, gpu, _ in KINDS}
    hosts, unknown = [], []
    for i in range(n):
        kind, gpu, nvswitch = KINDS[i % 3]
        pool = f"{kind}-{(i // 3) % 7}"
        name = f"gpu-{i:07d}"
        if i % 100 == 99:
            unknown.append(UnknownHost(name, pool, "unreachable", gpu, 8))
            continue
        packages = no_cuda13 if i % 97 == 3 else old_driver if i % 31 == 5 else held if i % 41 == 7 else full
        hosts.append(Host.model_construct(
            name=name, connection=connection, pool=pool, gpu=models[gpu], gpu_count=8, nvswitch=nvswitch,
            stack=stacks[kind][i % 5 == 0], packages=packages,
            domains=FailureDomains(rack=f"r{i // 16:05d}", switch=f"leaf-{i // 64:04d}"),
            scheduler=Host.model_fields["scheduler"].default,
            cordoned_by_hand=i % 100 == 42, cordon_reason="RMA" if i % 100 == 42 else None,
        ))
    return Fleet.model_construct(hosts=tuple(hosts)), unknown, desired


POOLS = [("train_h100", "train-h100", "H100", True, "gpu-h100-01"),
         ("infer_a100", "infer-a100", "A100", True, "gpu-a100-01"),
         ("legacy_v100", "legacy-v100", "V100", False, "gpu-v100-01")]
DRIFTED = "gpu-h100-05"  # the example's host with NCCL upgraded by hand


def write_inventory_and_snapshot(n: int, folder: Path) -> tuple[Path, Path]:
    """The inventory (hosts.yml) and the snapshot (facts.json) of ``n`` hosts."""
    example = json.loads((EXAMPLE / "facts.json").read_text())
    records = {r["host"]: r for r in example["hosts"]}
    groups: dict[str, dict[str, object]] = {}
    hosts, unreachable = [], []
    for group, pool, gpu, nvswitch, _ in POOLS:
        groups[group] = {"vars": {"upgrade_pool": pool, "upgrade_model": gpu, "upgrade_gpu_count": 8,
                                  "upgrade_nvswitch": nvswitch, "upgrade_scheduler": "slurm"}, "hosts": {}}
    for i in range(n):
        group, _, _, _, model = POOLS[i % 3]
        name = f"gpu-{i:05d}"
        host_vars: dict[str, object] = {"ansible_host": f"127.1.{i // 256 % 256}.{i % 256}",
                                        "upgrade_rack": f"r{i // 48:04d}", "upgrade_switch": f"leaf-{i // 192:03d}"}
        if i % 100 == 42:
            host_vars.update(upgrade_cordoned=True, upgrade_cordon_reason="RMA: GPU 3 Xid 79")
        groups[group]["hosts"][name] = host_vars  # type: ignore[index]
        if i % 100 == 99:
            unreachable.append({"host": name, "reason": "unreachable: ssh: connect to host: No route to host"})
            continue
        record = copy.deepcopy(records[DRIFTED if group == "train_h100" and i % 5 == 0 else model])
        record["host"] = name
        hosts.append(record)
    inventory = folder / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"gpu": {"children": groups}}}}, sort_keys=False))
    facts = folder / "facts.json"
    facts.write_text(json.dumps({**example, "inventory": str(inventory), "hosts": hosts, "unreachable": unreachable}))
    return inventory, facts


def write_desired(folder: Path) -> Path:
    """The example's desired state without its per-pool host counts (made for a fleet of a dozen hosts)."""
    data = yaml.safe_load((ROOT / "plans" / "example.yaml").read_text())
    for pool in data["pools"].values():
        pool.get("policy", {}).pop("max_unavailable", None)
    path = folder / "desired.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
