/* gpu-lab simulated CUDA driver (libcuda.so.1): the driver-API entry points the gate's CUDA probe calls.
 *
 * There is no GPU in the lab, so this library stands in for one. Its answers follow the host:
 *   - the installed driver (/usr/share/nvidia/gpu-lab-driver.json: "version", "cuda") against the loaded kernel
 *     module (/proc/driver/nvidia/version): a mismatch before the reboot fails cuInit with
 *     CUDA_ERROR_SYSTEM_DRIVER_MISMATCH, no module fails it with CUDA_ERROR_NO_DEVICE;
 *   - the GPUs (/etc/gpu-lab/gpu.json: count, name, compute_cap, memory_mib, pcie_bandwidth_gbps);
 *   - the faults (/etc/gpu-lab/faults.json): "gpu_slow" {"factor"} scales every figure, "cuda_fail" {"error"}
 *     makes cuInit fail with that CUDA error.
 * Timing is simulated: events read a clock that each copy or launch advances by what it would take on the
 * host's GPU, so the probe's figures come out as the host's (slowed) figures. Memory is real but capped per
 * allocation (the probe's answer checks read small buffers), so six lab hosts do not take gigabytes.
 * Error names and texts are NVIDIA's (cuda.h, CUresult).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
#define CAP (4u << 20)

static int inited, count = 1, cc_major = 9, cc_minor = 0, sm_count = 132;
static double mem_mib = 81559, h2d = 55, fp32 = 60, copy = 3000, slow = 1.0;
static char name[128] = "NVIDIA H100 80GB HBM3";
static char cuda[16] = "13.0";
static double clock_ms;

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* The text after "key": in a small JSON file (numbers and strings only; enough for the lab's files). */
static const char *field(const char *json, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = json ? strstr(json, pat) : NULL;
    if (!p) return NULL;
    p = strchr(p + strlen(pat), ':');
    if (!p) return NULL;
    p++;
    while (*p == ' ' || *p == '\n' || *p == '\t') p++;
    return p;
}

static void str_field(const char *json, const char *key, char *out, size_t len) {
    const char *p = field(json, key);
    if (!p || *p != '"') return;
    p++;
    size_t i = 0;
    while (*p && *p != '"' && i + 1 < len) out[i++] = *p++;
    out[i] = 0;
}

static double num_field(const char *json, const char *key, double dflt) {
    const char *p = field(json, key);
    return p ? strtod(p, NULL) : dflt;
}

static const char *root(void) {
    const char *r = getenv("GPU_LAB_SIM_ROOT");
    return r ? r : "";
}

static CUresult load(void) {
    char path[512], version[64] = "", module[64] = "", *text;
    snprintf(path, sizeof path, "%s/usr/share/nvidia/gpu-lab-driver.json", root());
    text = slurp(path);
    str_field(text, "version", version, sizeof version);
    str_field(text, "cuda", cuda, sizeof cuda);
    free(text);
    snprintf(path, sizeof path, "%s/proc/driver/nvidia/version", root());
    text = slurp(path);
    if (!text) return 100; /* no kernel module: CUDA_ERROR_NO_DEVICE */
    const char *m = strstr(text, "Kernel Module");
    if (m) {
        m += strlen("Kernel Module");
        if (!strncmp(m, " for x86_64", 11)) m += 11;
        while (*m == ' ') m++;
        size_t i = 0;
        while (m[i] && m[i] != ' ' && i + 1 < sizeof module) { module[i] = m[i]; i++; }
        module[i] = 0;
    }
    free(text);
    if (strcmp(module, version) != 0) return 803; /* CUDA_ERROR_SYSTEM_DRIVER_MISMATCH */
    snprintf(path, sizeof path, "%s/etc/gpu-lab/gpu.json", root());
    text = slurp(path);
    count = (int)num_field(text, "count", 1);
    str_field(text, "name", name, sizeof name);
    char cc[16] = "9.0";
    str_field(text, "compute_cap", cc, sizeof cc);
    sscanf(cc, "%d.%d", &cc_major, &cc_minor);
    mem_mib = num_field(text, "memory_mib", mem_mib);
    h2d = num_field(text, "pcie_bandwidth_gbps", 25); /* per direction, as dcgmi diag reports it */
    sm_count = (int)num_field(text, "sm_count", cc_major >= 9 ? 132 : 108);
    fp32 = num_field(text, "fp32_tflops", cc_major >= 9 ? 60 : 19.5);
    copy = num_field(text, "device_copy_gbps", cc_major >= 9 ? 4000 : 2400);
    free(text);
    snprintf(path, sizeof path, "%s/etc/gpu-lab/faults.json", root());
    text = slurp(path);
    CUresult fail = 0;
    if (text && field(text, "gpu_slow")) slow = num_field(strstr(text, "\"gpu_slow\""), "factor", 0.5);
    if (text && field(text, "cuda_fail")) fail = (CUresult)num_field(strstr(text, "\"cuda_fail\""), "error", 999);
    free(text);
    return fail;
}

CUresult cuInit(unsigned flags) {
    (void)flags;
    CUresult rc = load();
    inited = rc == 0;
    return rc;
}

#define NEED_INIT if (!inited) return 3 /* CUDA_ERROR_NOT_INITIALIZED */

CUresult cuDriverGetVersion(int *v) {
    int major = 0, minor = 0;
    if (!inited) load();
    sscanf(cuda, "%d.%d", &major, &minor);
    *v = major * 1000 + minor * 10;
    return 0;
}

CUresult cuDeviceGetCount(int *n) { NEED_INIT; *n = count; return 0; }
CUresult cuDeviceGet(int *dev, int ordinal) {
    NEED_INIT;
    if (ordinal < 0 || ordinal >= count) return 101; /* CUDA_ERROR_INVALID_DEVICE */
    *dev = ordinal;
    return 0;
}
CUresult cuDeviceGetName(char *out, int len, int dev) { (void)dev; NEED_INIT; snprintf(out, len, "%s", name); return 0; }
CUresult cuDeviceGetAttribute(int *v, int attr, int dev) {
    (void)dev;
    NEED_INIT;
    *v = attr == 16 ? sm_count : attr == 75 ? cc_major : attr == 76 ? cc_minor : 0;
    return 0;
}
CUresult cuDeviceTotalMem_v2(size_t *bytes, int dev) { (void)dev; NEED_INIT; *bytes = (size_t)(mem_mib * 1048576.0); return 0; }

static int ctx_token;
CUresult cuCtxCreate_v2(void **ctx, unsigned flags, int dev) { (void)flags; (void)dev; NEED_INIT; *ctx = &ctx_token; return 0; }
CUresult cuCtxDestroy_v2(void *ctx) { (void)ctx; return 0; }
CUresult cuDevicePrimaryCtxRetain(void **ctx, int dev) { (void)dev; NEED_INIT; *ctx = &ctx_token; return 0; }
CUresult cuCtxSetCurrent(void *ctx) { (void)ctx; return 0; }
CUresult cuCtxSynchronize(void) { return 0; }

CUresult cuEventCreate(double **ev, unsigned flags) { (void)flags; *ev = calloc(1, sizeof(double)); return 0; }
CUresult cuEventRecord(double *ev, void *stream) { (void)stream; *ev = clock_ms; return 0; }
CUresult cuEventSynchronize(double *ev) { (void)ev; return 0; }
CUresult cuEventElapsedTime(float *ms, double *start, double *stop) { *ms = (float)(*stop - *start); return 0; }

static void advance(double seconds) { clock_ms += seconds * 1000.0; }

/* PTX: the driver compiles it for the GPU; a PTX ISA newer than this driver's CUDA is refused, as on real GPUs
 * (ISA 9.0 came with CUDA 13.0, 8.x with CUDA 12.x: "the provided PTX was compiled with an unsupported toolchain"). */
static int module_token;
CUresult cuModuleLoadData(void **mod, const char *ptx) {
    NEED_INIT;
    double isa = 0, cuda_v = strtod(cuda, NULL);
    const char *v = strstr(ptx, ".version");
    if (v) isa = strtod(v + 8, NULL);
    double newest = cuda_v >= 13.0 ? 9.0 : cuda_v >= 12.0 ? 8.0 + (cuda_v - 12.0) : 7.8;
    if (isa > newest + 1e-9) return 222; /* CUDA_ERROR_UNSUPPORTED_PTX_VERSION */
    if (!strstr(ptx, ".entry")) return 218; /* CUDA_ERROR_INVALID_PTX */
    *mod = &module_token;
    return 0;
}
CUresult cuModuleGetFunction(void **fn, void *mod, const char *fname) {
    (void)mod;
    if (strcmp(fname, "fma_loop") != 0) return 500; /* CUDA_ERROR_NOT_FOUND */
    *fn = &module_token;
    return 0;
}
CUresult cuModuleUnload(void *mod) { (void)mod; return 0; }


static void *block_of(CUdeviceptr p) { return p ? (void *)(uintptr_t)p : NULL; }
static size_t cap(size_t n) { return n < CAP ? n : CAP; }

CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n) {
    NEED_INIT;
    void *mem = calloc(1, cap(n));
    if (!mem) return 2; /* CUDA_ERROR_OUT_OF_MEMORY */
    *p = (CUdeviceptr)(uintptr_t)mem;
    return 0;
}
CUresult cuMemFree_v2(CUdeviceptr p) { free(block_of(p)); return 0; }
CUresult cuMemAllocHost_v2(void **p, size_t n) { NEED_INIT; *p = calloc(1, n); return *p ? 0 : 2; }
CUresult cuMemFreeHost(void *p) { free(p); return 0; }
CUresult cuMemsetD32_v2(CUdeviceptr p, unsigned value, size_t n) {
    unsigned *d = block_of(p);
    size_t words = cap(n * 4) / 4;
    for (size_t i = 0; i < words; i++) d[i] = value;
    advance(n * 4.0 / (copy * slow * 1e9));
    return 0;
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, void *s) {
    (void)s;
    memcpy(block_of(dst), src, cap(n));
    advance(n / (h2d * slow * 1e9));
    return 0;
}
CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, void *s) {
    (void)s;
    memcpy(dst, block_of(src), cap(n));
    advance(n / (h2d * 1.01 * slow * 1e9));
    return 0;
}
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) { return cuMemcpyDtoHAsync_v2(dst, src, n, NULL); }
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, void *s) {
    (void)s;
    memcpy(block_of(dst), block_of(src), cap(n));
    advance(2.0 * n / (copy * slow * 1e9));
    return 0;
}

/* fma_loop(out, iters, a, b): 8 accumulators x 4 unrolled FMAs per iteration, summed into out[tid]. */
CUresult cuLaunchKernel(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, void *stream, void **params, void **extra) {
    (void)fn; (void)gy; (void)gz; (void)by; (void)bz; (void)shared; (void)stream; (void)extra;
    float *out = block_of(*(CUdeviceptr *)params[0]);
    unsigned iters = *(unsigned *)params[1];
    float a = *(float *)params[2], b = *(float *)params[3];
    size_t threads = (size_t)gx * bx, room = CAP / 4;
    for (size_t t = 0; t < threads && t < room; t++) {
        float sum = 0;
        for (int k = 0; k < 8; k++) {
            float acc = (float)t + (float)k;
            if (a == 1.0f) acc += b * 4.0f * (float)iters;
            else for (unsigned i = 0; i < 4 * iters; i++) acc = acc * a + b;
            sum += acc;
        }
        out[t] = sum;
    }
    advance(2.0 * 8 * 4 * (double)iters * threads / (fp32 * slow * 1e12));
    return 0;
}

static const char *names[][3] = {
    {"0", "CUDA_SUCCESS", "no error"},
    {"2", "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {"3", "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {"100", "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {"101", "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {"218", "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
    {"222", "CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "the provided PTX was compiled with an unsupported toolchain."},
    {"500", "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {"803", "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", "system has unsupported display driver / cuda driver combination"},
    {"999", "CUDA_ERROR_UNKNOWN", "unknown error"},
};

static int lookup(CUresult code) {
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (atoi(names[i][0]) == code) return (int)i;
    return -1;
}
CUresult cuGetErrorName(CUresult code, const char **out) { int i = lookup(code); if (i < 0) return 1; *out = names[i][1]; return 0; }
CUresult cuGetErrorString(CUresult code, const char **out) { int i = lookup(code); if (i < 0) return 1; *out = names[i][2]; return 0; }
