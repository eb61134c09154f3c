/* Stand-in for the CUDA runtime header when lib/cuda's kernels are built by
 * a C++ compiler for tests/cuda/emu (see pcu_emu.hpp): the types the
 * launchers' C signatures use, and the calls they make. Memory is the
 * host's: a "device pointer" is an ordinary pointer. */
#ifndef PCU_EMU_CUDA_RUNTIME_API_H
#define PCU_EMU_CUDA_RUNTIME_API_H

#define PCU_EMU 1

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorLaunchFailure = 719,
    cudaErrorNotSupported = 801
} cudaError_t;

typedef struct CUstream_st *cudaStream_t;

/* the error of the last launch (cleared by reading it), as the runtime's */
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorString(cudaError_t e);

/* The emulator's own controls (tests/cuda/emu/emu.cpp).
 * pcu_emu_order: the order threads of a block run in between barriers: 0
 * ascending, 1 descending, 2 warps descending with lanes ascending. A
 * kernel that reads shared memory without the barrier it needs gives
 * different results in different orders. */
void pcu_emu_order(int order);
/* launches run since the start, and the message of the last failed one
 * (a barrier some threads skipped, a misaligned WMMA pointer, __trap) */
long pcu_emu_launches(void);
const char *pcu_emu_failure(void);

#ifdef __cplusplus
}
#endif
#endif
