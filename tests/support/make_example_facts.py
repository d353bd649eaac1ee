"""Write inventories/example/facts.json through the real collector on simulated hosts.

Run: python3 -m tests.support.make_example_facts
The example fleet sits on an older stack (R535 + CUDA 12.2) with realistic drift: one H100 host got a newer
NCCL by hand, one A100 host is halfway through a driver change (version mismatch until reboot), one V100
host is unreachable.
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.adapters.facts import snapshot_json
from orchestrator.hostside.collector import collect
from orchestrator.model.facts import FactsSnapshot, UnreachableHost, parse_host_facts
from tests.support.simhost import SimHost

OUT = Path(__file__).resolve().parents[2] / "inventories" / "example" / "facts.json"
COLLECTED_AT = "2026-11-24T22:00:00+00:00"

R535 = {
    "nvidia-driver-535": "535.183.01-0ubuntu1",
    "cuda-toolkit-12-2": "12.2.2-1",
    "libcudnn8": "8.9.7.29-1+cuda12.2",
    "libnccl2": "2.18.5-1+cuda12.2",
    "datacenter-gpu-manager": "1:3.3.9",
    "nvidia-container-toolkit": "1.14.6-1",
}
FM535 = {"nvidia-fabricmanager-535": "535.183.01-1"}


def hosts() -> dict[str, SimHost]:
    out: dict[str, SimHost] = {}
    for i in range(1, 7):
        pkgs = {**R535, **FM535}
        if i == 5:
            pkgs["libnccl2"] = "2.21.5-1+cuda12.4"  # upgraded by hand for one job
        out[f"gpu-h100-{i:02d}"] = SimHost(
            gpu_name="NVIDIA H100 80GB HBM3", driver="535.183.01", flavor="proprietary", cuda="12.2.2",
            packages=pkgs, held=set(pkgs), boot_id=f"a1b2c3d4-0000-4000-8000-0000000001{i:02d}")
    for i in range(1, 5):
        pkgs = {**R535, **FM535}
        host = SimHost(gpu_name="NVIDIA A100-SXM4-80GB", driver="535.183.01", flavor="proprietary", cuda="12.2.2",
                       packages=pkgs, held=set(pkgs), boot_id=f"a1b2c3d4-0000-4000-8000-0000000002{i:02d}")
        if i == 3:  # someone installed R550 and did not reboot
            host.packages = {**pkgs, "nvidia-driver-550": "550.127.05-0ubuntu1"}
            del host.packages["nvidia-driver-535"]
            host.driver, host.loaded_module, host.driver_state = "550.127.05", "535.183.01", "mismatch"
        out[f"gpu-a100-{i:02d}"] = host
    out["gpu-v100-01"] = SimHost(gpu_name="Tesla V100-SXM2-32GB", driver="535.183.01", flavor="proprietary",
                                 cuda="12.2.2", packages=dict(R535), held=set(R535),
                                 boot_id="a1b2c3d4-0000-4000-8000-000000000301")
    return out


def main() -> None:
    records = [parse_host_facts(name, COLLECTED_AT, collect(h.run, h.read, h.listdir, h.resolve, h.modules_root))
               for name, h in sorted(hosts().items())]
    snapshot = FactsSnapshot(
        collected_at=COLLECTED_AT, inventory="inventories/example", hosts=records,
        unreachable=[UnreachableHost(host="gpu-v100-02", reason="unreachable: Failed to connect to the host via "
                                     "ssh: ssh: connect to host 127.0.2.32 port 22: No route to host")],
    )
    OUT.write_text(snapshot_json(snapshot), encoding="utf-8")
    print(f"wrote {OUT} ({len(records)} hosts, {len(snapshot.unreachable)} unreachable)")


if __name__ == "__main__":
    main()
