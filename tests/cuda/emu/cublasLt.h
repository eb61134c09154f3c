/* Stand-in for <cublasLt.h> (tests/cuda/emu): the handle only. */
#ifndef PCU_EMU_CUBLASLT_H
#define PCU_EMU_CUBLASLT_H

#include "cublas_v2.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cublasLtContext *cublasLtHandle_t;
cublasStatus_t cublasLtCreate(cublasLtHandle_t *h);
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h);

#ifdef __cplusplus
}
#endif
#endif
