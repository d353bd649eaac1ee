"""The roles as the collection gpu_fleet.upgrade: built and installed with ansible-galaxy, used by FQCN from a
playbook of one's own, without the Python tool; every role's arguments are declared and checked by Ansible."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (ROOT / "playbooks" / "roles").iterdir() if p.is_dir())


def galaxy(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # only the test's own collections folder counts: a copy installed elsewhere on the machine must not
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(cwd / "collections")}
    return subprocess.run([str(Path(sys.executable).parent / "ansible-galaxy"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False, env=env)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The collection built from playbooks/ and installed into a folder of its own: what an Ansible team does."""
    work = tmp_path_factory.mktemp("collection")
    built = galaxy("collection", "build", str(ROOT / "playbooks"), "--output-path", str(work), cwd=work)
    assert built.returncode == 0, built.stderr
    tarball = next(work.glob("gpu_fleet-upgrade-*.tar.gz"))
    done = galaxy("collection", "install", "--force", str(tarball), "-p", str(work / "collections"), cwd=work)
    assert done.returncode == 0, done.stderr
    return work / "collections"


def play(collections: Path, tmp_path: Path, tasks: list[dict[str, object]]) -> subprocess.CompletedProcess[str]:
    playbook = tmp_path / "site.yml"
    playbook.write_text(yaml.safe_dump([{"name": "Use the collection", "hosts": "localhost", "gather_facts": False,
                                         "tasks": tasks}]))
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_ROLES_PATH": str(tmp_path),
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_PYTHON_INTERPRETER": sys.executable}
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           str(playbook)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


def test_every_role_declares_its_arguments() -> None:
    for role in ROLES:
        specs = yaml.safe_load((ROOT / "playbooks" / "roles" / role / "meta" / "argument_specs.yml").read_text())
        defaults_file = ROOT / "playbooks" / "roles" / role / "defaults" / "main.yml"
        defaults = yaml.safe_load(defaults_file.read_text()) or {} if defaults_file.exists() else {}
        options = specs["argument_specs"]["main"]["options"]
        assert set(defaults) <= set(options), f"{role}: {sorted(set(defaults) - set(options))} not declared"
        assert all(o.get("description") and o.get("type") for o in options.values()), role


def test_the_installed_collection_documents_every_role(installed: Path) -> None:
    """ansible-doc reads the installed collection: each role with its arguments, as a team would look them up."""
    doc = str(Path(sys.executable).parent / "ansible-doc")
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(installed), "ANSIBLE_NOCOLOR": "1"}
    listed = subprocess.run([doc, "-t", "role", "-l", "gpu_fleet.upgrade"], env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    assert listed.returncode == 0, listed.stderr
    roles = {line.rstrip(":") for line in listed.stdout.splitlines() if line.startswith("gpu_fleet.upgrade.")}
    assert roles == {f"gpu_fleet.upgrade.{r}" for r in ROLES}
    assert "reboot  : Reboot into the installed driver" in listed.stdout  # an entry point of its own
    shown = subprocess.run([doc, "-t", "role", "gpu_fleet.upgrade.upgrade_driver"], env=env, capture_output=True,
                           text=True, timeout=120, check=False)
    assert shown.returncode == 0, shown.stderr
    assert "upgrade_driver_flavor" in shown.stdout and "choices: [auto, open, proprietary]" in shown.stdout


def test_the_installed_collection_collects_facts_by_fqcn(installed: Path, tmp_path: Path) -> None:
    """upgrade_facts from the installed collection on this machine: its module and module_utils come from plugins/
    (no GPU here: the stack says so, no crash)."""
    done = play(installed, tmp_path, [
        {"name": "Collect", "ansible.builtin.include_role": {"name": "gpu_fleet.upgrade.upgrade_facts"}},
        {"name": "Show", "ansible.builtin.debug": {"msg": "STACK {{ ansible_facts.gpu_stack.driver.status }} "
                                                         "{{ ansible_facts.gpu_stack.schema_version }}"}}])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "gpu_fleet.upgrade.upgrade_facts : Collect the GPU software stack" in done.stdout
    assert re.search(r"STACK not_installed \d+", done.stdout), done.stdout[-2000:]


def test_the_collection_refuses_bad_arguments_before_touching_the_host(installed: Path, tmp_path: Path) -> None:
    done = play(installed, tmp_path, [
        {"name": "Change the driver", "ansible.builtin.include_role": {"name": "gpu_fleet.upgrade.upgrade_driver"},
         "vars": {"upgrade_driver_version": "580.95.05-0ubuntu1", "upgrade_driver_flavor": "closed"}}])
    assert done.returncode != 0
    assert "Validating arguments against arg spec 'main'" in done.stdout
    assert "upgrade_driver_flavor must be one of: auto, open, proprietary, got: closed" in done.stdout
    assert "Read the installed packages" not in done.stdout  # no task of the role ran


def test_the_installed_collection_runs_the_gate_module_from_its_module_utils(installed: Path, tmp_path: Path) -> None:
    """upgrade_gates' module imports its parsers from the collection's plugins/module_utils: it runs from an installed
    copy (no GPU here: the gate fails with the reason, the module does not crash)."""
    done = play(installed, tmp_path, [
        {"name": "Gate", "ansible.builtin.include_role": {"name": "gpu_fleet.upgrade.upgrade_gates"},
         "vars": {"upgrade_gates_level": 0, "upgrade_gates_health": False, "upgrade_gates_expect_driver": "580.95.05"}},
        {"name": "Show", "ansible.builtin.debug": {"msg": "GATE {{ upgrade_gates_report.passed }} "
                                                         "{{ upgrade_gates_report.problems | join('|') }}"}}])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"GATE False .*580.95.05", done.stdout), done.stdout[-2000:]


def test_the_cli_runs_this_checkouts_collection_by_fqcn(tmp_path: Path) -> None:
    """The entry playbooks name every role by FQCN, the roles ship no library/ of their own, the modules import
    only from the collection; run_playbook resolves gpu_fleet.upgrade to this checkout even when
    ANSIBLE_COLLECTIONS_PATH names another (here empty) folder."""
    from orchestrator.adapters.ansible import run_playbook

    for entry in sorted((ROOT / "playbooks").glob("*.yml")):
        if entry.name == "galaxy.yml":
            continue
        for play_ in yaml.safe_load(entry.read_text()):
            names = [r["role"] if isinstance(r, dict) else r for r in play_.get("roles", [])]
            names += [t["ansible.builtin.include_role"]["name"] for t in play_.get("tasks", [])
                      if "ansible.builtin.include_role" in t]
            assert names and all(n.startswith("gpu_fleet.upgrade.upgrade_") for n in names), (entry.name, names)
    assert not list((ROOT / "playbooks" / "roles").glob("*/library"))
    assert not list((ROOT / "playbooks" / "roles").glob("*/module_utils"))
    for module in (ROOT / "playbooks" / "plugins" / "modules").glob("*.py"):
        local = re.findall(r"^from ansible\.module_utils\.(\w+)", module.read_text(), re.M)
        assert set(local) <= {"basic"}, (module.name, local)
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"here ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    (tmp_path / "elsewhere").mkdir()
    old = os.environ.get("ANSIBLE_COLLECTIONS_PATH")
    os.environ["ANSIBLE_COLLECTIONS_PATH"] = str(tmp_path / "elsewhere")
    try:
        result = run_playbook("facts.yml", inventory, state=tmp_path / "state")
    finally:
        if old is None:
            os.environ.pop("ANSIBLE_COLLECTIONS_PATH", None)
        else:
            os.environ["ANSIBLE_COLLECTIONS_PATH"] = old
    assert result.status == "successful", [t.message for t in result.tasks]
    collected = [t for t in result.tasks if t.action == "gpu_fleet.upgrade.upgrade_stack_facts"]
    assert [t.host for t in collected] == ["here"]
    assert collected[0].result["ansible_facts"]["gpu_stack"]["driver"]["status"] == "not_installed"
