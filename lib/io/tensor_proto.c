/* TensorProto <-> pare_tensor, and external data resolution. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

/* ---- external data: safe path resolution and one mapping per file ---- */

static pare_status check_location(const char *loc, pare_error *err)
{
    if (!*loc)
        return pare_error_set(err, PARE_ERR_INVALID, "external data location is empty");
    if (loc[0] == '/' || loc[0] == '\\' || (loc[0] && loc[1] == ':'))
        return pare_error_set(err, PARE_ERR_INVALID,
                              "external data location '%s' is absolute; only paths inside the "
                              "model's folder are allowed", loc);
    const char *p = loc;
    while (*p) {
        const char *e = p;
        while (*e && *e != '/' && *e != '\\')
            e++;
        if (e - p == 2 && p[0] == '.' && p[1] == '.')
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "external data location '%s' contains '..'; only paths inside "
                                  "the model's folder are allowed", loc);
        p = *e ? e + 1 : e;
    }
    return PARE_OK;
}

pare_status pare__extmap_get(pare_model *m, const char *location, const void **addr, size_t *len,
                             pare_error *err)
{
    for (size_t i = 0; i < m->n_ext; i++) {
        if (strcmp(m->ext[i].location, location) == 0) {
            *addr = m->ext[i].addr;
            *len = m->ext[i].len;
            return PARE_OK;
        }
    }
    if (m->no_external)
        return pare_error_set(err, PARE_ERR_INVALID, "external data '%s' refused (external data "
                              "disabled)", location);
    if (!m->base_dir)
        return pare_error_set(err, PARE_ERR_INVALID, "external data '%s' cannot be resolved for a "
                              "model read from a stream; load it from its file", location);
    pare_status st = check_location(location, err);
    if (st)
        return st;
    char path[PATH_MAX], real_base[PATH_MAX], real_path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", m->base_dir, location) >= sizeof path)
        return pare_error_set(err, PARE_ERR_INVALID, "external data path too long");
    if (!realpath(m->base_dir, real_base))
        return pare_error_set(err, PARE_ERR_IO, "%s: %s", m->base_dir, strerror(errno));
    if (!realpath(path, real_path))
        return pare_error_set(err, PARE_ERR_IO, "external data '%s': %s", location,
                              strerror(errno));
    size_t bl = strlen(real_base);
    if (strncmp(real_path, real_base, bl) != 0 || (real_path[bl] != '/' && bl > 1))
        return pare_error_set(err, PARE_ERR_INVALID,
                              "external data '%s' resolves outside the model's folder (%s)",
                              location, real_path);
    int fd = open(real_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pare_error_set(err, PARE_ERR_IO, "external data '%s': %s", location,
                              strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return pare_error_set(err, PARE_ERR_IO, "external data '%s' is not a regular file",
                              location);
    }
    void *a = NULL;
    size_t l = (size_t)sb.st_size;
    if (l > 0) {
        a = mmap(NULL, l, PROT_READ, MAP_PRIVATE, fd, 0);
        if (a == MAP_FAILED) {
            close(fd);
            return pare_error_set(err, PARE_ERR_IO, "external data '%s': mmap: %s", location,
                                  strerror(errno));
        }
    }
    close(fd);
    pare_extmap *ne = realloc(m->ext, (m->n_ext + 1) * sizeof *ne);
    char *lc = strdup(location), *pc = strdup(real_path);
    if (!ne || !lc || !pc) {
        free(lc);
        free(pc);
        if (ne)
            m->ext = ne;
        if (a)
            munmap(a, l);
        return PARE_NOMEM(err);
    }
    m->ext = ne;
    m->ext[m->n_ext].location = lc;
    m->ext[m->n_ext].addr = a;
    m->ext[m->n_ext].len = l;
    m->ext[m->n_ext].path = pc;
    m->ext[m->n_ext].dev = sb.st_dev;
    m->ext[m->n_ext].ino = sb.st_ino;
    m->n_ext++;
    *addr = a;
    *len = l;
    return PARE_OK;
}

static pare_status parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return PARE_ERR_FORMAT;
    *out = v;
    return PARE_OK;
}

/* ---- typed fields -> packed bytes ---- */

static pare_status from_typed(const Onnx__TensorProto *tp, pare_tensor *t, uint64_t n,
                              pare_error *err)
{
    int dt = t->dtype;
    size_t have = 0;
    switch (dt) {
    case PARE_DT_FLOAT:
    case PARE_DT_COMPLEX64:
        have = tp->n_float_data;
        break;
    case PARE_DT_DOUBLE:
    case PARE_DT_COMPLEX128:
        have = tp->n_double_data;
        break;
    case PARE_DT_INT64:
        have = tp->n_int64_data;
        break;
    case PARE_DT_UINT32:
    case PARE_DT_UINT64:
        have = tp->n_uint64_data;
        break;
    case PARE_DT_STRING:
        have = tp->n_string_data;
        break;
    default:
        have = tp->n_int32_data;
        break;
    }
    uint64_t want = n;
    if (dt == PARE_DT_COMPLEX64 || dt == PARE_DT_COMPLEX128)
        want = n * 2;
    if (pare_dtype_bits(dt) == 4)
        want = (n + 1) / 2;
    if (pare_dtype_bits(dt) == 2)
        want = (n + 3) / 4;
    if (have != want)
        return pare_error_set(err, PARE_ERR_INVALID, "tensor has %zu data elements, dims need %llu",
                              have, (unsigned long long)want);
    uint8_t *d = t->data;
    for (uint64_t i = 0; i < have; i++) {
        switch (dt) {
        case PARE_DT_FLOAT:
        case PARE_DT_COMPLEX64:
            memcpy(d + i * 4, &tp->float_data[i], 4);
            break;
        case PARE_DT_DOUBLE:
        case PARE_DT_COMPLEX128:
            memcpy(d + i * 8, &tp->double_data[i], 8);
            break;
        case PARE_DT_INT64:
            memcpy(d + i * 8, &tp->int64_data[i], 8);
            break;
        case PARE_DT_UINT64:
            memcpy(d + i * 8, &tp->uint64_data[i], 8);
            break;
        case PARE_DT_UINT32: {
            uint32_t v = (uint32_t)tp->uint64_data[i];
            memcpy(d + i * 4, &v, 4);
            break;
        }
        case PARE_DT_STRING: {
            pare_string *s = (pare_string *)t->data + i;
            size_t l = tp->string_data[i].len;
            s->data = malloc(l + 1);
            if (!s->data)
                return PARE_NOMEM(err);
            if (l)
                memcpy(s->data, tp->string_data[i].data, l);
            s->data[l] = 0;
            s->len = l;
            break;
        }
        case PARE_DT_INT32: {
            int32_t v = tp->int32_data[i];
            memcpy(d + i * 4, &v, 4);
            break;
        }
        case PARE_DT_INT16:
        case PARE_DT_UINT16:
        case PARE_DT_FLOAT16:
        case PARE_DT_BFLOAT16: {
            uint16_t v = (uint16_t)tp->int32_data[i];
            memcpy(d + i * 2, &v, 2);
            break;
        }
        default: /* 8-bit types and packed 4-bit pairs */
            d[i] = (uint8_t)tp->int32_data[i];
            break;
        }
    }
    return PARE_OK;
}

/* Borrowed data must be aligned for its element type, as malloc'd data is,
 * since kernels read it through typed pointers; a model file (or another
 * writer's external data) may place a tensor at any offset. */
bool pare__aligned_for(int dtype, const void *p)
{
    int bits = pare_dtype_bits(dtype);
    uintptr_t a = bits >= 16 ? (uintptr_t)bits / 8 : 1;
    if (a > 16)
        a = 16;
    return ((uintptr_t)p & (a - 1)) == 0;
}

/* A tensor over data: borrowed when aligned (or when the copy may wait:
 * defer), else an aligned copy. */
static pare_status wrap_or_copy(pare_model *m, const char *name, int dt, int rank,
                                const int64_t *dims, const void *data, size_t need, bool defer,
                                pare_tensor **out, pare_error *err)
{
    bool aligned = pare__aligned_for(dt, data);
    if (!aligned && defer && m && need >= PARE__DEFER_ALIGN_MIN) {
        pare_status st = pare_tensor_wrap(name, dt, rank, dims, (void *)data, need, out, err);
        if (!st)
            m->n_unaligned++;
        return st;
    }
    if (aligned)
        return pare_tensor_wrap(name, dt, rank, dims, (void *)data, need, out, err);
    pare_status st = pare_tensor_new(name, dt, rank, dims, out, err);
    if (!st && need && !pare__source_read(m, data, (*out)->data, need))
        memcpy((*out)->data, data, need);
    return st;
}

pare_status pare__tensor_from_proto(const Onnx__TensorProto *tp, pare_model *m, unsigned flags,
                                    pare_tensor **out, pare_error *err)
{
    bool borrow = flags & PARE__TP_BORROW;
    bool defer = flags & PARE__TP_DEFER_ALIGN;
    const char *name = tp->name ? tp->name : "";
    if (!tp->has_data_type || !pare_dtype_valid(tp->data_type))
        return pare_error_set(err, PARE_ERR_INVALID, "tensor '%s': %s data type %d", name,
                              tp->has_data_type ? "unknown" : "missing", tp->data_type);
    if (tp->n_dims > PARE_MAX_RANK)
        return pare_error_set(err, PARE_ERR_INVALID, "tensor '%s': rank %zu is too large", name,
                              tp->n_dims);
    /* A segment only says which part of a larger tensor this message holds;
     * the data here is still consistent with dims, and the field travels
     * untouched on save. */
    int rank = (int)tp->n_dims;
    uint64_t n;
    pare_error e2;
    if (pare_shape_numel(rank, tp->dims, &n, &e2))
        return pare_error_set(err, e2.status, "tensor '%s': %s", name, e2.msg);
    int dt = tp->data_type;
    size_t need = dt == PARE_DT_STRING ? 0 : pare_dtype_nbytes(dt, n);
    if (dt != PARE_DT_STRING && need == SIZE_MAX)
        return pare_error_set(err, PARE_ERR_LIMIT, "tensor '%s': too large", name);

    bool external = tp->has_data_location &&
                    tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    if (external) {
        if (!m)
            return pare_error_set(err, PARE_ERR_INVALID, "tensor '%s': external data not allowed "
                                  "here", name);
        const char *loc = NULL;
        int64_t off = 0, len = -1;
        for (size_t i = 0; i < tp->n_external_data; i++) {
            const Onnx__StringStringEntryProto *kv = tp->external_data[i];
            if (!kv->key || !kv->value)
                continue;
            if (strcmp(kv->key, "location") == 0)
                loc = kv->value;
            else if (strcmp(kv->key, "offset") == 0) {
                if (parse_i64(kv->value, &off) || off < 0)
                    return pare_error_set(err, PARE_ERR_INVALID,
                                          "tensor '%s': external data offset '%s' is not a "
                                          "non-negative integer", name, kv->value);
            } else if (strcmp(kv->key, "length") == 0) {
                if (parse_i64(kv->value, &len) || len < 0)
                    return pare_error_set(err, PARE_ERR_INVALID,
                                          "tensor '%s': external data length '%s' is not a "
                                          "non-negative integer", name, kv->value);
            }
        }
        if (!loc)
            return pare_error_set(err, PARE_ERR_INVALID, "tensor '%s': external data without a "
                                  "location", name);
        if (dt == PARE_DT_STRING)
            return pare_error_set(err, PARE_ERR_INVALID, "tensor '%s': string tensors cannot be "
                                  "external", name);
        const void *base;
        size_t flen;
        pare_status st = pare__extmap_get(m, loc, &base, &flen, err);
        if (st)
            return pare_error_prefix(err, "tensor '%s'", name);
        if (len < 0)
            len = (int64_t)need;
        if ((uint64_t)off > flen || (uint64_t)len > flen - (uint64_t)off)
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "tensor '%s': external data offset %lld + length %lld is past "
                                  "the end of '%s' (%zu bytes)", name, (long long)off,
                                  (long long)len, loc, flen);
        if ((uint64_t)len != need)
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "tensor '%s': external data length %lld, dims and dtype need "
                                  "%zu bytes", name, (long long)len, need);
        m->external_bytes += (uint64_t)len;
        return wrap_or_copy(m, tp->name, dt, rank, tp->dims, (const uint8_t *)base + off, need,
                            defer, out, err);
    }

    if (tp->has_raw_data && dt != PARE_DT_STRING) {
        if (tp->raw_data.len != need) {
            char dbuf[256];
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "tensor '%s': raw_data has %zu bytes, dims %s and %s need %zu",
                                  name, tp->raw_data.len, pare_dims_str(rank, tp->dims, dbuf,
                                                                        sizeof dbuf),
                                  pare_dtype_name(dt), need);
        }
        if (borrow)
            return wrap_or_copy(m, tp->name, dt, rank, tp->dims, tp->raw_data.data, need, defer,
                                out, err);
        pare_status st = pare_tensor_new(tp->name, dt, rank, tp->dims, out, err);
        if (st)
            return st;
        if (need)
            memcpy((*out)->data, tp->raw_data.data, need);
        return PARE_OK;
    }
    /* the typed field must hold as many elements as dims say: check before
     * allocating, so absurd dims with no data fail instead of allocating */
    {
        size_t have = dt == PARE_DT_FLOAT || dt == PARE_DT_COMPLEX64   ? tp->n_float_data
                      : dt == PARE_DT_DOUBLE || dt == PARE_DT_COMPLEX128 ? tp->n_double_data
                      : dt == PARE_DT_INT64                            ? tp->n_int64_data
                      : dt == PARE_DT_UINT32 || dt == PARE_DT_UINT64   ? tp->n_uint64_data
                      : dt == PARE_DT_STRING                           ? tp->n_string_data
                                                                       : tp->n_int32_data;
        uint64_t per = dt == PARE_DT_COMPLEX64 || dt == PARE_DT_COMPLEX128 ? 2 : 1;
        uint64_t want = pare_dtype_bits(dt) == 4   ? (n + 1) / 2
                        : pare_dtype_bits(dt) == 2 ? (n + 3) / 4
                                                   : n;
        if (want > UINT64_MAX / per || (uint64_t)have != want * per)
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "tensor '%s': %zu data elements, dims need %llu", name, have,
                                  (unsigned long long)(want * per));
    }
    pare_tensor *t;
    pare_status st = pare_tensor_new(tp->name, dt, rank, tp->dims, &t, err);
    if (st)
        return st;
    if ((st = from_typed(tp, t, n, err))) {
        pare_tensor_free(t);
        return pare_error_prefix(err, "tensor '%s'", name);
    }
    *out = t;
    return PARE_OK;
}

pare_status pare_tensor_pb_decode(const void *buf, size_t len, pare_tensor **out, pare_error *err)
{
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    if (!tp)
        return pare_error_set(err, PARE_ERR_FORMAT, "not a TensorProto (protobuf parse failed)");
    pare_status st = pare__tensor_from_proto(tp, NULL, 0, out, err);
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return st;
}

pare_status pare_tensor_pb_encode(const pare_tensor *t, void **buf, size_t *len, pare_error *err)
{
    Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
    ProtobufCBinaryData *sd = NULL;
    tp.has_data_type = 1;
    tp.data_type = t->dtype;
    tp.n_dims = (size_t)t->rank;
    tp.dims = t->dims;
    if (t->name)
        tp.name = t->name;
    if (t->dtype == PARE_DT_STRING) {
        size_t n = t->nbytes / sizeof(pare_string);
        sd = calloc(n ? n : 1, sizeof *sd);
        if (!sd)
            return PARE_NOMEM(err);
        for (size_t i = 0; i < n; i++) {
            sd[i].data = (uint8_t *)((pare_string *)t->data)[i].data;
            sd[i].len = ((pare_string *)t->data)[i].len;
        }
        tp.n_string_data = n;
        tp.string_data = sd;
    } else {
        tp.has_raw_data = 1;
        tp.raw_data.data = t->data;
        tp.raw_data.len = t->nbytes;
    }
    size_t sz = onnx__tensor_proto__get_packed_size(&tp);
    uint8_t *b = malloc(sz ? sz : 1);
    if (!b) {
        free(sd);
        return PARE_NOMEM(err);
    }
    onnx__tensor_proto__pack(&tp, b);
    free(sd);
    *buf = b;
    *len = sz;
    return PARE_OK;
}
