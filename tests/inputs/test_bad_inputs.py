"""The hostile tester's hand-made cases (issue #12), one row each, through the real CLI entry point.

Each row: the command, the exit code the README documents, and a phrase of the one error line; the line
must also name the input (file, host or option). Nothing may hang: every run is under a time bound.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.adapters.journal import Journal
from orchestrator.planner import load_plan
from orchestrator.run.states import HostState
from tests.inputs.cli import DESIRED, EXAMPLE, FACTS, NIGHT, judge, upgrade

BASE = DESIRED.read_text()
POLICY_SOAK = "  soak: 30m "


def inventory(tmp: Path, text: str, name: str = "hosts.yml") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def yaml_host(var: str) -> str:
    return f"all:\n  hosts:\n    n1:\n      upgrade_pool: p\n      upgrade_model: H100\n      {var}\n"


def desired(tmp: Path, old: str, new: str) -> Path:
    assert old in BASE
    path = tmp / "desired.yaml"
    path.write_text(BASE.replace(old, new, 1))
    return path


def facts(tmp: Path, change: Callable[[dict], None]) -> Path:  # type: ignore[type-arg]
    data = json.loads(FACTS.read_text())
    change(data)
    path = tmp / "facts.json"
    path.write_text(json.dumps(data))
    return path


def fifo(tmp: Path, name: str) -> Path:
    path = tmp / name
    os.mkfifo(path)
    return path


def plan_args(target: Path, inv: Path = EXAMPLE, snap: Path = FACTS, *extra: str) -> list[str]:
    return ["plan", "-i", str(inv), str(target), "--facts", str(snap), "--now", NIGHT, "--output", "json", *extra]


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))

# the same bomb as one flow value, for a host variable
BOMB_FLOW = "[&a [x, x, x, x, x, x, x, x, x, x], " + ", ".join(
    f"&{c} [{', '.join(['*' + p] * 10)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)) + "]"

# (id, build(tmp) -> (args, names the error line may use), exit code, phrase of the error line)
Case = tuple[str, Callable[[Path], tuple[list[str], list[str]]], int, str]


def _inv(text: str, name: str = "hosts.yml") -> Callable[[Path], tuple[list[str], list[str]]]:
    def build(tmp: Path) -> tuple[list[str], list[str]]:
        path = inventory(tmp, text, name)
        return plan_args(DESIRED, path, FACTS, "-o", str(tmp / "p.json")), [str(path)]
    return build


def _des(old: str, new: str) -> Callable[[Path], tuple[list[str], list[str]]]:
    def build(tmp: Path) -> tuple[list[str], list[str]]:
        path = desired(tmp, old, new)
        return plan_args(path, EXAMPLE, FACTS, "-o", str(tmp / "p.json")), [str(path)]
    return build


def _facts(change: Callable[[dict], None]) -> Callable[[Path], tuple[list[str], list[str]]]:  # type: ignore[type-arg]
    def build(tmp: Path) -> tuple[list[str], list[str]]:
        path = facts(tmp, change)
        return plan_args(DESIRED, EXAMPLE, path, "-o", str(tmp / "p.json")), [str(path)]
    return build


def _raw_input(kind: str, make: Callable[[Path], Path]) -> Callable[[Path], tuple[list[str], list[str]]]:
    """The same bad file given as each kind of input."""
    def build(tmp: Path) -> tuple[list[str], list[str]]:
        path = make(tmp)
        out = str(tmp / "p.json")
        args = {"desired": plan_args(path, EXAMPLE, FACTS, "-o", out),
                "facts": plan_args(DESIRED, EXAMPLE, path, "-o", out),
                "inventory": plan_args(DESIRED, path, FACTS, "-o", out),
                "site": ["compat", "--gpu", "H100", "--driver", "580.95.05", "--site", str(path)],
                "plan": ["apply", str(path), "--yes", "--state-dir", str(tmp / "state")],
                "manifest": ["knowledge", "import", str(path), "--site", str(tmp / "site.yaml"), "--dry-run"]}[kind]
        return args, [str(path)]
    return build


def _bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(data)
        return path
    return make


def _dev_zero(tmp: Path) -> Path:
    return Path("/dev/zero")


def _folder(tmp: Path) -> Path:
    (tmp / "folder").mkdir()
    return tmp / "folder"


def _fifo(tmp: Path) -> Path:
    return fifo(tmp, "pipe")


KINDS = ["desired", "facts", "inventory", "site", "plan", "manifest"]
RAW: list[Case] = [
    *[(f"{k}-not-utf8", _raw_input(k, _bytes("latin1", b"version: 1\nname: \xe9t\xe9\n")), 2, "not UTF-8")
      for k in KINDS],
    *[(f"{k}-fifo", _raw_input(k, _fifo), 2, "FIFO") for k in KINDS],
    *[(f"{k}-dev-zero", _raw_input(k, _dev_zero), 2, "") for k in KINDS],
    *[(f"{k}-nested-2000", _raw_input(k, _bytes("deep.json", b"[" * 2000 + b"]" * 2000)), 2, "nested")
      for k in KINDS],
    *[(f"{k}-nested-100000", _raw_input(k, _bytes("deeper.json", b"[" * 100000 + b"]" * 100000)), 2, "")
      for k in KINDS],
    *[(f"{k}-alias-bomb", _raw_input(k, _bytes("bomb.yaml", BOMB.encode())), 2, "") for k in KINDS
      if k not in ("facts", "plan")],
    *[(f"{k}-duplicate-keys", _raw_input(k, _bytes("dup.yaml", b"version: 1\nversion: 1\n")), 2, "duplicate key")
      for k in ("desired", "site", "inventory")],
    *[(f"{k}-duplicate-keys", _raw_input(k, _bytes("dup.json", b'{"a": 1, "a": 2}')), 2, "duplicate key")
      for k in ("facts", "plan", "manifest")],
    ("desired-folder", _raw_input("desired", _folder), 2, "directory"),
    ("facts-folder", _raw_input("facts", _folder), 2, "directory"),
    ("plan-folder", _raw_input("plan", _folder), 2, "directory"),
    ("desired-too-large", _raw_input("desired", _bytes("big.yaml", b"# x\n" * (5 * 1024 * 1024))), 2, "too large"),
]

INVENTORY: list[Case] = [
    ("old-name-maybe", _inv("[p]\nn1 gpu_pool=p gpu_model=H100 gpu_managed=maybe\n", "hosts.ini"), 2,
     "host n1: gpu_managed: 'maybe' is not a boolean"),
    ("typo-in-our-namespace", _inv(yaml_host("upgrade_rak: r1")), 2, "host n1: unknown variable upgrade_rak"),
    ("pool-from-group-empty-item", lambda tmp: (
        plan_args(DESIRED, EXAMPLE, FACTS, "-o", str(tmp / "p.json"), "--pool-from-group", "a,,b"),
        ["--pool-from-group"]), 2, "--pool-from-group"),
    ("gpu-managed-maybe", _inv("[p]\nn1 upgrade_pool=p upgrade_model=H100 upgrade_managed=maybe\n", "hosts.ini"), 2,
     "host n1: upgrade_managed: 'maybe' is not a boolean"),
    ("port-list", _inv(yaml_host("ansible_port: [22]")), 2, "host n1: ansible_port: expected a whole number"),
    ("port-float", _inv(yaml_host("ansible_port: 22.7")), 2, "ansible_port: expected a whole number, got float"),
    ("port-bool", _inv(yaml_host("ansible_port: true")), 2, "ansible_port: expected a whole number, got bool"),
    ("port-range", _inv(yaml_host("ansible_port: 70000")), 2, "ansible_port: 70000 is not between 1 and 65535"),
    ("pool-list", _inv(yaml_host("upgrade_rack: ['a']")), 2, "upgrade_rack: expected a name, got list"),
    ("pool-list-ini", _inv("[p]\nn1 upgrade_pool=\"['a']\" upgrade_model=H100\n", "hosts.ini"), 2,
     "upgrade_pool: expected a name, got list"),
    ("pool-mapping", _inv(yaml_host("upgrade_switch: {a: 1}")), 2, "upgrade_switch: expected a name, got dict"),
    ("count-float", _inv(yaml_host("upgrade_gpu_count: 7.5")), 2, "upgrade_gpu_count: expected a whole number"),
    ("nvswitch-maybe", _inv(yaml_host("upgrade_nvswitch: maybe")), 2, "upgrade_nvswitch: 'maybe' is not a boolean"),
    ("alias-bomb-host-var", _inv(yaml_host("upgrade_rack: " + BOMB_FLOW)), 2, "once aliases are expanded"),
    ("duplicate-host-key", _inv("all:\n  hosts:\n    n1: {upgrade_pool: p}\n    n1: {upgrade_pool: q}\n"), 2,
     "duplicate key 'n1'"),
    ("inventory-fifo-in-folder", lambda tmp: (
        (tmp / "inv").mkdir(), inventory(tmp / "inv", "[p]\nn1 upgrade_pool=p\n", "hosts.ini"), fifo(tmp / "inv", "x"),
        (plan_args(DESIRED, tmp / "inv"), [str(tmp / "inv")]))[-1], 2, "FIFO"),
]

POLICY: list[Case] = [
    ("huge-soak", _des(POLICY_SOAK, "  soak: 99999999999999 "), 2, "policy.soak"),
    ("huge-soak-text", _des(POLICY_SOAK, "  soak: 99999999d "), 2, "policy.soak"),
    ("growth-inf", _des('  waves: ["25%", "50%", "100%"]', "  growth: .inf"), 2, "not a finite number"),
    ("growth-huge", _des('  waves: ["25%", "50%", "100%"]', "  growth: 1e300"), 2, "policy.growth"),
    ("canary-huge", _des("  canary: 1 ", "  canary: 100000000 "), 2, "policy.canary"),
    ("canary-float", _des("  canary: 1 ", "  canary: 1.0 "), 2, "policy.canary"),
    ("canary-bool", _des("  canary: 1 ", "  canary: true "), 2, "policy.canary"),
    ("start-number", _des('start: "20:00"', "start: 2200"), 2, "policy.windows.0.start: 2200 is not a time"),
    ("start-sexagesimal", _des('start: "20:00"', "start: 20:00"), 2, "policy.windows.0.start: 1200 is not a time"),
    ("window-empty", _des('start: "20:00", end: "08:00"', 'start: "08:00", end: "08:00"'), 2, "empty window"),
    ("dcgm-junk", _des('dcgm: "4.2.3"', 'dcgm: "4.2.3; touch /tmp/x"'), 2, "pools.train-h100.target.dcgm"),
    ("cuda-float", _des('cuda: "13.0"', "cuda: 13.0"), 2, "pools.train-h100.target.cuda"),
    ("production-yes", _des("    workloads:\n      - {name: llm", "    production: 'yes'\n    workloads:\n"
                            "      - {name: llm"), 2, "pools.train-h100.production"),
    ("version-true", _des("version: 1", "version: true"), 2, "version"),
    ("pool-groups-list", _des("version: 1", "version: 1\npool_groups: [slurm-node]"), 2, "pool_groups"),
    ("pool-groups-empty-pool", _des("version: 1", "version: 1\npool_groups: {slurm-node: ''}"), 2, "pool_groups"),
    ("per-domain-huge", _des("max_per_domain: {rack: 2}", "max_per_domain: {rack: 99999999}"), 2,
     "policy.max_per_domain: 99999999 is not between 0 and 1000000"),
    ("timezone-path", _des("timezone: Europe/Berlin", "timezone: ../../../../etc/passwd"), 2, "unknown time zone"),
]


def _unique(data: dict) -> None:  # type: ignore[type-arg]
    data["hosts"].append(data["hosts"][0])


def _bad_dcgm(data: dict) -> None:  # type: ignore[type-arg]
    data["hosts"][0]["dcgm"]["version"] = "4.2.3 && reboot"


FACTS_CASES: list[Case] = [
    ("facts-schema-2", _facts(lambda d: d.update(schema_version=2)), 2, "schema_version"),
    ("facts-host-twice", _facts(_unique), 2, "is listed more than once"),
    ("facts-version-junk", _facts(_bad_dcgm), 2, "not a valid version"),
    ("facts-count-string", _facts(lambda d: d["hosts"][0]["gpus"][0].update(index="0")), 2, "index"),
    ("facts-nan", lambda tmp: (lambda p: (plan_args(DESIRED, EXAMPLE, p), [str(p)]))(
        _bytes("nan.json", FACTS.read_bytes().replace(b'"schema_version": 1', b'"schema_version": NaN', 1))(tmp)),
     2, "NaN"),
]


def _plan_out(kind: str) -> Callable[[Path], tuple[list[str], list[str]]]:
    def build(tmp: Path) -> tuple[list[str], list[str]]:
        target = {"folder": _folder, "fifo": _fifo, "device": lambda t: Path("/dev/null")}[kind](tmp)
        return plan_args(DESIRED, EXAMPLE, FACTS, "-o", str(target)), [str(target)]
    return build


OUTPUT: list[Case] = [
    ("plan-now-year-9999", lambda tmp: ([*plan_args(DESIRED, EXAMPLE, FACTS, "-o", str(tmp / "p.json")),
                                         "--now", "9999-12-31T23:00:00+00:00"], ["--now"]), 2,
     "between the years 2000 and 2999"),
    ("plan-out-folder", _plan_out("folder"), 2, "it is a directory"),
    ("plan-out-fifo", _plan_out("fifo"), 2, "it is a FIFO"),
    ("plan-out-device", _plan_out("device"), 2, "it is a device"),
    ("site-markup-gpu", lambda tmp: (["compat", "--gpu", "[/x] [bold]H", "--driver", "580.95.05"], ["[/x] [bold]H"]),
     2, "GPU '[/x] [bold]H': unknown GPU model"),
]

CASES = RAW + INVENTORY + POLICY + FACTS_CASES + OUTPUT


@pytest.mark.parametrize(("build", "code", "phrase"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hand_made_case(tmp_path: Path, build: Callable[[Path], tuple[list[str], list[str]]], code: int,
                        phrase: str) -> None:
    args, names = build(tmp_path)
    result = upgrade(*args)
    judge(result, {code}, names)
    assert phrase in result.err, result.err
    if "-o" in args and code == 2:
        out = Path(args[args.index("-o") + 1])
        assert not out.is_file() or out == Path("/dev/null") or out.read_text() == ""


def _made_plan(tmp: Path) -> Path:
    out = tmp / "plan.json"
    result = upgrade(*plan_args(DESIRED, EXAMPLE, FACTS, "-o", str(out)))
    assert result.code == 0, result.err
    return out


def test_plan_out_writes_private_temp_then_renames_over_a_regular_file(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    out.write_text("old")
    out.chmod(0o640)
    result = upgrade(*plan_args(DESIRED, EXAMPLE, FACTS, "-o", str(out)))
    assert result.code == 0, result.err
    assert load_plan(out).plan_hash and (out.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]  # no temp file left beside it


def _journal_with(tmp: Path, reason: str) -> Path:
    state = tmp / "state"
    with Journal(state / "journal.db") as journal:
        run = journal.start_run("f" * 64, "plan.json")
        journal.set_state(run, "gpu-h100-01", "canary", HostState.FAILED, reason)
    return state


def test_status_shows_user_text_as_it_is(tmp_path: Path) -> None:
    reason = "E: lock [/var/lib/dpkg/lock] [bold]held[/] :smile: \\[x]"
    state = _journal_with(tmp_path, reason)
    result = upgrade("status", "--state-dir", str(state))
    judge(result, {0}, [])
    assert reason in result.out.replace("\n", "") or all(part in result.out for part in reason.split())
    assert (state.stat().st_mode & 0o777) == 0o700
    assert all((p.stat().st_mode & 0o777) == 0o600 for p in state.iterdir() if p.is_file())


@pytest.mark.parametrize(("sql", "phrase"), [
    ("UPDATE host_state SET state = 'bogus'", "damaged host_state row"),
    ("UPDATE events SET data = '{not json'", "damaged events row"),
    ("UPDATE runs SET summary = '[1'", "damaged runs row"),
])
def test_status_with_a_damaged_journal_row(tmp_path: Path, sql: str, phrase: str) -> None:
    state = _journal_with(tmp_path, "ok")
    if "runs" in sql:
        with Journal(state / "journal.db") as journal:
            run = journal.runs()[0].id
            journal.finish_run(run, "done", {})
    db = sqlite3.connect(state / "journal.db")
    db.execute(sql)
    db.commit()
    db.close()
    result = upgrade("status", "--state-dir", str(state))
    judge(result, {2}, [str(state / "journal.db")])
    assert phrase in result.err


@pytest.mark.parametrize("kind", ["garbage", "folder", "fifo"])
def test_status_and_apply_with_unusable_state_files(tmp_path: Path, kind: str) -> None:
    plan = _made_plan(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    for name in ("journal.db", "apply.lock"):
        path = state / name
        if kind == "garbage":
            path.write_bytes(b"\x00\xffnot sqlite, not json" * 100)
        elif kind == "folder":
            path.mkdir()
        else:
            os.mkfifo(path)
    result = upgrade("status", "--state-dir", str(state))
    judge(result, {2}, [str(state / "journal.db")])
    if kind != "garbage":  # a garbage lock file is a stale holder's note: taken over, tested elsewhere
        result = upgrade("apply", str(plan), "--yes", "--wave", "canary", "--now", NIGHT, "--facts", str(FACTS),
                         "--state-dir", str(state))
        judge(result, {2}, [str(state / "apply.lock")])
