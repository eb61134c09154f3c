/* lib/cuda/move.cu built for the CPU emulation (tests/cuda/emu); nvcc includes
 * <cuda_runtime.h> first in every .cu, and so does this */
#include <cuda_runtime.h>

#include "cuda/move.cu"
