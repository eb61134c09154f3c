#include "exec/kernel.h"

const pare_kernel pare_kernels_extra[] = {
    {0},
};
