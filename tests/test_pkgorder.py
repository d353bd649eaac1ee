"""Package build order against the real tools: ``dpkg --compare-versions`` and rpm's own ``rpm.vercmp``.

The table holds version strings as real packages write them (Ubuntu archive, NVIDIA's CUDA repositories on
Ubuntu and RHEL, EPEL); hypothesis adds random strings of the same alphabet. Both tools are installed by
scripts/setup.sh (dpkg is the machine's own, rpm from Debian's archive).
"""

from __future__ import annotations

import itertools
import subprocess
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.model.pkgorder import compare, dpkg_compare, newest, rpm_compare
from orchestrator.planner.packages import matches, pick_build, upstream

REAL = [
    "2.18.5-1-2", "2.18.5-1-10", "2.18.5-1", "2.18.5-1+cuda12.4", "2.21.5-1+cuda12.4", "2.21.5-1+cuda12.8",
    "3:440.64.00-1.el7", "440.64.00-1.el7", "3:440.100-1.el7", "3:580.95.05-1.el9", "3:580.95.05-1.el9_4",
    "10.2.89-1", "10.2.89-1.el7", "12.4.131-1", "12.4.131~rc1-1", "580.95.05-0ubuntu1",
    "580.95.05-0ubuntu0.24.04.1", "580.95.05-0ubuntu0.22.04.2", "580.159.04-1", "1:4.2.3-1", "4.2.3-1.el9",
    "1.17.8-1", "1.17.8~rc.1-1", "9.1.0.70-1", "9.19.0.56-1", "8.9.7.29-1+cuda12.2", "535.183.01-0ubuntu1",
    "535.183.01-0ubuntu0~gpu22.04.1", "1.0~rc1", "1.0", "1.0a", "1.0.a", "1.0+b1", "1.0-0", "1.00",
    "01.0", "1.0.0", "1:0.9", "0:1.0", "5.14.0-427.13.1.el9_4", "5.14.0-427.el9", "6.8.0-48.48", "2.0~~",
    "2.0~", "2.0~a", "1.0-1ubuntu1", "1.0-1ubuntu1.1", "1.0-1build1",
]
RPM_ONLY = ["1.0-", "1.0^git1", "1.0^", "1.0^git1~pre", "1.0_1", "1.0.el9.x86", "a", "1.a.2", "1.2.b"]


def _dpkg(a: str, b: str) -> int:
    for op, value in (("lt", -1), ("eq", 0), ("gt", 1)):
        if subprocess.run(["dpkg", "--compare-versions", a, op, b], check=False).returncode == 0:
            return value
    raise AssertionError(f"dpkg answered neither lt, eq nor gt for {a} {b}")


def _rpm(pairs: list[tuple[str, str]]) -> list[int]:
    """One rpm process for many pairs: rpm.vercmp prints -1, 0 or 1 per line."""
    calls = "\n".join(f'print(rpm.vercmp("{a}", "{b}") .. "\\n")' for a, b in pairs)
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(calls)
        script.flush()
        out = subprocess.run(["rpm", "--eval", f'%{{lua: dofile("{script.name}")}}'], check=True,
                             capture_output=True, text=True)
    return [int(line) for line in out.stdout.split()]


def test_dpkg_order_is_dpkgs_own_over_real_versions() -> None:
    pairs = list(itertools.combinations(REAL, 2))[::3]  # every string meets many others; dpkg runs are slow
    wrong = [(a, b, dpkg_compare(a, b), _dpkg(a, b)) for a, b in pairs if dpkg_compare(a, b) != _dpkg(a, b)]
    assert not wrong, wrong[:5]


def test_rpm_order_is_rpms_own_over_real_versions() -> None:
    pairs = list(itertools.permutations(REAL + RPM_ONLY, 2))
    expected = _rpm(pairs)
    assert len(expected) == len(pairs)
    wrong = [(a, b, rpm_compare(a, b), want) for (a, b), want in zip(pairs, expected, strict=True)
             if rpm_compare(a, b) != want]
    assert not wrong, wrong[:5]


def test_the_two_orders_differ_where_the_tools_do() -> None:
    # dpkg orders separators (``+`` before ``.``); rpm skips them: ``1.0+1`` and ``1.0.1`` are one version.
    assert dpkg_compare("1.0+1", "1.0.1") < 0 and rpm_compare("1.0+1", "1.0.1") == 0
    # a missing revision or release is older than any, in both
    assert dpkg_compare("1.0", "1.0-1") < 0 and rpm_compare("1.0", "1.0-1") < 0
    assert dpkg_compare("1.0-1-2", "1.0-1-10") < 0
    assert compare("dnf", "3:440.64.00-1.el7", "440.100-1.el7") == 1
    assert compare("apt", "2.18.5-1-2", "2.18.5-1-10") == -1


_PART = st.text(alphabet="0123456789abz.+~", min_size=1, max_size=6)
_VERSION = st.builds(
    lambda epoch, up, rev: f"{epoch}{up}{rev}",
    st.sampled_from(["", "0:", "1:", "3:"]),
    st.builds(lambda d, rest: d + rest, st.sampled_from("0123456789"), _PART),
    st.one_of(st.just(""), st.builds(lambda r: "-" + r, _PART)),
)


@settings(max_examples=8, deadline=None)
@given(st.lists(st.tuples(_VERSION, _VERSION), min_size=40, max_size=40))
def test_random_versions_order_as_rpm_does(pairs: list[tuple[str, str]]) -> None:
    assert [rpm_compare(a, b) for a, b in pairs] == _rpm(pairs)


@settings(max_examples=4, deadline=None)
@given(st.lists(st.tuples(_VERSION, _VERSION), min_size=15, max_size=15))
def test_random_versions_order_as_dpkg_does(pairs: list[tuple[str, str]]) -> None:
    assert [dpkg_compare(a, b) for a, b in pairs] == [_dpkg(a, b) for a, b in pairs]


def test_pick_build_orders_by_the_hosts_family_and_matches_real_package_forms() -> None:
    assert upstream("2.18.5-1-2") == "2.18.5" and upstream("3:440.64.00-1.el7") == "440.64.00"
    assert matches("nccl", "2.18.5", "2.18.5-1-2") and matches("driver", "440.64", "3:440.64.00-1.el7")
    assert matches("cuda", "10.2", "10.2.89-1")
    assert pick_build("nccl", "2.18.5", ["2.18.5-1-2", "2.18.5-1-10", "2.18.3-1-1"]) == "2.18.5-1-10"
    # rpm: a release ``1.el9_4`` is newer than ``1.el9``; the epoch wins over everything
    assert pick_build("driver", "580.95.05", ["3:580.95.05-1.el9", "3:580.95.05-1.el9_4"], "dnf") == \
        "3:580.95.05-1.el9_4"
    assert newest("dnf", ["440.100-1.el7", "3:440.64.00-1.el7"]) == "3:440.64.00-1.el7"
    # the order differs between families: dpkg puts ``1.0+1`` before ``1.0.1``, rpm sees one version
    assert newest("apt", ["1.0+1", "1.0.1"]) == "1.0.1" and newest("dnf", ["1.0+1", "1.0.1"]) == "1.0+1"
