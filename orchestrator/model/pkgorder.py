"""Package builds ordered as the host's own package manager orders them: dpkg's rules or rpm's.

The two differ where it matters for pinning: dpkg sorts letters before digits-less ends and compares
``1.0-1-2`` as upstream ``1.0-1`` revision ``2``; rpm skips separators, lets a letter segment lose to a digit
one and ranks a missing release below any release. Both put ``~`` before everything, even the end.
Written from the algorithms as documented in deb-version(7) and rpm's ``rpmvercmp.c`` / ``rpmver.c``
(https://man7.org/linux/man-pages/man7/deb-version.7.html,
https://github.com/rpm-software-management/rpm/blob/master/rpmio/rpmvercmp.c); tested against
``dpkg --compare-versions`` and ``rpm.vercmp`` themselves (tests/test_pkgorder.py).

Example::

    >>> compare("apt", "2.18.5-1-2", "2.18.5-1-10")
    -1
    >>> compare("dnf", "3:440.64.00-1.el7", "440.100-1.el7")
    1
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

_EPOCH = re.compile(r"^(\d+):")


def _dpkg_order(c: str) -> int:
    if c == "~":
        return -1
    if c.isascii() and c.isalpha():
        return ord(c)
    return ord(c) + 256


def _dpkg_part(a: str, b: str) -> int:
    """dpkg's verrevcmp: alternating non-digit runs (char by char) and digit runs (as numbers)."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ca = _dpkg_order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            cb = _dpkg_order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ca != cb:
                return -1 if ca < cb else 1
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return -1 if first_diff < 0 else 1
    return 0


def _dpkg_split(v: str) -> tuple[int, str, str]:
    m = _EPOCH.match(v)
    epoch = int(m.group(1)) if m else 0
    rest = v[m.end():] if m else v
    if "-" in rest:
        upstream, _, revision = rest.rpartition("-")
        return epoch, upstream, revision
    return epoch, rest, ""


def dpkg_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``dpkg --compare-versions A lt|eq|gt B`` answers."""
    ea, ua, ra = _dpkg_split(a.strip())
    eb, ub, rb = _dpkg_split(b.strip())
    if ea != eb:
        return -1 if ea < eb else 1
    return _dpkg_part(ua, ub) or _dpkg_part(ra, rb)


def _alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def rpmvercmp(a: str, b: str) -> int:
    """rpm's segment comparison of one version or release string (``rpmvercmp``)."""
    if a == b:
        return 0
    i = j = 0
    while i < len(a) or j < len(b):
        while i < len(a) and not _alnum(a[i]) and a[i] not in "~^":
            i += 1
        while j < len(b) and not _alnum(b[j]) and b[j] not in "~^":
            j += 1
        ca = a[i] if i < len(a) else ""
        cb = b[j] if j < len(b) else ""
        if ca == "~" or cb == "~":  # tilde sorts before everything else, the end included
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i += 1
            j += 1
            continue
        if ca == "^" or cb == "^":  # caret sorts after the end, before anything else
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "^":
                return 1
            if cb != "^":
                return -1
            i += 1
            j += 1
            continue
        if not (ca and cb):
            break
        numeric = ca.isdigit()
        take: Callable[[str], bool] = str.isdigit if numeric else (lambda c: c.isascii() and c.isalpha())
        si, sj = i, j
        while i < len(a) and take(a[i]):
            i += 1
        while j < len(b) and take(b[j]):
            j += 1
        one, two = a[si:i], b[sj:j]
        if not two:  # segments of different kinds: a number is newer than letters
            return 1 if numeric else -1
        if numeric:
            one, two = one.lstrip("0"), two.lstrip("0")
            if len(one) != len(two):
                return 1 if len(one) > len(two) else -1
        if one != two:
            return 1 if one > two else -1
    ra, rb = a[i:], b[j:]
    if not ra and not rb:
        return 0
    return -1 if not ra else 1


def _rpm_split(v: str) -> tuple[str, str, str | None]:
    """``E:V-R`` as rpm's ``rpmverParse`` reads it: epoch digits before ``:``, release after the last ``-``."""
    epoch = "0"
    m = _EPOCH.match(v)
    if m:
        epoch, v = m.group(1), v[m.end():]
    if "-" in v:
        version, _, release = v.rpartition("-")
        return epoch, version, release
    return epoch, v, None


def rpm_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``rpm.vercmp(A, B)`` answers for two ``[E:]V[-R]`` strings."""
    ea, va, ra = _rpm_split(a.strip())
    eb, vb, rb = _rpm_split(b.strip())
    rc = rpmvercmp(ea, eb) or rpmvercmp(va, vb)
    if rc or ra == rb:
        return rc
    if ra is None or rb is None:  # rpmverCmp: a missing release is older than any release
        return -1 if ra is None else 1
    return rpmvercmp(ra, rb)


def family_of(manager: str) -> str:
    """``dnf``/``yum``/``rpm`` order like rpm; anything else (apt, unknown) like dpkg."""
    return "rpm" if manager in ("dnf", "yum", "rpm", "zypper") else "dpkg"


def compare(manager: str, a: str, b: str) -> int:
    """Order two builds by the rules of the host's package manager (``apt``, ``dnf``, ...)."""
    return rpm_compare(a, b) if family_of(manager) == "rpm" else dpkg_compare(a, b)


def newest(manager: str, builds: Iterable[str]) -> str | None:
    """The newest build by the manager's order; the first of equals wins, so the result is deterministic."""
    best: str | None = None
    for b in builds:
        if best is None or compare(manager, b, best) > 0:
            best = b
    return best
