"""A planted secret given as an extra var (``-e @FILE``) is left nowhere: not in the state folder, the temp
folder or the output, after a normal run and after ``kill -9`` followed by the next start.

Real ansible-playbook runs against localhost over a local connection, through ansible-runner, in a child
process that is killed for real.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from orchestrator.adapters.extravars import extra_vars
from orchestrator.errors import InputError

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import json, sys
    from orchestrator.adapters.ansible import run_playbook
    from orchestrator.adapters.extravars import extra_vars
    playbook, inventory, *args = sys.argv[1:]
    result = run_playbook(playbook, inventory, extravars=extra_vars(args))
    print(json.dumps({"status": result.status, "rc": result.rc, "hosts": result.hosts}))
""")


@pytest.fixture()
def world(tmp_path: Path) -> dict[str, Path]:
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "facts.yml").write_text("- hosts: all\n  gather_facts: false\n  tasks: []\n")
    (books / "ok.yml").write_text(textwrap.dedent("""
        - hosts: all
          gather_facts: false
          tasks:
            - ansible.builtin.command: "true"
        """))
    (books / "slow.yml").write_text(textwrap.dedent("""
        - hosts: all
          gather_facts: false
          tasks:
            - ansible.builtin.command: sleep 4
        """))
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    secret = f"planted-{uuid.uuid4().hex}"
    secrets = tmp_path / "secrets.yml"
    secrets.write_text(f"upgrade_planted_secret: {secret}\nansible_become_password: {secret}\n")
    secrets.chmod(0o600)
    temp = tmp_path / "tmp"
    temp.mkdir()
    return {"books": books, "inventory": inventory, "secrets": secrets, "state": tmp_path / "state", "tmp": temp,
            "secret": Path(secret)}


def _env(world: dict[str, Path]) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "UPGRADE_PLAYBOOKS": str(world["books"]),
            "UPGRADE_STATE_DIR": str(world["state"]), "TMPDIR": str(world["tmp"])}


def _child(world: dict[str, Path], playbook: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", CHILD, playbook, str(world["inventory"]), f"@{world['secrets']}"],
                            env=_env(world), cwd=world["tmp"].parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _holding(folder: Path, secret: str) -> list[Path]:
    found = []
    for path in folder.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink() and secret.encode() in path.read_bytes():
                found.append(path)
        except OSError:
            continue
    return found


def _working_in(folder: Path) -> list[int]:
    """Processes whose working folder is inside ``folder`` (ansible-runner starts ansible-playbook there)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cwd = (proc / "cwd").resolve()
        except OSError:
            continue
        if proc.name.isdigit() and (cwd == folder.resolve() or folder.resolve() in cwd.parents):
            pids.append(int(proc.name))
    return pids


def _finish(world: dict[str, Path], playbook: str) -> str:
    child = _child(world, playbook)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert '"status": "successful"' in out, out
    return out + err


def test_normal_run_leaves_no_secret_behind(world: dict[str, Path]) -> None:
    secret = str(world["secret"])
    output = _finish(world, "ok.yml")
    assert secret not in output
    assert _holding(world["state"], secret) == [] and _holding(world["tmp"], secret) == []
    assert stat.S_IMODE(world["state"].stat().st_mode) == 0o700
    assert stat.S_IMODE((world["state"] / "runner").stat().st_mode) == 0o700


def test_kill_9_then_next_start_removes_the_private_data(world: dict[str, Path]) -> None:
    secret = str(world["secret"])
    child = _child(world, "slow.yml")
    runner = world["state"] / "runner"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(runner.glob(f"run-{child.pid}-*/extravars.yml")):
        time.sleep(0.1)
    [extravars] = list(runner.glob(f"run-{child.pid}-*/extravars.yml"))
    while time.monotonic() < deadline and not _working_in(extravars.parent):
        time.sleep(0.1)
    assert _working_in(extravars.parent)  # ansible-playbook is running, in the run's folder
    time.sleep(1)
    os.kill(child.pid, signal.SIGKILL)
    out, err = child.communicate(timeout=30)
    # while the dead run's folder is there, the secret is only in it, and it is private to its owner
    holders = _holding(world["state"], secret)
    assert extravars in holders and all(runner in p.parents for p in holders), holders
    assert stat.S_IMODE(extravars.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(extravars.stat().st_mode) == 0o600
    assert _holding(world["tmp"], secret) == [] and secret not in out + err
    # the orphaned ansible-playbook (it works in the dead run's folder) exits on its closed terminal
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _working_in(extravars.parent):
        time.sleep(0.2)
    assert not _working_in(extravars.parent)
    output = _finish(world, "ok.yml")  # the next start sweeps the dead run's folder
    assert not extravars.parent.exists()
    assert _holding(world["state"], secret) == [] and _holding(world["tmp"], secret) == []
    assert secret not in output


def test_extra_vars_from_file_environment_and_pairs(tmp_path: Path) -> None:
    vars_file = tmp_path / "v.yml"
    vars_file.write_text("a: 1\nb: {c: [1, 2]}\n")
    got = extra_vars([f"@{vars_file}", "a=2"], {"UPGRADE_VAR_token": "t", "UPGRADE_VAR_a": "0", "HOME": "/x"})
    assert got == {"token": "t", "a": "2", "b": {"c": [1, 2]}}


@pytest.mark.parametrize(("content", "arg", "problem"), [
    ("- a\n- b\n", "@{f}", "expected a mapping"),
    ("a: 1\na: 2\n", "@{f}", "duplicate key 'a'"),
    ("'bad name': 1\n", "@{f}", "is not a variable name"),
    (None, "@/dev/zero", "not a regular file"),
    (None, "novalue", "expected KEY=VALUE or @FILE"),
])
def test_bad_extra_vars_are_one_line(tmp_path: Path, content: str | None, arg: str, problem: str) -> None:
    f = tmp_path / "v.yml"
    if content is not None:
        f.write_text(content)
    with pytest.raises(InputError) as err:
        extra_vars([arg.format(f=f)], {})
    assert problem in str(err.value) and "\n" not in str(err.value)
