/* .npz writing: a zip archive of .npy members, streamed to a temporary file.
 *
 * Every local header carries a zip64 extra field (as numpy's savez does), so
 * sizes need not be known in advance: they are patched in by seeking back
 * when a member ends. A deflated member starts with its npy header in a
 * stored deflate block, which keeps the header patchable in place for arrays
 * that grow; its CRC-32 is combined from the header's and the data's. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "data_internal.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u
#define VERSION_MADE_BY 0x032D /* unix, zip 4.5 */
#define DOS_DATE_1980 0x0021   /* 1980-01-01 */
#define EXT_ATTR (0100644u << 16)
#define OUT_CHUNK (1 << 16)

typedef struct zentry {
    char *zip_name;
    uint16_t flags, method;
    uint32_t crc;
    uint64_t csize, usize, off;
} zentry;

struct pare_npz_writer {
    out_file out;
    bool compress;
    bool failed;
    uint64_t pos;            /* bytes written: the file offset */
    zentry *e;
    size_t n, cap;
    size_t *hash;            /* open addressing of entry index + 1 by name */
    size_t hash_cap;

    /* the member being written */
    bool open, growing;
    bool patched;            /* the local header is completed at the end */
    int dtype, rank;
    int64_t dims[PARE_MAX_RANK];
    size_t row_bytes;
    uint64_t rows;
    uint64_t data_start;     /* file offset of the member's (compressed) data */
    uint64_t hdr_off;        /* file offset of the npy header bytes */
    size_t hdr_len;
    uint32_t hdr_crc;
    uint32_t data_crc;       /* CRC-32 of the array bytes after the header */
    uint64_t data_len;
    z_stream zs;
    bool zinit;
    unsigned char buf[OUT_CHUNK];
};

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static bool name_taken(const pare_npz_writer *w, const char *zip_name)
{
    if (!w->hash_cap)
        return false;
    for (size_t k = name_hash(zip_name) & (w->hash_cap - 1);; k = (k + 1) & (w->hash_cap - 1)) {
        if (!w->hash[k])
            return false;
        if (strcmp(w->e[w->hash[k] - 1].zip_name, zip_name) == 0)
            return true;
    }
}

static void hash_put(size_t *tab, size_t cap, const char *name, size_t idx1)
{
    size_t k = name_hash(name) & (cap - 1);
    while (tab[k])
        k = (k + 1) & (cap - 1);
    tab[k] = idx1;
}

/* Makes room for one more entry and its name in the hash. */
static pare_status reserve_entry(pare_npz_writer *w, pare_error *err)
{
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 16;
        zentry *ne = realloc(w->e, nc * sizeof *ne);
        if (!ne)
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        w->e = ne;
        w->cap = nc;
    }
    if ((w->n + 1) * 2 > w->hash_cap) {
        size_t nc = w->hash_cap ? w->hash_cap * 2 : 64;
        size_t *nt = calloc(nc, sizeof *nt);
        if (!nt)
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < w->n; i++)
            hash_put(nt, nc, w->e[i].zip_name, i + 1);
        free(w->hash);
        w->hash = nt;
        w->hash_cap = nc;
    }
    return PARE_OK;
}

pare_status pare_npz_writer_open(const char *path, bool compress, pare_npz_writer **out,
                                 pare_error *err)
{
    if (!path || !out)
        return pare_error_set(err, PARE_ERR_ARG, "NULL argument");
    if (strcmp(path, "-") == 0)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED,
                              "-: an npz cannot be written to stdout (a zip needs seeking)");
    pare_npz_writer *w = calloc(1, sizeof *w);
    if (!w)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    pare_status st = out_file_open(&w->out, path, false, err);
    if (st) {
        free(w);
        return st;
    }
    w->compress = compress;
    *out = w;
    return PARE_OK;
}

static pare_status wfail(pare_npz_writer *w, pare_status st)
{
    w->failed = true;
    return st;
}

static pare_status put(pare_npz_writer *w, const void *p, size_t n, pare_error *err)
{
    pare_status st = out_file_write(&w->out, p, n, err);
    if (st)
        return wfail(w, st);
    w->pos += n;
    return PARE_OK;
}

/* Writes n bytes at file offset off, then returns to the end. */
static pare_status patch(pare_npz_writer *w, uint64_t off, const void *p, size_t n, pare_error *err)
{
    if (fseeko(w->out.f, (off_t)off, SEEK_SET) != 0 || fwrite(p, 1, n, w->out.f) != n ||
        fseeko(w->out.f, (off_t)w->pos, SEEK_SET) != 0)
        return wfail(w, pare_error_set(err, PARE_ERR_IO, "%s: write failed", w->out.path));
    return PARE_OK;
}

static pare_status usable(pare_npz_writer *w, bool want_open, pare_error *err)
{
    if (!w)
        return pare_error_set(err, PARE_ERR_ARG, "NULL writer");
    if (w->failed)
        return pare_error_set(err, PARE_ERR_IO, "%s: an earlier write failed", w->out.path);
    if (want_open && !w->open)
        return pare_error_set(err, PARE_ERR_ARG, "%s: no array is open", w->out.path);
    if (!want_open && w->open)
        return pare_error_set(err, PARE_ERR_ARG, "%s: array '%s' is still open", w->out.path,
                              w->e[w->n].zip_name);
    return PARE_OK;
}

/* The local header of e (name length nl) without its name: 30 bytes, then
 * the 20-byte zip64 extra field at lh + 30. */
static void local_header(const zentry *e, size_t nl, unsigned char *lh)
{
    wr32(lh, SIG_LOCAL);
    wr16(lh + 4, 45);
    wr16(lh + 6, e->flags);
    wr16(lh + 8, e->method);
    wr16(lh + 10, 0);
    wr16(lh + 12, DOS_DATE_1980);
    wr32(lh + 14, e->crc);
    wr32(lh + 18, 0xFFFFFFFFu);
    wr32(lh + 22, 0xFFFFFFFFu);
    wr16(lh + 26, (uint16_t)nl);
    wr16(lh + 28, 20);
    wr16(lh + 30, 1);
    wr16(lh + 32, 16);
    wr64(lh + 34, e->usize);
    wr64(lh + 42, e->csize);
}

/* Writes the local header and the npy header of a new member. known: the
 * array's bytes when they are all known now (a stored whole tensor), so
 * that the local header is right at once and need not be patched. */
static pare_status begin_member(pare_npz_writer *w, const char *name, int dtype, int rank,
                                const int64_t *dims, bool growing, const void *known,
                                size_t known_len, pare_error *err)
{
    pare_status st;
    size_t nl = name ? strlen(name) : 0;
    if (!nl || nl > 65535 - 4)
        return pare_error_set(err, PARE_ERR_ARG, "%s: bad member name", w->out.path);
    unsigned char *hdr;
    size_t hl;
    if ((st = npy_make_header(dtype, rank, dims, &hdr, &hl, err)))
        return pare_error_prefix(err, "%s: member '%s.npy'", w->out.path, name);
    if ((st = reserve_entry(w, err))) {
        free(hdr);
        return st;
    }
    char *zn = malloc(nl + 5);
    if (!zn) {
        free(hdr);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    memcpy(zn, name, nl);
    memcpy(zn + nl, ".npy", 5);
    if (name_taken(w, zn)) {
        free(hdr);
        pare_error_set(err, PARE_ERR_ARG, "%s: member '%s' written twice", w->out.path, zn);
        free(zn);
        return PARE_ERR_ARG;
    }
    zentry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    e->zip_name = zn;
    e->method = w->compress ? 8 : 0;
    for (size_t i = 0; i < nl; i++)
        if ((unsigned char)name[i] >= 0x80)
            e->flags = 1u << 11; /* the name is UTF-8 */
    e->off = w->pos;
    w->patched = !(known && !w->compress);
    if (!w->patched) {
        e->crc = (uint32_t)crc32_combine(crc32_z(0, hdr, hl), crc32_z(0, known, known_len),
                                         (z_off_t)known_len);
        e->usize = e->csize = hl + known_len;
    }

    unsigned char lh[30 + 20];
    local_header(e, nl + 4, lh);
    w->open = true; /* from here on, a failure leaves the file unusable */
    if ((st = put(w, lh, 30, err)) || (st = put(w, zn, nl + 4, err)) ||
        (st = put(w, lh + 30, 20, err))) {
        free(hdr);
        return st;
    }
    w->data_start = w->pos;
    if (w->compress) {
        unsigned char sb[5] = {0, (unsigned char)hl, (unsigned char)(hl >> 8),
                               (unsigned char)~hl, (unsigned char)(~hl >> 8)};
        /* npy_make_header stays far below a stored block's 65535 bytes. */
        if ((st = put(w, sb, 5, err))) {
            free(hdr);
            return st;
        }
        memset(&w->zs, 0, sizeof w->zs);
        if (deflateInit2(&w->zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK) {
            free(hdr);
            return wfail(w, pare_error_set(err, PARE_ERR_NOMEM, "cannot start deflate"));
        }
        w->zinit = true;
    }
    w->hdr_off = w->pos;
    w->hdr_len = hl;
    w->hdr_crc = (uint32_t)crc32_z(0, hdr, hl);
    st = put(w, hdr, hl, err);
    free(hdr);
    if (st)
        return st;
    w->growing = growing;
    w->dtype = dtype;
    w->rank = rank;
    if (rank)
        memcpy(w->dims, dims, (size_t)rank * sizeof *dims);
    w->rows = 0;
    w->data_crc = 0;
    w->data_len = 0;
    return PARE_OK;
}

static pare_status deflate_out(pare_npz_writer *w, int flush, pare_error *err)
{
    for (;;) {
        w->zs.next_out = w->buf;
        w->zs.avail_out = OUT_CHUNK;
        int r = deflate(&w->zs, flush);
        if (r == Z_STREAM_ERROR)
            return wfail(w, pare_error_set(err, PARE_ERR_RUNTIME, "deflate failed"));
        size_t got = OUT_CHUNK - w->zs.avail_out;
        pare_status st = put(w, w->buf, got, err);
        if (st)
            return st;
        if (flush == Z_FINISH ? r == Z_STREAM_END : (w->zs.avail_in == 0 && w->zs.avail_out != 0))
            return PARE_OK;
    }
}

static pare_status write_data(pare_npz_writer *w, const void *data, size_t n, pare_error *err)
{
    if (!n)
        return PARE_OK;
    w->data_crc = (uint32_t)crc32_z(w->data_crc, data, n);
    w->data_len += n;
    if (!w->compress)
        return put(w, data, n, err);
    const unsigned char *p = data;
    while (n) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        w->zs.next_in = (Bytef *)(uintptr_t)p;
        w->zs.avail_in = k;
        pare_status st = deflate_out(w, Z_NO_FLUSH, err);
        if (st)
            return st;
        p += k;
        n -= k;
    }
    return PARE_OK;
}

static pare_status end_member(pare_npz_writer *w, pare_error *err)
{
    pare_status st;
    zentry *e = &w->e[w->n];
    if (w->compress) {
        w->zs.next_in = NULL;
        w->zs.avail_in = 0;
        st = deflate_out(w, Z_FINISH, err);
        deflateEnd(&w->zs);
        w->zinit = false;
        if (st)
            return st;
    }
    if (w->growing) {
        unsigned char *hdr;
        size_t hl;
        w->dims[0] = (int64_t)w->rows;
        if ((st = npy_make_header(w->dtype, w->rank, w->dims, &hdr, &hl, err)))
            return wfail(w, st);
        if (hl != w->hdr_len) {
            free(hdr);
            return wfail(w, pare_error_set(err, PARE_ERR_RUNTIME, "internal: header length changed"));
        }
        w->hdr_crc = (uint32_t)crc32_z(0, hdr, hl);
        st = patch(w, w->hdr_off, hdr, hl, err);
        free(hdr);
        if (st)
            return st;
    }
    e->crc = (uint32_t)crc32_combine(w->hdr_crc, w->data_crc, (z_off_t)w->data_len);
    e->usize = w->hdr_len + w->data_len;
    e->csize = w->pos - w->data_start;
    if (w->patched) {
        unsigned char lh[30 + 20];
        size_t nl = strlen(e->zip_name);
        local_header(e, nl, lh);
        if ((st = patch(w, e->off + 14, lh + 14, 16, err)) ||
            (st = patch(w, e->off + 30 + nl, lh + 30, 20, err)))
            return st;
    }
    w->n++;
    w->open = false;
    hash_put(w->hash, w->hash_cap, e->zip_name, w->n);
    return PARE_OK;
}

pare_status pare_npz_writer_add(pare_npz_writer *w, const char *name, const pare_tensor *t,
                                pare_error *err)
{
    pare_status st = usable(w, false, err);
    if (st)
        return st;
    if (!t || (t->nbytes && !t->data))
        return pare_error_set(err, PARE_ERR_ARG, "%s: tensor has no data", w->out.path);
    if (pare_npy_descr(t->dtype) && (st = npy_check_size(t, err)))
        return pare_error_prefix(err, "%s: member '%s.npy'", w->out.path, name ? name : "");
    if ((st = begin_member(w, name, t->dtype, t->rank, t->dims, false, t->data, t->nbytes, err)))
        return st;
    if ((st = write_data(w, t->data, t->nbytes, err)))
        return st;
    return end_member(w, err);
}

pare_status pare_npz_writer_begin_array(pare_npz_writer *w, const char *name, int dtype,
                                        int inner_rank, const int64_t *inner_dims,
                                        pare_error *err)
{
    pare_status st = usable(w, false, err);
    if (st)
        return st;
    if (inner_rank < 0 || inner_rank >= PARE_MAX_RANK || (inner_rank && !inner_dims))
        return pare_error_set(err, PARE_ERR_ARG, "%s: bad inner rank %d", w->out.path, inner_rank);
    uint64_t n;
    if ((st = pare_shape_numel(inner_rank, inner_dims, &n, err)))
        return pare_error_prefix(err, "%s: array '%s'", w->out.path, name ? name : "");
    size_t rb = pare_dtype_nbytes(dtype, n);
    if (rb == SIZE_MAX && pare_npy_descr(dtype))
        return pare_error_set(err, PARE_ERR_LIMIT, "%s: rows of array '%s' are too large",
                              w->out.path, name ? name : "");
    int64_t dims[PARE_MAX_RANK];
    dims[0] = 0;
    if (inner_rank)
        memcpy(dims + 1, inner_dims, (size_t)inner_rank * sizeof *dims);
    if ((st = begin_member(w, name, dtype, inner_rank + 1, dims, true, NULL, 0, err)))
        return st;
    w->row_bytes = rb;
    return PARE_OK;
}

pare_status pare_npz_writer_append(pare_npz_writer *w, const void *rows, uint64_t nrows,
                                   pare_error *err)
{
    pare_status st = usable(w, true, err);
    if (st)
        return st;
    if (!w->growing)
        return pare_error_set(err, PARE_ERR_ARG, "%s: no array is open", w->out.path);
    if (nrows > (uint64_t)INT64_MAX - w->rows ||
        (w->row_bytes && nrows > SIZE_MAX / w->row_bytes))
        return pare_error_set(err, PARE_ERR_LIMIT, "%s: array '%s' grows too large", w->out.path,
                              w->e[w->n].zip_name);
    size_t bytes = (size_t)nrows * w->row_bytes;
    if (bytes && !rows)
        return pare_error_set(err, PARE_ERR_ARG, "%s: NULL rows", w->out.path);
    if ((st = write_data(w, rows, bytes, err)))
        return st;
    w->rows += nrows;
    return PARE_OK;
}

pare_status pare_npz_writer_append_tensor(pare_npz_writer *w, const pare_tensor *t,
                                          pare_error *err)
{
    pare_status st = usable(w, true, err);
    if (st)
        return st;
    if (!t)
        return pare_error_set(err, PARE_ERR_ARG, "NULL tensor");
    bool same = t->dtype == w->dtype && t->rank == w->rank;
    for (int i = 1; same && i < t->rank; i++)
        same = t->dims[i] == w->dims[i];
    if (!same) {
        char a[256], b[256];
        int64_t d[PARE_MAX_RANK];
        memcpy(d, w->dims, sizeof d);
        d[0] = -1;
        pare_dims_str(t->rank, t->dims, a, sizeof a);
        pare_dims_str(w->rank, d, b, sizeof b);
        return pare_error_set(err, PARE_ERR_ARG,
                              "%s: array '%s': cannot append %s %s to %s rows of shape %s",
                              w->out.path, w->e[w->n].zip_name, pare_dtype_name(t->dtype), a,
                              pare_dtype_name(w->dtype), b);
    }
    return pare_npz_writer_append(w, t->data, (uint64_t)t->dims[0], err);
}

pare_status pare_npz_writer_end_array(pare_npz_writer *w, pare_error *err)
{
    pare_status st = usable(w, true, err);
    if (st)
        return st;
    return end_member(w, err);
}

static void writer_free(pare_npz_writer *w)
{
    if (w->zinit)
        deflateEnd(&w->zs);
    for (size_t i = 0; i < w->n + (w->open ? 1 : 0); i++)
        free(w->e[i].zip_name);
    free(w->e);
    free(w->hash);
    free(w);
}

void pare_npz_writer_abort(pare_npz_writer *w)
{
    if (!w)
        return;
    out_file_abort(&w->out);
    writer_free(w);
}

static pare_status write_directory(pare_npz_writer *w, pare_error *err)
{
    pare_status st;
    uint64_t cd_off = w->pos;
    for (size_t i = 0; i < w->n; i++) {
        const zentry *e = &w->e[i];
        bool u = e->usize >= 0xFFFFFFFFu, c = e->csize >= 0xFFFFFFFFu, o = e->off >= 0xFFFFFFFFu;
        size_t nl = strlen(e->zip_name);
        size_t xl = (u || c || o) ? 4 + 8 * (size_t)(u + c + o) : 0;
        unsigned char h[46 + 28];
        wr32(h, SIG_CENTRAL);
        wr16(h + 4, VERSION_MADE_BY);
        wr16(h + 6, xl ? 45 : 20);
        wr16(h + 8, e->flags);
        wr16(h + 10, e->method);
        wr16(h + 12, 0);
        wr16(h + 14, DOS_DATE_1980);
        wr32(h + 16, e->crc);
        wr32(h + 20, c ? 0xFFFFFFFFu : (uint32_t)e->csize);
        wr32(h + 24, u ? 0xFFFFFFFFu : (uint32_t)e->usize);
        wr16(h + 28, (uint16_t)nl);
        wr16(h + 30, (uint16_t)xl);
        wr16(h + 32, 0);
        wr16(h + 34, 0);
        wr16(h + 36, 0);
        wr32(h + 38, EXT_ATTR);
        wr32(h + 42, o ? 0xFFFFFFFFu : (uint32_t)e->off);
        unsigned char *x = h + 46;
        if (xl) {
            wr16(x, 1);
            wr16(x + 2, (uint16_t)(xl - 4));
            x += 4;
            if (u) {
                wr64(x, e->usize);
                x += 8;
            }
            if (c) {
                wr64(x, e->csize);
                x += 8;
            }
            if (o)
                wr64(x, e->off);
        }
        if ((st = put(w, h, 46, err)) || (st = put(w, e->zip_name, nl, err)) ||
            (st = put(w, h + 46, xl, err)))
            return st;
    }
    uint64_t cd_size = w->pos - cd_off;
    bool z64 = w->n >= 0xFFFF || cd_size >= 0xFFFFFFFFu || cd_off >= 0xFFFFFFFFu;
    if (z64) {
        unsigned char r[56 + 20];
        uint64_t off64 = w->pos;
        wr32(r, SIG_EOCD64);
        wr64(r + 4, 44);
        wr16(r + 12, VERSION_MADE_BY);
        wr16(r + 14, 45);
        wr32(r + 16, 0);
        wr32(r + 20, 0);
        wr64(r + 24, w->n);
        wr64(r + 32, w->n);
        wr64(r + 40, cd_size);
        wr64(r + 48, cd_off);
        wr32(r + 56, SIG_LOCATOR64);
        wr32(r + 60, 0);
        wr64(r + 64, off64);
        wr32(r + 72, 1);
        if ((st = put(w, r, sizeof r, err)))
            return st;
    }
    unsigned char eo[22];
    wr32(eo, SIG_EOCD);
    wr16(eo + 4, 0);
    wr16(eo + 6, 0);
    wr16(eo + 8, w->n >= 0xFFFF ? 0xFFFF : (uint16_t)w->n);
    wr16(eo + 10, w->n >= 0xFFFF ? 0xFFFF : (uint16_t)w->n);
    wr32(eo + 12, cd_size >= 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)cd_size);
    wr32(eo + 16, cd_off >= 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)cd_off);
    wr16(eo + 20, 0);
    return put(w, eo, sizeof eo, err);
}

pare_status pare_npz_writer_close(pare_npz_writer *w, pare_error *err)
{
    pare_status st = usable(w, false, err);
    if (!w)
        return st;
    if (!st)
        st = write_directory(w, err);
    if (!st)
        st = out_file_commit(&w->out, err);
    else
        out_file_abort(&w->out);
    writer_free(w);
    return st;
}
