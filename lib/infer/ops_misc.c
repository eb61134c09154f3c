/* Other ops with cheap, exact rules: Einsum, recurrent nets, Attention,
 * sampling and random generators, losses, signal processing, strings. */
#include <inttypes.h>
#include "infer/infer_int.h"

/* ---- Einsum ---- */

typedef struct eterm {
    char letters[PARE_MAX_RANK + 1];
    int n;          /* letters */
    int ell;        /* position of "..." among letters, -1 if none */
} eterm;

static bool parse_term(const char *s, size_t len, eterm *t)
{
    t->n = 0;
    t->ell = -1;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == ' ')
            continue;
        if (ch == '.') {
            if (t->ell >= 0 || i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.')
                return false;
            t->ell = t->n;
            i += 2;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) || t->n >= PARE_MAX_RANK)
            return false;
        t->letters[t->n++] = ch;
    }
    return true;
}

static int letter_ix(char ch)
{
    return ch >= 'a' ? ch - 'a' + 26 : ch - 'A';
}

static int op_einsum(ix_node *c)
{
    const char *eq = pare_node_attr_string(c->n, "equation", NULL);
    int dt = ix_dt(c, 0);
    if (!eq) {
        ix_set(c, 0, dt, NULL);
        return IX_OK;
    }
    const char *arrow = strstr(eq, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - eq) : strlen(eq);
    ix_dim let[52];
    bool seen[52] = {false};
    int count[52] = {0};
    for (int i = 0; i < 52; i++)
        let[i] = ix_unk();
    ix_shape ell, s;
    ell.rank = 0;
    bool ell_known = true, any_ell = false;
    size_t start = 0, term = 0;
    for (size_t i = 0; i <= lhs_len; i++) {
        if (i < lhs_len && eq[i] != ',')
            continue;
        eterm t;
        if (!parse_term(eq + start, i - start, &t))
            return ix_fail(c, "cannot parse equation '%s'", eq);
        if (term >= c->nin)
            return ix_fail(c, "equation '%s' has more terms than inputs", eq);
        if (!ix_sh(c, term, &s)) {
            if (t.ell >= 0)
                ell_known = false;
            any_ell |= t.ell >= 0;
            for (int k = 0; k < t.n; k++) {
                seen[letter_ix(t.letters[k])] = true;
                count[letter_ix(t.letters[k])]++;
            }
        } else {
            int ne = s.rank - t.n;
            if (ne < 0 || (t.ell < 0 && ne != 0))
                return ix_fail(c, "input %zu has rank %d but its term has %d letters", term,
                               s.rank, t.n);
            for (int k = 0; k < t.n; k++) {
                int li = letter_ix(t.letters[k]);
                ix_dim d = s.d[k < t.ell || t.ell < 0 ? k : k + ne];
                count[li]++;
                ix_dim cur = let[li];
                if (!seen[li]) {
                    let[li] = d;
                } else if (ix_dim_differ(cur, d)) {
                    /* a size-1 dim may broadcast against the other */
                    if (cur.v == 1)
                        let[li] = d;
                    else if (d.v != 1)
                        return ix_fail(c, "letter '%c' has sizes %" PRId64 " and %" PRId64,
                                       t.letters[k], cur.v, d.v);
                } else if (!ix_known(cur) && ((ix_known(d) && d.v != 1) || (d.sym && !cur.sym))) {
                    let[li] = d;
                }
                seen[li] = true;
            }
            if (t.ell >= 0) {
                any_ell = true;
                ix_shape e, r;
                e.rank = ne;
                for (int k = 0; k < ne; k++)
                    e.d[k] = s.d[t.ell + k];
                if (ix_broadcast(&ell, &e, &r) < 0)
                    return ix_fail(c, "the '...' dims do not broadcast");
                ell = r;
            }
        }
        start = i + 1;
        term++;
    }
    ix_shape o;
    o.rank = 0;
    if (arrow) {
        eterm t;
        if (!parse_term(arrow + 2, strlen(arrow + 2), &t))
            return ix_fail(c, "cannot parse equation '%s'", eq);
        if (t.ell >= 0 && !ell_known) {
            ix_set(c, 0, dt, NULL);
            return IX_OK;
        }
        if (t.n + (t.ell >= 0 ? ell.rank : 0) > PARE_MAX_RANK)
            return ix_fail(c, "output rank too large");
        for (int k = 0; k <= t.n; k++) {
            if (k == t.ell)
                for (int j = 0; j < ell.rank; j++)
                    o.d[o.rank++] = ell.d[j];
            if (k < t.n) {
                int li = letter_ix(t.letters[k]);
                if (!seen[li])
                    return ix_fail(c, "output letter '%c' is not in any input", t.letters[k]);
                if (o.rank >= PARE_MAX_RANK)
                    return ix_fail(c, "output rank too large");
                o.d[o.rank++] = let[li];
            }
        }
    } else {
        if (any_ell && !ell_known) {
            ix_set(c, 0, dt, NULL);
            return IX_OK;
        }
        for (int j = 0; j < ell.rank; j++)
            o.d[o.rank++] = ell.d[j];
        for (int li = 0; li < 52 && o.rank < PARE_MAX_RANK; li++)
            if (count[li] == 1)
                o.d[o.rank++] = let[li];
    }
    ix_set(c, 0, dt, &o);
    return IX_OK;
}

/* ---- recurrent nets ---- */

static int op_rnn(ix_node *c)
{
    ix_shape x, w, r, o;
    ix_sh(c, 0, &x);
    ix_sh(c, 1, &w);
    ix_sh(c, 2, &r);
    int dt = ix_dt(c, 0);
    int layout = c->opset >= 14 ? (int)ix_attr_i(c, "layout", 0) : 0;
    ix_dim seq = ix_unk(), batch = ix_unk();
    if (x.rank >= 0 && x.rank != 3)
        return ix_fail(c, "input must be 3-D");
    if (x.rank == 3) {
        seq = x.d[layout ? 1 : 0];
        batch = x.d[layout ? 0 : 1];
    }
    const char *dir = pare_node_attr_string(c->n, "direction", "forward");
    ix_dim nd = ix_d(!strcmp(dir, "bidirectional") ? 2 : 1);
    ix_dim hid = ix_unk();
    int64_t hs = ix_attr_i(c, "hidden_size", -1);
    if (hs >= 0)
        hid = ix_d(hs);
    else if (r.rank == 3)
        hid = r.d[2];
    (void)w;
    o.rank = 4;
    if (layout) {
        o.d[0] = batch;
        o.d[1] = seq;
        o.d[2] = nd;
    } else {
        o.d[0] = seq;
        o.d[1] = nd;
        o.d[2] = batch;
    }
    o.d[3] = hid;
    ix_set(c, 0, dt, &o);
    o.rank = 3;
    if (layout) {
        o.d[0] = batch;
        o.d[1] = nd;
    } else {
        o.d[0] = nd;
        o.d[1] = batch;
    }
    o.d[2] = hid;
    ix_set(c, 1, dt, &o);
    ix_set(c, 2, dt, &o);
    return IX_OK;
}

/* ---- Attention (opset 23) ---- */

static int op_attention(ix_node *c)
{
    ix_shape q, k, v, pk;
    ix_sh(c, 0, &q);
    ix_sh(c, 1, &k);
    ix_sh(c, 2, &v);
    ix_sh(c, 4, &pk);
    int dt = ix_dt(c, 0);
    if (q.rank < 0 || k.rank < 0 || v.rank < 0) {
        for (size_t o = 0; o < c->nout; o++)
            ix_set(c, o, o == 0 ? dt : ix_dt(c, o == 3 ? 0 : o), NULL);
        return IX_OK;
    }
    if ((q.rank != 3 && q.rank != 4) || k.rank != q.rank || v.rank != q.rank)
        return ix_fail(c, "Q, K and V must all be 3-D or all 4-D");
    int64_t qh = ix_attr_i(c, "q_num_heads", -1), kvh = ix_attr_i(c, "kv_num_heads", -1);
    ix_dim b = q.d[0], qseq, kvseq, qheads, kvheads, vhead, khead;
    if (q.rank == 4) {
        qheads = q.d[1];
        qseq = q.d[2];
        kvheads = k.d[1];
        kvseq = k.d[2];
        khead = k.d[3];
        vhead = v.d[3];
    } else {
        qseq = q.d[1];
        kvseq = k.d[1];
        qheads = qh > 0 ? ix_d(qh) : ix_unk();
        kvheads = kvh > 0 ? ix_d(kvh) : ix_unk();
        khead = ix_known(k.d[2]) && kvh > 0 && k.d[2].v % kvh == 0 ? ix_d(k.d[2].v / kvh)
                                                                    : ix_unk();
        vhead = ix_known(v.d[2]) && kvh > 0 && v.d[2].v % kvh == 0 ? ix_d(v.d[2].v / kvh)
                                                                    : ix_unk();
    }
    ix_dim total = kvseq;
    if (ix_has(c, 4)) {
        total = ix_unk();
        int64_t t;
        if (pk.rank == 4 && ix_known(pk.d[2]) && ix_known(kvseq) && ix_add(pk.d[2].v, kvseq.v, &t))
            total = ix_d(t);
        else if (pk.rank == 4 && ix_known(pk.d[2]) && pk.d[2].v == 0)
            total = kvseq;
    }
    ix_shape o;
    if (q.rank == 4) {
        o.rank = 4;
        o.d[0] = b;
        o.d[1] = qheads;
        o.d[2] = qseq;
        o.d[3] = vhead;
    } else {
        o.rank = 3;
        o.d[0] = b;
        o.d[1] = qseq;
        o.d[2] = ix_dim_mul(qheads, vhead);
    }
    ix_set(c, 0, dt, &o);
    o.rank = 4;
    o.d[0] = b;
    o.d[1] = kvheads;
    o.d[2] = total;
    o.d[3] = khead;
    ix_set(c, 1, ix_dt(c, 1), &o);
    o.d[3] = vhead;
    ix_set(c, 2, ix_dt(c, 2), &o);
    o.d[1] = qheads;
    o.d[2] = qseq;
    o.d[3] = total;
    ix_set(c, 3, dt, &o);
    return IX_OK;
}

/* ---- sampling ---- */

static int op_grid_sample(ix_node *c)
{
    ix_shape x, g, o;
    ix_sh(c, 0, &x);
    ix_sh(c, 1, &g);
    int dt = ix_dt(c, 0);
    int rank = x.rank >= 0 ? x.rank : g.rank;
    if (rank < 0 || (x.rank >= 0 && g.rank >= 0 && x.rank != g.rank)) {
        if (x.rank >= 0 && g.rank >= 0)
            return ix_fail(c, "input has rank %d but the grid has rank %d", x.rank, g.rank);
        ix_set(c, 0, dt, NULL);
        return IX_OK;
    }
    ix_shape_rank(&o, rank);
    if (x.rank >= 0) {
        o.d[0] = x.d[0];
        o.d[1] = x.d[1];
    }
    if (g.rank >= 0) {
        if (!ix_known(o.d[0]))
            o.d[0] = g.d[0];
        for (int i = 2; i < rank; i++)
            o.d[i] = g.d[i - 1];
    }
    ix_set(c, 0, dt, &o);
    return IX_OK;
}

static int op_affine_grid(ix_node *c)
{
    const ix_const *k = ix_cst(c, 1);
    int dt = ix_dt(c, 0);
    ix_shape o;
    if (!k || (k->n != 4 && k->n != 5)) {
        ix_set(c, 0, dt, NULL);
        return IX_OK;
    }
    o.rank = k->n;
    o.d[0] = ix_const_dim(k, 0);
    for (int i = 2; i < k->n; i++)
        o.d[i - 1] = ix_const_dim(k, i);
    o.d[k->n - 1] = ix_d(k->n - 2);
    ix_set(c, 0, dt, &o);
    return IX_OK;
}

static int op_roi_align(ix_node *c)
{
    ix_shape x, r, o;
    ix_sh(c, 0, &x);
    ix_sh(c, 1, &r);
    o.rank = 4;
    o.d[0] = r.rank == 2 ? r.d[0] : ix_unk();
    o.d[1] = x.rank == 4 ? x.d[1] : ix_unk();
    o.d[2] = ix_d(ix_attr_i(c, "output_height", 1));
    o.d[3] = ix_d(ix_attr_i(c, "output_width", 1));
    ix_set(c, 0, ix_dt(c, 0), &o);
    return IX_OK;
}

static int op_nms(ix_node *c)
{
    ix_shape o;
    o.rank = 2;
    o.d[0] = ix_unk();
    o.d[1] = ix_d(3);
    ix_set(c, 0, PARE_DT_INT64, &o);
    return IX_OK;
}

static int op_unique(ix_node *c)
{
    ix_shape x, o;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    o.rank = 1;
    o.d[0] = ix_unk();
    ix_set(c, 1, PARE_DT_INT64, &o);
    ix_set(c, 3, PARE_DT_INT64, &o);
    if (!ix_attr_has(c, "axis")) {
        ix_set(c, 0, dt, &o);
        o.d[0] = x.rank >= 0 ? ix_dims_product(&x, 0, x.rank) : ix_unk();
        ix_set(c, 2, PARE_DT_INT64, &o);
        return IX_OK;
    }
    if (x.rank < 0) {
        ix_set(c, 0, dt, NULL);
        ix_set(c, 2, PARE_DT_INT64, &o);
        return IX_OK;
    }
    int axis;
    if (!ix_axis(ix_attr_i(c, "axis", 0), x.rank, &axis))
        return ix_fail(c, "axis out of range for rank %d", x.rank);
    o.d[0] = x.d[axis];
    ix_set(c, 2, PARE_DT_INT64, &o);
    x.d[axis] = ix_unk();
    ix_set(c, 0, dt, &x);
    return IX_OK;
}

static int op_det(ix_node *c)
{
    ix_shape x;
    ix_sh(c, 0, &x);
    if (x.rank >= 0) {
        if (x.rank < 2)
            return ix_fail(c, "input must have rank 2 or more");
        if (ix_dim_differ(x.d[x.rank - 1], x.d[x.rank - 2]))
            return ix_fail(c, "matrices are not square");
        x.rank -= 2;
    }
    ix_set(c, 0, ix_dt(c, 0), &x);
    return IX_OK;
}

static int op_col2im(ix_node *c)
{
    ix_shape x, o;
    ix_sh(c, 0, &x);
    const ix_const *img = ix_cst(c, 1), *blk = ix_cst(c, 2);
    int dt = ix_dt(c, 0);
    if (!img || img->rank != 1 || img->n + 2 > PARE_MAX_RANK) {
        ix_set(c, 0, dt, NULL);
        return IX_OK;
    }
    o.rank = img->n + 2;
    o.d[0] = x.rank == 3 ? x.d[0] : ix_unk();
    o.d[1] = ix_unk();
    int64_t prod = 1;
    bool ok = blk && ix_const_all_int(blk);
    for (int i = 0; ok && i < blk->n; i++)
        ok = ix_mul(prod, blk->e[i].i, &prod);
    if (ok && prod > 0 && x.rank == 3 && ix_known(x.d[1]) && x.d[1].v % prod == 0)
        o.d[1] = ix_d(x.d[1].v / prod);
    for (int i = 0; i < img->n; i++)
        o.d[2 + i] = ix_const_dim(img, i);
    ix_set(c, 0, dt, &o);
    return IX_OK;
}

/* ---- random generators ---- */

static int op_random_like(ix_node *c)
{
    ix_shape x;
    ix_sh(c, 0, &x);
    int dt = (int)ix_attr_i(c, "dtype", 0);
    ix_set(c, 0, dt ? dt : ix_dt(c, 0), &x);
    return IX_OK;
}

static int op_random(ix_node *c)
{
    const int64_t *sv;
    size_t n = ix_attr_ints(c, "shape", &sv);
    int dt = (int)ix_attr_i(c, "dtype", PARE_DT_FLOAT);
    ix_shape o;
    if (n > PARE_MAX_RANK)
        return ix_fail(c, "shape rank too large");
    o.rank = (int)n;
    for (size_t i = 0; i < n; i++)
        o.d[i] = sv[i] >= 0 ? ix_d(sv[i]) : ix_unk();
    ix_set(c, 0, dt, &o);
    return IX_OK;
}

static int op_multinomial(ix_node *c)
{
    ix_shape x, o;
    ix_sh(c, 0, &x);
    o.rank = 2;
    o.d[0] = x.rank == 2 ? x.d[0] : ix_unk();
    o.d[1] = ix_d(ix_attr_i(c, "sample_size", 1));
    ix_set(c, 0, (int)ix_attr_i(c, "dtype", PARE_DT_INT32), &o);
    return IX_OK;
}

/* ---- losses ---- */

static int op_nll_loss(ix_node *c)
{
    ix_shape t, o;
    ix_sh(c, 1, &t);
    const char *red = pare_node_attr_string(c->n, "reduction", "mean");
    o.rank = 0;
    ix_set(c, 0, ix_dt(c, 0), strcmp(red, "none") ? &o : &t);
    if (!strcmp(c->n->op_type, "SoftmaxCrossEntropyLoss")) {
        ix_shape s;
        ix_sh(c, 0, &s);
        ix_set(c, 1, ix_dt(c, 0), &s);
    }
    return IX_OK;
}

/* ---- signal processing ---- */

static bool scalar_int(ix_node *c, size_t i, int64_t *v)
{
    const ix_const *k = ix_cst(c, i);
    return k && k->n == 1 && ix_const_int(k, 0, v);
}

static int op_window(ix_node *c)
{
    ix_shape o;
    int64_t n;
    o.rank = 1;
    o.d[0] = scalar_int(c, 0, &n) && n >= 0 ? ix_d(n) : ix_unk();
    ix_set(c, 0, (int)ix_attr_i(c, "output_datatype", PARE_DT_FLOAT), &o);
    return IX_OK;
}

static int op_dft(ix_node *c)
{
    ix_shape x;
    ix_sh(c, 0, &x);
    int dt = ix_dt(c, 0);
    if (x.rank < 2) {
        ix_set(c, 0, dt, x.rank < 0 ? NULL : &x);
        return IX_OK;
    }
    int64_t ax;
    bool inverse = ix_attr_i(c, "inverse", 0) != 0, onesided = ix_attr_i(c, "onesided", 0) != 0;
    if (c->opset >= 20) {
        ax = -2;
        if (ix_has(c, 2) && !scalar_int(c, 2, &ax)) {
            ix_shape_rank(&x, x.rank);
            x.d[x.rank - 1] = ix_d(onesided && inverse ? 1 : 2);
            ix_set(c, 0, dt, &x);
            return IX_OK;
        }
    } else {
        ax = ix_attr_i(c, "axis", 1);
    }
    int axis;
    if (!ix_axis(ax, x.rank, &axis) || axis == x.rank - 1)
        return ix_fail(c, "axis %" PRId64 " out of range", ax);
    /* onesided forward is RFFT (half the bins), onesided inverse is IRFFT
     * (a real signal of dft_length, by default 2 * (bins - 1)) */
    int64_t n;
    ix_dim len = x.d[axis];
    if (ix_has(c, 1))
        len = scalar_int(c, 1, &n) && n > 0 ? ix_d(n) : ix_unk();
    else if (onesided && inverse)
        len = ix_known(len) && len.v >= 1 && len.v < INT64_MAX / 2 ? ix_d(2 * (len.v - 1))
                                                                    : ix_unk();
    if (onesided && !inverse)
        len = ix_known(len) ? ix_d(len.v / 2 + 1) : ix_unk();
    x.d[axis] = len;
    x.d[x.rank - 1] = ix_d(onesided && inverse ? 1 : 2);
    ix_set(c, 0, dt, &x);
    return IX_OK;
}

static int op_stft(ix_node *c)
{
    ix_shape x, w, o;
    ix_sh(c, 0, &x);
    ix_sh(c, 2, &w);
    int dt = ix_dt(c, 0);
    int64_t step, fl = -1;
    if (!scalar_int(c, 3, &fl) && w.rank == 1 && ix_known(w.d[0]))
        fl = w.d[0].v;
    o.rank = 4;
    o.d[0] = x.rank == 3 ? x.d[0] : ix_unk();
    o.d[1] = ix_unk();
    if (x.rank == 3 && ix_known(x.d[1]) && scalar_int(c, 1, &step) && step > 0 && fl > 0 &&
        x.d[1].v >= fl)
        o.d[1] = ix_d((x.d[1].v - fl) / step + 1);
    o.d[2] = fl > 0 ? ix_d(ix_attr_i(c, "onesided", 1) ? fl / 2 + 1 : fl) : ix_unk();
    o.d[3] = ix_d(2);
    ix_set(c, 0, dt, &o);
    return IX_OK;
}

static int op_mel(ix_node *c)
{
    ix_shape o;
    int64_t bins, dft;
    o.rank = 2;
    o.d[0] = scalar_int(c, 1, &dft) && dft >= 0 ? ix_d(dft / 2 + 1) : ix_unk();
    o.d[1] = scalar_int(c, 0, &bins) && bins >= 0 ? ix_d(bins) : ix_unk();
    ix_set(c, 0, (int)ix_attr_i(c, "output_datatype", PARE_DT_FLOAT), &o);
    return IX_OK;
}

/* ---- strings ---- */

static int op_string_concat(ix_node *c)
{
    ix_shape a, b, o;
    ix_sh(c, 0, &a);
    ix_sh(c, 1, &b);
    if (ix_broadcast(&a, &b, &o) < 0)
        return ix_fail(c, "inputs do not broadcast");
    ix_set(c, 0, PARE_DT_STRING, &o);
    return IX_OK;
}

static int op_regex(ix_node *c)
{
    ix_shape x;
    ix_sh(c, 0, &x);
    ix_set(c, 0, PARE_DT_BOOL, &x);
    return IX_OK;
}

static int op_string_split(ix_node *c)
{
    ix_shape x;
    ix_sh(c, 0, &x);
    ix_set(c, 1, PARE_DT_INT64, &x);
    if (x.rank >= 0 && x.rank < PARE_MAX_RANK)
        x.d[x.rank++] = ix_unk();
    ix_set(c, 0, PARE_DT_STRING, &x);
    return IX_OK;
}

static int op_same(ix_node *c)
{
    ix_shape x;
    ix_sh(c, 0, &x);
    ix_set(c, 0, ix_dt(c, 0), &x);
    return IX_OK;
}

static int op_bitcast(ix_node *c)
{
    ix_shape x;
    ix_sh(c, 0, &x);
    int to = (int)ix_attr_i(c, "to", 0);
    ix_set(c, 0, to > 0 ? to : 0, &x);
    return IX_OK;
}

/* CausalConvWithState: output like the input, state (B, C, k - 1). */
static int op_causal_conv(ix_node *c)
{
    ix_shape x, w, st;
    ix_sh(c, 0, &x);
    ix_sh(c, 1, &w);
    int dt = ix_dt(c, 0);
    ix_set(c, 0, dt, &x);
    st.rank = 3;
    st.d[0] = x.rank == 3 ? x.d[0] : ix_unk();
    st.d[1] = x.rank == 3 ? x.d[1] : w.rank == 3 ? w.d[0] : ix_unk();
    st.d[2] = w.rank == 3 && ix_known(w.d[2]) && w.d[2].v >= 1 ? ix_d(w.d[2].v - 1) : ix_unk();
    ix_set(c, 1, dt, &st);
    return IX_OK;
}

static ix_dim per_head(ix_dim packed, int64_t heads)
{
    return ix_known(packed) && heads > 0 && packed.v % heads == 0 ? ix_d(packed.v / heads)
                                                                   : ix_unk();
}

/* LinearAttention: output (B, T, Hq * dv), state (B, Hkv, dk, dv). */
static int op_linear_attention(ix_node *c)
{
    ix_shape q, v, o;
    ix_sh(c, 0, &q);
    ix_sh(c, 2, &v);
    int dt = ix_dt(c, 0);
    int64_t hq = ix_attr_i(c, "q_num_heads", 0), hkv = ix_attr_i(c, "kv_num_heads", 0);
    ix_dim dk = q.rank == 3 ? per_head(q.d[2], hq) : ix_unk();
    ix_dim dv = v.rank == 3 ? per_head(v.d[2], hkv) : ix_unk();
    o.rank = 3;
    o.d[0] = q.rank == 3 ? q.d[0] : ix_unk();
    o.d[1] = q.rank == 3 ? q.d[1] : ix_unk();
    o.d[2] = hq > 0 ? ix_dim_mul(ix_d(hq), dv) : ix_unk();
    ix_set(c, 0, dt, &o);
    o.rank = 4;
    o.d[1] = hkv > 0 ? ix_d(hkv) : ix_unk();
    o.d[2] = dk;
    o.d[3] = dv;
    ix_set(c, 1, dt, &o);
    return IX_OK;
}

const ix_op ix_ops_misc[] = {
    {"", "AffineGrid", op_affine_grid},
    {"", "Attention", op_attention},
    {"", "Bernoulli", op_random_like},
    {"", "BitCast", op_bitcast},
    {"", "BlackmanWindow", op_window},
    {"", "CausalConvWithState", op_causal_conv},
    {"", "Col2Im", op_col2im},
    {"", "DFT", op_dft},
    {"", "Det", op_det},
    {"", "Einsum", op_einsum},
    {"", "GRU", op_rnn},
    {"", "GridSample", op_grid_sample},
    {"", "HammingWindow", op_window},
    {"", "HannWindow", op_window},
    {"", "LSTM", op_rnn},
    {"", "LinearAttention", op_linear_attention},
    {"", "MelWeightMatrix", op_mel},
    {"", "Multinomial", op_multinomial},
    {"", "NegativeLogLikelihoodLoss", op_nll_loss},
    {"", "NonMaxSuppression", op_nms},
    {"", "RNN", op_rnn},
    {"", "RandomNormal", op_random},
    {"", "RandomNormalLike", op_random_like},
    {"", "RandomUniform", op_random},
    {"", "RandomUniformLike", op_random_like},
    {"", "RegexFullMatch", op_regex},
    {"", "RoiAlign", op_roi_align},
    {"", "RotaryEmbedding", op_same},
    {"", "STFT", op_stft},
    {"", "SoftmaxCrossEntropyLoss", op_nll_loss},
    {"", "StringConcat", op_string_concat},
    {"", "StringSplit", op_string_split},
    {"", "TensorScatter", op_same},
    {"", "Unique", op_unique},
};
const size_t ix_n_ops_misc = sizeof ix_ops_misc / sizeof ix_ops_misc[0];
