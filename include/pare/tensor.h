/* pare/tensor.h - a dense tensor in host memory.
 *
 * The one tensor type of the library: initializers in the IR, inputs and
 * outputs of the executor, arrays read from .npy/.npz/.pb files.
 * Data is packed little-endian in row-major order; sub-byte types are two
 * elements a byte, low nibble first. A STRING tensor's data is an array of
 * pare_string, each owning its bytes when the tensor owns its data.
 */
#ifndef PARE_TENSOR_H
#define PARE_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "pare/status.h"
#include "pare/dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PARE_MAX_RANK 64

typedef struct pare_string {
    char *data; /* not NUL-terminated in general */
    size_t len;
} pare_string;

typedef struct pare_tensor {
    char *name;        /* owned; may be NULL */
    int dtype;         /* pare_dtype */
    int rank;
    int64_t *dims;     /* owned; rank entries (NULL when rank is 0) */
    void *data;        /* nbytes bytes; see owns_data */
    size_t nbytes;
    bool owns_data;    /* data is freed with the tensor; else it is borrowed
                          (from a loaded model, an mmap'd file, a caller) */
} pare_tensor;

/* Product of dims into *out, failing with PARE_ERR_LIMIT on overflow or
 * PARE_ERR_INVALID on a negative dim. */
pare_status pare_shape_numel(int rank, const int64_t *dims, uint64_t *out, pare_error *err);

/* New tensor with zeroed, owned data (strings empty). name may be NULL.
 * Caller frees with pare_tensor_free. */
pare_status pare_tensor_new(const char *name, int dtype, int rank, const int64_t *dims,
                            pare_tensor **out, pare_error *err);

/* New tensor that borrows data (nbytes must match dtype and dims); the data
 * must outlive the tensor. Caller frees with pare_tensor_free. */
pare_status pare_tensor_wrap(const char *name, int dtype, int rank, const int64_t *dims,
                             void *data, size_t nbytes, pare_tensor **out, pare_error *err);

/* Deep copy (data always owned by the copy). */
pare_status pare_tensor_clone(const pare_tensor *t, pare_tensor **out, pare_error *err);

/* Makes a borrowed tensor own a private copy of its data. */
pare_status pare_tensor_own(pare_tensor *t, pare_error *err);

/* Replaces the name (copied). */
pare_status pare_tensor_set_name(pare_tensor *t, const char *name, pare_error *err);

/* Number of elements (dims were checked at creation, so no overflow). */
uint64_t pare_tensor_numel(const pare_tensor *t);

/* NULL-safe. Frees owned data, dims and name. */
void pare_tensor_free(pare_tensor *t);

/* Frees n tensors (each NULL-safe) and the array itself. NULL-safe. */
void pare_tensors_free(pare_tensor **ts, size_t n);

/* "1x3x224x224" style into buf; returns buf. A rank-0 tensor gives "scalar". */
char *pare_dims_str(int rank, const int64_t *dims, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
