"""The plan is the contract: one resolver, zero means zero, signed plans, grammars at every sink, unsafe vars.

Every sink of host or file text gets the same hostile inputs: ``{{ }}``, ``$( )``, ``;``, ``[ ]`` and ``,``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from orchestrator.adapters.ansible import run_playbook, stats, unsafe_vars_yaml
from orchestrator.knowledge import load_knowledge
from orchestrator.model.desired import load_desired
from orchestrator.model.grammar import check_node_name, check_var, is_build
from orchestrator.model.policy import RolloutPolicy, resolve
from orchestrator.model.stack import HostPackages
from orchestrator.planner import build_plan, load_plan
from orchestrator.planner.model import Step, StepKind
from tests.planner.fixtures import load_fleet

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ["-i", "inventories/example", "plans/example.yaml", "--facts", "inventories/example/facts.json",
           "--now", "2026-11-30T21:00:00+00:00"]
SCENARIO = ROOT / "tests" / "planner" / "scenarios" / "upgrade-h100"
HOSTILE = ["{{ lookup('pipe', 'touch /tmp/pwned') }}", "$(touch /tmp/pwned)", "1.0; touch /tmp/pwned",
           "gpu[1-6]", "a,b"]


def upgrade(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=120, check=False)


@pytest.mark.parametrize(("size", "total", "rounding", "want"), [
    (0, 10, "down", 0), ("0%", 10, "down", 0), (0, 10, "up", 0), ("0%", 10, "up", 0),
    (3, 10, "down", 3), (30, 10, "down", 10),
    ("10%", 5, "down", 1), ("10%", 5, "up", 1), ("25%", 10, "down", 2), ("25%", 10, "up", 3),
    ("50%", 4, "down", 2), ("100%", 7, "up", 7), ("34%", 6, "down", 2), ("1%", 0, "down", 0),
])
def test_the_one_resolver_rounds_as_documented(size: int | str, total: int, rounding: str, want: int) -> None:
    assert resolve(size, total, rounding) == want  # type: ignore[arg-type]


def _plan(**policy: object):  # type: ignore[no-untyped-def]
    fleet, _u, now = load_fleet(SCENARIO / "fleet.yaml")
    desired = load_desired(SCENARIO / "desired.yaml")
    base = (desired.policy or RolloutPolicy()).model_dump()
    base.update(windows=(), **policy)
    return build_plan(fleet, desired, RolloutPolicy.model_validate(base), load_knowledge(), now)


def test_max_unavailable_zero_freezes_the_pool() -> None:
    plan = _plan(max_unavailable=0)
    assert plan.waves == () and plan.pools[0].frozen
    assert {e.kind for e in plan.excluded} == {"frozen"}
    assert any("frozen" in w for w in plan.warnings)


def test_canary_zero_means_no_canary_wave() -> None:
    plan = _plan(canary=0)
    assert plan.waves and plan.waves[0].name == "wave-1"
    assert "no canary wave: the policy's canary is 0" in plan.warnings
    assert _plan(canary=1).waves[0].name == "canary"


def test_every_upgrade_step_names_its_playbook_package_and_build() -> None:
    plan = _plan()
    for host in plan.hosts:
        for step in host.steps:
            if step.kind == StepKind.CHANGE:
                assert step.playbook == "upgrade_host.yml" and step.package and step.build
                assert step.vars["upgrade_host_version"] == step.build
                assert step.vars["upgrade_host_package"] == step.package
            else:
                assert step.playbook in ("facts.yml", "drain.yml", "reboot.yml", "gate.yml", "uncordon.yml")
        assert host.rollback and host.rollback[-1].kind == StepKind.UNCORDON
        changes = [s for s in host.rollback if s.kind == StepKind.CHANGE]
        assert changes and all(s.build for s in changes)
        assert str(host.current.driver) in next(s.build for s in changes if s.component == "driver")


def test_the_plan_windows_budget_and_apply_share_one_duration_model() -> None:
    plan = _plan(soak=1800)
    for wave in plan.waves:
        assert wave.window_need_s == wave.estimate_s + 1800


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_builds_offered_by_a_host_are_never_planned(bad: str) -> None:
    fleet, _u, now = load_fleet(SCENARIO / "fleet.yaml")
    poisoned = []
    for h in fleet.hosts:
        offered = dict(h.packages.available)
        offered["libnccl2"] = (f"2.28.9-1+cuda13.0{bad}",)
        poisoned.append(h.model_copy(update={"packages": HostPackages(manager="apt", available=offered)}))
    fleet = fleet.model_copy(update={"hosts": tuple(poisoned)})
    desired = load_desired(SCENARIO / "desired.yaml")
    plan = build_plan(fleet, desired, None, load_knowledge(), now)
    assert not plan.waves
    assert {e.kind for e in plan.excluded} == {"no-build"}
    assert all(bad not in json.dumps(h.model_dump(mode="json")) for h in plan.hosts)


@pytest.mark.parametrize("bad", HOSTILE)
def test_every_grammar_refuses_hostile_text(bad: str) -> None:
    assert not is_build("580.95.05-1" + bad)
    assert check_node_name(bad, "slurm") is not None
    assert check_node_name(bad, "kubernetes") is not None
    assert check_var("upgrade_host_version", "1.0-1" + bad) is not None
    assert check_var("upgrade_host_package", "libnccl2" + bad) is not None
    assert check_var("drain_reason", "gpu-fleet-upgrade " + bad) is not None
    with pytest.raises(ValueError, match=r"grammar|package name|not a package version"):
        Step(id="03-nccl", kind=StepKind.CHANGE, estimate_s=1, playbook="upgrade_host.yml",
             vars={"upgrade_host_version": "2.28.9-1" + bad})


def test_plain_names_pass_the_grammars() -> None:
    assert check_node_name("gpu-h100-01", "slurm") is None and check_node_name("node-1.example", "kubernetes") is None
    assert is_build("1:4.2.3-1") and is_build("2.18.5-1-2") and is_build("440.64.00-1.el7")
    assert is_build("9.17.0.29-1~ubuntu24.04")


@pytest.mark.parametrize("node", ["gpu-h100-0[1-6]", "a,b", "gpu 1"])
def test_an_inventory_slurm_hostlist_is_refused_in_one_line(tmp_path: Path, node: str) -> None:
    inv = tmp_path / "hosts.yml"
    inv.write_text(json.dumps({"all": {"hosts": {"gpu-1": {
        "ansible_host": "127.0.0.1", "upgrade_pool": "p", "upgrade_scheduler": "slurm",
        "upgrade_scheduler_node": node}}}}))
    proc = upgrade("facts", "-i", str(inv), "--snapshot", "inventories/example/facts.json")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "upgrade_scheduler_node" in proc.stderr and "hostlist" in proc.stderr


def test_extra_vars_reach_ansible_as_data_never_as_templates(tmp_path: Path) -> None:
    """The real sink: ansible-playbook on the controller, with a value that would run a command if templated."""
    marker = tmp_path / "pwned"
    books = tmp_path / "books"
    books.mkdir()
    (books / "facts.yml").write_text("---\n[]\n")
    (books / "echo.yml").write_text(
        "---\n- name: Echo\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Report\n      ansible.builtin.set_stats:\n        data:\n"
        "          echo: {value: \"{{ payload }}\", nested: \"{{ deep.entries[0] }}\"}\n        per_host: true\n")
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(f"local ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    payload = f"{{{{ lookup('pipe', 'touch {marker}') }}}}"
    os.environ["UPGRADE_PLAYBOOKS"] = str(books)
    try:
        result = run_playbook("echo.yml", inventory, limit="local",
                              extravars={"payload": payload, "deep": {"entries": [payload + "$(id);"]}})
    finally:
        del os.environ["UPGRADE_PLAYBOOKS"]
    assert result.status == "successful", result.host_messages("local")
    assert not marker.exists()
    echoed = stats(result, "local", "echo")
    assert echoed == {"value": payload, "nested": payload + "$(id);"}
    assert "!unsafe" in unsafe_vars_yaml({"a": "x"})


def _keys(tmp_path: Path) -> tuple[Path, Path]:
    private = Ed25519PrivateKey.generate()
    priv = tmp_path / "plan.key"
    priv.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    pub = tmp_path / "plan.pub"
    pub.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv, pub


@pytest.mark.parametrize("kind", ["ed25519", "hmac"])
def test_signed_plans_verify_and_an_edited_re_hashed_plan_is_refused(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "plan.json"
    if kind == "ed25519":
        sign_key, verify_key = (str(p) for p in _keys(tmp_path))
        env: dict[str, str] = {}
    else:
        sign_key = verify_key = "env:PLAN_SECRET"
        env = {"PLAN_SECRET": "a-long-shared-secret-of-the-ci"}
    made = upgrade("plan", *EXAMPLE, "-o", str(out), "--sign", sign_key, env=env)
    assert made.returncode == 0, made.stderr
    ok = upgrade("apply", str(out), "--verify", verify_key, "--dry-run", "--wave", "canary", env=env)
    assert ok.returncode == 0, ok.stderr
    assert "upgrade_host.yml" in ok.stdout and "dry run: nothing was touched" in ok.stdout
    # an attacker deletes the gates and re-hashes: the hash is fine, the signature is not
    from orchestrator.planner.artifact import plan_text
    data = json.loads(out.read_text())
    data["step_lists"] = [[s for s in steps if s["kind"] != "gate"] for steps in data["step_lists"]]
    out.write_text(plan_text(data))
    refused = upgrade("apply", str(out), "--verify", verify_key, "--dry-run", env=env)
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0 and "changed after signing" in refused.stderr
    missing = upgrade("apply", str(out), "--verify", verify_key, "--dry-run",
                      env={**env, "HOME": str(tmp_path)})
    (tmp_path / "plan.json.sig").unlink()
    gone = upgrade("apply", str(out), "--verify", verify_key, "--dry-run", env=env)
    assert missing.returncode == 2 and gone.returncode == 2 and "no signature file" in gone.stderr


def test_dry_run_json_lists_exact_steps(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    assert upgrade("plan", *EXAMPLE, "-o", str(out)).returncode == 0
    proc = upgrade("apply", str(out), "--dry-run", "--wave", "canary", "--output", "json",
                   "--state-dir", str(tmp_path / "state"))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    plan = load_plan(out)
    wave = doc["waves"][0]
    assert wave["name"] == "canary" and wave["failure_budget"] == plan.waves[0].failure_budget
    first = wave["hosts"][0]
    assert [s["id"] for s in first["steps"]] == [s.id for s in plan.host(first["host"]).steps]
    assert all(s["build"] for s in first["steps"] if s["kind"] == "change")
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("args", [["--now", "garbage"], ["--now", "2026-13-01"]])
def test_apply_now_garbage_is_one_line(tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "plan.json"
    assert upgrade("plan", *EXAMPLE, "-o", str(out)).returncode == 0
    proc = upgrade("apply", str(out), *args, "--yes", "--state-dir", str(tmp_path / "s"))
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "--now" in proc.stderr


def test_a_plan_naming_a_host_absent_from_its_hosts_is_refused(tmp_path: Path) -> None:
    from orchestrator.planner.artifact import plan_text
    out = tmp_path / "plan.json"
    assert upgrade("plan", *EXAMPLE, "-o", str(out)).returncode == 0
    data = json.loads(out.read_text())
    data["waves"][0]["hosts"] = [*data["waves"][0]["hosts"], "intruder-01"]
    out.write_text(plan_text(data))
    proc = upgrade("apply", str(out), "--dry-run")
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "intruder-01" in proc.stderr
