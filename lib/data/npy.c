/* .npy: numpy's array file format, versions 1.0, 2.0 and 3.0.
 *
 * The header is a Python dict literal; numpy parses it with
 * ast.literal_eval, we parse the subset numpy writes (and hand edits of it),
 * strictly, since the bytes are untrusted. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "data_internal.h"

/* numpy's header padding: room for this many digits in the growing axis. */
#define NPY_GROWTH_DIGITS 21
#define NPY_ALIGN 64

typedef struct npy_type {
    const char *code; /* after the byte-order character */
    int dtype;
    size_t size;
} npy_type;

static const npy_type npy_types[] = {
    {"f4", PARE_DT_FLOAT, 4},      {"f8", PARE_DT_DOUBLE, 8},       {"f2", PARE_DT_FLOAT16, 2},
    {"i1", PARE_DT_INT8, 1},       {"u1", PARE_DT_UINT8, 1},        {"i2", PARE_DT_INT16, 2},
    {"u2", PARE_DT_UINT16, 2},     {"i4", PARE_DT_INT32, 4},        {"u4", PARE_DT_UINT32, 4},
    {"i8", PARE_DT_INT64, 8},      {"u8", PARE_DT_UINT64, 8},       {"b1", PARE_DT_BOOL, 1},
    {"c8", PARE_DT_COMPLEX64, 8},  {"c16", PARE_DT_COMPLEX128, 16},
};
#define N_NPY_TYPES (sizeof npy_types / sizeof npy_types[0])

const char *pare_npy_descr(int dtype)
{
    switch (dtype) {
    case PARE_DT_FLOAT: return "<f4";
    case PARE_DT_DOUBLE: return "<f8";
    case PARE_DT_FLOAT16: return "<f2";
    case PARE_DT_INT8: return "|i1";
    case PARE_DT_UINT8: return "|u1";
    case PARE_DT_INT16: return "<i2";
    case PARE_DT_UINT16: return "<u2";
    case PARE_DT_INT32: return "<i4";
    case PARE_DT_UINT32: return "<u4";
    case PARE_DT_INT64: return "<i8";
    case PARE_DT_UINT64: return "<u8";
    case PARE_DT_BOOL: return "|b1";
    case PARE_DT_COMPLEX64: return "<c8";
    case PARE_DT_COMPLEX128: return "<c16";
    default: return NULL;
    }
}

size_t npy_elem_size(int dtype)
{
    for (size_t i = 0; i < N_NPY_TYPES; i++)
        if (npy_types[i].dtype == dtype)
            return npy_types[i].size;
    return 0;
}

void npy_shape_str(int rank, const int64_t *dims, char *buf, size_t size)
{
    size_t off = 0;
    if (size == 0)
        return;
    buf[0] = '\0';
    int w = snprintf(buf, size, "(");
    off = w > 0 ? (size_t)w : 0;
    for (int i = 0; i < rank && off < size; i++) {
        w = snprintf(buf + off, size - off, "%s%lld", i ? ", " : "", (long long)dims[i]);
        if (w < 0)
            return;
        off += (size_t)w;
    }
    if (off < size)
        snprintf(buf + off, size - off, "%s)", rank == 1 ? "," : "");
}

/* ---- header parsing ---- */

typedef struct lexer {
    const char *p, *end;
} lexer;

static void skip_ws(lexer *lx)
{
    while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\n' || *lx->p == '\r'))
        lx->p++;
}

static bool accept(lexer *lx, char c)
{
    skip_ws(lx);
    if (lx->p < lx->end && *lx->p == c) {
        lx->p++;
        return true;
    }
    return false;
}

/* A quoted string without escapes, copied into out (NUL-terminated). */
static pare_status parse_string(lexer *lx, char *out, size_t cap, const char *what, pare_error *err)
{
    skip_ws(lx);
    if (lx->p >= lx->end || (*lx->p != '\'' && *lx->p != '"'))
        return pare_error_set(err, PARE_ERR_FORMAT, "header: expected a quoted %s", what);
    char q = *lx->p++;
    size_t n = 0;
    while (lx->p < lx->end && *lx->p != q) {
        char c = *lx->p++;
        if (c == '\\' || c == '\n' || c == '\0')
            return pare_error_set(err, PARE_ERR_FORMAT, "header: bad character in %s", what);
        if (n + 1 >= cap)
            return pare_error_set(err, PARE_ERR_UNSUPPORTED, "header: %s too long", what);
        out[n++] = c;
    }
    if (lx->p >= lx->end)
        return pare_error_set(err, PARE_ERR_FORMAT, "header: unterminated %s", what);
    lx->p++;
    out[n] = '\0';
    return PARE_OK;
}

static bool accept_word(lexer *lx, const char *w)
{
    skip_ws(lx);
    size_t n = strlen(w);
    if ((size_t)(lx->end - lx->p) >= n && memcmp(lx->p, w, n) == 0) {
        const char *after = lx->p + n;
        if (after < lx->end && ((*after >= 'a' && *after <= 'z') || (*after >= 'A' && *after <= 'Z') ||
                                (*after >= '0' && *after <= '9') || *after == '_'))
            return false;
        lx->p = after;
        return true;
    }
    return false;
}

static pare_status parse_shape(lexer *lx, pare_npy_info *info, pare_error *err)
{
    bool negative = false;
    if (!accept(lx, '('))
        return pare_error_set(err, PARE_ERR_FORMAT, "header: shape is not a tuple");
    info->rank = 0;
    bool need_comma_for_one = true;
    for (;;) {
        if (accept(lx, ')'))
            break;
        if (info->rank == PARE_MAX_RANK)
            return pare_error_set(err, PARE_ERR_LIMIT, "header: shape has more than %d dims",
                                  PARE_MAX_RANK);
        skip_ws(lx);
        bool neg = false;
        if (lx->p < lx->end && *lx->p == '-') {
            neg = true;
            lx->p++;
        }
        if (lx->p >= lx->end || *lx->p < '0' || *lx->p > '9')
            return pare_error_set(err, PARE_ERR_FORMAT, "header: shape entry %d is not an integer",
                                  info->rank);
        uint64_t v = 0;
        while (lx->p < lx->end && *lx->p >= '0' && *lx->p <= '9') {
            unsigned d = (unsigned)(*lx->p++ - '0');
            if (v > ((uint64_t)INT64_MAX - d) / 10)
                return pare_error_set(err, PARE_ERR_LIMIT, "header: shape entry %d is too large",
                                      info->rank);
            v = v * 10 + d;
        }
        if (lx->p < lx->end && (*lx->p == 'L' || *lx->p == 'l')) /* Python 2 longs */
            lx->p++;
        info->dims[info->rank++] = neg ? -(int64_t)v : (int64_t)v;
        if (neg && v)
            negative = true;
        if (accept(lx, ',')) {
            need_comma_for_one = false;
            continue;
        }
        if (!accept(lx, ')'))
            return pare_error_set(err, PARE_ERR_FORMAT, "header: bad shape tuple");
        break;
    }
    if (info->rank == 1 && need_comma_for_one)
        return pare_error_set(err, PARE_ERR_FORMAT, "header: shape (%lld) is not a tuple",
                              (long long)info->dims[0]);
    if (negative) {
        char s[256];
        npy_shape_str(info->rank, info->dims, s, sizeof s);
        return pare_error_set(err, PARE_ERR_FORMAT, "header: shape %s has a negative dim", s);
    }
    return PARE_OK;
}

static pare_status parse_descr(const char *descr, pare_npy_info *info, pare_error *err)
{
    char order = descr[0];
    const char *code = descr + (order ? 1 : 0);
    if (order == '[' || order == '(')
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "header: structured dtypes are not supported");
    if (order != '<' && order != '>' && order != '|')
        return pare_error_set(err, PARE_ERR_UNSUPPORTED,
                              "header: descr '%s' has no byte order ('<', '>' or '|')", descr);
    for (size_t i = 0; i < N_NPY_TYPES; i++) {
        if (strcmp(code, npy_types[i].code) != 0)
            continue;
        if (order == '|' && npy_types[i].size != 1)
            return pare_error_set(err, PARE_ERR_FORMAT, "header: descr '%s' needs a byte order",
                                  descr);
        info->dtype = npy_types[i].dtype;
        info->big_endian = order == '>' && npy_types[i].size > 1;
        return PARE_OK;
    }
    if (code[0] == 'V')
        return pare_error_set(err, PARE_ERR_UNSUPPORTED,
                              "header: descr '%s' (raw void bytes, e.g. ml_dtypes bfloat16) is not "
                              "supported", descr);
    return pare_error_set(err, PARE_ERR_UNSUPPORTED, "header: descr '%s' is not supported", descr);
}

static pare_status parse_dict(const char *text, size_t len, pare_npy_info *info, pare_error *err)
{
    lexer lx = {text, text + len};
    bool have_descr = false, have_fortran = false, have_shape = false;
    char key[32], descr[32];
    pare_status st;

    if (!accept(&lx, '{'))
        return pare_error_set(err, PARE_ERR_FORMAT, "header: not a dict");
    for (;;) {
        if (accept(&lx, '}'))
            break;
        if ((st = parse_string(&lx, key, sizeof key, "key", err)))
            return st;
        if (!accept(&lx, ':'))
            return pare_error_set(err, PARE_ERR_FORMAT, "header: expected ':' after '%s'", key);
        if (strcmp(key, "descr") == 0) {
            if (have_descr)
                return pare_error_set(err, PARE_ERR_FORMAT, "header: duplicate key 'descr'");
            skip_ws(&lx);
            if (lx.p < lx.end && (*lx.p == '[' || *lx.p == '('))
                return pare_error_set(err, PARE_ERR_UNSUPPORTED,
                                      "header: structured dtypes are not supported");
            if ((st = parse_string(&lx, descr, sizeof descr, "descr", err)))
                return st;
            if ((st = parse_descr(descr, info, err)))
                return st;
            have_descr = true;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (have_fortran)
                return pare_error_set(err, PARE_ERR_FORMAT, "header: duplicate key 'fortran_order'");
            if (accept_word(&lx, "True"))
                info->fortran_order = true;
            else if (accept_word(&lx, "False"))
                info->fortran_order = false;
            else
                return pare_error_set(err, PARE_ERR_FORMAT,
                                      "header: fortran_order is not True or False");
            have_fortran = true;
        } else if (strcmp(key, "shape") == 0) {
            if (have_shape)
                return pare_error_set(err, PARE_ERR_FORMAT, "header: duplicate key 'shape'");
            if ((st = parse_shape(&lx, info, err)))
                return st;
            have_shape = true;
        } else {
            return pare_error_set(err, PARE_ERR_FORMAT, "header: unknown key '%s'", key);
        }
        if (accept(&lx, ','))
            continue;
        if (!accept(&lx, '}'))
            return pare_error_set(err, PARE_ERR_FORMAT, "header: expected ',' or '}' after '%s'",
                                  key);
        break;
    }
    skip_ws(&lx);
    if (lx.p != lx.end)
        return pare_error_set(err, PARE_ERR_FORMAT, "header: unexpected bytes after the dict");
    if (!have_descr || !have_fortran || !have_shape)
        return pare_error_set(err, PARE_ERR_FORMAT, "header: missing key '%s'",
                              !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    return PARE_OK;
}

pare_status npy_read_header(data_src *s, pare_npy_info *info, bool exact_end, pare_error *err)
{
    unsigned char pre[12];
    pare_status st;

    memset(info, 0, sizeof *info);
    if (s->size - s->pos < 10)
        return pare_error_set(err, PARE_ERR_FORMAT, "not an npy file (only %llu bytes)",
                              (unsigned long long)(s->size - s->pos));
    if ((st = s->read(s, pre, 8, err)))
        return st;
    if (memcmp(pre, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return pare_error_set(err, PARE_ERR_FORMAT, "not an npy file (bad magic)");
    int major = pre[6], minor = pre[7];
    if (major < 1 || major > 3 || minor != 0)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "npy format version %d.%d is not supported",
                              major, minor);
    size_t lenbytes = major == 1 ? 2 : 4;
    if ((st = s->read(s, pre + 8, lenbytes, err)))
        return st;
    uint64_t hlen = major == 1 ? rd16(pre + 8) : rd32(pre + 8);
    if (hlen > PARE_NPY_MAX_HEADER)
        return pare_error_set(err, PARE_ERR_LIMIT, "header: %llu bytes is over the limit of %zu",
                              (unsigned long long)hlen, PARE_NPY_MAX_HEADER);
    if (hlen > s->size - s->pos)
        return pare_error_set(err, PARE_ERR_FORMAT, "header: truncated (%llu bytes, %llu present)",
                              (unsigned long long)hlen, (unsigned long long)(s->size - s->pos));
    char *text = malloc(hlen ? hlen : 1);
    if (!text)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    st = s->read(s, text, (size_t)hlen, err);
    if (!st)
        st = parse_dict(text, (size_t)hlen, info, err);
    free(text);
    if (st)
        return st;
    info->version = major;
    info->data_offset = 8 + lenbytes + hlen;

    uint64_t n;
    if ((st = pare_shape_numel(info->rank, info->dims, &n, err)))
        return pare_error_prefix(err, "header");
    size_t nb = pare_dtype_nbytes(info->dtype, n);
    if (nb == SIZE_MAX)
        return pare_error_set(err, PARE_ERR_LIMIT, "header: array of %llu elements is too large",
                              (unsigned long long)n);
    info->nbytes = nb;
    uint64_t left = s->size - s->pos;
    if (left < nb) {
        char sh[256];
        npy_shape_str(info->rank, info->dims, sh, sizeof sh);
        return pare_error_set(err, PARE_ERR_FORMAT,
                              "data: truncated (shape %s needs %llu bytes, %llu present)", sh,
                              (unsigned long long)nb, (unsigned long long)left);
    }
    if (exact_end && left > nb)
        return pare_error_set(err, PARE_ERR_FORMAT, "data: %llu bytes after the array",
                              (unsigned long long)(left - nb));
    return PARE_OK;
}

void npy_swap(int dtype, void *data, uint64_t nelem)
{
    size_t es = npy_elem_size(dtype);
    if (dtype == PARE_DT_COMPLEX64 || dtype == PARE_DT_COMPLEX128) {
        es /= 2;
        nelem *= 2;
    }
    unsigned char *p = data;
    if (es < 2)
        return;
    for (uint64_t i = 0; i < nelem; i++, p += es)
        for (size_t a = 0, b = es - 1; a < b; a++, b--) {
            unsigned char t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

/* Fortran (column-major) to C (row-major) order. */
static pare_status transpose_fortran(const pare_npy_info *info, pare_tensor *t, pare_error *err)
{
    int r = info->rank;
    uint64_t n = pare_tensor_numel(t);
    size_t es = npy_elem_size(info->dtype);
    if (r < 2 || n < 2)
        return PARE_OK;
    unsigned char *dst = malloc(t->nbytes);
    if (!dst)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory transposing %zu bytes", t->nbytes);
    uint64_t fstride[PARE_MAX_RANK];
    uint64_t idx[PARE_MAX_RANK] = {0};
    fstride[0] = 1;
    for (int k = 1; k < r; k++)
        fstride[k] = fstride[k - 1] * (uint64_t)info->dims[k - 1];
    const unsigned char *src = t->data;
    uint64_t off = 0; /* element offset in the fortran buffer of C index idx */
    for (uint64_t c = 0; c < n; c++) {
        memcpy(dst + c * es, src + off * es, es);
        for (int k = r - 1; k >= 0; k--) {
            if (++idx[k] < (uint64_t)info->dims[k]) {
                off += fstride[k];
                break;
            }
            off -= fstride[k] * (idx[k] - 1);
            idx[k] = 0;
        }
    }
    if (t->owns_data)
        free(t->data);
    t->data = dst;
    t->owns_data = true;
    return PARE_OK;
}

pare_status npy_fix_data(const pare_npy_info *info, pare_tensor *t, pare_error *err)
{
    if (info->big_endian)
        npy_swap(info->dtype, t->data, pare_tensor_numel(t));
    if (info->dtype == PARE_DT_BOOL) {
        /* numpy bools are 0/1; keep that invariant for untrusted bytes. */
        unsigned char *p = t->data;
        for (size_t i = 0; i < t->nbytes; i++)
            p[i] = p[i] != 0;
    }
    if (info->fortran_order)
        return transpose_fortran(info, t, err);
    return PARE_OK;
}

pare_status npy_read_body(data_src *s, const pare_npy_info *info, const char *name,
                          pare_tensor **out, pare_error *err)
{
    pare_tensor *t;
    pare_status st = pare_tensor_new(name, info->dtype, info->rank, info->dims, &t, err);
    if (st)
        return st;
    if (t->nbytes != info->nbytes) {
        pare_tensor_free(t);
        return pare_error_set(err, PARE_ERR_INVALID, "internal: size mismatch");
    }
    if ((st = s->read(s, t->data, t->nbytes, err)) || (st = npy_fix_data(info, t, err))) {
        pare_tensor_free(t);
        return st;
    }
    *out = t;
    return PARE_OK;
}

/* ---- sources ---- */

static pare_status mem_read(data_src *s, void *dst, size_t n, pare_error *err)
{
    mem_src *m = (mem_src *)s;
    if (n > s->size - s->pos)
        return pare_error_set(err, PARE_ERR_FORMAT, "truncated at byte %llu",
                              (unsigned long long)s->size);
    if (n)
        memcpy(dst, m->buf + s->pos, n);
    s->pos += n;
    return PARE_OK;
}

void mem_src_init(mem_src *m, const void *buf, size_t len)
{
    m->base.read = mem_read;
    m->base.size = len;
    m->base.pos = 0;
    m->buf = buf;
}

static pare_status fd_read(data_src *s, void *dst, size_t n, pare_error *err)
{
    fd_src *f = (fd_src *)s;
    if (n > s->size - s->pos)
        return pare_error_set(err, PARE_ERR_FORMAT, "truncated at byte %llu",
                              (unsigned long long)s->size);
    pare_status st = pread_full(f->fd, dst, n, s->pos, err);
    if (st)
        return st;
    s->pos += n;
    return PARE_OK;
}

void fd_src_init(fd_src *f, int fd, uint64_t size)
{
    f->base.read = fd_read;
    f->base.size = size;
    f->base.pos = 0;
    f->fd = fd;
}

/* ---- public reading ---- */

pare_status pare_npy_read_buffer(const void *buf, size_t len, pare_tensor **out, pare_error *err)
{
    mem_src m;
    pare_npy_info info;
    pare_status st;
    if (!buf && len)
        return pare_error_set(err, PARE_ERR_ARG, "NULL buffer");
    mem_src_init(&m, buf, len);
    if ((st = npy_read_header(&m.base, &info, true, err)))
        return st;
    return npy_read_body(&m.base, &info, NULL, out, err);
}

/* Opens a regular file for reading; *fd is -1 when it is not one (a pipe),
 * in which case the caller reads it whole. */
static pare_status open_regular(const char *path, int *fd, uint64_t *size, pare_error *err)
{
    *fd = -1;
    if (strcmp(path, "-") == 0)
        return PARE_OK;
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return pare_error_set(err, PARE_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(f, &sb) != 0) {
        int e = errno;
        close(f);
        return pare_error_set(err, PARE_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) {
        close(f);
        return pare_error_set(err, PARE_ERR_IO, "%s: is a directory", path);
    }
    if (!S_ISREG(sb.st_mode)) {
        close(f);
        return PARE_OK;
    }
    *fd = f;
    *size = (uint64_t)sb.st_size;
    return PARE_OK;
}

static pare_status npy_read_path(const char *path, pare_tensor **out, pare_npy_info *info_only,
                                 pare_error *err)
{
    int fd;
    uint64_t size = 0;
    pare_status st = open_regular(path, &fd, &size, err);
    if (st)
        return st;
    pare_npy_info info;
    if (fd < 0) {
        void *buf;
        size_t len;
        if ((st = read_whole_file(path, UINT64_MAX, &buf, &len, err)))
            return st;
        mem_src m;
        mem_src_init(&m, buf, len);
        st = npy_read_header(&m.base, &info, true, err);
        if (!st && out)
            st = npy_read_body(&m.base, &info, NULL, out, err);
        free(buf);
    } else {
        fd_src f;
        fd_src_init(&f, fd, size);
        st = npy_read_header(&f.base, &info, true, err);
        if (!st && out)
            st = npy_read_body(&f.base, &info, NULL, out, err);
        close(fd);
    }
    if (st)
        return pare_error_prefix(err, "%s", path);
    if (info_only)
        *info_only = info;
    return PARE_OK;
}

pare_status pare_npy_read(const char *path, pare_tensor **out, pare_error *err)
{
    if (!path || !out)
        return pare_error_set(err, PARE_ERR_ARG, "NULL argument");
    return npy_read_path(path, out, NULL, err);
}

pare_status pare_npy_read_info(const char *path, pare_npy_info *info, pare_error *err)
{
    if (!path || !info)
        return pare_error_set(err, PARE_ERR_ARG, "NULL argument");
    return npy_read_path(path, NULL, info, err);
}

/* ---- writing ---- */

pare_status npy_make_header(int dtype, int rank, const int64_t *dims, unsigned char **buf,
                            size_t *len, pare_error *err)
{
    const char *descr = pare_npy_descr(dtype);
    if (!descr) {
        const char *hint = pare_dtype_is_float(dtype) ? "float32 or float16"
                           : pare_dtype_is_int(dtype) ? "int8 or uint8" : NULL;
        if (hint)
            return pare_error_set(err, PARE_ERR_UNSUPPORTED,
                                  "npy has no dtype for %s (cast to %s first)",
                                  pare_dtype_name(dtype), hint);
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "npy has no dtype for %s",
                              pare_dtype_name(dtype));
    }
    if (rank < 0 || rank > PARE_MAX_RANK)
        return pare_error_set(err, PARE_ERR_ARG, "rank %d outside 0..%d", rank, PARE_MAX_RANK);
    /* 64 dims of at most 20 characters each, plus the keys. */
    size_t cap = 128 + (size_t)rank * 24 + NPY_GROWTH_DIGITS + 2 * NPY_ALIGN;
    char *dict = malloc(cap);
    unsigned char *h = malloc(cap + 16);
    if (!dict || !h) {
        free(dict);
        free(h);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    char shape[PARE_MAX_RANK * 24 + 8];
    npy_shape_str(rank, dims, shape, sizeof shape);
    int n = snprintf(dict, cap, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr,
                     shape);
    size_t dl = (size_t)n;
    if (rank > 0) {
        char d0[32];
        int digits = snprintf(d0, sizeof d0, "%lld", (long long)dims[0]);
        for (int i = digits; i < NPY_GROWTH_DIGITS; i++)
            dict[dl++] = ' ';
    }
    size_t hlen = dl + 1; /* the final newline */
    size_t pre = 10;
    size_t pad = NPY_ALIGN - (pre + hlen) % NPY_ALIGN;
    int version = 1;
    if (hlen + pad > 65535) { /* cannot happen with PARE_MAX_RANK dims, kept for the format */
        version = 2;
        pre = 12;
        pad = NPY_ALIGN - (pre + hlen) % NPY_ALIGN;
    }
    size_t total = pre + hlen + pad;
    memcpy(h, NPY_MAGIC, NPY_MAGIC_LEN);
    h[6] = (unsigned char)version;
    h[7] = 0;
    if (version == 1)
        wr16(h + 8, (uint16_t)(hlen + pad));
    else
        wr32(h + 8, (uint32_t)(hlen + pad));
    memcpy(h + pre, dict, dl);
    memset(h + pre + dl, ' ', pad);
    h[total - 1] = '\n';
    free(dict);
    *buf = h;
    *len = total;
    return PARE_OK;
}

pare_status npy_check_size(const pare_tensor *t, pare_error *err)
{
    uint64_t n;
    pare_status st = pare_shape_numel(t->rank, t->dims, &n, err);
    if (st)
        return st;
    size_t want = pare_dtype_nbytes(t->dtype, n);
    if (want != t->nbytes)
        return pare_error_set(err, PARE_ERR_ARG, "tensor has %zu bytes, its shape needs %zu",
                              t->nbytes, want);
    return PARE_OK;
}

static pare_status check_writable(const pare_tensor *t, pare_error *err)
{
    if (!t)
        return pare_error_set(err, PARE_ERR_ARG, "NULL tensor");
    if (!pare_npy_descr(t->dtype))
        return npy_make_header(t->dtype, 0, NULL, NULL, NULL, err);
    if (t->nbytes && !t->data)
        return pare_error_set(err, PARE_ERR_ARG, "tensor has no data");
    return npy_check_size(t, err);
}

pare_status pare_npy_write_buffer(const pare_tensor *t, void **buf, size_t *len, pare_error *err)
{
    unsigned char *h;
    size_t hl;
    pare_status st = check_writable(t, err);
    if (st || (st = npy_make_header(t->dtype, t->rank, t->dims, &h, &hl, err)))
        return st;
    if (t->nbytes > SIZE_MAX - hl) {
        free(h);
        return pare_error_set(err, PARE_ERR_LIMIT, "tensor too large");
    }
    unsigned char *b = realloc(h, hl + t->nbytes);
    if (!b) {
        free(h);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    if (t->nbytes)
        memcpy(b + hl, t->data, t->nbytes);
    *buf = b;
    *len = hl + t->nbytes;
    return PARE_OK;
}

pare_status pare_npy_write(const char *path, const pare_tensor *t, pare_error *err)
{
    unsigned char *h;
    size_t hl;
    out_file o;
    if (!path)
        return pare_error_set(err, PARE_ERR_ARG, "NULL path");
    pare_status st = check_writable(t, err);
    if (st || (st = npy_make_header(t->dtype, t->rank, t->dims, &h, &hl, err)))
        return pare_error_prefix(err, "%s", path);
    if ((st = out_file_open(&o, path, true, err))) {
        free(h);
        return st;
    }
    st = out_file_write(&o, h, hl, err);
    free(h);
    if (!st)
        st = out_file_write(&o, t->data, t->nbytes, err);
    if (st) {
        out_file_abort(&o);
        return st;
    }
    return out_file_commit(&o, err);
}
