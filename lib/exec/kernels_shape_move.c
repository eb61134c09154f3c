/* Included from kernels_shape.c: constants, shape queries and data movement. */

/* ------------------------------------------------------------------ */
/* Constant                                                             */

typedef struct const_state {
    pare_tensor *t;
    bool owned;
} const_state;

static void const_release(void *s)
{
    const_state *c = s;
    if (c && c->owned)
        pare_tensor_free(c->t);
    free(c);
}

/* Densifies a sparse_value attribute (COO values + indices, as in the IR's sparse
 * initializers). */
static pare_status const_sparse(const pare_node *n, const pare_attr *a, pare_tensor **out,
                                pare_error *err)
{
    const Onnx__AttributeProto *ap = a->orig;
    const Onnx__SparseTensorProto *sp = ap ? ap->sparse_tensor : NULL;
    if (!sp || !sp->values || !sp->indices)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "sparse_value without values/indices");
    pare_model *m = n->graph ? n->graph->model : NULL;
    pare_tensor *vals = NULL, *idx = NULL, *dense = NULL;
    pare_status st = pare__tensor_from_proto(sp->values, m, false, &vals, err);
    if (!st)
        st = pare__tensor_from_proto(sp->indices, m, false, &idx, err);
    if (st)
        goto done;
    if (sp->n_dims > PARE_MAX_RANK || vals->dtype == PARE_DT_STRING || sh_is4(vals->dtype) ||
        idx->dtype != PARE_DT_INT64) {
        st = pare_error_set(err, PARE_ERR_UNSUPPORTED, "unsupported sparse_value");
        goto done;
    }
    if ((st = pare_tensor_new(NULL, vals->dtype, (int)sp->n_dims, sp->dims, &dense, err)))
        goto done;
    int64_t total = sh_numel(dense), nnz = sh_numel(vals), r = (int64_t)sp->n_dims;
    size_t es = sh_esize(vals->dtype);
    bool flat = idx->rank == 1;
    if (!(flat && idx->dims[0] == nnz) && !(idx->rank == 2 && idx->dims[0] == nnz &&
                                           idx->dims[1] == r)) {
        st = pare_error_set(err, PARE_ERR_INVALID, "sparse_value indices do not match values");
        goto done;
    }
    for (int64_t i = 0; i < nnz; i++) {
        int64_t lin = 0;
        if (flat) {
            lin = sh_idx(idx->data, true, i);
            if (lin < 0 || lin >= total) {
                st = sh_index_error(lin, total, err);
                goto done;
            }
        } else {
            for (int64_t d = 0; d < r; d++) {
                int64_t c = sh_idx(idx->data, true, i * r + d);
                if (c < 0 || c >= sp->dims[d]) {
                    st = sh_index_error(c, sp->dims[d], err);
                    goto done;
                }
                lin = lin * sp->dims[d] + c;
            }
        }
        memcpy((char *)dense->data + (size_t)lin * es, (char *)vals->data + (size_t)i * es, es);
    }
    *out = dense;
    dense = NULL;
done:
    pare_tensor_free(vals);
    pare_tensor_free(idx);
    pare_tensor_free(dense);
    return st;
}

static pare_status const_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    const_state *c = calloc(1, sizeof *c);
    if (!c)
        return sh_nomem(err);
    *state = c;
    const pare_attr *a = NULL;
    int found = 0;
    static const char *const names[] = {"value",        "sparse_value", "value_float",
                                        "value_floats", "value_int",    "value_ints",
                                        "value_string", "value_strings"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const pare_attr *x = pare_node_attr(n, names[i]);
        if (x) {
            a = x;
            found++;
        }
    }
    if (found != 1)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "Constant needs exactly one value attribute, found %d", found);
    const char *nm = a->name;
    pare_status st = PARE_OK;
    int64_t cnt = (int64_t)a->n;
    if (strcmp(nm, "value") == 0) {
        if (!a->t)
            return pare_error_set(err, PARE_ERR_INVALID, "attribute 'value' is not a tensor");
        c->t = a->t;
        return PARE_OK;
    }
    c->owned = true;
    if (strcmp(nm, "sparse_value") == 0)
        return const_sparse(n, a, &c->t, err);
    if (strcmp(nm, "value_float") == 0) {
        if ((st = pare_tensor_new(NULL, PARE_DT_FLOAT, 0, NULL, &c->t, err)))
            return st;
        memcpy(c->t->data, &a->f, sizeof(float));
    } else if (strcmp(nm, "value_floats") == 0) {
        if ((st = pare_tensor_new(NULL, PARE_DT_FLOAT, 1, &cnt, &c->t, err)))
            return st;
        sh_memcpy(c->t->data, a->floats, (size_t)cnt * sizeof(float));
    } else if (strcmp(nm, "value_int") == 0) {
        if ((st = pare_tensor_new(NULL, PARE_DT_INT64, 0, NULL, &c->t, err)))
            return st;
        memcpy(c->t->data, &a->i, sizeof(int64_t));
    } else if (strcmp(nm, "value_ints") == 0) {
        if ((st = pare_tensor_new(NULL, PARE_DT_INT64, 1, &cnt, &c->t, err)))
            return st;
        sh_memcpy(c->t->data, a->ints, (size_t)cnt * sizeof(int64_t));
    } else if (strcmp(nm, "value_string") == 0) {
        if ((st = pare_tensor_new(NULL, PARE_DT_STRING, 0, NULL, &c->t, err)))
            return st;
        pare_string *s = c->t->data;
        s[0] = a->s;
        return sh_dup_strings(s, 1, err);
    } else {
        if ((st = pare_tensor_new(NULL, PARE_DT_STRING, 1, &cnt, &c->t, err)))
            return st;
        pare_string *s = c->t->data;
        sh_memcpy(s, a->strings, (size_t)cnt * sizeof *s);
        return sh_dup_strings(s, cnt, err);
    }
    return PARE_OK;
}

static pare_status run_constant(pare_kctx *k, pare_error *err)
{
    const_state *c = k->state;
    return sh_copy_as(k, 0, c->t, c->t->rank, c->t->dims, err);
}

/* ------------------------------------------------------------------ */
/* ConstantOfShape                                                      */

static pare_status cos_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    const_state *c = calloc(1, sizeof *c);
    if (!c)
        return sh_nomem(err);
    *state = c;
    const pare_attr *a = pare_node_attr(n, "value");
    if (a && a->t) {
        if (sh_numel(a->t) != 1)
            return pare_error_set(err, PARE_ERR_INVALID, "'value' must hold one element, not %lld",
                                  (long long)sh_numel(a->t));
        c->t = a->t;
        return PARE_OK;
    }
    c->owned = true;
    return pare_tensor_new(NULL, PARE_DT_FLOAT, 0, NULL, &c->t, err);
}

/* Fills n elements of es bytes with the value at val (doubling copies). */
static void sh_fill(void *dst, int64_t n, const void *val, size_t es)
{
    if (n <= 0)
        return;
    char *d = dst;
    memcpy(d, val, es);
    size_t have = es, total = (size_t)n * es;
    while (have < total) {
        size_t c = have < total - have ? have : total - have;
        memcpy(d + have, d, c);
        have += c;
    }
}

static pare_status run_constant_of_shape(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const_state *c = k->state;
    const pare_tensor *s = k->in[0];
    int64_t dims[PARE_MAX_RANK], r;
    pare_status st = sh_ints(s, dims, PARE_MAX_RANK, &r, "shape", err);
    if (st)
        return st;
    for (int64_t i = 0; i < r; i++)
        if (dims[i] < 0)
            return pare_error_set(err, PARE_ERR_INVALID, "shape has a negative dim %lld",
                                  (long long)dims[i]);
    pare_tensor *o;
    if ((st = sh_alloc(k, 0, c->t->dtype, (int)r, dims, &o, err)))
        return st;
    int64_t n = sh_numel(o);
    if (sh_is4(c->t->dtype)) {
        int v = pare_int4_get(c->t->data, 0, false) & 15;
        if (o->nbytes)
            memset(o->data, v | (v << 4), o->nbytes);
        return PARE_OK;
    }
    sh_fill(o->data, n, c->t->data, sh_esize(c->t->dtype));
    return sh_finish(o, err);
}

/* ------------------------------------------------------------------ */
/* Shape, Size                                                          */

typedef struct shape_state {
    int64_t start, end;
    bool has_end;
} shape_state;

static pare_status shape_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    shape_state *s = calloc(1, sizeof *s);
    if (!s)
        return sh_nomem(err);
    *state = s;
    s->start = pare_node_attr_int(n, "start", 0);
    s->has_end = pare_node_attr(n, "end") != NULL;
    s->end = pare_node_attr_int(n, "end", 0);
    return PARE_OK;
}

static pare_status run_shape(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const shape_state *s = k->state;
    const pare_tensor *x = k->in[0];
    int64_t r = x->rank, b = s->start, e = s->has_end ? s->end : r;
    if (b < 0)
        b += r;
    if (e < 0)
        e += r;
    b = b < 0 ? 0 : b > r ? r : b;
    e = e < 0 ? 0 : e > r ? r : e;
    int64_t n = e > b ? e - b : 0;
    pare_tensor *o;
    pare_status st = sh_alloc(k, 0, PARE_DT_INT64, 1, &n, &o, err);
    if (st)
        return st;
    sh_memcpy(o->data, x->dims + b, (size_t)n * sizeof(int64_t));
    return PARE_OK;
}

static pare_status run_size(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    pare_tensor *o;
    pare_status st = sh_alloc(k, 0, PARE_DT_INT64, 0, NULL, &o, err);
    if (st)
        return st;
    int64_t n = sh_numel(k->in[0]);
    memcpy(o->data, &n, sizeof n);
    return PARE_OK;
}

/* ------------------------------------------------------------------ */
/* Reshape, Flatten, Squeeze, Unsqueeze                                  */

typedef struct reshape_state {
    int64_t allowzero;
    int64_t axis;  /* Flatten */
    const int64_t *attr_vals; /* Reshape-1 shape, Squeeze/Unsqueeze axes before 13 */
    size_t n_attr;
    bool has_attr;
} reshape_state;

static pare_status reshape_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    reshape_state *s = calloc(1, sizeof *s);
    if (!s)
        return sh_nomem(err);
    *state = s;
    s->allowzero = pare_node_attr_int(n, "allowzero", 0);
    s->axis = pare_node_attr_int(n, "axis", 1);
    const char *an = strcmp(n->op_type, "Reshape") == 0 ? "shape" : "axes";
    s->has_attr = pare_node_attr(n, an) != NULL;
    s->n_attr = pare_node_attr_ints(n, an, &s->attr_vals);
    return PARE_OK;
}

static pare_status run_reshape(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const reshape_state *s = k->state;
    const pare_tensor *x = k->in[0];
    int64_t shp[PARE_MAX_RANK], r;
    pare_status st;
    char b1[256], b2[256];
    if (k->opset < 5) {
        if (s->n_attr > PARE_MAX_RANK)
            return pare_error_set(err, PARE_ERR_LIMIT, "shape too long");
        r = (int64_t)s->n_attr;
        sh_memcpy(shp, s->attr_vals, (size_t)r * sizeof(int64_t));
    } else {
        const pare_tensor *t = sh_in(k, 1);
        if (!t)
            return pare_error_set(err, PARE_ERR_INVALID, "missing shape input");
        if ((st = sh_ints(t, shp, PARE_MAX_RANK, &r, "shape", err)))
            return st;
    }
    int64_t dims[PARE_MAX_RANK];
    int infer = -1;
    int64_t known = 1, numel = sh_numel(x);
    bool overflow = false;
    for (int i = 0; i < r; i++) {
        int64_t v = shp[i];
        if (v == 0 && !s->allowzero) {
            if (i >= x->rank)
                return pare_error_set(err, PARE_ERR_INVALID,
                                      "cannot reshape %s: shape %s copies dim %d of a rank-%d input",
                                      sh_dims(x->rank, x->dims, b1, sizeof b1),
                                      sh_dims((int)r, shp, b2, sizeof b2), i, x->rank);
            v = x->dims[i];
        } else if (v == -1) {
            if (infer >= 0)
                return pare_error_set(err, PARE_ERR_INVALID,
                                      "cannot reshape %s to %s: more than one -1",
                                      sh_dims(x->rank, x->dims, b1, sizeof b1),
                                      sh_dims((int)r, shp, b2, sizeof b2));
            infer = i;
            dims[i] = -1;
            continue;
        } else if (v < 0) {
            return pare_error_set(err, PARE_ERR_INVALID, "cannot reshape %s to %s: negative dim",
                                  sh_dims(x->rank, x->dims, b1, sizeof b1),
                                  sh_dims((int)r, shp, b2, sizeof b2));
        }
        dims[i] = v;
        if (__builtin_mul_overflow(known, v, &known))
            overflow = true;
    }
    if (infer >= 0) {
        if (!overflow && known != 0 && numel % known == 0)
            dims[infer] = numel / known;
        else if (!overflow && known == 0 && numel == 0)
            dims[infer] = 0;
        else
            overflow = true;
        known = numel;
    }
    if (overflow || known != numel)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "cannot reshape %s (%lld elements) to %s",
                              sh_dims(x->rank, x->dims, b1, sizeof b1), (long long)numel,
                              sh_dims((int)r, shp, b2, sizeof b2));
    return sh_copy_as(k, 0, x, (int)r, dims, err);
}

static pare_status run_flatten(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const reshape_state *s = k->state;
    const pare_tensor *x = k->in[0];
    int64_t a = s->axis;
    if (a < 0)
        a += x->rank;
    if (a < 0 || a > x->rank)
        return pare_error_set(err, PARE_ERR_INVALID, "axis %lld out of range [%d, %d]",
                              (long long)s->axis, -x->rank, x->rank);
    int64_t dims[2] = {sh_prod(x->dims, 0, (int)a), sh_prod(x->dims, (int)a, x->rank)};
    return sh_copy_as(k, 0, x, 2, dims, err);
}

/* Axes of Squeeze/Unsqueeze: the attribute before opset 13, the input after. */
static pare_status sq_axes(pare_kctx *k, int64_t *axes, int64_t *n, bool *given, pare_error *err)
{
    const reshape_state *s = k->state;
    if (k->opset < 13) {
        if (s->n_attr > PARE_MAX_RANK)
            return pare_error_set(err, PARE_ERR_LIMIT, "too many axes");
        *n = (int64_t)s->n_attr;
        *given = s->has_attr;
        sh_memcpy(axes, s->attr_vals, s->n_attr * sizeof(int64_t));
        return PARE_OK;
    }
    const pare_tensor *t = sh_in(k, 1);
    *given = t != NULL;
    *n = 0;
    return t ? sh_ints(t, axes, PARE_MAX_RANK, n, "axes", err) : PARE_OK;
}

static pare_status run_squeeze(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const pare_tensor *x = k->in[0];
    int64_t axes[PARE_MAX_RANK], n;
    bool given;
    pare_status st = sq_axes(k, axes, &n, &given, err);
    if (st)
        return st;
    bool drop[PARE_MAX_RANK] = {0};
    if (!given || n == 0) {
        for (int i = 0; i < x->rank; i++)
            drop[i] = x->dims[i] == 1;
    }
    for (int64_t i = 0; i < n; i++) {
        int a;
        if ((st = sh_axis(axes[i], x->rank, &a, "axis", err)))
            return st;
        if (x->dims[a] != 1)
            return pare_error_set(err, PARE_ERR_INVALID, "cannot squeeze axis %d of size %lld", a,
                                  (long long)x->dims[a]);
        drop[a] = true;
    }
    int64_t dims[PARE_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++)
        if (!drop[i])
            dims[r++] = x->dims[i];
    return sh_copy_as(k, 0, x, r, dims, err);
}

static pare_status run_unsqueeze(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const pare_tensor *x = k->in[0];
    int64_t axes[PARE_MAX_RANK], n;
    bool given;
    pare_status st = sq_axes(k, axes, &n, &given, err);
    if (st)
        return st;
    int64_t r = x->rank + n;
    if (r > PARE_MAX_RANK)
        return pare_error_set(err, PARE_ERR_LIMIT, "output rank %lld too large", (long long)r);
    bool ins[PARE_MAX_RANK] = {0};
    for (int64_t i = 0; i < n; i++) {
        int a;
        if ((st = sh_axis(axes[i], (int)r, &a, "axis", err)))
            return st;
        if (ins[a])
            return pare_error_set(err, PARE_ERR_INVALID, "axis %d repeated", a);
        ins[a] = true;
    }
    int64_t dims[PARE_MAX_RANK];
    for (int i = 0, j = 0; i < r; i++)
        dims[i] = ins[i] ? 1 : x->dims[j++];
    return sh_copy_as(k, 0, x, (int)r, dims, err);
}

/* ------------------------------------------------------------------ */
/* Transpose                                                            */

typedef struct perm_state {
    int64_t perm[PARE_MAX_RANK];
    int n;
    bool given;
} perm_state;

static pare_status transpose_init(const pare_node *n, int64_t opset, void **state,
                                  pare_error *err)
{
    perm_state *s = calloc(1, sizeof *s);
    if (!s)
        return sh_nomem(err);
    *state = s;
    const int64_t *p;
    size_t c = pare_node_attr_ints(n, "perm", &p);
    s->given = pare_node_attr(n, "perm") != NULL;
    if (c > PARE_MAX_RANK)
        return pare_error_set(err, PARE_ERR_LIMIT, "perm too long");
    s->n = (int)c;
    sh_memcpy(s->perm, p, c * sizeof *p);
    return PARE_OK;
}

SH_ANY_DTYPE(transpose)
static pare_status transpose_impl(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const perm_state *s = k->state;
    const pare_tensor *x = k->in[0];
    int r = x->rank;
    int64_t perm[PARE_MAX_RANK], st_in[PARE_MAX_RANK], dims[PARE_MAX_RANK], ss[PARE_MAX_RANK];
    if (s->given) {
        if (s->n != r)
            return pare_error_set(err, PARE_ERR_INVALID, "perm has %d entries for a rank-%d input",
                                  s->n, r);
        bool seen[PARE_MAX_RANK] = {0};
        for (int i = 0; i < r; i++) {
            int64_t p = s->perm[i];
            if (p < 0)
                p += r;
            if (p < 0 || p >= r || seen[p])
                return pare_error_set(err, PARE_ERR_INVALID, "perm is not a permutation of 0..%d",
                                      r - 1);
            seen[p] = true;
            perm[i] = p;
        }
    } else {
        for (int i = 0; i < r; i++)
            perm[i] = r - 1 - i;
    }
    sh_strides(r, x->dims, st_in);
    for (int i = 0; i < r; i++) {
        dims[i] = x->dims[perm[i]];
        ss[i] = st_in[perm[i]];
    }
    pare_tensor *o;
    pare_status st = sh_alloc(k, 0, x->dtype, r, dims, &o, err);
    if (st)
        return st;
    sh_gather_view(k->pool, o->data, x->data, r, dims, ss, sh_esize(x->dtype));
    return sh_finish(o, err);
}

/* ------------------------------------------------------------------ */
/* Concat                                                               */

typedef struct axis_state {
    int64_t axis;
    bool has_axis;
    int64_t num_outputs;
    const int64_t *split;
    size_t n_split;
    bool has_split;
} axis_state;

static pare_status axis_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    axis_state *s = calloc(1, sizeof *s);
    if (!s)
        return sh_nomem(err);
    *state = s;
    s->has_axis = pare_node_attr(n, "axis") != NULL;
    int64_t dflt = strcmp(n->op_type, "Concat") == 0 ? 1 : strcmp(n->op_type, "OneHot") == 0 ? -1 : 0;
    s->axis = pare_node_attr_int(n, "axis", dflt);
    s->num_outputs = pare_node_attr_int(n, "num_outputs", 0);
    s->has_split = pare_node_attr(n, "split") != NULL;
    s->n_split = pare_node_attr_ints(n, "split", &s->split);
    if (strcmp(n->op_type, "Concat") == 0 && opset >= 4 && !s->has_axis)
        return pare_error_set(err, PARE_ERR_INVALID, "Concat needs an 'axis' attribute");
    return PARE_OK;
}

SH_ANY_DTYPE(concat)
static pare_status concat_impl(pare_kctx *k, pare_error *err)
{
    const axis_state *s = k->state;
    const pare_tensor *x0 = NULL;
    for (size_t i = 0; i < k->n_in && !x0; i++)
        x0 = k->in[i];
    if (!x0)
        return pare_error_set(err, PARE_ERR_INVALID, "Concat needs at least one input");
    int r = x0->rank, ax;
    if (r == 0)
        return pare_error_set(err, PARE_ERR_INVALID, "cannot concatenate scalars");
    pare_status st = sh_axis(s->axis, r, &ax, "axis", err);
    if (st)
        return st;
    int64_t dims[PARE_MAX_RANK];
    memcpy(dims, x0->dims, (size_t)r * sizeof *dims);
    dims[ax] = 0;
    for (size_t i = 0; i < k->n_in; i++) {
        const pare_tensor *t = k->in[i];
        if (!t)
            continue;
        char b1[256], b2[256];
        if (t->dtype != x0->dtype)
            return pare_error_set(err, PARE_ERR_INVALID, "input %zu is %s, input 0 is %s", i,
                                  pare_dtype_name(t->dtype), pare_dtype_name(x0->dtype));
        bool ok = t->rank == r;
        for (int d = 0; ok && d < r; d++)
            ok = d == ax || t->dims[d] == x0->dims[d];
        if (!ok)
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "input %zu has shape %s, incompatible with %s on axis %d", i,
                                  sh_dims(t->rank, t->dims, b1, sizeof b1),
                                  sh_dims(r, x0->dims, b2, sizeof b2), ax);
        dims[ax] += t->dims[ax];
    }
    pare_tensor *o;
    if ((st = sh_alloc(k, 0, x0->dtype, r, dims, &o, err)))
        return st;
    int64_t outer = sh_prod(dims, 0, ax), inner = sh_prod(dims, ax + 1, r);
    int64_t total = dims[ax] * inner, off = 0;
    size_t es = sh_esize(x0->dtype);
    for (size_t i = 0; i < k->n_in; i++) {
        const pare_tensor *t = k->in[i];
        if (!t || t->dims[ax] == 0)
            continue;
        int64_t chunk = t->dims[ax] * inner;
        sh_xfer x = {.rank = 2, .es = (int64_t)es, .src = t->data,
                     .dst = (char *)o->data + (size_t)off * es};
        x.dims[0] = outer;
        x.dims[1] = chunk;
        x.ss[0] = chunk;
        x.ss[1] = 1;
        x.ds[0] = total;
        x.ds[1] = 1;
        sh_xfer_run(k->pool, &x);
        off += chunk;
    }
    return sh_finish(o, err);
}

/* ------------------------------------------------------------------ */
/* Split                                                                */

SH_ANY_DTYPE(split)
static pare_status split_impl(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const axis_state *s = k->state;
    const pare_tensor *x = k->in[0];
    int ax;
    pare_status st = sh_axis(s->axis, x->rank, &ax, "axis", err);
    if (st)
        return st;
    size_t n = k->n_out;
    if (n == 0 || n > 1u << 20)
        return pare_error_set(err, PARE_ERR_INVALID, "bad output count %zu", n);
    int64_t *sz = calloc(n, sizeof *sz);
    if (!sz)
        return sh_nomem(err);
    int64_t dim = x->dims[ax];
    const pare_tensor *sp = sh_in(k, 1);
    if (k->opset >= 2 && k->opset < 13)
        sp = NULL;
    if (sp || (k->opset < 13 && s->has_split)) {
        int64_t cnt;
        if (sp) {
            int64_t *tmp = malloc((size_t)(sh_numel(sp) + 1) * sizeof *tmp);
            if (!tmp) {
                free(sz);
                return sh_nomem(err);
            }
            st = sh_ints(sp, tmp, sh_numel(sp), &cnt, "split", err);
            if (!st && cnt != (int64_t)n)
                st = pare_error_set(err, PARE_ERR_INVALID, "split has %lld values for %zu outputs",
                                    (long long)cnt, n);
            if (!st)
                memcpy(sz, tmp, n * sizeof *sz);
            free(tmp);
        } else {
            cnt = (int64_t)s->n_split;
            if (cnt != (int64_t)n)
                st = pare_error_set(err, PARE_ERR_INVALID, "split has %lld values for %zu outputs",
                                    (long long)cnt, n);
            else
                memcpy(sz, s->split, n * sizeof *sz);
        }
        int64_t sum = 0;
        for (size_t i = 0; !st && i < n; i++) {
            if (sz[i] < 0 || __builtin_add_overflow(sum, sz[i], &sum))
                st = pare_error_set(err, PARE_ERR_INVALID, "bad split size %lld",
                                    (long long)sz[i]);
        }
        if (!st && sum != dim)
            st = pare_error_set(err, PARE_ERR_INVALID, "split sizes sum to %lld, axis %d has %lld",
                                (long long)sum, ax, (long long)dim);
    } else if (k->opset >= 18 && s->num_outputs > 0) {
        if (s->num_outputs != (int64_t)n)
            st = pare_error_set(err, PARE_ERR_INVALID, "num_outputs %lld but %zu outputs",
                                (long long)s->num_outputs, n);
        int64_t each = (dim + (int64_t)n - 1) / (int64_t)n, left = dim;
        for (size_t i = 0; !st && i < n; i++) {
            sz[i] = each < left ? each : left;
            left -= sz[i];
        }
    } else {
        if (dim % (int64_t)n)
            st = pare_error_set(err, PARE_ERR_INVALID,
                                "axis %d of size %lld does not split evenly into %zu", ax,
                                (long long)dim, n);
        for (size_t i = 0; i < n; i++)
            sz[i] = dim / (int64_t)n;
    }
    int64_t outer = sh_prod(x->dims, 0, ax), inner = sh_prod(x->dims, ax + 1, x->rank), off = 0;
    size_t es = sh_esize(x->dtype);
    for (size_t i = 0; !st && i < n; i++) {
        int64_t dims[PARE_MAX_RANK];
        memcpy(dims, x->dims, (size_t)x->rank * sizeof *dims);
        dims[ax] = sz[i];
        pare_tensor *o;
        if ((st = sh_alloc(k, i, x->dtype, x->rank, dims, &o, err)))
            break;
        int64_t vd[2] = {outer, sz[i] * inner}, vs[2] = {dim * inner, 1};
        sh_gather_view(k->pool, o->data, (const char *)x->data + (size_t)off * es, 2, vd, vs, es);
        off += sz[i] * inner;
        st = sh_finish(o, err);
    }
    free(sz);
    return st;
}

/* ------------------------------------------------------------------ */
/* Slice                                                                */

typedef struct slice_state {
    const int64_t *starts, *ends, *axes;
    size_t n_starts, n_ends, n_axes;
    bool has_axes;
} slice_state;

static pare_status slice_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    slice_state *s = calloc(1, sizeof *s);
    if (!s)
        return sh_nomem(err);
    *state = s;
    s->n_starts = pare_node_attr_ints(n, "starts", &s->starts);
    s->n_ends = pare_node_attr_ints(n, "ends", &s->ends);
    s->n_axes = pare_node_attr_ints(n, "axes", &s->axes);
    s->has_axes = pare_node_attr(n, "axes") != NULL;
    return PARE_OK;
}

/* Clamps (start, end, step) on a dim of size dim; returns the element count. */
static int64_t slice_range(int64_t dim, int64_t *start, int64_t end, int64_t step)
{
    int64_t b = *start, e = end;
    if (dim == 0)
        return 0;
    if (b < 0)
        b += dim;
    if (e < 0)
        e += dim;
    int64_t cnt;
    if (step > 0) {
        b = b < 0 ? 0 : b > dim ? dim : b;
        e = e < 0 ? 0 : e > dim ? dim : e;
        cnt = e > b ? (e - b - 1) / step + 1 : 0;
    } else {
        b = b < 0 ? 0 : b > dim - 1 ? dim - 1 : b;
        e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
        if (b <= e)
            cnt = 0;
        else if (step == INT64_MIN)
            cnt = 1;
        else
            cnt = (b - e - 1) / -step + 1;
    }
    *start = b;
    return cnt;
}

SH_ANY_DTYPE(slice)
static pare_status slice_impl(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const slice_state *s = k->state;
    const pare_tensor *x = k->in[0];
    int r = x->rank;
    int64_t starts[PARE_MAX_RANK], ends[PARE_MAX_RANK], axes[PARE_MAX_RANK], steps[PARE_MAX_RANK];
    int64_t ns, ne, na, nst;
    pare_status st;
    if (k->opset < 10) {
        ns = (int64_t)s->n_starts;
        ne = (int64_t)s->n_ends;
        na = s->has_axes ? (int64_t)s->n_axes : ns;
        if (ns > r || ne > r || na > r)
            return pare_error_set(err, PARE_ERR_INVALID, "more starts/ends/axes than dims");
        sh_memcpy(starts, s->starts, (size_t)ns * sizeof(int64_t));
        sh_memcpy(ends, s->ends, (size_t)ne * sizeof(int64_t));
        if (s->has_axes)
            sh_memcpy(axes, s->axes, (size_t)na * sizeof(int64_t));
        else
            for (int64_t i = 0; i < na; i++)
                axes[i] = i;
        nst = ns;
        for (int64_t i = 0; i < ns; i++)
            steps[i] = 1;
    } else {
        if (!sh_in(k, 1) || !sh_in(k, 2))
            return pare_error_set(err, PARE_ERR_INVALID, "Slice needs starts and ends");
        if ((st = sh_ints(k->in[1], starts, PARE_MAX_RANK, &ns, "starts", err)) ||
            (st = sh_ints(k->in[2], ends, PARE_MAX_RANK, &ne, "ends", err)))
            return st;
        if (sh_in(k, 3)) {
            if ((st = sh_ints(k->in[3], axes, PARE_MAX_RANK, &na, "axes", err)))
                return st;
        } else {
            na = ns;
            for (int64_t i = 0; i < na; i++)
                axes[i] = i;
        }
        if (sh_in(k, 4)) {
            if ((st = sh_ints(k->in[4], steps, PARE_MAX_RANK, &nst, "steps", err)))
                return st;
        } else {
            nst = ns;
            for (int64_t i = 0; i < ns; i++)
                steps[i] = 1;
        }
    }
    if (ne != ns || na != ns || nst != ns)
        return pare_error_set(err, PARE_ERR_INVALID,
                              "starts, ends, axes and steps have %lld, %lld, %lld, %lld values",
                              (long long)ns, (long long)ne, (long long)na, (long long)nst);
    int64_t in_st[PARE_MAX_RANK], dims[PARE_MAX_RANK], ss[PARE_MAX_RANK];
    bool seen[PARE_MAX_RANK] = {0};
    sh_strides(r, x->dims, in_st);
    int64_t offset = 0;
    for (int i = 0; i < r; i++) {
        dims[i] = x->dims[i];
        ss[i] = in_st[i];
    }
    for (int64_t i = 0; i < ns; i++) {
        int a;
        if ((st = sh_axis(axes[i], r, &a, "axis", err)))
            return st;
        if (seen[a])
            return pare_error_set(err, PARE_ERR_INVALID, "axis %d repeated", a);
        seen[a] = true;
        if (steps[i] == 0)
            return pare_error_set(err, PARE_ERR_INVALID, "step 0 on axis %d", a);
        int64_t b = starts[i];
        int64_t cnt = slice_range(x->dims[a], &b, ends[i], steps[i]);
        dims[a] = cnt;
        ss[a] = cnt > 1 ? in_st[a] * steps[i] : in_st[a];
        if (cnt > 0)
            offset += b * in_st[a];
    }
    pare_tensor *o;
    if ((st = sh_alloc(k, 0, x->dtype, r, dims, &o, err)))
        return st;
    size_t es = sh_esize(x->dtype);
    if (sh_numel(o) > 0)
        sh_gather_view(k->pool, o->data, (const char *)x->data + (size_t)offset * es, r, dims, ss,
                       es);
    return sh_finish(o, err);
}

/* ------------------------------------------------------------------ */
/* Expand, Tile                                                         */

SH_ANY_DTYPE(expand)
static pare_status expand_impl(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const pare_tensor *x = k->in[0];
    int64_t shp[PARE_MAX_RANK], n;
    if (!sh_in(k, 1))
        return pare_error_set(err, PARE_ERR_INVALID, "Expand needs a shape");
    pare_status st = sh_ints(k->in[1], shp, PARE_MAX_RANK, &n, "shape", err);
    if (st)
        return st;
    int r = (int)(n > x->rank ? n : x->rank);
    int64_t dims[PARE_MAX_RANK], ss[PARE_MAX_RANK], in_st[PARE_MAX_RANK];
    sh_strides(x->rank, x->dims, in_st);
    for (int i = 0; i < r; i++) {
        int xi = i - (r - x->rank), si = i - (r - (int)n);
        int64_t a = xi >= 0 ? x->dims[xi] : 1, b = si >= 0 ? shp[si] : 1;
        char b1[256], b2[256];
        if (b < 0 || (a != b && a != 1 && b != 1))
            return pare_error_set(err, PARE_ERR_INVALID, "cannot expand %s to %s",
                                  sh_dims(x->rank, x->dims, b1, sizeof b1),
                                  sh_dims((int)n, shp, b2, sizeof b2));
        dims[i] = a == 1 ? b : a;
        ss[i] = (xi >= 0 && a != 1) ? in_st[xi] : 0;
    }
    pare_tensor *o;
    if ((st = sh_alloc(k, 0, x->dtype, r, dims, &o, err)))
        return st;
    sh_gather_view(k->pool, o->data, x->data, r, dims, ss, sh_esize(x->dtype));
    return sh_finish(o, err);
}

SH_ANY_DTYPE(tile)
static pare_status tile_impl(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const pare_tensor *x = k->in[0];
    int r = x->rank;
    int64_t rep[PARE_MAX_RANK], n;
    pare_status st;
    if (!sh_in(k, 1))
        return pare_error_set(err, PARE_ERR_INVALID, "Tile needs repeats");
    if (k->opset < 6) {
        int64_t tiles, axis;
        int a;
        if (!sh_in(k, 2))
            return pare_error_set(err, PARE_ERR_INVALID, "Tile-1 needs tiles and axis");
        if ((st = sh_scalar_i64(k->in[1], &tiles, "tiles", err)) ||
            (st = sh_scalar_i64(k->in[2], &axis, "axis", err)) ||
            (st = sh_axis(axis, r, &a, "axis", err)))
            return st;
        for (int i = 0; i < r; i++)
            rep[i] = i == a ? tiles : 1;
        n = r;
    } else if ((st = sh_ints(k->in[1], rep, PARE_MAX_RANK, &n, "repeats", err))) {
        return st;
    }
    if (n != r)
        return pare_error_set(err, PARE_ERR_INVALID, "repeats has %lld values for rank %d",
                              (long long)n, r);
    int64_t dims[PARE_MAX_RANK], in_st[PARE_MAX_RANK];
    sh_strides(r, x->dims, in_st);
    /* view: (rep_i, d_i) pairs with stride (0, s_i); size-1 entries dropped */
    sh_xfer v = {.es = (int64_t)sh_esize(x->dtype), .src = x->data};
    int vr = 0;
    for (int i = 0; i < r; i++) {
        if (rep[i] < 0)
            return pare_error_set(err, PARE_ERR_INVALID, "negative repeat %lld",
                                  (long long)rep[i]);
        if (__builtin_mul_overflow(x->dims[i], rep[i], &dims[i]))
            return pare_error_set(err, PARE_ERR_LIMIT, "Tile output too large");
        if (rep[i] != 1) {
            v.dims[vr] = rep[i];
            v.ss[vr++] = 0;
        }
        if (x->dims[i] != 1) {
            v.dims[vr] = x->dims[i];
            v.ss[vr++] = in_st[i];
        }
        if (vr > PARE_MAX_RANK - 2)
            return pare_error_set(err, PARE_ERR_LIMIT, "Tile rank too large");
    }
    pare_tensor *o;
    if ((st = sh_alloc(k, 0, x->dtype, r, dims, &o, err)))
        return st;
    if (sh_numel(o) == 0)
        return PARE_OK;
    if (vr == 0) {
        v.dims[0] = 1;
        v.ss[0] = 1;
        vr = 1;
    }
    v.rank = vr;
    v.dst = o->data;
    sh_strides(vr, v.dims, v.ds);
    sh_xfer_run(k->pool, &v);
    return sh_finish(o, err);
}

/* ------------------------------------------------------------------ */
/* Pad, CenterCropPad                                                   */

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

typedef struct pad_state {
    int mode;
    float value;
    const int64_t *pads;
    size_t n_pads;
    const int64_t *axes; /* CenterCropPad */
    size_t n_axes;
    bool has_axes;
} pad_state;

static pare_status pad_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    pad_state *s = calloc(1, sizeof *s);
    if (!s)
        return sh_nomem(err);
    *state = s;
    const char *m = pare_node_attr_string(n, "mode", "constant");
    if (strcmp(m, "constant") == 0)
        s->mode = PAD_CONSTANT;
    else if (strcmp(m, "reflect") == 0)
        s->mode = PAD_REFLECT;
    else if (strcmp(m, "edge") == 0)
        s->mode = PAD_EDGE;
    else if (strcmp(m, "wrap") == 0 && opset >= 19)
        s->mode = PAD_WRAP;
    else
        return pare_error_set(err, PARE_ERR_INVALID, "unknown pad mode '%s'", m);
    s->value = pare_node_attr_float(n, "value", 0.0f);
    s->n_pads = pare_node_attr_ints(n, opset < 2 ? "paddings" : "pads", &s->pads);
    s->has_axes = pare_node_attr(n, "axes") != NULL;
    s->n_axes = pare_node_attr_ints(n, "axes", &s->axes);
    return PARE_OK;
}

typedef struct pad_job {
    int rank;
    int64_t odims[PARE_MAX_RANK];
    int64_t ist[PARE_MAX_RANK];
    const int64_t *map[PARE_MAX_RANK]; /* out coordinate -> in coordinate or -1 */
    int64_t es;
    const char *src;
    char *dst;
    const char *fill; /* one element */
    int64_t lo, hi;   /* last axis: [lo, hi) maps contiguously to lo - pad_begin */
} pad_job;

static void pad_rows(void *ctx, int64_t b, int64_t e)
{
    const pad_job *j = ctx;
    int r = j->rank;
    int64_t n = j->odims[r - 1], es = j->es;
    const int64_t *last = j->map[r - 1];
    for (int64_t row = b; row < e; row++) {
        int64_t rem = row, so = 0;
        bool fill = false;
        for (int d = r - 2; d >= 0; d--) {
            int64_t c = rem % j->odims[d];
            rem /= j->odims[d];
            int64_t m = j->map[d][c];
            if (m < 0)
                fill = true;
            else
                so += m * j->ist[d];
        }
        char *dst = j->dst + row * n * es;
        if (fill) {
            for (int64_t i = 0; i < n; i++)
                memcpy(dst + i * es, j->fill, (size_t)es);
            continue;
        }
        const char *src = j->src + so * es;
        for (int64_t i = 0; i < j->lo; i++) {
            int64_t m = last[i];
            memcpy(dst + i * es, m < 0 ? j->fill : src + m * es, (size_t)es);
        }
        if (j->hi > j->lo)
            memcpy(dst + j->lo * es, src + last[j->lo] * es, (size_t)((j->hi - j->lo) * es));
        for (int64_t i = j->hi > j->lo ? j->hi : j->lo; i < n; i++) {
            int64_t m = last[i];
            memcpy(dst + i * es, m < 0 ? j->fill : src + m * es, (size_t)es);
        }
    }
}

/* Whether output index c of an axis padded by pb at the start reads input index m
 * straight through (c - pb == m, without overflowing). */
static bool pad_through(int64_t c, int64_t pb, int64_t m)
{
    int64_t i;
    return m >= 0 && !__builtin_sub_overflow(c, pb, &i) && i == m;
}

/* The padded copy itself, shared by Pad and CenterCropPad: begin/end per axis. */
static pare_status pad_apply(pare_kctx *k, const pare_tensor *x, const int64_t *pb,
                             const int64_t *pe, int mode, const void *fill, pare_error *err)
{
    int r = x->rank;
    int64_t odims[PARE_MAX_RANK];
    char b1[256];
    int64_t total = 0;
    for (int i = 0; i < r; i++) {
        if (__builtin_add_overflow(x->dims[i], pb[i], &odims[i]) ||
            __builtin_add_overflow(odims[i], pe[i], &odims[i]) || odims[i] < 0)
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "pads %lld,%lld on axis %d of %s give a negative size",
                                  (long long)pb[i], (long long)pe[i], i,
                                  sh_dims(r, x->dims, b1, sizeof b1));
        if (mode != PAD_CONSTANT && x->dims[i] == 0 && odims[i] > 0)
            return pare_error_set(err, PARE_ERR_INVALID, "cannot pad an empty axis %d in %s mode",
                                  i, mode == PAD_REFLECT ? "reflect" : mode == PAD_EDGE ? "edge"
                                                                                     : "wrap");
    }
    pare_tensor *o;
    pare_status st = sh_alloc(k, 0, x->dtype, r, odims, &o, err);
    if (st)
        return st;
    int64_t on = sh_numel(o);
    if (on == 0)
        return PARE_OK;
    size_t es = sh_esize(x->dtype);
    if (r == 0) {
        memcpy(o->data, x->data, es);
        return sh_finish(o, err);
    }
    if (sh_numel(x) == 0) { /* constant mode (the others refused above): all fill */
        sh_fill(o->data, on, fill, es);
        return sh_finish(o, err);
    }
    /* no dim is 0 here, so the sum of the dims is at most their product plus r */
    for (int i = 0; i < r; i++)
        total += odims[i];
    int64_t *maps = malloc((size_t)total * sizeof *maps);
    if (!maps)
        return sh_nomem(err);
    pad_job j = {.rank = r, .es = (int64_t)es, .src = x->data, .dst = o->data, .fill = fill};
    sh_strides(r, x->dims, j.ist);
    int64_t *m = maps;
    for (int d = 0; d < r; d++) {
        int64_t dim = x->dims[d];
        j.odims[d] = odims[d];
        j.map[d] = m;
        for (int64_t c = 0; c < odims[d]; c++) {
            /* c - pb overflows only for a huge negative pb: then it is past the end */
            int64_t i;
            bool past = __builtin_sub_overflow(c, pb[d], &i);
            if (past || i < 0 || i >= dim) {
                switch (mode) {
                case PAD_CONSTANT: i = -1; break;
                case PAD_EDGE: i = !past && i < 0 ? 0 : dim - 1; break;
                case PAD_WRAP: i = c % dim - pb[d] % dim; i = ((i % dim) + dim) % dim; break;
                default:
                    if (dim == 1) {
                        i = 0;
                    } else {
                        int64_t p = 2 * (dim - 1);
                        i = c % p - pb[d] % p;
                        i = ((i % p) + p) % p;
                        if (i >= dim)
                            i = p - i;
                    }
                }
            }
            m[c] = i;
        }
        m += odims[d];
    }
    /* the run of the last axis that maps straight through */
    const int64_t *last = j.map[r - 1];
    int64_t n = odims[r - 1];
    j.lo = j.hi = 0;
    for (int64_t c = 0; c < n; c++)
        if (pad_through(c, pb[r - 1], last[c])) {
            j.lo = c;
            j.hi = c;
            while (j.hi < n && pad_through(j.hi, pb[r - 1], last[j.hi]))
                j.hi++;
            break;
        }
    int64_t rows = on / n;
    pare_parallel_for(k->pool, rows, n >= SH_GRAIN ? 1 : SH_GRAIN / n, pad_rows, &j);
    free(maps);
    return sh_finish(o, err);
}

SH_ANY_DTYPE(pad)
static pare_status pad_impl(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const pad_state *s = k->state;
    const pare_tensor *x = k->in[0];
    int r = x->rank;
    int64_t pads[2 * PARE_MAX_RANK], np, axes[PARE_MAX_RANK], na;
    pare_status st;
    if (k->opset < 11) {
        if (s->n_pads > 2 * PARE_MAX_RANK)
            return pare_error_set(err, PARE_ERR_INVALID, "too many pads");
        np = (int64_t)s->n_pads;
        sh_memcpy(pads, s->pads, (size_t)np * sizeof *pads);
    } else {
        if (!sh_in(k, 1))
            return pare_error_set(err, PARE_ERR_INVALID, "Pad needs pads");
        if ((st = sh_ints(k->in[1], pads, 2 * PARE_MAX_RANK, &np, "pads", err)))
            return st;
    }
    if (k->opset >= 18 && sh_in(k, 3)) {
        if ((st = sh_ints(k->in[3], axes, PARE_MAX_RANK, &na, "axes", err)))
            return st;
    } else {
        na = r;
        for (int i = 0; i < r; i++)
            axes[i] = i;
    }
    if (np != 2 * na)
        return pare_error_set(err, PARE_ERR_INVALID, "pads has %lld values, expected %lld",
                              (long long)np, (long long)(2 * na));
    int64_t pb[PARE_MAX_RANK] = {0}, pe[PARE_MAX_RANK] = {0};
    for (int64_t i = 0; i < na; i++) {
        int a;
        if ((st = sh_axis(axes[i], r, &a, "axis", err)))
            return st;
        pb[a] = pads[i];
        pe[a] = pads[na + i];
    }
    unsigned char fill[16] = {0};
    size_t es = sh_esize(x->dtype);
    const pare_tensor *cv = k->opset >= 11 ? sh_in(k, 2) : NULL;
    if (s->mode == PAD_CONSTANT) {
        if (cv && sh_numel(cv) > 0) {
            if (cv->dtype != x->dtype)
                return pare_error_set(err, PARE_ERR_INVALID,
                                      "constant_value is %s, data is %s",
                                      pare_dtype_name(cv->dtype), pare_dtype_name(x->dtype));
            memcpy(fill, cv->data, es);
        } else if (k->opset < 11 && x->dtype != PARE_DT_STRING) {
            pare_dtype_set_f64(x->dtype, fill, 0, s->value);
        }
    }
    return pad_apply(k, x, pb, pe, s->mode, fill, err);
}

SH_ANY_DTYPE(center_crop_pad)
static pare_status center_crop_pad_impl(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const pad_state *s = k->state;
    const pare_tensor *x = k->in[0];
    int r = x->rank;
    int64_t shp[PARE_MAX_RANK], n, axes[PARE_MAX_RANK], na;
    if (!sh_in(k, 1))
        return pare_error_set(err, PARE_ERR_INVALID, "CenterCropPad needs a shape");
    pare_status st = sh_ints(k->in[1], shp, PARE_MAX_RANK, &n, "shape", err);
    if (st)
        return st;
    if (s->has_axes) {
        if (s->n_axes > PARE_MAX_RANK)
            return pare_error_set(err, PARE_ERR_INVALID, "too many axes");
        na = (int64_t)s->n_axes;
        memcpy(axes, s->axes, (size_t)na * sizeof *axes);
    } else {
        na = r;
        for (int i = 0; i < r; i++)
            axes[i] = i;
    }
    if (n != na)
        return pare_error_set(err, PARE_ERR_INVALID, "shape has %lld values for %lld axes",
                              (long long)n, (long long)na);
    int64_t pb[PARE_MAX_RANK] = {0}, pe[PARE_MAX_RANK] = {0};
    for (int64_t i = 0; i < na; i++) {
        int a;
        if ((st = sh_axis(axes[i], r, &a, "axis", err)))
            return st;
        if (shp[i] < 0)
            return pare_error_set(err, PARE_ERR_INVALID, "negative target size %lld",
                                  (long long)shp[i]);
        int64_t d = shp[i] - x->dims[a];
        /* growing: pad floor(d/2) in front; shrinking: crop floor(-d/2) in front */
        if (d >= 0) {
            pb[a] = d / 2;
            pe[a] = d - d / 2;
        } else {
            pb[a] = -((-d) / 2);
            pe[a] = d - pb[a];
        }
    }
    unsigned char fill[16] = {0};
    return pad_apply(k, x, pb, pe, PAD_CONSTANT, fill, err);
}

/* ------------------------------------------------------------------ */
/* DepthToSpace, SpaceToDepth                                           */

typedef struct d2s_state {
    int64_t b;
    bool crd;
} d2s_state;

static pare_status d2s_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    d2s_state *s = calloc(1, sizeof *s);
    if (!s)
        return sh_nomem(err);
    *state = s;
    s->b = pare_node_attr_int(n, "blocksize", 0);
    s->crd = strcmp(pare_node_attr_string(n, "mode", "DCR"), "CRD") == 0;
    if (s->b <= 0 || s->b > (1 << 20))
        return pare_error_set(err, PARE_ERR_INVALID, "bad blocksize %lld", (long long)s->b);
    return PARE_OK;
}

SH_ANY_DTYPE(depth_to_space)
static pare_status depth_to_space_impl(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const d2s_state *s = k->state;
    const pare_tensor *x = k->in[0];
    if (x->rank != 4)
        return pare_error_set(err, PARE_ERR_INVALID, "input must be 4-D, got rank %d", x->rank);
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3], b = s->b;
    if (C % (b * b))
        return pare_error_set(err, PARE_ERR_INVALID, "channels %lld not divisible by %lld",
                              (long long)C, (long long)(b * b));
    int64_t c2 = C / (b * b), HW = H * W;
    int64_t odims[4] = {N, c2, H * b, W * b};
    int64_t vd[6] = {N, c2, H, b, W, b}, vs[6];
    vs[0] = C * HW;
    vs[2] = W;
    vs[4] = 1;
    if (s->crd) {
        vs[1] = b * b * HW;
        vs[3] = b * HW;
        vs[5] = HW;
    } else {
        vs[1] = HW;
        vs[3] = b * c2 * HW;
        vs[5] = c2 * HW;
    }
    pare_tensor *o;
    pare_status st = sh_alloc(k, 0, x->dtype, 4, odims, &o, err);
    if (st)
        return st;
    sh_gather_view(k->pool, o->data, x->data, 6, vd, vs, sh_esize(x->dtype));
    return sh_finish(o, err);
}

SH_ANY_DTYPE(space_to_depth)
static pare_status space_to_depth_impl(pare_kctx *k, pare_error *err)
{
    if (k->n_in < 1 || !k->in[0])
        return sh_missing(err);
    const d2s_state *s = k->state;
    const pare_tensor *x = k->in[0];
    if (x->rank != 4)
        return pare_error_set(err, PARE_ERR_INVALID, "input must be 4-D, got rank %d", x->rank);
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3], b = s->b;
    if (H % b || W % b)
        return pare_error_set(err, PARE_ERR_INVALID, "spatial dims %lldx%lld not divisible by %lld",
                              (long long)H, (long long)W, (long long)b);
    int64_t odims[4] = {N, C * b * b, H / b, W / b};
    int64_t vd[6] = {N, b, b, C, H / b, W / b};
    int64_t vs[6] = {C * H * W, W, 1, H * W, b * W, b};
    pare_tensor *o;
    pare_status st = sh_alloc(k, 0, x->dtype, 4, odims, &o, err);
    if (st)
        return st;
    sh_gather_view(k->pool, o->data, x->data, 6, vd, vs, sh_esize(x->dtype));
    return sh_finish(o, err);
}

#define SH_MOVE_KERNELS                                                                   \
    K("Constant", 1, 0, const_init, run_constant, const_release),                         \
    K("ConstantOfShape", 9, 0, cos_init, run_constant_of_shape, const_release),           \
    K("Shape", 1, 0, shape_init, run_shape, sh_free_state),                               \
    K("Size", 1, 0, NULL, run_size, NULL),                                                \
    K("Reshape", 1, 0, reshape_init, run_reshape, sh_free_state),                         \
    K("Flatten", 1, 0, reshape_init, run_flatten, sh_free_state),                         \
    K("Squeeze", 1, 0, reshape_init, run_squeeze, sh_free_state),                         \
    K("Unsqueeze", 1, 0, reshape_init, run_unsqueeze, sh_free_state),                     \
    K("Transpose", 1, 0, transpose_init, run_transpose, sh_free_state),                   \
    K("Concat", 1, 0, axis_init, run_concat, sh_free_state),                              \
    K("Split", 1, 0, axis_init, run_split, sh_free_state),                                \
    K("Slice", 1, 0, slice_init, run_slice, sh_free_state),                               \
    K("Expand", 8, 0, NULL, run_expand, NULL),                                            \
    K("Tile", 1, 0, NULL, run_tile, NULL),                                                \
    K("Pad", 1, 0, pad_init, run_pad, sh_free_state),                                     \
    K("CenterCropPad", 18, 0, pad_init, run_center_crop_pad, sh_free_state),              \
    K("DepthToSpace", 1, 0, d2s_init, run_depth_to_space, sh_free_state),                 \
    K("SpaceToDepth", 1, 0, d2s_init, run_space_to_depth, sh_free_state),
