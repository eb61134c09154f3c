/* Shared by emu.cpp (threads) and runtime.cpp (memory, streams, graphs):
 * not part of the device language. */
#ifndef PCU_EMU_INTERNAL_HPP
#define PCU_EMU_INTERNAL_HPP

#include "cuda_runtime_api.h"

#if defined(__SANITIZE_ADDRESS__)
#define PCU_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PCU_EMU_ASAN 1
#endif
#endif

namespace pcu_emu {
/* device memory readable and writable (true) while a device operation
 * runs; closed again (false) so that the host touching it faults */
void device_open(bool on);
/* the launch error cudaGetLastError returns next */
void set_error(cudaError_t e);
} // namespace pcu_emu

#endif
