"""A CUDA probe that needs only Python's standard library: it proves the installed stack runs GPU work.

Shipped to hosts as Ansible module_utils by the gate role (like the fact collector), so: standard library only,
Python 3.8 syntax. Through the driver API (``libcuda.so.1``, ctypes) it initialises every GPU, JIT-compiles a
small PTX kernel and launches it (checking the answer), and measures per GPU pinned host-to-device and
device-to-host bandwidth, device copy bandwidth and an FP32 FMA figure. Through the toolkit's runtime
(``libcudart.so.<major>``) it checks the runtime against the driver and names NVIDIA's own error on failure; it
reads cuDNN's and NCCL's versions from the libraries themselves, and runs an NCCL all-reduce over the GPUs.

Every check runs in a forked child with a timeout: a hung GPU or a crashing library is a failed check, never a
hung gate. The parent never touches CUDA (a CUDA context does not survive ``fork``).

Output is plain dicts; ``figures`` per GPU use these names (GB/s are 1e9 bytes per second):
``h2d_gbps``, ``d2h_gbps`` (pinned, 64 MiB copies), ``device_copy_gbps`` (cuMemcpyDtoD, bytes read plus
written), ``fp32_tflops`` (FMA loop, 2 FLOP per FMA), ``ptx_jit_ms`` (cuModuleLoadData of the probe's PTX).
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import struct
import time
from typing import Any, Callable

# The probe's PTX ISA and target: ISA 6.4 / sm_75 is accepted by every driver from CUDA 10.1 on and JIT-compiled
# for the GPU at hand (Turing and newer; CUDA 13 dropped older GPUs).
PTX_ISA = "6.4"
PTX_TARGET = "sm_75"
ACCUMULATORS = 8
UNROLL = 4

CUDA_SUCCESS = 0


def fma_ptx(isa: str = PTX_ISA, target: str = PTX_TARGET) -> bytes:
    """PTX of ``fma_loop(out, iters, a, b)``: 8 independent accumulators, 4x unrolled, summed into ``out[tid]``.

    With ``a = b = 1`` each accumulator k ends at ``tid + k + UNROLL * iters``, so the answer is checkable.
    """
    lines = [
        ".version %s" % isa, ".target %s" % target, ".address_size 64", "",
        ".visible .entry fma_loop(.param .u64 out, .param .u32 iters, .param .f32 a, .param .f32 b)",
        "{", "  .reg .pred %p;", "  .reg .b32 %r<8>;", "  .reg .f32 %f<24>;", "  .reg .b64 %rd<4>;",
        "  ld.param.u64 %rd1, [out];", "  ld.param.u32 %r1, [iters];",
        "  ld.param.f32 %f20, [a];", "  ld.param.f32 %f21, [b];",
        "  mov.u32 %r2, %ctaid.x;", "  mov.u32 %r3, %ntid.x;", "  mov.u32 %r4, %tid.x;",
        "  mad.lo.s32 %r5, %r2, %r3, %r4;", "  cvt.rn.f32.u32 %f0, %r5;",
    ]
    for k in range(1, ACCUMULATORS):
        lines.append("  add.f32 %%f%d, %%f0, 0f%08X;" % (k, struct.unpack("<I", struct.pack("<f", float(k)))[0]))
    lines += ["  mov.u32 %r6, 0;", "LOOP:"]
    for _ in range(UNROLL):
        for k in range(ACCUMULATORS):
            lines.append("  fma.rn.f32 %%f%d, %%f%d, %%f20, %%f21;" % (k, k))
    lines += ["  add.u32 %r6, %r6, 1;", "  setp.lt.u32 %p, %r6, %r1;", "  @%p bra LOOP;"]
    for k in range(1, ACCUMULATORS):
        lines.append("  add.f32 %%f0, %%f0, %%f%d;" % k)
    lines += ["  cvta.to.global.u64 %rd2, %rd1;", "  mul.wide.u32 %rd3, %r5, 4;", "  add.u64 %rd2, %rd2, %rd3;",
              "  st.global.f32 [%rd2], %f0;", "  ret;", "}", ""]
    return "\n".join(lines).encode() + b"\0"


def expected_fma_sum(tid: int, iters: int) -> float:
    """What ``fma_loop`` writes for thread ``tid`` with ``a = b = 1``, rounded to float32."""
    value = sum(tid + k + UNROLL * iters for k in range(ACCUMULATORS))
    rounded: float = struct.unpack("<f", struct.pack("<f", float(value)))[0]
    return rounded


class CudaError(Exception):
    """A CUDA call returned an error: the call, the code, and NVIDIA's name and text for it."""

    def __init__(self, call: str, code: int, name: str, text: str) -> None:
        super().__init__("%s failed: %s (%d): %s" % (call, name, code, text))
        self.call, self.code, self.name, self.text = call, code, name, text


class Driver:
    """The few driver-API entry points the probe uses, with errors named by the driver itself."""

    def __init__(self, path: str = "libcuda.so.1") -> None:
        self.lib = ctypes.CDLL(path)

    def name_of(self, code: int) -> tuple[str, str]:
        name, text = ctypes.c_char_p(), ctypes.c_char_p()
        try:
            self.lib.cuGetErrorName(code, ctypes.byref(name))
            self.lib.cuGetErrorString(code, ctypes.byref(text))
        except AttributeError:
            pass
        return ((name.value or b"CUDA_ERROR_%d" % code).decode(errors="replace"),
                (text.value or b"unknown error").decode(errors="replace"))

    def __call__(self, fn: str, *args: Any) -> None:
        code = getattr(self.lib, fn)(*args)
        if code != CUDA_SUCCESS:
            name, text = self.name_of(code)
            raise CudaError(fn, code, name, text)


def _version(v: int) -> str:
    return "%d.%d" % (v // 1000, (v % 1000) // 10)


def _events(cu: Driver) -> tuple[ctypes.c_void_p, ctypes.c_void_p]:
    start, stop = ctypes.c_void_p(), ctypes.c_void_p()
    cu("cuEventCreate", ctypes.byref(start), 0)
    cu("cuEventCreate", ctypes.byref(stop), 0)
    return start, stop


def _timed_ms(cu: Driver, events: tuple[ctypes.c_void_p, ctypes.c_void_p], work: Callable[[], None],
              repeat: int) -> float:
    """Best of ``repeat`` GPU-timed runs of ``work`` (after one warm-up), in milliseconds."""
    start, stop = events
    work()
    best = float("inf")
    for _ in range(repeat):
        cu("cuEventRecord", start, None)
        work()
        cu("cuEventRecord", stop, None)
        cu("cuEventSynchronize", stop)
        ms = ctypes.c_float()
        cu("cuEventElapsedTime", ctypes.byref(ms), start, stop)
        best = min(best, ms.value)
    return best


def probe_device(cu: Driver, ordinal: int, *, copy_mib: int = 64, device_copy_mib: int = 1024,
                 fma_iters: int = 8192, ptx_isa: str = PTX_ISA) -> dict[str, Any]:
    """Name, memory, a checked kernel launch and the figures of one GPU (raises CudaError on the first failure)."""
    dev = ctypes.c_int()
    cu("cuDeviceGet", ctypes.byref(dev), ordinal)
    name = ctypes.create_string_buffer(256)
    cu("cuDeviceGetName", name, 256, dev)
    attrs = {}
    for key, attr in (("sm_count", 16), ("cc_major", 75), ("cc_minor", 76)):
        value = ctypes.c_int()
        cu("cuDeviceGetAttribute", ctypes.byref(value), attr, dev)
        attrs[key] = value.value
    total = ctypes.c_size_t()
    cu("cuDeviceTotalMem_v2", ctypes.byref(total), dev)
    out: dict[str, Any] = {"index": ordinal, "name": name.value.decode(errors="replace"),
                           "compute_capability": "%d.%d" % (attrs["cc_major"], attrs["cc_minor"]),
                           "sm_count": attrs["sm_count"], "memory_mib": total.value // (1 << 20), "figures": {}}
    figures = out["figures"]
    ctx = ctypes.c_void_p()
    cu("cuCtxCreate_v2", ctypes.byref(ctx), 0, dev)
    try:
        events = _events(cu)
        # The driver's JIT and a real launch whose answer is checked.
        module = ctypes.c_void_p()
        ptx = fma_ptx(ptx_isa)
        t0 = time.perf_counter()
        cu("cuModuleLoadData", ctypes.byref(module), ctypes.c_char_p(ptx))
        figures["ptx_jit_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        func = ctypes.c_void_p()
        cu("cuModuleGetFunction", ctypes.byref(func), module, b"fma_loop")
        threads, blocks = 256, attrs["sm_count"] * 8
        n = threads * blocks
        buf = ctypes.c_uint64()
        cu("cuMemAlloc_v2", ctypes.byref(buf), ctypes.c_size_t(n * 4))
        iters = ctypes.c_uint32(fma_iters)
        one = ctypes.c_float(1.0)
        params = (ctypes.c_void_p * 4)(ctypes.addressof(buf), ctypes.addressof(iters), ctypes.addressof(one),
                                       ctypes.addressof(one))

        def launch() -> None:
            cu("cuLaunchKernel", func, blocks, 1, 1, threads, 1, 1, 0, None, params, None)

        ms = _timed_ms(cu, events, launch, 3)
        host = (ctypes.c_float * n)()
        cu("cuMemcpyDtoH_v2", host, buf, ctypes.c_size_t(n * 4))
        for tid in (0, 1, n // 2, n - 1):
            if host[tid] != expected_fma_sum(tid, fma_iters):
                raise CudaError("fma_loop result check", -1, "WRONG_RESULT",
                                "thread %d wrote %r, expected %r" % (tid, host[tid], expected_fma_sum(tid, fma_iters)))
        flops = 2.0 * ACCUMULATORS * UNROLL * fma_iters * n
        figures["fp32_tflops"] = round(flops / (ms / 1000) / 1e12, 2)
        cu("cuMemFree_v2", buf)
        cu("cuModuleUnload", module)
        # Pinned host <-> device bandwidth.
        size = ctypes.c_size_t(copy_mib << 20)
        pinned, dbuf = ctypes.c_void_p(), ctypes.c_uint64()
        cu("cuMemAllocHost_v2", ctypes.byref(pinned), size)
        cu("cuMemAlloc_v2", ctypes.byref(dbuf), size)
        ctypes.memset(pinned, 1, size.value)
        ms = _timed_ms(cu, events, lambda: cu("cuMemcpyHtoDAsync_v2", dbuf, pinned, size, None), 5)
        figures["h2d_gbps"] = round(size.value / (ms / 1000) / 1e9, 2)
        ms = _timed_ms(cu, events, lambda: cu("cuMemcpyDtoHAsync_v2", pinned, dbuf, size, None), 5)
        figures["d2h_gbps"] = round(size.value / (ms / 1000) / 1e9, 2)
        cu("cuMemFree_v2", dbuf)
        cu("cuMemFreeHost", pinned)
        # Device memory: a device-to-device copy, counting bytes read and written.
        size = ctypes.c_size_t(device_copy_mib << 20)
        src, dst = ctypes.c_uint64(), ctypes.c_uint64()
        cu("cuMemAlloc_v2", ctypes.byref(src), size)
        cu("cuMemAlloc_v2", ctypes.byref(dst), size)
        cu("cuMemsetD32_v2", src, 0x3F800000, ctypes.c_size_t(size.value // 4))
        ms = _timed_ms(cu, events, lambda: cu("cuMemcpyDtoDAsync_v2", dst, src, size, None), 5)
        figures["device_copy_gbps"] = round(2 * size.value / (ms / 1000) / 1e9, 1)
        cu("cuMemFree_v2", src)
        cu("cuMemFree_v2", dst)
    finally:
        cu("cuCtxDestroy_v2", ctx)
    return out


def driver_check(lib: str = "libcuda.so.1", ptx_isa: str = PTX_ISA, **sizes: int) -> dict[str, Any]:
    """cuInit, the driver's CUDA version and every GPU probed; a failure names the call and NVIDIA's error."""
    # The JIT figure is the driver compiling the PTX, not a hit in its cache (this runs in a child process).
    os.environ["CUDA_CACHE_DISABLE"] = "1"
    try:
        cu = Driver(lib)
    except OSError as e:
        return {"ok": False, "error": "cannot load %s: %s" % (lib, e)}
    result: dict[str, Any] = {"ok": False, "library": lib, "gpus": []}
    try:
        v, count = ctypes.c_int(), ctypes.c_int()
        cu("cuDriverGetVersion", ctypes.byref(v))  # answers before cuInit, so a failed init still says it
        result["cuda_driver_version"] = _version(v.value)
        cu("cuInit", 0)
        cu("cuDeviceGetCount", ctypes.byref(count))
        result["gpu_count"] = count.value
        if count.value == 0:
            result["error"] = "the driver sees no GPU"
            return result
        for i in range(count.value):
            result["gpus"].append(probe_device(cu, i, ptx_isa=ptx_isa, **sizes))
    except CudaError as e:
        result["error"] = str(e)
        result["error_name"] = e.name
        return result
    result["ok"] = True
    return result


def _open_first(names: list[str], dirs: list[str]) -> tuple[Any, str] | tuple[None, str]:
    """The first of ``names`` that loads (plain name through the loader's path, then in ``dirs``)."""
    errors = []
    for name in names:
        for candidate in [name] + [os.path.join(d, name) for d in dirs]:
            if os.sep in candidate and not os.path.exists(candidate):
                continue
            try:
                return ctypes.CDLL(candidate), candidate
            except OSError as e:
                errors.append(str(e))
    return None, "; ".join(errors[:2]) or "not found: %s" % ", ".join(names)


def runtime_check(cuda_major: int, dirs: list[str], planned: bool = True) -> dict[str, Any]:
    """The toolkit's ``libcudart.so.<major>`` against the driver: versions, GPU count, NVIDIA's error text.

    Not ``planned`` (no CUDA named): the newest runtime from the driver's CUDA major down to 10 that is
    installed; none at all is no failure (a host without a toolkit has nothing to check).
    """
    majors = [cuda_major] if planned else list(range(cuda_major, 9, -1))
    rt, where = _open_first(["libcudart.so.%d" % m for m in majors], dirs)
    if rt is None:
        if not planned:
            return {"ok": True, "note": "no CUDA runtime (libcudart.so.%d to .10) installed" % cuda_major}
        return {"ok": False, "error": "libcudart.so.%d: %s" % (cuda_major, where)}
    rt.cudaGetErrorString.restype = ctypes.c_char_p
    rt.cudaGetErrorName.restype = ctypes.c_char_p
    out: dict[str, Any] = {"ok": False, "library": where}
    rv, dv, count = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    rt.cudaRuntimeGetVersion(ctypes.byref(rv))
    rt.cudaDriverGetVersion(ctypes.byref(dv))
    out["runtime_version"] = _version(rv.value)
    out["driver_version"] = _version(dv.value) if dv.value else None
    code = rt.cudaGetDeviceCount(ctypes.byref(count))
    if code != 0:
        out["error"] = "cudaGetDeviceCount: %s (%d): %s" % (
            rt.cudaGetErrorName(code).decode(errors="replace"), code,
            rt.cudaGetErrorString(code).decode(errors="replace"))
        return out
    out["gpu_count"] = count.value
    out["ok"] = count.value > 0
    if not out["ok"]:
        out["error"] = "the runtime sees no GPU"
    return out


def cudnn_check(dirs: list[str], major: int | None = None) -> dict[str, Any]:
    """cuDNN's version as the library reports it (``cudnnGetVersion``: 91400 -> 9.14.0). ``major`` names the
    soname to load (``libcudnn.so.9``); without it the newest installed of cuDNN 9 and 8 is taken."""
    names = ["libcudnn.so.%d" % major] if major else ["libcudnn.so.9", "libcudnn.so.8"]
    lib, where = _open_first(names, dirs)
    if lib is None:
        return {"ok": False, "error": "%s: %s" % (" or ".join(names), where)}
    lib.cudnnGetVersion.restype = ctypes.c_size_t
    v = int(lib.cudnnGetVersion())
    major_v = v // 10000 if v >= 10000 else v // 1000
    rest = v % 10000 if v >= 10000 else v % 1000
    return {"ok": True, "library": where, "version": "%d.%d.%d" % (major_v, rest // 100, rest % 100)}


def nccl_check(dirs: list[str], all_reduce_mib: int = 256) -> dict[str, Any]:
    """NCCL's version from ``ncclGetVersion`` and a checked all-reduce over every visible GPU with its bandwidth."""
    nccl, where = _open_first(["libnccl.so.2"], dirs)
    if nccl is None:
        return {"ok": False, "error": "libnccl.so.2: %s" % where}
    nccl.ncclGetErrorString.restype = ctypes.c_char_p
    v = ctypes.c_int()
    nccl.ncclGetVersion(ctypes.byref(v))
    code = v.value
    version = ("%d.%d.%d" % (code // 10000, (code % 10000) // 100, code % 100) if code >= 10000
               else "%d.%d.%d" % (code // 1000, (code % 1000) // 100, code % 100))
    out: dict[str, Any] = {"ok": False, "library": where, "version": version}

    def check(call: str, rc: int) -> None:
        if rc != 0:
            raise CudaError(call, rc, "ncclResult %d" % rc, nccl.ncclGetErrorString(rc).decode(errors="replace"))

    try:
        cu = Driver()
        cu("cuInit", 0)
        count = ctypes.c_int()
        cu("cuDeviceGetCount", ctypes.byref(count))
        n = count.value
        comms = (ctypes.c_void_p * n)()
        devs = (ctypes.c_int * n)(*range(n))
        check("ncclCommInitAll", nccl.ncclCommInitAll(comms, n, devs))
        size = all_reduce_mib << 20
        elems = size // 4
        ctxs, bufs, recvs = [], [], []
        for i in range(n):  # out of place, like nccl-tests: with one GPU it is still a real copy
            dev, ctx, buf, recv = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_uint64(), ctypes.c_uint64()
            cu("cuDeviceGet", ctypes.byref(dev), i)
            cu("cuDevicePrimaryCtxRetain", ctypes.byref(ctx), dev)
            cu("cuCtxSetCurrent", ctx)
            cu("cuMemAlloc_v2", ctypes.byref(buf), ctypes.c_size_t(size))
            cu("cuMemAlloc_v2", ctypes.byref(recv), ctypes.c_size_t(size))
            cu("cuMemsetD32_v2", buf, 0x3F800000, ctypes.c_size_t(elems))  # 1.0f everywhere
            cu("cuMemsetD32_v2", recv, 0, ctypes.c_size_t(elems))
            ctxs.append(ctx)
            bufs.append(buf)
            recvs.append(recv)

        def all_reduce() -> None:
            check("ncclGroupStart", nccl.ncclGroupStart())
            for i in range(n):
                # ncclFloat32 = 7, ncclSum = 0; the NULL stream of the GPU's primary context.
                check("ncclAllReduce", nccl.ncclAllReduce(bufs[i], recvs[i], ctypes.c_size_t(elems), 7, 0,
                                                          comms[i], None))
            check("ncclGroupEnd", nccl.ncclGroupEnd())
            for ctx in ctxs:
                cu("cuCtxSetCurrent", ctx)
                cu("cuCtxSynchronize")

        all_reduce()
        cu("cuCtxSetCurrent", ctxs[0])
        host = (ctypes.c_float * 4)()
        cu("cuMemcpyDtoH_v2", host, recvs[0], ctypes.c_size_t(16))
        if list(host) != [float(n)] * 4:
            raise CudaError("all-reduce result check", -1, "WRONG_RESULT", "sum of 1.0 over %d GPUs gave %r"
                            % (n, list(host)))
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            all_reduce()
            best = min(best, time.perf_counter() - t0)
        algbw = size / best / 1e9
        out.update({"ok": True, "gpus": n, "bytes": size, "time_ms": round(best * 1000, 3),
                    "algbw_gbps": round(algbw, 2), "busbw_gbps": round(algbw * 2 * (n - 1) / n, 2)})
        for i in range(n):
            cu("cuCtxSetCurrent", ctxs[i])
            cu("cuMemFree_v2", bufs[i])
            cu("cuMemFree_v2", recvs[i])
            nccl.ncclCommDestroy(ctypes.c_void_p(comms[i]))
    except CudaError as e:
        out["error"] = str(e)
    return out


def in_child(fn: Callable[..., dict[str, Any]], timeout: float, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run ``fn`` in a forked child; its dict comes back as JSON. A hang past ``timeout`` or a crash is an error.

    Each check gets its own process so that a CUDA context, a crashing library or a GPU that never answers stays
    in the child: the child is killed (SIGKILL) at the timeout and the check says so.
    """
    t0 = time.monotonic()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_fd)
        try:
            answer = fn(*args, **kwargs)
        except Exception as e:  # any failure of the check is its answer
            answer = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        data = json.dumps(answer).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view):]
        os._exit(0)
    os.close(write_fd)
    chunks = []
    deadline = t0 + timeout
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([read_fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_fd)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    seconds = round(time.monotonic() - t0, 3)
    if timed_out:
        return {"ok": False, "error": "%s did not finish within %g s (killed)" % (fn.__name__, timeout),
                "seconds": seconds}
    try:
        result: dict[str, Any] = json.loads(b"".join(chunks).decode())
    except ValueError:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        why = "killed by signal %d" % sig if sig else "exit status %d" % os.WEXITSTATUS(status)
        return {"ok": False, "error": "%s crashed (%s) before answering" % (fn.__name__, why), "seconds": seconds}
    result["seconds"] = seconds
    return result


def library_dirs(cuda_version: str | None = None, extra: list[str] | None = None) -> list[str]:
    """Where the toolkit's and the libraries' shared objects live when the loader's path lacks them."""
    dirs = list(extra or [])
    if cuda_version:
        dirs.append("/usr/local/cuda-%s/lib64" % cuda_version)
    dirs += ["/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib",
             "/usr/lib/x86_64-linux-gnu", "/usr/lib64"]
    return dirs


def run_probe(*, cuda_major: int | None = None, cuda_version: str | None = None, nccl: bool = False,
              timeout: float = 120.0, extra_dirs: list[str] | None = None, ptx_isa: str = PTX_ISA,
              cudnn_major: int | None = None) -> dict[str, Any]:
    """Every CUDA check, each in its own child: ``driver``, ``runtime``, ``cudnn`` and (when asked) ``nccl``."""
    dirs = library_dirs(cuda_version, extra_dirs)
    if cuda_major is None and cuda_version:
        cuda_major = int(cuda_version.split(".")[0])
    planned = cuda_major is not None
    out: dict[str, Any] = {"driver": in_child(driver_check, timeout, ptx_isa=ptx_isa)}
    if cuda_major is None:
        version = out["driver"].get("cuda_driver_version")
        cuda_major = int(version.split(".")[0]) if version else None
    if cuda_major is not None:
        out["runtime"] = in_child(runtime_check, timeout, cuda_major, dirs, planned)
    out["cudnn"] = in_child(cudnn_check, timeout, dirs, cudnn_major)
    if nccl:
        out["nccl"] = in_child(nccl_check, timeout, dirs)
    return out


def probe_problems(probe: dict[str, Any], *, need_cudnn: bool = False) -> list[str]:
    """One line per failed check; cuDNN counts only when the plan installs it (``need_cudnn``)."""
    out = []
    for key in ("driver", "runtime", "nccl"):
        check = probe.get(key)
        if check and not check.get("ok"):
            out.append("CUDA probe %s: %s" % (key, check.get("error") or "failed"))
    cudnn = probe.get("cudnn")
    if need_cudnn and cudnn and not cudnn.get("ok"):
        out.append("CUDA probe cudnn: %s" % (cudnn.get("error") or "failed"))
    return out


def probe_figures(probe: dict[str, Any]) -> dict[str, float]:
    """The host's figures: the slowest GPU's for each (one weak GPU makes the host a straggler)."""
    figures: dict[str, float] = {}
    for gpu in (probe.get("driver") or {}).get("gpus") or []:
        for key, value in (gpu.get("figures") or {}).items():
            if key == "ptx_jit_ms":
                figures[key] = max(figures.get(key, 0.0), float(value))
            else:
                figures[key] = min(figures.get(key, float(value)), float(value))
    nccl = probe.get("nccl") or {}
    if nccl.get("ok") and nccl.get("gpus", 0) > 1:
        figures["nccl_busbw_gbps"] = float(nccl["busbw_gbps"])
    return figures
