"""The one place that talks to ansible-runner: inventory listing and playbook runs with typed results.

A failed playbook is a result (status, rc, per-host outcomes), not an exception; only "Ansible could not be
started at all" raises :class:`AnsibleError`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import ansible_runner
from ansible.release import __version__ as ansible_version  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict

from orchestrator.adapters import inventory_cache
from orchestrator.adapters.files import private_dir
from orchestrator.errors import AnsibleError, InventoryError
from orchestrator.loading import parse_json
from orchestrator.model.gates import GateResult

PLAYBOOK_DIR_ENV = "UPGRADE_PLAYBOOKS"
INVENTORY_TIMEOUT_S = 120


def _listing_error(where: str, problem: str) -> InventoryError:
    return InventoryError(where, f"ansible-inventory printed an unusable listing: {problem}")


class HostStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    SKIPPED = "skipped"


class TaskResult(BaseModel):
    """One task's outcome on one host, from a runner event."""

    model_config = ConfigDict(frozen=True)
    host: str
    task: str
    action: str
    status: HostStatus
    changed: bool = False
    message: str = ""
    result: dict[str, Any] = {}


class PlaybookResult(BaseModel):
    """What a playbook run did: runner status and rc, each host's last status and every task result."""

    model_config = ConfigDict(frozen=True)
    playbook: str
    status: str
    rc: int
    tasks: list[TaskResult] = []
    hosts: dict[str, HostStatus] = {}
    artifact_dir: str = ""

    def host_messages(self, host: str) -> list[str]:
        return [t.message for t in self.tasks if t.host == host and t.status != HostStatus.OK and t.message]


def playbooks_dir() -> Path:
    """Where the playbooks live: ``$UPGRADE_PLAYBOOKS``, the checkout's ``playbooks/``, or the bundled copy."""
    override = os.environ.get(PLAYBOOK_DIR_ENV)
    candidates = [Path(override)] if override else []
    package = Path(__file__).resolve().parents[1]
    candidates += [package.parent / "playbooks", package / "_bundled" / "playbooks"]
    for candidate in candidates:
        if (candidate / "facts.yml").is_file():
            return candidate
    raise AnsibleError(f"playbooks not found (looked in {', '.join(str(c) for c in candidates)})")


def collections_path(where: Path, playbooks: Path) -> Path:
    """A collections folder in ``where`` whose ``gpu_fleet.upgrade`` is ``playbooks``: the entry playbooks use the
    roles and modules by FQCN, so the CLI runs this checkout's collection, never a copy installed elsewhere."""
    link = where / "ansible_collections" / "gpu_fleet" / "upgrade"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(playbooks.resolve(), target_is_directory=True)
    return where


def list_inventory(path: str | Path, limit: str | None = None) -> dict[str, Any]:
    """``ansible-inventory --list``: Ansible's own parsing of INI, YAML, plugin and script inventories.

    A static inventory's listing is kept by its content (``inventory_cache``), so a big one is parsed once.
    """
    source = Path(path)
    if not source.exists():
        raise InventoryError(str(path), "inventory not found")
    binary = _ansible_bin("ansible-inventory")
    key = inventory_cache.cache_key(source, limit, _version_of(binary))
    cached = inventory_cache.load(key) if key else None
    if cached is not None and isinstance(cached.get("data"), dict):
        return dict(cached["data"])
    data = _list_inventory(source, binary, limit)
    if key:
        inventory_cache.store(key, {"data": data})
    return data


def yaml_before_auto() -> dict[str, str]:
    """``ANSIBLE_INVENTORY_ENABLED`` with Ansible's ``yaml`` plugin tried before ``auto``, else nothing.

    In Ansible's default order ``auto`` reads a YAML inventory first, to see whether it configures a plugin, and
    ``yaml`` then parses it again from a deep copy: 11 s instead of 6 s for 10,000 hosts. ``yaml`` declines a
    file that names a ``plugin:``, which ``auto`` then takes as before, so the listing is the same. The user's
    own list (ansible.cfg or the environment) is kept, only those two swapped."""
    try:
        from ansible import constants  # type: ignore[import-untyped]

        enabled = [str(p) for p in constants.INVENTORY_ENABLED]
    except Exception:  # an Ansible that does not say: leave its order alone
        return {}
    names = [p.rsplit(".", 1)[-1] for p in enabled]
    if "auto" not in names or "yaml" not in names or names.index("yaml") < names.index("auto"):
        return {}
    yaml_plugin = enabled.pop(names.index("yaml"))
    enabled.insert(names.index("auto"), yaml_plugin)
    return {"ANSIBLE_INVENTORY_ENABLED": ",".join(enabled)}


def _version_of(binary: str) -> str:
    """What identifies the Ansible that parses: the program's path and mtime, and ansible-core's version."""
    try:
        stamp = str(Path(binary).stat().st_mtime_ns)
    except OSError:
        stamp = "?"
    return f"{binary}:{stamp}:{ansible_version}"


def _list_inventory(source: Path, binary: str, limit: str | None) -> dict[str, Any]:
    path = source
    cmd = [binary, "-i", str(source), "--list"]
    if limit:
        cmd += ["--limit", limit]
    env = {**os.environ, "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_DEPRECATION_WARNINGS": "False", "ANSIBLE_DUPLICATE_YAML_DICT_KEY": "error",
           **yaml_before_auto()}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=INVENTORY_TIMEOUT_S,
                              check=False, stdin=subprocess.DEVNULL, errors="replace")
    except subprocess.TimeoutExpired:
        raise InventoryError(str(path), f"Ansible took more than {INVENTORY_TIMEOUT_S} s to read the inventory"
                             ) from None
    except OSError as exc:
        raise AnsibleError(f"could not run ansible-inventory: {exc}") from exc
    if proc.returncode != 0:
        raise InventoryError(str(path), _inventory_error_line(proc.stderr) or "Ansible could not parse the inventory")
    if limit and "Could not match supplied host pattern" in proc.stderr:
        raise InventoryError(str(path), f"--limit {limit!r} matches no host")
    data = parse_json(proc.stdout, str(path), _listing_error)
    if not isinstance(data, dict):
        raise InventoryError(str(path), "ansible-inventory returned something that is not an inventory")
    return data


def _ansible_bin(name: str) -> str:
    """Prefer the Ansible installed beside this Python (a venv) over whatever is first on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def _inventory_error_line(err: str) -> str:
    """The telling part of ansible-inventory's stderr: the first parser's complaint and where."""
    reason = ""
    origin = ""
    for line in err.splitlines():
        line = line.strip()
        if not reason and (m := re.search(r"Failed to parse inventory with '[\w.]+' plugin: (.*)", line)):
            reason = m.group(1).removeprefix("Failed to parse inventory: ")
        elif reason and not origin and line.startswith("Origin: "):
            origin = line.removeprefix("Origin: ")
        elif not reason and line.startswith("[ERROR]: "):
            reason = line.removeprefix("[ERROR]: ")
    if origin and ":" in origin.rsplit("/", 1)[-1]:
        return f"line {origin.split(':', 1)[1]}: {reason}"
    return reason


_VAR_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _unsafe(value: Any) -> str:
    """One value in YAML flow style, every string tagged ``!unsafe`` so that Ansible never templates it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_unsafe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_unsafe(v) for v in value) + "]"
    if value is None:
        return "null"
    return "!unsafe " + json.dumps(str(value))


def unsafe_vars_yaml(extravars: Mapping[str, Any]) -> str:
    """Extra vars as a YAML file for ``-e @FILE``: data only, never a template (host text is data)."""
    lines = []
    for key, value in extravars.items():
        if not _VAR_KEY.match(key):
            raise AnsibleError(f"extra var name {key!r} is not a variable name")
        lines.append(f"{key}: {_unsafe(value)}")
    return "---\n" + ("\n".join(lines) if lines else "{}") + "\n"
STATE_ENV = "UPGRADE_STATE_DIR"


def runner_root(state: Path | None = None) -> Path:
    """Where ansible-runner's private data folders live: ``runner/`` in the state folder (0700)."""
    return (state or Path(os.environ.get(STATE_ENV) or ".upgrade")) / "runner"


def _state_error(where: str, problem: str) -> AnsibleError:
    return AnsibleError(f"{where}: {problem}")


def sweep_runner_dirs(root: Path) -> list[Path]:
    """Remove the private data folders of runs whose process is gone (killed, crashed); returns them."""
    removed = []
    for child in root.glob("run-*-*"):
        pid = child.name.split("-")[1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_playbook(
    playbook: str,
    inventory: str | Path,
    *,
    limit: str | None = None,
    extravars: Mapping[str, Any] | None = None,
    forks: int = 20,
    timeout: int | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    keep_artifacts: bool = False,
    state: Path | None = None,
) -> PlaybookResult:
    """Run ``playbooks/<playbook>`` against the inventory and return typed per-host results."""
    playbooks = playbooks_dir()
    play_path = playbooks / playbook
    if not play_path.is_file():
        raise AnsibleError(f"playbook {play_path} not found")
    root = runner_root(state).absolute()  # ansible-runner works in the folder: every path must be absolute
    private_dir(root.parent, _state_error)
    private_dir(root, _state_error)
    sweep_runner_dirs(root)
    # Every extra var (a become password too) is written to extravars.yml in here: owner-only (mkdtemp
    # makes the folder 0700, the file is 0600), removed when the run ends, and by the next start if this
    # process is killed.
    tmp = tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=root)
    tasks: list[TaskResult] = []
    vars_file = Path(tmp) / "extravars.yml"
    collections = collections_path(Path(tmp) / "collections", playbooks)
    with os.fdopen(os.open(vars_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as fh:
        fh.write(unsafe_vars_yaml(dict(extravars or {})))

    def handle(event: dict[str, Any]) -> bool:
        task = _task_result(event)
        if task is not None:
            tasks.append(task)
        if on_event is not None:
            on_event(event)
        return True

    try:
        runner = ansible_runner.run(
            private_data_dir=tmp,
            playbook=str(play_path),
            inventory=str(Path(inventory).resolve()),
            limit=limit,
            cmdline=f"-e @{vars_file}",
            forks=forks,
            timeout=timeout,
            quiet=True,
            event_handler=handle,
            # SSH reconnects with Ansible's own backoff before a host counts as unreachable
            envvars={"ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_SSH_RETRIES": "3",
                     "ANSIBLE_HOST_KEY_CHECKING": "True",  # one transport, host keys verified
                     "ANSIBLE_LOCAL_TEMP": str(Path(tmp) / "tmp"),
                     # only this checkout's gpu_fleet.upgrade: the roles use nothing beyond ansible.builtin
                     "ANSIBLE_COLLECTIONS_PATH": str(collections),
                     **yaml_before_auto()},  # a big YAML inventory is parsed once per run, not twice
        )
    except Exception as exc:  # ansible-runner raises plain exceptions for configuration problems
        shutil.rmtree(tmp, ignore_errors=True)
        raise AnsibleError(f"could not start ansible-playbook for {playbook}: {exc}") from exc
    hosts: dict[str, HostStatus] = {}
    for task in tasks:
        if hosts.get(task.host) not in (HostStatus.FAILED, HostStatus.UNREACHABLE):
            hosts[task.host] = task.status
    result = PlaybookResult(
        playbook=playbook, status=str(runner.status), rc=int(runner.rc or 0), tasks=tasks, hosts=hosts,
        artifact_dir=str(runner.config.artifact_dir) if keep_artifacts else "",
    )
    if not keep_artifacts:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


_EVENT_STATUS = {
    "runner_on_ok": HostStatus.OK,
    "runner_on_failed": HostStatus.FAILED,
    "runner_on_unreachable": HostStatus.UNREACHABLE,
    "runner_on_skipped": HostStatus.SKIPPED,
}


def failure_reason(res: dict[str, Any]) -> str:
    """What a failed task says, cause first: a loop's failing item, not "All items completed"; the
    command's stderr tail; a module's own error. The whole text is kept (the journal stores it)."""
    items = res.get("results")
    if isinstance(items, list):
        failed = [i for i in items if isinstance(i, dict) and i.get("failed")]
        if failed:
            first = failed[0]
            item = first.get("item", first.get("ansible_loop_var", ""))
            label = f"item {item}: " if isinstance(item, str | int) and str(item) else ""
            return label + failure_reason(first)
    parts: list[str] = []
    msg = str(res.get("msg") or "").strip()
    if msg and msg not in ("All items completed", "non-zero return code"):
        parts.append(msg)
    for key in ("stderr", "module_stderr"):
        text = str(res.get(key) or "").strip()
        if text:
            tail = [line for line in text.splitlines() if line.strip()][-3:]
            parts.append(" / ".join(tail))
            break
    if not parts and res.get("rc") not in (None, 0):
        cmd = res.get("cmd")
        shown = " ".join(cmd) if isinstance(cmd, list) else str(cmd or "")
        parts.append(f"{shown} exited {res.get('rc')}".strip())
    if not parts and msg:
        parts.append(msg)
    return ": ".join(parts)


def _task_result(event: dict[str, Any]) -> TaskResult | None:
    status = _EVENT_STATUS.get(str(event.get("event")))
    if status is None:
        return None
    data = event.get("event_data") or {}
    res = data.get("res") or {}
    if status == HostStatus.FAILED and data.get("ignore_errors"):
        status = HostStatus.OK
    message = ""
    if status in (HostStatus.FAILED, HostStatus.UNREACHABLE) and isinstance(res, dict):
        reason = failure_reason(res)
        task = str(data.get("task", "")).strip()
        message = f"{task}: {reason}" if task and reason else reason
    return TaskResult(
        host=str(data.get("host", "")),
        task=str(data.get("task", "")),
        action=str(data.get("task_action", "")),
        status=status,
        changed=bool(res.get("changed", False)) if isinstance(res, dict) else False,
        message=message.strip(),
        result=res if isinstance(res, dict) else {},
    )


def stats(result: PlaybookResult, host: str, key: str) -> dict[str, Any] | None:
    """The ``ansible.builtin.set_stats`` data an entry playbook reported for one host under ``key``."""
    found = None
    for task in result.tasks:
        if task.host != host or task.action not in ("ansible.builtin.set_stats", "set_stats"):
            continue
        if task.status != HostStatus.OK:
            continue
        data = (task.result.get("ansible_stats") or {}).get("data") or {}
        if isinstance(data.get(key), dict):
            found = data[key]
    return found


def gate_result(result: PlaybookResult, host: str) -> GateResult | None:
    """The gate result of ``gate.yml`` for one host, or None when the playbook never got that far."""
    data = stats(result, host, "gpu_gate")
    return GateResult.model_validate(data) if data is not None else None
