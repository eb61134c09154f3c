/* Included from kernels_shape.c: indexing ops (Gather*, Scatter*, OneHot, NonZero,
 * Compress, Unique) and generators (Range, EyeLike, Trilu, ReverseSequence). */

/* Reads, normalises and checks n indices against dim into out. */
static pare_status sh_norm_indices(const pare_tensor *t, int64_t dim, int64_t *out,
                                   pare_error *err)
{
    if (!sh_is_index_type(t->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "indices must be int32 or int64, not %s",
                              pare_dtype_name(t->dtype));
    int64_t n = sh_numel(t);
    bool is64 = t->dtype == PARE_DT_INT64;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = sh_idx(t->data, is64, i);
        if (v < -dim || v >= dim)
            return sh_index_error(v, dim, err);
        out[i] = v < 0 ? v + dim : v;
    }
    return PARE_OK;
}

static pare_status sh_index_buf(const pare_tensor *t, int64_t **out, pare_error *err)
{
    int64_t n = sh_numel(t);
    *out = malloc((size_t)(n ? n : 1) * sizeof **out);
    return *out ? PARE_OK : sh_nomem(err);
}

/* ------------------------------------------------------------------ */
/* Gather                                                               */

typedef struct gather_job {
    const char *src;
    char *dst;
    const int64_t *idx;
    int64_t n_idx, dim, inner, es;
} gather_job;

static void gather_rows(void *ctx, int64_t b, int64_t e)
{
    const gather_job *j = ctx;
    size_t bytes = (size_t)(j->inner * j->es);
#define GATHER_LOOP(NB)                                                          \
    for (int64_t u = b; u < e; u++) {                                            \
        int64_t o = u / j->n_idx, i = u % j->n_idx;                              \
        memcpy(j->dst + u * j->inner * j->es,                                    \
               j->src + (o * j->dim + j->idx[i]) * j->inner * j->es, (NB));      \
    }
    switch (bytes) {
    case 1: GATHER_LOOP(1); break;
    case 2: GATHER_LOOP(2); break;
    case 4: GATHER_LOOP(4); break;
    case 8: GATHER_LOOP(8); break;
    default: GATHER_LOOP(bytes); break;
    }
#undef GATHER_LOOP
}

SH_ANY_DTYPE(gather)
static pare_status gather_impl(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const axis_state *s = k->state;
    const pare_tensor *x = k->in[0], *it = sh_in(k, 1);
    if (!it)
        return pare_error_set(err, PARE_ERR_INVALID, "Gather needs indices");
    int ax;
    if (x->rank == 0)
        return pare_error_set(err, PARE_ERR_INVALID, "cannot gather from a scalar");
    pare_status st = sh_axis(s->axis, x->rank, &ax, "axis", err);
    if (st)
        return st;
    int r = x->rank - 1 + it->rank;
    if (r > PARE_MAX_RANK)
        return pare_error_set(err, PARE_ERR_LIMIT, "output rank %d too large", r);
    int64_t dims[PARE_MAX_RANK], *idx;
    int d = 0;
    for (int i = 0; i < ax; i++)
        dims[d++] = x->dims[i];
    for (int i = 0; i < it->rank; i++)
        dims[d++] = it->dims[i];
    for (int i = ax + 1; i < x->rank; i++)
        dims[d++] = x->dims[i];
    if ((st = sh_index_buf(it, &idx, err)))
        return st;
    if ((st = sh_norm_indices(it, x->dims[ax], idx, err))) {
        free(idx);
        return st;
    }
    pare_tensor *o;
    if ((st = sh_alloc(k, 0, x->dtype, r, dims, &o, err))) {
        free(idx);
        return st;
    }
    gather_job j = {.src = x->data, .dst = o->data, .idx = idx, .n_idx = sh_numel(it),
                    .dim = x->dims[ax], .inner = sh_prod(x->dims, ax + 1, x->rank),
                    .es = (int64_t)sh_esize(x->dtype)};
    int64_t units = sh_prod(x->dims, 0, ax) * j.n_idx;
    if (units > 0 && j.inner > 0)
        pare_parallel_for(k->pool, units, j.inner >= SH_GRAIN ? 1 : SH_GRAIN / j.inner,
                          gather_rows, &j);
    free(idx);
    return sh_finish(o, err);
}

/* ------------------------------------------------------------------ */
/* GatherElements, ScatterElements, Scatter                              */

/* Checks that indices (same rank as data) fit data on every axis but `ax`. */
static pare_status sh_elems_shape(const pare_tensor *x, const pare_tensor *it, int ax,
                                  pare_error *err)
{
    char b1[256], b2[256];
    bool ok = it->rank == x->rank;
    for (int d = 0; ok && d < x->rank; d++)
        ok = d == ax || it->dims[d] <= x->dims[d];
    if (!ok)
        return pare_error_set(err, PARE_ERR_INVALID, "indices %s do not fit data %s",
                              sh_dims(it->rank, it->dims, b1, sizeof b1),
                              sh_dims(x->rank, x->dims, b2, sizeof b2));
    return PARE_OK;
}

/* Offset in data (elements) of each index element (i.e. the element it addresses). */
static pare_status sh_elems_offsets(const pare_tensor *x, const pare_tensor *it, int ax,
                                    int64_t *off, pare_error *err)
{
    int r = x->rank;
    int64_t xs[PARE_MAX_RANK], c[PARE_MAX_RANK] = {0};
    sh_strides(r, x->dims, xs);
    int64_t n = sh_numel(it), dim = x->dims[ax];
    bool is64 = it->dtype == PARE_DT_INT64;
    if (!sh_is_index_type(it->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "indices must be int32 or int64, not %s",
                              pare_dtype_name(it->dtype));
    int64_t base = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = sh_idx(it->data, is64, i);
        if (v < -dim || v >= dim)
            return sh_index_error(v, dim, err);
        if (v < 0)
            v += dim;
        off[i] = base + v * xs[ax];
        for (int d = r - 1; d >= 0; d--) {
            if (d != ax)
                base += xs[d];
            if (++c[d] < it->dims[d])
                break;
            if (d != ax)
                base -= xs[d] * it->dims[d];
            c[d] = 0;
        }
    }
    return PARE_OK;
}

SH_ANY_DTYPE(gather_elements)
static pare_status gather_elements_impl(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const axis_state *s = k->state;
    const pare_tensor *x = k->in[0], *it = sh_in(k, 1);
    int ax;
    if (!it)
        return pare_error_set(err, PARE_ERR_INVALID, "GatherElements needs indices");
    if (x->rank == 0)
        return pare_error_set(err, PARE_ERR_INVALID, "data must have rank >= 1");
    pare_status st = sh_axis(s->axis, x->rank, &ax, "axis", err);
    if (st || (st = sh_elems_shape(x, it, ax, err)))
        return st;
    int64_t *off;
    if ((st = sh_index_buf(it, &off, err)))
        return st;
    pare_tensor *o = NULL;
    if (!(st = sh_elems_offsets(x, it, ax, off, err)) &&
        !(st = sh_alloc(k, 0, x->dtype, it->rank, it->dims, &o, err))) {
        size_t es = sh_esize(x->dtype);
        int64_t n = sh_numel(it);
        for (int64_t i = 0; i < n; i++)
            memcpy((char *)o->data + (size_t)i * es, (const char *)x->data + (size_t)off[i] * es,
                   es);
        st = sh_finish(o, err);
    }
    free(off);
    return st;
}

enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

typedef struct scatter_state {
    int64_t axis;
    int red;
} scatter_state;

static pare_status scatter_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    scatter_state *s = calloc(1, sizeof *s);
    if (!s)
        return sh_nomem(err);
    *state = s;
    s->axis = pare_node_attr_int(n, "axis", 0);
    const char *r = pare_node_attr_string(n, "reduction", "none");
    if (strcmp(r, "none") == 0)
        s->red = RED_NONE;
    else if (strcmp(r, "add") == 0)
        s->red = RED_ADD;
    else if (strcmp(r, "mul") == 0)
        s->red = RED_MUL;
    else if (strcmp(r, "max") == 0)
        s->red = RED_MAX;
    else if (strcmp(r, "min") == 0)
        s->red = RED_MIN;
    else
        return pare_error_set(err, PARE_ERR_INVALID, "unknown reduction '%s'", r);
    return PARE_OK;
}

/* dst[i] = red(dst[i], src[i]) for n elements of dtype (dst aligned, src may not be). */
static pare_status sh_combine(int dtype, int red, void *dst, const void *src, int64_t n,
                              pare_error *err)
{
    switch (dtype) {
#define SH_COMB(DT, T, ACC, LD, STA, STD, ISF)                                  \
    case DT: {                                                                  \
        T *d = dst;                                                             \
        for (int64_t i = 0; i < n; i++) {                                       \
            T bv;                                                               \
            memcpy(&bv, (const char *)src + i * (int64_t)sizeof(T), sizeof(T)); \
            ACC a = LD(d[i]), b = LD(bv), r;                                    \
            switch (red) {                                                      \
            case RED_ADD: r = SH_ADD(a, b); break;                              \
            case RED_MUL: r = SH_MUL(a, b); break;                              \
            case RED_MAX: r = (b > a || sh_isnan((double)b)) ? b : a; break;    \
            default: r = (b < a || sh_isnan((double)b)) ? b : a; break;         \
            }                                                                   \
            d[i] = STA(r);                                                      \
        }                                                                       \
        return PARE_OK;                                                         \
    }
        SH_NUMB_TYPES(SH_COMB)
#undef SH_COMB
    default:
        return sh_bad_dtype(dtype, "scatter reduction", err);
    }
}

SH_ANY_DTYPE(scatter_elements)
static pare_status scatter_elements_impl(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const scatter_state *s = k->state;
    const pare_tensor *x = k->in[0], *it = sh_in(k, 1), *up = sh_in(k, 2);
    int ax;
    char b1[256], b2[256];
    if (!it || !up)
        return pare_error_set(err, PARE_ERR_INVALID, "scatter needs indices and updates");
    if (x->rank == 0)
        return pare_error_set(err, PARE_ERR_INVALID, "data must have rank >= 1");
    pare_status st = sh_axis(s->axis, x->rank, &ax, "axis", err);
    if (st || (st = sh_elems_shape(x, it, ax, err)))
        return st;
    bool same = up->rank == it->rank && up->dtype == x->dtype;
    for (int d = 0; same && d < it->rank; d++)
        same = up->dims[d] == it->dims[d];
    if (!same)
        return pare_error_set(err, PARE_ERR_INVALID, "updates %s %s do not match indices %s",
                              pare_dtype_name(up->dtype), sh_dims(up->rank, up->dims, b1, sizeof b1),
                              sh_dims(it->rank, it->dims, b2, sizeof b2));
    if (s->red != RED_NONE && !sh_is_num(x->dtype) && x->dtype != PARE_DT_BOOL)
        return sh_bad_dtype(x->dtype, "scatter reduction", err);
    int64_t *off;
    if ((st = sh_index_buf(it, &off, err)))
        return st;
    pare_tensor *o = NULL;
    if (!(st = sh_elems_offsets(x, it, ax, off, err)) &&
        !(st = sh_alloc(k, 0, x->dtype, x->rank, x->dims, &o, err))) {
        size_t es = sh_esize(x->dtype);
        int64_t n = sh_numel(it);
        sh_memcpy(o->data, x->data, x->nbytes);
        if (x->dtype == PARE_DT_STRING) {
            /* duplicates: the last write wins, so own only what survives */
            pare_string *os = o->data;
            const pare_string *us = up->data;
            for (int64_t i = 0; i < n; i++)
                os[off[i]] = us[i];
            st = sh_finish(o, err);
        } else {
            for (int64_t i = 0; i < n && !st; i++) {
                char *d = (char *)o->data + (size_t)off[i] * es;
                const char *u = (const char *)up->data + (size_t)i * es;
                if (s->red == RED_NONE)
                    memcpy(d, u, es);
                else
                    st = sh_combine(x->dtype, s->red, d, u, 1, err);
            }
        }
    }
    free(off);
    return st;
}

/* ------------------------------------------------------------------ */
/* GatherND, ScatterND                                                  */

typedef struct nd_geom {
    int64_t batches, tuples, m, slice, batch_size;
    int64_t *off; /* batches*tuples offsets (elements) into data */
} nd_geom;

/* Resolves the index tuples of GatherND/ScatterND with b batch dims. */
static pare_status nd_offsets(const pare_tensor *x, const pare_tensor *it, int b, nd_geom *g,
                              pare_error *err)
{
    char b1[256], b2[256];
    if (!sh_is_index_type(it->dtype))
        return pare_error_set(err, PARE_ERR_INVALID, "indices must be int32 or int64, not %s",
                              pare_dtype_name(it->dtype));
    if (it->rank < 1 || b < 0 || b >= it->rank || b >= x->rank)
        return pare_error_set(err, PARE_ERR_INVALID, "bad ranks: data %d, indices %d, batch_dims %d",
                              x->rank, it->rank, b);
    int64_t m = it->dims[it->rank - 1];
    if (m > x->rank - b)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "index tuples of length %lld exceed data rank %d - batch_dims %d",
                              (long long)m, x->rank, b);
    for (int i = 0; i < b; i++)
        if (it->dims[i] != x->dims[i])
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "batch dims differ: indices %s, data %s",
                                  sh_dims(it->rank, it->dims, b1, sizeof b1),
                                  sh_dims(x->rank, x->dims, b2, sizeof b2));
    g->m = m;
    g->batches = sh_prod(x->dims, 0, b);
    g->tuples = sh_prod(it->dims, b, it->rank - 1);
    g->slice = sh_prod(x->dims, b + (int)m, x->rank);
    g->batch_size = sh_prod(x->dims, b, x->rank);
    int64_t n = g->batches * g->tuples;
    g->off = malloc((size_t)(n ? n : 1) * sizeof *g->off);
    if (!g->off)
        return sh_nomem(err);
    int64_t xs[PARE_MAX_RANK];
    sh_strides(x->rank, x->dims, xs);
    bool is64 = it->dtype == PARE_DT_INT64;
    for (int64_t t = 0; t < n; t++) {
        int64_t o = (t / (g->tuples ? g->tuples : 1)) * g->batch_size;
        for (int64_t j = 0; j < m; j++) {
            int64_t dim = x->dims[b + j], v = sh_idx(it->data, is64, t * m + j);
            if (v < -dim || v >= dim) {
                free(g->off);
                g->off = NULL;
                return sh_index_error(v, dim, err);
            }
            o += (v < 0 ? v + dim : v) * xs[b + j];
        }
        g->off[t] = o;
    }
    return PARE_OK;
}

typedef struct gnd_state {
    int64_t batch_dims;
    int red;
} gnd_state;

static pare_status gnd_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    pare_status st = scatter_init(n, opset, state, err);
    if (st)
        return st;
    scatter_state *s = *state;
    s->axis = pare_node_attr_int(n, "batch_dims", 0);
    return PARE_OK;
}

SH_ANY_DTYPE(gather_nd)
static pare_status gather_nd_impl(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const scatter_state *s = k->state;
    const pare_tensor *x = k->in[0], *it = sh_in(k, 1);
    if (!it)
        return pare_error_set(err, PARE_ERR_INVALID, "GatherND needs indices");
    if (s->axis < 0 || s->axis > PARE_MAX_RANK)
        return pare_error_set(err, PARE_ERR_INVALID, "bad batch_dims %lld", (long long)s->axis);
    nd_geom g;
    pare_status st = nd_offsets(x, it, (int)s->axis, &g, err);
    if (st)
        return st;
    int64_t dims[PARE_MAX_RANK];
    int r = 0;
    for (int i = 0; i < it->rank - 1; i++)
        dims[r++] = it->dims[i];
    for (int i = (int)s->axis + (int)g.m; i < x->rank; i++) {
        if (r >= PARE_MAX_RANK) {
            free(g.off);
            return pare_error_set(err, PARE_ERR_LIMIT, "output rank too large");
        }
        dims[r++] = x->dims[i];
    }
    pare_tensor *o;
    if (!(st = sh_alloc(k, 0, x->dtype, r, dims, &o, err))) {
        size_t es = sh_esize(x->dtype), bytes = (size_t)g.slice * es;
        int64_t n = g.batches * g.tuples;
        for (int64_t t = 0; t < n; t++)
            sh_memcpy((char *)o->data + (size_t)t * bytes,
                      (const char *)x->data + (size_t)g.off[t] * es, bytes);
        st = sh_finish(o, err);
    }
    free(g.off);
    return st;
}

SH_ANY_DTYPE(scatter_nd)
static pare_status scatter_nd_impl(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const scatter_state *s = k->state;
    const pare_tensor *x = k->in[0], *it = sh_in(k, 1), *up = sh_in(k, 2);
    char b1[256], b2[256];
    if (!it || !up)
        return pare_error_set(err, PARE_ERR_INVALID, "ScatterND needs indices and updates");
    nd_geom g;
    pare_status st = nd_offsets(x, it, 0, &g, err);
    if (st)
        return st;
    /* updates: indices.shape[:-1] + data.shape[m:] */
    bool ok = up->dtype == x->dtype && up->rank == it->rank - 1 + x->rank - (int)g.m;
    for (int i = 0; ok && i < it->rank - 1; i++)
        ok = up->dims[i] == it->dims[i];
    for (int i = 0; ok && i < x->rank - (int)g.m; i++)
        ok = up->dims[it->rank - 1 + i] == x->dims[g.m + i];
    if (!ok) {
        free(g.off);
        return pare_error_set(err, PARE_ERR_INVALID,
                              "updates %s %s do not match indices %s and data %s",
                              pare_dtype_name(up->dtype), sh_dims(up->rank, up->dims, b1, sizeof b1),
                              sh_dims(it->rank, it->dims, b2, sizeof b2),
                              pare_dtype_name(x->dtype));
    }
    if (s->red != RED_NONE && !sh_is_num(x->dtype) && x->dtype != PARE_DT_BOOL) {
        free(g.off);
        return sh_bad_dtype(x->dtype, "scatter reduction", err);
    }
    pare_tensor *o;
    if (!(st = sh_alloc(k, 0, x->dtype, x->rank, x->dims, &o, err))) {
        size_t es = sh_esize(x->dtype), bytes = (size_t)g.slice * es;
        sh_memcpy(o->data, x->data, x->nbytes);
        for (int64_t t = 0; t < g.tuples && !st; t++) {
            char *d = (char *)o->data + (size_t)g.off[t] * es;
            const char *u = (const char *)up->data + (size_t)t * bytes;
            if (s->red == RED_NONE)
                sh_memcpy(d, u, bytes);
            else
                st = sh_combine(x->dtype, s->red, d, u, g.slice, err);
        }
        if (!st)
            st = sh_finish(o, err);
    }
    free(g.off);
    return st;
}

/* ------------------------------------------------------------------ */
/* TensorScatter (KV-cache update)                                      */

typedef struct tscatter_state {
    int64_t axis;
    bool circular;
} tscatter_state;

static pare_status tscatter_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    tscatter_state *s = calloc(1, sizeof *s);
    if (!s)
        return sh_nomem(err);
    *state = s;
    s->axis = pare_node_attr_int(n, "axis", -2);
    const char *m = pare_node_attr_string(n, "mode", "linear");
    if (strcmp(m, "circular") == 0)
        s->circular = true;
    else if (strcmp(m, "linear") != 0)
        return pare_error_set(err, PARE_ERR_INVALID, "unknown mode '%s'", m);
    return PARE_OK;
}

SH_ANY_DTYPE(tensor_scatter)
static pare_status tensor_scatter_impl(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const tscatter_state *s = k->state;
    const pare_tensor *x = k->in[0], *up = sh_in(k, 1), *wi = sh_in(k, 2);
    char b1[256], b2[256];
    int ax;
    if (!up)
        return pare_error_set(err, PARE_ERR_INVALID, "TensorScatter needs an update");
    pare_status st = sh_axis(s->axis, x->rank, &ax, "axis", err);
    if (st)
        return st;
    bool ok = ax >= 1 && up->rank == x->rank && up->dtype == x->dtype;
    for (int d = 0; ok && d < x->rank; d++)
        ok = d == ax ? up->dims[d] <= x->dims[d] : up->dims[d] == x->dims[d];
    if (!ok)
        return pare_error_set(err, PARE_ERR_INVALID, "update %s does not fit cache %s on axis %d",
                              sh_dims(up->rank, up->dims, b1, sizeof b1),
                              sh_dims(x->rank, x->dims, b2, sizeof b2), ax);
    int64_t B = x->dims[0], M = x->dims[ax], S = up->dims[ax];
    if (wi && (wi->dtype != PARE_DT_INT64 || sh_numel(wi) != B))
        return pare_error_set(err, PARE_ERR_INVALID, "write_indices must be int64 of length %lld",
                              (long long)B);
    for (int64_t b = 0; wi && b < B && S > 0; b++) {
        int64_t w = sh_idx(wi->data, true, b);
        if (!s->circular && (w < 0 || w > M - S))
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "write index %lld out of range [0, %lld] for %lld new entries",
                                  (long long)w, (long long)(M - S), (long long)S);
    }
    pare_tensor *o;
    if ((st = sh_alloc(k, 0, x->dtype, x->rank, x->dims, &o, err)))
        return st;
    sh_memcpy(o->data, x->data, x->nbytes);
    int64_t outer = sh_prod(x->dims, 0, ax), per_b = outer / (B ? B : 1);
    int64_t inner = sh_prod(x->dims, ax + 1, x->rank);
    size_t es = sh_esize(x->dtype), bytes = (size_t)inner * es;
    for (int64_t p = 0; p < outer; p++) {
        int64_t w = wi ? sh_idx(wi->data, true, p / per_b) : 0;
        for (int64_t q = 0; q < S; q++) {
            int64_t pos = w + q;
            if (s->circular)
                pos = ((pos % M) + M) % M;
            sh_memcpy((char *)o->data + (size_t)((p * M + pos) * inner) * es,
                      (const char *)up->data + (size_t)((p * S + q) * inner) * es, bytes);
        }
    }
    return sh_finish(o, err);
}

/* ------------------------------------------------------------------ */
/* OneHot                                                               */

static pare_status run_one_hot(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const axis_state *s = k->state;
    const pare_tensor *it = k->in[0], *dt = sh_in(k, 1), *vt = sh_in(k, 2);
    if (!dt || !vt)
        return pare_error_set(err, PARE_ERR_INVALID, "OneHot needs indices, depth and values");
    if (sh_numel(vt) != 2)
        return pare_error_set(err, PARE_ERR_INVALID, "values must hold [off, on], not %lld values",
                              (long long)sh_numel(vt));
    if (it->dtype == PARE_DT_STRING || sh_is4(vt->dtype))
        return sh_bad_dtype(it->dtype == PARE_DT_STRING ? it->dtype : vt->dtype, "OneHot", err);
    double dd;
    pare_status st = sh_scalar_f64(dt, &dd, "depth", err);
    if (st)
        return st;
    if (!(dd >= 1 && dd < 9e18))
        return pare_error_set(err, PARE_ERR_INVALID, "depth %g must be positive", dd);
    int64_t depth = (int64_t)dd;
    int r = it->rank + 1;
    if (r > PARE_MAX_RANK)
        return pare_error_set(err, PARE_ERR_LIMIT, "output rank too large");
    int ax;
    if ((st = sh_axis(s->axis, r, &ax, "axis", err)))
        return st;
    int64_t dims[PARE_MAX_RANK];
    for (int i = 0, j = 0; i < r; i++)
        dims[i] = i == ax ? depth : it->dims[j++];
    pare_tensor *o;
    if ((st = sh_alloc(k, 0, vt->dtype, r, dims, &o, err)))
        return st;
    size_t es = sh_esize(vt->dtype);
    const char *off = vt->data, *on = off + es;
    int64_t outer = sh_prod(it->dims, 0, ax), inner = sh_prod(it->dims, ax, it->rank);
    sh_fill(o->data, sh_numel(o), off, es);
    for (int64_t a = 0; a < outer; a++)
        for (int64_t b = 0; b < inner; b++) {
            double v = pare_dtype_get_f64(it->dtype, it->data, (size_t)(a * inner + b));
            if (!(v > -9e18 && v < 9e18))
                continue;
            int64_t iv = (int64_t)v;
            if (iv < 0)
                iv += depth;
            if (iv < 0 || iv >= depth)
                continue;
            memcpy((char *)o->data + (size_t)((a * depth + iv) * inner + b) * es, on, es);
        }
    return sh_finish(o, err);
}

/* ------------------------------------------------------------------ */
/* NonZero, Compress                                                    */

static bool sh_nonzero_at(const pare_tensor *x, int64_t i, size_t es)
{
    if (x->dtype == PARE_DT_STRING)
        return ((const pare_string *)x->data)[i].len != 0;
    if (pare_dtype_is_float(x->dtype))
        return pare_dtype_get_f64(x->dtype, x->data, (size_t)i) != 0;
    const unsigned char *p = (const unsigned char *)x->data + (size_t)i * es;
    for (size_t b = 0; b < es; b++)
        if (p[b])
            return true;
    return false;
}

SH_ANY_DTYPE(non_zero)
static pare_status non_zero_impl(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const pare_tensor *x = k->in[0];
    int64_t n = sh_numel(x), nz = 0;
    size_t es = sh_esize(x->dtype);
    for (int64_t i = 0; i < n; i++)
        nz += sh_nonzero_at(x, i, es);
    int64_t dims[2] = {x->rank, nz};
    pare_tensor *o;
    pare_status st = sh_alloc(k, 0, PARE_DT_INT64, 2, dims, &o, err);
    if (st)
        return st;
    int64_t *d = o->data, c[PARE_MAX_RANK] = {0}, j = 0;
    for (int64_t i = 0; i < n; i++) {
        if (sh_nonzero_at(x, i, es)) {
            for (int a = 0; a < x->rank; a++)
                d[a * nz + j] = c[a];
            j++;
        }
        for (int a = x->rank - 1; a >= 0; a--) {
            if (++c[a] < x->dims[a])
                break;
            c[a] = 0;
        }
    }
    return PARE_OK;
}

SH_ANY_DTYPE(compress)
static pare_status compress_impl(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const axis_state *s = k->state;
    const pare_tensor *x = k->in[0], *c = sh_in(k, 1);
    if (!c)
        return pare_error_set(err, PARE_ERR_INVALID, "Compress needs a condition");
    if (c->rank != 1 || c->dtype != PARE_DT_BOOL)
        return pare_error_set(err, PARE_ERR_INVALID, "condition must be a 1-D bool tensor");
    int64_t outer = 1, dim = sh_numel(x), inner = 1;
    int ax = -1;
    pare_status st;
    if (s->has_axis) {
        if ((st = sh_axis(s->axis, x->rank, &ax, "axis", err)))
            return st;
        outer = sh_prod(x->dims, 0, ax);
        dim = x->dims[ax];
        inner = sh_prod(x->dims, ax + 1, x->rank);
    }
    const uint8_t *cd = c->data;
    int64_t nc = c->dims[0], cnt = 0;
    for (int64_t i = 0; i < nc; i++) {
        if (!cd[i])
            continue;
        if (i >= dim)
            return sh_index_error(i, dim, err);
        cnt++;
    }
    int64_t dims[PARE_MAX_RANK];
    int r = 1;
    if (ax >= 0) {
        r = x->rank;
        memcpy(dims, x->dims, (size_t)r * sizeof *dims);
        dims[ax] = cnt;
    } else {
        dims[0] = cnt;
    }
    pare_tensor *o;
    if ((st = sh_alloc(k, 0, x->dtype, r, dims, &o, err)))
        return st;
    size_t es = sh_esize(x->dtype), bytes = (size_t)inner * es;
    char *d = o->data;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t i = 0; i < nc && i < dim; i++)
            if (cd[i]) {
                memcpy(d, (const char *)x->data + (size_t)((a * dim + i) * inner) * es, bytes);
                d += bytes;
            }
    return sh_finish(o, err);
}

/* ------------------------------------------------------------------ */
/* Unique                                                               */

typedef struct uniq_ctx {
    const void *data;
    int dtype;
    int64_t outer, dim, inner;
} uniq_ctx;

/* Total order with NaN after everything and equal to itself. */
#define SH_CMP3(a, b)                                                                       \
    ((a) < (b) ? -1 : (a) > (b) ? 1                                                         \
     : sh_isnan((double)(a)) ? (sh_isnan((double)(b)) ? 0 : 1) : sh_isnan((double)(b)) ? -1 \
                                                                                       : 0)

/* Compares items i and j: the slices at positions i and j of the unique axis. */
static int uniq_cmp(const uniq_ctx *u, int64_t i, int64_t j)
{
    for (int64_t a = 0; a < u->outer; a++) {
        int64_t pi = (a * u->dim + i) * u->inner, pj = (a * u->dim + j) * u->inner;
        switch (u->dtype) {
#define SH_UCMP(DT, T, ACC, LD, STA, STD, ISF)            \
        case DT: {                                         \
            const T *p = u->data;                          \
            for (int64_t b = 0; b < u->inner; b++) {       \
                ACC x = LD(p[pi + b]), y = LD(p[pj + b]);  \
                int c = SH_CMP3(x, y);                     \
                if (c)                                     \
                    return c;                              \
            }                                              \
            break;                                         \
        }
            SH_NUMB_TYPES(SH_UCMP)
#undef SH_UCMP
        case PARE_DT_STRING: {
            const pare_string *p = u->data;
            for (int64_t b = 0; b < u->inner; b++) {
                const pare_string *x = &p[pi + b], *y = &p[pj + b];
                size_t n = x->len < y->len ? x->len : y->len;
                int c = n ? memcmp(x->data, y->data, n) : 0;
                if (!c)
                    c = (x->len > y->len) - (x->len < y->len);
                if (c)
                    return c;
            }
            break;
        }
        default: {
            size_t es = sh_esize(u->dtype);
            int c = memcmp((const char *)u->data + (size_t)pi * es,
                           (const char *)u->data + (size_t)pj * es, (size_t)u->inner * es);
            if (c)
                return c;
        }
        }
    }
    return 0;
}

/* Stable merge sort of the item ids in v (tmp: scratch of the same size). */
static void uniq_sort(const uniq_ctx *u, int64_t *v, int64_t *tmp, int64_t n)
{
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t a = lo, b = mid, o = lo;
            while (a < mid && b < hi)
                tmp[o++] = uniq_cmp(u, v[b], v[a]) < 0 ? v[b++] : v[a++];
            while (a < mid)
                tmp[o++] = v[a++];
            while (b < hi)
                tmp[o++] = v[b++];
        }
        memcpy(v, tmp, (size_t)n * sizeof *v);
    }
}

typedef struct unique_state {
    int64_t axis;
    bool has_axis;
    int64_t sorted;
} unique_state;

static pare_status unique_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    unique_state *s = calloc(1, sizeof *s);
    if (!s)
        return sh_nomem(err);
    *state = s;
    s->has_axis = pare_node_attr(n, "axis") != NULL;
    s->axis = pare_node_attr_int(n, "axis", 0);
    s->sorted = pare_node_attr_int(n, "sorted", 1);
    return PARE_OK;
}

SH_ANY_DTYPE(unique)
static pare_status unique_impl(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const unique_state *s = k->state;
    const pare_tensor *x = k->in[0];
    void *tmpd = NULL;
    uniq_ctx u = {.dtype = x->dtype, .outer = 1, .dim = sh_numel(x), .inner = 1};
    int ax = -1;
    pare_status st;
    if (s->has_axis) {
        if ((st = sh_axis(s->axis, x->rank, &ax, "axis", err)))
            return st;
        u.outer = sh_prod(x->dims, 0, ax);
        u.dim = x->dims[ax];
        u.inner = sh_prod(x->dims, ax + 1, x->rank);
    }
    if (!(u.data = sh_aligned(x, &tmpd, err)))
        return err ? err->status : PARE_ERR_NOMEM;
    int64_t n = u.dim;
    int64_t *order = malloc((size_t)(3 * n + 1) * sizeof *order);
    int64_t *first = malloc((size_t)(n + 1) * sizeof *first);
    int64_t *cnt = malloc((size_t)(n + 1) * sizeof *cnt);
    int64_t *rank_of = malloc((size_t)(n + 1) * sizeof *rank_of);
    if (!order || !first || !cnt || !rank_of) {
        st = sh_nomem(err);
        goto done;
    }
    int64_t *tmp = order + n, *inv = order + 2 * n;
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    uniq_sort(&u, order, tmp, n);
    /* groups in sorted order; the first of each is its earliest occurrence (stable sort) */
    int64_t g = -1;
    for (int64_t i = 0; i < n; i++) {
        if (i == 0 || uniq_cmp(&u, order[i - 1], order[i]) != 0) {
            g++;
            first[g] = order[i];
            cnt[g] = 0;
        }
        cnt[g]++;
        inv[order[i]] = g;
    }
    int64_t ng = g + 1;
    /* output position of each group */
    for (int64_t i = 0; i < ng; i++)
        rank_of[i] = i;
    if (!s->sorted) {
        /* order groups by first occurrence */
        int64_t pos = 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t gg = inv[i];
            if (first[gg] == i)
                rank_of[gg] = pos++;
        }
    }
    int64_t dims[PARE_MAX_RANK];
    int r = 1;
    if (ax >= 0) {
        r = x->rank;
        memcpy(dims, x->dims, (size_t)r * sizeof *dims);
        dims[ax] = ng;
    } else {
        dims[0] = ng;
    }
    pare_tensor *y, *oi, *oinv, *oc;
    if ((st = sh_alloc(k, 0, x->dtype, r, dims, &y, err)))
        goto done;
    size_t es = sh_esize(x->dtype), bytes = (size_t)u.inner * es;
    for (int64_t gg = 0; gg < ng; gg++)
        for (int64_t a = 0; a < u.outer; a++)
            sh_memcpy((char *)y->data + (size_t)((a * ng + rank_of[gg]) * u.inner) * es,
                      (const char *)x->data + (size_t)((a * n + first[gg]) * u.inner) * es, bytes);
    if ((st = sh_finish(y, err)))
        goto done;
    if (k->n_out > 1) {
        if ((st = sh_alloc(k, 1, PARE_DT_INT64, 1, &ng, &oi, err)))
            goto done;
        for (int64_t gg = 0; gg < ng; gg++)
            ((int64_t *)oi->data)[rank_of[gg]] = first[gg];
    }
    if (k->n_out > 2) {
        if ((st = sh_alloc(k, 2, PARE_DT_INT64, 1, &n, &oinv, err)))
            goto done;
        for (int64_t i = 0; i < n; i++)
            ((int64_t *)oinv->data)[i] = rank_of[inv[i]];
    }
    if (k->n_out > 3) {
        if ((st = sh_alloc(k, 3, PARE_DT_INT64, 1, &ng, &oc, err)))
            goto done;
        for (int64_t gg = 0; gg < ng; gg++)
            ((int64_t *)oc->data)[rank_of[gg]] = cnt[gg];
    }
done:
    free(order);
    free(first);
    free(cnt);
    free(rank_of);
    free(tmpd);
    return st;
}

/* ------------------------------------------------------------------ */
/* Range                                                                */

typedef struct range_state {
    int64_t stash;
} range_state;

static pare_status range_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    range_state *s = calloc(1, sizeof *s);
    if (!s)
        return sh_nomem(err);
    *state = s;
    s->stash = pare_node_attr_int(n, "stash_type", PARE_DT_FLOAT);
    return PARE_OK;
}

static pare_status run_range(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const range_state *s = k->state;
    const pare_tensor *a = k->in[0], *l = sh_in(k, 1), *d = sh_in(k, 2);
    if (!l || !d)
        return pare_error_set(err, PARE_ERR_INVALID, "Range needs start, limit and delta");
    int dt = a->dtype;
    if (l->dtype != dt || d->dtype != dt)
        return pare_error_set(err, PARE_ERR_INVALID, "start, limit and delta differ in dtype");
    if (sh_numel(a) != 1 || sh_numel(l) != 1 || sh_numel(d) != 1)
        return pare_error_set(err, PARE_ERR_INVALID, "start, limit and delta must be scalars");
    pare_tensor *o;
    pare_status st;
    int64_t n;
    if (pare_dtype_is_int(dt)) {
        if (pare_dtype_bits(dt) < 8 || dt == PARE_DT_UINT64)
            return sh_bad_dtype(dt, "Range", err);
        int64_t s0 = (int64_t)pare_dtype_get_f64(dt, a->data, 0);
        int64_t s1 = (int64_t)pare_dtype_get_f64(dt, l->data, 0);
        int64_t dl = (int64_t)pare_dtype_get_f64(dt, d->data, 0);
        if (dt == PARE_DT_INT64) {
            memcpy(&s0, a->data, 8);
            memcpy(&s1, l->data, 8);
            memcpy(&dl, d->data, 8);
        }
        if (dl == 0)
            return pare_error_set(err, PARE_ERR_INVALID, "delta is zero");
        int64_t diff;
        if (__builtin_sub_overflow(s1, s0, &diff))
            return pare_error_set(err, PARE_ERR_LIMIT, "Range too large");
        if ((diff > 0) != (dl > 0) || diff == 0)
            n = 0;
        else if (dl > 0)
            n = (diff - 1) / dl + 1;
        else
            n = dl == INT64_MIN ? 1 : (-diff - 1) / -dl + 1;
        if ((st = sh_alloc(k, 0, dt, 1, &n, &o, err)))
            return st;
        for (int64_t i = 0; i < n; i++) {
            int64_t v = (int64_t)((uint64_t)s0 + (uint64_t)i * (uint64_t)dl);
            if (dt == PARE_DT_INT64)
                memcpy((char *)o->data + i * 8, &v, 8);
            else
                pare_dtype_set_f64(dt, o->data, (size_t)i, (double)v);
        }
        return PARE_OK;
    }
    if (!pare_dtype_is_float(dt) || dt > PARE_DT_BFLOAT16)
        return sh_bad_dtype(dt, "Range", err);
    double s0 = pare_dtype_get_f64(dt, a->data, 0), s1 = pare_dtype_get_f64(dt, l->data, 0);
    double dl = pare_dtype_get_f64(dt, d->data, 0);
    if (dl == 0)
        return pare_error_set(err, PARE_ERR_INVALID, "delta is zero");
    double cnt = ceil((s1 - s0) / dl);
    if (!(cnt < 1e15) && !(cnt <= 0))
        return pare_error_set(err, PARE_ERR_LIMIT, "Range of %g elements is too large", cnt);
    n = cnt > 0 ? (int64_t)cnt : 0;
    if ((st = sh_alloc(k, 0, dt, 1, &n, &o, err)))
        return st;
    bool f32 = (dt == PARE_DT_FLOAT16 || dt == PARE_DT_BFLOAT16) && k->opset >= 27 &&
               s->stash == PARE_DT_FLOAT;
    for (int64_t i = 0; i < n; i++) {
        double v = f32 ? (double)((float)s0 + (float)i * (float)dl) : s0 + (double)i * dl;
        pare_dtype_set_f64(dt, o->data, (size_t)i, v);
    }
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* EyeLike, Trilu, ReverseSequence                                      */

typedef struct eye_state {
    int64_t k, dtype, upper, batch_axis, time_axis;
} eye_state;

static pare_status eye_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    eye_state *s = calloc(1, sizeof *s);
    if (!s)
        return sh_nomem(err);
    *state = s;
    s->k = pare_node_attr_int(n, "k", 0);
    s->dtype = pare_node_attr_int(n, "dtype", 0);
    s->upper = pare_node_attr_int(n, "upper", 1);
    s->batch_axis = pare_node_attr_int(n, "batch_axis", 1);
    s->time_axis = pare_node_attr_int(n, "time_axis", 0);
    return PARE_OK;
}

static pare_status run_eye_like(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const eye_state *s = k->state;
    const pare_tensor *x = k->in[0];
    if (x->rank != 2)
        return pare_error_set(err, PARE_ERR_INVALID, "EyeLike needs a 2-D input, got rank %d",
                              x->rank);
    int dt = s->dtype ? (int)s->dtype : x->dtype;
    if (!pare_dtype_valid(dt) || dt == PARE_DT_STRING || sh_is4(dt))
        return sh_bad_dtype(dt, "EyeLike", err);
    pare_tensor *o;
    pare_status st = sh_alloc(k, 0, dt, 2, x->dims, &o, err);
    if (st)
        return st;
    if (o->nbytes)
        memset(o->data, 0, o->nbytes);
    int64_t R = x->dims[0], C = x->dims[1];
    for (int64_t i = 0; i < R; i++) {
        if (s->k > C || s->k < -R)
            break;
        int64_t j = i + s->k;
        if (j >= 0 && j < C)
            pare_dtype_set_f64(dt, o->data, (size_t)(i * C + j), 1.0);
    }
    return PARE_OK;
}

SH_ANY_DTYPE(trilu)
static pare_status trilu_impl(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const eye_state *s = k->state;
    const pare_tensor *x = k->in[0];
    if (x->rank < 2)
        return pare_error_set(err, PARE_ERR_INVALID, "Trilu needs rank >= 2, got %d", x->rank);
    int64_t kk = 0;
    pare_status st;
    if (sh_in(k, 1) && (st = sh_scalar_i64(k->in[1], &kk, "k", err)))
        return st;
    pare_tensor *o;
    if ((st = sh_alloc(k, 0, x->dtype, x->rank, x->dims, &o, err)))
        return st;
    int64_t R = x->dims[x->rank - 2], C = x->dims[x->rank - 1];
    int64_t mats = sh_prod(x->dims, 0, x->rank - 2);
    size_t es = sh_esize(x->dtype);
    sh_memcpy(o->data, x->data, x->nbytes);
    for (int64_t m = 0; m < mats; m++)
        for (int64_t i = 0; i < R; i++) {
            char *row = (char *)o->data + (size_t)((m * R + i) * C) * es;
            for (int64_t j = 0; j < C; j++) {
                /* j - i without overflow: both are small non-negative */
                bool keep = s->upper ? (j - i >= kk) : (j - i <= kk);
                if (!keep)
                    memset(row + (size_t)j * es, 0, es);
            }
        }
    return sh_finish(o, err);
}

SH_ANY_DTYPE(reverse_sequence)
static pare_status reverse_sequence_impl(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const eye_state *s = k->state;
    const pare_tensor *x = k->in[0], *sl = sh_in(k, 1);
    if (!sl)
        return pare_error_set(err, PARE_ERR_INVALID, "ReverseSequence needs sequence_lens");
    if (x->rank < 2)
        return pare_error_set(err, PARE_ERR_INVALID, "input needs rank >= 2, got %d", x->rank);
    int ba, ta;
    pare_status st;
    if ((st = sh_axis(s->batch_axis, 2, &ba, "batch_axis", err)) ||
        (st = sh_axis(s->time_axis, 2, &ta, "time_axis", err)))
        return st;
    if (ba == ta)
        return pare_error_set(err, PARE_ERR_INVALID, "batch_axis and time_axis are both %d", ba);
    int64_t B = x->dims[ba], T = x->dims[ta];
    if (!sh_is_index_type(sl->dtype) || sl->rank != 1 || sl->dims[0] != B)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "sequence_lens must be 1-D int of length %lld", (long long)B);
    for (int64_t b = 0; b < B; b++) {
        int64_t l = sh_idx(sl->data, sl->dtype == PARE_DT_INT64, b);
        if (l < 0 || l > T)
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "sequence length %lld out of range [0, %lld]", (long long)l,
                                  (long long)T);
    }
    pare_tensor *o;
    if ((st = sh_alloc(k, 0, x->dtype, x->rank, x->dims, &o, err)))
        return st;
    int64_t inner = sh_prod(x->dims, 2, x->rank), d1 = x->dims[1];
    size_t es = sh_esize(x->dtype), bytes = (size_t)inner * es;
    for (int64_t i0 = 0; i0 < x->dims[0]; i0++)
        for (int64_t i1 = 0; i1 < d1; i1++) {
            int64_t b = ba == 0 ? i0 : i1, t = ta == 0 ? i0 : i1;
            int64_t l = sh_idx(sl->data, sl->dtype == PARE_DT_INT64, b);
            int64_t tt = t < l ? l - 1 - t : t;
            int64_t src = ta == 0 ? tt * d1 + i1 : i0 * d1 + tt;
            sh_memcpy((char *)o->data + (size_t)((i0 * d1 + i1) * inner) * es,
                      (const char *)x->data + (size_t)(src * inner) * es, bytes);
        }
    return sh_finish(o, err);
}

#define SH_INDEX_KERNELS                                                                  \
    K("Gather", 1, 0, axis_init, run_gather, sh_free_state),                              \
    K("GatherElements", 11, 0, axis_init, run_gather_elements, sh_free_state),            \
    K("GatherND", 11, 0, gnd_init, run_gather_nd, sh_free_state),                         \
    K("Scatter", 9, 10, scatter_init, run_scatter_elements, sh_free_state),               \
    K("ScatterElements", 11, 0, scatter_init, run_scatter_elements, sh_free_state),       \
    K("ScatterND", 11, 0, scatter_init, run_scatter_nd, sh_free_state),                   \
    K("TensorScatter", 24, 0, tscatter_init, run_tensor_scatter, sh_free_state),                   \
    K("OneHot", 9, 0, axis_init, run_one_hot, sh_free_state),                             \
    K("NonZero", 9, 0, NULL, run_non_zero, NULL),                                         \
    K("Compress", 9, 0, axis_init, run_compress, sh_free_state),                          \
    K("Unique", 11, 0, unique_init, run_unique, sh_free_state),                           \
    K("Range", 11, 0, range_init, run_range, sh_free_state),                              \
    K("EyeLike", 9, 0, eye_init, run_eye_like, sh_free_state),                            \
    K("Trilu", 14, 0, eye_init, run_trilu, sh_free_state),                                \
    K("ReverseSequence", 10, 0, eye_init, run_reverse_sequence, sh_free_state),
