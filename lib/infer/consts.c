/* Small tensors with known contents: shape vectors, axes, scales. Elements
 * may be symbols (a dim of some tensor), so Shape -> Gather -> Concat ->
 * Reshape chains keep "N" as "N". */
#include <math.h>
#include "infer/infer_int.h"

bool ix_dtype_intlike(int dt)
{
    switch (dt) {
    case PARE_DT_INT8: case PARE_DT_UINT8: case PARE_DT_INT16: case PARE_DT_UINT16:
    case PARE_DT_INT32: case PARE_DT_UINT32: case PARE_DT_INT64: case PARE_DT_UINT64:
    case PARE_DT_BOOL:
        return true;
    default:
        return false;
    }
}

static bool dtype_floatlike(int dt)
{
    return dt == PARE_DT_FLOAT || dt == PARE_DT_DOUBLE || dt == PARE_DT_FLOAT16 ||
           dt == PARE_DT_BFLOAT16;
}

ix_const *ix_const_new(ix_ctx *x, int dtype, int rank, const int64_t *dims)
{
    if (rank < 0 || rank > IX_CONST_RANK)
        return NULL;
    int64_t n = 1;
    bool zero = false, big = false;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return NULL;
        if (dims[i] == 0)
            zero = true;
        else if (dims[i] > IX_CONST_MAX || n * dims[i] > IX_CONST_MAX)
            big = true;
        else
            n *= dims[i];
    }
    if (zero)
        n = 0;
    else if (big)
        return NULL;
    ix_const *k = ix_alloc(x, sizeof *k);
    if (!k)
        return NULL;
    k->dtype = dtype;
    k->rank = rank;
    for (int i = 0; i < rank; i++)
        k->dims[i] = dims[i];
    k->n = (int)n;
    return k;
}

/* Wraps v to the range of an integer dtype, as a cast would. */
static int64_t int_norm(int dt, int64_t v)
{
    switch (dt) {
    case PARE_DT_INT8: return (int8_t)v;
    case PARE_DT_UINT8: return (uint8_t)v;
    case PARE_DT_INT16: return (int16_t)v;
    case PARE_DT_UINT16: return (uint16_t)v;
    case PARE_DT_INT32: return (int32_t)v;
    case PARE_DT_UINT32: return (uint32_t)v;
    case PARE_DT_BOOL: return v != 0;
    default: return v;
    }
}

const ix_const *ix_const_from_tensor(ix_ctx *x, const pare_tensor *t)
{
    if (!t || t->rank > IX_CONST_RANK)
        return NULL;
    if (!ix_dtype_intlike(t->dtype) && !dtype_floatlike(t->dtype))
        return NULL;
    ix_const *k = ix_const_new(x, t->dtype, t->rank, t->dims);
    if (!k)
        return NULL;
    size_t need = pare_dtype_nbytes(t->dtype, (uint64_t)k->n);
    if (k->n && (!t->data || t->nbytes < need))
        return NULL;
    for (int i = 0; i < k->n; i++) {
        ix_elem *e = &k->e[i];
        const void *p = t->data;
        e->kind = IXE_INT;
        switch (t->dtype) {
        case PARE_DT_INT8: e->i = ((const int8_t *)p)[i]; break;
        case PARE_DT_UINT8: e->i = ((const uint8_t *)p)[i]; break;
        case PARE_DT_BOOL: e->i = ((const uint8_t *)p)[i] != 0; break;
        case PARE_DT_INT16: { int16_t v; memcpy(&v, (const char *)p + 2 * i, 2); e->i = v; break; }
        case PARE_DT_UINT16: { uint16_t v; memcpy(&v, (const char *)p + 2 * i, 2); e->i = v; break; }
        case PARE_DT_INT32: { int32_t v; memcpy(&v, (const char *)p + 4 * i, 4); e->i = v; break; }
        case PARE_DT_UINT32: { uint32_t v; memcpy(&v, (const char *)p + 4 * i, 4); e->i = v; break; }
        case PARE_DT_INT64: case PARE_DT_UINT64: {
            int64_t v;
            memcpy(&v, (const char *)p + 8 * i, 8);
            e->i = v;
            break;
        }
        default:
            e->kind = IXE_FLT;
            e->f = pare_dtype_get_f64(t->dtype, p, (size_t)i);
            break;
        }
    }
    return k;
}

const ix_const *ix_const_from_shape(ix_ctx *x, const ix_shape *s, int from, int to)
{
    if (s->rank < 0 || from > to)
        return NULL;
    int64_t n = to - from;
    ix_const *k = ix_const_new(x, PARE_DT_INT64, 1, &n);
    if (!k)
        return NULL;
    for (int i = from; i < to; i++) {
        ix_elem *e = &k->e[i - from];
        if (ix_known(s->d[i])) {
            e->kind = IXE_INT;
            e->i = s->d[i].v;
        } else if (s->d[i].sym) {
            e->kind = IXE_SYM;
            e->sym = s->d[i].sym;
        }
    }
    return k;
}

bool ix_const_int(const ix_const *k, int i, int64_t *out)
{
    if (!k || i < 0 || i >= k->n || k->e[i].kind != IXE_INT)
        return false;
    *out = k->e[i].i;
    return true;
}

bool ix_const_all_int(const ix_const *k)
{
    if (!k)
        return false;
    for (int i = 0; i < k->n; i++)
        if (k->e[i].kind != IXE_INT)
            return false;
    return true;
}

ix_dim ix_const_dim(const ix_const *k, int i)
{
    if (!k || i < 0 || i >= k->n)
        return ix_unk();
    const ix_elem *e = &k->e[i];
    if (e->kind == IXE_INT && e->i >= 0)
        return ix_d(e->i);
    if (e->kind == IXE_SYM) {
        ix_dim d = {-1, e->sym};
        return d;
    }
    return ix_unk();
}

bool ix_elem_num(const ix_elem *e)
{
    return e->kind == IXE_INT || e->kind == IXE_FLT;
}

double ix_elem_f(const ix_elem *e)
{
    return e->kind == IXE_INT ? (double)e->i : e->f;
}

/* Numpy broadcasting of const dims; false when incompatible or too large. */
static bool const_bcast_dims(const ix_const *const *in, int nin, int *rank, int64_t *dims)
{
    int r = 0;
    for (int k = 0; k < nin; k++)
        if (in[k]->rank > r)
            r = in[k]->rank;
    for (int i = 0; i < r; i++) {
        int64_t d = 1;
        for (int k = 0; k < nin; k++) {
            int j = i - (r - in[k]->rank);
            int64_t v = j >= 0 ? in[k]->dims[j] : 1;
            if (v == 1)
                continue;
            if (d != 1 && d != v)
                return false;
            d = v;
        }
        dims[i] = d;
    }
    *rank = r;
    return true;
}

/* Flat index in `in` of flat output index `o` under broadcasting. */
static int bcast_index(const ix_const *in, int rank, const int64_t *dims, int o)
{
    int idx = 0, stride = 1;
    for (int i = rank - 1; i >= 0; i--) {
        int c = (int)(o % dims[i]);
        o = (int)(o / dims[i]);
        int j = i - (rank - in->rank);
        if (j < 0)
            continue;
        if (in->dims[j] != 1)
            idx += c * stride;
        stride *= (int)in->dims[j];
    }
    return idx;
}

static bool is_cmp(const char *op)
{
    return !strcmp(op, "Equal") || !strcmp(op, "Less") || !strcmp(op, "Greater") ||
           !strcmp(op, "LessOrEqual") || !strcmp(op, "GreaterOrEqual");
}

static ix_elem elem_binary(const char *op, int dt, const ix_elem *a, const ix_elem *b)
{
    ix_elem r = {IXE_UNK, 0, 0, NULL};
    bool intres = ix_dtype_intlike(dt);
    /* symbols: only the identities that keep the symbol */
    if (a->kind == IXE_SYM || b->kind == IXE_SYM) {
        const ix_elem *s = a->kind == IXE_SYM ? a : b, *o = a->kind == IXE_SYM ? b : a;
        bool o0 = o->kind == IXE_INT && o->i == 0, o1 = o->kind == IXE_INT && o->i == 1;
        if (!strcmp(op, "Equal") && a->kind == IXE_SYM && b->kind == IXE_SYM && a->sym == b->sym) {
            r.kind = IXE_INT;
            r.i = 1;
        } else if (((!strcmp(op, "Add")) && o0) || (!strcmp(op, "Sub") && o0 && s == a) ||
                   (!strcmp(op, "Mul") && o1) || (!strcmp(op, "Div") && o1 && s == a) ||
                   ((!strcmp(op, "Max") || !strcmp(op, "Min")) && o->kind == IXE_SYM &&
                    o->sym == s->sym)) {
            r = *s;
        } else if (!strcmp(op, "Mul") && o->kind == IXE_INT && o->i == 0) {
            r.kind = IXE_INT;
            r.i = 0;
        } else if (!strcmp(op, "Max") && o->kind == IXE_INT && o->i == 0) {
            r = *s; /* dims are never negative */
        }
        return r;
    }
    if (!ix_elem_num(a) || !ix_elem_num(b))
        return r;
    if (is_cmp(op) || !strcmp(op, "And") || !strcmp(op, "Or") || !strcmp(op, "Xor")) {
        bool v;
        if (a->kind == IXE_INT && b->kind == IXE_INT) {
            int64_t p = a->i, q = b->i;
            v = !strcmp(op, "Equal") ? p == q : !strcmp(op, "Less") ? p < q
              : !strcmp(op, "Greater") ? p > q : !strcmp(op, "LessOrEqual") ? p <= q
              : !strcmp(op, "GreaterOrEqual") ? p >= q : !strcmp(op, "And") ? (p && q)
              : !strcmp(op, "Or") ? (p || q) : ((p != 0) != (q != 0));
        } else {
            double p = ix_elem_f(a), q = ix_elem_f(b);
            v = !strcmp(op, "Equal") ? p == q : !strcmp(op, "Less") ? p < q
              : !strcmp(op, "Greater") ? p > q : !strcmp(op, "LessOrEqual") ? p <= q
              : !strcmp(op, "GreaterOrEqual") ? p >= q : !strcmp(op, "And") ? (p != 0 && q != 0)
              : !strcmp(op, "Or") ? (p != 0 || q != 0) : ((p != 0) != (q != 0));
        }
        r.kind = IXE_INT;
        r.i = v;
        return r;
    }
    if (intres) {
        if (a->kind != IXE_INT || b->kind != IXE_INT)
            return r;
        int64_t p = a->i, q = b->i, v;
        if (!strcmp(op, "Add")) {
            if (__builtin_add_overflow(p, q, &v))
                return r;
        } else if (!strcmp(op, "Sub")) {
            if (__builtin_sub_overflow(p, q, &v))
                return r;
        } else if (!strcmp(op, "Mul")) {
            if (__builtin_mul_overflow(p, q, &v))
                return r;
        } else if (!strcmp(op, "Div")) {
            if (q == 0 || (p == INT64_MIN && q == -1))
                return r;
            v = p / q;
        } else if (!strcmp(op, "Mod") || !strcmp(op, "FMod")) {
            if (q == 0 || (p == INT64_MIN && q == -1))
                return r;
            v = p % q;
            if (!strcmp(op, "Mod") && v != 0 && ((v < 0) != (q < 0)))
                v += q;
        } else if (!strcmp(op, "Max")) {
            v = p > q ? p : q;
        } else if (!strcmp(op, "Min")) {
            v = p < q ? p : q;
        } else {
            return r;
        }
        r.kind = IXE_INT;
        r.i = int_norm(dt, v);
        return r;
    }
    double p = ix_elem_f(a), q = ix_elem_f(b), v;
    if (!strcmp(op, "Add"))
        v = p + q;
    else if (!strcmp(op, "Sub"))
        v = p - q;
    else if (!strcmp(op, "Mul"))
        v = p * q;
    else if (!strcmp(op, "Div"))
        v = p / q;
    else if (!strcmp(op, "Max"))
        v = p > q ? p : q;
    else if (!strcmp(op, "Min"))
        v = p < q ? p : q;
    else if (!strcmp(op, "Pow"))
        v = pow(p, q);
    else
        return r;
    if (dt == PARE_DT_FLOAT)
        v = (float)v;
    r.kind = IXE_FLT;
    r.f = v;
    return r;
}

const ix_const *ix_const_binary(ix_ctx *x, const char *op, int out_dtype, const ix_const *a,
                                const ix_const *b)
{
    if (!a || !b)
        return NULL;
    const ix_const *in[2] = {a, b};
    int rank;
    int64_t dims[IX_CONST_RANK];
    if (!const_bcast_dims(in, 2, &rank, dims))
        return NULL;
    ix_const *k = ix_const_new(x, out_dtype, rank, dims);
    if (!k)
        return NULL;
    int dt = is_cmp(op) ? a->dtype : out_dtype;
    for (int o = 0; o < k->n; o++)
        k->e[o] = elem_binary(op, dt, &a->e[bcast_index(a, rank, dims, o)],
                              &b->e[bcast_index(b, rank, dims, o)]);
    return k;
}

const ix_const *ix_const_unary(ix_ctx *x, const char *op, int out_dtype, const ix_const *a)
{
    if (!a)
        return NULL;
    ix_const *k = ix_const_new(x, out_dtype, a->rank, a->dims);
    if (!k)
        return NULL;
    bool intres = ix_dtype_intlike(out_dtype);
    for (int i = 0; i < k->n; i++) {
        const ix_elem *e = &a->e[i];
        ix_elem *r = &k->e[i];
        if (!strcmp(op, "Identity")) {
            *r = *e;
            continue;
        }
        if (!ix_elem_num(e))
            continue;
        if (intres && e->kind == IXE_INT) {
            int64_t v = e->i;
            if (!strcmp(op, "Neg") && v != INT64_MIN)
                v = -v;
            else if (!strcmp(op, "Abs") && v != INT64_MIN)
                v = v < 0 ? -v : v;
            else if (!strcmp(op, "Not"))
                v = !v;
            else if (!strcmp(op, "Relu"))
                v = v < 0 ? 0 : v;
            else if (strcmp(op, "Floor") && strcmp(op, "Ceil") && strcmp(op, "Round"))
                continue;
            r->kind = IXE_INT;
            r->i = int_norm(out_dtype, v);
            continue;
        }
        double v = ix_elem_f(e);
        if (!strcmp(op, "Neg"))
            v = -v;
        else if (!strcmp(op, "Abs"))
            v = fabs(v);
        else if (!strcmp(op, "Floor"))
            v = floor(v);
        else if (!strcmp(op, "Ceil"))
            v = ceil(v);
        else if (!strcmp(op, "Round"))
            v = nearbyint(v);
        else if (!strcmp(op, "Sqrt"))
            v = sqrt(v);
        else if (!strcmp(op, "Reciprocal"))
            v = 1.0 / v;
        else if (!strcmp(op, "Relu"))
            v = v < 0 ? 0 : v;
        else
            continue;
        if (out_dtype == PARE_DT_FLOAT)
            v = (float)v;
        r->kind = IXE_FLT;
        r->f = v;
    }
    return k;
}

const ix_const *ix_const_where(ix_ctx *x, const ix_const *cond, const ix_const *a,
                               const ix_const *b)
{
    if (!cond || !a || !b)
        return NULL;
    const ix_const *in[3] = {cond, a, b};
    int rank;
    int64_t dims[IX_CONST_RANK];
    if (!const_bcast_dims(in, 3, &rank, dims))
        return NULL;
    ix_const *k = ix_const_new(x, a->dtype, rank, dims);
    if (!k)
        return NULL;
    for (int o = 0; o < k->n; o++) {
        const ix_elem *c = &cond->e[bcast_index(cond, rank, dims, o)];
        if (c->kind != IXE_INT)
            continue;
        k->e[o] = c->i ? a->e[bcast_index(a, rank, dims, o)] : b->e[bcast_index(b, rank, dims, o)];
    }
    return k;
}

const ix_const *ix_const_cast(ix_ctx *x, const ix_const *a, int to)
{
    if (!a || (!ix_dtype_intlike(to) && !dtype_floatlike(to)))
        return NULL;
    ix_const *k = ix_const_new(x, to, a->rank, a->dims);
    if (!k)
        return NULL;
    for (int i = 0; i < k->n; i++) {
        const ix_elem *e = &a->e[i];
        ix_elem *r = &k->e[i];
        if (ix_dtype_intlike(to)) {
            /* a dim stays itself in the integer types wide enough for dims */
            if (e->kind == IXE_SYM && (to == PARE_DT_INT64 || to == PARE_DT_UINT64 ||
                                       to == PARE_DT_INT32 || to == PARE_DT_UINT32)) {
                *r = *e;
            } else if (e->kind == IXE_INT) {
                r->kind = IXE_INT;
                r->i = int_norm(to, e->i);
            } else if (e->kind == IXE_FLT) {
                double f = e->f;
                if (to == PARE_DT_BOOL) {
                    r->kind = IXE_INT;
                    r->i = f != 0;
                } else if (isfinite(f) && f > -9.2e18 && f < 9.2e18) {
                    r->kind = IXE_INT;
                    r->i = int_norm(to, (int64_t)f);
                }
            }
        } else if (ix_elem_num(e)) {
            double f = ix_elem_f(e);
            if (to == PARE_DT_FLOAT)
                f = (float)f;
            else if (to == PARE_DT_FLOAT16)
                f = pare_f16_to_f32(pare_f32_to_f16((float)f));
            else if (to == PARE_DT_BFLOAT16)
                f = pare_bf16_to_f32(pare_f32_to_bf16((float)f));
            r->kind = IXE_FLT;
            r->f = f;
        }
    }
    return k;
}

const ix_const *ix_const_expand(ix_ctx *x, const ix_const *a, int rank, const int64_t *dims)
{
    if (!a || rank > IX_CONST_RANK)
        return NULL;
    ix_const *k = ix_const_new(x, a->dtype, rank, dims);
    if (!k || a->rank > rank)
        return NULL;
    for (int i = 0; i < a->rank; i++) {
        int64_t ad = a->dims[i], od = dims[rank - a->rank + i];
        if (ad != 1 && ad != od)
            return NULL;
    }
    for (int o = 0; o < k->n; o++)
        k->e[o] = a->e[bcast_index(a, rank, dims, o)];
    return k;
}

const ix_const *ix_const_reshape(ix_ctx *x, const ix_const *a, int rank, const int64_t *dims)
{
    if (!a)
        return NULL;
    ix_const *k = ix_const_new(x, a->dtype, rank, dims);
    if (!k || k->n != a->n)
        return NULL;
    memcpy(k->e, a->e, (size_t)a->n * sizeof *a->e);
    return k;
}
