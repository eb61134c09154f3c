#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include "pare/tensor.h"

pare_status pare_shape_numel(int rank, const int64_t *dims, uint64_t *out, pare_error *err)
{
    uint64_t n = 1;
    if (rank < 0 || rank > PARE_MAX_RANK)
        return pare_error_set(err, PARE_ERR_INVALID, "rank %d outside 0..%d", rank, PARE_MAX_RANK);
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return pare_error_set(err, PARE_ERR_INVALID, "dim %d is negative (%lld)", i,
                                  (long long)dims[i]);
        if (dims[i] != 0 && n > UINT64_MAX / (uint64_t)dims[i])
            return pare_error_set(err, PARE_ERR_LIMIT, "element count overflows at dim %d", i);
        n *= (uint64_t)dims[i];
    }
    *out = n;
    return PARE_OK;
}

static pare_status tensor_alloc_head(const char *name, int dtype, int rank, const int64_t *dims,
                                     pare_tensor **out, size_t *nbytes, pare_error *err)
{
    uint64_t n;
    pare_status st = pare_shape_numel(rank, dims, &n, err);
    if (st)
        return st;
    if (!pare_dtype_valid(dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "unknown dtype %d", dtype);
    size_t bytes;
    if (dtype == PARE_DT_STRING) {
        if (n > SIZE_MAX / sizeof(pare_string))
            return pare_error_set(err, PARE_ERR_LIMIT, "tensor too large");
        bytes = (size_t)n * sizeof(pare_string);
    } else {
        bytes = pare_dtype_nbytes(dtype, n);
        if (bytes == SIZE_MAX)
            return pare_error_set(err, PARE_ERR_LIMIT, "tensor too large");
    }
    pare_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    t->dtype = dtype;
    t->rank = rank;
    if (rank > 0) {
        t->dims = malloc((size_t)rank * sizeof *t->dims);
        if (!t->dims) {
            free(t);
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        }
        memcpy(t->dims, dims, (size_t)rank * sizeof *t->dims);
    }
    if (name && !(t->name = strdup(name))) {
        free(t->dims);
        free(t);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    *nbytes = bytes;
    *out = t;
    return PARE_OK;
}

pare_status pare_tensor_new(const char *name, int dtype, int rank, const int64_t *dims,
                            pare_tensor **out, pare_error *err)
{
    size_t bytes;
    pare_tensor *t;
    pare_status st = tensor_alloc_head(name, dtype, rank, dims, &t, &bytes, err);
    if (st)
        return st;
    t->data = calloc(1, bytes ? bytes : 1);
    if (!t->data) {
        pare_tensor_free(t);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
    }
    t->nbytes = bytes;
    t->owns_data = true;
    *out = t;
    return PARE_OK;
}

pare_status pare_tensor_wrap(const char *name, int dtype, int rank, const int64_t *dims,
                             void *data, size_t nbytes, pare_tensor **out, pare_error *err)
{
    size_t bytes;
    pare_tensor *t;
    pare_status st = tensor_alloc_head(name, dtype, rank, dims, &t, &bytes, err);
    if (st)
        return st;
    if (bytes != nbytes) {
        pare_tensor_free(t);
        return pare_error_set(err, PARE_ERR_INVALID, "data has %zu bytes, shape and dtype need %zu",
                              nbytes, bytes);
    }
    t->data = data;
    t->nbytes = nbytes;
    t->owns_data = false;
    *out = t;
    return PARE_OK;
}

static pare_status copy_data(pare_tensor *dst, const pare_tensor *src, pare_error *err)
{
    void *d = malloc(src->nbytes ? src->nbytes : 1);
    if (!d)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory allocating %zu bytes", src->nbytes);
    if (src->dtype == PARE_DT_STRING) {
        size_t n = src->nbytes / sizeof(pare_string);
        const pare_string *s = src->data;
        pare_string *o = d;
        for (size_t i = 0; i < n; i++) {
            o[i].len = s[i].len;
            o[i].data = malloc(s[i].len ? s[i].len : 1);
            if (!o[i].data) {
                for (size_t j = 0; j < i; j++)
                    free(o[j].data);
                free(d);
                return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
            }
            if (s[i].len)
                memcpy(o[i].data, s[i].data, s[i].len);
        }
    } else if (src->nbytes) {
        memcpy(d, src->data, src->nbytes);
    }
    dst->data = d;
    dst->nbytes = src->nbytes;
    dst->owns_data = true;
    return PARE_OK;
}

pare_status pare_tensor_clone(const pare_tensor *t, pare_tensor **out, pare_error *err)
{
    size_t bytes;
    pare_tensor *c;
    pare_status st = tensor_alloc_head(t->name, t->dtype, t->rank, t->dims, &c, &bytes, err);
    if (st)
        return st;
    if ((st = copy_data(c, t, err))) {
        pare_tensor_free(c);
        return st;
    }
    *out = c;
    return PARE_OK;
}

pare_status pare_tensor_own(pare_tensor *t, pare_error *err)
{
    if (t->owns_data)
        return PARE_OK;
    pare_tensor tmp = *t;
    return copy_data(t, &tmp, err);
}

pare_status pare_tensor_set_name(pare_tensor *t, const char *name, pare_error *err)
{
    char *n = NULL;
    if (name && !(n = strdup(name)))
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    free(t->name);
    t->name = n;
    return PARE_OK;
}

uint64_t pare_tensor_numel(const pare_tensor *t)
{
    uint64_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= (uint64_t)t->dims[i];
    return n;
}

void pare_tensor_free(pare_tensor *t)
{
    if (!t)
        return;
    if (t->owns_data) {
        if (t->dtype == PARE_DT_STRING && t->data) {
            pare_string *s = t->data;
            for (size_t i = 0; i < t->nbytes / sizeof(pare_string); i++)
                free(s[i].data);
        }
        free(t->data);
    }
    free(t->dims);
    free(t->name);
    free(t);
}

char *pare_dims_str(int rank, const int64_t *dims, char *buf, size_t size)
{
    if (size == 0)
        return buf;
    if (rank == 0) {
        snprintf(buf, size, "scalar");
        return buf;
    }
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; i < rank && off < size; i++) {
        int w = snprintf(buf + off, size - off, "%s%lld", i ? "x" : "", (long long)dims[i]);
        if (w < 0)
            break;
        off += (size_t)w;
    }
    return buf;
}

void pare_tensors_free(pare_tensor **ts, size_t n)
{
    if (!ts)
        return;
    for (size_t i = 0; i < n; i++)
        pare_tensor_free(ts[i]);
    free(ts);
}
