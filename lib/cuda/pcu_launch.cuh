/* How the .cu files launch kernels:
 *     PCU_LAUNCH(grid, block, shared_bytes, stream, kernel)(args...)
 * is kernel<<<grid, block, shared_bytes, stream>>>(args...) under nvcc. The
 * one spelling lets tests/cuda/emu compile the same files with a C++
 * compiler (PCU_EMU, defined by its stand-in CUDA headers) and run every
 * thread of a launch on the CPU: the kernels' index arithmetic, barriers
 * and tile layouts are then tested where no GPU is. The kernel comes last
 * so that template arguments may hold commas. */
#ifndef PARE_CUDA_PCU_LAUNCH_CUH
#define PARE_CUDA_PCU_LAUNCH_CUH

#ifdef PCU_EMU
#define PCU_LAUNCH(grid, block, smem, stream, ...)                                       \
    pcu_emu::launch(grid, block, smem, stream, __VA_ARGS__)
#else
#define PCU_LAUNCH(grid, block, smem, stream, ...) __VA_ARGS__<<<grid, block, smem, stream>>>
#endif

#endif
