/* gpu-lab simulated CUDA runtime (libcudart.so.<major>), built per toolkit with -DCUDART_VERSION=13000 etc.
 *
 * Like the real runtime it asks the driver (libcuda.so.1) for its CUDA version and refuses a driver older than
 * its own major version with cudaErrorInsufficientDriver; minor versions are compatible (CUDA's minor version
 * compatibility since 11.0). Error names and texts are NVIDIA's (cuda_runtime_api.h, cudaError_t).
 */
#include <dlfcn.h>
#include <stddef.h>

typedef int (*cu_fn)();

static void *driver(void) { return dlopen("libcuda.so.1", RTLD_NOW); }

int cudaRuntimeGetVersion(int *v) { *v = CUDART_VERSION; return 0; }

int cudaDriverGetVersion(int *v) {
    void *lib = driver();
    *v = 0;
    if (!lib) return 0; /* no driver: 0, as the real runtime answers */
    cu_fn get = (cu_fn)dlsym(lib, "cuDriverGetVersion");
    if (get) get(v);
    return 0;
}

int cudaGetDeviceCount(int *n) {
    void *lib = driver();
    *n = 0;
    if (!lib) return 35; /* cudaErrorInsufficientDriver */
    int version = 0;
    cudaDriverGetVersion(&version);
    if (version / 1000 < CUDART_VERSION / 1000) return 35;
    cu_fn init = (cu_fn)dlsym(lib, "cuInit"), count = (cu_fn)dlsym(lib, "cuDeviceGetCount");
    int rc = init(0);
    if (rc == 100) return 100;  /* cudaErrorNoDevice */
    if (rc == 803) return 803;  /* cudaErrorSystemDriverMismatch */
    if (rc != 0) return 999;    /* cudaErrorUnknown */
    count(n);
    return 0;
}

static const char *table[][3] = {
    {"0", "cudaSuccess", "no error"},
    {"35", "cudaErrorInsufficientDriver", "CUDA driver version is insufficient for CUDA runtime version"},
    {"100", "cudaErrorNoDevice", "no CUDA-capable device is detected"},
    {"803", "cudaErrorSystemDriverMismatch", "system has unsupported display driver / cuda driver combination"},
    {"999", "cudaErrorUnknown", "unknown error"},
};

static int find(int code) {
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const char *s = table[i][0];
        int v = 0;
        while (*s) v = v * 10 + (*s++ - '0');
        if (v == code) return (int)i;
    }
    return 4;
}
const char *cudaGetErrorName(int code) { return table[find(code)][1]; }
const char *cudaGetErrorString(int code) { return table[find(code)][2]; }
