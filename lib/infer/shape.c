/* Dims and shapes as inference sees them: known, symbolic or unknown. */
#include <stdio.h>
#include <inttypes.h>
#include "infer/infer_int.h"

bool ix_dim_same(ix_dim a, ix_dim b)
{
    if (ix_known(a) || ix_known(b))
        return a.v == b.v;
    return a.sym && b.sym && (a.sym == b.sym || strcmp(a.sym, b.sym) == 0);
}

bool ix_dim_differ(ix_dim a, ix_dim b)
{
    return ix_known(a) && ix_known(b) && a.v != b.v;
}

void ix_shape_unknown(ix_shape *s)
{
    s->rank = -1;
}

void ix_shape_rank(ix_shape *s, int rank)
{
    s->rank = rank;
    for (int i = 0; i < rank; i++)
        s->d[i] = ix_unk();
}

bool ix_axis(int64_t axis, int rank, int *out)
{
    if (axis < 0)
        axis += rank;
    if (axis < 0 || axis >= rank)
        return false;
    *out = (int)axis;
    return true;
}

/* One dim of a multidirectional broadcast; false on a provable mismatch. */
static bool bcast_dim(ix_dim a, ix_dim b, ix_dim *out)
{
    if (ix_known(a) && a.v == 1) {
        *out = b;
        return true;
    }
    if (ix_known(b) && b.v == 1) {
        *out = a;
        return true;
    }
    if (ix_known(a) && ix_known(b)) {
        *out = a;
        return a.v == b.v;
    }
    if (ix_known(a)) {
        *out = a;
        return true;
    }
    if (ix_known(b)) {
        *out = b;
        return true;
    }
    *out = ix_dim_same(a, b) ? a : ix_unk();
    return true;
}

int ix_broadcast(const ix_shape *a, const ix_shape *b, ix_shape *out)
{
    if (a->rank < 0 || b->rank < 0) {
        out->rank = -1;
        return 0;
    }
    int r = a->rank > b->rank ? a->rank : b->rank;
    ix_shape res;
    res.rank = r;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        ix_dim da = ia >= 0 ? a->d[ia] : ix_d(1);
        ix_dim db = ib >= 0 ? b->d[ib] : ix_d(1);
        if (!bcast_dim(da, db, &res.d[i]))
            return -1;
    }
    *out = res;
    return 0;
}

ix_dim ix_dims_product(const ix_shape *s, int from, int to)
{
    int64_t num = 1;
    const char *sym = NULL;
    bool unknown = false;
    for (int i = from; i < to; i++) {
        ix_dim d = s->d[i];
        if (ix_known(d)) {
            if (d.v == 0)
                return ix_d(0);
            if (num > INT64_MAX / d.v)
                unknown = true;
            else
                num *= d.v;
        } else if (d.sym && !sym) {
            sym = d.sym;
        } else {
            unknown = true;
        }
    }
    if (unknown)
        return ix_unk();
    if (sym) {
        ix_dim r = {-1, num == 1 ? sym : NULL};
        return r;
    }
    return ix_d(num);
}

const char *ix_shape_str(const ix_shape *s, char *buf, size_t size)
{
    if (s->rank < 0) {
        snprintf(buf, size, "unknown");
        return buf;
    }
    if (s->rank == 0) {
        snprintf(buf, size, "scalar");
        return buf;
    }
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < s->rank && k < size; i++) {
        int w;
        if (ix_known(s->d[i]))
            w = snprintf(buf + k, size - k, "%s%" PRId64, i ? "x" : "", s->d[i].v);
        else
            w = snprintf(buf + k, size - k, "%s%s", i ? "x" : "", s->d[i].sym ? s->d[i].sym : "?");
        if (w < 0)
            break;
        k += (size_t)w;
    }
    return buf;
}

void ix_shape_union(const ix_shape *a, const ix_shape *b, ix_shape *out)
{
    if (a->rank < 0 || b->rank < 0 || a->rank != b->rank) {
        out->rank = -1;
        return;
    }
    ix_shape r;
    r.rank = a->rank;
    for (int i = 0; i < a->rank; i++)
        r.d[i] = ix_dim_same(a->d[i], b->d[i]) ? a->d[i] : ix_unk();
    *out = r;
}

bool ix_shape_equal(const ix_shape *a, const ix_shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++) {
        ix_dim x = a->d[i], y = b->d[i];
        if (ix_known(x) || ix_known(y) || x.sym || y.sym) {
            if (!ix_dim_same(x, y))
                return false;
        }
    }
    return true;
}

ix_dim ix_dim_add(ix_dim a, int64_t b)
{
    if (b == 0)
        return a;
    if (!ix_known(a))
        return ix_unk();
    if ((b > 0 && a.v > INT64_MAX - b) || a.v + b < 0)
        return ix_unk();
    return ix_d(a.v + b);
}

ix_dim ix_dim_mul(ix_dim a, ix_dim b)
{
    if (ix_known(a) && ix_known(b)) {
        if (a.v && b.v > INT64_MAX / a.v)
            return ix_unk();
        return ix_d(a.v * b.v);
    }
    if (ix_known(a) && a.v == 1)
        return b;
    if (ix_known(b) && b.v == 1)
        return a;
    if ((ix_known(a) && a.v == 0) || (ix_known(b) && b.v == 0))
        return ix_d(0);
    return ix_unk();
}

/* ---- public helpers ---- */

static void from_pare(const pare_shape *p, ix_shape *s)
{
    s->rank = p->rank > PARE_MAX_RANK ? -1 : p->rank;
    for (int i = 0; i < s->rank; i++) {
        s->d[i].v = p->dims[i].value >= 0 ? p->dims[i].value : -1;
        s->d[i].sym = p->dims[i].value >= 0 ? NULL : p->dims[i].param;
    }
}

pare_status pare_shape_broadcast(const pare_shape *a, const pare_shape *b, pare_shape *out,
                                 pare_error *err)
{
    ix_shape *sa = malloc(3 * sizeof *sa);
    if (!sa)
        return PARE_NOMEM(err);
    ix_shape *sb = sa + 1, *so = sa + 2;
    from_pare(a, sa);
    from_pare(b, sb);
    if (ix_broadcast(sa, sb, so) < 0) {
        char ba[256], bb[256];
        ix_shape_str(sa, ba, sizeof ba);
        ix_shape_str(sb, bb, sizeof bb);
        free(sa);
        return pare_error_set(err, PARE_ERR_INVALID, "cannot broadcast %s with %s", ba, bb);
    }
    pare_shape r = {so->rank, NULL};
    if (r.rank > 0) {
        r.dims = calloc((size_t)r.rank, sizeof *r.dims);
        if (!r.dims) {
            free(sa);
            return PARE_NOMEM(err);
        }
        for (int i = 0; i < r.rank; i++) {
            r.dims[i].value = so->d[i].v;
            if (!ix_known(so->d[i]) && so->d[i].sym &&
                !(r.dims[i].param = strdup(so->d[i].sym))) {
                pare__shape_release(&r);
                free(sa);
                return PARE_NOMEM(err);
            }
        }
    }
    free(sa);
    *out = r;
    return PARE_OK;
}

void pare_shape_release(pare_shape *s)
{
    if (s)
        pare__shape_release(s);
}
