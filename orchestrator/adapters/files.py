"""Files this tool writes: plans replaced atomically, only over regular files; state kept private (0700/0600).

Example::

    write_atomic(Path("plans/x.plan.json"), text, PlanFileError)   # temp file in plans/ + rename
    private_dir(Path(".upgrade"))                                   # created 0700, or tightened to it
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from orchestrator.errors import UpgradeError

MakeError = Callable[[str, str], UpgradeError]

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


def kind_of(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def write_atomic(path: Path, text: str, error: MakeError, what: str = "file") -> None:
    """Write ``text`` to a temp file beside ``path`` and rename it over; only a regular file is replaced."""
    where = str(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise error(where, f"cannot write {what} ({exc.strerror or exc})") from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise error(where, f"cannot write {what}: it is {kind_of(info.st_mode)}; give a regular file or a new name")
    umask = os.umask(0)
    os.umask(umask)
    mode = stat.S_IMODE(info.st_mode) if info is not None else 0o666 & ~umask
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise error(where, f"cannot write {what} ({exc.strerror or exc})") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def private_dir(path: Path, error: MakeError) -> Path:
    """A folder only its owner can enter: created 0700, or tightened to 0700 when we own it.

    A shared folder (sticky bit, such as /tmp) given as the state folder is left alone, and so is one owned by
    another user; the files inside are private either way.
    """
    where = str(path)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.stat(path)
        if not stat.S_ISDIR(info.st_mode):
            raise error(where, f"not a folder (it is {kind_of(info.st_mode)})")
        if info.st_uid == os.getuid() and info.st_mode & 0o077 and not info.st_mode & stat.S_ISVTX:
            os.chmod(path, 0o700)
    except FileExistsError:
        raise error(where, "not a folder") from None
    except OSError as exc:
        raise error(where, f"cannot use the folder ({exc.strerror or exc})") from None
    return path


def open_private(path: Path, error: MakeError, flags: int = os.O_RDWR) -> int:
    """Open (or create) a regular file readable only by its owner; never follows a link, never blocks."""
    where = str(path)
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        reason = "it is a symbolic link" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
        raise error(where, f"cannot open ({reason})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(where, f"cannot open: it is {kind_of(info.st_mode)}, not a regular file")
        if stat.S_IMODE(info.st_mode) & 0o077 and info.st_uid == os.getuid():
            os.fchmod(fd, 0o600)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd
