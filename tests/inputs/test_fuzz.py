"""Structural fuzzing of every input format through the real CLI entry point (hypothesis).

Each example takes a valid input of the offline example fleet (YAML and INI inventory, desired state with
its policy, facts snapshot, plan file, site knowledge), applies a few structural mutations (a value replaced
by a hostile one, a key deleted, renamed or added, a value wrapped in a list, stringified or nested deep, a
list item duplicated) and sometimes a byte-level one (truncated, invalid UTF-8, a line repeated so a key is
given twice, an alias bomb), then runs the command that reads it and checks the README's promise:
a documented exit code, no traceback or crash log, no run past its time bound, and on exit 2 one line that
names the input.

CI runs ``UPGRADE_FUZZ_EXAMPLES`` (default 12) examples per format with a fixed seed (about a minute and a
half); the longer run is in tests/inputs/README.md.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from orchestrator.planner import load_plan
from orchestrator.planner.artifact import sha256
from tests.inputs.cli import DESIRED, EXAMPLE, FACTS, NIGHT, Result, judge
from tests.inputs.cli import upgrade as run_upgrade

DATA = Path(__file__).resolve().parent / "data"
KNOWLEDGE = Path(__file__).resolve().parents[1] / "knowledge" / "data"
EXAMPLES = int(os.environ.get("UPGRADE_FUZZ_EXAMPLES", "12"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # the time bound is the alarm in tests/inputs/cli.py, which fails the example
    derandomize=os.environ.get("UPGRADE_FUZZ_RANDOM") is None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)

HOSTILE_TEXT = [
    "", " ", "[/x]", "[bold]x[/]", "E: lock [/var/lib/dpkg/lock]", ":smile:", "22:00", "2200", "24:00", "maybe",
    "yes", "off", "4.2.3; touch /tmp/x", "580.95.05", "13.0", "12.8", "9.17.0", "2.28.9-1+cuda13.0", "100%",
    "1000%", "-1", "1e309", "99999999d", "0s", "x" * 3000, "\x00", "line\nbreak", "\u00e9t\u00e9", "\u202e",
    "../../etc/passwd", "{{ lookup('pipe', 'id') }}", "$(id)", "`id`", "*a", "&a", "H100", "VoodooFX",
    "NVIDIA H100 80GB HBM3", "slurm", "kubernetes", "open", "proprietary", "canary", "Europe/Berlin", "UTC",
]
HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 2, 22, 65536, 2**31, 2**53 + 1, 10**20, 100_000_000]),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.5, 1.0, 22.7, 1e300]),
    st.sampled_from(HOSTILE_TEXT),
    st.text(max_size=20),
    st.lists(st.sampled_from([1, "a", None]), max_size=3),
    st.dictionaries(st.sampled_from(["a", "version", "driver", "start"]), st.sampled_from([1, "a"]), max_size=2),
)
KEYS = st.one_of(st.sampled_from(["version", "pools", "policy", "target", "driver", "upgrade_pool", "gpu_pool", "hosts",
                                  "schema_version", "host", "windows", "start", "", "[/x]", "gpu_rak"]),
                 st.text(min_size=1, max_size=12))
OPS = ["replace", "replace", "replace", "delete", "insert", "wrap", "stringify", "deep", "duplicate", "rename"]
BYTES = ["none"] * 9 + ["truncate", "bad-utf8", "repeat-line", "bomb", "nul"]


def _paths(doc: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, (*at, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _paths(value, (*at, i))


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def mutate(data: st.DataObject, doc: Any) -> Any:
    """One to three structural mutations of a parsed document."""
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            return data.draw(HOSTILE, label="whole document")
        path = data.draw(st.sampled_from(paths), label="path")
        parent, key = _get(doc, path[:-1]), path[-1]
        value = parent[key]
        op = data.draw(st.sampled_from(OPS), label="op")
        if op == "replace":
            parent[key] = data.draw(HOSTILE, label="value")
        elif op == "delete":
            del parent[key]
        elif op == "insert":
            target = value if isinstance(value, dict) else parent if isinstance(parent, dict) else None
            if target is not None:
                target[data.draw(KEYS, label="new key")] = data.draw(HOSTILE, label="new value")
            elif isinstance(parent, list):
                parent.insert(key, data.draw(HOSTILE, label="new item"))
        elif op == "wrap":
            parent[key] = [value]
        elif op == "stringify":
            parent[key] = str(value)
        elif op == "deep":
            nested: Any = value
            for _ in range(data.draw(st.sampled_from([30, 70, 300]), label="depth")):
                nested = [nested]
            parent[key] = nested
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(value))
        elif op == "rename" and isinstance(parent, dict):
            parent[data.draw(KEYS, label="renamed")] = parent.pop(key)
    return doc


def serialise(doc: Any, kind: str) -> str:
    if kind == "json":
        return json.dumps(doc, indent=1)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))


def damage(data: st.DataObject, text: str) -> bytes:
    """Sometimes a byte-level mutation on top of the structural ones."""
    raw = text.encode("utf-8")
    how = data.draw(st.sampled_from(BYTES), label="bytes")
    if how == "truncate" and raw:
        return raw[: data.draw(st.integers(0, len(raw) - 1), label="cut")]
    if how == "bad-utf8":
        at = data.draw(st.integers(0, len(raw)), label="at")
        return raw[:at] + b"\xff\xc3(" + raw[at:]
    if how == "repeat-line":
        lines = raw.splitlines(keepends=True) or [b"\n"]
        at = data.draw(st.integers(0, len(lines) - 1), label="line")
        return b"".join([*lines[:at + 1], lines[at], *lines[at + 1:]])
    if how == "bomb":
        return BOMB.encode() + raw
    if how == "nul":
        return raw.replace(b"\n", b"\x00\n", 1)
    return raw


def upgrade(*args: str) -> Result:
    """The CLI run, counted by exit code and first words of the error (``--hypothesis-show-statistics``)."""
    result = run_upgrade(*args)
    first = result.err_lines[-1].split(":")[0:1] if result.code == 2 and result.err_lines else []
    event(f"{args[0]} exit {result.code}")
    if first and result.err_lines[-1].startswith("error: "):
        event(f"{args[0]} error: " + " ".join(result.err_lines[-1].split(": ", 2)[-1].split()[:4]))
    return result


def write(folder: Path, name: str, raw: bytes) -> Path:
    path = folder / name
    path.write_bytes(raw)
    return path


def plan_args(desired: Path, inventory: Path, facts: Path, out: Path) -> list[str]:
    return ["plan", "-i", str(inventory), str(desired), "--facts", str(facts), "--now", NIGHT, "--output", "json",
            "-o", str(out)]


def check_plan_run(args: list[str], out: Path, names: list[str]) -> None:
    result = upgrade(*args)
    judge(result, {0, 2}, names)
    if result.code == 0:  # "0 plan made": the plan is written and reads back
        assert load_plan(out).plan_hash
    else:
        assert not out.exists()


@pytest.fixture(scope="module", autouse=True)
def crash_logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Crash logs go to a folder of this test's own; none may appear."""
    folder = tmp_path_factory.mktemp("crash")
    saved = tempfile.tempdir
    tempfile.tempdir = str(folder)
    yield
    tempfile.tempdir = saved
    assert not list(folder.glob("upgrade-crash-*")), [p.read_text()[-3000:] for p in folder.glob("upgrade-crash-*")]


def _run_in_tmp(body: Callable[[Path], None]) -> None:
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        body(Path(tmp))


DESIRED_DOC = yaml.safe_load(DESIRED.read_text())
FACTS_DOC = json.loads(FACTS.read_text())
INVENTORY_DOC = yaml.safe_load((DATA / "example-hosts.yml").read_text())
SITE_DOC = yaml.safe_load((KNOWLEDGE / "site_new_driver.yaml").read_text())


@FUZZ
@given(data=st.data())
def test_fuzz_desired_state_and_policy(data: st.DataObject) -> None:
    raw = damage(data, serialise(mutate(data, DESIRED_DOC), "yaml"))

    def body(tmp: Path) -> None:
        path = write(tmp, "desired.yaml", raw)
        check_plan_run(plan_args(path, EXAMPLE, FACTS, tmp / "p.json"), tmp / "p.json", [str(path)])
    _run_in_tmp(body)


@FUZZ
@given(data=st.data())
def test_fuzz_facts_snapshot(data: st.DataObject) -> None:
    raw = damage(data, serialise(mutate(data, FACTS_DOC), "json"))
    command = data.draw(st.sampled_from(["facts", "plan"]), label="command")

    def body(tmp: Path) -> None:
        path = write(tmp, "facts.json", raw)
        if command == "plan":
            check_plan_run(plan_args(DESIRED, EXAMPLE, path, tmp / "p.json"), tmp / "p.json", [str(path)])
        else:  # 0 clean, 1 drift / host problems / unreachable, 2 bad input
            judge(upgrade("facts", "-i", str(EXAMPLE), "--snapshot", str(path)), {0, 1, 2}, [str(path)])
    _run_in_tmp(body)


@FUZZ
@given(data=st.data())
def test_fuzz_yaml_inventory(data: st.DataObject) -> None:
    raw = damage(data, serialise(mutate(data, INVENTORY_DOC), "yaml"))

    def body(tmp: Path) -> None:
        path = write(tmp, "hosts.yml", raw)
        check_plan_run(plan_args(DESIRED, path, FACTS, tmp / "p.json"), tmp / "p.json", [str(path)])
    _run_in_tmp(body)


INI_VARS = ["upgrade_pool", "upgrade_model", "upgrade_gpu_count", "upgrade_rack", "upgrade_nvswitch", "upgrade_managed",
            "upgrade_cordoned", "upgrade_scheduler", "ansible_port", "ansible_host", "upgrade_cordon_reason",
            "gpu_pool", "gpu_rack", "gpu_clock_lock"]  # old names still read; a foreign gpu_* ignored
INI_VALUES = ["['a']", "{'a': 1}", "22.7", "maybe", "True", "0", "-1", "70000", "'[/x]'", "\"a b\"", "1e400",
              "(1, 2)", "None", "[/x]", "H100", "r01"]


@FUZZ
@given(data=st.data())
def test_fuzz_ini_inventory_folder(data: st.DataObject) -> None:
    lines = (EXAMPLE / "hosts.ini").read_text().splitlines(keepends=True)
    hosts = [i for i, line in enumerate(lines) if line.startswith(("gpu-", "login-"))]
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        i = data.draw(st.sampled_from(hosts), label="host line")
        var = data.draw(st.sampled_from(INI_VARS), label="var")
        value = data.draw(st.sampled_from(INI_VALUES), label="value")
        lines[i] = lines[i].rstrip("\n") + f" {var}={value}\n"
    raw = damage(data, "".join(lines))
    group_vars = data.draw(st.sampled_from(sorted(p.name for p in (EXAMPLE / "group_vars").iterdir())), label="gv")
    vars_doc = yaml.safe_load((EXAMPLE / "group_vars" / group_vars).read_text())
    vars_raw = damage(data, serialise(mutate(data, vars_doc), "yaml")) if data.draw(st.booleans()) else None

    def body(tmp: Path) -> None:
        inventory = tmp / "inventory"
        shutil.copytree(EXAMPLE / "group_vars", inventory / "group_vars")
        write(inventory, "hosts.ini", raw)
        names = [str(inventory)]
        if vars_raw is not None:
            names.append(str(write(inventory / "group_vars", group_vars, vars_raw)))
        check_plan_run(plan_args(DESIRED, inventory, FACTS, tmp / "p.json"), tmp / "p.json", names)
    _run_in_tmp(body)


@FUZZ
@given(data=st.data())
def test_fuzz_site_knowledge(data: st.DataObject) -> None:
    raw = damage(data, serialise(mutate(data, SITE_DOC), "yaml"))

    def body(tmp: Path) -> None:
        path = write(tmp, "site.yaml", raw)
        # 0 clean, 1 warnings only, 2 any error (bad input included)
        result = upgrade("compat", "--gpu", "H100", "--driver", "580.95.05", "--cuda", "13.0", "--site", str(path))
        judge(result, {0, 1, 2}, [str(path)])
    _run_in_tmp(body)


@pytest.fixture(scope="module")
def plan_doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("plan") / "example.plan.json"
    result = run_upgrade(*plan_args(DESIRED, EXAMPLE, FACTS, out))
    assert result.code == 0, result.err
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


@FUZZ
@given(data=st.data())
def test_fuzz_plan_file(plan_doc: dict[str, Any], data: st.DataObject) -> None:
    doc = mutate(data, plan_doc)
    if isinstance(doc, dict) and data.draw(st.booleans(), label="reseal"):  # past the hash, into the schema
        doc["plan_hash"] = sha256({k: v for k, v in doc.items() if k != "plan_hash"})
    raw = damage(data, serialise(doc, "json"))

    def body(tmp: Path) -> None:
        path = write(tmp, "plan.json", raw)
        # without --yes and without a terminal apply refuses before touching anything: 2 either way
        result = upgrade("apply", str(path), "--wave", "canary", "--state-dir", str(tmp / "state"))
        judge(result, {2}, [str(path)])
    _run_in_tmp(body)
