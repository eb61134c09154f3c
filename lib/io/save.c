/* Writing models: IR -> shallow protobuf messages that point at the loaded
 * messages wherever nothing changed, packed straight to the file (or a gzip
 * stream) without building the whole serialization in memory. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "internal.h"

/* ---- an arena for the shells: every allocation freed at the end ---- */

typedef struct arena {
    void **ptrs;
    size_t n, cap;
    bool oom;
} arena;

static void *aalloc(arena *a, size_t size)
{
    if (a->oom)
        return NULL;
    void *p = calloc(1, size ? size : 1);
    if (!p || pare__grow((void **)&a->ptrs, &a->cap, a->n + 1, sizeof *a->ptrs)) {
        free(p);
        a->oom = true;
        return NULL;
    }
    a->ptrs[a->n++] = p;
    return p;
}

static char *astrdup(arena *a, const char *s)
{
    size_t l = strlen(s);
    char *p = aalloc(a, l + 1);
    if (p)
        memcpy(p, s, l + 1);
    return p;
}

static void arena_free(arena *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->ptrs[i]);
    free(a->ptrs);
}

/* ---- external data writer ---- */

typedef struct save_ctx {
    arena ar;
    const pare_model *m;    /* for its external data mappings */
    const pare_save_opts *opts;
    FILE *ext;              /* open external data file, or NULL */
    const char *ext_name;   /* location written into tensors */
    uint64_t ext_off;
    pare_error *err;
    pare_status st;
    bool need_ext;          /* a tensor wanted external storage */
    bool ext_allowed;
    int *ext_fds;           /* per m->ext: reopened file, -1 unusable, -2 not tried */
} save_ctx;

static bool fail(save_ctx *c, pare_status st, const char *msg)
{
    if (!c->st) {
        c->st = st;
        pare_error_set(c->err, st, "%s", msg);
    }
    return false;
}

/* keeps the loaded string (and its presence) when the content is the same */
static char *keep_str(save_ctx *c, char *orig, const char *now)
{
    if (orig && strcmp(orig, now) == 0)
        return orig;
    if (!orig && !*now)
        return NULL;
    char *s = astrdup(&c->ar, now);
    if (!s)
        fail(c, PARE_ERR_NOMEM, "out of memory");
    return s;
}

static Onnx__StringStringEntryProto *kv(save_ctx *c, const char *k, const char *v)
{
    Onnx__StringStringEntryProto *e = aalloc(&c->ar, sizeof *e);
    if (!e)
        return NULL;
    onnx__string_string_entry_proto__init(e);
    e->key = astrdup(&c->ar, k);
    e->value = astrdup(&c->ar, v);
    return e;
}

static bool want_external(save_ctx *c, const pare_value *v, bool was_external)
{
    if (v->init->dtype == PARE_DT_STRING)
        return false;
    if (c->opts->external_threshold < 0)
        return was_external;
    return (int64_t)v->init->nbytes >= c->opts->external_threshold && v->init->nbytes > 0;
}

static Onnx__TensorProto *tensor_shell(save_ctx *c, const pare_tensor *t,
                                       const Onnx__TensorProto *orig)
{
    Onnx__TensorProto *tp = aalloc(&c->ar, sizeof *tp);
    if (!tp) {
        fail(c, PARE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (orig) {
        *tp = *orig; /* keeps doc_string, unknown fields */
    } else {
        onnx__tensor_proto__init(tp);
    }
    tp->n_dims = (size_t)t->rank;
    tp->dims = t->dims;
    tp->has_data_type = 1;
    tp->data_type = t->dtype;
    tp->name = keep_str(c, orig ? orig->name : NULL, t->name ? t->name : "");
    tp->n_float_data = tp->n_int32_data = tp->n_string_data = tp->n_int64_data = 0;
    tp->n_double_data = tp->n_uint64_data = 0;
    tp->n_external_data = 0;
    tp->external_data = NULL;
    tp->has_data_location = 0;
    tp->data_location = 0;
    tp->segment = NULL;
    if (t->dtype == PARE_DT_STRING) {
        size_t n = t->nbytes / sizeof(pare_string);
        ProtobufCBinaryData *sd = aalloc(&c->ar, n * sizeof *sd);
        if (!sd) {
            fail(c, PARE_ERR_NOMEM, "out of memory");
            return NULL;
        }
        for (size_t i = 0; i < n; i++) {
            sd[i].data = (uint8_t *)((pare_string *)t->data)[i].data;
            sd[i].len = ((pare_string *)t->data)[i].len;
        }
        tp->has_raw_data = 0;
        tp->raw_data.len = 0;
        tp->raw_data.data = NULL;
        tp->n_string_data = n;
        tp->string_data = sd;
    } else {
        tp->has_raw_data = 1;
        tp->raw_data.data = t->data;
        tp->raw_data.len = t->nbytes;
    }
    return tp;
}

/* Copying mapped weights (external data, or the model file's own bytes
 * when writing from memory) faults the pages into this process; once
 * written they are not needed again soon, so give them back (only for
 * read-only file mappings, where the kernel re-reads on access), keeping
 * peak RSS near one tensor rather than all the weights. */
static void drop_mapped_pages(save_ctx *c, const void *data, size_t len)
{
    if (!c->m || !len)
        return;
    const uint8_t *p = data;
    const pare_source *src = c->m->src;
    bool in = src && src->mapped && p >= src->addr && p + len <= src->addr + src->len;
    for (size_t i = 0; !in && i < c->m->n_ext; i++) {
        const uint8_t *a = c->m->ext[i].addr;
        in = a && p >= a && p + len <= a + c->m->ext[i].len;
    }
    if (!in)
        return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t hi = ((uintptr_t)p + len) & ~(page - 1);
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* The open file whose bytes are mapped at data..data+len: the model file
 * (kept open since loading) or an external data file (reopened by its
 * resolved path, and used only if it is still the same file), with the
 * offset of data in it; -1 if none. */
static int source_fd(save_ctx *c, const void *data, size_t len, off_t *off)
{
    if (!c->m)
        return -1;
    const uint8_t *p = data;
    const pare_source *src = c->m->src;
    if (src && src->mapped && src->fd >= 0 && p >= src->addr && p + len <= src->addr + src->len) {
        *off = (off_t)(p - src->addr);
        return src->fd;
    }
    for (size_t i = 0; i < c->m->n_ext; i++) {
        const pare_extmap *e = &c->m->ext[i];
        const uint8_t *a = e->addr;
        if (!a || p < a || p + len > a + e->len)
            continue;
        if (!c->ext_fds) {
            c->ext_fds = malloc(c->m->n_ext * sizeof *c->ext_fds);
            if (!c->ext_fds)
                return -1;
            for (size_t k = 0; k < c->m->n_ext; k++)
                c->ext_fds[k] = -2;
        }
        if (c->ext_fds[i] == -2) {
            int fd = e->path ? open(e->path, O_RDONLY | O_CLOEXEC) : -1;
            struct stat sb;
            if (fd >= 0 && (fstat(fd, &sb) != 0 || sb.st_dev != e->dev || sb.st_ino != e->ino ||
                            (uint64_t)sb.st_size < e->len)) {
                close(fd);
                fd = -1;
            }
            c->ext_fds[i] = fd;
        }
        *off = (off_t)(p - a);
        return c->ext_fds[i];
    }
    return -1;
}

static void close_source_fds(save_ctx *c)
{
    for (size_t i = 0; c->ext_fds && i < c->m->n_ext; i++)
        if (c->ext_fds[i] >= 0)
            close(c->ext_fds[i]);
    free(c->ext_fds);
    c->ext_fds = NULL;
}

/* Copies len bytes at offset off of in_fd to the end of out inside the
 * kernel (copy_file_range, else sendfile), without passing them through
 * this process's memory. Returns how many it copied; the caller writes the
 * rest from memory (the kernel may refuse: another filesystem, a pipe). */
static size_t copy_in_kernel(FILE *out, int in_fd, off_t off, size_t len)
{
    if (fflush(out) != 0)
        return 0;
    int ofd = fileno(out);
    size_t done = 0;
    bool use_sendfile = false;
    while (done < len) {
        size_t want = len - done > ((size_t)1 << 30) ? ((size_t)1 << 30) : len - done;
        ssize_t r = use_sendfile ? sendfile(ofd, in_fd, &off, want)
                                 : copy_file_range(in_fd, &off, ofd, NULL, want, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && !use_sendfile && done == 0) {
            use_sendfile = true;
            continue;
        }
        if (r <= 0)
            break;
        done += (size_t)r;
    }
    return done;
}

#define KERNEL_COPY_MIN ((size_t)64 << 10)

/* Writes bytes to out; bytes that are a mapped file's go in-kernel. */
static bool put_bytes(save_ctx *c, FILE *out, const void *data, size_t len)
{
    size_t done = 0;
    off_t off;
    int fd;
    if (len >= KERNEL_COPY_MIN && (fd = source_fd(c, data, len, &off)) >= 0)
        done = copy_in_kernel(out, fd, off, len);
    if (done < len && fwrite((const uint8_t *)data + done, 1, len - done, out) != len - done)
        return false;
    if (done < len)
        drop_mapped_pages(c, (const uint8_t *)data + done, len - done);
    return true;
}

static Onnx__TensorProto *init_to_proto(save_ctx *c, pare_value *v)
{
    const Onnx__TensorProto *orig = v->orig_init;
    bool was_external = orig && orig->has_data_location &&
                        orig->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    bool ext = want_external(c, v, was_external);
    if (!ext && !was_external && orig && !v->dirty)
        return (Onnx__TensorProto *)orig;
    Onnx__TensorProto *tp = tensor_shell(c, v->init, orig);
    if (!tp || !ext)
        return tp;
    if (!c->ext_allowed) {
        fail(c, PARE_ERR_ARG, "external data cannot be written with the model to standard "
                              "output; save to a file or embed the weights");
        return NULL;
    }
    c->need_ext = true;
    if (!c->ext)
        return tp; /* first pass (sizing) */
    /* align each tensor to 64 bytes so mapped data suits vector loads */
    static const uint8_t zeros[64];
    uint64_t pad = (64 - (c->ext_off % 64)) % 64;
    if (pad && fwrite(zeros, 1, (size_t)pad, c->ext) != pad) {
        fail(c, PARE_ERR_IO, "writing external data failed");
        return NULL;
    }
    c->ext_off += pad;
    if (v->init->nbytes && !put_bytes(c, c->ext, v->init->data, v->init->nbytes)) {
        fail(c, PARE_ERR_IO, "writing external data failed");
        return NULL;
    }
    char off[32], len[32];
    snprintf(off, sizeof off, "%" PRIu64, c->ext_off);
    snprintf(len, sizeof len, "%zu", v->init->nbytes);
    c->ext_off += v->init->nbytes;
    Onnx__StringStringEntryProto **e = aalloc(&c->ar, 3 * sizeof *e);
    if (!e) {
        fail(c, PARE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    e[0] = kv(c, "location", c->ext_name);
    e[1] = kv(c, "offset", off);
    e[2] = kv(c, "length", len);
    tp->external_data = e;
    tp->n_external_data = 3;
    tp->has_data_location = 1;
    tp->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    tp->has_raw_data = 0;
    tp->raw_data.data = NULL;
    tp->raw_data.len = 0;
    return tp;
}

/* A sparse initializer as COO: the entries whose bytes are not all zero
 * (so -0.0 stays explicit and the dense form comes back bit for bit), in
 * increasing order of their int64 linear index. Always embedded. */
static Onnx__SparseTensorProto *sparse_to_proto(save_ctx *c, pare_value *v)
{
    const Onnx__SparseTensorProto *orig = v->orig_init;
    if (orig && (!v->dirty || (orig->values && orig->values->name &&
                               strcmp(orig->values->name, v->name) == 0)))
        return (Onnx__SparseTensorProto *)orig; /* as loaded (renames aside) */
    pare_error terr;
    const pare_tensor *t = pare_value_tensor(v, &terr);
    if (!t) {
        if (!c->st) {
            c->st = terr.status;
            pare_error_set(c->err, terr.status, "%s", terr.msg);
        }
        return NULL;
    }
    if (t->dtype == PARE_DT_STRING || pare_dtype_bits(t->dtype) < 8) {
        fail(c, PARE_ERR_UNSUPPORTED, "a string or sub-byte initializer cannot be stored sparse");
        return NULL;
    }
    size_t es = (size_t)pare_dtype_bits(t->dtype) / 8;
    size_t n = es ? t->nbytes / es : 0;
    const uint8_t *d = t->data;
    size_t nnz = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *e = d + i * es;
        for (size_t k = 0; k < es; k++)
            if (e[k]) {
                nnz++;
                break;
            }
    }
    Onnx__SparseTensorProto *sp = aalloc(&c->ar, sizeof *sp);
    Onnx__TensorProto *vals = aalloc(&c->ar, sizeof *vals);
    Onnx__TensorProto *idx = aalloc(&c->ar, sizeof *idx);
    int64_t *nnz_dim = aalloc(&c->ar, 2 * sizeof *nnz_dim);
    uint8_t *vd = aalloc(&c->ar, nnz * es);
    int64_t *id = aalloc(&c->ar, nnz * sizeof *id);
    char *name = astrdup(&c->ar, v->name);
    if (!sp || !vals || !idx || !nnz_dim || !vd || !id || !name) {
        fail(c, PARE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *e = d + i * es;
        for (size_t k = 0; k < es; k++)
            if (e[k]) {
                memcpy(vd + j * es, e, es);
                id[j++] = (int64_t)i;
                break;
            }
    }
    nnz_dim[0] = (int64_t)nnz;
    onnx__sparse_tensor_proto__init(sp);
    onnx__tensor_proto__init(vals);
    onnx__tensor_proto__init(idx);
    vals->name = name;
    vals->has_data_type = 1;
    vals->data_type = t->dtype;
    vals->n_dims = 1;
    vals->dims = nnz_dim;
    vals->has_raw_data = 1;
    vals->raw_data.data = vd;
    vals->raw_data.len = nnz * es;
    idx->has_data_type = 1;
    idx->data_type = PARE_DT_INT64;
    idx->n_dims = 1;
    idx->dims = nnz_dim;
    idx->has_raw_data = 1;
    idx->raw_data.data = (uint8_t *)id;
    idx->raw_data.len = nnz * sizeof *id;
    sp->values = vals;
    sp->indices = idx;
    sp->n_dims = (size_t)t->rank;
    sp->dims = t->dims;
    return sp;
}

static Onnx__ValueInfoProto *vi_shell(save_ctx *c, const pare_value *v)
{
    const Onnx__ValueInfoProto *orig = v->orig_vi;
    if (orig && !v->dirty)
        return (Onnx__ValueInfoProto *)orig;
    Onnx__ValueInfoProto *vi = aalloc(&c->ar, sizeof *vi);
    if (!vi) {
        fail(c, PARE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (orig)
        *vi = *orig;
    else
        onnx__value_info_proto__init(vi);
    vi->name = keep_str(c, orig ? orig->name : NULL, v->name);
    if (v->elem_kind != 0 && orig)
        return vi; /* sequences/maps: keep the file's type */
    if (!v->dtype && v->shape.rank < 0) {
        vi->type = NULL;
        return vi;
    }
    Onnx__TypeProto *tp = aalloc(&c->ar, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = aalloc(&c->ar, sizeof *tt);
    if (!tp || !tt) {
        fail(c, PARE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    if (v->dtype) {
        tt->has_elem_type = 1;
        tt->elem_type = v->dtype;
    }
    if (v->shape.rank >= 0) {
        Onnx__TensorShapeProto *sp = aalloc(&c->ar, sizeof *sp);
        Onnx__TensorShapeProto__Dimension **dims =
            aalloc(&c->ar, (size_t)(v->shape.rank ? v->shape.rank : 1) * sizeof *dims);
        if (!sp || !dims) {
            fail(c, PARE_ERR_NOMEM, "out of memory");
            return NULL;
        }
        onnx__tensor_shape_proto__init(sp);
        for (int i = 0; i < v->shape.rank; i++) {
            Onnx__TensorShapeProto__Dimension *d = aalloc(&c->ar, sizeof *d);
            if (!d) {
                fail(c, PARE_ERR_NOMEM, "out of memory");
                return NULL;
            }
            onnx__tensor_shape_proto__dimension__init(d);
            if (v->shape.dims[i].value >= 0) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                d->dim_value = v->shape.dims[i].value;
            } else if (v->shape.dims[i].param) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                d->dim_param = v->shape.dims[i].param;
            }
            dims[i] = d;
        }
        sp->n_dim = (size_t)v->shape.rank;
        sp->dim = dims;
        tt->shape = sp;
    }
    vi->type = tp;
    return vi;
}

static Onnx__GraphProto *graph_to_proto(save_ctx *c, pare_graph *g);

static Onnx__AttributeProto *attr_to_proto(save_ctx *c, pare_attr *a)
{
    Onnx__AttributeProto *orig = a->orig;
    bool has_graph = a->type == PARE_ATTR_GRAPH || a->type == PARE_ATTR_GRAPHS;
    if (orig && !has_graph)
        return orig;
    Onnx__AttributeProto *ap = aalloc(&c->ar, sizeof *ap);
    if (!ap) {
        fail(c, PARE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (orig) {
        *ap = *orig;
        if (a->type == PARE_ATTR_GRAPH && a->g)
            ap->g = graph_to_proto(c, a->g);
        if (a->type == PARE_ATTR_GRAPHS) {
            Onnx__GraphProto **gs = aalloc(&c->ar, (a->n ? a->n : 1) * sizeof *gs);
            if (!gs) {
                fail(c, PARE_ERR_NOMEM, "out of memory");
                return NULL;
            }
            for (size_t i = 0; i < a->n; i++)
                gs[i] = graph_to_proto(c, a->graphs[i]);
            ap->graphs = gs;
            ap->n_graphs = a->n;
        }
        return ap;
    }
    onnx__attribute_proto__init(ap);
    ap->name = a->name;
    ap->has_type = 1;
    ap->type = (Onnx__AttributeProto__AttributeType)a->type;
    switch (a->type) {
    case PARE_ATTR_FLOAT:
        ap->has_f = 1;
        ap->f = a->f;
        break;
    case PARE_ATTR_INT:
        ap->has_i = 1;
        ap->i = a->i;
        break;
    case PARE_ATTR_STRING:
        ap->has_s = 1;
        ap->s.data = (uint8_t *)a->s.data;
        ap->s.len = a->s.len;
        break;
    case PARE_ATTR_TENSOR:
        ap->t = tensor_shell(c, a->t, NULL);
        break;
    case PARE_ATTR_GRAPH:
        ap->g = graph_to_proto(c, a->g);
        break;
    case PARE_ATTR_FLOATS:
        ap->n_floats = a->n;
        ap->floats = a->floats;
        break;
    case PARE_ATTR_INTS:
        ap->n_ints = a->n;
        ap->ints = a->ints;
        break;
    case PARE_ATTR_STRINGS: {
        ProtobufCBinaryData *ss = aalloc(&c->ar, (a->n ? a->n : 1) * sizeof *ss);
        if (!ss) {
            fail(c, PARE_ERR_NOMEM, "out of memory");
            return NULL;
        }
        for (size_t i = 0; i < a->n; i++) {
            ss[i].data = (uint8_t *)a->strings[i].data;
            ss[i].len = a->strings[i].len;
        }
        ap->n_strings = a->n;
        ap->strings = ss;
        break;
    }
    case PARE_ATTR_TENSORS: {
        Onnx__TensorProto **ts = aalloc(&c->ar, (a->n ? a->n : 1) * sizeof *ts);
        if (!ts) {
            fail(c, PARE_ERR_NOMEM, "out of memory");
            return NULL;
        }
        for (size_t i = 0; i < a->n; i++)
            ts[i] = tensor_shell(c, a->tensors[i], NULL);
        ap->n_tensors = a->n;
        ap->tensors = ts;
        break;
    }
    case PARE_ATTR_GRAPHS: {
        Onnx__GraphProto **gs = aalloc(&c->ar, (a->n ? a->n : 1) * sizeof *gs);
        if (!gs) {
            fail(c, PARE_ERR_NOMEM, "out of memory");
            return NULL;
        }
        for (size_t i = 0; i < a->n; i++)
            gs[i] = graph_to_proto(c, a->graphs[i]);
        ap->n_graphs = a->n;
        ap->graphs = gs;
        break;
    }
    default:
        break;
    }
    return ap;
}

static bool attr_has_graph(const pare_node *n)
{
    for (size_t i = 0; i < n->n_attrs; i++)
        if (n->attrs[i].type == PARE_ATTR_GRAPH || n->attrs[i].type == PARE_ATTR_GRAPHS)
            return true;
    return false;
}

static bool node_matches_orig(const pare_node *n)
{
    const Onnx__NodeProto *o = n->orig;
    if (!o || n->dirty || o->n_input != n->n_inputs || o->n_output != n->n_outputs ||
        o->n_attribute != n->n_attrs)
        return false;
    for (size_t i = 0; i < n->n_inputs; i++) {
        const char *now = n->inputs[i] ? n->inputs[i]->name : "";
        if (strcmp(o->input[i] ? o->input[i] : "", now) != 0)
            return false;
    }
    for (size_t i = 0; i < n->n_outputs; i++) {
        const char *now = n->outputs[i] ? n->outputs[i]->name : "";
        if (strcmp(o->output[i] ? o->output[i] : "", now) != 0)
            return false;
    }
    for (size_t i = 0; i < n->n_attrs; i++)
        if (n->attrs[i].orig != o->attribute[i])
            return false;
    return true;
}

static Onnx__NodeProto *node_to_proto(save_ctx *c, pare_node *n)
{
    const Onnx__NodeProto *orig = n->orig;
    if (node_matches_orig(n) && !attr_has_graph(n))
        return (Onnx__NodeProto *)orig;
    Onnx__NodeProto *np = aalloc(&c->ar, sizeof *np);
    char **in = aalloc(&c->ar, (n->n_inputs ? n->n_inputs : 1) * sizeof *in);
    char **out = aalloc(&c->ar, (n->n_outputs ? n->n_outputs : 1) * sizeof *out);
    Onnx__AttributeProto **at = aalloc(&c->ar, (n->n_attrs ? n->n_attrs : 1) * sizeof *at);
    if (!np || !in || !out || !at) {
        fail(c, PARE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (orig)
        *np = *orig;
    else
        onnx__node_proto__init(np);
    static char empty[] = "";
    for (size_t i = 0; i < n->n_inputs; i++)
        in[i] = n->inputs[i] ? n->inputs[i]->name : empty;
    for (size_t i = 0; i < n->n_outputs; i++)
        out[i] = n->outputs[i] ? n->outputs[i]->name : empty;
    for (size_t i = 0; i < n->n_attrs; i++)
        at[i] = attr_to_proto(c, &n->attrs[i]);
    np->n_input = n->n_inputs;
    np->input = in;
    np->n_output = n->n_outputs;
    np->output = out;
    np->n_attribute = n->n_attrs;
    np->attribute = at;
    np->name = keep_str(c, orig ? orig->name : NULL, n->name);
    np->op_type = keep_str(c, orig ? orig->op_type : NULL, n->op_type);
    if (orig && orig->domain && strcmp(orig->domain, "ai.onnx") == 0 && !*n->domain)
        np->domain = orig->domain;
    else
        np->domain = keep_str(c, orig ? orig->domain : NULL, n->domain);
    if (!orig && n->doc)
        np->doc_string = n->doc;
    return np;
}

static Onnx__GraphProto *graph_to_proto(save_ctx *c, pare_graph *g)
{
    const Onnx__GraphProto *orig = g->orig;
    Onnx__GraphProto *gp = aalloc(&c->ar, sizeof *gp);
    if (!gp) {
        fail(c, PARE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (orig)
        *gp = *orig;
    else
        onnx__graph_proto__init(gp);
    gp->name = keep_str(c, orig ? orig->name : NULL, g->name);

    Onnx__NodeProto **nodes = aalloc(&c->ar, (g->n_nodes ? g->n_nodes : 1) * sizeof *nodes);
    size_t n_init = 0, n_sparse = 0;
    for (size_t i = 0; i < g->n_values; i++) {
        pare_value *v = g->values[i];
        if (v->is_sparse_init)
            n_sparse++;
        else if (v->init)
            n_init++;
    }
    Onnx__TensorProto **inits = aalloc(&c->ar, (n_init ? n_init : 1) * sizeof *inits);
    Onnx__SparseTensorProto **sparse = aalloc(&c->ar, (n_sparse ? n_sparse : 1) * sizeof *sparse);
    Onnx__ValueInfoProto **ins = aalloc(&c->ar, (g->n_inputs ? g->n_inputs : 1) * sizeof *ins);
    Onnx__ValueInfoProto **outs = aalloc(&c->ar, (g->n_outputs ? g->n_outputs : 1) * sizeof *outs);
    size_t n_vi_orig = orig ? orig->n_value_info : 0;
    Onnx__ValueInfoProto **vis = aalloc(&c->ar, (n_vi_orig ? n_vi_orig : 1) * sizeof *vis);
    if (!nodes || !inits || !sparse || !ins || !outs || !vis) {
        fail(c, PARE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < g->n_nodes; i++)
        nodes[i] = node_to_proto(c, g->nodes[i]);
    size_t ki = 0, ks = 0;
    for (size_t i = 0; i < g->n_values; i++) {
        pare_value *v = g->values[i];
        if (v->is_sparse_init)
            sparse[ks++] = sparse_to_proto(c, v);
        else if (v->init)
            inits[ki++] = init_to_proto(c, v);
    }
    for (size_t i = 0; i < g->n_inputs; i++)
        ins[i] = vi_shell(c, g->inputs[i]);
    for (size_t i = 0; i < g->n_outputs; i++)
        outs[i] = vi_shell(c, g->outputs[i]);
    size_t kv_ = 0;
    for (size_t i = 0; i < n_vi_orig; i++) {
        Onnx__ValueInfoProto *vi = orig->value_info[i];
        pare_value *v = pare__graph_index_get(g, vi->name ? vi->name : "");
        if (!v) {
            if (!g->dirty)
                vis[kv_++] = vi; /* a value_info the IR does not model: keep it */
            continue;
        }
        if (v->orig_vi == vi && !v->dirty)
            vis[kv_++] = vi;
        else if (v->orig_vi == vi || (!v->is_input && !v->is_output))
            vis[kv_++] = vi_shell(c, v);
        else
            vis[kv_++] = vi;
    }
    gp->n_node = g->n_nodes;
    gp->node = nodes;
    gp->n_initializer = ki;
    gp->initializer = inits;
    gp->n_sparse_initializer = ks;
    gp->sparse_initializer = sparse;
    gp->n_input = g->n_inputs;
    gp->input = ins;
    gp->n_output = g->n_outputs;
    gp->output = outs;
    gp->n_value_info = kv_;
    gp->value_info = vis;
    return gp;
}

static Onnx__ModelProto *model_to_proto(save_ctx *c, pare_model *m)
{
    Onnx__ModelProto *mp = aalloc(&c->ar, sizeof *mp);
    if (!mp) {
        fail(c, PARE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    *mp = *m->proto;
    if (m->opsets_dirty) {
        Onnx__OperatorSetIdProto **ops = aalloc(&c->ar, (m->n_opsets ? m->n_opsets : 1) *
                                                            sizeof *ops);
        if (!ops) {
            fail(c, PARE_ERR_NOMEM, "out of memory");
            return NULL;
        }
        for (size_t i = 0; i < m->n_opsets; i++) {
            Onnx__OperatorSetIdProto *o = NULL;
            for (size_t k = 0; k < m->proto->n_opset_import; k++) {
                const char *d = m->proto->opset_import[k]->domain;
                if (strcmp(d && strcmp(d, "ai.onnx") ? d : "", m->opsets[i].domain) == 0 &&
                    m->proto->opset_import[k]->version == m->opsets[i].version)
                    o = m->proto->opset_import[k];
            }
            if (!o) {
                o = aalloc(&c->ar, sizeof *o);
                if (!o) {
                    fail(c, PARE_ERR_NOMEM, "out of memory");
                    return NULL;
                }
                onnx__operator_set_id_proto__init(o);
                o->domain = m->opsets[i].domain;
                o->has_version = 1;
                o->version = m->opsets[i].version;
            }
            ops[i] = o;
        }
        mp->opset_import = ops;
        mp->n_opset_import = m->n_opsets;
    }
    mp->graph = graph_to_proto(c, m->graph);
    return mp;
}

/* ---- streaming output ---- */

typedef struct file_buffer {
    ProtobufCBuffer base;
    save_ctx *c;
    FILE *f;
    z_stream *zs;
    uint8_t *zbuf;
    bool failed;
} file_buffer;

static void fb_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
    file_buffer *fb = (file_buffer *)b;
    if (fb->failed || len == 0)
        return;
    if (!fb->zs) {
        if (!put_bytes(fb->c, fb->f, data, len))
            fb->failed = true;
        return;
    }
    while (len) {
        uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
        fb->zs->next_in = (Bytef *)data;
        fb->zs->avail_in = chunk;
        while (fb->zs->avail_in) {
            fb->zs->next_out = fb->zbuf;
            fb->zs->avail_out = 1 << 16;
            deflate(fb->zs, Z_NO_FLUSH);
            size_t have = (1 << 16) - fb->zs->avail_out;
            if (have && fwrite(fb->zbuf, 1, have, fb->f) != have) {
                fb->failed = true;
                return;
            }
        }
        data += chunk;
        len -= chunk;
    }
}

static bool fb_finish(file_buffer *fb)
{
    if (!fb->zs || fb->failed)
        return !fb->failed;
    int rc;
    do {
        fb->zs->next_out = fb->zbuf;
        fb->zs->avail_out = 1 << 16;
        rc = deflate(fb->zs, Z_FINISH);
        size_t have = (1 << 16) - fb->zs->avail_out;
        if (have && fwrite(fb->zbuf, 1, have, fb->f) != have)
            return false;
    } while (rc == Z_OK);
    return rc == Z_STREAM_END;
}

static pare_status write_message(save_ctx *c, FILE *f, const ProtobufCMessage *msg,
                                 const pare_save_opts *o, pare_error *err)
{
    file_buffer fb;
    memset(&fb, 0, sizeof fb);
    fb.base.append = fb_append;
    fb.c = c;
    fb.f = f;
    z_stream zs;
    if (o->gzip) {
        memset(&zs, 0, sizeof zs);
        /* windowBits 31: gzip wrapper with mtime 0 and no name: deterministic */
        if (deflateInit2(&zs, o->gzip_level > 0 && o->gzip_level <= 9 ? o->gzip_level : 6,
                         Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return PARE_NOMEM(err);
        fb.zs = &zs;
        fb.zbuf = malloc(1 << 16);
        if (!fb.zbuf) {
            deflateEnd(&zs);
            return PARE_NOMEM(err);
        }
    }
    protobuf_c_message_pack_to_buffer(msg, &fb.base);
    bool ok = fb_finish(&fb);
    if (o->gzip) {
        deflateEnd(&zs);
        free(fb.zbuf);
    }
    if (!ok || fflush(f) != 0 || ferror(f))
        return pare_error_set(err, PARE_ERR_IO, "write failed: %s", strerror(errno ? errno : EIO));
    return PARE_OK;
}

/* temporary file beside target: "<dir>/.<base>.XXXXXX" */
static FILE *open_temp(const char *target, char *tmp, size_t size, pare_error *err)
{
    const char *slash = strrchr(target, '/');
    int n;
    if (slash)
        n = snprintf(tmp, size, "%.*s/.%s.XXXXXX", (int)(slash - target), target, slash + 1);
    else
        n = snprintf(tmp, size, ".%s.XXXXXX", target);
    if (n < 0 || (size_t)n >= size) {
        pare_error_set(err, PARE_ERR_IO, "output path too long");
        return NULL;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        pare_error_set(err, PARE_ERR_IO, "cannot create a temporary file beside '%s': %s", target,
                       strerror(errno));
        return NULL;
    }
    mode_t um = umask(0);
    umask(um);
    fchmod(fd, 0666 & ~um);
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        pare_error_set(err, PARE_ERR_IO, "fdopen: %s", strerror(errno));
    }
    return f;
}

bool pare_io_durable(void)
{
    const char *e = getenv("PARE_FSYNC");
    return e && *e && strcmp(e, "0") != 0;
}

/* fsync of the folder holding path, so that a rename into it is durable */
static void sync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd); /* best effort: some filesystems refuse it on folders */
        close(fd);
    }
}

static pare_status close_and_rename(FILE *f, const char *tmp, const char *target, bool durable,
                                    pare_error *err)
{
    if (fflush(f) != 0 || ferror(f) ||
        (durable && fsync(fileno(f)) != 0 && errno != EINVAL && errno != EROFS)) {
        int e = errno;
        fclose(f);
        unlink(tmp);
        return pare_error_set(err, PARE_ERR_IO, "write failed: %s", strerror(e));
    }
    if (fclose(f) != 0) {
        unlink(tmp);
        return pare_error_set(err, PARE_ERR_IO, "write failed: %s", strerror(errno));
    }
    if (rename(tmp, target) != 0) {
        int e = errno;
        unlink(tmp);
        return pare_error_set(err, PARE_ERR_IO, "cannot rename to '%s': %s", target, strerror(e));
    }
    if (durable)
        sync_dir_of(target);
    return PARE_OK;
}

pare_status pare_model_save(pare_model *m, const char *path, const pare_save_opts *opts,
                            pare_error *err)
{
    pare_save_opts o = PARE_SAVE_OPTS_INIT;
    if (opts)
        o = *opts;
    bool to_stdout = strcmp(path, "-") == 0;
    save_ctx c;
    memset(&c, 0, sizeof c);
    c.opts = &o;
    c.err = err;
    c.m = m;
    c.ext_allowed = !to_stdout;

    /* external file name: "<output name>.data" unless given */
    char ext_name[PATH_MAX], ext_path[PATH_MAX], ext_tmp[PATH_MAX], tmp[PATH_MAX];
    if (!to_stdout) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (o.external_name) {
            if (strchr(o.external_name, '/') || strcmp(o.external_name, "..") == 0 ||
                strcmp(o.external_name, ".") == 0 || !*o.external_name)
                return pare_error_set(err, PARE_ERR_ARG, "external data name '%s' must be a "
                                      "plain file name", o.external_name);
            snprintf(ext_name, sizeof ext_name, "%s", o.external_name);
        } else {
            snprintf(ext_name, sizeof ext_name, "%s.data", base);
        }
        const char *slash = strrchr(path, '/');
        int w = slash ? snprintf(ext_path, sizeof ext_path, "%.*s/%s", (int)(slash - path), path,
                                 ext_name)
                      : snprintf(ext_path, sizeof ext_path, "%s", ext_name);
        if (w < 0 || (size_t)w >= sizeof ext_path)
            return pare_error_set(err, PARE_ERR_ARG, "output path too long");
        c.ext_name = ext_name;
    }

    /* pass 1: build shells to learn whether external data is needed */
    Onnx__ModelProto *mp = model_to_proto(&c, m);
    if (c.st || !mp) {
        arena_free(&c.ar);
        return c.st ? c.st : PARE_NOMEM(err);
    }
    bool need_ext = c.need_ext;
    bool durable = o.durable || pare_io_durable();
    FILE *ext = NULL;
    if (need_ext) {
        arena_free(&c.ar);
        memset(&c.ar, 0, sizeof c.ar);
        ext = open_temp(ext_path, ext_tmp, sizeof ext_tmp, err);
        if (!ext)
            return err->status;
        c.ext = ext;
        mp = model_to_proto(&c, m);
        if (c.st || !mp) {
            fclose(ext);
            unlink(ext_tmp);
            close_source_fds(&c);
            arena_free(&c.ar);
            return c.st ? c.st : PARE_NOMEM(err);
        }
    } else if (protobuf_c_message_get_packed_size(&mp->base) > (size_t)INT32_MAX) {
        arena_free(&c.ar);
        return pare_error_set(err, PARE_ERR_LIMIT,
                              "the model is over 2 GiB, the most a protobuf file can hold: store "
                              "its weights as external data");
    }
    pare_status st;
    if (to_stdout) {
        st = write_message(&c, stdout, &mp->base, &o, err);
    } else {
        FILE *f = open_temp(path, tmp, sizeof tmp, err);
        if (!f) {
            st = err->status;
        } else {
            st = write_message(&c, f, &mp->base, &o, err);
            if (st) {
                fclose(f);
                unlink(tmp);
            } else {
                if (ext) {
                    st = close_and_rename(ext, ext_tmp, ext_path, durable, err);
                    ext = NULL;
                }
                if (st) {
                    fclose(f);
                    unlink(tmp);
                } else {
                    st = close_and_rename(f, tmp, path, durable, err);
                }
            }
        }
    }
    if (ext) {
        fclose(ext);
        unlink(ext_tmp);
    }
    close_source_fds(&c);
    arena_free(&c.ar);
    return st;
}

pare_status pare_model_save_buffer(pare_model *m, void **buf, size_t *len, pare_error *err)
{
    pare_save_opts o = PARE_SAVE_OPTS_INIT;
    o.external_threshold = INT64_MAX; /* embed everything */
    save_ctx c;
    memset(&c, 0, sizeof c);
    c.opts = &o;
    c.err = err;
    Onnx__ModelProto *mp = model_to_proto(&c, m);
    if (c.st || !mp) {
        arena_free(&c.ar);
        return c.st ? c.st : PARE_NOMEM(err);
    }
    size_t n = protobuf_c_message_get_packed_size(&mp->base);
    uint8_t *b = malloc(n ? n : 1);
    if (!b) {
        arena_free(&c.ar);
        return PARE_NOMEM(err);
    }
    protobuf_c_message_pack(&mp->base, b);
    arena_free(&c.ar);
    *buf = b;
    *len = n;
    return PARE_OK;
}
