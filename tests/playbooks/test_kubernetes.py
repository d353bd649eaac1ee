"""The kubernetes drain adapter against a replay of the Kubernetes API (no API server can run here).

The playbooks run for real (ansible-runner, ``ansible.builtin.uri``); the API is ``k8s_api.py`` on 127.0.0.1
serving recorded documents (tests/fixtures/kubernetes/README.md says where they come from).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.adapters.ansible import PlaybookResult, run_playbook
from orchestrator.adapters.ansible import stats
from tests.playbooks.k8s_api import FakeApi, serve

NODE = "gpu-node-01"


@pytest.fixture()
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": {NODE: {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "upgrade_pool": "k8s", "upgrade_scheduler": "kubernetes"}}}}))
    return path


def run(playbook: str, inventory: Path, api: FakeApi, **extra: Any) -> PlaybookResult:
    return run_playbook(playbook, inventory, limit=NODE,
                        extravars={"k8s_api": api.url, "k8s_token": "t0ken", "drain_poll_s": 1, **extra})


def test_drain_cordons_evicts_and_leaves_daemonsets(inventory: Path) -> None:
    with serve(FakeApi(pdb_blocks={"triton-5d9f7c8b6-m4xhz": 2})) as api:
        result = run("drain.yml", inventory, api)
        assert result.status == "successful", result.host_messages(NODE)
        report = stats(result, NODE, "gpu_drain")
        assert report == {"scheduler": "kubernetes", "node": NODE, "action": "drained", "changed": True,
                          "evicted": ["llm-pretrain-7x2kq", "triton-5d9f7c8b6-m4xhz"], "host": NODE}
        assert api.node["spec"]["unschedulable"] is True
        assert api.node["metadata"]["annotations"]["gpu-fleet-upgrade/cordoned"] == "gpu-fleet-upgrade"
        assert sorted(p["metadata"]["name"] for p in api.pods) == [
            "node-exporter-gpu-node-01", "nvidia-device-plugin-daemonset-x7k2p"]
        posts = [p for m, p, _b in api.requests if m == "POST"]
        assert posts.count("/api/v1/namespaces/serving/pods/triton-5d9f7c8b6-m4xhz/eviction") == 3  # 429 twice
        body = json.loads(next(b for m, _p, b in api.requests if m == "POST"))
        assert body == {"apiVersion": "policy/v1", "kind": "Eviction",
                        "metadata": {"name": "llm-pretrain-7x2kq", "namespace": "research"}}

        again = run("drain.yml", inventory, api)
        assert stats(again, NODE, "gpu_drain") == {**report, "changed": False, "evicted": []}
        assert [m for m, _p, _b in api.requests].count("PATCH") == 1

        back = run("uncordon.yml", inventory, api)
        assert stats(back, NODE, "gpu_drain") == {"scheduler": "kubernetes", "node": NODE, "action": "resumed",
                                                  "changed": True, "host": NODE}
        assert "unschedulable" not in api.node["spec"]
        assert "gpu-fleet-upgrade/cordoned" not in api.node["metadata"]["annotations"]


def test_node_cordoned_by_hand_is_left_alone(inventory: Path) -> None:
    api = FakeApi()
    api.node["spec"]["unschedulable"] = True
    with serve(api):
        for playbook in ("drain.yml", "uncordon.yml"):
            result = run(playbook, inventory, api)
            assert result.status == "successful"
            assert stats(result, NODE, "gpu_drain")["action"] == "left_alone"  # type: ignore[index]
        assert [m for m, _p, _b in api.requests] == ["GET", "GET"]
        assert api.node["spec"]["unschedulable"] is True


def test_inventory_cordon_is_left_alone_without_calling_the_api(inventory: Path) -> None:
    with serve() as api:
        result = run("drain.yml", inventory, api, upgrade_cordoned=True, upgrade_cordon_reason="RMA ticket 42")
        assert stats(result, NODE, "gpu_drain") == {
            "scheduler": "kubernetes", "node": NODE, "action": "left_alone",
            "detail": "cordoned by hand (upgrade_cordoned): RMA ticket 42", "host": NODE}
        assert api.requests == []


def test_waiting_for_selected_pods_times_out_as_a_failed_result(inventory: Path) -> None:
    with serve() as api:
        result = run("drain.yml", inventory, api, k8s_wait_selector="gpu-job=true", k8s_wait_timeout_s=2)
        assert result.status == "failed" and result.rc != 0
        failed = [t for t in result.tasks if t.status == "failed"]
        assert [t.task for t in failed] == ["Wait for the selected pods to finish"]
        assert api.node["spec"]["unschedulable"] is True  # stays cordoned: the executor decides
        assert all(m != "POST" for m, _p, _b in api.requests)  # nothing evicted before the jobs finished
