/* channels.c - structured channel pruning (pare_prune_channels).
 *
 * Sources are the layers whose output channels can be removed: Conv (any
 * group but depthwise), ConvTranspose, Gemm and MatMul with a constant 2-D
 * float weight. Each source
 * output starts a "space" of C channels. Walking the main graph in
 * topological order, every value that carries channels gets a descriptor:
 * the spaces along its channel axis (several after a Concat), the axis
 * counted from the end (so broadcasting keeps it) and an inner factor (H*W
 * after a Flatten). Consumers either map the channels (next Conv's input
 * axis, Gemm/MatMul rows, BatchNormalization parameters, per-channel
 * constants, depthwise convs, Flatten, Concat offsets), pass them through
 * (activations, pooling), tie spaces together (residual Add/Mul/Sum:
 * union-find), or do not understand them, which makes every space they read
 * dense. Decisions are taken per union-find root with one ranking (the sum
 * of each member's per-channel norms, each normalized by its largest), and
 * only then are the recorded edits applied, so a model is either rewritten
 * consistently or left as it was.
 *
 * Grouped layers (Conv with 1 < group < channels, ConvTranspose) keep their
 * group attribute: each group must keep the same number of its own
 * channels. Their spaces carry that as a grouping (EQ: g equal groups) and
 * are decided per group, k channels in each. A channel shuffle (Reshape to
 * [N, g, C/g, ...], Transpose of axes 1 and 2, Reshape back) gives its
 * output a shuffled descriptor over the same space: kept channels are
 * listed in the pruned shuffle's order, not sorted, and every slice gathers
 * by that list. A grouped Conv reading shuffled channels adds a SHUF
 * grouping: cells (group before the shuffle, reader's group after it) each
 * keep as many channels as the pruned shuffle puts there. After deciding,
 * every grouped reader is checked (equal counts, each group its own
 * channels); where several layers' decisions disagree, their spaces are
 * left dense and the checks rerun.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/exec.h"
#include "pare/feed.h"
#include "pare/infer.h"
#include "prune_internal.h"

/* ---- spaces (union-find) and descriptors ---- */

/* a grouping the kept channels of a space must respect: EQ, g contiguous
 * equal groups keep equal counts (a grouped Conv reads or writes them);
 * SHUF, channel shuffle by g read by a Conv of G groups in shuffled order */
typedef enum gkind { GC_EQ = 1, GC_SHUF } gkind;

typedef struct gcons {
    gkind kind;
    int64_t g, G;
} gcons;

typedef struct space {
    size_t parent;
    int64_t c;             /* channels */
    bool dense;
    char *why;             /* first reason it is dense (malloc'd) */
    const pare_node *why_node;
    size_t *members;       /* indices into ctx.srcs (roots only after merging) */
    size_t n_members, cap_members;
    int64_t *keep;         /* sorted kept channels (roots, when pruned) */
    int64_t n_keep;
    bool pruned;
    gcons *cons;           /* groupings (roots only after merging) */
    size_t n_cons, cap_cons;
} space;

typedef struct seg {
    size_t space;
    int64_t n;
} seg;

typedef struct cdesc {
    seg *segs;
    size_t n_segs;
    int64_t inner;         /* features per channel (H*W after a Flatten) */
    int ax_e;              /* channel axis counted from the last (0: last) */
    int64_t total;         /* channels (sum of segs[].n) */
    int64_t shuf_g;        /* >1: channel-shuffled by this many groups (one segment) */
} cdesc;

typedef struct source {
    pare_node *node;
    pare_value *w;
    int w_axis;            /* weight axis of the output channels */
    int64_t c;
    size_t space;
    double ratio;
    int64_t grp;           /* ConvTranspose group: channel = row group * w dim 1 + column */
} source;

/* ED_GSLICE: axis 1 gathered per group of axis-0 rows (grouped weights);
 * ED_SHUFFLE: the shape constants of a channel shuffle */
typedef enum edit_kind { ED_SLICE = 1, ED_GROUP, ED_RESHAPE, ED_GSLICE, ED_SHUFFLE } edit_kind;

typedef struct edit {
    edit_kind kind;
    pare_node *node;
    size_t input;
    int axis;
    const cdesc *d;
    int64_t groups;
} edit;

/* a reader that needs equal kept counts in each of G contiguous groups of
 * its input, each group keeping its own channels */
typedef struct gcheck {
    const pare_node *node;
    const cdesc *d;
    int64_t G;
} gcheck;

typedef struct ctx {
    pare_graph *g;
    const pare_channel_opts *o;
    space *sp;
    size_t n_sp, cap_sp;
    cdesc **descs;         /* all descriptors made (owned) */
    size_t n_descs, cap_descs;
    const cdesc **vdesc;   /* by value id */
    size_t n_vdesc;
    source *srcs;
    size_t n_srcs, cap_srcs;
    edit *edits;
    size_t n_edits, cap_edits;
    gcheck *checks;
    size_t n_checks, cap_checks;
    pare_error *err;
} ctx;

static bool grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, nc * size);
    if (!q)
        return false;
    *p = q;
    *cap = nc;
    return true;
}

static pare_status nomem(ctx *c)
{
    return pare_error_set(c->err, PARE_ERR_NOMEM, "out of memory");
}

static size_t find(ctx *c, size_t s)
{
    while (c->sp[s].parent != s) {
        c->sp[s].parent = c->sp[c->sp[s].parent].parent;
        s = c->sp[s].parent;
    }
    return s;
}

static pare_status new_space(ctx *c, int64_t ch, size_t *out)
{
    if (!grow((void **)&c->sp, &c->cap_sp, c->n_sp + 1, sizeof *c->sp))
        return nomem(c);
    space *s = &c->sp[c->n_sp];
    memset(s, 0, sizeof *s);
    s->parent = c->n_sp;
    s->c = ch;
    *out = c->n_sp++;
    return PARE_OK;
}

static void set_dense(ctx *c, size_t s, const pare_node *n, const char *why)
{
    s = find(c, s);
    if (c->sp[s].dense)
        return;
    c->sp[s].dense = true;
    c->sp[s].why = prune_strdup(why); /* NULL on allocation failure: reported without reason */
    c->sp[s].why_node = n;
}

static void dense_desc(ctx *c, const cdesc *d, const pare_node *n, const char *why)
{
    for (size_t i = 0; i < d->n_segs; i++)
        set_dense(c, d->segs[i].space, n, why);
}

static void dense_reads(ctx *c, const cdesc *d, const pare_node *n, const char *what)
{
    char buf[300];
    snprintf(buf, sizeof buf, "consumer '%s' (%s) %s", n->name ? n->name : "", n->op_type,
             what ? what : "reads the channels");
    dense_desc(c, d, n, buf);
}

static pare_status unite(ctx *c, size_t a, size_t b)
{
    a = find(c, a);
    b = find(c, b);
    if (a == b)
        return PARE_OK;
    space *x = &c->sp[a], *y = &c->sp[b];
    if (!grow((void **)&x->members, &x->cap_members, x->n_members + y->n_members + 1,
              sizeof *x->members))
        return nomem(c);
    memcpy(x->members + x->n_members, y->members, y->n_members * sizeof *y->members);
    x->n_members += y->n_members;
    if (y->n_cons) {
        if (!grow((void **)&x->cons, &x->cap_cons, x->n_cons + y->n_cons, sizeof *x->cons))
            return nomem(c);
        memcpy(x->cons + x->n_cons, y->cons, y->n_cons * sizeof *y->cons);
        x->n_cons += y->n_cons;
    }
    y->parent = a;
    if (y->dense && !x->dense) {
        x->dense = true;
        x->why = y->why;
        x->why_node = y->why_node;
        y->why = NULL;
    }
    if (x->c != y->c && !x->dense) {
        x->dense = true;
        x->why = prune_strdup("coupled layers disagree on the channel count");
    }
    return PARE_OK;
}

static pare_status new_desc(ctx *c, size_t n_segs, cdesc **out)
{
    if (!grow((void **)&c->descs, &c->cap_descs, c->n_descs + 1, sizeof *c->descs))
        return nomem(c);
    cdesc *d = calloc(1, sizeof *d);
    if (!d || !(d->segs = calloc(n_segs ? n_segs : 1, sizeof *d->segs))) {
        free(d);
        return nomem(c);
    }
    d->n_segs = n_segs;
    d->inner = 1;
    c->descs[c->n_descs++] = d;
    *out = d;
    return PARE_OK;
}

static const cdesc *desc_of(ctx *c, const pare_value *v)
{
    if (!v || v->graph != c->g || v->id >= c->n_vdesc)
        return NULL;
    return c->vdesc[v->id];
}

static void set_desc(ctx *c, pare_value *v, const cdesc *d)
{
    if (v && v->graph == c->g && v->id < c->n_vdesc)
        c->vdesc[v->id] = d;
}

static pare_status add_edit(ctx *c, edit_kind k, pare_node *n, size_t input, int axis,
                            const cdesc *d)
{
    if (!grow((void **)&c->edits, &c->cap_edits, c->n_edits + 1, sizeof *c->edits))
        return nomem(c);
    c->edits[c->n_edits++] = (edit){k, n, input, axis, d, 1};
    return PARE_OK;
}

static pare_status add_gslice(ctx *c, pare_node *n, size_t input, int64_t groups, const cdesc *d)
{
    pare_status st = add_edit(c, ED_GSLICE, n, input, 1, d);
    if (!st)
        c->edits[c->n_edits - 1].groups = groups;
    return st;
}

static pare_status add_cons(ctx *c, size_t s, gkind k, int64_t g, int64_t G)
{
    space *x = &c->sp[find(c, s)];
    for (size_t i = 0; i < x->n_cons; i++)
        if (x->cons[i].kind == k && x->cons[i].g == g && x->cons[i].G == G)
            return PARE_OK;
    if (!grow((void **)&x->cons, &x->cap_cons, x->n_cons + 1, sizeof *x->cons))
        return nomem(c);
    x->cons[x->n_cons++] = (gcons){k, g, G};
    return PARE_OK;
}

static pare_status add_check(ctx *c, const pare_node *n, const cdesc *d, int64_t G)
{
    if (!grow((void **)&c->checks, &c->cap_checks, c->n_checks + 1, sizeof *c->checks))
        return nomem(c);
    c->checks[c->n_checks++] = (gcheck){n, d, G};
    return PARE_OK;
}

/* same layout: the same spaces' sizes in the same order */
static bool same_layout(const cdesc *a, const cdesc *b)
{
    if (a->n_segs != b->n_segs || a->inner != b->inner || a->ax_e != b->ax_e ||
        a->shuf_g != b->shuf_g)
        return false;
    for (size_t i = 0; i < a->n_segs; i++)
        if (a->segs[i].n != b->segs[i].n)
            return false;
    return true;
}

static pare_status unite_desc(ctx *c, const cdesc *a, const cdesc *b)
{
    for (size_t i = 0; i < a->n_segs; i++) {
        pare_status st = unite(c, a->segs[i].space, b->segs[i].space);
        if (st)
            return st;
    }
    return PARE_OK;
}

/* ---- small helpers ---- */

/* an initializer also listed as a graph input (older files list every
 * weight so) is treated as the constant it is, as layers.c does */
static bool is_const(const pare_value *v)
{
    return v && (v->init || v->is_sparse_init);
}

static bool float_init(const pare_value *v)
{
    return is_const(v) && v->dtype == PARE_DT_FLOAT;
}

static int64_t dim(const pare_value *v, int i)
{
    if (!v || v->shape.rank < 0 || i < 0 || i >= v->shape.rank)
        return -1;
    return v->shape.dims[i].value;
}

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        if (list[i] && strcmp(list[i], s) == 0)
            return true;
    return false;
}

static bool op_in(const pare_node *n, const char *const *ops)
{
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
        return false;
    for (size_t i = 0; ops[i]; i++)
        if (strcmp(n->op_type, ops[i]) == 0)
            return true;
    return false;
}

static const char *const unary_ops[] = {
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish", "Elu", "Selu",
    "Celu", "Softplus", "Softsign", "Gelu", "Mish", "ThresholdedRelu", "Identity", "Dropout",
    "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Erf", "Floor", "Ceil", "Round", "Sin",
    "Cos", "Cast", "Shrink", "Sign", NULL};
static const char *const pool_ops[] = {"MaxPool", "AveragePool", "LpPool", "GlobalAveragePool",
                                       "GlobalMaxPool", "GlobalLpPool", NULL};
static const char *const binary_ops[] = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean",
                                         "PRelu", "Pow", NULL};

/* per-sample element count (first dim may be the unknown batch) */
static double per_sample(const pare_value *v)
{
    if (!v || v->shape.rank < 1)
        return 0;
    double n = 1;
    for (int d = 0; d < v->shape.rank; d++) {
        int64_t x = v->shape.dims[d].value;
        if (x < 0) {
            if (d == 0)
                continue;
            return 0;
        }
        if (d > 0 || v->shape.rank == 1)
            n *= (double)x;
    }
    return n;
}

/* a layer with a constant weight: output channels and its axis in the weight */
static bool weight_layer(const pare_node *n, pare_value **w, int *axis, int64_t *ch)
{
    if (n->domain && n->domain[0])
        return false;
    if (strcmp(n->op_type, "Conv") == 0) {
        if (n->n_inputs < 2 || !float_init(n->inputs[1]) || n->inputs[1]->shape.rank < 3)
            return false;
        *w = n->inputs[1];
        *axis = 0;
    } else if (strcmp(n->op_type, "ConvTranspose") == 0) {
        /* weight [C_in, C_out / group, k...] */
        if (n->n_inputs < 2 || !float_init(n->inputs[1]) || n->inputs[1]->shape.rank < 3)
            return false;
        *w = n->inputs[1];
        *axis = 1;
        int64_t grp = pare_node_attr_int(n, "group", 1);
        *ch = grp > 0 ? (*w)->shape.dims[1].value * grp : -1;
        return *ch > 0;
    } else if (strcmp(n->op_type, "Gemm") == 0 || strcmp(n->op_type, "MatMul") == 0) {
        if (n->n_inputs < 2 || !float_init(n->inputs[1]) || n->inputs[1]->shape.rank != 2 ||
            !n->inputs[0] || is_const(n->inputs[0]))
            return false;
        *w = n->inputs[1];
        bool tb = strcmp(n->op_type, "Gemm") == 0 && pare_node_attr_int(n, "transB", 0) != 0;
        *axis = tb ? 0 : 1;
    } else {
        return false;
    }
    *ch = (*w)->shape.dims[*axis].value;
    return *ch > 0;
}

static double layer_macs(const pare_node *n, const pare_value *w, int axis)
{
    int64_t ch = w->shape.dims[axis].value;
    if (pare_node_is(n, "", "ConvTranspose"))
        ch *= pare_node_attr_int(n, "group", 1);
    double per = ch > 0 ? (double)pare_value_numel(w) / (double)ch : 0;
    return per_sample(n->outputs[0]) * per;
}

/* ---- the walk ---- */

static pare_status add_source(ctx *c, pare_node *n, bool *made)
{
    pare_value *w;
    int axis;
    int64_t ch;
    *made = false;
    if (!n->n_outputs || !n->outputs[0] || !weight_layer(n, &w, &axis, &ch))
        return PARE_OK;
    bool conv = strcmp(n->op_type, "Conv") == 0, convt = strcmp(n->op_type, "ConvTranspose") == 0;
    int64_t grp = conv || convt ? pare_node_attr_int(n, "group", 1) : 1;
    /* a grouped Conv is a source with every group keeping the same count;
     * a depthwise one (one output per group) follows its input instead */
    if (grp < 1 || (conv && grp > 1 && (ch % grp || ch / grp < 2 || desc_of(c, n->outputs[0]))))
        return PARE_OK;
    pare_status st;
    const pare_prune_filter *f = &c->o->filter;
    const char *why = NULL;
    char buf[160];
    if (w->n_uses > 1) {
        snprintf(buf, sizeof buf, "weight '%s' is read by %zu nodes", w->name, w->n_uses);
        why = buf;
    } else if (in_list(n->name, f->exclude_nodes, f->n_exclude_nodes)) {
        why = "excluded by name";
    } else if (in_list(n->op_type, f->exclude_op_types, f->n_exclude_op_types)) {
        why = "op type excluded";
    } else if (pare_value_numel(w) < f->min_params) {
        why = "fewer params than --min-params";
    }
    size_t s = 0;
    if ((st = new_space(c, ch, &s)))
        return st;
    if (why)
        set_dense(c, s, n, why);
    if (!grow((void **)&c->srcs, &c->cap_srcs, c->n_srcs + 1, sizeof *c->srcs) ||
        !grow((void **)&c->sp[s].members, &c->sp[s].cap_members, 1, sizeof(size_t)))
        return nomem(c);
    double ratio = c->o->ratio;
    for (size_t i = 0; i < c->o->n_layer_ratios; i++) {
        const char *lr = c->o->layer_ratios[i], *eq = strrchr(lr, '=');
        if (eq && n->name && strlen(n->name) == (size_t)(eq - lr) &&
            strncmp(lr, n->name, (size_t)(eq - lr)) == 0)
            ratio = strtod(eq + 1, NULL);
    }
    c->srcs[c->n_srcs] = (source){n, w, axis, ch, s, ratio, convt ? grp : 1};
    c->sp[s].members[c->sp[s].n_members++] = c->n_srcs++;
    if (grp > 1 && (st = add_cons(c, s, GC_EQ, grp, 0)))
        return st;
    cdesc *d;
    if ((st = new_desc(c, 1, &d)))
        return st;
    d->segs[0] = (seg){s, ch};
    d->total = ch;
    d->ax_e = conv || convt ? w->shape.rank - 2 : 0;
    set_desc(c, n->outputs[0], d);
    *made = true;
    /* own bias */
    if ((conv || convt) && n->n_inputs > 2 && n->inputs[2]) {
        if (float_init(n->inputs[2]) && n->inputs[2]->shape.rank == 1)
            return add_edit(c, ED_SLICE, n, 2, 0, d);
        set_dense(c, s, n, "bias is not a float32 initializer");
    } else if (strcmp(n->op_type, "Gemm") == 0 && n->n_inputs > 2 && n->inputs[2]) {
        pare_value *b = n->inputs[2];
        int r = b->shape.rank;
        if (r == 0 || (r > 0 && dim(b, r - 1) == 1))
            return PARE_OK;
        if (float_init(b) && r > 0 && dim(b, r - 1) == ch)
            return add_edit(c, ED_SLICE, n, 2, r - 1, d);
        set_dense(c, s, n, "bias C is not a per-unit float32 initializer");
    }
    return PARE_OK;
}

/* all data inputs other than `skip` carry no channels; else dense */
static bool others_plain(ctx *c, pare_node *n, size_t keep_in, const cdesc *d)
{
    for (size_t i = 0; i < n->n_inputs; i++)
        if (i != keep_in && desc_of(c, n->inputs[i])) {
            dense_reads(c, d, n, "reads the channels as a parameter");
            dense_reads(c, desc_of(c, n->inputs[i]), n, "reads the channels as a parameter");
            return false;
        }
    return true;
}

/* a reader of G groups: each group of d keeps the same count of its own
 * channels. Plain channels: every layer's block must hold whole groups (its
 * space then keeps equal counts per group); shuffled ones: the shuffle's
 * space is told how the reader groups them. False: left dense. */
static pare_status group_read(ctx *c, pare_node *n, const cdesc *d, int64_t G, bool *ok)
{
    char buf[160];
    pare_status st;
    int64_t gs = d->total / G, off = 0;
    *ok = false;
    if (d->shuf_g > 1) {
        if ((st = add_cons(c, d->segs[0].space, GC_SHUF, d->shuf_g, G)))
            return st;
    } else {
        for (size_t i = 0; i < d->n_segs; i++) {
            if (off % gs || d->segs[i].n % gs) {
                snprintf(buf, sizeof buf,
                         "is grouped (group %" PRId64 ") across the channels of several layers", G);
                dense_reads(c, d, n, buf);
                return PARE_OK;
            }
            off += d->segs[i].n;
        }
        for (size_t i = 0; i < d->n_segs; i++)
            if (d->segs[i].n / gs > 1 &&
                (st = add_cons(c, d->segs[i].space, GC_EQ, d->segs[i].n / gs, 0)))
                return st;
    }
    *ok = true;
    return add_check(c, n, d, G);
}

static pare_status on_convt(ctx *c, pare_node *n, const cdesc *d)
{
    pare_value *w = n->n_inputs > 1 ? n->inputs[1] : NULL;
    int64_t grp = pare_node_attr_int(n, "group", 1);
    if (!others_plain(c, n, 0, d))
        return PARE_OK;
    if (!w || !float_init(w) || w->shape.rank < 3 || d->inner != 1 || d->ax_e != w->shape.rank - 2 ||
        w->n_uses > 1 || grp < 1 || dim(w, 0) != d->total || d->total % grp) {
        dense_reads(c, d, n, "reads the channels (weight not an unshared float32 initializer "
                             "matching its input)");
        return PARE_OK;
    }
    bool ok = true;
    pare_status st;
    if (grp > 1 && ((st = group_read(c, n, d, grp, &ok)) || !ok))
        return st;
    return add_edit(c, ED_SLICE, n, 1, 0, d);
}

static pare_status on_conv(ctx *c, pare_node *n, const cdesc *d)
{
    pare_value *w = n->n_inputs > 1 ? n->inputs[1] : NULL;
    int64_t grp = pare_node_attr_int(n, "group", 1);
    if (!others_plain(c, n, 0, d))
        return PARE_OK;
    if (!w || !float_init(w) || w->shape.rank < 3 || d->inner != 1 || d->ax_e != w->shape.rank - 2) {
        dense_reads(c, d, n, "reads the channels (weight not a float32 initializer)");
        return PARE_OK;
    }
    if (w->n_uses > 1) {
        dense_reads(c, d, n, "has a shared weight");
        return PARE_OK;
    }
    if (grp == 1) {
        if (dim(w, 1) != d->total) {
            dense_reads(c, d, n, "has a weight that does not match its input");
            return PARE_OK;
        }
        return add_edit(c, ED_SLICE, n, 1, 1, d);
    }
    if (grp == d->total && dim(w, 1) == 1 && dim(w, 0) == grp) {
        /* depthwise, multiplier 1: its channels go with its input's */
        pare_status st;
        if ((st = add_edit(c, ED_SLICE, n, 1, 0, d)) || (st = add_edit(c, ED_GROUP, n, 0, 0, d)))
            return st;
        if (n->n_inputs > 2 && n->inputs[2]) {
            if (!float_init(n->inputs[2]) || n->inputs[2]->n_uses > 1) {
                dense_reads(c, d, n, "has a bias that cannot be sliced");
                return PARE_OK;
            }
            if ((st = add_edit(c, ED_SLICE, n, 2, 0, d)))
                return st;
        }
        set_desc(c, n->outputs[0], d);
        return PARE_OK;
    }
    if (grp > 1 && d->total % grp == 0 && dim(w, 1) == d->total / grp && dim(w, 0) % grp == 0) {
        /* grouped: each group's kept channels index its own weight columns */
        bool ok;
        pare_status st = group_read(c, n, d, grp, &ok);
        if (st || !ok)
            return st;
        return add_gslice(c, n, 1, grp, d);
    }
    char buf[120];
    snprintf(buf, sizeof buf, "is a grouped Conv (group %" PRId64 ") whose weight does not match its input",
             grp);
    dense_reads(c, d, n, buf);
    return PARE_OK;
}

static pare_status on_matmul(ctx *c, pare_node *n, const cdesc *d)
{
    bool gemm = strcmp(n->op_type, "Gemm") == 0;
    pare_value *w = n->n_inputs > 1 ? n->inputs[1] : NULL;
    if (!others_plain(c, n, 0, d))
        return PARE_OK;
    if (d->ax_e != 0 || (gemm && pare_node_attr_int(n, "transA", 0) != 0)) {
        dense_reads(c, d, n, "reads the channels on another axis");
        return PARE_OK;
    }
    if (!w || !float_init(w) || w->shape.rank != 2 || w->n_uses > 1) {
        dense_reads(c, d, n, "reads the channels (weight not an unshared 2-D float32 initializer)");
        return PARE_OK;
    }
    int axis = gemm && pare_node_attr_int(n, "transB", 0) != 0 ? 1 : 0;
    if (dim(w, axis) != d->total * d->inner) {
        dense_reads(c, d, n, "has a weight that does not match its input");
        return PARE_OK;
    }
    return add_edit(c, ED_SLICE, n, 1, axis, d);
}

static pare_status on_norm(ctx *c, pare_node *n, const cdesc *d, size_t n_params)
{
    const pare_value *x = n->inputs[0];
    if (!others_plain(c, n, 0, d))
        return PARE_OK;
    if (d->inner != 1 || x->shape.rank < 2 || d->ax_e != x->shape.rank - 2) {
        dense_reads(c, d, n, "reads the channels on another axis");
        return PARE_OK;
    }
    for (size_t i = 1; i < n->n_outputs; i++)
        if (n->outputs[i] && (n->outputs[i]->n_uses || n->outputs[i]->is_output)) {
            dense_reads(c, d, n, "has training outputs in use");
            return PARE_OK;
        }
    for (size_t i = 1; i <= n_params; i++) {
        pare_value *p = i < n->n_inputs ? n->inputs[i] : NULL;
        if (!p || !float_init(p) || p->shape.rank != 1 || dim(p, 0) != d->total) {
            dense_reads(c, d, n, "has parameters that are not per-channel float32 initializers");
            return PARE_OK;
        }
    }
    for (size_t i = 1; i <= n_params; i++) {
        pare_status st = add_edit(c, ED_SLICE, n, i, 0, d);
        if (st)
            return st;
    }
    set_desc(c, n->outputs[0], d);
    return PARE_OK;
}

static pare_status on_unary(ctx *c, pare_node *n, const cdesc *d, bool pool)
{
    if (!others_plain(c, n, 0, d))
        return PARE_OK;
    if (pool && (d->inner != 1 || n->inputs[0]->shape.rank < 2 ||
                 d->ax_e != n->inputs[0]->shape.rank - 2)) {
        dense_reads(c, d, n, "reads the channels on another axis");
        return PARE_OK;
    }
    for (size_t i = 1; i < n->n_outputs; i++)
        if (n->outputs[i] && (n->outputs[i]->n_uses || n->outputs[i]->is_output)) {
            dense_reads(c, d, n, "has a second output in use");
            return PARE_OK;
        }
    if (n->n_outputs)
        set_desc(c, n->outputs[0], d);
    return PARE_OK;
}

/* Add/Mul/Sum...: spaces of all channel inputs are tied; per-channel
 * constants are sliced; broadcast ones pass */
static pare_status on_binary(ctx *c, pare_node *n)
{
    const cdesc *d = NULL;
    pare_status st;
    for (size_t i = 0; i < n->n_inputs; i++) {
        const cdesc *e = desc_of(c, n->inputs[i]);
        if (!e)
            continue;
        if (!d) {
            d = e;
        } else if (same_layout(d, e)) {
            if ((st = unite_desc(c, d, e)))
                return st;
        } else {
            dense_reads(c, d, n, "joins channels of different layouts");
            dense_reads(c, e, n, "joins channels of different layouts");
            return PARE_OK;
        }
    }
    for (size_t i = 0; i < n->n_inputs; i++) {
        pare_value *v = n->inputs[i];
        if (!v || desc_of(c, v))
            continue;
        int r = v->shape.rank;
        if (r < 0) {
            dense_reads(c, d, n, "mixes them with a tensor of unknown shape");
            return PARE_OK;
        }
        int p = r - 1 - d->ax_e;
        if (p < 0 || dim(v, p) == 1)
            continue;
        if (d->inner == 1 && dim(v, p) == d->total && float_init(v)) {
            if ((st = add_edit(c, ED_SLICE, n, i, p, d)))
                return st;
            continue;
        }
        char buf[200];
        snprintf(buf, sizeof buf, "mixes them with '%s', which is not per-channel prunable",
                 v->name);
        dense_reads(c, d, n, buf);
        return PARE_OK;
    }
    set_desc(c, n->outputs[0], d);
    return PARE_OK;
}

static pare_status on_concat(ctx *c, pare_node *n)
{
    pare_value *y = n->outputs[0];
    int r = y ? y->shape.rank : -1;
    int64_t axis = pare_node_attr_int(n, "axis", 0);
    const cdesc *first = NULL;
    for (size_t i = 0; i < n->n_inputs && !first; i++)
        first = desc_of(c, n->inputs[i]);
    if (r < 1) {
        dense_reads(c, first, n, "concatenates them with unknown rank");
        for (size_t i = 0; i < n->n_inputs; i++)
            if (desc_of(c, n->inputs[i]))
                dense_reads(c, desc_of(c, n->inputs[i]), n, "concatenates them with unknown rank");
        return PARE_OK;
    }
    if (axis < 0)
        axis += r;
    int ax_e = (int)(r - 1 - axis);
    size_t nseg = 0;
    bool ok = true;
    for (size_t i = 0; i < n->n_inputs; i++) {
        const cdesc *e = desc_of(c, n->inputs[i]);
        if (e) {
            nseg += e->n_segs;
            if (e->ax_e != ax_e || e->inner != 1 || e->shuf_g > 1)
                ok = false;
        } else {
            nseg++;
            if (!n->inputs[i] || dim(n->inputs[i], (int)axis) < 0)
                ok = false;
        }
    }
    if (!ok) {
        for (size_t i = 0; i < n->n_inputs; i++)
            if (desc_of(c, n->inputs[i]))
                dense_reads(c, desc_of(c, n->inputs[i]), n, "concatenates them on another axis");
        return PARE_OK;
    }
    cdesc *d;
    pare_status st;
    if ((st = new_desc(c, nseg, &d)))
        return st;
    d->ax_e = ax_e;
    size_t k = 0;
    for (size_t i = 0; i < n->n_inputs; i++) {
        const cdesc *e = desc_of(c, n->inputs[i]);
        if (e) {
            memcpy(d->segs + k, e->segs, e->n_segs * sizeof *e->segs);
            k += e->n_segs;
            d->total += e->total;
        } else {
            /* a plain input: a fixed block of channels */
            size_t s = 0;
            int64_t len = dim(n->inputs[i], (int)axis);
            if ((st = new_space(c, len, &s)))
                return st;
            c->sp[s].dense = true;
            d->segs[k++] = (seg){s, len};
            d->total += len;
        }
    }
    set_desc(c, y, d);
    return PARE_OK;
}

static pare_status on_flatten(ctx *c, pare_node *n, const cdesc *d)
{
    pare_value *x = n->inputs[0], *y = n->outputs[0];
    int r = x->shape.rank;
    bool reshape = strcmp(n->op_type, "Reshape") == 0;
    if (!others_plain(c, n, 0, d))
        return PARE_OK;
    if (r < 2 || d->inner != 1 || d->ax_e != r - 2 || dim(x, 1) != d->total || d->shuf_g > 1) {
        dense_reads(c, d, n, "reshapes them in a way that is not mapped");
        return PARE_OK;
    }
    int64_t inner = 1;
    for (int i = 2; i < r; i++) {
        if (dim(x, i) < 1) {
            dense_reads(c, d, n, "flattens dims of unknown size");
            return PARE_OK;
        }
        inner *= dim(x, i);
    }
    if (reshape) {
        pare_value *s = n->n_inputs > 1 ? n->inputs[1] : NULL;
        int64_t sv[2] = {0, 0};
        bool ok = s && is_const(s) && s->init && s->init->data && s->init->dtype == PARE_DT_INT64 &&
                  s->init->rank == 1 && s->init->dims[0] == 2;
        if (ok)
            memcpy(sv, s->init->data, sizeof sv); /* loaded data need not be aligned */
        if (!ok || pare_node_attr_int(n, "allowzero", 0) != 0 ||
            !(sv[0] == 0 || sv[0] == -1 || (sv[0] > 0 && sv[0] == dim(x, 0))) ||
            !(sv[1] == -1 || sv[1] == d->total * inner) || (sv[0] == -1 && sv[1] == -1) ||
            s->n_uses > 1) {
            dense_reads(c, d, n, "reshapes them in a way that is not mapped");
            return PARE_OK;
        }
    } else if (pare_node_attr_int(n, "axis", 1) != 1) {
        dense_reads(c, d, n, "flattens them on another axis");
        return PARE_OK;
    }
    cdesc *e;
    pare_status st;
    if ((st = new_desc(c, d->n_segs, &e)))
        return st;
    memcpy(e->segs, d->segs, d->n_segs * sizeof *d->segs);
    e->total = d->total;
    e->inner = inner;
    e->ax_e = 0;
    if (reshape && (st = add_edit(c, ED_RESHAPE, n, 1, 0, e)))
        return st;
    set_desc(c, y, e);
    return PARE_OK;
}

/* int64 shape constant of n entries (copied: loaded data need not be
 * aligned); a shared one gets a copy of its own when rewritten */
static bool shape_const(const pare_value *s, int n, int64_t *out)
{
    if (!s || !is_const(s) || !s->init || !s->init->data || s->init->dtype != PARE_DT_INT64 ||
        s->init->rank != 1 || s->init->dims[0] != n || s->is_output)
        return false;
    memcpy(out, s->init->data, (size_t)n * sizeof *out);
    return true;
}

/* Reshape [N, C, rest] -> [N, g, C/g, rest], Transpose perm [0, 2, 1, ...],
 * Reshape back to [N, C, rest]: the channel shuffle. Returns g (0: not one)
 * and the closing Reshape. */
static int64_t shuffle_of(ctx *c, pare_node *n, const cdesc *d, pare_node **last)
{
    pare_value *x = n->inputs[0], *y = n->outputs[0];
    int r = x->shape.rank;
    int64_t C = d->total, s1[PARE_MAX_RANK + 1], s2[PARE_MAX_RANK];
    if (r < 3 || r + 1 > PARE_MAX_RANK || d->inner != 1 || d->ax_e != r - 2 || dim(x, 1) != C ||
        n->n_inputs < 2 || !shape_const(n->inputs[1], r + 1, s1) ||
        pare_node_attr_int(n, "allowzero", 0) != 0 || !y || y->is_output || y->n_uses != 1)
        return 0;
    pare_node *t = y->uses[0].node;
    const int64_t *perm;
    if (t->graph != c->g || !pare_node_is(t, "", "Transpose") || t->n_inputs != 1 ||
        t->n_outputs != 1 || pare_node_attr_ints(t, "perm", &perm) != (size_t)(r + 1))
        return 0;
    for (int i = 0; i <= r; i++)
        if (perm[i] != (i == 1 ? 2 : i == 2 ? 1 : i))
            return 0;
    pare_value *z = t->outputs[0];
    if (!z || z->is_output || z->n_uses != 1)
        return 0;
    pare_node *b = z->uses[0].node;
    if (b->graph != c->g || !pare_node_is(b, "", "Reshape") || b->n_inputs < 2 ||
        b->inputs[0] != z || b->n_outputs != 1 || !b->outputs[0] ||
        pare_node_attr_int(b, "allowzero", 0) != 0 || !shape_const(b->inputs[1], r, s2))
        return 0;
    /* the batch entry may be literal (the model fixes it) and the spatial
     * ones (known) regrouped; only the channel entries change, and with
     * them the size any -1 entry infers from stays the same */
    int64_t g = s1[1], sp = 1, p1 = 1, p2 = 1;
    int neg1 = 0, neg2 = 0;
    if (g < 2 || C % g || !(s1[2] == C / g || s1[2] == -1) || s1[0] < -1 ||
        !(s2[1] == C || s2[1] == -1) || s2[0] < -1)
        return 0;
    for (int i = 2; i < r; i++)
        sp = dim(x, i) > 0 && sp > 0 ? sp * dim(x, i) : -1;
    for (int i = 0; i <= r; i++) {
        neg1 += s1[i] == -1;
        if (i >= 3 && !(s1[i] > 0 || (s1[i] == 0 && dim(x, i) > 0 && dim(x, i) == dim(x, i - 1))))
            return 0;
        if (i >= 3)
            p1 *= s1[i] > 0 ? s1[i] : dim(x, i);
    }
    for (int i = 0; i < r; i++) {
        neg2 += s2[i] == -1;
        if (i >= 2 && s2[i] < 1)
            return 0;
        if (i >= 2)
            p2 *= s2[i];
    }
    if (neg1 > 1 || neg2 > 1 || sp < 1 || p1 != sp || p2 != sp)
        return 0;
    *last = b;
    return g;
}

static pare_status on_shuffle(ctx *c, pare_node *n, const cdesc *d, int64_t g, pare_node *last)
{
    if (d->n_segs != 1 || d->shuf_g > 1) {
        dense_reads(c, d, n, d->shuf_g > 1 ? "shuffles shuffled channels again"
                                           : "shuffles the channels of several layers");
        return PARE_OK;
    }
    pare_status st;
    cdesc *e;
    if ((st = add_cons(c, d->segs[0].space, GC_EQ, g, 0)) || (st = add_check(c, n, d, g)) ||
        (st = new_desc(c, 1, &e)))
        return st;
    e->segs[0] = d->segs[0];
    e->total = d->total;
    e->ax_e = d->ax_e;
    e->shuf_g = g;
    if ((st = add_edit(c, ED_SHUFFLE, n, 1, 0, d)))
        return st;
    c->edits[c->n_edits - 1].groups = g;
    set_desc(c, last->outputs[0], e);
    return PARE_OK;
}

static pare_status visit(ctx *c, pare_node *n)
{
    const cdesc *d = NULL;
    size_t di = 0;
    for (size_t i = 0; i < n->n_inputs && !d; i++)
        if ((d = desc_of(c, n->inputs[i])))
            di = i;
    pare_status st = PARE_OK;
    bool plain = !n->domain || !n->domain[0] || strcmp(n->domain, "ai.onnx") == 0;
    int64_t g;
    pare_node *last;
    if (d) {
        const char *op = n->op_type;
        if (!plain || !n->n_outputs || !n->outputs[0])
            dense_reads(c, d, n, NULL);
        else if (op_in(n, binary_ops))
            st = on_binary(c, n);
        else if (strcmp(op, "Concat") == 0)
            st = on_concat(c, n);
        else if (di != 0)
            dense_reads(c, d, n, NULL);
        else if (strcmp(op, "Conv") == 0)
            st = on_conv(c, n, d);
        else if (strcmp(op, "Gemm") == 0 || strcmp(op, "MatMul") == 0)
            st = on_matmul(c, n, d);
        else if (strcmp(op, "BatchNormalization") == 0)
            st = on_norm(c, n, d, 4);
        else if (strcmp(op, "InstanceNormalization") == 0)
            st = on_norm(c, n, d, 2);
        else if (op_in(n, unary_ops))
            st = on_unary(c, n, d, false);
        else if (op_in(n, pool_ops))
            st = on_unary(c, n, d, true);
        else if (strcmp(op, "ConvTranspose") == 0)
            st = on_convt(c, n, d);
        else if (strcmp(op, "Reshape") == 0 && (g = shuffle_of(c, n, d, &last)))
            st = on_shuffle(c, n, d, g, last);
        else if (strcmp(op, "Flatten") == 0 || strcmp(op, "Reshape") == 0)
            st = on_flatten(c, n, d);
        else
            dense_reads(c, d, n, NULL);
        /* another channel input left unhandled by a single-input rule */
        for (size_t i = 0; !st && i < n->n_inputs; i++) {
            const cdesc *e = desc_of(c, n->inputs[i]);
            if (e && e != d && !op_in(n, binary_ops) && strcmp(op, "Concat") != 0)
                dense_reads(c, e, n, NULL);
        }
    }
    bool made;
    if (!st && plain)
        st = add_source(c, n, &made);
    return st;
}

/* ---- decisions ---- */

static int cmp_score_desc(const void *a, const void *b, const double *score)
{
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    if (score[i] != score[j])
        return score[i] > score[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

/* insertion-free ranking: indices sorted by score, highest first (stable) */
static void rank_desc(int64_t *idx, int64_t n, const double *score)
{
    /* merge sort on idx */
    if (n < 2)
        return;
    int64_t h = n / 2;
    rank_desc(idx, h, score);
    rank_desc(idx + h, n - h, score);
    int64_t *tmp = malloc((size_t)n * sizeof *tmp);
    if (!tmp) { /* fall back to insertion sort */
        for (int64_t i = 1; i < n; i++)
            for (int64_t k = i; k > 0 && cmp_score_desc(&idx[k - 1], &idx[k], score) > 0; k--) {
                int64_t t = idx[k];
                idx[k] = idx[k - 1];
                idx[k - 1] = t;
            }
        return;
    }
    int64_t a = 0, b = h, k = 0;
    while (a < h && b < n)
        tmp[k++] = cmp_score_desc(&idx[b], &idx[a], score) < 0 ? idx[b++] : idx[a++];
    while (a < h)
        tmp[k++] = idx[a++];
    while (b < n)
        tmp[k++] = idx[b++];
    memcpy(idx, tmp, (size_t)n * sizeof *tmp);
    free(tmp);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* channel norms of a source's weight */
static pare_status source_norms(ctx *c, const source *s, double *out)
{
    pare_tensor *t = pare_value_tensor(s->w, c->err);
    if (!t)
        return c->err->status;
    uint64_t numel = pare_tensor_numel(t);
    if (!t->data || t->dtype != PARE_DT_FLOAT || numel % (uint64_t)s->c)
        return pare_error_set(c->err, PARE_ERR_INVALID,
                              "initializer '%s': data does not match its dims", s->w->name);
    /* loaded data borrows the file's bytes, which need not be aligned for float */
    if (!t->owns_data && pare_tensor_own(t, c->err))
        return c->err->status;
    const float *w = t->data;
    int64_t per = (int64_t)(numel / (uint64_t)s->c);
    /* ConvTranspose [C_in, C_out / group, k...]: rows in groups */
    int64_t D = t->rank >= 3 ? t->dims[1] : 0, R = t->dims[0];
    int64_t in1 = D > 0 && R > 0 ? (int64_t)numel / (R * D) : 1, rpg = R / (s->grp > 0 ? s->grp : 1);
    for (int64_t ch = 0; ch < s->c; ch++)
        out[ch] = 0;
    for (int64_t k = 0; k < (int64_t)numel; k++) {
        /* axis 0: [C, per]; axis 1: 2-D [K, C] or ConvTranspose */
        int64_t ch = s->w_axis == 0 ? k / per
                   : t->rank >= 3 ? (k / (in1 * D)) / rpg * D + (k / in1) % D
                                  : k % s->c;
        double a = fabs((double)w[k]);
        out[ch] += c->o->norm == PARE_NORM_L2 ? a * a : a;
    }
    if (c->o->norm == PARE_NORM_L2)
        for (int64_t ch = 0; ch < s->c; ch++)
            out[ch] = sqrt(out[ch]);
    return PARE_OK;
}

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Cells of a grouped space and how many channels each keeps: k in each of
 * L equal groups (EQ); with a shuffle by g = L read by a Conv of G groups,
 * cell (gi, h) holds the channels of group gi that land in the reader's
 * group h, and keeps as many as the pruned shuffle puts there, so each
 * group's j-th kept channel lands in the reader's group the j-th pruned
 * position belongs to. *k_out 0: nothing to prune; *why: left dense. */
static pare_status group_cells(ctx *c, int64_t C, int64_t L, const gcons *sh, int64_t keep,
                               int64_t M, int64_t **cell, int64_t **quota, int64_t *n_cell,
                               int64_t *k_out, const char **why)
{
    int64_t s = C / L, G = sh ? sh->G : 1;
    int64_t m2 = sh ? G / gcd64(L, G) : 1, m1 = 1;
    if (M > 1 && C >= (2 * M > 32 ? 2 * M : 32))
        m1 = M / gcd64(M, L);
    int64_t m = m1 / gcd64(m1, m2) * m2;
    if (m > s)
        m = m2;
    *k_out = 0;
    *why = NULL;
    if (m >= s) {
        if (sh)
            *why = "the channel shuffle and its grouped reader leave no smaller equal split";
        return PARE_OK;
    }
    int64_t k = (int64_t)llround((double)keep / (double)L);
    k = (k + m / 2) / m * m;
    if (k < m)
        k = m;
    if (k >= s)
        return PARE_OK;
    *n_cell = sh ? L * G : L;
    *cell = malloc((size_t)C * sizeof **cell);
    *quota = calloc((size_t)*n_cell, sizeof **quota);
    int64_t *size = calloc((size_t)*n_cell, sizeof *size);
    if (!*cell || !*quota || !size) {
        free(size);
        return nomem(c);
    }
    if (!sh) {
        for (int64_t ch = 0; ch < C; ch++)
            (*cell)[ch] = ch / s;
        for (int64_t i = 0; i < L; i++)
            (*quota)[i] = k;
    } else {
        int64_t t = C / G, t2 = L * k / G;
        for (int64_t ch = 0; ch < C; ch++) {
            int64_t gi = ch / s, j = ch % s;
            (*cell)[ch] = gi * G + (j * L + gi) / t;
            size[(*cell)[ch]]++;
        }
        for (int64_t gi = 0; gi < L; gi++)
            for (int64_t j = 0; j < k; j++)
                (*quota)[gi * G + (j * L + gi) / t2]++;
        for (int64_t i = 0; i < *n_cell; i++)
            if ((*quota)[i] > size[i]) {
                *why = "the channel shuffle and its grouped reader leave no equal split";
                free(size);
                return PARE_OK;
            }
    }
    free(size);
    *k_out = k;
    return PARE_OK;
}

static pare_status decide(ctx *c, size_t root)
{
    space *sp = &c->sp[root];
    if (sp->dense || !sp->n_members)
        return PARE_OK;
    double ratio = 1;
    for (size_t i = 0; i < sp->n_members; i++)
        if (c->srcs[sp->members[i]].ratio < ratio)
            ratio = c->srcs[sp->members[i]].ratio;
    int64_t C = sp->c, remove = (int64_t)llround(ratio * (double)C), keep = C - remove;
    if (remove <= 0)
        return PARE_OK;
    /* 16 unless asked: a multiple of 16 is whole blocks for both 8- and
     * 16-wide channel blocking (onnxruntime's NCHWc pads 24 to 32 on
     * AVX-512, so a 32 -> 24 cut there buys nothing; bench/channels_bench.py) */
    int64_t M = c->o->channel_multiple > 0 ? c->o->channel_multiple : 16;
    /* groupings of grouped layers and shuffles */
    int64_t L = 1;
    const gcons *sh = NULL;
    for (size_t i = 0; i < sp->n_cons; i++) {
        const gcons *k = &sp->cons[i];
        if (k->kind == GC_SHUF) {
            if (sh && (sh->g != k->g || sh->G != k->G)) {
                set_dense(c, root, NULL, "its channels go through differently grouped shuffles");
                return PARE_OK;
            }
            sh = k;
        }
        L = L / gcd64(L, k->g) * k->g;
        if (L > C || C % L) {
            set_dense(c, root, NULL, "the groups of its grouped layers do not divide its channels");
            return PARE_OK;
        }
    }
    if (sh && (L != sh->g || C % sh->G)) {
        set_dense(c, root, NULL, "a channel shuffle and the groups of its layers disagree");
        return PARE_OK;
    }
    int64_t *cell = NULL, *quota = NULL, n_cell = 0, *taken = NULL;
    if (L > 1) {
        int64_t k;
        const char *why;
        pare_status st = group_cells(c, C, L, sh, keep, M, &cell, &quota, &n_cell, &k, &why);
        if (st || !k) {
            free(cell);
            free(quota);
            if (!st && why)
                set_dense(c, root, NULL, why);
            return st;
        }
        keep = k * L;
    } else if (M > 1 && C >= (2 * M > 32 ? 2 * M : 32)) {
        /* the kept count to the nearest multiple of M (16 unless asked), in
         * layers wide enough for it: kernels block channels by 8 or 16 */
        int64_t km = (keep + M / 2) / M * M;
        keep = km < M ? M : km > C ? C : km;
    }
    double *score = NULL, *tmp = NULL;
    int64_t *idx = NULL;
    pare_status st = PARE_OK;
    if (keep >= C)
        goto out;
    score = calloc((size_t)C, sizeof *score);
    tmp = malloc((size_t)C * sizeof *tmp);
    idx = malloc((size_t)C * sizeof *idx);
    taken = calloc(n_cell ? (size_t)n_cell : 1, sizeof *taken);
    if (!score || !tmp || !idx || !taken) {
        st = nomem(c);
        goto out;
    }
    for (size_t i = 0; i < sp->n_members; i++) {
        if ((st = source_norms(c, &c->srcs[sp->members[i]], tmp)))
            goto out;
        double mx = 0;
        for (int64_t ch = 0; ch < C; ch++)
            mx = tmp[ch] > mx ? tmp[ch] : mx;
        for (int64_t ch = 0; ch < C; ch++)
            score[ch] += mx > 0 ? tmp[ch] / mx : 0;
    }
    for (int64_t ch = 0; ch < C; ch++)
        idx[ch] = ch;
    rank_desc(idx, C, score);
    if (cell) {
        /* best first, each cell up to its quota */
        int64_t n = 0;
        for (int64_t i = 0; i < C; i++)
            if (taken[cell[idx[i]]] < quota[cell[idx[i]]]) {
                taken[cell[idx[i]]]++;
                idx[n++] = idx[i];
            }
        if (n != keep) {
            st = pare_error_set(c->err, PARE_ERR_INVALID, "grouped channels: kept %" PRId64
                                " of %" PRId64, n, keep);
            goto out;
        }
    }
    qsort(idx, (size_t)keep, sizeof *idx, cmp_i64);
    sp->keep = idx;
    idx = NULL;
    sp->n_keep = keep;
    sp->pruned = true;
out:
    free(score);
    free(tmp);
    free(idx);
    free(cell);
    free(quota);
    free(taken);
    return st;
}

/* kept feature indices of a descriptor (inner expanded) */
static pare_status desc_keep(ctx *c, const cdesc *d, int64_t **out, int64_t *n_out)
{
    int64_t n = 0, off = 0;
    int64_t *idx = malloc((size_t)(d->total * d->inner) * sizeof *idx + 1);
    if (!idx)
        return nomem(c);
    for (size_t i = 0; i < d->n_segs; i++) {
        const space *s = &c->sp[find(c, d->segs[i].space)];
        int64_t cnt = s->pruned ? s->n_keep : d->segs[i].n;
        for (int64_t k = 0; k < cnt; k++) {
            int64_t ch = off + (s->pruned ? s->keep[k] : k);
            for (int64_t h = 0; h < d->inner; h++)
                idx[n++] = ch * d->inner + h;
        }
        off += d->segs[i].n;
    }
    if (d->shuf_g > 1 && n < d->total) {
        /* pruned input (gi, j) holds original channel o = (go, jo) of group
         * size s; the pruned shuffle puts it at j * g + gi, where the
         * original put o at jo * g + go */
        int64_t g = d->shuf_g, s = d->total / g, k = n / g;
        int64_t *p = malloc((size_t)n * sizeof *p + 1);
        if (!p) {
            free(idx);
            return nomem(c);
        }
        for (int64_t q = 0; q < n; q++) {
            int64_t gi = q / (k ? k : 1), j = q % (k ? k : 1);
            if (n % g || idx[q] / s != gi) {
                free(p);
                free(idx);
                return pare_error_set(c->err, PARE_ERR_INVALID,
                                      "channel shuffle: groups keep unequal channel counts");
            }
            p[j * g + gi] = idx[q] % s * g + idx[q] / s;
        }
        free(idx);
        idx = p;
    }
    *out = idx;
    *n_out = n;
    return PARE_OK;
}

/* every space of d unpruned and dense (a grouped reader cannot take it) */
static void undo_desc(ctx *c, const cdesc *d, const pare_node *n, const char *why)
{
    for (size_t i = 0; i < d->n_segs; i++) {
        space *s = &c->sp[find(c, d->segs[i].space)];
        if (s->pruned) {
            free(s->keep);
            s->keep = NULL;
            s->pruned = false;
            s->n_keep = 0;
        }
    }
    dense_reads(c, d, n, why);
}

/* each grouped reader must see equal kept counts per group, each group its
 * own channels (several layers' decisions meet there); where not, its
 * inputs' spaces are left dense and every check is done again */
static pare_status check_groups(ctx *c)
{
    for (size_t i = 0; i < c->n_checks; i++) {
        const gcheck *k = &c->checks[i];
        int64_t *idx, n, G = k->G;
        pare_status st = desc_keep(c, k->d, &idx, &n);
        if (st)
            return st;
        bool ok = true;
        if (n < k->d->total) {
            int64_t gs = k->d->total / G, per = n / G;
            ok = n % G == 0 && per > 0;
            for (int64_t q = 0; ok && q < n; q++)
                ok = idx[q] / gs == q / per;
        }
        free(idx);
        if (!ok) {
            char buf[120];
            snprintf(buf, sizeof buf, "is grouped (%" PRId64 " groups) and its input's layers "
                     "would keep unequal counts per group", G);
            undo_desc(c, k->d, (pare_node *)k->node, buf);
            i = (size_t)-1; /* again from the first */
        }
    }
    return PARE_OK;
}

static int64_t desc_count(ctx *c, const cdesc *d)
{
    int64_t n = 0;
    for (size_t i = 0; i < d->n_segs; i++) {
        const space *s = &c->sp[find(c, d->segs[i].space)];
        n += s->pruned ? s->n_keep : d->segs[i].n;
    }
    return n;
}

/* ---- rewriting ---- */

/* before IR 4 every initializer is also listed as a graph input */
static pare_status legacy_input(ctx *c, pare_value *v)
{
    if (c->g->model && pare_model_ir_version(c->g->model) < 4)
        return pare_graph_add_input(c->g, v, c->err);
    return PARE_OK;
}

static pare_status slice_input(ctx *c, pare_node *n, size_t in, int axis, const int64_t *idx,
                               int64_t nidx)
{
    pare_value *v = n->inputs[in];
    pare_tensor *t = pare_value_tensor(v, c->err);
    if (!t)
        return c->err->status;
    int bits = pare_dtype_bits(t->dtype);
    if (axis >= t->rank || bits < 8 || bits % 8 || !t->data)
        return pare_error_set(c->err, PARE_ERR_UNSUPPORTED,
                              "initializer '%s': cannot slice axis %d of it", v->name, axis);
    size_t es = (size_t)bits / 8;
    int64_t outer = 1, inner = 1, D = t->dims[axis];
    for (int i = 0; i < axis; i++)
        outer *= t->dims[i];
    for (int i = axis + 1; i < t->rank; i++)
        inner *= t->dims[i];
    for (int64_t k = 0; k < nidx; k++)
        if (idx[k] < 0 || idx[k] >= D)
            return pare_error_set(c->err, PARE_ERR_INVALID,
                                  "initializer '%s': channel %" PRId64 " out of range", v->name,
                                  idx[k]);
    int64_t dims[PARE_MAX_RANK];
    memcpy(dims, t->dims, (size_t)t->rank * sizeof *dims);
    dims[axis] = nidx;
    pare_tensor *nt;
    pare_status st = pare_tensor_new(v->name, t->dtype, t->rank, dims, &nt, c->err);
    if (st)
        return st;
    const unsigned char *src = t->data;
    unsigned char *dst = nt->data;
    size_t blk = (size_t)inner * es;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < nidx; k++)
            memcpy(dst + ((size_t)o * (size_t)nidx + (size_t)k) * blk,
                   src + ((size_t)o * (size_t)D + (size_t)idx[k]) * blk, blk);
    if (v->n_uses > 1) {
        pare_value *nv;
        char nm[256];
        if ((st = pare_tensor_set_name(nt, pare_graph_unique_name(c->g, v->name, nm, sizeof nm),
                                       c->err)) ||
            (st = pare_graph_add_initializer(c->g, nt, &nv, c->err))) {
            pare_tensor_free(nt);
            return st;
        }
        if ((st = legacy_input(c, nv)))
            return st;
        return pare_node_set_input(n, in, nv, c->err);
    }
    if ((st = pare_value_set_tensor(v, nt, c->err)))
        pare_tensor_free(nt);
    return st;
}

/* grouped weight [R, D, ...]: row r of group h = r / (R / groups) keeps
 * columns idx[h * k + j] - h * D (idx: kept channels over all groups) */
static pare_status gslice_input(ctx *c, pare_node *n, size_t in, int64_t groups,
                                const int64_t *idx, int64_t nidx)
{
    pare_value *v = n->inputs[in];
    pare_tensor *t = pare_value_tensor(v, c->err);
    if (!t)
        return c->err->status;
    if (!t->owns_data && pare_tensor_own(t, c->err))
        return c->err->status;
    int64_t R = t->dims[0], D = t->rank >= 2 ? t->dims[1] : 0, k = nidx / groups;
    if (t->dtype != PARE_DT_FLOAT || t->rank < 2 || !t->data || R % groups || nidx % groups ||
        nidx < groups || D < 1)
        return pare_error_set(c->err, PARE_ERR_UNSUPPORTED,
                              "initializer '%s': cannot slice its groups", v->name);
    int64_t inner = (int64_t)pare_tensor_numel(t) / (R * D), rpg = R / groups;
    for (int64_t q = 0; q < nidx; q++)
        if (idx[q] - q / k * D < 0 || idx[q] - q / k * D >= D)
            return pare_error_set(c->err, PARE_ERR_INVALID,
                                  "initializer '%s': channel %" PRId64 " outside its group",
                                  v->name, idx[q]);
    int64_t dims[PARE_MAX_RANK];
    memcpy(dims, t->dims, (size_t)t->rank * sizeof *dims);
    dims[1] = k;
    pare_tensor *nt;
    pare_status st = pare_tensor_new(v->name, t->dtype, t->rank, dims, &nt, c->err);
    if (st)
        return st;
    const float *src = t->data;
    float *dst = nt->data;
    size_t blk = (size_t)inner * sizeof *src;
    for (int64_t r = 0; r < R; r++) {
        int64_t h = r / rpg;
        for (int64_t j = 0; j < k; j++)
            memcpy(dst + (r * k + j) * inner, src + (r * D + idx[h * k + j] - h * D) * inner, blk);
    }
    if ((st = pare_value_set_tensor(v, nt, c->err)))
        pare_tensor_free(nt);
    return st;
}

static pare_status set_dim(ctx *c, pare_value *v, int p, int64_t x)
{
    if (!v || p < 0 || p >= v->shape.rank || v->shape.dims[p].value < 0)
        return PARE_OK;
    pare_shape s = {v->shape.rank, NULL};
    s.dims = malloc((size_t)s.rank * sizeof *s.dims);
    if (!s.dims)
        return nomem(c);
    memcpy(s.dims, v->shape.dims, (size_t)s.rank * sizeof *s.dims);
    s.dims[p].value = x;
    s.dims[p].param = NULL;
    pare_status st = pare_value_set_type(v, v->dtype, &s, c->err);
    free(s.dims);
    return st;
}

/* shape constant entry i (input 1 of n) set to x unless it is -1 */
static pare_status set_shape_entry(ctx *c, pare_node *node, int64_t i, int64_t x)
{
    pare_value *s = node->inputs[1];
    int64_t n = s->init->dims[0];
    pare_tensor *nt;
    pare_status st = pare_tensor_new(s->name, PARE_DT_INT64, 1, &n, &nt, c->err);
    if (st)
        return st;
    int64_t *p = nt->data;
    memcpy(p, s->init->data, (size_t)n * sizeof *p);
    if (p[i] != -1)
        p[i] = x;
    if (s->n_uses > 1) {
        pare_value *nv;
        char nm[256];
        if ((st = pare_tensor_set_name(nt, pare_graph_unique_name(c->g, s->name, nm, sizeof nm),
                                       c->err)) ||
            (st = pare_graph_add_initializer(c->g, nt, &nv, c->err))) {
            pare_tensor_free(nt);
            return st;
        }
        if ((st = legacy_input(c, nv)))
            return st;
        return pare_node_set_input(node, 1, nv, c->err);
    }
    if ((st = pare_value_set_tensor(s, nt, c->err)))
        pare_tensor_free(nt);
    return st;
}

/* the shuffle's split to [N, g, k, ...], its transposed value, and the
 * closing Reshape to [N, g * k, ...] */
static pare_status apply_shuffle(ctx *c, const edit *e, int64_t nk)
{
    pare_node *n = e->node, *t = n->outputs[0]->uses[0].node;
    pare_node *b = t->outputs[0]->uses[0].node;
    int64_t k = nk / e->groups;
    pare_status st;
    if ((st = set_shape_entry(c, n, 2, k)) || (st = set_dim(c, n->outputs[0], 2, k)) ||
        (st = set_dim(c, t->outputs[0], 1, k)))
        return st;
    return set_shape_entry(c, b, 1, nk);
}

static pare_status apply_edit(ctx *c, const edit *e)
{
    int64_t *idx = NULL, nidx = 0;
    pare_status st = desc_keep(c, e->d, &idx, &nidx);
    if (st)
        return st;
    if (nidx == e->d->total * e->d->inner) {
        free(idx);
        return PARE_OK; /* nothing removed */
    }
    if (e->kind == ED_SLICE) {
        st = slice_input(c, e->node, e->input, e->axis, idx, nidx);
    } else if (e->kind == ED_GSLICE) {
        st = gslice_input(c, e->node, e->input, e->groups, idx, nidx);
    } else if (e->kind == ED_SHUFFLE) {
        st = apply_shuffle(c, e, nidx);
    } else if (e->kind == ED_GROUP) {
        st = pare_node_set_attr_int(e->node, "group", nidx, c->err);
    } else {
        pare_value *s = e->node->inputs[1];
        int64_t sv[2];
        memcpy(sv, s->init->data, sizeof sv);
        if (sv[1] != -1) {
            pare_tensor *nt;
            int64_t two = 2;
            if (!(st = pare_tensor_new(s->name, PARE_DT_INT64, 1, &two, &nt, c->err))) {
                ((int64_t *)nt->data)[0] = sv[0];
                ((int64_t *)nt->data)[1] = nidx;
                if ((st = pare_value_set_tensor(s, nt, c->err)))
                    pare_tensor_free(nt);
            }
        }
    }
    free(idx);
    return st;
}

/* fixes the channel dim of every value that carries channels */
static pare_status fix_shapes(ctx *c)
{
    for (size_t i = 0; i < c->n_vdesc; i++) {
        const cdesc *d = c->vdesc[i];
        pare_value *v = c->g->values[i];
        if (!d || !v || v->shape.rank < 1)
            continue;
        int p = v->shape.rank - 1 - d->ax_e;
        if (p < 0 || v->shape.dims[p].value < 0)
            continue;
        int64_t nv = desc_count(c, d) * d->inner;
        if (nv == v->shape.dims[p].value)
            continue;
        pare_shape s = {v->shape.rank, NULL};
        s.dims = malloc((size_t)s.rank * sizeof *s.dims);
        if (!s.dims)
            return nomem(c);
        memcpy(s.dims, v->shape.dims, (size_t)s.rank * sizeof *s.dims);
        s.dims[p].value = nv;
        s.dims[p].param = NULL;
        pare_status st = pare_value_set_type(v, v->dtype, &s, c->err);
        free(s.dims);
        if (st)
            return st;
    }
    return PARE_OK;
}

/* ---- BatchNormalization re-estimation ---- */

typedef struct bn_stat {
    pare_node *node;
    const pare_value *x;
    int64_t c;
    double *sum, *sq;
    double count;
} bn_stat;

typedef struct bn_ctx {
    bn_stat *bn;
    size_t n;
} bn_ctx;

static int bn_observe(void *p, const pare_node *node, size_t output, const pare_tensor *t)
{
    bn_ctx *b = p;
    const pare_value *v = output < node->n_outputs ? node->outputs[output] : NULL;
    for (size_t i = 0; v && i < b->n; i++) {
        bn_stat *s = &b->bn[i];
        if (s->x != v)
            continue;
        if (t->dtype != PARE_DT_FLOAT || t->rank < 2 || t->dims[1] != s->c || !t->data)
            return 1;
        int64_t outer = t->dims[0], inner = 1;
        for (int k = 2; k < t->rank; k++)
            inner *= t->dims[k];
        const float *x = t->data;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t ch = 0; ch < s->c; ch++) {
                const float *q = x + (o * s->c + ch) * inner;
                double a = 0, a2 = 0;
                for (int64_t h = 0; h < inner; h++) {
                    a += q[h];
                    a2 += (double)q[h] * q[h];
                }
                s->sum[ch] += a;
                s->sq[ch] += a2;
            }
        s->count += (double)(outer * inner);
    }
    return 0;
}

static pare_status bn_recalibrate(pare_model *m, const pare_channel_opts *o, pare_error *err)
{
    pare_graph *g = pare_model_graph(m);
    bn_ctx b = {NULL, 0};
    pare_status st = PARE_OK;
    pare_session *s = NULL;
    pare_feed *f = NULL;
    b.bn = calloc(g->n_nodes ? g->n_nodes : 1, sizeof *b.bn);
    if (!b.bn)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < g->n_nodes; i++) {
        pare_node *n = g->nodes[i];
        if (!pare_node_is(n, "", "BatchNormalization") || n->n_inputs < 5 || !n->inputs[0] ||
            !n->inputs[0]->producer || !float_init(n->inputs[3]) || !float_init(n->inputs[4]) ||
            n->inputs[3]->shape.rank != 1 || n->inputs[3]->n_uses > 1 || n->inputs[4]->n_uses > 1)
            continue;
        int64_t ch = dim(n->inputs[3], 0);
        if (ch < 1 || dim(n->inputs[4], 0) != ch)
            continue;
        bn_stat *x = &b.bn[b.n++];
        x->node = n;
        x->x = n->inputs[0];
        x->c = ch;
        x->sum = calloc((size_t)ch, sizeof(double));
        x->sq = calloc((size_t)ch, sizeof(double));
        if (!x->sum || !x->sq) {
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    if (!b.n)
        goto out;
    pare_session_opts so = PARE_SESSION_OPTS_INIT;
    so.threads = o->calib.threads;
    if ((st = pare_session_new(m, &so, &s, err)))
        goto out;
    if ((st = pare_feed_open(o->bn_recalibrate, s, o->calib.batch > 0 ? o->calib.batch : 8,
                             o->calib.samples, &f, err))) {
        pare_error_prefix(err, "%s", o->bn_recalibrate);
        goto out;
    }
    if ((st = pare_feed_set_sampling(f, o->calib.seed, err)))
        goto out;
    pare_session_set_observer(s, bn_observe, &b);
    int64_t done = 0;
    for (;;) {
        pare_tensor **in, **outs;
        int64_t ns;
        size_t nout;
        if ((st = pare_feed_next(f, &in, &ns, err))) {
            pare_error_prefix(err, "%s", o->bn_recalibrate);
            goto out;
        }
        if (!in)
            break;
        st = pare_session_run(s, in, pare_session_input_count(s), &outs, &nout, err);
        pare_tensors_free(in, pare_session_input_count(s));
        if (st)
            goto out;
        pare_tensors_free(outs, nout);
        done += ns;
        if (o->calib.progress)
            o->calib.progress(o->calib.progress_ctx, done, pare_feed_count(f));
    }
    pare_feed_close(f);
    f = NULL;
    pare_session_free(s);
    s = NULL;
    if (!done) {
        st = pare_error_set(err, PARE_ERR_ARG, "%s: no samples", o->bn_recalibrate);
        goto out;
    }
    for (size_t i = 0; i < b.n; i++) {
        bn_stat *x = &b.bn[i];
        if (x->count < 1)
            continue;
        pare_tensor *mt = NULL, *vt = NULL;
        if ((st = pare_tensor_new(x->node->inputs[3]->name, PARE_DT_FLOAT, 1, &x->c, &mt, err)) ||
            (st = pare_tensor_new(x->node->inputs[4]->name, PARE_DT_FLOAT, 1, &x->c, &vt, err))) {
            pare_tensor_free(mt);
            goto out;
        }
        for (int64_t ch = 0; ch < x->c; ch++) {
            double mean = x->sum[ch] / x->count, var = x->sq[ch] / x->count - mean * mean;
            ((float *)mt->data)[ch] = (float)mean;
            ((float *)vt->data)[ch] = (float)(var > 0 ? var : 0);
        }
        if ((st = pare_value_set_tensor(x->node->inputs[3], mt, err))) {
            pare_tensor_free(mt);
            pare_tensor_free(vt);
            goto out;
        }
        if ((st = pare_value_set_tensor(x->node->inputs[4], vt, err))) {
            pare_tensor_free(vt);
            goto out;
        }
    }
out:
    pare_feed_close(f);
    pare_session_free(s);
    for (size_t i = 0; i < b.n; i++) {
        free(b.bn[i].sum);
        free(b.bn[i].sq);
    }
    free(b.bn);
    return st;
}

/* ---- entry point ---- */

typedef struct layer_before {
    pare_node *node;
    pare_value *w;
    int axis;
    int64_t ch, params, zeros;
    double macs;
} layer_before;

static int64_t count_zeros(pare_value *v, pare_error *err)
{
    pare_tensor *t = pare_value_tensor(v, err);
    if (!t || !t->data || t->dtype != PARE_DT_FLOAT)
        return 0;
    int64_t z = 0, n = (int64_t)pare_tensor_numel(t);
    const unsigned char *p = t->data;
    for (int64_t k = 0; k < n; k++) {
        float x;
        memcpy(&x, p + (size_t)k * sizeof x, sizeof x); /* need not be aligned */
        z += x == 0;
    }
    return z;
}

static pare_status check_ratios(pare_graph *g, const pare_channel_opts *o, pare_error *err)
{
    if (!(o->ratio >= 0 && o->ratio < 1))
        return pare_error_set(err, PARE_ERR_ARG, "ratio %g is outside [0, 1)", o->ratio);
    for (size_t i = 0; i < o->n_layer_ratios; i++) {
        const char *lr = o->layer_ratios[i], *eq = lr ? strrchr(lr, '=') : NULL;
        if (!eq || eq == lr)
            return pare_error_set(err, PARE_ERR_ARG, "layer ratio '%s' is not NODE=R",
                                  lr ? lr : "");
        char *end;
        double r = strtod(eq + 1, &end);
        if (end == eq + 1 || *end || !(r >= 0 && r < 1))
            return pare_error_set(err, PARE_ERR_ARG, "layer ratio '%s': ratio outside [0, 1)", lr);
        char name[512];
        size_t len = (size_t)(eq - lr);
        if (len >= sizeof name)
            return pare_error_set(err, PARE_ERR_ARG, "layer ratio '%s': name too long", lr);
        memcpy(name, lr, len);
        name[len] = 0;
        if (!pare_graph_find_node(g, name))
            return pare_error_set(err, PARE_ERR_ARG, "layer ratio '%s': no node named '%s'", lr,
                                  name);
    }
    return PARE_OK;
}

pare_status pare_prune_channels(pare_model *m, const pare_channel_opts *o, pare_prune_report *r,
                                pare_error *err)
{
    pare_status align_st = pare_model_align_weights(m, err); /* typed reads below */
    if (align_st)
        return align_st;
    pare_graph *g = pare_model_graph(m);
    pare_status st;
    if (!o)
        return pare_error_set(err, PARE_ERR_ARG, "no options");
    if ((st = check_ratios(g, o, err)))
        return st;
    for (size_t i = 0; i < o->filter.n_exclude_nodes; i++)
        if (!pare_graph_find_node(g, o->filter.exclude_nodes[i]))
            return pare_error_set(err, PARE_ERR_ARG, "no node named '%s' in the model",
                                  o->filter.exclude_nodes[i]);
    if ((st = pare_graph_toposort(g, err)))
        return st;
    {
        pare_infer_report rep;
        pare_error e;
        pare_infer_shapes(m, NULL, &rep, &e); /* best effort: unknown shapes make groups dense */
        pare_infer_report_release(&rep);
    }
    if (r && r->params_before == 0 && r->nonzero_before == 0)
        pare_prune_count_params(m, &r->params_before, &r->nonzero_before);

    ctx c;
    memset(&c, 0, sizeof c);
    c.g = g;
    c.o = o;
    c.err = err;
    c.n_vdesc = g->n_values;
    layer_before *lb = NULL;
    size_t n_lb = 0;
    c.vdesc = calloc(c.n_vdesc ? c.n_vdesc : 1, sizeof *c.vdesc);
    lb = calloc(g->n_nodes ? g->n_nodes : 1, sizeof *lb);
    if (!c.vdesc || !lb) {
        st = nomem(&c);
        goto out;
    }
    /* layers as they were, for the report */
    for (size_t i = 0; i < g->n_nodes; i++) {
        layer_before *L = &lb[n_lb];
        if (!g->nodes[i]->n_outputs || !g->nodes[i]->outputs[0] ||
            !weight_layer(g->nodes[i], &L->w, &L->axis, &L->ch))
            continue;
        L->node = g->nodes[i];
        pare_tensor *t = pare_value_tensor(L->w, err);
        if (!t) {
            st = err->status;
            goto out;
        }
        (void)t;
        L->params = pare_value_numel(L->w);
        L->zeros = count_zeros(L->w, err);
        L->macs = layer_macs(L->node, L->w, L->axis);
        n_lb++;
    }

    for (size_t i = 0; i < g->n_nodes; i++)
        if ((st = visit(&c, g->nodes[i])))
            goto out;
    /* values read where channels cannot be followed */
    for (size_t i = 0; i < c.n_vdesc; i++) {
        const cdesc *d = c.vdesc[i];
        pare_value *v = g->values[i];
        if (!d || !v)
            continue;
        char buf[300];
        if (v->is_output) {
            snprintf(buf, sizeof buf, "'%s' is a graph output", v->name);
            dense_desc(&c, d, v->producer, buf);
        }
        for (size_t u = 0; u < v->n_uses; u++)
            if (v->uses[u].node->graph != g) {
                snprintf(buf, sizeof buf, "'%s' is read inside a subgraph", v->name);
                dense_desc(&c, d, v->producer, buf);
            }
    }
    /* a ratio that removes every channel of a layer (one left dense anyway,
     * such as the last layer, only when its ratio was asked by name) */
    for (size_t i = 0; i < c.n_srcs; i++) {
        source *s = &c.srcs[i];
        if (c.sp[find(&c, s->space)].dense && s->ratio == o->ratio)
            continue;
        if ((int64_t)llround(s->ratio * (double)s->c) >= s->c && s->ratio > 0) {
            st = pare_error_set(err, PARE_ERR_ARG,
                                "ratio %g would remove every channel of layer '%s' (%" PRId64
                                " channels)", s->ratio, s->node->name ? s->node->name : "",
                                s->c);
            goto out;
        }
    }
    for (size_t i = 0; i < c.n_sp; i++)
        if (find(&c, i) == i && (st = decide(&c, i)))
            goto out;
    if ((st = check_groups(&c)))
        goto out;
    /* dense groups with layers in them go to the report */
    for (size_t i = 0; r && i < c.n_srcs; i++) {
        space *s = &c.sp[find(&c, c.srcs[i].space)];
        if (!s->dense)
            continue;
        char buf[400];
        snprintf(buf, sizeof buf, "output channels kept: %s", s->why ? s->why : "not prunable");
        if ((st = pare_prune_report_skip(r, c.srcs[i].node, buf, err)))
            goto out;
    }
    for (size_t i = 0; i < c.n_srcs; i++) {
        source *s = &c.srcs[i];
        const cdesc *d = desc_of(&c, s->node->outputs[0]);
        if (d && s->grp > 1 && (st = add_gslice(&c, s->node, 1, s->grp, d)))
            goto out;
        if (d && s->grp <= 1 && (st = add_edit(&c, ED_SLICE, s->node, 1, s->w_axis, d)))
            goto out;
    }
    for (size_t i = 0; i < c.n_edits; i++)
        if ((st = apply_edit(&c, &c.edits[i])))
            goto out;
    if ((st = fix_shapes(&c)))
        goto out;
    if (o->bn_recalibrate && (st = bn_recalibrate(m, o, err)))
        goto out;

    /* report every layer whose weight changed */
    for (size_t i = 0; r && i < n_lb; i++) {
        layer_before *L = &lb[i];
        pare_value *w = L->node->inputs[1];
        pare_tensor *t = pare_value_tensor(w, err);
        if (!t) {
            st = err->status;
            goto out;
        }
        if (w == L->w && pare_value_numel(w) == L->params)
            continue;
        pare_prune_layer_stat *ls;
        if ((st = pare_prune_report_layer(r, L->node, w->name, &ls, err)))
            goto out;
        ls->params = pare_value_numel(w);
        ls->zeros_before = L->zeros;
        ls->zeros_after = count_zeros(w, err);
        ls->channels_before = L->ch;
        ls->channels_after = dim(w, L->axis);
        if (pare_node_is(L->node, "", "ConvTranspose"))
            ls->channels_after *= pare_node_attr_int(L->node, "group", 1);
        ls->macs_before = L->macs;
        ls->macs_after = layer_macs(L->node, w, L->axis);
        ls->macs_effective = ls->params ? ls->macs_after * (double)(ls->params - ls->zeros_after) /
                                              (double)ls->params
                                        : 0;
        r->macs_before += ls->macs_before;
        r->macs_after += ls->macs_after;
        r->macs_effective_after += ls->macs_effective;
    }
    if (r) {
        char buf[64];
        snprintf(buf, sizeof buf, "structured channels %s",
                 o->norm == PARE_NORM_L2 ? "l2" : "l1");
        if (!r->method) {
            if (!(r->method = prune_strdup(buf))) {
                st = nomem(&c);
                goto out;
            }
        }
        pare_prune_count_params(m, &r->params_after, &r->nonzero_after);
    }
out:
    for (size_t i = 0; i < c.n_sp; i++) {
        free(c.sp[i].why);
        free(c.sp[i].members);
        free(c.sp[i].keep);
        free(c.sp[i].cons);
    }
    free(c.sp);
    for (size_t i = 0; i < c.n_descs; i++) {
        free(c.descs[i]->segs);
        free(c.descs[i]);
    }
    free(c.descs);
    free(c.vdesc);
    free(c.srcs);
    free(c.edits);
    free(c.checks);
    free(lb);
    return st;
}
