/* gpu-lab simulated cuDNN: only its version, as cudnnGetVersion() reports it (-DCUDNN_VERSION=91900). */
#include <stddef.h>
size_t cudnnGetVersion(void) { return CUDNN_VERSION; }
