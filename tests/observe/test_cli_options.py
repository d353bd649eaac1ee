"""apply's watching options on bad input: one line naming what is wrong, exit 2, nothing run."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tests.executor.test_apply_refusals import EXAMPLE, NIGHT, plan  # noqa: F401  (the example plan fixture)

ROOT = Path(__file__).resolve().parents[2]


def apply(plan_path: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", "apply", str(plan_path), "--wave", "canary", "--yes",
                           "--facts", str(EXAMPLE / "facts.json"), "--now", NIGHT, "--state-dir",
                           str(tmp_path / "state"), *extra], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          check=False, stdin=subprocess.DEVNULL)


def test_a_notify_target_that_is_no_url_is_refused(plan: Path, tmp_path: Path) -> None:  # noqa: F811
    done = apply(plan, tmp_path, "--notify", "ftp://hooks.example/x")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "notify target 'ftp://hooks.example/x': expected an http:// or https:// URL" in done.stderr
    assert not (tmp_path / "state" / "journal.db").exists()


def test_a_notify_target_in_an_unset_variable_is_refused(plan: Path, tmp_path: Path) -> None:  # noqa: F811
    done = apply(plan, tmp_path, "--notify", "env:GPU_UPGRADE_TEST_UNSET_HOOK")
    assert done.returncode == 2 and "environment variable GPU_UPGRADE_TEST_UNSET_HOOK is not set" in done.stderr


def test_a_taken_metrics_port_is_refused(plan: Path, tmp_path: Path) -> None:  # noqa: F811
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = apply(plan, tmp_path, "--metrics-port", str(port), "--metrics-addr", "127.0.0.1")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"--metrics-port {port}: cannot listen on 127.0.0.1:{port}" in done.stderr
    assert not (tmp_path / "state" / "journal.db").exists()
