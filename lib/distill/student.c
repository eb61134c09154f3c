/* lib/distill/student.c - students derived from a teacher: repeated residual
 * blocks found by structure and dropped, low-rank factoring of linear
 * layers; and the small dense linear algebra they need (Jacobi eigen-
 * decomposition, Cholesky), in double. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/distill.h"

/* ---- linear algebra ---- */

pare_status pare_sym_eig(double *a, size_t n, double *evals, double *evecs, pare_error *err)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            evecs[i * n + j] = i == j;
    double frob = 0;
    for (size_t i = 0; i < n * n; i++)
        frob += a[i] * a[i];
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0;
        for (size_t p = 0; p < n; p++)
            for (size_t q = p + 1; q < n; q++)
                off += 2 * a[p * n + q] * a[p * n + q];
        if (off <= 1e-30 * frob || off == 0)
            break;
        for (size_t p = 0; p < n; p++) {
            for (size_t q = p + 1; q < n; q++) {
                double apq = a[p * n + q];
                if (apq == 0)
                    continue;
                double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (size_t k = 0; k < n; k++) { /* columns p, q */
                    double akp = a[k * n + p], akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for (size_t k = 0; k < n; k++) { /* rows p, q */
                    double apk = a[p * n + k], aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for (size_t k = 0; k < n; k++) {
                    double vkp = evecs[k * n + p], vkq = evecs[k * n + q];
                    evecs[k * n + p] = c * vkp - s * vkq;
                    evecs[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    /* sort descending (selection sort of columns; n is small) */
    for (size_t i = 0; i < n; i++)
        evals[i] = a[i * n + i];
    for (size_t i = 0; i < n; i++) {
        size_t best = i;
        for (size_t j = i + 1; j < n; j++)
            if (evals[j] > evals[best])
                best = j;
        if (best != i) {
            double t = evals[i];
            evals[i] = evals[best];
            evals[best] = t;
            for (size_t k = 0; k < n; k++) {
                t = evecs[k * n + i];
                evecs[k * n + i] = evecs[k * n + best];
                evecs[k * n + best] = t;
            }
        }
    }
    (void)err;
    return PARE_OK;
}

pare_status pare_cholesky_solve(double *g, size_t n, double *b, size_t m, pare_error *err)
{
    for (size_t j = 0; j < n; j++) {
        double d = g[j * n + j];
        for (size_t k = 0; k < j; k++)
            d -= g[j * n + k] * g[j * n + k];
        if (!(d > 0))
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "Gram matrix is not positive definite at row %zu "
                                  "(too few samples or collinear features: raise --ridge)", j);
        d = sqrt(d);
        g[j * n + j] = d;
        for (size_t i = j + 1; i < n; i++) {
            double s = g[i * n + j];
            for (size_t k = 0; k < j; k++)
                s -= g[i * n + k] * g[j * n + k];
            g[i * n + j] = s / d;
        }
    }
    for (size_t c = 0; c < m; c++) {
        for (size_t i = 0; i < n; i++) { /* L y = b */
            double s = b[i * m + c];
            for (size_t k = 0; k < i; k++)
                s -= g[i * n + k] * b[k * m + c];
            b[i * m + c] = s / g[i * n + i];
        }
        for (size_t i = n; i-- > 0;) { /* L^T x = y */
            double s = b[i * m + c];
            for (size_t k = i + 1; k < n; k++)
                s -= g[k * n + i] * b[k * m + c];
            b[i * m + c] = s / g[i * n + i];
        }
    }
    return PARE_OK;
}

/* ---- residual blocks ---- */

static bool is_init(const pare_value *v)
{
    return v && v->init;
}

/* Is a an ancestor of b (a feeds b through at least one node)? */
static bool is_ancestor(pare_graph *g, const pare_value *a, const pare_value *b, unsigned char *seen)
{
    memset(seen, 0, g->next_node_id + 1);
    size_t cap = g->n_nodes + 1, top = 0;
    pare_node **stack = malloc(cap * sizeof *stack);
    if (!stack || !b->producer) {
        free(stack);
        return false;
    }
    bool found = false;
    stack[top++] = b->producer;
    seen[b->producer->id] = 1;
    while (top && !found) {
        pare_node *n = stack[--top];
        for (size_t i = 0; i < n->n_inputs; i++) {
            pare_value *v = n->inputs[i];
            if (!v)
                continue;
            if (v == a) {
                found = true;
                break;
            }
            pare_node *p = v->producer;
            if (p && p->graph == g && !seen[p->id] && top < cap) {
                seen[p->id] = 1;
                stack[top++] = p;
            }
        }
    }
    free(stack);
    return found;
}

/* Marks in `mark` (by node id) nodes that are ancestors of v (its producer
 * included), stopping at `stop` (not crossed). */
static void mark_ancestors(pare_graph *g, const pare_value *v, const pare_value *stop,
                           unsigned char *mark)
{
    memset(mark, 0, g->next_node_id + 1);
    for (size_t k = g->n_nodes; k-- > 0;) {
        pare_node *n = g->nodes[k];
        bool take = false;
        for (size_t o = 0; o < n->n_outputs && !take; o++) {
            pare_value *ov = n->outputs[o];
            if (!ov)
                continue;
            if (ov == v)
                take = true;
            for (size_t u = 0; u < ov->n_uses && !take; u++)
                if (ov->uses[u].node->graph == g && mark[ov->uses[u].node->id])
                    take = true;
        }
        if (take)
            mark[n->id] = 1;
        (void)stop;
    }
}

/* Marks nodes reachable forward from v. */
static void mark_descendants(pare_graph *g, const pare_value *v, unsigned char *mark)
{
    memset(mark, 0, g->next_node_id + 1);
    for (size_t k = 0; k < g->n_nodes; k++) {
        pare_node *n = g->nodes[k];
        bool take = false;
        for (size_t i = 0; i < n->n_inputs && !take; i++) {
            pare_value *iv = n->inputs[i];
            if (!iv)
                continue;
            if (iv == v || (iv->producer && iv->producer->graph == g && mark[iv->producer->id]))
                take = true;
        }
        if (take)
            mark[n->id] = 1;
    }
}

typedef struct segment {
    pare_value *in, *out;
    pare_node **nodes;
    size_t n;
    char *sig;
} segment;

static void dims_text(const pare_tensor *t, char *buf, size_t size)
{
    size_t o = 0;
    o += (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < t->rank && o < size; d++)
        o += (size_t)snprintf(buf + o, size - o, d ? "x%lld" : "%lld", (long long)t->dims[d]);
    if (o < size)
        snprintf(buf + o, size - o, "]");
}

static pare_status build_segment(pare_graph *g, segment *s, unsigned char *anc, unsigned char *desc,
                                 pare_error *err)
{
    mark_ancestors(g, s->out, s->in, anc);
    mark_descendants(g, s->in, desc);
    s->nodes = malloc((g->n_nodes + 1) * sizeof *s->nodes);
    size_t cap = 256, len = 0;
    s->sig = malloc(cap);
    if (!s->nodes || !s->sig)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    s->sig[0] = 0;
    for (size_t k = 0; k < g->n_nodes; k++) {
        pare_node *n = g->nodes[k];
        if (!anc[n->id] || !desc[n->id])
            continue;
        s->nodes[s->n++] = n;
        char part[512];
        size_t pl = (size_t)snprintf(part, sizeof part, "%s(", n->op_type);
        for (size_t i = 0; i < n->n_inputs && pl < sizeof part - 64; i++) {
            if (is_init(n->inputs[i])) {
                char d[128];
                dims_text(n->inputs[i]->init, d, sizeof d);
                pl += (size_t)snprintf(part + pl, sizeof part - pl, "%zu:%s,", i, d);
            }
        }
        if (pl < sizeof part - 2)
            pl += (size_t)snprintf(part + pl, sizeof part - pl, ");");
        if (len + pl + 1 > cap) {
            while (len + pl + 1 > cap)
                cap *= 2;
            char *ns = realloc(s->sig, cap);
            if (!ns)
                return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
            s->sig = ns;
        }
        memcpy(s->sig + len, part, pl + 1);
        len += pl;
    }
    return PARE_OK;
}

void pare_block_list_release(pare_block_list *bl)
{
    if (!bl)
        return;
    for (size_t i = 0; i < bl->n; i++) {
        free(bl->items[i].nodes);
        free(bl->items[i].signature);
    }
    free(bl->items);
    memset(bl, 0, sizeof *bl);
}

pare_status pare_distill_find_blocks(pare_model *m, pare_block_list *out, pare_error *err)
{
    memset(out, 0, sizeof *out);
    pare_graph *g = pare_model_graph(m);
    pare_status st = pare_graph_toposort(g, err);
    if (st)
        return st;
    size_t nid = g->next_node_id + 1;
    unsigned char *seen = calloc(nid, 1), *anc = calloc(nid, 1), *desc = calloc(nid, 1);
    pare_node **joins = malloc((g->n_nodes + 1) * sizeof *joins);
    pare_value **skips = malloc((g->n_nodes + 2) * sizeof *skips), **ends = NULL;
    segment *segs = NULL;
    size_t nj = 0, nseg = 0;
    if (!seen || !anc || !desc || !joins || !skips) {
        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < g->n_nodes; k++) {
        pare_node *n = g->nodes[k];
        if ((!pare_node_is(n, "", "Add") && !pare_node_is(n, "", "Sum")) || n->n_inputs != 2 || !n->inputs[0] || !n->inputs[1] ||
            !n->outputs[0] || is_init(n->inputs[0]) || is_init(n->inputs[1]) ||
            n->inputs[0] == n->inputs[1])
            continue;
        pare_value *skip = NULL;
        if (is_ancestor(g, n->inputs[0], n->inputs[1], seen))
            skip = n->inputs[0];
        else if (is_ancestor(g, n->inputs[1], n->inputs[0], seen))
            skip = n->inputs[1];
        if (!skip)
            continue;
        /* on the main path: the skip comes from the previous join's output */
        if (nj > 0) {
            pare_value *prev = joins[nj - 1]->outputs[0];
            if (skip != prev && !is_ancestor(g, prev, skip, seen))
                continue;
        }
        skips[nj] = skip;
        joins[nj++] = n;
    }
    if (nj < 2) {
        st = pare_error_set(err, PARE_ERR_INVALID,
                            "no repeated residual blocks (%zu residual join%s found on the main path)",
                            nj, nj == 1 ? "" : "s");
        goto done;
    }
    /* Each segment ends after its join and the chain of single-input nodes
     * that follow it while their outputs have one reader (a post-LN norm, a
     * ResNet's Relu), up to the next join's skip input; the last one takes
     * the same chain of op types as the one before it. */
    ends = malloc((nj + 1) * sizeof *ends);
    if (!ends) {
        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        goto done;
    }
    {
        const char *chain[16];
        size_t nc = 0;
        for (size_t i = 0; i < nj; i++) {
            pare_value *end = joins[i]->outputs[0];
            size_t steps = 0;
            bool last = i + 1 == nj;
            while (steps < 16 && (last || end != skips[i + 1]) && end->n_uses == 1 &&
                   !end->is_output) {
                pare_node *n = end->uses[0].node;
                size_t data_in = 0;
                for (size_t k = 0; k < n->n_inputs; k++)
                    data_in += n->inputs[k] && !is_init(n->inputs[k]);
                if (n->graph != g || data_in != 1 || n->n_outputs < 1 || !n->outputs[0])
                    break;
                if (last && (steps >= nc || strcmp(n->op_type, chain[steps]) != 0))
                    break;
                if (!last)
                    chain[steps] = n->op_type;
                end = n->outputs[0];
                steps++;
            }
            if (!last)
                nc = steps;
            ends[i] = end;
        }
    }
    segs = calloc(nj, sizeof *segs);
    if (!segs) {
        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nj; i++) {
        segs[i].in = skips[i];
        segs[i].out = ends[i];
        nseg++;
        if ((st = build_segment(g, &segs[i], anc, desc, err)))
            goto done;
    }
    size_t period = 0;
    for (size_t p = 1; p <= nj / 2 && !period; p++) {
        if (nj % p)
            continue;
        bool ok = true;
        for (size_t i = 0; i + p < nj && ok; i++)
            ok = strcmp(segs[i].sig, segs[i + p].sig) == 0;
        if (ok)
            period = p;
    }
    /* Without one pattern along the whole path (ResNet stages of different
     * widths, joined by projection blocks), the blocks are the segments
     * equal to a neighbour: the runs of identical residual blocks. */
    size_t *pick = malloc((nj + 1) * sizeof *pick), nb = 0;
    if (!pick) {
        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (period) {
        for (size_t b = 0; b < nj / period; b++)
            pick[nb++] = b * period;
    } else {
        period = 1;
        for (size_t i = 0; i < nj; i++)
            if ((i > 0 && strcmp(segs[i].sig, segs[i - 1].sig) == 0) ||
                (i + 1 < nj && strcmp(segs[i].sig, segs[i + 1].sig) == 0))
                pick[nb++] = i;
    }
    if (nb < 2) {
        free(pick);
        st = pare_error_set(err, PARE_ERR_INVALID,
                            "no repeated residual blocks (%zu residual joins on the main path, "
                            "no repeating pattern)", nj);
        goto done;
    }
    out->items = calloc(nb, sizeof *out->items);
    if (!out->items) {
        free(pick);
        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        goto done;
    }
    out->n = nb;
    out->segments_per_block = period;
    for (size_t b = 0; b < nb; b++) {
        pare_block *bk = &out->items[b];
        bk->in = segs[pick[b]].in;
        bk->out = segs[pick[b] + period - 1].out;
        size_t total = 0, slen = 0;
        for (size_t s = 0; s < period; s++) {
            total += segs[pick[b] + s].n;
            slen += strlen(segs[pick[b] + s].sig);
        }
        bk->nodes = malloc((total + 1) * sizeof *bk->nodes);
        bk->signature = malloc(slen + 1);
        if (!bk->nodes || !bk->signature) {
            free(pick);
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
            goto done;
        }
        bk->signature[0] = 0;
        memset(seen, 0, nid);
        for (size_t s = 0; s < period; s++) {
            segment *sg = &segs[pick[b] + s];
            strcat(bk->signature, sg->sig);
            for (size_t k = 0; k < sg->n; k++)
                if (!seen[sg->nodes[k]->id]) {
                    seen[sg->nodes[k]->id] = 1;
                    bk->nodes[bk->n_nodes++] = sg->nodes[k];
                }
        }
        /* params: initializers read only by this block's nodes (each once) */
        for (size_t k = 0; k < bk->n_nodes; k++) {
            pare_node *n = bk->nodes[k];
            for (size_t i = 0; i < n->n_inputs; i++) {
                pare_value *v = n->inputs[i];
                if (!is_init(v))
                    continue;
                bool only = true, first = true;
                for (size_t u = 0; u < v->n_uses; u++) {
                    pare_node *un = v->uses[u].node;
                    if (un->graph != g || !seen[un->id])
                        only = false;
                }
                /* count once: at its first use in this block's order */
                for (size_t k2 = 0; k2 < k && first; k2++)
                    for (size_t i2 = 0; i2 < bk->nodes[k2]->n_inputs; i2++)
                        if (bk->nodes[k2]->inputs[i2] == v)
                            first = false;
                for (size_t i2 = 0; i2 < i && first; i2++)
                    if (n->inputs[i2] == v)
                        first = false;
                if (only && first)
                    bk->params += pare_tensor_numel(v->init);
            }
        }
    }
    free(pick);
done:
    for (size_t i = 0; i < nseg; i++) {
        free(segs[i].nodes);
        free(segs[i].sig);
    }
    free(segs);
    free(seen);
    free(anc);
    free(desc);
    free(joins);
    free(skips);
    free(ends);
    if (st)
        pare_block_list_release(out);
    return st;
}

/* Removes dead nodes, then initializers nobody reads any more, including
 * those an older model also lists as graph inputs. */
static pare_status remove_dead(pare_graph *g, pare_error *err)
{
    pare_status st = pare_graph_remove_dead(g, NULL, err);
    bool again = false;
    for (size_t i = g->n_inputs; i-- > 0 && !st;) {
        pare_value *v = g->inputs[i];
        if (v && v->init && v->n_uses == 0 && !v->is_output) {
            st = pare_graph_remove_input(g, i, err);
            again = true;
        }
    }
    if (!st && again)
        st = pare_graph_remove_dead(g, NULL, err);
    return st;
}

pare_status pare_distill_drop_blocks(pare_model *m, const pare_block_list *bl, const bool *drop,
                                     pare_error *err)
{
    pare_graph *g = pare_model_graph(m);
    size_t kept = 0;
    for (size_t i = 0; i < bl->n; i++)
        kept += !drop[i];
    if (kept == 0)
        return pare_error_set(err, PARE_ERR_ARG, "dropping all %zu blocks leaves no block", bl->n);
    for (size_t i = bl->n; i-- > 0;) {
        if (!drop[i])
            continue;
        pare_status st = pare_value_replace_uses(bl->items[i].out, bl->items[i].in, err);
        if (st)
            return st;
    }
    pare_status st = remove_dead(g, err);
    if (!st)
        st = pare_graph_toposort(g, err);
    return st;
}

/* ---- low rank ---- */

static pare_status factor_weight(const float *w, int64_t k, int64_t n, int64_t rank, double energy,
                                 float **a_out, float **b_out, int64_t *r_out, pare_error *err)
{
    /* work on the smaller Gram: d = min(k, n) */
    bool by_cols = n <= k; /* G = W^T W (n x n) */
    size_t d = (size_t)(by_cols ? n : k);
    double *gm = calloc(d * d, sizeof *gm), *ev = malloc(d * sizeof *ev),
           *vec = malloc(d * d * sizeof *vec);
    pare_status st = PARE_OK;
    *a_out = *b_out = NULL;
    if (!gm || !ev || !vec) {
        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (by_cols) {
        for (int64_t r = 0; r < k; r++)
            for (size_t i = 0; i < d; i++) {
                double wi = w[r * n + (int64_t)i];
                for (size_t j = i; j < d; j++)
                    gm[i * d + j] += wi * w[r * n + (int64_t)j];
            }
    } else {
        for (size_t i = 0; i < d; i++)
            for (size_t j = i; j < d; j++) {
                double s = 0;
                for (int64_t c = 0; c < n; c++)
                    s += (double)w[(int64_t)i * n + c] * w[(int64_t)j * n + c];
                gm[i * d + j] = s;
            }
    }
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < i; j++)
            gm[i * d + j] = gm[j * d + i];
    if ((st = pare_sym_eig(gm, d, ev, vec, err)))
        goto done;
    int64_t r = rank;
    if (r <= 0) {
        double total = 0, acc = 0;
        for (size_t i = 0; i < d; i++)
            total += ev[i] > 0 ? ev[i] : 0;
        r = (int64_t)d;
        for (size_t i = 0; i < d; i++) {
            acc += ev[i] > 0 ? ev[i] : 0;
            if (total <= 0 || acc >= energy * total) {
                r = (int64_t)i + 1;
                break;
            }
        }
    }
    if (r > (int64_t)d)
        r = (int64_t)d;
    *r_out = r;
    if (r * (k + n) >= k * n)
        goto done; /* would not shrink */
    float *a = malloc((size_t)(k * r) * sizeof *a), *b = malloc((size_t)(r * n) * sizeof *b);
    if (!a || !b) {
        free(a);
        free(b);
        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (by_cols) { /* W ~ (W V_r) V_r^T */
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < r; j++) {
                double s = 0;
                for (int64_t c = 0; c < n; c++)
                    s += (double)w[i * n + c] * vec[(size_t)c * d + (size_t)j];
                a[i * r + j] = (float)s;
            }
        for (int64_t j = 0; j < r; j++)
            for (int64_t c = 0; c < n; c++)
                b[j * n + c] = (float)vec[(size_t)c * d + (size_t)j];
    } else { /* W ~ U_r (U_r^T W) */
        for (int64_t i = 0; i < k; i++)
            for (int64_t j = 0; j < r; j++)
                a[i * r + j] = (float)vec[(size_t)i * d + (size_t)j];
        for (int64_t j = 0; j < r; j++)
            for (int64_t c = 0; c < n; c++) {
                double s = 0;
                for (int64_t i = 0; i < k; i++)
                    s += vec[(size_t)i * d + (size_t)j] * w[i * n + c];
                b[j * n + c] = (float)s;
            }
    }
    *a_out = a;
    *b_out = b;
done:
    free(gm);
    free(ev);
    free(vec);
    return st;
}

static pare_status new_init(pare_graph *g, const char *hint, int64_t d0, int64_t d1, float *data,
                            pare_value **out, pare_error *err)
{
    char name[512];
    pare_graph_unique_name(g, hint, name, sizeof name);
    pare_tensor *t;
    int64_t dims[2] = {d0, d1};
    pare_status st = pare_tensor_new(name, PARE_DT_FLOAT, 2, dims, &t, err);
    if (st)
        return st;
    memcpy(t->data, data, (size_t)(d0 * d1) * sizeof(float));
    st = pare_graph_add_initializer(g, t, out, err);
    if (st)
        pare_tensor_free(t);
    return st;
}

pare_status pare_distill_low_rank(pare_model *m, int64_t rank, double energy, size_t *factored,
                                  size_t *skipped, pare_error *err)
{
    pare_status align_st = pare_model_align_weights(m, err); /* typed reads below */
    if (align_st)
        return align_st;
    pare_graph *g = pare_model_graph(m);
    size_t nf = 0, ns = 0, n0 = g->n_nodes;
    pare_node **list = malloc((n0 + 1) * sizeof *list);
    if (!list)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    memcpy(list, g->nodes, n0 * sizeof *list);
    pare_status st = PARE_OK;
    for (size_t k = 0; k < n0 && !st; k++) {
        pare_node *n = list[k];
        bool mm = pare_node_is(n, "", "MatMul"), gemm = pare_node_is(n, "", "Gemm");
        if ((!mm && !gemm) || n->n_inputs < 2 || !n->inputs[0] || !is_init(n->inputs[1]))
            continue;
        pare_value *wv = n->inputs[1];
        pare_tensor *wt = wv->init;
        if (wt->dtype != PARE_DT_FLOAT || wt->rank != 2 || wv->n_uses != 1 ||
            (gemm && pare_node_attr_int(n, "transA", 0) != 0)) {
            ns++;
            continue;
        }
        bool transb = gemm && pare_node_attr_int(n, "transB", 0) != 0;
        int64_t kk = transb ? wt->dims[1] : wt->dims[0], nn = transb ? wt->dims[0] : wt->dims[1];
        float *w = malloc((size_t)(kk * nn) * sizeof *w);
        if (!w) {
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
            break;
        }
        const float *src = wt->data;
        for (int64_t i = 0; i < kk; i++)
            for (int64_t j = 0; j < nn; j++)
                w[i * nn + j] = transb ? src[j * kk + i] : src[i * nn + j];
        float *a = NULL, *b = NULL;
        int64_t r = 0;
        st = factor_weight(w, kk, nn, rank, energy, &a, &b, &r, err);
        free(w);
        if (st)
            break;
        if (!a) {
            ns++;
            continue;
        }
        char hint[400];
        pare_value *av = NULL, *bv = NULL, *mid = NULL;
        snprintf(hint, sizeof hint, "%s_lr_a", wv->name);
        st = new_init(g, hint, kk, r, a, &av, err);
        if (!st) {
            snprintf(hint, sizeof hint, "%s_lr_b", wv->name);
            if (transb) { /* Gemm reads B^T: store [N, r] */
                float *bt = malloc((size_t)(r * nn) * sizeof *bt);
                if (!bt) {
                    st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
                } else {
                    for (int64_t i = 0; i < r; i++)
                        for (int64_t j = 0; j < nn; j++)
                            bt[j * r + i] = b[i * nn + j];
                    st = new_init(g, hint, nn, r, bt, &bv, err);
                    free(bt);
                }
            } else {
                st = new_init(g, hint, r, nn, b, &bv, err);
            }
        }
        free(a);
        free(b);
        if (!st) {
            snprintf(hint, sizeof hint, "%s_lr", n->outputs[0] ? n->outputs[0]->name : "lr");
            st = pare_graph_new_value(g, NULL, hint, PARE_DT_FLOAT, &mid, err);
        }
        if (!st) {
            char nname[512];
            snprintf(hint, sizeof hint, "%s_lr", n->name && n->name[0] ? n->name : "matmul");
            pare_graph_unique_name(g, hint, nname, sizeof nname);
            pare_value *ins[2] = {n->inputs[0], av};
            st = pare_graph_add_node(g, nname, "", "MatMul", ins, 2, &mid, 1, n, NULL, err);
        }
        if (!st)
            st = pare_node_set_input(n, 0, mid, err);
        if (!st)
            st = pare_node_set_input(n, 1, bv, err);
        if (!st)
            nf++;
    }
    free(list);
    if (!st)
        st = remove_dead(g, err);
    if (!st)
        st = pare_graph_toposort(g, err);
    if (factored)
        *factored = nf;
    if (skipped)
        *skipped = ns;
    return st;
}
