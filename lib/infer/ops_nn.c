/* Convolutions, pooling, normalizations, Gemm and MatMul (plain, integer,
 * quantized and com.microsoft's 4-bit MatMulNBits). */
#include <inttypes.h>
#include "infer/infer_int.h"

/* Reads an ints attribute of exactly n entries into out (default dflt for
 * each when absent). Returns false when present with another length. */
static bool attr_n(ix_node *c, const char *name, int n, int64_t dflt, int64_t *out)
{
    const int64_t *v;
    size_t k = ix_attr_ints(c, name, &v);
    for (int i = 0; i < n; i++)
        out[i] = dflt;
    if (!k)
        return true;
    if ((int)k != n)
        return false;
    for (int i = 0; i < n; i++)
        out[i] = v[i];
    return true;
}

/* Division rounding down / up, for b > 0. */
static int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if (a % b != 0 && a < 0)
        q--;
    return q;
}

static int64_t ceildiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if (a % b != 0 && a > 0)
        q++;
    return q;
}

typedef struct win {
    int nsp;
    int64_t k[PARE_MAX_RANK], s[PARE_MAX_RANK], d[PARE_MAX_RANK], p[2 * PARE_MAX_RANK];
    bool have_k;
    int pad; /* 0 NOTSET, 1 VALID, 2 SAME */
} win;

/* Kernel, strides, dilations, pads and auto_pad of a conv or pool node.
 * kernel from the attribute or, for convs, the weight's dims. */
static int read_window(ix_node *c, int nsp, const ix_shape *w, win *o)
{
    o->nsp = nsp;
    const int64_t *kv;
    size_t nk = ix_attr_ints(c, "kernel_shape", &kv);
    o->have_k = false;
    if (nk) {
        if ((int)nk != nsp)
            return ix_fail(c, "kernel_shape has %zu entries for %d spatial dims", nk, nsp);
        o->have_k = true;
        for (int i = 0; i < nsp; i++) {
            o->k[i] = kv[i];
            if (kv[i] <= 0)
                o->have_k = false;
        }
    } else if (w && w->rank == nsp + 2) {
        o->have_k = true;
        for (int i = 0; i < nsp; i++) {
            o->k[i] = w->d[2 + i].v;
            if (o->k[i] <= 0)
                o->have_k = false;
        }
    }
    if (!attr_n(c, "strides", nsp, 1, o->s))
        return ix_fail(c, "strides has the wrong length");
    if (!attr_n(c, "dilations", nsp, 1, o->d))
        return ix_fail(c, "dilations has the wrong length");
    if (!attr_n(c, "pads", 2 * nsp, 0, o->p))
        return ix_fail(c, "pads has the wrong length");
    for (int i = 0; i < nsp; i++)
        if (o->s[i] <= 0 || o->d[i] <= 0)
            return ix_fail(c, "strides and dilations must be positive");
    const char *ap = pare_node_attr_string(c->n, "auto_pad", "NOTSET");
    o->pad = !strcmp(ap, "VALID") ? 1 : (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) ? 2 : 0;
    return IX_OK;
}

/* Spatial output dim of a conv/pool window over `in`. */
static int window_out(ix_node *c, const win *w, int i, ix_dim in, bool ceil_mode, ix_dim *out)
{
    *out = ix_unk();
    if (!w->have_k)
        return IX_OK;
    int64_t ek, s = w->s[i], v, padded, num, last;
    if (!ix_mul(w->k[i] - 1, w->d[i], &ek) || !ix_add(ek, 1, &ek))
        return IX_OK; /* absurd sizes: leave unknown */
    if (!ix_known(in)) {
        /* a symbolic size passes when the window keeps it: stride 1 and the
         * padding making up for the kernel ("same" convolutions, 1x1) */
        int64_t pads;
        if (in.sym && s == 1 &&
            (w->pad == 2 || (w->pad == 1 && ek == 1) ||
             (w->pad == 0 && ix_add(w->p[i], w->p[i + w->nsp], &pads) && pads == ek - 1)))
            *out = in;
        return IX_OK;
    }
    if (w->pad == 2) {
        v = ceildiv(in.v, s);
    } else if (w->pad == 1) {
        if (in.v < ek)
            return ix_fail(c, "kernel %" PRId64 " is larger than input %" PRId64, ek, in.v);
        v = ceil_mode ? ceildiv(in.v - ek + 1, s) : floordiv(in.v - ek, s) + 1;
    } else {
        if (!ix_add(in.v, w->p[i], &padded) || !ix_add(padded, w->p[i + w->nsp], &padded))
            return IX_OK;
        if (padded < ek)
            return ix_fail(c, "kernel %" PRId64 " is larger than padded input %" PRId64, ek,
                           padded);
        num = padded - ek;
        if (ceil_mode) {
            v = ceildiv(num, s) + 1;
            /* the last window must start inside the input or the left padding */
            if (ix_mul(v - 1, s, &last) && ix_add(in.v, w->p[i], &padded) && last >= padded)
                v--;
        } else {
            v = floordiv(num, s) + 1;
        }
    }
    *out = ix_d(v);
    return IX_OK;
}

/* Conv-like output shape for data input xi and weight input wi. */
static int conv_shape(ix_node *c, size_t xi, size_t wi, ix_shape *out)
{
    ix_shape x, w;
    ix_sh(c, xi, &x);
    ix_sh(c, wi, &w);
    int rank = x.rank >= 0 ? x.rank : w.rank;
    if (rank < 0) {
        out->rank = -1;
        return IX_OK;
    }
    if (rank < 3)
        return ix_fail(c, "input has rank %d; convolution needs at least 3", rank);
    if (x.rank >= 0 && w.rank >= 0 && x.rank != w.rank)
        return ix_fail(c, "input has rank %d but the weight has rank %d", x.rank, w.rank);
    if (x.rank < 0)
        ix_shape_rank(&x, rank);
    if (w.rank < 0)
        ix_shape_rank(&w, rank);
    int64_t group = ix_attr_i(c, "group", 1);
    if (group <= 0)
        return ix_fail(c, "group must be positive");
    int64_t expect;
    if (ix_known(x.d[1]) && ix_known(w.d[1]) && ix_mul(w.d[1].v, group, &expect) &&
        x.d[1].v != expect)
        return ix_fail(c, "input has %" PRId64 " channels but the weight expects %" PRId64
                          " (x group %" PRId64 ")", x.d[1].v, w.d[1].v, group);
    win wn;
    if (read_window(c, rank - 2, &w, &wn))
        return IX_ERR;
    out->rank = rank;
    out->d[0] = x.d[0];
    out->d[1] = w.d[0];
    for (int i = 0; i < rank - 2; i++)
        if (window_out(c, &wn, i, x.d[2 + i], false, &out->d[2 + i]))
            return IX_ERR;
    return IX_OK;
}

static int op_conv(ix_node *c)
{
    ix_shape s;
    if (conv_shape(c, 0, 1, &s))
        return IX_ERR;
    ix_set(c, 0, ix_dt(c, 0), &s);
    return IX_OK;
}

static int op_conv_integer(ix_node *c)
{
    ix_shape s;
    if (conv_shape(c, 0, 1, &s))
        return IX_ERR;
    ix_set(c, 0, PARE_DT_INT32, &s);
    return IX_OK;
}

static int op_qlinear_conv(ix_node *c)
{
    ix_shape s;
    if (conv_shape(c, 0, 3, &s))
        return IX_ERR;
    int dt = ix_dt(c, 7);
    ix_set(c, 0, dt ? dt : ix_dt(c, 0), &s);
    return IX_OK;
}

static int op_deform_conv(ix_node *c)
{
    /* like Conv; the offsets (input 2) fix the output's spatial dims */
    ix_shape s, off;
    if (conv_shape(c, 0, 1, &s))
        return IX_ERR;
    if (ix_sh(c, 2, &off) && s.rank == off.rank)
        for (int i = 2; i < s.rank; i++)
            if (!ix_known(s.d[i]))
                s.d[i] = off.d[i];
    ix_set(c, 0, ix_dt(c, 0), &s);
    return IX_OK;
}

static int op_conv_transpose(ix_node *c)
{
    ix_shape x, w;
    ix_sh(c, 0, &x);
    ix_sh(c, 1, &w);
    int rank = x.rank >= 0 ? x.rank : w.rank;
    int dt = ix_dt(c, 0);
    if (rank < 0) {
        ix_set(c, 0, dt, NULL);
        return IX_OK;
    }
    if (rank < 3)
        return ix_fail(c, "input has rank %d; convolution needs at least 3", rank);
    if (x.rank >= 0 && w.rank >= 0 && x.rank != w.rank)
        return ix_fail(c, "input has rank %d but the weight has rank %d", x.rank, w.rank);
    if (x.rank < 0)
        ix_shape_rank(&x, rank);
    if (w.rank < 0)
        ix_shape_rank(&w, rank);
    int64_t group = ix_attr_i(c, "group", 1);
    if (ix_dim_differ(x.d[1], w.d[0]))
        return ix_fail(c, "input has %" PRId64 " channels but the weight has %" PRId64, x.d[1].v,
                       w.d[0].v);
    int nsp = rank - 2;
    win wn;
    if (read_window(c, nsp, &w, &wn))
        return IX_ERR;
    int64_t opad[PARE_MAX_RANK];
    if (!attr_n(c, "output_padding", nsp, 0, opad))
        return ix_fail(c, "output_padding has the wrong length");
    ix_shape o;
    o.rank = rank;
    o.d[0] = x.d[0];
    o.d[1] = ix_dim_mul(w.d[1], ix_d(group));
    const int64_t *os;
    size_t nos = ix_attr_ints(c, "output_shape", &os);
    for (int i = 0; i < nsp; i++) {
        ix_dim in = x.d[2 + i];
        o.d[2 + i] = ix_unk();
        if (nos >= (size_t)nsp) {
            o.d[2 + i] = ix_d(os[nos - (size_t)nsp + (size_t)i]);
            continue;
        }
        if (!wn.have_k)
            continue;
        int64_t ek, v;
        bool ok = ix_mul(wn.k[i] - 1, wn.d[i], &ek) && ix_add(ek, 1, &ek);
        if (!ix_known(in)) {
            /* stride 1 with padding that cancels the kernel keeps the size */
            int64_t grow;
            if (ok && in.sym && wn.s[i] == 1 &&
                (wn.pad == 2 ||
                 (ix_add(opad[i], ek - 1, &grow) &&
                  (wn.pad == 1 ? grow == 0
                               : ix_add(grow, -wn.p[i], &grow) && wn.p[i + nsp] != INT64_MIN &&
                                     ix_add(grow, -wn.p[i + nsp], &grow) && grow == 0))))
                o.d[2 + i] = in;
            continue;
        }
        if (wn.pad == 2) {
            ok = ok && ix_mul(in.v, wn.s[i], &v);
        } else {
            ok = ok && in.v >= 1 && ix_mul(wn.s[i], in.v - 1, &v) && ix_add(v, opad[i], &v) &&
                 ix_add(v, ek, &v);
            if (wn.pad == 0)
                ok = ok && wn.p[i] != INT64_MIN && wn.p[i + nsp] != INT64_MIN &&
                     ix_add(v, -wn.p[i], &v) && ix_add(v, -wn.p[i + nsp], &v);
        }
        if (!ok)
            continue;
        if (v < 0)
            return ix_fail(c, "negative output size");
        o.d[2 + i] = ix_d(v);
    }
    ix_set(c, 0, dt, &o);
    return IX_OK;
}

static int op_pool(ix_node *c)
{
    ix_shape x;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    const int64_t *kv;
    size_t nk = ix_attr_ints(c, "kernel_shape", &kv);
    if (x.rank < 0 && nk)
        ix_shape_rank(&x, (int)nk + 2);
    if (x.rank < 0) {
        ix_set(c, 0, dt, NULL);
        ix_set(c, 1, PARE_DT_INT64, NULL);
        return IX_OK;
    }
    if (x.rank < 3)
        return ix_fail(c, "input has rank %d; pooling needs at least 3", x.rank);
    if (nk && (int)nk != x.rank - 2)
        return ix_fail(c, "kernel_shape has %zu entries for an input of rank %d", nk, x.rank);
    win wn;
    if (read_window(c, x.rank - 2, NULL, &wn))
        return IX_ERR;
    bool ceil_mode = ix_attr_i(c, "ceil_mode", 0) != 0;
    ix_shape o;
    o.rank = x.rank;
    o.d[0] = x.d[0];
    o.d[1] = x.d[1];
    for (int i = 0; i < x.rank - 2; i++)
        if (window_out(c, &wn, i, x.d[2 + i], ceil_mode, &o.d[2 + i]))
            return IX_ERR;
    ix_set(c, 0, dt, &o);
    ix_set(c, 1, PARE_DT_INT64, &o);
    return IX_OK;
}

static int op_global_pool(ix_node *c)
{
    ix_shape x;
    ix_sh(c, 0, &x);
    if (x.rank >= 0 && x.rank < 2)
        return ix_fail(c, "input has rank %d; pooling needs at least 3", x.rank);
    for (int i = 2; i < x.rank; i++)
        x.d[i] = ix_d(1);
    ix_set(c, 0, ix_dt(c, 0), &x);
    return IX_OK;
}

static int op_max_unpool(ix_node *c)
{
    ix_shape x;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    const ix_const *os = ix_cst(c, 2);
    if (os && os->rank == 1) {
        ix_shape o;
        o.rank = os->n;
        for (int i = 0; i < os->n; i++)
            o.d[i] = ix_const_dim(os, i);
        ix_set(c, 0, dt, &o);
        return IX_OK;
    }
    if (ix_has(c, 2) || x.rank < 3) {
        ix_shape o;
        if (x.rank >= 0)
            ix_shape_rank(&o, x.rank);
        else
            o.rank = -1;
        ix_set(c, 0, dt, &o);
        return IX_OK;
    }
    win wn;
    if (read_window(c, x.rank - 2, NULL, &wn))
        return IX_ERR;
    ix_shape o = x;
    for (int i = 0; i < x.rank - 2; i++) {
        ix_dim in = x.d[2 + i];
        o.d[2 + i] = ix_unk();
        int64_t v;
        if (ix_known(in) && in.v >= 1 && wn.have_k && ix_mul(in.v - 1, wn.s[i], &v) &&
            ix_add(v, wn.k[i], &v) && wn.p[i] != INT64_MIN && ix_add(v, -wn.p[i], &v) &&
            wn.p[i + wn.nsp] != INT64_MIN && ix_add(v, -wn.p[i + wn.nsp], &v) && v >= 0)
            o.d[2 + i] = ix_d(v);
    }
    ix_set(c, 0, dt, &o);
    return IX_OK;
}

/* Channel count C of a normalization: X's dim 1, else the scale's length. */
static ix_dim channels(ix_node *c, const ix_shape *x, size_t scale)
{
    if (x->rank >= 2 && (ix_known(x->d[1]) || x->d[1].sym))
        return x->d[1];
    ix_shape s;
    if (ix_sh(c, scale, &s) && s.rank == 1)
        return s.d[0];
    return x->rank >= 2 ? x->d[1] : ix_unk();
}

static int op_batchnorm(ix_node *c)
{
    ix_shape x;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    ix_set(c, 0, dt, &x);
    ix_shape v;
    v.rank = 1;
    v.d[0] = channels(c, &x, 1);
    int sdt = c->opset >= 15 ? ix_dt(c, 3) : dt;
    if (!sdt)
        sdt = dt;
    for (size_t o = 1; o < c->nout; o++)
        ix_set(c, o, sdt, &v);
    return IX_OK;
}

static int op_layernorm(ix_node *c)
{
    ix_shape x;
    ix_sh(c, 0, &x);
    ix_set(c, 0, ix_dt(c, 0), &x);
    int sdt = (int)ix_attr_i(c, "stash_type", PARE_DT_FLOAT);
    if (x.rank >= 0) {
        int axis;
        if (!ix_axis(ix_attr_i(c, "axis", -1), x.rank, &axis))
            return ix_fail(c, "axis out of range for rank %d", x.rank);
        for (int i = axis; i < x.rank; i++)
            x.d[i] = ix_d(1);
    }
    ix_set(c, 1, sdt, &x);
    ix_set(c, 2, sdt, &x);
    return IX_OK;
}

static int op_same(ix_node *c)
{
    ix_shape s;
    ix_sh(c, 0, &s);
    ix_set(c, 0, ix_dt(c, 0), &s);
    return IX_OK;
}

/* com.microsoft SkipLayerNormalization: output, mean, inv_std_var, input_skip_bias_sum. */
static int op_skip_layernorm(ix_node *c)
{
    ix_shape x;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    ix_set(c, 0, dt, &x);
    ix_set(c, 3, dt, &x);
    if (x.rank >= 1)
        x.d[x.rank - 1] = ix_d(1);
    ix_set(c, 1, PARE_DT_FLOAT, &x);
    ix_set(c, 2, PARE_DT_FLOAT, &x);
    return IX_OK;
}

static int gemm(ix_node *c, size_t ai, size_t bi, int dt)
{
    ix_shape a, b;
    ix_sh(c, ai, &a);
    ix_sh(c, bi, &b);
    if ((a.rank >= 0 && a.rank != 2) || (b.rank >= 0 && b.rank != 2))
        return ix_fail(c, "Gemm needs 2-D inputs (got ranks %d and %d)", a.rank, b.rank);
    bool ta = ix_attr_i(c, "transA", 0) != 0, tb = ix_attr_i(c, "transB", 0) != 0;
    ix_dim m = a.rank == 2 ? a.d[ta ? 1 : 0] : ix_unk();
    ix_dim ka = a.rank == 2 ? a.d[ta ? 0 : 1] : ix_unk();
    ix_dim kb = b.rank == 2 ? b.d[tb ? 1 : 0] : ix_unk();
    ix_dim n = b.rank == 2 ? b.d[tb ? 0 : 1] : ix_unk();
    if (ix_dim_differ(ka, kb))
        return ix_fail(c, "inner dimensions differ: %" PRId64 " and %" PRId64, ka.v, kb.v);
    ix_shape o;
    o.rank = 2;
    o.d[0] = m;
    o.d[1] = n;
    ix_set(c, 0, dt, &o);
    return IX_OK;
}

static int op_gemm(ix_node *c)
{
    return gemm(c, 0, 1, ix_dt(c, 0));
}

/* numpy matmul of shapes a and b; -1 after ix_fail on a mismatch. */
static int matmul_shape(ix_node *c, const ix_shape *a, const ix_shape *b, ix_shape *out)
{
    if (a->rank < 0 || b->rank < 0) {
        out->rank = -1;
        return IX_OK;
    }
    if (a->rank == 0 || b->rank == 0)
        return ix_fail(c, "MatMul of a scalar");
    ix_shape A = *a, B = *b;
    if (A.rank == 1) {
        A.d[1] = A.d[0];
        A.d[0] = ix_d(1);
        A.rank = 2;
    }
    if (B.rank == 1) {
        B.d[1] = ix_d(1);
        B.rank = 2;
    }
    ix_dim ka = A.d[A.rank - 1], kb = B.d[B.rank - 2];
    if (ix_dim_differ(ka, kb)) {
        char sa[256], sb[256];
        return ix_fail(c, "inner dimensions differ: %s by %s", ix_shape_str(a, sa, sizeof sa),
                       ix_shape_str(b, sb, sizeof sb));
    }
    ix_shape ba = A, bb = B, bo;
    ba.rank = A.rank - 2;
    bb.rank = B.rank - 2;
    if (ix_broadcast(&ba, &bb, &bo) < 0) {
        char sa[256], sb[256];
        return ix_fail(c, "batch dimensions do not broadcast: %s by %s",
                       ix_shape_str(a, sa, sizeof sa), ix_shape_str(b, sb, sizeof sb));
    }
    if (bo.rank + 2 > PARE_MAX_RANK)
        return ix_fail(c, "rank too large");
    if (a->rank > 1)
        bo.d[bo.rank++] = A.d[A.rank - 2];
    if (b->rank > 1)
        bo.d[bo.rank++] = B.d[B.rank - 1];
    *out = bo;
    return IX_OK;
}

static int matmul(ix_node *c, size_t ai, size_t bi, int dt)
{
    ix_shape a, b, o;
    ix_sh(c, ai, &a);
    ix_sh(c, bi, &b);
    if (matmul_shape(c, &a, &b, &o))
        return IX_ERR;
    ix_set(c, 0, dt, &o);
    return IX_OK;
}

static int op_matmul(ix_node *c)
{
    int dt = ix_dt(c, 0);
    return matmul(c, 0, 1, dt ? dt : ix_dt(c, 1));
}

static int op_matmul_integer(ix_node *c)
{
    return matmul(c, 0, 1, PARE_DT_INT32);
}

static int op_qlinear_matmul(ix_node *c)
{
    int dt = ix_dt(c, 7);
    return matmul(c, 0, 3, dt ? dt : ix_dt(c, 0));
}

/* com.microsoft MatMulNBits: A [..., K] by packed B; output [..., N]. */
static int op_matmul_nbits(ix_node *c)
{
    ix_shape a;
    ix_sh(c, 0, &a);
    int64_t n = ix_attr_i(c, "N", -1), k = ix_attr_i(c, "K", -1);
    if (a.rank == 0)
        return ix_fail(c, "MatMulNBits of a scalar");
    if (a.rank > 0) {
        if (k >= 0 && ix_dim_differ(a.d[a.rank - 1], ix_d(k)))
            return ix_fail(c, "input's last dim is %" PRId64 " but K is %" PRId64,
                           a.d[a.rank - 1].v, k);
        a.d[a.rank - 1] = n >= 0 ? ix_d(n) : ix_unk();
    }
    ix_set(c, 0, ix_dt(c, 0), &a);
    return IX_OK;
}

/* com.microsoft FusedMatMul: MatMul with transposes of the last two dims. */
static int op_fused_matmul(ix_node *c)
{
    ix_shape a, b, o;
    ix_sh(c, 0, &a);
    ix_sh(c, 1, &b);
    if (ix_attr_i(c, "transA", 0) && a.rank >= 2) {
        ix_dim t = a.d[a.rank - 1];
        a.d[a.rank - 1] = a.d[a.rank - 2];
        a.d[a.rank - 2] = t;
    }
    if (ix_attr_i(c, "transB", 0) && b.rank >= 2) {
        ix_dim t = b.d[b.rank - 1];
        b.d[b.rank - 1] = b.d[b.rank - 2];
        b.d[b.rank - 2] = t;
    }
    if (matmul_shape(c, &a, &b, &o))
        return IX_ERR;
    ix_set(c, 0, ix_dt(c, 0), &o);
    return IX_OK;
}

const ix_op ix_ops_nn[] = {
    {"", "AveragePool", op_pool},
    {"", "BatchNormalization", op_batchnorm},
    {"", "Conv", op_conv},
    {"", "ConvInteger", op_conv_integer},
    {"", "ConvTranspose", op_conv_transpose},
    {"", "DeformConv", op_deform_conv},
    {"", "Gemm", op_gemm},
    {"", "GlobalAveragePool", op_global_pool},
    {"", "GlobalLpPool", op_global_pool},
    {"", "GlobalMaxPool", op_global_pool},
    {"", "GroupNormalization", op_same},
    {"", "InstanceNormalization", op_same},
    {"", "LayerNormalization", op_layernorm},
    {"", "LpPool", op_pool},
    {"", "MatMul", op_matmul},
    {"", "MatMulInteger", op_matmul_integer},
    {"", "MaxPool", op_pool},
    {"", "MaxUnpool", op_max_unpool},
    {"", "QLinearConv", op_qlinear_conv},
    {"", "QLinearMatMul", op_qlinear_matmul},
    {"", "RMSNormalization", op_same},
    {"com.microsoft", "FusedMatMul", op_fused_matmul},
    {"com.microsoft", "MatMulNBits", op_matmul_nbits},
    {"com.microsoft", "SkipLayerNormalization", op_skip_layernorm},
};
const size_t ix_n_ops_nn = sizeof ix_ops_nn / sizeof ix_ops_nn[0];
