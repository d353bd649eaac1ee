"""Typed views of what the ``upgrade_gate`` module and the entry playbooks report (validated on the controller).

The host side (``parsers`` via module_utils) returns plain dicts; these models are the contract the executor
reads, with ``extra="forbid"`` so that a changed module output fails loudly in tests.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DiagTest(_Model):
    category: str | None
    name: str | None
    status: str
    gpus: dict[str, str] = {}
    messages: list[str] = []


class DiagResult(_Model):
    """``dcgmi diag`` parsed (text or JSON)."""

    dcgm_version: str | None = None
    driver_version: str | None = None
    tests: list[DiagTest] = []
    passed: bool = False
    failed_tests: list[str] = []
    error: str | None = None
    bandwidth: dict[str, dict[str, float]] = {}
    level: int | None = None
    rc: int | None = None


class GpuHealth(_Model):
    """One GPU's health fields from nvidia-smi (query CSV merged with the ``-q -d`` text)."""

    index: int | None = None
    bus_id: str | None = None
    performance_state: str | None = None
    temperature_c: float | None = None
    ecc_mode: str | None = None
    ecc_volatile_correctable: int | None = None
    ecc_volatile_uncorrectable: int | None = None
    ecc_aggregate_uncorrectable: int | None = None
    retired_pages_double_bit: int | None = None
    retired_pages_pending: str | None = None
    remapped_rows_uncorrectable: int | None = None
    remapped_rows_pending: str | None = None
    remapping_failed: str | None = None
    clock_event_reasons: list[str] = []
    sm_clock_mhz: float | None = None
    max_sm_clock_mhz: float | None = None


class VersionCheck(_Model):
    """Planned versus found: the driver nvidia-smi reports and each package's dpkg version."""

    driver_expected: str | None = None
    driver_found: list[str] = []
    packages_expected: dict[str, str] = {}
    packages_found: dict[str, str | None] = {}
    held: dict[str, bool] = {}
    passed: bool = True


class GpuProbe(_Model):
    """One GPU as the CUDA probe saw it through ``libcuda.so.1``, with its figures."""

    index: int
    name: str
    compute_capability: str
    sm_count: int
    memory_mib: int
    figures: dict[str, float] = {}


class _Check(_Model):
    ok: bool
    error: str | None = None
    seconds: float | None = None
    library: str | None = None


class DriverProbe(_Check):
    """cuInit, the driver's CUDA version, every GPU probed (a failure names the call and NVIDIA's error)."""

    cuda_driver_version: str | None = None
    gpu_count: int | None = None
    gpus: list[GpuProbe] = []
    error_name: str | None = None


class RuntimeCheck(_Check):
    """The toolkit's ``libcudart.so.<major>`` against the driver."""

    runtime_version: str | None = None
    driver_version: str | None = None
    gpu_count: int | None = None
    note: str | None = None


class LibraryCheck(_Check):
    """cuDNN's version as the library itself reports it."""

    version: str | None = None


class NcclCheck(LibraryCheck):
    """``ncclGetVersion`` and a checked all-reduce over every visible GPU (bus bandwidth for several GPUs)."""

    gpus: int | None = None
    bytes: int | None = None
    time_ms: float | None = None
    algbw_gbps: float | None = None
    busbw_gbps: float | None = None


class CudaProbe(_Model):
    driver: DriverProbe
    runtime: RuntimeCheck | None = None
    cudnn: LibraryCheck | None = None
    nccl: NcclCheck | None = None


class XidEvent(_Model):
    bus_id: str
    code: int
    text: str = ""
    line: str = ""


class XidCheck(_Model):
    """``NVRM: Xid`` lines of the kernel log since the upgrade started (journalctl, or dmesg for this boot)."""

    source: str | None = None
    events: list[XidEvent] = []
    codes: list[int] = []
    problems: list[str] = []
    error: str | None = None


class WorkloadResult(_Model):
    """The pool's workload gate: what ran, its exit status against the expected one, its time (a figure)."""

    argv: list[str]
    rc: int
    expect_rc: int
    seconds: float
    ok: bool
    output_tail: str = ""
    error: str | None = None


class GateResult(_Model):
    """Everything one ``gate.yml`` run found on one host; ``figures`` feed the straggler check."""

    host: str = ""
    passed: bool
    problems: list[str] = []
    versions: VersionCheck | None = None
    diag: DiagResult | None = None
    health: list[GpuHealth] = []
    figures: dict[str, float] = {}
    level: int | None = None
    probe: CudaProbe | None = None
    xid: XidCheck | None = None
    workload: WorkloadResult | None = None
    seconds: float | None = None
