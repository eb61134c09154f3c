/* Stand-in for <cuda_runtime.h> (tests/cuda/emu): the runtime's types and,
 * for C++, the device-side language the kernels are written in. */
#ifndef PCU_EMU_CUDA_RUNTIME_H
#define PCU_EMU_CUDA_RUNTIME_H
#include "cuda_runtime_api.h"
#ifdef __cplusplus
#include "pcu_emu.hpp"
#endif
#endif
