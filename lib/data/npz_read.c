/* .npz reading: a zip archive of .npy members, read from the file with
 * pread; only the central directory is held in memory. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "data_internal.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u
#define EOCD_LEN 22
#define CENTRAL_LEN 46
#define LOCAL_LEN 30
#define MAX_CD_BYTES ((uint64_t)1 << 30)
/* Deflate cannot expand data by more than 1032:1. */
#define MAX_INFLATE_RATIO 1032
#define IN_CHUNK (1 << 16)
#define STORED_SKIP_READ (1 << 20)

typedef struct npz_cursor {
    uint64_t upos;      /* uncompressed bytes delivered */
    uint64_t cpos;      /* compressed bytes fed to inflate */
    z_stream zs;
    bool zinit, zend;
    uint32_t crc;
    bool crc_valid;     /* crc covers bytes [0, upos) */
    uint64_t used;      /* z->tick when last used */
    bool broken;        /* a read failed midway: start again before the next */
    unsigned char in[IN_CHUNK];
} npz_cursor;

typedef struct npz_member {
    char *name;         /* listed name: zip name less ".npy" */
    char *zip_name;
    uint16_t flags, method;
    uint32_t crc;
    uint64_t csize, usize, local_off;
    uint64_t data_off;
    bool data_off_known;
    pare_npy_info *info; /* the npy header, once read */
    npz_cursor *cur;     /* position in the member's data, while kept */
} npz_member;

/* Cursors kept at once (each holds an inflate state and a 64 KiB buffer);
 * the least recently used goes first. */
#define MAX_CURSORS 8

struct pare_npz {
    char *path;
    int fd;
    uint64_t size;
    uint64_t cd_off;    /* members lie before this */
    npz_member *m;
    size_t n;
    size_t cap;         /* entries allocated in m */
    npz_member **order; /* members sorted by name */
    size_t n_cursors;
    uint64_t tick;
    pare_tensor *fcache; /* last whole read of a fortran-order member (for row reads) */
    size_t fcache_i;
};

/* ---- open ---- */

static int cmp_member_name(const void *a, const void *b)
{
    return strcmp((*(npz_member *const *)a)->name, (*(npz_member *const *)b)->name);
}

/* Reads the zip64 extra field of a central entry: fields are present only
 * for the 32-bit values that are 0xFFFFFFFF, in this order. */
static pare_status parse_zip64_extra(const unsigned char *ex, size_t exlen, npz_member *mb,
                                     bool need_u, bool need_c, bool need_o, pare_error *err)
{
    size_t p = 0;
    while (p + 4 <= exlen) {
        uint16_t id = rd16(ex + p), sz = rd16(ex + p + 2);
        if (sz > exlen - p - 4)
            return pare_error_set(err, PARE_ERR_FORMAT, "extra field overruns its entry");
        if (id == 1) {
            const unsigned char *q = ex + p + 4;
            size_t left = sz;
            if (need_u) {
                if (left < 8)
                    goto short64;
                mb->usize = rd64(q);
                q += 8;
                left -= 8;
            }
            if (need_c) {
                if (left < 8)
                    goto short64;
                mb->csize = rd64(q);
                q += 8;
                left -= 8;
            }
            if (need_o) {
                if (left < 8)
                    goto short64;
                mb->local_off = rd64(q);
            }
            return PARE_OK;
        }
        p += 4 + (size_t)sz;
    }
    if (need_u || need_c || need_o)
        return pare_error_set(err, PARE_ERR_FORMAT, "zip64 sizes missing");
    return PARE_OK;
short64:
    return pare_error_set(err, PARE_ERR_FORMAT, "zip64 extra field too short");
}

static pare_status parse_central(pare_npz *z, const unsigned char *cd, uint64_t cd_size,
                                 uint64_t count, pare_error *err)
{
    uint64_t p = 0;
    z->m = calloc(count ? (size_t)count : 1, sizeof *z->m);
    if (!z->m)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    z->cap = count ? (size_t)count : 1;
    for (uint64_t k = 0; k < count; k++) {
        npz_member *mb = &z->m[z->n];
        if (cd_size - p < CENTRAL_LEN || rd32(cd + p) != SIG_CENTRAL)
            return pare_error_set(err, PARE_ERR_FORMAT, "central directory entry %llu is bad",
                                  (unsigned long long)k);
        const unsigned char *e = cd + p;
        uint16_t nlen = rd16(e + 28), xlen = rd16(e + 30), clen = rd16(e + 32);
        if ((uint64_t)CENTRAL_LEN + nlen + xlen + clen > cd_size - p)
            return pare_error_set(err, PARE_ERR_FORMAT,
                                  "central directory entry %llu overruns the directory",
                                  (unsigned long long)k);
        mb->flags = rd16(e + 8);
        mb->method = rd16(e + 10);
        mb->crc = rd32(e + 16);
        mb->csize = rd32(e + 20);
        mb->usize = rd32(e + 24);
        mb->local_off = rd32(e + 42);
        if (rd16(e + 34) != 0 && rd16(e + 34) != 0xFFFF)
            return pare_error_set(err, PARE_ERR_UNSUPPORTED, "multi-disk archives are not supported");
        const char *nm = (const char *)e + CENTRAL_LEN;
        if (nlen == 0 || memchr(nm, '\0', nlen))
            return pare_error_set(err, PARE_ERR_FORMAT, "central directory entry %llu has a bad name",
                                  (unsigned long long)k);
        pare_status st = parse_zip64_extra(e + CENTRAL_LEN + nlen, xlen, mb,
                                           mb->usize == 0xFFFFFFFFu, mb->csize == 0xFFFFFFFFu,
                                           mb->local_off == 0xFFFFFFFFu, err);
        if (st)
            return pare_error_prefix(err, "member '%.*s'", (int)nlen, nm);
        p += (uint64_t)CENTRAL_LEN + nlen + xlen + clen;
        if (nm[nlen - 1] == '/') /* a folder entry: nothing to read */
            continue;
        if (!(mb->zip_name = strndup(nm, nlen)))
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        size_t shown = nlen;
        if (nlen > 4 && memcmp(nm + nlen - 4, ".npy", 4) == 0)
            shown -= 4;
        if (!(mb->name = strndup(nm, shown)))
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        if (mb->local_off > z->cd_off || z->cd_off - mb->local_off < LOCAL_LEN ||
            mb->csize > z->cd_off - mb->local_off - LOCAL_LEN)
            return pare_error_set(err, PARE_ERR_FORMAT,
                                  "member '%s': data lies outside the archive", mb->zip_name);
        z->n++;
    }
    z->order = malloc((z->n ? z->n : 1) * sizeof *z->order);
    if (!z->order)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < z->n; i++)
        z->order[i] = &z->m[i];
    qsort(z->order, z->n, sizeof *z->order, cmp_member_name);
    for (size_t i = 1; i < z->n; i++)
        if (strcmp(z->order[i - 1]->name, z->order[i]->name) == 0)
            return pare_error_set(err, PARE_ERR_FORMAT, "two members are named '%s'",
                                  z->order[i]->name);
    return PARE_OK;
}

static pare_status read_directory(pare_npz *z, pare_error *err)
{
    unsigned char *tail;
    size_t tail_len = z->size < 65535 + EOCD_LEN ? (size_t)z->size : 65535 + EOCD_LEN;
    uint64_t tail_off = z->size - tail_len;
    pare_status st;

    if (z->size < EOCD_LEN)
        return pare_error_set(err, PARE_ERR_FORMAT, "not a zip archive (%llu bytes)",
                              (unsigned long long)z->size);
    if (!(tail = malloc(tail_len)))
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    if ((st = pread_full(z->fd, tail, tail_len, tail_off, err))) {
        free(tail);
        return st;
    }
    size_t e = SIZE_MAX;
    for (size_t p = tail_len - EOCD_LEN + 1; p-- > 0;) {
        if (rd32(tail + p) == SIG_EOCD && p + EOCD_LEN + rd16(tail + p + 20) <= tail_len) {
            e = p;
            break;
        }
    }
    if (e == SIZE_MAX) {
        free(tail);
        return pare_error_set(err, PARE_ERR_FORMAT, "not a zip archive (no end of central directory)");
    }
    const unsigned char *eo = tail + e;
    uint64_t eocd_off = tail_off + e;
    uint64_t disk = rd16(eo + 4), cd_disk = rd16(eo + 6);
    uint64_t n_disk = rd16(eo + 8), n_total = rd16(eo + 10);
    uint64_t cd_size = rd32(eo + 12), cd_off = rd32(eo + 16);
    uint64_t limit = eocd_off;
    free(tail);

    unsigned char loc[20];
    bool z64 = false;
    if (eocd_off >= 20) {
        if ((st = pread_full(z->fd, loc, 20, eocd_off - 20, err)))
            return st;
        z64 = rd32(loc) == SIG_LOCATOR64;
    }
    if (z64) {
        uint64_t off64 = rd64(loc + 8);
        if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1)
            return pare_error_set(err, PARE_ERR_UNSUPPORTED, "multi-disk archives are not supported");
        if (off64 > eocd_off - 20 || eocd_off - 20 - off64 < 56)
            return pare_error_set(err, PARE_ERR_FORMAT, "zip64 end record lies outside the archive");
        unsigned char r[56];
        if ((st = pread_full(z->fd, r, 56, off64, err)))
            return st;
        if (rd32(r) != SIG_EOCD64)
            return pare_error_set(err, PARE_ERR_FORMAT, "bad zip64 end of central directory");
        disk = rd32(r + 16);
        cd_disk = rd32(r + 20);
        n_disk = rd64(r + 24);
        n_total = rd64(r + 32);
        cd_size = rd64(r + 40);
        cd_off = rd64(r + 48);
        limit = off64;
    } else if (n_total == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_off == 0xFFFFFFFFu) {
        return pare_error_set(err, PARE_ERR_FORMAT, "zip64 values without a zip64 locator");
    }
    if (disk != 0 || cd_disk != 0 || n_disk != n_total)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "multi-disk archives are not supported");
    if (cd_size > limit || cd_off > limit - cd_size)
        return pare_error_set(err, PARE_ERR_FORMAT, "central directory lies outside the archive");
    if (cd_size > MAX_CD_BYTES)
        return pare_error_set(err, PARE_ERR_LIMIT, "central directory of %llu bytes is too large",
                              (unsigned long long)cd_size);
    if (n_total > cd_size / CENTRAL_LEN)
        return pare_error_set(err, PARE_ERR_FORMAT, "%llu entries cannot fit a %llu-byte directory",
                              (unsigned long long)n_total, (unsigned long long)cd_size);
    z->cd_off = cd_off;
    unsigned char *cd = malloc(cd_size ? (size_t)cd_size : 1);
    if (!cd)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    if (!(st = pread_full(z->fd, cd, (size_t)cd_size, cd_off, err)))
        st = parse_central(z, cd, cd_size, n_total, err);
    free(cd);
    return st;
}

pare_status pare_npz_open(const char *path, pare_npz **out, pare_error *err)
{
    if (!path || !out)
        return pare_error_set(err, PARE_ERR_ARG, "NULL argument");
    if (strcmp(path, "-") == 0)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "-: reading an npz from stdin is not supported");
    pare_npz *z = calloc(1, sizeof *z);
    if (!z)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    z->fd = -1;
    if (!(z->path = strdup(path))) {
        free(z);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    z->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    pare_status st = PARE_OK;
    if (z->fd < 0 || fstat(z->fd, &sb) != 0)
        st = pare_error_set(err, PARE_ERR_IO, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(sb.st_mode))
        st = pare_error_set(err, PARE_ERR_IO, "%s: not a regular file", path);
    if (!st) {
        z->size = (uint64_t)sb.st_size;
        if ((st = read_directory(z, err)))
            pare_error_prefix(err, "%s", path);
    }
    if (st) {
        pare_npz_close(z);
        return st;
    }
    *out = z;
    return PARE_OK;
}

void pare_npz_close(pare_npz *z)
{
    if (!z)
        return;
    for (size_t i = 0; z->m && i < z->cap; i++) {
        npz_member *mb = &z->m[i];
        free(mb->name);
        free(mb->zip_name);
        free(mb->info);
        if (mb->cur) {
            if (mb->cur->zinit)
                inflateEnd(&mb->cur->zs);
            free(mb->cur);
        }
    }
    pare_tensor_free(z->fcache);
    free(z->m);
    free(z->order);
    if (z->fd >= 0)
        close(z->fd);
    free(z->path);
    free(z);
}

size_t pare_npz_count(const pare_npz *z)
{
    return z ? z->n : 0;
}

const char *pare_npz_name(const pare_npz *z, size_t i)
{
    return z && i < z->n ? z->m[i].name : NULL;
}

static int64_t find_exact(const pare_npz *z, const char *name)
{
    size_t lo = 0, hi = z->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(z->order[mid]->name, name);
        if (c == 0)
            return (int64_t)(z->order[mid] - z->m);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int64_t pare_npz_find(const pare_npz *z, const char *name)
{
    if (!z || !name)
        return -1;
    int64_t i = find_exact(z, name);
    size_t len = strlen(name);
    if (i < 0 && len > 4 && strcmp(name + len - 4, ".npy") == 0) {
        char *s = strndup(name, len - 4);
        if (!s)
            return -1;
        i = find_exact(z, s);
        free(s);
    }
    return i;
}

/* ---- member cursors ---- */

/* Checks the local header and finds where member data starts. */
static pare_status resolve_data(pare_npz *z, npz_member *mb, pare_error *err)
{
    unsigned char h[LOCAL_LEN];
    pare_status st;
    if (mb->data_off_known)
        return PARE_OK;
    if (mb->flags & 1)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "encrypted members are not supported");
    if (mb->method != 0 && mb->method != 8)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "compression method %u is not supported",
                              mb->method);
    if (mb->method == 0 && mb->csize != mb->usize)
        return pare_error_set(err, PARE_ERR_FORMAT, "stored member with sizes %llu and %llu",
                              (unsigned long long)mb->csize, (unsigned long long)mb->usize);
    if (mb->method == 8 && mb->usize / MAX_INFLATE_RATIO > mb->csize + 64)
        return pare_error_set(err, PARE_ERR_FORMAT,
                              "declared size %llu is impossible for %llu deflated bytes",
                              (unsigned long long)mb->usize, (unsigned long long)mb->csize);
    if ((st = pread_full(z->fd, h, LOCAL_LEN, mb->local_off, err)))
        return st;
    if (rd32(h) != SIG_LOCAL)
        return pare_error_set(err, PARE_ERR_FORMAT, "bad local header");
    uint64_t nlen = rd16(h + 26), xlen = rd16(h + 28);
    size_t zl = strlen(mb->zip_name);
    if (nlen != zl)
        return pare_error_set(err, PARE_ERR_FORMAT, "local header names another file");
    uint64_t start = mb->local_off + LOCAL_LEN + nlen + xlen;
    if (start > z->cd_off || mb->csize > z->cd_off - start)
        return pare_error_set(err, PARE_ERR_FORMAT, "data runs into the central directory");
    char *nm = malloc(zl + 1);
    if (!nm)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    st = pread_full(z->fd, nm, zl, mb->local_off + LOCAL_LEN, err);
    if (!st && memcmp(nm, mb->zip_name, zl) != 0)
        st = pare_error_set(err, PARE_ERR_FORMAT, "local header names another file");
    free(nm);
    if (st)
        return st;
    mb->data_off = start;
    mb->data_off_known = true;
    return PARE_OK;
}

static void cursor_reset(npz_member *mb)
{
    npz_cursor *c = mb->cur;
    c->upos = c->cpos = 0;
    c->crc = 0;
    c->crc_valid = true;
    c->zend = false;
    c->broken = false;
    if (c->zinit) {
        inflateReset(&c->zs);
        c->zs.next_in = NULL;
        c->zs.avail_in = 0;
    }
}

static void drop_cursor(pare_npz *z, npz_member *mb)
{
    if (!mb->cur)
        return;
    if (mb->cur->zinit)
        inflateEnd(&mb->cur->zs);
    free(mb->cur);
    mb->cur = NULL;
    z->n_cursors--;
}

static pare_status get_cursor(pare_npz *z, npz_member *mb, pare_error *err)
{
    pare_status st = resolve_data(z, mb, err);
    if (st)
        return st;
    if (mb->cur) {
        mb->cur->used = ++z->tick;
        if (mb->cur->broken)
            cursor_reset(mb);
        return PARE_OK;
    }
    if (z->n_cursors >= MAX_CURSORS) {
        npz_member *old = NULL;
        for (size_t i = 0; i < z->n; i++)
            if (z->m[i].cur && (!old || z->m[i].cur->used < old->cur->used))
                old = &z->m[i];
        drop_cursor(z, old);
    }
    npz_cursor *c = calloc(1, sizeof *c);
    if (!c)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    if (mb->method == 8) {
        if (inflateInit2(&c->zs, -MAX_WBITS) != Z_OK) {
            free(c);
            return pare_error_set(err, PARE_ERR_NOMEM, "cannot start inflate");
        }
        c->zinit = true;
    }
    mb->cur = c;
    z->n_cursors++;
    c->used = ++z->tick;
    cursor_reset(mb);
    return PARE_OK;
}

/* After the last byte: the deflate stream must end there, and the CRC match. */
static pare_status cursor_finish(pare_npz *z, npz_member *mb, pare_error *err)
{
    npz_cursor *c = mb->cur;
    if (c->zinit && !c->zend) {
        unsigned char one;
        for (;;) {
            if (c->zs.avail_in == 0 && c->cpos < mb->csize) {
                size_t k = mb->csize - c->cpos < IN_CHUNK ? (size_t)(mb->csize - c->cpos) : IN_CHUNK;
                pare_status st = pread_full(z->fd, c->in, k, mb->data_off + c->cpos, err);
                if (st)
                    return st;
                c->cpos += k;
                c->zs.next_in = c->in;
                c->zs.avail_in = (uInt)k;
            }
            c->zs.next_out = &one;
            c->zs.avail_out = 1;
            int r = inflate(&c->zs, Z_NO_FLUSH);
            if (r == Z_STREAM_END && c->zs.avail_out == 1) {
                c->zend = true;
                break;
            }
            if (c->zs.avail_out == 0)
                return pare_error_set(err, PARE_ERR_FORMAT, "more data than the declared %llu bytes",
                                      (unsigned long long)mb->usize);
            if (r == Z_BUF_ERROR && c->zs.avail_in == 0 && c->cpos == mb->csize)
                return pare_error_set(err, PARE_ERR_FORMAT, "deflate stream is truncated");
            if (r != Z_OK && r != Z_BUF_ERROR)
                return pare_error_set(err, PARE_ERR_FORMAT, "corrupt deflate data (%s)",
                                      c->zs.msg ? c->zs.msg : "error");
        }
    }
    if (c->crc_valid && c->crc != mb->crc)
        return pare_error_set(err, PARE_ERR_FORMAT, "CRC-32 mismatch (directory %08x, data %08x)",
                              (unsigned)mb->crc, (unsigned)c->crc);
    return PARE_OK;
}

static pare_status cursor_read_raw(pare_npz *z, npz_member *mb, void *dst, size_t n,
                                   pare_error *err)
{
    npz_cursor *c = mb->cur;
    pare_status st;
    if (n > mb->usize - c->upos)
        return pare_error_set(err, PARE_ERR_FORMAT, "truncated at byte %llu",
                              (unsigned long long)mb->usize);
    if (!c->zinit) {
        if ((st = pread_full(z->fd, dst, n, mb->data_off + c->upos, err)))
            return st;
    } else {
        unsigned char *out = dst;
        size_t left = n;
        while (left) {
            if (c->zend)
                return pare_error_set(err, PARE_ERR_FORMAT,
                                      "deflate stream ends at byte %llu of %llu",
                                      (unsigned long long)(c->upos + (n - left)),
                                      (unsigned long long)mb->usize);
            if (c->zs.avail_in == 0 && c->cpos < mb->csize) {
                size_t k = mb->csize - c->cpos < IN_CHUNK ? (size_t)(mb->csize - c->cpos) : IN_CHUNK;
                if ((st = pread_full(z->fd, c->in, k, mb->data_off + c->cpos, err)))
                    return st;
                c->cpos += k;
                c->zs.next_in = c->in;
                c->zs.avail_in = (uInt)k;
            }
            uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
            c->zs.next_out = out;
            c->zs.avail_out = chunk;
            int r = inflate(&c->zs, Z_NO_FLUSH);
            size_t got = chunk - c->zs.avail_out;
            out += got;
            left -= got;
            if (r == Z_STREAM_END) {
                c->zend = true;
                continue;
            }
            if (r == Z_BUF_ERROR && c->zs.avail_in == 0 && c->cpos == mb->csize)
                return pare_error_set(err, PARE_ERR_FORMAT, "deflate stream is truncated");
            if (r != Z_OK && r != Z_BUF_ERROR)
                return pare_error_set(err, PARE_ERR_FORMAT, "corrupt deflate data (%s)",
                                      c->zs.msg ? c->zs.msg : "error");
        }
    }
    if (c->crc_valid)
        c->crc = (uint32_t)crc32_z(c->crc, dst, n);
    c->upos += n;
    if (c->upos == mb->usize)
        return cursor_finish(z, mb, err);
    return PARE_OK;
}

static pare_status cursor_read(pare_npz *z, npz_member *mb, void *dst, size_t n, pare_error *err)
{
    pare_status st = cursor_read_raw(z, mb, dst, n, err);
    if (st)
        mb->cur->broken = true;
    return st;
}

/* Moves the cursor to uncompressed offset off. */
static pare_status cursor_seek(pare_npz *z, npz_member *mb, uint64_t off, pare_error *err)
{
    npz_cursor *c = mb->cur;
    if (off == 0) {
        cursor_reset(mb);
        return PARE_OK;
    }
    if (off == c->upos)
        return PARE_OK;
    if (off > mb->usize)
        return pare_error_set(err, PARE_ERR_FORMAT, "truncated at byte %llu",
                              (unsigned long long)mb->usize);
    if (off < c->upos)
        cursor_reset(mb);
    /* Stored data is skipped by reading it when the gap is small (a header,
     * a few rows), which keeps the CRC of a forward pass. */
    if (!c->zinit && off - c->upos > STORED_SKIP_READ) {
        c->crc_valid = false;
        c->upos = off;
        return PARE_OK;
    }
    unsigned char scratch[4096];
    while (c->upos < off) {
        size_t k = off - c->upos < sizeof scratch ? (size_t)(off - c->upos) : sizeof scratch;
        pare_status st = cursor_read(z, mb, scratch, k, err);
        if (st)
            return st;
    }
    return PARE_OK;
}

typedef struct member_src {
    data_src base;
    pare_npz *z;
    npz_member *mb;
} member_src;

static pare_status member_read(data_src *s, void *dst, size_t n, pare_error *err)
{
    member_src *ms = (member_src *)s;
    pare_status st = cursor_read(ms->z, ms->mb, dst, n, err);
    s->pos = ms->mb->cur->upos;
    return st;
}

/* Header of member mb, cached in its cursor. When parsed (from_start, or
 * the first time) the cursor is left after it; else the caller seeks. */
static pare_status member_header(pare_npz *z, npz_member *mb, member_src *src, bool from_start,
                                 pare_error *err)
{
    pare_status st;
    if ((st = get_cursor(z, mb, err)))
        return st;
    src->base.read = member_read;
    src->base.size = mb->usize;
    src->z = z;
    src->mb = mb;
    if (mb->info && !from_start)
        return PARE_OK;
    cursor_reset(mb);
    src->base.pos = 0;
    if (!mb->info && !(mb->info = malloc(sizeof *mb->info)))
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    if ((st = npy_read_header(&src->base, mb->info, true, err))) {
        free(mb->info);
        mb->info = NULL;
        return st;
    }
    return PARE_OK;
}

static pare_status member_err(pare_npz *z, size_t i, pare_error *err)
{
    return pare_error_prefix(err, "%s: member '%s'", z->path, z->m[i].zip_name);
}

pare_status pare_npz_info(pare_npz *z, size_t i, pare_npy_info *info, pare_error *err)
{
    member_src src;
    if (!z || !info || i >= z->n)
        return pare_error_set(err, PARE_ERR_ARG, "bad npz member index");
    if (member_header(z, &z->m[i], &src, false, err))
        return member_err(z, i, err);
    *info = *z->m[i].info;
    return PARE_OK;
}

pare_status pare_npz_read(pare_npz *z, size_t i, pare_tensor **out, pare_error *err)
{
    member_src src;
    if (!z || !out || i >= z->n)
        return pare_error_set(err, PARE_ERR_ARG, "bad npz member index");
    npz_member *mb = &z->m[i];
    /* A whole read starts at 0 so that the CRC covers every byte. */
    if (member_header(z, mb, &src, true, err))
        return member_err(z, i, err);
    pare_status st = npy_read_body(&src.base, mb->info, mb->name, out, err);
    drop_cursor(z, mb); /* read whole: nothing to continue */
    return st ? member_err(z, i, err) : PARE_OK;
}

pare_status pare_npz_read_rows(pare_npz *z, size_t i, uint64_t start, uint64_t count,
                               pare_tensor **out, pare_error *err)
{
    member_src src;
    pare_status st;
    if (!z || !out || i >= z->n)
        return pare_error_set(err, PARE_ERR_ARG, "bad npz member index");
    npz_member *mb = &z->m[i];
    if (member_header(z, mb, &src, false, err))
        return member_err(z, i, err);
    const pare_npy_info *info = mb->info;
    if (info->rank < 1)
        return pare_error_set(err, PARE_ERR_ARG, "%s: member '%s': a scalar has no rows", z->path,
                              mb->zip_name);
    uint64_t rows = (uint64_t)info->dims[0];
    if (start > rows || count > rows - start)
        return pare_error_set(err, PARE_ERR_ARG, "%s: member '%s': rows %llu..%llu outside 0..%llu",
                              z->path, mb->zip_name, (unsigned long long)start,
                              (unsigned long long)(start + count), (unsigned long long)rows);
    int64_t dims[PARE_MAX_RANK];
    memcpy(dims, info->dims, sizeof dims);
    dims[0] = (int64_t)count;
    pare_tensor *t;
    if ((st = pare_tensor_new(mb->name, info->dtype, info->rank, dims, &t, err)))
        return st;
    size_t row_bytes = rows ? (size_t)(info->nbytes / rows) : 0;
    if (info->fortran_order && info->rank > 1) {
        /* Rows are not contiguous: read it whole once and keep it. */
        if (!z->fcache || z->fcache_i != i) {
            pare_tensor_free(z->fcache);
            z->fcache = NULL;
            if ((st = pare_npz_read(z, i, &z->fcache, err))) {
                pare_tensor_free(t);
                return st;
            }
            z->fcache_i = i;
        }
        if (t->nbytes)
            memcpy(t->data, (unsigned char *)z->fcache->data + start * row_bytes, t->nbytes);
        *out = t;
        return PARE_OK;
    }
    pare_npy_info part = *info;
    part.fortran_order = false;
    if ((st = cursor_seek(z, mb, info->data_offset + start * row_bytes, err)) ||
        (st = cursor_read(z, mb, t->data, t->nbytes, err)) || (st = npy_fix_data(&part, t, err))) {
        pare_tensor_free(t);
        return member_err(z, i, err);
    }
    *out = t;
    return PARE_OK;
}
