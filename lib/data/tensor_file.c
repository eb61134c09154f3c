/* Single-tensor files: .npy or ONNX TensorProto (.pb), told apart by magic. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data_internal.h"
#include "pare/model.h" /* pare_tensor_pb_decode / _encode */

/* protobuf messages are limited to 2 GiB. */
#define MAX_PB_BYTES ((uint64_t)2 << 30)

static pare_status decode_buffer(const char *path, const void *buf, size_t len, pare_tensor **out,
                                 pare_error *err)
{
    pare_status st;
    if (len >= NPY_MAGIC_LEN && memcmp(buf, NPY_MAGIC, NPY_MAGIC_LEN) == 0)
        st = pare_npy_read_buffer(buf, len, out, err);
    else
        st = pare_tensor_pb_decode(buf, len, out, err);
    if (st)
        pare_error_prefix(err, "%s", path);
    return st;
}

pare_status pare_tensor_read_file(const char *path, pare_tensor **out, pare_error *err)
{
    if (!path || !out)
        return pare_error_set(err, PARE_ERR_ARG, "NULL argument");
    void *buf;
    size_t len;
    pare_status st;
    if (strcmp(path, "-") != 0) {
        /* An .npy is read straight into the tensor, without a copy of the file. */
        unsigned char magic[NPY_MAGIC_LEN];
        FILE *f = fopen(path, "rb");
        if (!f)
            return pare_error_set(err, PARE_ERR_IO, "%s: %s", path, strerror(errno));
        size_t got = fread(magic, 1, sizeof magic, f);
        fclose(f);
        if (got == sizeof magic && memcmp(magic, NPY_MAGIC, NPY_MAGIC_LEN) == 0)
            return pare_npy_read(path, out, err);
    }
    if ((st = read_whole_file(path, MAX_PB_BYTES, &buf, &len, err)))
        return st;
    st = decode_buffer(path, buf, len, out, err);
    free(buf);
    return st;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

pare_status pare_tensor_write_file(const char *path, const pare_tensor *t, pare_tensor_format fmt,
                                   pare_error *err)
{
    if (!path || !t)
        return pare_error_set(err, PARE_ERR_ARG, "NULL argument");
    if (fmt == PARE_TENSOR_FORMAT_AUTO)
        fmt = ends_with(path, ".npy") ? PARE_TENSOR_FORMAT_NPY : PARE_TENSOR_FORMAT_PB;
    if (fmt == PARE_TENSOR_FORMAT_NPY)
        return pare_npy_write(path, t, err);
    if (fmt != PARE_TENSOR_FORMAT_PB)
        return pare_error_set(err, PARE_ERR_ARG, "unknown tensor format %d", (int)fmt);
    void *buf;
    size_t len;
    pare_status st = pare_tensor_pb_encode(t, &buf, &len, err);
    if (st)
        return pare_error_prefix(err, "%s", path);
    out_file o;
    if ((st = out_file_open(&o, path, true, err))) {
        free(buf);
        return st;
    }
    st = out_file_write(&o, buf, len, err);
    free(buf);
    if (st) {
        out_file_abort(&o);
        return st;
    }
    return out_file_commit(&o, err);
}
