/* gpu-lab simulated NCCL (libnccl.so.2), built per release with -DNCCL_VERSION_CODE=22809.
 *
 * ncclGetVersion, and an all-reduce (float sum) over the communicators of one ncclCommInitAll: the lab's GPUs all
 * live in one process's memory (the simulated libcuda), so the sum is done on the host, on the capped buffers.
 */
#include <stdlib.h>
#include <string.h>

typedef struct { int rank, n; } Comm;
typedef struct { const float *send; float *recv; size_t count; } Call;
static Call calls[64];
static int ncalls, grouped;

int ncclGetVersion(int *v) { *v = NCCL_VERSION_CODE; return 0; }
const char *ncclGetErrorString(int rc) { return rc == 0 ? "no error" : rc == 4 ? "invalid argument" : "unhandled system error"; }

int ncclCommInitAll(Comm **comms, int n, const int *devs) {
    (void)devs;
    if (n < 1 || n > 64) return 4; /* ncclInvalidArgument */
    for (int i = 0; i < n; i++) {
        comms[i] = malloc(sizeof(Comm));
        comms[i]->rank = i;
        comms[i]->n = n;
    }
    return 0;
}
int ncclCommDestroy(Comm *c) { free(c); return 0; }

static void run(void) {
    size_t count = ncalls ? calls[0].count : 0, cap = (4u << 20) / 4;
    if (count > cap) count = cap;
    for (size_t j = 0; j < count; j++) {
        float sum = 0;
        for (int i = 0; i < ncalls; i++) sum += calls[i].send[j];
        for (int i = 0; i < ncalls; i++) calls[i].recv[j] = sum;
    }
    ncalls = 0;
}

int ncclGroupStart(void) { grouped = 1; ncalls = 0; return 0; }
int ncclGroupEnd(void) { grouped = 0; run(); return 0; }
int ncclAllReduce(const void *send, void *recv, size_t count, int type, int op, Comm *comm, void *stream) {
    (void)stream; (void)comm;
    if (type != 7 || op != 0 || ncalls >= 64) return 4; /* the lab sums float32 only */
    calls[ncalls++] = (Call){(const float *)send, (float *)recv, count};
    if (!grouped) run();
    return 0;
}
