"""One apply at a time: an exclusive ``flock`` on a lock file, with who holds it written inside.

The kernel drops a ``flock`` when its holder dies, even by ``kill -9``, so a lock left by a dead run is
detected as stale and taken over (and said so) instead of blocking the next CI job forever.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path
from typing import IO, Any

from orchestrator.adapters.files import open_private, private_dir
from orchestrator.errors import UpgradeError


class LockHeld(UpgradeError):
    """Another run holds the lock: it is alive (the kernel still holds its flock)."""

    def __init__(self, path: str, holder: dict[str, Any]) -> None:
        super().__init__(path, holder)
        self.path, self.holder = path, holder

    def __str__(self) -> str:
        who = ", ".join(f"{k} {v}" for k, v in sorted(self.holder.items())) or "unknown holder"
        return f"{self.path}: another apply is running ({who})"


class LockError(UpgradeError):
    """The lock file cannot be used (a folder, a FIFO, a link, no permission)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(path, problem)
        self.path, self.problem = path, problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


class RunLock:
    """Context manager: ``with RunLock(path, run_id=...) as lock: ...``; ``lock.stale_holder`` tells a takeover."""

    def __init__(self, path: str | Path, **info: Any) -> None:
        self.path = Path(path)
        self.info = {"pid": os.getpid(), "host": socket.gethostname(), **info}
        self.stale_holder: dict[str, Any] | None = None
        self._fh: IO[str] | None = None

    def acquire(self) -> RunLock:
        private_dir(self.path.parent, LockError)
        # owner-only, a regular file (never a FIFO or a link), held open for the lock's lifetime
        fh = os.fdopen(open_private(self.path, LockError), "r+", encoding="utf-8", errors="replace")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fh)
            fh.close()
            raise LockHeld(str(self.path), holder) from None
        previous = _read(fh)
        self.stale_holder = previous or None  # a file with content but no flock: its holder died
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(self.info, sort_keys=True))
        fh.flush()
        os.fsync(fh.fileno())
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is None:
            return
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.flush()
        fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
        self._fh.close()
        self._fh = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read(fh: IO[str]) -> dict[str, Any]:
    fh.seek(0)
    text = fh.read(4096).strip()
    if not text:
        return {}
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # garbage left in the file: shown, not trusted
        return {"content": text[:200]}
    return data if isinstance(data, dict) else {"content": text[:200]}
