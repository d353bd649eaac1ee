"""Run the real CLI entry point (``run_guarded(app)``, what ``upgrade`` and ``python3 -m orchestrator`` call)
in this process, with output captured and a hard time bound, and judge the result by the README's rules."""

from __future__ import annotations

import contextlib
import io
import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from orchestrator.cli import app
from orchestrator.cli.output import run_guarded

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventories" / "example"
DESIRED = ROOT / "plans" / "example.yaml"
FACTS = EXAMPLE / "facts.json"
NIGHT = "2026-11-25T21:00:00+00:00"  # inside the example's maintenance window
TIME_BOUND_S = 60


class Hang(BaseException):
    """Raised by the alarm: a command ran past its time bound (BaseException, so nothing swallows it)."""


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


@contextlib.contextmanager
def _alarm(seconds: int) -> Iterator[None]:
    def ring(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def upgrade(*args: str, bound_s: int = TIME_BOUND_S) -> Result:
    out, err = io.StringIO(), io.StringIO()
    with _alarm(bound_s), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_guarded(app, list(args))
    return Result(code, out.getvalue(), err.getvalue())


# Lines that may come before the one error line: warnings and knowledge conflicts, both documented.
_NOTES = re.compile(r"^(warning|conflict): ")
# `upgrade plan` lists every reason no plan exists, then says how many (README: "2 invalid (every reason)").
_PLAN_REASONS = re.compile(r"^no plan made: \d+ reason\(s\)$")


def judge(result: Result, allowed: set[int], names: list[str]) -> None:
    """The README's promise: a documented exit code, no traceback or crash log, and on exit 2 one line
    (after any warnings) that names the input: one of ``names`` (a path, a host, an option)."""
    assert result.code in allowed, (result.code, result.err[-2000:])
    assert "Traceback" not in result.err + result.out, result.err[-2000:]
    assert "internal error" not in result.err, result.err[-2000:]
    if result.code != 2:
        return
    lines = [line for line in result.err_lines if not _NOTES.match(line)]
    if lines and _PLAN_REASONS.match(lines[-1]):
        assert all(line.startswith("error: ") for line in lines[:-1]) and len(lines) > 1, lines
        return
    assert len(lines) == 1, result.err
    assert any(name in lines[0] for name in names), (lines[0], names)
