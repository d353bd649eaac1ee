"""Straggler verdicts: own baseline, wave median, threshold edges, missing data."""

from __future__ import annotations

import pytest

from orchestrator.run.stragglers import judge, judge_wave, wave_median


def test_slow_host_is_below_both() -> None:
    v = judge("h1", "pcie_h2d_gbps", 22.0, baseline=55.0, wave=[55.0, 54.0, 22.0], threshold=0.8)
    assert v.straggler and v.wave_median == 54.0
    assert v.vs_baseline == pytest.approx(0.4)
    assert v.reasons == ("pcie_h2d_gbps 22 is 40% of this host's baseline 55",
                         "pcie_h2d_gbps 22 is 41% of the wave median 54")


def test_own_baseline_catches_a_host_whose_wave_is_slow_too() -> None:
    v = judge("h1", "m", 30.0, baseline=50.0, wave=[30.0, 31.0], threshold=0.8)
    assert v.straggler and len(v.reasons) == 1 and "baseline" in v.reasons[0]


def test_wave_catches_a_host_without_baseline() -> None:
    v = judge("h1", "m", 10.0, baseline=None, wave=[10.0, 25.0, 25.0], threshold=0.8)
    assert v.straggler and v.vs_baseline is None and "wave median" in v.reasons[0]


def test_at_threshold_is_not_a_straggler() -> None:
    assert not judge("h1", "m", 40.0, baseline=50.0, wave=[50.0], threshold=0.8).straggler


def test_no_data_no_verdict() -> None:
    assert not judge("h1", "m", 10.0, baseline=None, wave=[], threshold=0.8).straggler


def test_wave_judgement_skips_hosts_without_a_figure() -> None:
    figures = {"a": 55.0, "b": 54.0, "c": 20.0, "d": None}
    assert wave_median(figures) == 54.0
    verdicts = judge_wave("pcie_h2d_gbps", figures, {"a": 55.0}, threshold=0.8)
    assert sorted(verdicts) == ["a", "b", "c"]
    assert [h for h, v in verdicts.items() if v.straggler] == ["c"]
