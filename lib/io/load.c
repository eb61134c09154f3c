/* Reading models: path or stdin, plain or gzip, then protobuf and the IR. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "internal.h"

static bool is_gzip(const uint8_t *b, size_t n)
{
    return n >= 2 && b[0] == 0x1f && b[1] == 0x8b;
}

static pare_status gunzip(const uint8_t *in, size_t n, uint64_t limit, uint8_t **out,
                          size_t *out_len, pare_error *err)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 32) != Z_OK)
        return PARE_NOMEM(err);
    size_t cap = n * 4 < (1u << 20) ? (1u << 20) : n * 4, len = 0;
    if (cap > limit)
        cap = (size_t)limit + 1;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        inflateEnd(&zs);
        return PARE_NOMEM(err);
    }
    const uint8_t *p = in;
    size_t left = n;
    int rc = Z_OK;
    for (;;) {
        if (len == cap) {
            if ((uint64_t)len > limit) {
                free(buf);
                inflateEnd(&zs);
                return pare_error_set(err, PARE_ERR_LIMIT,
                                      "gzip stream decompresses to more than the limit of %llu "
                                      "bytes (raise it with --max-decompressed)",
                                      (unsigned long long)limit);
            }
            size_t nc = cap * 2;
            if ((uint64_t)nc > limit + 1)
                nc = (size_t)limit + 1;
            uint8_t *nb = realloc(buf, nc);
            if (!nb) {
                free(buf);
                inflateEnd(&zs);
                return PARE_NOMEM(err);
            }
            buf = nb;
            cap = nc;
        }
        uInt chunk_in = left > UINT_MAX ? UINT_MAX : (uInt)left;
        uInt chunk_out = cap - len > UINT_MAX ? UINT_MAX : (uInt)(cap - len);
        zs.next_in = (Bytef *)p;
        zs.avail_in = chunk_in;
        zs.next_out = buf + len;
        zs.avail_out = chunk_out;
        rc = inflate(&zs, Z_NO_FLUSH);
        p += chunk_in - zs.avail_in;
        left -= chunk_in - zs.avail_in;
        len += chunk_out - zs.avail_out;
        /* A real model compresses a few times at most; past 64 MiB a ratio
         * above 100:1 is treated as a decompression bomb. */
        if (len > ((size_t)64 << 20) && len / 100 > (size_t)(p - in) + 1) {
            free(buf);
            inflateEnd(&zs);
            return pare_error_set(err, PARE_ERR_LIMIT,
                                  "gzip stream expands more than 100:1 (%zu bytes from %zu): "
                                  "refusing a likely decompression bomb", len, (size_t)(p - in));
        }
        if (rc == Z_STREAM_END) {
            /* concatenated gzip members: continue with the next one */
            if (left >= 2 && is_gzip(p, left)) {
                inflateReset(&zs);
                continue;
            }
            break;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            free(buf);
            inflateEnd(&zs);
            return pare_error_set(err, PARE_ERR_FORMAT, "corrupt gzip stream at byte %zu: %s",
                                  (size_t)(p - in), zs.msg ? zs.msg : "inflate failed");
        }
        if (rc == Z_BUF_ERROR && left == 0 && len < cap) {
            free(buf);
            inflateEnd(&zs);
            return pare_error_set(err, PARE_ERR_FORMAT, "truncated gzip stream");
        }
    }
    inflateEnd(&zs);
    if ((uint64_t)len > limit) {
        free(buf);
        return pare_error_set(err, PARE_ERR_LIMIT,
                              "gzip stream decompresses to more than the limit of %llu bytes "
                              "(raise it with --max-decompressed)", (unsigned long long)limit);
    }
    *out = buf;
    *out_len = len;
    return PARE_OK;
}

/* protobuf-c says only "NULL" when unpacking fails; walk the wire format of
 * the top-level message to say where. */
static void diagnose_wire(const uint8_t *b, size_t n, char *buf, size_t size)
{
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        uint64_t tag = 0;
        int shift = 0;
        while (i < n && shift < 64) {
            tag |= (uint64_t)(b[i] & 0x7f) << shift;
            shift += 7;
            if (!(b[i++] & 0x80))
                break;
        }
        if (i >= n && (b[i - 1] & 0x80)) {
            snprintf(buf, size, "truncated field tag at byte %zu", start);
            return;
        }
        unsigned wt = tag & 7;
        uint64_t field = tag >> 3;
        if (field == 0) {
            snprintf(buf, size, "invalid field number 0 at byte %zu", start);
            return;
        }
        uint64_t len = 0;
        switch (wt) {
        case 0:
            while (i < n && (b[i] & 0x80))
                i++;
            if (i >= n) {
                snprintf(buf, size, "truncated varint (field %llu) at byte %zu",
                         (unsigned long long)field, start);
                return;
            }
            i++;
            break;
        case 1:
            len = 8;
            goto skip;
        case 5:
            len = 4;
            goto skip;
        case 2:
            shift = 0;
            len = 0;
            while (i < n && shift < 64) {
                len |= (uint64_t)(b[i] & 0x7f) << shift;
                shift += 7;
                if (!(b[i++] & 0x80))
                    break;
            }
        skip:
            if (len > n - i) {
                snprintf(buf, size, "field %llu at byte %zu claims %llu bytes, only %zu remain "
                         "(truncated or corrupt file)", (unsigned long long)field, start,
                         (unsigned long long)len, n - i);
                return;
            }
            i += (size_t)len;
            break;
        default:
            snprintf(buf, size, "invalid wire type %u (field %llu) at byte %zu", wt,
                     (unsigned long long)field, start);
            return;
        }
    }
    snprintf(buf, size, "a nested message is malformed");
}

/* ---- embedded weights without a copy ----
 *
 * protobuf-c's unpack copies every bytes field out of the input, so a
 * model's weights would be copied once more after being read. Instead the
 * wire format is walked along ModelProto.graph (7) -> initializer (5) and
 * sparse_initializer (15) -> values (1) / indices (2), a copy of the message
 * is made without the big raw_data (9) payloads (enclosing length prefixes
 * re-encoded), that copy is unpacked, and each stripped raw_data is pointed
 * back at the input bytes: borrowed from a mapped file or a buffer the model
 * keeps, or copied for a caller's buffer. Only the plain shape is
 * recognised; anything odd (a field repeated where protobuf would merge,
 * groups, bad lengths) leaves the message to the ordinary unpack. */

#define BORROW_MIN 4096 /* smaller payloads are not worth the bookkeeping */

typedef struct wfield {
    uint64_t num;
    unsigned wt;
    size_t start, tag_end; /* tag bytes: [start, tag_end) */
    size_t data, len;      /* payload of a length-delimited field */
    size_t end;
} wfield;

static bool rd_varint(const uint8_t *b, size_t n, size_t *i, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*i >= n)
            return false;
        uint8_t c = b[(*i)++];
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* Reads the field at *i of b[0..n); false on anything malformed or unusual.
 * Tags and length prefixes are held to protobuf-c's limits (5 bytes, lengths
 * up to INT_MAX), so that a message it would refuse is never rewritten
 * into one it accepts. */
static bool rd_field(const uint8_t *b, size_t n, size_t *i, wfield *f)
{
    uint64_t tag, v;
    f->start = *i;
    if (!rd_varint(b, n, i, &tag) || *i - f->start > 5)
        return false;
    f->tag_end = *i;
    f->num = tag >> 3;
    f->wt = (unsigned)(tag & 7);
    if (f->num == 0 || f->num > 536870911u)
        return false;
    f->data = *i;
    f->len = 0;
    switch (f->wt) {
    case 0:
        if (!rd_varint(b, n, i, &v))
            return false;
        break;
    case 1:
    case 5:
        f->len = f->wt == 1 ? 8 : 4;
        if (n - *i < f->len)
            return false;
        *i += f->len;
        f->len = 0;
        break;
    case 2: {
        size_t at = *i;
        if (!rd_varint(b, n, i, &v) || *i - at > 5 || v > INT_MAX || v > n - *i)
            return false;
        f->data = *i;
        f->len = (size_t)v;
        *i += (size_t)v;
        break;
    }
    default: /* groups: left to protobuf-c */
        return false;
    }
    f->end = *i;
    return true;
}

typedef struct strip_rec {
    int kind;      /* 0 initializer, 1 sparse values, 2 sparse indices */
    size_t index;  /* in graph.initializer / graph.sparse_initializer */
    size_t off, len;
} strip_rec;

typedef struct strip_out {
    uint8_t *p;    /* NULL: only measure */
    size_t n;
    strip_rec *recs;
    size_t n_recs, cap_recs;
    bool oom;
} strip_out;

static void put(strip_out *o, const uint8_t *d, size_t l)
{
    if (o->p && l)
        memcpy(o->p + o->n, d, l);
    o->n += l;
}

static void put_varint(strip_out *o, uint64_t v)
{
    uint8_t t[10];
    size_t k = 0;
    do {
        t[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    put(o, t, k);
}

/* The raw_data field of TensorProto bytes t[0..n) when it is the only one and
 * big enough to borrow. */
static bool tensor_raw(const uint8_t *t, size_t n, wfield *raw)
{
    size_t i = 0, found = 0;
    wfield f;
    while (i < n) {
        if (!rd_field(t, n, &i, &f))
            return false;
        if (f.num == 9) {
            if (f.wt != 2)
                return false;
            *raw = f;
            found++;
        }
    }
    return found == 1 && raw->len >= BORROW_MIN;
}

/* Writes TensorProto bytes with raw_data emptied (raw from tensor_raw). */
static void emit_tensor(strip_out *o, const uint8_t *t, size_t n, const wfield *raw)
{
    put(o, t, raw->start);
    put(o, t + raw->start, raw->tag_end - raw->start);
    put_varint(o, 0);
    put(o, t + raw->end, n - raw->end);
}

static void add_rec(strip_out *o, int kind, size_t index, size_t off, size_t len)
{
    if (!o->p || o->oom)
        return;
    if (pare__grow((void **)&o->recs, &o->cap_recs, o->n_recs + 1, sizeof *o->recs)) {
        o->oom = true;
        return;
    }
    o->recs[o->n_recs++] = (strip_rec){kind, index, off, len};
}

/* A nested message field: tag as in the input, then the new length and body. */
typedef void (*emit_fn)(strip_out *o, const uint8_t *base, const wfield *f, size_t index,
                        const void *ctx);

static void emit_nested(strip_out *o, const uint8_t *base, const wfield *f, size_t index,
                        emit_fn fn, const void *ctx)
{
    strip_out m = {0};
    fn(&m, base, f, index, ctx);
    put(o, base + f->start, f->tag_end - f->start);
    put_varint(o, m.n);
    fn(o, base, f, index, ctx);
}

/* fields of a TensorProto found by the scan: which raw_data to strip */
typedef struct tensor_cut {
    wfield raw;
    int kind;
} tensor_cut;

static void emit_tensor_field(strip_out *o, const uint8_t *base, const wfield *f, size_t index,
                              const void *ctx)
{
    const tensor_cut *tc = ctx;
    emit_tensor(o, base + f->data, f->len, &tc->raw);
    add_rec(o, tc->kind, index, f->data + tc->raw.data, tc->raw.len);
}

static void emit_sparse_field(strip_out *o, const uint8_t *base, const wfield *f, size_t index,
                              const void *ctx)
{
    (void)ctx;
    const uint8_t *s = base + f->data;
    size_t i = 0, n = f->len;
    wfield g;
    while (i < n) {
        if (!rd_field(s, n, &i, &g)) /* checked by sparse_ok; a size check catches it */
            break;
        tensor_cut tc;
        if ((g.num == 1 || g.num == 2) && tensor_raw(s + g.data, g.len, &tc.raw)) {
            tc.kind = (int)g.num;
            wfield ga = g;
            ga.start += f->data;
            ga.tag_end += f->data;
            ga.data += f->data;
            ga.end += f->data;
            emit_nested(o, base, &ga, index, emit_tensor_field, &tc);
        } else {
            put(o, s + g.start, g.end - g.start);
        }
    }
}

/* A SparseTensorProto worth rewriting: well formed, values and indices
 * at most once each (protobuf would merge repeats), one of them strippable. */
static bool sparse_ok(const uint8_t *s, size_t n)
{
    size_t i = 0, seen[3] = {0, 0, 0};
    bool any = false;
    wfield g, raw;
    while (i < n) {
        if (!rd_field(s, n, &i, &g))
            return false;
        if (g.num == 1 || g.num == 2) {
            if (g.wt != 2 || ++seen[g.num] > 1)
                return false;
            any |= tensor_raw(s + g.data, g.len, &raw);
        }
    }
    return any;
}

static void emit_graph_field(strip_out *o, const uint8_t *base, const wfield *f, size_t index,
                             const void *ctx)
{
    (void)index;
    (void)ctx;
    const uint8_t *g = base + f->data;
    size_t i = 0, n = f->len, k_init = 0, k_sparse = 0;
    wfield h;
    while (i < n) {
        if (!rd_field(g, n, &i, &h)) /* checked by graph_ok; a size check catches it */
            break;
        wfield ha = h;
        ha.start += f->data;
        ha.tag_end += f->data;
        ha.data += f->data;
        ha.end += f->data;
        tensor_cut tc;
        if (h.num == 5 && h.wt == 2 && tensor_raw(g + h.data, h.len, &tc.raw)) {
            tc.kind = 0;
            emit_nested(o, base, &ha, k_init, emit_tensor_field, &tc);
        } else if (h.num == 15 && h.wt == 2 && sparse_ok(g + h.data, h.len)) {
            emit_nested(o, base, &ha, k_sparse, emit_sparse_field, NULL);
        } else {
            put(o, g + h.start, h.end - h.start);
        }
        if (h.num == 5)
            k_init++;
        if (h.num == 15)
            k_sparse++;
    }
}

/* A GraphProto whose repeated message fields are all length-delimited (so
 * each occurrence is one element, in order) and that has something to strip. */
static bool graph_ok(const uint8_t *g, size_t n)
{
    size_t i = 0;
    bool any = false;
    wfield h, raw;
    while (i < n) {
        if (!rd_field(g, n, &i, &h))
            return false;
        if (h.num == 5 || h.num == 15) {
            if (h.wt != 2)
                return false;
            any = any || (h.num == 5 ? tensor_raw(g + h.data, h.len, &raw)
                                     : sparse_ok(g + h.data, h.len));
        }
    }
    return any;
}

/* Builds the stripped copy of ModelProto bytes b[0..n) into *out (malloc'd)
 * with the payloads in *recs; false when there is nothing to strip or the
 * bytes are anything but plain (then the ordinary unpack decides). */
static bool strip_model(const uint8_t *b, size_t n, uint8_t **out, size_t *out_len,
                        strip_rec **recs, size_t *n_recs)
{
    size_t i = 0, graphs = 0;
    wfield f, graph = {0};
    while (i < n) {
        if (!rd_field(b, n, &i, &f))
            return false;
        if (f.num == 7) {
            if (f.wt != 2)
                return false;
            graph = f;
            graphs++;
        }
    }
    if (graphs != 1 || !graph_ok(b + graph.data, graph.len))
        return false;
    strip_out o = {0};
    emit_nested(&o, b, &graph, 0, emit_graph_field, NULL);
    size_t size = graph.start + (o.n) + (n - graph.end);
    o = (strip_out){0};
    o.p = malloc(size ? size : 1);
    if (!o.p)
        return false;
    put(&o, b, graph.start);
    emit_nested(&o, b, &graph, 0, emit_graph_field, NULL);
    put(&o, b + graph.end, n - graph.end);
    if (o.oom || o.n != size || !o.n_recs) {
        free(o.p);
        free(o.recs);
        return false;
    }
    *out = o.p;
    *out_len = o.n;
    *recs = o.recs;
    *n_recs = o.n_recs;
    return true;
}

/* ---- bytes -> model ---- */

typedef enum src_mode {
    SRC_COPY, /* the caller's bytes: payloads are copied */
    SRC_HEAP, /* malloc'd bytes handed over: borrowed, freed with the model */
    SRC_MAP   /* a mapping of fd handed over: borrowed, unmapped with the model */
} src_mode;

/* While the IR is built from a proto whose raw_data borrows (the builder
 * frees the proto itself when it fails), pare__model_proto_free needs to
 * know which fields are not protobuf-c's to free. */
static _Thread_local pare_source *loading_src;
static _Thread_local const Onnx__ModelProto *loading_proto;

static void source_unborrow(pare_source *s)
{
    for (size_t i = 0; i < s->n_borrowed; i++) {
        s->borrowed[i]->data = NULL;
        s->borrowed[i]->len = 0;
    }
    s->n_borrowed = 0;
}

static void release_bytes(const uint8_t *b, size_t n, src_mode mode, int fd)
{
    if (mode == SRC_HEAP)
        free((void *)b);
    if (mode == SRC_MAP)
        munmap((void *)b, n);
    if (fd >= 0)
        close(fd);
}

static void source_free(pare_source *s)
{
    if (!s)
        return;
    release_bytes(s->addr, s->len, s->mapped ? SRC_MAP : SRC_HEAP, s->fd);
    free(s->borrowed);
    free(s);
}

void pare__model_proto_free(Onnx__ModelProto *proto, pare_source *src)
{
    if (!proto)
        return;
    if (!src && proto == loading_proto)
        src = loading_src;
    if (src)
        source_unborrow(src);
    onnx__model_proto__free_unpacked(proto, NULL);
}

bool pare__source_read(const pare_model *m, const void *p, void *dst, size_t len)
{
    const pare_source *s = m && m->src ? m->src : loading_src;
    const uint8_t *q = p;
    if (!s || !s->mapped || s->fd < 0 || q < s->addr || len > s->len ||
        (size_t)(q - s->addr) > s->len - len)
        return false;
    off_t off = (off_t)(q - s->addr);
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(s->fd, (uint8_t *)dst + done, len - done, off + (off_t)done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        done += (size_t)r;
    }
    return true;
}

/* Points the stripped raw_data fields of mp at their bytes in b (copies for
 * SRC_COPY). False, with mp as unpacked, when mp does not match the records. */
static bool patch_payloads(Onnx__ModelProto *mp, const uint8_t *b, src_mode mode,
                           const strip_rec *recs, size_t n_recs, pare_source *src)
{
    Onnx__GraphProto *g = mp->graph;
    for (size_t i = 0; i < n_recs; i++) {
        const strip_rec *r = &recs[i];
        Onnx__TensorProto *tp = NULL;
        if (g && r->kind == 0 && r->index < g->n_initializer) {
            tp = g->initializer[r->index];
        } else if (g && r->kind && r->index < g->n_sparse_initializer) {
            Onnx__SparseTensorProto *sp = g->sparse_initializer[r->index];
            tp = r->kind == 1 ? sp->values : sp->indices;
        }
        if (!tp || !tp->has_raw_data || tp->raw_data.len || tp->raw_data.data)
            goto undo;
        if (mode == SRC_COPY) {
            uint8_t *c = malloc(r->len);
            if (!c)
                goto undo;
            memcpy(c, b + r->off, r->len);
            tp->raw_data.data = c; /* protobuf-c's own now */
        } else {
            tp->raw_data.data = (uint8_t *)b + r->off;
            src->borrowed[src->n_borrowed++] = &tp->raw_data;
        }
        tp->raw_data.len = r->len;
    }
    return true;
undo:
    if (src)
        source_unborrow(src);
    return false;
}

/* Unpacks b[0..n) (plain protobuf) and builds the model. b is handed over
 * for SRC_HEAP and SRC_MAP (with fd): kept by the model when tensors borrow
 * it, released otherwise, on success and failure alike. */
static pare_status parse_model(const uint8_t *b, size_t n, src_mode mode, int fd,
                               const char *base_dir, bool no_external, pare_model **out,
                               pare_error *err)
{
    Onnx__ModelProto *mp = NULL;
    pare_source *src = NULL;
    uint8_t *sb;
    size_t sn, n_recs;
    strip_rec *recs;
    if (strip_model(b, n, &sb, &sn, &recs, &n_recs)) {
        mp = onnx__model_proto__unpack(NULL, sn, sb);
        free(sb);
        if (mp && mode != SRC_COPY) {
            src = calloc(1, sizeof *src);
            if (src && !(src->borrowed = malloc(n_recs * sizeof *src->borrowed))) {
                free(src);
                src = NULL;
            }
        }
        if (mp && ((mode != SRC_COPY && !src) ||
                   !patch_payloads(mp, b, mode, recs, n_recs, src))) {
            onnx__model_proto__free_unpacked(mp, NULL);
            mp = NULL;
        }
        free(recs);
        if (!mp && src) {
            free(src->borrowed);
            free(src);
            src = NULL;
        }
    }
    if (!mp) /* nothing to strip, or something unusual: the ordinary way */
        mp = onnx__model_proto__unpack(NULL, n, b);
    if (!mp) {
        char why[256];
        diagnose_wire(b, n, why, sizeof why);
        release_bytes(b, n, mode, fd);
        return pare_error_set(err, PARE_ERR_FORMAT, "not a valid ONNX protobuf: %s", why);
    }
    if (src) {
        src->addr = b;
        src->len = n;
        src->fd = fd;
        src->mapped = mode == SRC_MAP;
        /* Stripping touched the header of every tensor in the mapping, and
         * the kernel maps whole (large) folios around each touch: tens of MB
         * of a large model resident for nothing while the unaligned tensors
         * are copied next (with pread). Give them back; tensors that borrow
         * the mapping fault their pages in again when read. */
        if (src->mapped)
            (void)madvise((void *)b, n, MADV_DONTNEED);
    } else {
        release_bytes(b, n, mode, fd);
    }
    loading_src = src;
    loading_proto = mp;
    pare_status st = pare__model_from_proto(mp, base_dir, no_external, out, err);
    loading_src = NULL;
    loading_proto = NULL;
    if (st) {
        source_free(src); /* the proto went with the failed model, unborrowed first */
        return st;
    }
    (*out)->src = src;
    return PARE_OK;
}

/* Bytes that may be gzip: gunzips, then parse_model (ownership as there). */
static pare_status load_bytes(const uint8_t *b, size_t n, src_mode mode, int fd,
                              const char *base_dir, const pare_load_opts *o, pare_model **out,
                              pare_error *err)
{
    *out = NULL;
    if (n == 0) {
        release_bytes(b, n, mode, fd);
        return pare_error_set(err, PARE_ERR_FORMAT, "empty file (0 bytes)");
    }
    if (is_gzip(b, n)) {
        uint8_t *plain = NULL;
        size_t plain_len = 0;
        pare_status st = gunzip(b, n, o->max_decompressed, &plain, &plain_len, err);
        release_bytes(b, n, mode, fd);
        if (st)
            return st;
        if (plain_len == 0) {
            free(plain);
            return pare_error_set(err, PARE_ERR_FORMAT, "gzip stream holds an empty file");
        }
        return parse_model(plain, plain_len, SRC_HEAP, -1, base_dir, o->no_external, out, err);
    }
    return parse_model(b, n, mode, fd, base_dir, o->no_external, out, err);
}

pare_status pare_model_load_buffer(const void *buf, size_t len, const char *base_dir,
                                   const pare_load_opts *opts, pare_model **out, pare_error *err)
{
    pare_load_opts o = PARE_LOAD_OPTS_INIT;
    if (opts)
        o = *opts;
    if (!o.max_decompressed)
        o.max_decompressed = PARE_DEFAULT_MAX_DECOMPRESSED;
    return load_bytes(buf, len, SRC_COPY, -1, base_dir, &o, out, err);
}

static pare_status read_stream(int fd, uint8_t **out, size_t *len, uint64_t limit, pare_error *err)
{
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    if (!b)
        return PARE_NOMEM(err);
    for (;;) {
        if (n == cap) {
            if ((uint64_t)cap > limit) {
                free(b);
                return pare_error_set(err, PARE_ERR_LIMIT, "input larger than %llu bytes",
                                      (unsigned long long)limit);
            }
            uint8_t *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                return PARE_NOMEM(err);
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            free(b);
            return pare_error_set(err, PARE_ERR_IO, "read: %s", strerror(errno));
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *out = b;
    *len = n;
    return PARE_OK;
}

pare_status pare_model_load(const char *path, const pare_load_opts *opts, pare_model **out,
                            pare_error *err)
{
    *out = NULL;
    pare_load_opts o = PARE_LOAD_OPTS_INIT;
    if (opts)
        o = *opts;
    if (!o.max_decompressed)
        o.max_decompressed = PARE_DEFAULT_MAX_DECOMPRESSED;
    if (strcmp(path, "-") == 0) {
        uint8_t *b;
        size_t n;
        pare_status st = read_stream(STDIN_FILENO, &b, &n, o.max_decompressed, err);
        if (st)
            return st;
        st = load_bytes(b, n, SRC_HEAP, -1, NULL, &o, out, err);
        if (!st)
            (*out)->file_size = n;
        return st;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pare_error_set(err, PARE_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return pare_error_set(err, PARE_ERR_IO, "cannot stat: %s", strerror(errno));
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return pare_error_set(err, PARE_ERR_IO, "is a directory, not a model file");
    }
    /* base dir for external data: the folder holding the model */
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash) {
        size_t dl = (size_t)(slash - path);
        if (dl >= sizeof dir)
            dl = sizeof dir - 1;
        memcpy(dir, path, dl);
        dir[dl ? dl : 1] = '\0';
        if (dl == 0)
            dir[0] = '/';
    } else {
        strcpy(dir, ".");
    }
    pare_status st;
    if (S_ISREG(sb.st_mode)) {
        size_t n = (size_t)sb.st_size;
        if (n == 0) {
            close(fd);
            return pare_error_set(err, PARE_ERR_FORMAT, "empty file (0 bytes)");
        }
        /* read-only, like external data: tensors borrow these pages, and
         * saving copies them from fd inside the kernel */
        void *map = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            close(fd);
            return pare_error_set(err, PARE_ERR_IO, "mmap: %s", strerror(errno));
        }
        st = load_bytes(map, n, SRC_MAP, fd, dir, &o, out, err);
        if (!st)
            (*out)->file_size = n;
        return st;
    }
    uint8_t *b;
    size_t n;
    st = read_stream(fd, &b, &n, o.max_decompressed, err);
    close(fd);
    if (st)
        return st;
    st = load_bytes(b, n, SRC_HEAP, -1, dir, &o, out, err);
    if (!st)
        (*out)->file_size = n;
    return st;
}

void pare_model_free(pare_model *m)
{
    if (!m)
        return;
    pare__graph_free(m->graph);
    pare__model_proto_free(m->proto, m->src);
    source_free(m->src);
    for (size_t i = 0; i < m->n_ext; i++) {
        if (m->ext[i].addr)
            munmap(m->ext[i].addr, m->ext[i].len);
        free(m->ext[i].location);
        free(m->ext[i].path);
    }
    free(m->ext);
    for (size_t i = 0; i < m->n_opsets; i++)
        free(m->opsets[i].domain);
    free(m->opsets);
    free(m->base_dir);
    pare_problems_release(&m->load_problems);
    free(m);
}

pare_graph *pare_model_graph(pare_model *m)
{
    return m->graph;
}

void pare__source_forget(const pare_model *m, const void *p, size_t len)
{
    const pare_source *s = m ? m->src : NULL;
    const uint8_t *q = p;
    if (!s || !s->mapped || q < s->addr || len > s->len || (size_t)(q - s->addr) > s->len - len)
        return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)q + page - 1) & ~(page - 1);   /* whole pages inside only */
    uintptr_t b = ((uintptr_t)q + len) & ~(page - 1);
    if (b > a)
        (void)madvise((void *)a, b - a, MADV_DONTNEED);
}

pare_status pare__init_align(pare_model *m, pare_tensor *t, pare_error *err)
{
    if (!t || t->owns_data || !t->data || pare__aligned_for(t->dtype, t->data))
        return PARE_OK;
    void *copy = NULL;
    if (posix_memalign(&copy, 64, t->nbytes ? t->nbytes : 1))
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory aligning initializer '%s' "
                              "(%zu bytes)", t->name ? t->name : "", t->nbytes);
    /* pread from the model file where it came from: no page of the mapping
     * is faulted in for it */
    if (!pare__source_read(m, t->data, copy, t->nbytes))
        memcpy(copy, t->data, t->nbytes);
    t->data = copy;
    t->owns_data = true;
    if (m && m->n_unaligned)
        m->n_unaligned--;
    return PARE_OK;
}

static pare_status align_graph(pare_model *m, pare_graph *g, pare_error *err)
{
    for (size_t i = 0; i < g->n_values && m->n_unaligned; i++) {
        pare_status st = pare__init_align(m, g->values[i]->init, err);
        if (st)
            return st;
    }
    for (size_t i = 0; i < g->n_nodes && m->n_unaligned; i++) {
        pare_node *n = g->nodes[i];
        for (size_t a = 0; a < n->n_attrs; a++) {
            pare_status st;
            if (n->attrs[a].g && (st = align_graph(m, n->attrs[a].g, err)))
                return st;
            for (size_t j = 0; n->attrs[a].graphs && j < n->attrs[a].n; j++)
                if ((st = align_graph(m, n->attrs[a].graphs[j], err)))
                    return st;
        }
    }
    return PARE_OK;
}

pare_status pare_model_align_weights(pare_model *m, pare_error *err)
{
    if (!m || !m->n_unaligned)
        return PARE_OK;
    pare_status st = align_graph(m, m->graph, err);
    /* whatever was not found is no longer in the model (removed nodes) */
    if (!st)
        m->n_unaligned = 0;
    return st;
}

static const char *s0(const char *s)
{
    return s ? s : "";
}

int64_t pare_model_ir_version(const pare_model *m)
{
    return m->proto->has_ir_version ? m->proto->ir_version : 0;
}
const char *pare_model_producer(const pare_model *m)
{
    return s0(m->proto->producer_name);
}
const char *pare_model_producer_version(const pare_model *m)
{
    return s0(m->proto->producer_version);
}
const char *pare_model_domain(const pare_model *m)
{
    return s0(m->proto->domain);
}
int64_t pare_model_version(const pare_model *m)
{
    return m->proto->has_model_version ? m->proto->model_version : 0;
}
const char *pare_model_doc(const pare_model *m)
{
    return s0(m->proto->doc_string);
}
size_t pare_model_metadata_count(const pare_model *m)
{
    return m->proto->n_metadata_props;
}
void pare_model_metadata(const pare_model *m, size_t i, const char **key, const char **value)
{
    *key = s0(m->proto->metadata_props[i]->key);
    *value = s0(m->proto->metadata_props[i]->value);
}
size_t pare_model_function_count(const pare_model *m)
{
    return m->proto->n_functions;
}
const char *pare_model_function_name(const pare_model *m, size_t i, const char **domain)
{
    if (domain)
        *domain = s0(m->proto->functions[i]->domain);
    return s0(m->proto->functions[i]->name);
}
bool pare_model_has_training_info(const pare_model *m)
{
    return m->proto->n_training_info > 0;
}
size_t pare_model_opset_count(const pare_model *m)
{
    return m->n_opsets;
}
void pare_model_opset(const pare_model *m, size_t i, const char **domain, int64_t *version)
{
    *domain = m->opsets[i].domain;
    *version = m->opsets[i].version;
}
int64_t pare_model_opset_version(const pare_model *m, const char *domain)
{
    if (!domain || strcmp(domain, "ai.onnx") == 0)
        domain = "";
    for (size_t i = 0; i < m->n_opsets; i++)
        if (strcmp(m->opsets[i].domain, domain) == 0)
            return m->opsets[i].version;
    return 0;
}
pare_status pare_model_set_opset(pare_model *m, const char *domain, int64_t version, pare_error *err)
{
    if (!domain || strcmp(domain, "ai.onnx") == 0)
        domain = "";
    for (size_t i = 0; i < m->n_opsets; i++)
        if (strcmp(m->opsets[i].domain, domain) == 0) {
            if (m->opsets[i].version != version)
                m->opsets_dirty = true;
            m->opsets[i].version = version;
            return PARE_OK;
        }
    pare_opset *no = realloc(m->opsets, (m->n_opsets + 1) * sizeof *no);
    if (!no)
        return PARE_NOMEM(err);
    m->opsets = no;
    if (!(no[m->n_opsets].domain = strdup(domain)))
        return PARE_NOMEM(err);
    no[m->n_opsets].version = version;
    m->n_opsets++;
    m->opsets_dirty = true;
    return PARE_OK;
}
uint64_t pare_model_file_size(const pare_model *m)
{
    return m->file_size;
}
uint64_t pare_model_external_bytes(const pare_model *m)
{
    return m->external_bytes;
}
