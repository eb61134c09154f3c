/* Shape-manipulating ops: Reshape, Transpose, Concat, Split, Slice, Gather,
 * Squeeze/Unsqueeze, Shape/Size, Expand, Tile, Pad, Resize, reductions,
 * ConstantOfShape, Constant, Range, TopK, OneHot and friends. These are the
 * ops that carry small integer tensors ("values") along. */
#include <math.h>
#include <inttypes.h>
#include "infer/infer_int.h"

#define MAXI (2 * PARE_MAX_RANK)

/* An int list that is an attribute before opset `since` and an input
 * (index in) from then on. 0: absent; 1: known (*n entries); -1: present
 * but not known. */
static int ints_arg(ix_node *c, int64_t since, const char *attr, size_t in, int64_t *out, int *n)
{
    *n = 0;
    if (c->opset < since) {
        const pare_attr *a = pare_node_attr(c->n, attr);
        if (!a)
            return 0;
        if (a->type == PARE_ATTR_INT) {
            out[0] = a->i;
            *n = 1;
            return 1;
        }
        if (a->type != PARE_ATTR_INTS || a->n > MAXI)
            return -1;
        for (size_t i = 0; i < a->n; i++)
            out[i] = a->ints[i];
        *n = (int)a->n;
        return 1;
    }
    if (!ix_has(c, in))
        return 0;
    const ix_const *k = ix_cst(c, in);
    if (!k || !ix_const_all_int(k) || k->n > MAXI)
        return -1;
    for (int i = 0; i < k->n; i++)
        out[i] = k->e[i].i;
    *n = k->n;
    return 1;
}

/* Shape given by a 1-D int tensor input: known elements, symbols, or, when
 * only the tensor's length is known, that many unknown dims. */
static bool shape_from_input(ix_node *c, size_t in, ix_shape *s)
{
    const ix_const *k = ix_cst(c, in);
    if (k && k->rank <= 1) {
        s->rank = k->n;
        for (int i = 0; i < k->n; i++)
            s->d[i] = ix_const_dim(k, i);
        return true;
    }
    ix_shape ks;
    if (ix_sh(c, in, &ks) && ks.rank == 1 && ix_known(ks.d[0]) && ks.d[0].v <= PARE_MAX_RANK) {
        ix_shape_rank(s, (int)ks.d[0].v);
        return true;
    }
    s->rank = -1;
    return false;
}

static bool dims_all_known(const ix_shape *s, int64_t *dims)
{
    if (s->rank < 0)
        return false;
    for (int i = 0; i < s->rank; i++) {
        if (!ix_known(s->d[i]))
            return false;
        dims[i] = s->d[i].v;
    }
    return true;
}

/* Sets output o to shape s, carrying contents k reshaped when all is known. */
static void set_with_const(ix_node *c, size_t o, int dt, const ix_shape *s, const ix_const *k)
{
    ix_set(c, o, dt, s);
    int64_t dims[PARE_MAX_RANK];
    if (k && s->rank <= IX_CONST_RANK && dims_all_known(s, dims))
        ix_set_const(c, o, ix_const_reshape(c->x, k, s->rank, dims));
}

/* ---- Reshape ---- */

typedef struct mono {
    int64_t num;
    int ns;
    const char *s[PARE_MAX_RANK];
    bool unk;
} mono;

static void mono_mul(mono *m, ix_dim d)
{
    if (ix_known(d)) {
        if (d.v && m->num > INT64_MAX / d.v)
            m->unk = true;
        else
            m->num *= d.v;
    } else if (d.sym && m->ns < PARE_MAX_RANK) {
        m->s[m->ns++] = d.sym;
    } else {
        m->unk = true;
    }
}

/* total / part as a dim, cancelling symbols. */
static ix_dim mono_div(mono *total, const mono *part)
{
    if (total->unk || part->unk || part->num == 0 || total->num % part->num)
        return ix_unk();
    for (int i = 0; i < part->ns; i++) {
        int j = 0;
        while (j < total->ns && total->s[j] != part->s[i])
            j++;
        if (j == total->ns)
            return ix_unk();
        total->s[j] = total->s[--total->ns];
    }
    int64_t q = total->num / part->num;
    if (total->ns == 0)
        return ix_d(q);
    if (total->ns == 1 && q == 1) {
        ix_dim d = {-1, total->s[0]};
        return d;
    }
    return ix_unk();
}

static int op_reshape(ix_node *c)
{
    ix_shape x, t;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    const ix_const *k = NULL;
    if (c->opset < 5) {
        const int64_t *v;
        size_t n = ix_attr_ints(c, "shape", &v);
        if (!ix_attr_has(c, "shape") || n > PARE_MAX_RANK) {
            ix_set(c, 0, dt, NULL);
            return IX_OK;
        }
        /* Reshape-1: the shape is an attribute */
        ix_const *kk = ix_const_new(c->x, PARE_DT_INT64, 1, (int64_t[]){(int64_t)n});
        if (!kk)
            return IX_OK; /* out of memory: the driver reports it */
        for (size_t i = 0; i < n; i++) {
            kk->e[i].kind = IXE_INT;
            kk->e[i].i = v[i];
        }
        k = kk;
    } else {
        k = ix_cst(c, 1);
    }
    if (!k) {
        shape_from_input(c, 1, &t);
        ix_set(c, 0, dt, &t);
        return IX_OK;
    }
    if (k->rank > 1 || k->n > PARE_MAX_RANK)
        return ix_fail(c, "the shape input must be 1-D");
    bool allowzero = c->opset >= 14 && ix_attr_i(c, "allowzero", 0);
    int neg = -1;
    t.rank = k->n;
    for (int i = 0; i < k->n; i++) {
        const ix_elem *e = &k->e[i];
        t.d[i] = ix_unk();
        if (e->kind == IXE_SYM) {
            t.d[i].sym = e->sym;
        } else if (e->kind == IXE_INT) {
            if (e->i == -1) {
                if (neg >= 0)
                    return ix_fail(c, "the shape has more than one -1");
                neg = i;
            } else if (e->i == 0 && !allowzero) {
                if (x.rank >= 0 && i >= x.rank)
                    return ix_fail(c, "shape entry %d is 0 but the input has rank %d", i,
                                   x.rank);
                if (x.rank >= 0)
                    t.d[i] = x.d[i];
            } else if (e->i < 0) {
                return ix_fail(c, "invalid shape entry %" PRId64, e->i);
            } else {
                t.d[i] = ix_d(e->i);
            }
        }
    }
    if (neg >= 0 && x.rank >= 0) {
        mono total = {1, 0, {0}, false}, part = {1, 0, {0}, false};
        for (int i = 0; i < x.rank; i++)
            mono_mul(&total, x.d[i]);
        for (int i = 0; i < t.rank; i++)
            if (i != neg)
                mono_mul(&part, t.d[i]);
        if (!total.unk && !part.unk && total.ns == 0 && part.ns == 0 && part.num &&
            total.num % part.num)
            return ix_fail(c, "cannot reshape %" PRId64 " elements with the given shape",
                           total.num);
        t.d[neg] = mono_div(&total, &part);
    }
    int64_t xd[PARE_MAX_RANK], td[PARE_MAX_RANK];
    if (neg < 0 && dims_all_known(&x, xd) && dims_all_known(&t, td)) {
        uint64_t a, b;
        if (!pare_shape_numel(x.rank, xd, &a, NULL) && !pare_shape_numel(t.rank, td, &b, NULL) &&
            a != b)
            return ix_fail(c, "cannot reshape %" PRIu64 " elements into %" PRIu64, a, b);
    }
    set_with_const(c, 0, dt, &t, ix_cst(c, 0));
    return IX_OK;
}

/* ---- Transpose, Flatten ---- */

static int op_transpose(ix_node *c)
{
    ix_shape x, o;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    const int64_t *perm;
    size_t np = ix_attr_ints(c, "perm", &perm);
    if (x.rank < 0) {
        if (np && np <= PARE_MAX_RANK)
            ix_shape_rank(&o, (int)np);
        else
            o.rank = -1;
        ix_set(c, 0, dt, &o);
        return IX_OK;
    }
    if (np && (int)np != x.rank)
        return ix_fail(c, "perm has %zu entries for an input of rank %d", np, x.rank);
    bool seen[PARE_MAX_RANK] = {false};
    o.rank = x.rank;
    for (int i = 0; i < x.rank; i++) {
        int p = np ? (int)perm[i] : x.rank - 1 - i;
        if (np && !ix_axis(perm[i], x.rank, &p))
            return ix_fail(c, "perm entry %" PRId64 " out of range", perm[i]);
        if (seen[p])
            return ix_fail(c, "perm repeats axis %d", p);
        seen[p] = true;
        o.d[i] = x.d[p];
    }
    ix_set(c, 0, dt, &o);
    const ix_const *k = ix_cst(c, 0);
    if (k && k->rank <= 1)
        ix_set_const(c, 0, k);
    return IX_OK;
}

static int op_flatten(ix_node *c)
{
    ix_shape x, o;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    o.rank = 2;
    if (x.rank < 0) {
        ix_shape_rank(&o, 2);
        ix_set(c, 0, dt, &o);
        return IX_OK;
    }
    int64_t axis = ix_attr_i(c, "axis", 1);
    if (axis < 0)
        axis += x.rank;
    if (axis < 0 || axis > x.rank)
        return ix_fail(c, "axis out of range for rank %d", x.rank);
    o.d[0] = ix_dims_product(&x, 0, (int)axis);
    o.d[1] = ix_dims_product(&x, (int)axis, x.rank);
    set_with_const(c, 0, dt, &o, ix_cst(c, 0));
    return IX_OK;
}

/* ---- Concat, Split ---- */

static int op_concat(ix_node *c)
{
    int dt = 0, rank = -1;
    ix_shape s;
    for (size_t i = 0; i < c->nin; i++) {
        if (!ix_has(c, i))
            continue;
        if (!dt)
            dt = ix_dt(c, i);
        if (!ix_sh(c, i, &s))
            continue;
        if (rank >= 0 && s.rank != rank)
            return ix_fail(c, "inputs have ranks %d and %d", rank, s.rank);
        rank = s.rank;
    }
    if (rank < 0) {
        ix_set(c, 0, dt, NULL);
        return IX_OK;
    }
    if (rank == 0)
        return ix_fail(c, "cannot concatenate scalars");
    int axis; /* Concat-1 defaulted to axis 1 */
    if (!ix_axis(ix_attr_i(c, "axis", c->opset < 4 ? 1 : 0), rank, &axis))
        return ix_fail(c, "axis out of range for rank %d", rank);
    ix_shape o;
    ix_shape_rank(&o, rank);
    int64_t sum = 0;
    const char *sym = NULL;
    bool sum_unknown = false, first = true;
    for (size_t i = 0; i < c->nin; i++) {
        if (!ix_has(c, i))
            continue;
        if (!ix_sh(c, i, &s)) {
            sum_unknown = true;
            continue;
        }
        for (int d = 0; d < rank; d++) {
            if (d == axis)
                continue;
            if (ix_dim_differ(o.d[d], s.d[d])) {
                char a[256], b[256];
                return ix_fail(c, "input %zu has dims %s that do not match %s along axis %d", i,
                               ix_shape_str(&s, a, sizeof a), ix_shape_str(&o, b, sizeof b),
                               d);
            }
            if (first || ix_known(s.d[d]) || (!o.d[d].sym && s.d[d].sym))
                if (!ix_known(o.d[d]))
                    o.d[d] = s.d[d];
        }
        first = false;
        ix_dim a = s.d[axis];
        if (ix_known(a)) {
            if (sum > INT64_MAX - a.v)
                sum_unknown = true;
            else
                sum += a.v;
        } else if (a.sym && !sym) {
            sym = a.sym;
        } else {
            sum_unknown = true;
        }
    }
    if (sum_unknown)
        o.d[axis] = ix_unk();
    else if (sym)
        o.d[axis] = sum == 0 ? (ix_dim){-1, sym} : ix_unk();
    else
        o.d[axis] = ix_d(sum);
    ix_set(c, 0, dt, &o);
    /* contents: every input known */
    int64_t od[PARE_MAX_RANK];
    if (!dims_all_known(&o, od) || rank > IX_CONST_RANK)
        return IX_OK;
    ix_const *k = ix_const_new(c->x, dt, rank, od);
    if (!k)
        return IX_OK;
    int64_t outer = 1, inner_out = 1;
    for (int d = 0; d < axis; d++)
        outer *= od[d];
    for (int d = axis; d < rank; d++)
        inner_out *= od[d];
    int64_t off = 0;
    for (size_t i = 0; i < c->nin; i++) {
        if (!ix_has(c, i))
            continue;
        const ix_const *a = ix_cst(c, i);
        if (!a || a->rank != rank)
            return IX_OK;
        int64_t inner = 1;
        for (int d = axis; d < rank; d++)
            inner *= a->dims[d];
        for (int64_t q = 0; q < outer; q++)
            for (int64_t j = 0; j < inner; j++)
                k->e[q * inner_out + off + j] = a->e[q * inner + j];
        off += inner;
    }
    ix_set_const(c, 0, k);
    return IX_OK;
}

static int op_split(ix_node *c)
{
    ix_shape x;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    size_t nout = c->nout;
    if (x.rank < 0) {
        for (size_t o = 0; o < nout; o++)
            ix_set(c, o, dt, NULL);
        return IX_OK;
    }
    int axis;
    if (!ix_axis(ix_attr_i(c, "axis", 0), x.rank, &axis))
        return ix_fail(c, "axis out of range for rank %d", x.rank);
    int64_t sizes[MAXI];
    int ns;
    /* Split-1 took the sizes as an input or an attribute */
    int have = ints_arg(c, c->opset < 2 && ix_has(c, 1) ? 1 : 13, "split", 1, sizes, &ns);
    ix_dim d = x.d[axis];
    ix_shape o = x;
    if (have == 1 && ns > 0) {
        if ((size_t)ns != nout)
            return ix_fail(c, "split has %d entries for %zu outputs", ns, nout);
        int64_t sum = 0;
        for (int i = 0; i < ns; i++) {
            if (sizes[i] < 0)
                return ix_fail(c, "negative split size");
            if (!ix_add(sum, sizes[i], &sum))
                return ix_fail(c, "split sizes overflow");
        }
        if (ix_known(d) && sum != d.v)
            return ix_fail(c, "split sizes add up to %" PRId64 " but the axis has %" PRId64, sum,
                           d.v);
        const ix_const *k = ix_cst(c, 0);
        int64_t off = 0;
        for (size_t i = 0; i < nout; i++) {
            o.d[axis] = ix_d(sizes[i]);
            ix_set(c, i, dt, &o);
            /* pieces of a known vector */
            if (k && k->rank == 1 && off <= k->n && sizes[i] <= k->n - off) {
                ix_const *r = ix_const_new(c->x, k->dtype, 1, &sizes[i]);
                if (r) {
                    memcpy(r->e, &k->e[off], (size_t)sizes[i] * sizeof *r->e);
                    ix_set_const(c, i, r);
                }
            }
            off += sizes[i];
        }
    } else if (have == -1) {
        o.d[axis] = ix_unk();
        for (size_t i = 0; i < nout; i++)
            ix_set(c, i, dt, &o);
    } else {
        int64_t n = (int64_t)nout;
        const ix_const *k = ix_cst(c, 0);
        int64_t off = 0;
        for (size_t i = 0; i < nout; i++) {
            o.d[axis] = ix_unk();
            if (n == 1) {
                o.d[axis] = d;
            } else if (ix_known(d) && n > 0) {
                if (d.v % n == 0) {
                    o.d[axis] = ix_d(d.v / n);
                } else if (c->opset >= 18) {
                    int64_t chunk = d.v / n + (d.v % n != 0), used;
                    if (i + 1 < nout)
                        o.d[axis] = ix_d(chunk);
                    else if (ix_mul(chunk, n - 1, &used) && d.v >= used)
                        o.d[axis] = ix_d(d.v - used);
                }
            }
            ix_set(c, i, dt, &o);
            if (k && k->rank == 1 && ix_known(o.d[axis]) && off <= k->n &&
                o.d[axis].v <= k->n - off) {
                ix_const *r = ix_const_new(c->x, k->dtype, 1, &o.d[axis].v);
                if (r) {
                    memcpy(r->e, &k->e[off], (size_t)o.d[axis].v * sizeof *r->e);
                    ix_set_const(c, i, r);
                }
            }
            if (ix_known(o.d[axis]) && !ix_add(off, o.d[axis].v, &off))
                k = NULL;
        }
    }
    return IX_OK;
}

/* ---- Slice ---- */

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Length of a slice of a dim of size n; also the first index. */
static int64_t slice_len(int64_t n, int64_t start, int64_t end, int64_t step, int64_t *first)
{
    if (start < 0)
        start += n;
    if (end < 0)
        end += n;
    if (step > 0) {
        start = clamp64(start, 0, n);
        end = clamp64(end, 0, n);
        *first = start;
        return end > start ? (end - start - 1) / step + 1 : 0;
    }
    start = clamp64(start, 0, n - 1);
    end = clamp64(end, -1, n - 1);
    *first = start;
    if (start <= end)
        return 0;
    return step == INT64_MIN ? 1 : (start - end - 1) / -step + 1;
}

static int op_slice(ix_node *c)
{
    ix_shape x;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    if (x.rank < 0) {
        ix_set(c, 0, dt, NULL);
        return IX_OK;
    }
    int64_t starts[MAXI], ends[MAXI], axes[MAXI], steps[MAXI];
    int ns, ne, na, nst;
    int hs = ints_arg(c, 10, "starts", 1, starts, &ns);
    int he = ints_arg(c, 10, "ends", 2, ends, &ne);
    int ha = ints_arg(c, 10, "axes", 3, axes, &na);
    int hst = c->opset >= 10 ? ints_arg(c, 10, "steps", 4, steps, &nst) : 0;
    ix_shape o = x;
    if (ha == -1) {
        ix_shape_rank(&o, x.rank);
        ix_set(c, 0, dt, &o);
        return IX_OK;
    }
    if (hs != 1 || he != 1) {
        /* which axes are sliced is known, how much is not */
        if (ha == 1) {
            for (int i = 0; i < na; i++) {
                int a;
                if (!ix_axis(axes[i], x.rank, &a))
                    return ix_fail(c, "axis %" PRId64 " out of range", axes[i]);
                o.d[a] = ix_unk();
            }
        } else {
            int n = hs == 1 ? ns : he == 1 ? ne : -1;
            if (n < 0)
                ix_shape_rank(&o, x.rank);
            for (int i = 0; i < n && i < x.rank; i++)
                o.d[i] = ix_unk();
        }
        ix_set(c, 0, dt, &o);
        return IX_OK;
    }
    if (ns != ne)
        return ix_fail(c, "starts has %d entries but ends has %d", ns, ne);
    if (ha != 1) {
        na = ns;
        for (int i = 0; i < na; i++)
            axes[i] = i;
    } else if (na != ns) {
        return ix_fail(c, "axes has %d entries but starts has %d", na, ns);
    }
    if (hst == -1) {
        for (int i = 0; i < na; i++) {
            int a;
            if (!ix_axis(axes[i], x.rank, &a))
                return ix_fail(c, "axis %" PRId64 " out of range", axes[i]);
            o.d[a] = ix_unk();
        }
        ix_set(c, 0, dt, &o);
        return IX_OK;
    }
    if (hst != 1) {
        nst = ns;
        for (int i = 0; i < nst; i++)
            steps[i] = 1;
    } else if (nst != ns) {
        return ix_fail(c, "steps has %d entries but starts has %d", nst, ns);
    }
    int64_t first[PARE_MAX_RANK] = {0}, step_of[PARE_MAX_RANK];
    bool sliced[PARE_MAX_RANK] = {false};
    for (int i = 0; i < x.rank; i++)
        step_of[i] = 1;
    for (int i = 0; i < na; i++) {
        int a;
        if (!ix_axis(axes[i], x.rank, &a))
            return ix_fail(c, "axis %" PRId64 " out of range", axes[i]);
        if (sliced[a])
            return ix_fail(c, "axis %d is sliced twice", a);
        sliced[a] = true;
        if (steps[i] == 0)
            return ix_fail(c, "step is 0");
        step_of[a] = steps[i];
        ix_dim d = x.d[a];
        if (ix_known(d)) {
            o.d[a] = ix_d(slice_len(d.v, starts[i], ends[i], steps[i], &first[a]));
        } else if (steps[i] == 1 && starts[i] == 0 && ends[i] >= INT32_MAX) {
            /* the whole dim, whatever it is: exporters write INT32_MAX or
             * INT64_MAX for "to the end" (a single dim of 2^31 is taken as
             * impossible, as int32 shape tensors do) */
            o.d[a] = d;
        } else {
            o.d[a] = ix_unk();
        }
    }
    ix_set(c, 0, dt, &o);
    const ix_const *k = ix_cst(c, 0);
    if (k && k->rank == 1 && o.rank == 1 && ix_known(o.d[0])) {
        ix_const *r = ix_const_new(c->x, k->dtype, 1, &o.d[0].v);
        if (r) {
            for (int64_t j = 0; j < o.d[0].v; j++) {
                int64_t src;
                if (!ix_mul(j, step_of[0], &src) || !ix_add(src, first[0], &src) || src < 0 ||
                    src >= k->n)
                    return IX_OK;
                r->e[j] = k->e[src];
            }
            ix_set_const(c, 0, r);
        }
    }
    return IX_OK;
}

/* ---- Gather family ---- */

static int op_gather(ix_node *c)
{
    ix_shape x, idx, o;
    ix_sh(c, 0, &x);
    ix_sh(c, 1, &idx);
    int dt = ix_dt(c, 0);
    if (x.rank < 0 || idx.rank < 0) {
        ix_set(c, 0, dt, NULL);
        return IX_OK;
    }
    if (x.rank == 0)
        return ix_fail(c, "cannot gather from a scalar");
    int axis;
    if (!ix_axis(ix_attr_i(c, "axis", 0), x.rank, &axis))
        return ix_fail(c, "axis out of range for rank %d", x.rank);
    if (x.rank + idx.rank - 1 > PARE_MAX_RANK)
        return ix_fail(c, "output rank too large");
    o.rank = 0;
    for (int i = 0; i < axis; i++)
        o.d[o.rank++] = x.d[i];
    for (int i = 0; i < idx.rank; i++)
        o.d[o.rank++] = idx.d[i];
    for (int i = axis + 1; i < x.rank; i++)
        o.d[o.rank++] = x.d[i];
    ix_set(c, 0, dt, &o);
    const ix_const *k = ix_cst(c, 0), *ik = ix_cst(c, 1);
    int64_t od[PARE_MAX_RANK];
    if (!k || !ik || !ix_const_all_int(ik) || !dims_all_known(&o, od) ||
        o.rank > IX_CONST_RANK || k->rank != x.rank || ik->rank != idx.rank)
        return IX_OK;
    ix_const *r = ix_const_new(c->x, k->dtype, o.rank, od);
    if (!r)
        return IX_OK;
    int64_t outer = 1, inner = 1, n = k->dims[axis];
    for (int i = 0; i < axis; i++)
        outer *= k->dims[i];
    for (int i = axis + 1; i < k->rank; i++)
        inner *= k->dims[i];
    int64_t w = 0;
    for (int64_t q = 0; q < outer; q++)
        for (int j = 0; j < ik->n; j++) {
            int64_t ix = ik->e[j].i < 0 ? ik->e[j].i + n : ik->e[j].i;
            if (ix < 0 || ix >= n)
                return IX_OK;
            for (int64_t in = 0; in < inner; in++)
                r->e[w++] = k->e[(q * n + ix) * inner + in];
        }
    ix_set_const(c, 0, r);
    return IX_OK;
}

static int op_gather_elements(ix_node *c)
{
    ix_shape x, idx;
    ix_sh(c, 0, &x);
    ix_sh(c, 1, &idx);
    if (x.rank >= 0 && idx.rank >= 0 && x.rank != idx.rank)
        return ix_fail(c, "data has rank %d but indices have rank %d", x.rank, idx.rank);
    ix_set(c, 0, ix_dt(c, 0), &idx);
    return IX_OK;
}

static int op_gather_nd(ix_node *c)
{
    ix_shape x, idx, o;
    ix_sh(c, 0, &x);
    ix_sh(c, 1, &idx);
    int dt = ix_dt(c, 0);
    int64_t b = ix_attr_i(c, "batch_dims", 0);
    if (x.rank < 0 || idx.rank < 1 || !ix_known(idx.d[idx.rank - 1])) {
        ix_set(c, 0, dt, NULL);
        return IX_OK;
    }
    int64_t last = idx.d[idx.rank - 1].v;
    if (b < 0 || b + last > x.rank)
        return ix_fail(c, "indices of depth %" PRId64 " with %" PRId64
                          " batch dims exceed the data's rank %d", last, b, x.rank);
    o.rank = 0;
    for (int i = 0; i < idx.rank - 1; i++)
        o.d[o.rank++] = idx.d[i];
    for (int64_t i = b + last; i < x.rank && o.rank < PARE_MAX_RANK; i++)
        o.d[o.rank++] = x.d[i];
    ix_set(c, 0, dt, &o);
    return IX_OK;
}

/* ---- Squeeze, Unsqueeze ---- */

static int op_squeeze(ix_node *c)
{
    ix_shape x, o;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    int64_t axes[MAXI];
    int na;
    int h = ints_arg(c, 13, "axes", 1, axes, &na);
    if (x.rank < 0 || h == -1) {
        ix_set(c, 0, dt, NULL);
        return IX_OK;
    }
    bool drop[PARE_MAX_RANK] = {false};
    if (h == 1 && na > 0) {
        for (int i = 0; i < na; i++) {
            int a;
            if (!ix_axis(axes[i], x.rank, &a))
                return ix_fail(c, "axis %" PRId64 " out of range", axes[i]);
            if (ix_known(x.d[a]) && x.d[a].v != 1)
                return ix_fail(c, "cannot squeeze axis %d of size %" PRId64, a, x.d[a].v);
            drop[a] = true;
        }
    } else {
        for (int i = 0; i < x.rank; i++) {
            if (!ix_known(x.d[i])) {
                ix_set(c, 0, dt, NULL);
                return IX_OK;
            }
            drop[i] = x.d[i].v == 1;
        }
    }
    o.rank = 0;
    for (int i = 0; i < x.rank; i++)
        if (!drop[i])
            o.d[o.rank++] = x.d[i];
    set_with_const(c, 0, dt, &o, ix_cst(c, 0));
    return IX_OK;
}

static int op_unsqueeze(ix_node *c)
{
    ix_shape x, o;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    int64_t axes[MAXI];
    int na;
    int h = ints_arg(c, 13, "axes", 1, axes, &na);
    if (h != 1) {
        if (h == -1 && x.rank >= 0) {
            ix_shape ks;
            if (ix_sh(c, 1, &ks) && ks.rank == 1 && ix_known(ks.d[0]) &&
                ks.d[0].v <= PARE_MAX_RANK - x.rank) {
                ix_shape_rank(&o, x.rank + (int)ks.d[0].v);
                ix_set(c, 0, dt, &o);
                return IX_OK;
            }
        }
        ix_set(c, 0, dt, NULL);
        return IX_OK;
    }
    if (x.rank < 0) {
        ix_set(c, 0, dt, NULL);
        return IX_OK;
    }
    int r = x.rank + na;
    if (r > PARE_MAX_RANK)
        return ix_fail(c, "output rank too large");
    bool ins[PARE_MAX_RANK] = {false};
    for (int i = 0; i < na; i++) {
        int a;
        if (!ix_axis(axes[i], r, &a))
            return ix_fail(c, "axis %" PRId64 " out of range", axes[i]);
        if (ins[a])
            return ix_fail(c, "axis %d repeated", a);
        ins[a] = true;
    }
    o.rank = r;
    for (int i = 0, j = 0; i < r; i++)
        o.d[i] = ins[i] ? ix_d(1) : x.d[j++];
    set_with_const(c, 0, dt, &o, ix_cst(c, 0));
    return IX_OK;
}

/* ---- Shape, Size ---- */

static int op_shape(ix_node *c)
{
    ix_shape x, o;
    ix_sh(c, 0, &x);
    o.rank = 1;
    if (x.rank < 0) {
        o.d[0] = ix_unk();
        ix_set(c, 0, PARE_DT_INT64, &o);
        return IX_OK;
    }
    int64_t start = ix_attr_i(c, "start", 0), end = ix_attr_i(c, "end", x.rank);
    if (start < 0)
        start += x.rank;
    if (end < 0)
        end += x.rank;
    start = clamp64(start, 0, x.rank);
    end = clamp64(end, 0, x.rank);
    if (end < start)
        end = start;
    o.d[0] = ix_d(end - start);
    ix_set(c, 0, PARE_DT_INT64, &o);
    ix_set_const(c, 0, ix_const_from_shape(c->x, &x, (int)start, (int)end));
    return IX_OK;
}

static int op_size(ix_node *c)
{
    ix_shape x, o;
    ix_sh(c, 0, &x);
    o.rank = 0;
    ix_set(c, 0, PARE_DT_INT64, &o);
    if (x.rank < 0)
        return IX_OK;
    ix_dim n = ix_dims_product(&x, 0, x.rank);
    ix_const *k = ix_const_new(c->x, PARE_DT_INT64, 0, NULL);
    if (k && (ix_known(n) || n.sym)) {
        k->e[0].kind = ix_known(n) ? IXE_INT : IXE_SYM;
        k->e[0].i = n.v;
        k->e[0].sym = n.sym;
        ix_set_const(c, 0, k);
    }
    return IX_OK;
}

/* ---- Expand, Tile, Pad ---- */

static int op_expand(ix_node *c)
{
    ix_shape x, t, o;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    if (!shape_from_input(c, 1, &t)) {
        ix_set(c, 0, dt, NULL);
        return IX_OK;
    }
    if (ix_broadcast(&x, &t, &o) < 0) {
        char a[256], b[256];
        return ix_fail(c, "cannot expand %s to %s", ix_shape_str(&x, a, sizeof a),
                       ix_shape_str(&t, b, sizeof b));
    }
    ix_set(c, 0, dt, &o);
    int64_t od[PARE_MAX_RANK];
    if (dims_all_known(&o, od))
        ix_set_const(c, 0, ix_const_expand(c->x, ix_cst(c, 0), o.rank, od));
    return IX_OK;
}

static int op_tile(ix_node *c)
{
    ix_shape x, o;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    const ix_const *r = ix_cst(c, 1);
    if (x.rank < 0) {
        ix_set(c, 0, dt, NULL);
        return IX_OK;
    }
    o = x;
    if (!r || r->n != x.rank) {
        if (r)
            return ix_fail(c, "repeats has %d entries for an input of rank %d", r->n, x.rank);
        ix_shape_rank(&o, x.rank);
        ix_set(c, 0, dt, &o);
        return IX_OK;
    }
    for (int i = 0; i < x.rank; i++) {
        int64_t v;
        o.d[i] = ix_const_int(r, i, &v) && v >= 0 ? ix_dim_mul(x.d[i], ix_d(v)) : ix_unk();
    }
    ix_set(c, 0, dt, &o);
    return IX_OK;
}

static int op_pad(ix_node *c)
{
    ix_shape x, o;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    if (x.rank < 0) {
        ix_set(c, 0, dt, NULL);
        return IX_OK;
    }
    int64_t pads[MAXI], axes[MAXI];
    int np, na;
    int hp = ints_arg(c, 11, c->opset < 2 ? "paddings" : "pads", 1, pads, &np);
    int ha = c->opset >= 18 ? ints_arg(c, 18, "axes", 3, axes, &na) : 0;
    o = x;
    if (ha == -1 || hp != 1) {
        if (ha == 1) {
            for (int i = 0; i < na; i++) {
                int a;
                if (!ix_axis(axes[i], x.rank, &a))
                    return ix_fail(c, "axis %" PRId64 " out of range", axes[i]);
                o.d[a] = ix_unk();
            }
        } else {
            ix_shape_rank(&o, x.rank);
        }
        ix_set(c, 0, dt, &o);
        return IX_OK;
    }
    if (ha != 1) {
        na = x.rank;
        for (int i = 0; i < na; i++)
            axes[i] = i;
    }
    if (np != 2 * na)
        return ix_fail(c, "pads has %d entries for %d axes", np, na);
    for (int i = 0; i < na; i++) {
        int a;
        if (!ix_axis(axes[i], x.rank, &a))
            return ix_fail(c, "axis %" PRId64 " out of range", axes[i]);
        int64_t both, v;
        if (!ix_add(pads[i], pads[i + na], &both)) {
            o.d[a] = ix_unk();
            continue;
        }
        if (ix_known(x.d[a]) && ix_add(x.d[a].v, both, &v) && v < 0)
            return ix_fail(c, "padding leaves a negative size");
        o.d[a] = ix_dim_add(x.d[a], both);
    }
    ix_set(c, 0, dt, &o);
    return IX_OK;
}

/* ---- Resize, Upsample ---- */

static void scale_dims(const ix_shape *x, const ix_const *scales, const int *axes, int na,
                       ix_shape *o)
{
    *o = *x;
    for (int i = 0; i < na; i++) {
        int a = axes[i];
        const ix_elem *e = &scales->e[i];
        if (ix_elem_num(e) && ix_elem_f(e) == 1.0)
            continue; /* unscaled: the dim stays, symbol and all */
        if (!ix_known(x->d[a]) || !ix_elem_num(e)) {
            o->d[a] = ix_unk();
            continue;
        }
        /* in float, as the reference implementations do */
        float v = (float)x->d[a].v * (float)ix_elem_f(e);
        o->d[a] = v >= 0 && v < 9e18f ? ix_d((int64_t)floorf(v)) : ix_unk();
    }
}

static int op_resize(ix_node *c)
{
    ix_shape x, o;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    if (x.rank < 0) {
        ix_set(c, 0, dt, NULL);
        return IX_OK;
    }
    int axes[PARE_MAX_RANK], na = x.rank;
    for (int i = 0; i < na; i++)
        axes[i] = i;
    if (c->opset >= 18) {
        const int64_t *av;
        size_t n = ix_attr_ints(c, "axes", &av);
        if (n) {
            if ((int)n > x.rank)
                return ix_fail(c, "axes has %zu entries for rank %d", n, x.rank);
            na = (int)n;
            for (int i = 0; i < na; i++)
                if (!ix_axis(av[i], x.rank, &axes[i]))
                    return ix_fail(c, "axis %" PRId64 " out of range", av[i]);
        }
    }
    size_t si = c->opset >= 11 ? 2 : 1;
    const ix_const *sizes = c->opset >= 11 ? ix_cst(c, 3) : NULL;
    const ix_const *scales = ix_cst(c, si);
    bool sizes_given = c->opset >= 11 && ix_has(c, 3);
    if (sizes && sizes->n == 0)
        sizes_given = false;
    if (sizes && sizes->n > 0) {
        if (sizes->n != na)
            return ix_fail(c, "sizes has %d entries for %d axes", sizes->n, na);
        const char *pol = pare_node_attr_string(c->n, "keep_aspect_ratio_policy", "stretch");
        o = x;
        if (c->opset >= 18 && strcmp(pol, "stretch")) {
            bool larger = !strcmp(pol, "not_smaller");
            double scale = larger ? 0 : INFINITY;
            for (int i = 0; i < na; i++) {
                int64_t s;
                if (!ix_known(x.d[axes[i]]) || !ix_const_int(sizes, i, &s) ||
                    x.d[axes[i]].v == 0) {
                    for (int j = 0; j < na; j++)
                        o.d[axes[j]] = ix_unk();
                    ix_set(c, 0, dt, &o);
                    return IX_OK;
                }
                double r = (double)s / (double)x.d[axes[i]].v;
                scale = larger ? (r > scale ? r : scale) : (r < scale ? r : scale);
            }
            for (int i = 0; i < na; i++) {
                double v = scale * (double)x.d[axes[i]].v;
                o.d[axes[i]] = v >= 0 && v < 9e18 ? ix_d((int64_t)llround(v)) : ix_unk();
            }
        } else {
            for (int i = 0; i < na; i++)
                o.d[axes[i]] = ix_const_dim(sizes, i);
        }
        ix_set(c, 0, dt, &o);
        return IX_OK;
    }
    if (scales && scales->n > 0 && !sizes_given) {
        if (scales->n != na)
            return ix_fail(c, "scales has %d entries for %d axes", scales->n, na);
        scale_dims(&x, scales, axes, na, &o);
        ix_set(c, 0, dt, &o);
        return IX_OK;
    }
    o = x;
    for (int i = 0; i < na; i++)
        o.d[axes[i]] = ix_unk();
    ix_set(c, 0, dt, &o);
    return IX_OK;
}

static int op_upsample(ix_node *c)
{
    ix_shape x, o;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    if (x.rank < 0) {
        ix_set(c, 0, dt, NULL);
        return IX_OK;
    }
    int axes[PARE_MAX_RANK];
    for (int i = 0; i < x.rank; i++)
        axes[i] = i;
    const ix_const *scales = NULL;
    if (c->opset >= 9) {
        scales = ix_cst(c, 1);
    } else if (c->opset < 7) {
        /* Upsample-1: NCHW with height_scale and width_scale */
        ix_const *k = x.rank == 4 ? ix_const_new(c->x, PARE_DT_FLOAT, 1, (int64_t[]){4}) : NULL;
        if (k) {
            float hw[2] = {pare_node_attr_float(c->n, "height_scale", 0),
                           pare_node_attr_float(c->n, "width_scale", 0)};
            for (int i = 0; i < 4; i++) {
                k->e[i].kind = IXE_FLT;
                k->e[i].f = i < 2 ? 1.0 : hw[i - 2];
            }
        }
        scales = k;
    } else {
        const float *f;
        size_t n = pare_node_attr_floats(c->n, "scales", &f);
        ix_const *k = n <= IX_CONST_MAX ? ix_const_new(c->x, PARE_DT_FLOAT, 1,
                                                       (int64_t[]){(int64_t)n}) : NULL;
        if (k)
            for (size_t i = 0; i < n; i++) {
                k->e[i].kind = IXE_FLT;
                k->e[i].f = f[i];
            }
        scales = k;
    }
    if (scales && scales->n == x.rank) {
        scale_dims(&x, scales, axes, x.rank, &o);
    } else {
        ix_shape_rank(&o, x.rank);
    }
    ix_set(c, 0, dt, &o);
    return IX_OK;
}

/* ---- reductions ---- */

static int reduce(ix_node *c, bool arg)
{
    ix_shape x, o;
    ix_sh(c, 0, &x);
    int dt = arg ? PARE_DT_INT64 : ix_dt(c, 0);
    bool keep = ix_attr_i(c, "keepdims", 1) != 0;
    int64_t axes[MAXI];
    int na = 0, h;
    bool noop = false;
    if (arg) {
        axes[0] = ix_attr_i(c, "axis", 0);
        na = 1;
        h = 1;
    } else {
        int64_t since = !strcmp(c->n->op_type, "ReduceSum") ? 13 : 18;
        h = ints_arg(c, since, "axes", 1, axes, &na);
        noop = c->opset >= since && ix_attr_i(c, "noop_with_empty_axes", 0);
    }
    if (x.rank < 0 || h == -1) {
        if (x.rank >= 0 && keep)
            ix_shape_rank(&o, x.rank);
        else
            o.rank = -1;
        ix_set(c, 0, dt, &o);
        return IX_OK;
    }
    bool red[PARE_MAX_RANK] = {false};
    if (h == 0 || na == 0) {
        if (noop) {
            ix_set(c, 0, dt, &x);
            const ix_const *k = ix_cst(c, 0);
            if (k)
                ix_set_const(c, 0, k);
            return IX_OK;
        }
        for (int i = 0; i < x.rank; i++)
            red[i] = true;
    } else {
        for (int i = 0; i < na; i++) {
            int a;
            if (!ix_axis(axes[i], x.rank, &a)) {
                if (x.rank == 0 && arg)
                    break;
                return ix_fail(c, "axis %" PRId64 " out of range for rank %d", axes[i],
                               x.rank);
            }
            red[a] = true;
        }
    }
    o.rank = 0;
    for (int i = 0; i < x.rank; i++) {
        if (!red[i])
            o.d[o.rank++] = x.d[i];
        else if (keep)
            o.d[o.rank++] = ix_d(1);
    }
    ix_set(c, 0, dt, &o);
    /* contents of a reduced 1-D int vector (numel from a shape, say) */
    const ix_const *k = ix_cst(c, 0);
    const char *op = c->n->op_type;
    if (!arg && k && k->rank == 1 && red[0] && ix_const_all_int(k) && ix_dtype_intlike(k->dtype) &&
        (!strcmp(op, "ReduceProd") || !strcmp(op, "ReduceSum") || !strcmp(op, "ReduceMax") ||
         !strcmp(op, "ReduceMin")) && k->n > 0) {
        int64_t acc = k->e[0].i;
        for (int i = 1; i < k->n; i++) {
            int64_t v = k->e[i].i;
            if (!strcmp(op, "ReduceProd")) {
                if (__builtin_mul_overflow(acc, v, &acc))
                    return IX_OK;
            } else if (!strcmp(op, "ReduceSum")) {
                if (__builtin_add_overflow(acc, v, &acc))
                    return IX_OK;
            } else if (!strcmp(op, "ReduceMax")) {
                acc = v > acc ? v : acc;
            } else {
                acc = v < acc ? v : acc;
            }
        }
        int64_t one = 1;
        ix_const *r = ix_const_new(c->x, k->dtype, o.rank, &one);
        if (r) {
            r->e[0].kind = IXE_INT;
            r->e[0].i = acc;
            ix_set_const(c, 0, r);
        }
    }
    return IX_OK;
}

static int op_reduce(ix_node *c)
{
    return reduce(c, false);
}

static int op_argmax(ix_node *c)
{
    return reduce(c, true);
}

/* ---- generators: Constant, ConstantOfShape, Range, EyeLike ---- */

static int op_constant(ix_node *c)
{
    const pare_node *n = c->n;
    for (size_t i = 0; i < n->n_attrs; i++) {
        const pare_attr *a = &n->attrs[i];
        ix_shape s;
        s.rank = 0;
        if (!strcmp(a->name, "value") && a->t) {
            const pare_tensor *t = a->t;
            if (t->rank > PARE_MAX_RANK)
                return ix_fail(c, "tensor rank too large");
            s.rank = t->rank;
            for (int d = 0; d < t->rank; d++)
                s.d[d] = ix_d(t->dims[d]);
            ix_set(c, 0, t->dtype, &s);
            const ix_const *k = ix_const_from_tensor(c->x, t);
            if (k)
                ix_set_const(c, 0, k);
            return IX_OK;
        }
        if (!strcmp(a->name, "value_float") || !strcmp(a->name, "value_int") ||
            !strcmp(a->name, "value_floats") || !strcmp(a->name, "value_ints")) {
            bool isf = strstr(a->name, "float") != NULL;
            bool list = a->name[strlen(a->name) - 1] == 's';
            int64_t cnt = list ? (int64_t)a->n : 1;
            int dt = isf ? PARE_DT_FLOAT : PARE_DT_INT64;
            s.rank = list ? 1 : 0;
            s.d[0] = ix_d(cnt);
            ix_set(c, 0, dt, &s);
            ix_const *k = ix_const_new(c->x, dt, s.rank, &cnt);
            if (!k)
                return IX_OK;
            for (int64_t j = 0; j < cnt; j++) {
                k->e[j].kind = isf ? IXE_FLT : IXE_INT;
                if (isf)
                    k->e[j].f = list ? (a->floats ? a->floats[j] : 0) : a->f;
                else
                    k->e[j].i = list ? (a->ints ? a->ints[j] : 0) : a->i;
            }
            ix_set_const(c, 0, k);
            return IX_OK;
        }
        if (!strcmp(a->name, "value_string")) {
            ix_set(c, 0, PARE_DT_STRING, &s);
            return IX_OK;
        }
        if (!strcmp(a->name, "value_strings")) {
            s.rank = 1;
            s.d[0] = ix_d((int64_t)a->n);
            ix_set(c, 0, PARE_DT_STRING, &s);
            return IX_OK;
        }
    }
    return IX_OK; /* sparse_value: not modelled */
}

static int op_constant_of_shape(ix_node *c)
{
    ix_shape o;
    const pare_attr *va = pare_node_attr(c->n, "value");
    int dt = va && va->t ? va->t->dtype : PARE_DT_FLOAT;
    if (!shape_from_input(c, 0, &o)) {
        ix_set(c, 0, dt, NULL);
        return IX_OK;
    }
    for (int i = 0; i < o.rank; i++) {
        const ix_const *k = ix_cst(c, 0);
        int64_t v;
        if (k && ix_const_int(k, i, &v) && v < 0)
            return ix_fail(c, "negative dim %" PRId64, v);
    }
    ix_set(c, 0, dt, &o);
    int64_t od[PARE_MAX_RANK];
    if (!dims_all_known(&o, od) || o.rank > IX_CONST_RANK)
        return IX_OK;
    const ix_const *vk = NULL;
    if (va && va->t) {
        vk = ix_const_from_tensor(c->x, va->t);
    } else {
        ix_const *z = ix_const_new(c->x, PARE_DT_FLOAT, 0, NULL);
        if (z) {
            z->e[0].kind = IXE_FLT;
            z->e[0].f = 0;
        }
        vk = z;
    }
    if (vk && vk->n == 1) {
        ix_const *r = ix_const_new(c->x, dt, o.rank, od);
        if (r) {
            for (int i = 0; i < r->n; i++)
                r->e[i] = vk->e[0];
            ix_set_const(c, 0, r);
        }
    }
    return IX_OK;
}

static int op_range(ix_node *c)
{
    int dt = ix_dt(c, 0);
    const ix_const *s = ix_cst(c, 0), *l = ix_cst(c, 1), *d = ix_cst(c, 2);
    ix_shape o;
    o.rank = 1;
    o.d[0] = ix_unk();
    if (!s || !l || !d || s->n != 1 || l->n != 1 || d->n != 1 || !ix_elem_num(&s->e[0]) ||
        !ix_elem_num(&l->e[0]) || !ix_elem_num(&d->e[0])) {
        ix_set(c, 0, dt, &o);
        return IX_OK;
    }
    if (!dt)
        dt = s->dtype;
    int64_t n;
    bool ints = s->e[0].kind == IXE_INT && l->e[0].kind == IXE_INT && d->e[0].kind == IXE_INT;
    if (ints) {
        int64_t a = s->e[0].i, b = l->e[0].i, st = d->e[0].i;
        if (st == 0)
            return ix_fail(c, "delta is 0");
        double q = ceil(((double)b - (double)a) / (double)st);
        if (q >= 9e18) {
            ix_set(c, 0, dt, &o);
            return IX_OK;
        }
        n = q > 0 ? (int64_t)q : 0;
    } else {
        double a = ix_elem_f(&s->e[0]), b = ix_elem_f(&l->e[0]), st = ix_elem_f(&d->e[0]);
        if (st == 0)
            return ix_fail(c, "delta is 0");
        double q = ceil((b - a) / st);
        n = q > 0 && q < 9e18 ? (int64_t)q : 0;
    }
    o.d[0] = ix_d(n);
    ix_set(c, 0, dt, &o);
    if (ints && n <= IX_CONST_MAX) {
        ix_const *k = ix_const_new(c->x, dt, 1, &n);
        if (k) {
            for (int64_t i = 0; i < n; i++) {
                int64_t v;
                if (ix_mul(i, d->e[0].i, &v) && ix_add(v, s->e[0].i, &v)) {
                    k->e[i].kind = IXE_INT;
                    k->e[i].i = v;
                }
            }
            ix_set_const(c, 0, k);
        }
    }
    return IX_OK;
}

static int op_eyelike(ix_node *c)
{
    ix_shape x;
    ix_sh(c, 0, &x);
    int dt = (int)ix_attr_i(c, "dtype", 0);
    ix_set(c, 0, dt ? dt : ix_dt(c, 0), &x);
    return IX_OK;
}

/* ---- TopK, OneHot ---- */

static int op_topk(ix_node *c)
{
    ix_shape x;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    if (x.rank < 0) {
        ix_set(c, 0, dt, NULL);
        ix_set(c, 1, PARE_DT_INT64, NULL);
        return IX_OK;
    }
    int axis;
    if (!ix_axis(ix_attr_i(c, "axis", -1), x.rank, &axis))
        return ix_fail(c, "axis out of range for rank %d", x.rank);
    ix_dim k = ix_unk();
    if (c->opset < 10) {
        k = ix_d(ix_attr_i(c, "k", -1));
    } else {
        const ix_const *kc = ix_cst(c, 1);
        int64_t v;
        if (kc && kc->n == 1 && ix_const_int(kc, 0, &v)) {
            if (v < 0)
                return ix_fail(c, "K is negative");
            k = ix_d(v);
        } else if (kc && kc->n == 1 && kc->e[0].kind == IXE_SYM) {
            k = ix_const_dim(kc, 0);
        }
    }
    if (ix_known(k) && ix_known(x.d[axis]) && k.v > x.d[axis].v)
        return ix_fail(c, "K=%" PRId64 " exceeds the axis size %" PRId64, k.v, x.d[axis].v);
    x.d[axis] = k;
    ix_set(c, 0, dt, &x);
    ix_set(c, 1, PARE_DT_INT64, &x);
    return IX_OK;
}

static int op_onehot(ix_node *c)
{
    ix_shape x, o;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 2);
    if (x.rank < 0 || x.rank + 1 > PARE_MAX_RANK) {
        ix_set(c, 0, dt, NULL);
        return IX_OK;
    }
    int r = x.rank + 1, axis;
    if (!ix_axis(ix_attr_i(c, "axis", -1), r, &axis))
        return ix_fail(c, "axis out of range for rank %d", r);
    ix_dim depth = ix_unk();
    const ix_const *dk = ix_cst(c, 1);
    if (dk && dk->n == 1 && ix_elem_num(&dk->e[0])) {
        double f = ix_elem_f(&dk->e[0]);
        if (f >= 0 && f < 9e18)
            depth = ix_d((int64_t)f);
    } else if (dk && dk->n == 1 && dk->e[0].kind == IXE_SYM) {
        depth = ix_const_dim(dk, 0);
    }
    o.rank = r;
    for (int i = 0, j = 0; i < r; i++)
        o.d[i] = i == axis ? depth : x.d[j++];
    ix_set(c, 0, dt, &o);
    return IX_OK;
}

/* ---- rearrangements ---- */

static int op_depth_to_space(ix_node *c)
{
    ix_shape x;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    int64_t b = ix_attr_i(c, "blocksize", 0), bb;
    if (x.rank >= 0 && x.rank != 4)
        return ix_fail(c, "input must be 4-D");
    if (b <= 0 || !ix_mul(b, b, &bb))
        return ix_fail(c, "blocksize must be positive");
    if (x.rank == 4) {
        bool d2s = !strcmp(c->n->op_type, "DepthToSpace");
        if (d2s) {
            x.d[1] = ix_known(x.d[1]) && x.d[1].v % bb == 0 ? ix_d(x.d[1].v / bb) : ix_unk();
            x.d[2] = ix_dim_mul(x.d[2], ix_d(b));
            x.d[3] = ix_dim_mul(x.d[3], ix_d(b));
        } else {
            x.d[1] = ix_dim_mul(x.d[1], ix_d(bb));
            for (int i = 2; i < 4; i++)
                x.d[i] = ix_known(x.d[i]) && x.d[i].v % b == 0 ? ix_d(x.d[i].v / b) : ix_unk();
        }
    }
    ix_set(c, 0, dt, &x);
    return IX_OK;
}

static int op_compress(ix_node *c)
{
    ix_shape x, o;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    ix_dim n = ix_unk();
    const ix_const *k = ix_cst(c, 1);
    if (k && ix_const_all_int(k)) {
        int64_t cnt = 0;
        for (int i = 0; i < k->n; i++)
            cnt += k->e[i].i != 0;
        n = ix_d(cnt);
    }
    if (!ix_attr_has(c, "axis")) {
        o.rank = 1;
        o.d[0] = n;
        ix_set(c, 0, dt, &o);
        return IX_OK;
    }
    if (x.rank < 0) {
        ix_set(c, 0, dt, NULL);
        return IX_OK;
    }
    int axis;
    if (!ix_axis(ix_attr_i(c, "axis", 0), x.rank, &axis))
        return ix_fail(c, "axis out of range for rank %d", x.rank);
    x.d[axis] = n;
    ix_set(c, 0, dt, &x);
    return IX_OK;
}

static int op_nonzero(ix_node *c)
{
    ix_shape x, o;
    ix_sh(c, 0, &x);
    o.rank = 2;
    o.d[0] = x.rank >= 0 ? ix_d(x.rank) : ix_unk();
    o.d[1] = ix_unk();
    const ix_const *k = ix_cst(c, 0);
    if (k) {
        int64_t cnt = 0;
        for (int i = 0; i < k->n; i++) {
            if (!ix_elem_num(&k->e[i])) {
                cnt = -1;
                break;
            }
            cnt += ix_elem_f(&k->e[i]) != 0;
        }
        if (cnt >= 0)
            o.d[1] = ix_d(cnt);
    }
    ix_set(c, 0, PARE_DT_INT64, &o);
    return IX_OK;
}

static int op_center_crop_pad(ix_node *c)
{
    ix_shape x, o;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    const ix_const *k = ix_cst(c, 1);
    if (x.rank < 0) {
        ix_set(c, 0, dt, NULL);
        return IX_OK;
    }
    o = x;
    const int64_t *av;
    size_t na = ix_attr_ints(c, "axes", &av);
    int n = na ? (int)na : x.rank;
    for (int i = 0; i < n; i++) {
        int a = i;
        if (na && !ix_axis(av[i], x.rank, &a))
            return ix_fail(c, "axis out of range");
        o.d[a] = k && k->n == n ? ix_const_dim(k, i) : ix_unk();
    }
    ix_set(c, 0, dt, &o);
    return IX_OK;
}

const ix_op ix_ops_shape[] = {
    {"", "ArgMax", op_argmax},
    {"", "ArgMin", op_argmax},
    {"", "CenterCropPad", op_center_crop_pad},
    {"", "Compress", op_compress},
    {"", "Concat", op_concat},
    {"", "Constant", op_constant},
    {"", "ConstantOfShape", op_constant_of_shape},
    {"", "DepthToSpace", op_depth_to_space},
    {"", "Expand", op_expand},
    {"", "EyeLike", op_eyelike},
    {"", "Flatten", op_flatten},
    {"", "Gather", op_gather},
    {"", "GatherElements", op_gather_elements},
    {"", "GatherND", op_gather_nd},
    {"", "NonZero", op_nonzero},
    {"", "OneHot", op_onehot},
    {"", "Pad", op_pad},
    {"", "Range", op_range},
    {"", "ReduceL1", op_reduce},
    {"", "ReduceL2", op_reduce},
    {"", "ReduceLogSum", op_reduce},
    {"", "ReduceLogSumExp", op_reduce},
    {"", "ReduceMax", op_reduce},
    {"", "ReduceMean", op_reduce},
    {"", "ReduceMin", op_reduce},
    {"", "ReduceProd", op_reduce},
    {"", "ReduceSum", op_reduce},
    {"", "ReduceSumSquare", op_reduce},
    {"", "Reshape", op_reshape},
    {"", "Resize", op_resize},
    {"", "Shape", op_shape},
    {"", "Size", op_size},
    {"", "Slice", op_slice},
    {"", "SpaceToDepth", op_depth_to_space},
    {"", "Split", op_split},
    {"", "Squeeze", op_squeeze},
    {"", "Tile", op_tile},
    {"", "TopK", op_topk},
    {"", "Transpose", op_transpose},
    {"", "Unsqueeze", op_unsqueeze},
    {"", "Upsample", op_upsample},
};
const size_t ix_n_ops_shape = sizeof ix_ops_shape / sizeof ix_ops_shape[0];
