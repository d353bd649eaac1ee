"""Straggler detection: a host's health figure against its own baseline and its wave's median.

A slow-but-working GPU passes every pass/fail test; comparing a figure (e.g. PCIe host-to-device GB/s
from ``dcgmi diag -r 2 -j``) with what the same host measured before and with its peers catches it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from statistics import median

from pydantic import BaseModel, ConfigDict, Field

# Figures where more is better, judged for stragglers when a host reports them: DCGM's PCIe host-to-device figure
# (``dcgmi diag -r 2``), the CUDA probe's pinned copies, device copy and FP32 figures, NCCL's bus bandwidth
# (hosts of several GPUs). Times (``ptx_jit_ms``, ``workload_s``) are reported, not judged.
STRAGGLER_METRICS = ("pcie_h2d_gbps", "h2d_gbps", "d2h_gbps", "device_copy_gbps", "fp32_tflops", "nccl_busbw_gbps")


class StragglerVerdict(BaseModel):
    """Why a host is (or is not) a straggler, with the numbers that decided it."""

    model_config = ConfigDict(frozen=True)
    host: str
    metric: str
    value: float
    baseline: float | None = None
    wave_median: float | None = None
    threshold: float = Field(ge=0, le=1)
    vs_baseline: float | None = Field(default=None, description="value / baseline")
    vs_wave: float | None = Field(default=None, description="value / wave median")
    straggler: bool
    reasons: tuple[str, ...] = ()


def wave_median(figures: Mapping[str, float | None]) -> float | None:
    """Median of the figures the wave's hosts reported (hosts without a figure are left out)."""
    values = [v for v in figures.values() if v is not None]
    return float(median(values)) if values else None


def judge(host: str, metric: str, value: float, *, baseline: float | None, wave: Iterable[float],
          threshold: float) -> StragglerVerdict:
    """A straggler is below ``threshold`` x its own baseline or ``threshold`` x the wave median.

    >>> judge("h1", "pcie_h2d_gbps", 22.0, baseline=55.0, wave=[55.0, 54.0, 22.0], threshold=0.8).straggler
    True
    """
    peers = [float(v) for v in wave]
    mid = float(median(peers)) if peers else None
    reasons = []
    vs_base = value / baseline if baseline else None
    vs_wave = value / mid if mid else None
    if vs_base is not None and vs_base < threshold:
        reasons.append(f"{metric} {value:g} is {vs_base:.0%} of this host's baseline {baseline:g}")
    if vs_wave is not None and vs_wave < threshold:
        reasons.append(f"{metric} {value:g} is {vs_wave:.0%} of the wave median {mid:g}")
    return StragglerVerdict(host=host, metric=metric, value=value, baseline=baseline, wave_median=mid,
                            threshold=threshold, vs_baseline=vs_base, vs_wave=vs_wave, straggler=bool(reasons),
                            reasons=tuple(reasons))


def judge_wave(metric: str, figures: Mapping[str, float | None], baselines: Mapping[str, float | None],
               threshold: float) -> dict[str, StragglerVerdict]:
    """Every host of a wave that reported the figure, judged against its baseline and the wave median."""
    values = {h: v for h, v in figures.items() if v is not None}
    return {h: judge(h, metric, v, baseline=baselines.get(h), wave=values.values(), threshold=threshold)
            for h, v in sorted(values.items())}
