/* The executor: plans a backend and a kernel per node, runs graphs (and
 * subgraphs for control flow), frees each intermediate after its last use,
 * and lays the main graph's intermediates out in one arena per backend by
 * liveness once the sizes of a set of input shapes are known. How backends,
 * fallbacks and border copies are planned: exec/backend.h. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "internal.h"
#include "exec/backend.h"
#include "exec/kernel.h"
#include "pare/infer.h"

#define NBE 2 /* backends of a plan: 0 the CPU, 1 the preferred device (if any) */

/* a border copy: value vid gets a mirror on backend `to` */
typedef struct pcopy {
    size_t vid;
    uint8_t to;
} pcopy;

typedef struct gplan {
    const pare_graph *g;
    size_t n;
    pare_node **order;        /* the graph's nodes, topologically sorted */
    const pare_kernel **k;
    void **state;
    int64_t *opset;
    size_t *last_use;         /* per value id: position of last reading node (or SIZE_MAX) */
    struct gplan *next;       /* list of all plans of the session */
    /* backends (main graph; a CPU-only plan has multi false and nothing below) */
    uint8_t *nbe;             /* per node: backend index (NULL: all on the CPU) */
    char **why;               /* per node: why the preferred backend declined it, or NULL */
    bool multi;               /* some node runs off the CPU */
    uint8_t *vbe;             /* per value: home backend (where its producer runs) */
    size_t *mirror_pos;       /* per value: position of its border copy, SIZE_MAX none */
    pcopy *copies;            /* border copies in plan order */
    size_t *copy_at;          /* n + 2 entries: copies before node i: copy_at[i] .. [i+1] */
    pare_tensor **cmirror;    /* per value: initializer uploaded to the device once */
    uint8_t *cdropped;        /* per value: its cmirror was released after fusion (only
                               * absorbed nodes read it); NULL: none was */
    const pare_backend *dev;  /* backend 1 of this plan, for cmirror */
    void *dev_ctx;            /* and its session context */
    /* fusion (main graph; NULL arrays: none): a node whose kernel
     * absorbed the nodes after it writes fz_out[i] (reading fz_res[i] as
     * its residual); the absorbed nodes have fused_into = that position and
     * are skipped while no observer is set */
    size_t *fused_into;       /* per node: SIZE_MAX or the absorbing node */
    pare_value **fz_out;      /* per node: the value the fused node writes */
    const pare_value **fz_res;
    size_t *first_pos;        /* per value: where the fused form writes it, SIZE_MAX */
    size_t n_fused;           /* nodes absorbed */
    /* QDQ fusion (fuse_qdq): the fused node runs fz_k[i] with fz_state[i]
     * (NULL: its own) and reads fz_in[i][k] (n_inputs entries, NULL: its
     * own input k) instead of its inputs; fz_k[i] set marks such a node */
    const pare_kernel **fz_k;
    void **fz_state;
    const pare_value ***fz_in;
} gplan;

/* one arena slot per buffer of the main graph: key 2*id is a value's home
 * buffer, 2*id+1 its mirror on the other backend */
typedef struct slot {
    size_t offset, size;
} slot;

struct pare_session {
    pare_model *m;
    pare_graph *g;
    pare_threadpool *pool;
    gplan *plans;
    gplan *main;
    const pare_backend *be[NBE]; /* be[1] NULL when the CPU is the only backend */
    void *bctx[NBE];          /* each backend's context for this session (open) */
    pare_value **inputs;      /* inputs needing data */
    size_t n_inputs;
    pare_observer_fn observer;
    void *observer_ctx;
    bool keep_all;
    bool no_fusion;           /* opts.no_fusion, keep_all or PARE_NO_FUSION */
    /* CUDA graphs (backend.h, graph_begin): opts.cuda_graph; graph_off once
     * a captured run failed; graph_run: the current run is captured */
    int cuda_graph;
    bool graph_off, graph_run;
    /* arena */
    int64_t *planned_dims;    /* concatenated input dims of the current plan */
    size_t n_planned_dims;
    bool have_plan;
    bool recording;
    size_t *rec_size;         /* per slot key: bytes seen in the recording run */
    slot *slots;
    uint8_t *arena[NBE];
    size_t arena_size[NBE];
    char *signature;
    /* opts.profile: per node of the main plan in run order, then the copies */
    bool profile;
    pare_node_profile *prof;
    size_t n_prof;
};

/* ownership codes of a frame's tensors */
enum { OWN_NONE, OWN_HEAP, OWN_VIEW, OWN_DEV };

typedef struct frame {
    pare_session *s;
    gplan *p;
    pare_tensor **vals;       /* per value id; NULL: not computed */
    uint8_t *owned;           /* OWN_* of vals[i] */
    pare_tensor **mirror;     /* per value id: copy on the other backend (multi plans) */
    uint8_t *mowned;
    struct frame *parent;
    size_t pos;               /* node being run */
} frame;

static pare_status plan_graph(pare_session *s, const pare_graph *g, gplan **out, pare_error *err);

static gplan *find_plan(pare_session *s, const pare_graph *g)
{
    for (gplan *p = s->plans; p; p = p->next)
        if (p->g == g)
            return p;
    return NULL;
}

static void gplan_free(gplan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->k[i] && p->k[i]->release && p->state[i])
            p->k[i]->release(p->state[i]);
        if (p->why)
            free(p->why[i]);
    }
    if (p->cmirror) {
        for (size_t i = 0; i < p->g->n_values; i++)
            if (p->cmirror[i]) {
                p->dev->free(p->dev, p->dev_ctx, p->cmirror[i]->data);
                pare_tensor_free(p->cmirror[i]);
            }
        free(p->cmirror);
    }
    free(p->cdropped);
    free(p->order);
    free(p->k);
    free(p->state);
    free(p->opset);
    free(p->last_use);
    free(p->nbe);
    free(p->why);
    free(p->vbe);
    free(p->mirror_pos);
    free(p->copies);
    free(p->copy_at);
    free(p->fused_into);
    free(p->fz_out);
    free(p->fz_res);
    free(p->first_pos);
    for (size_t i = 0; p->fz_k && i < p->n; i++)
        if (p->fz_k[i] && p->fz_k[i]->release && p->fz_state[i])
            p->fz_k[i]->release(p->fz_state[i]);
    free(p->fz_k);
    free(p->fz_state);
    for (size_t i = 0; p->fz_in && i < p->n; i++)
        free(p->fz_in[i]);
    free(p->fz_in);
    free(p);
}

/* the node of g that (directly or through a subgraph) holds node n */
static const pare_node *top_node(const pare_graph *g, const pare_node *n)
{
    while (n && n->graph != g)
        n = n->graph->owner;
    return n;
}

static bool has_subgraph(const pare_node *n)
{
    for (size_t a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].g || (n->attrs[a].graphs && n->attrs[a].n))
            return true;
    return false;
}

/* "node 'x' (Op, domain 'd', opset N)" */
static const char *node_desc(const pare_node *n, int64_t opset, char *buf, size_t size)
{
    char id[32];
    if (!(n->name && *n->name))
        snprintf(id, sizeof id, "#%zu", n->id);
    snprintf(buf, size, "node %s%s%s (%s, domain '%s', opset %lld)",
             n->name && *n->name ? "'" : "", n->name && *n->name ? n->name : id,
             n->name && *n->name ? "'" : "", n->op_type, n->domain[0] ? n->domain : "ai.onnx",
             (long long)opset);
    return buf;
}

/* input dtypes as the registry sees them: -1 omitted, 0 unknown */
static int *node_dtypes(const pare_node *n, int *buf, size_t cap)
{
    int *d = n->n_inputs <= cap ? buf : malloc(n->n_inputs * sizeof *d);
    if (!d)
        return NULL;
    for (size_t i = 0; i < n->n_inputs; i++)
        d[i] = n->inputs[i] ? n->inputs[i]->dtype : -1;
    return d;
}

/* Places node i of p on a backend and picks its kernel. */
static pare_status place_node(pare_session *s, gplan *p, size_t i, bool main_graph,
                              pare_error *err)
{
    pare_node *n = p->order[i];
    int64_t opset = p->opset[i];
    int dbuf[16];
    int *dts = node_dtypes(n, dbuf, 16);
    if (!dts)
        return PARE_NOMEM(err);
    char why_dev[256] = "", why_cpu[256] = "", desc[400];
    const pare_kernel *k = NULL;
    uint8_t b = 0;
    if (main_graph && s->be[1]) {
        if (has_subgraph(n))
            snprintf(why_dev, sizeof why_dev, "nodes with subgraphs run on the cpu");
        else
            k = s->be[1]->supports(s->be[1], n, opset, dts, n->n_inputs, why_dev,
                                   sizeof why_dev);
        if (k)
            b = 1;
        else if (!why_dev[0])
            snprintf(why_dev, sizeof why_dev, "not supported");
    }
    if (!k)
        k = s->be[0]->supports(s->be[0], n, opset, dts, n->n_inputs, why_cpu, sizeof why_cpu);
    if (dts != dbuf)
        free(dts);
    if (!k) {
        node_desc(n, opset, desc, sizeof desc);
        if (why_dev[0])
            return pare_error_set(err, PARE_ERR_UNSUPPORTED, "%s: %s on cpu (%s: %s)", desc,
                                  why_cpu[0] ? why_cpu : "no kernel", s->be[1]->name, why_dev);
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "%s: %s on cpu", desc,
                              why_cpu[0] ? why_cpu : "no kernel");
    }
    p->k[i] = k;
    if (p->nbe) {
        p->nbe[i] = b;
        if (b == 0 && why_dev[0] && !(p->why[i] = strdup(why_dev)))
            return PARE_NOMEM(err);
    }
    if (k->init) {
        char lbl[300];
        pare_status st = k->init(n, opset, &p->state[i], err);
        if (st)
            return pare_error_prefix(err, "node %s", pare_node_label(n, lbl, sizeof lbl));
    }
    return PARE_OK;
}

/* Homes, mirrors and border copies of a main plan with a device backend. */
/* uploads initializer value id to the plan's device as its cmirror */
static pare_status upload_init(gplan *p, size_t id, pare_error *err)
{
    const pare_value *v = p->g->values[id];
    pare_tensor *t = v->init;
    void *mem;
    pare_status st;
    if (t->dtype == PARE_DT_STRING)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED,
                              "initializer '%s': strings cannot move to %s", v->name, p->dev->name);
    if ((st = p->dev->alloc(p->dev, p->dev_ctx, t->nbytes ? t->nbytes : 1, &mem, err)))
        return st;
    if ((st = p->dev->to_device(p->dev, p->dev_ctx, mem, t->data, t->nbytes, err)) ||
        (st = pare_tensor_wrap(v->name, t->dtype, t->rank, t->dims, mem, t->nbytes,
                               &p->cmirror[id], err))) {
        p->dev->free(p->dev, p->dev_ctx, mem);
        return st;
    }
    return PARE_OK;
}

static size_t node_pos(const pare_node *n);

/* After fusion: initializers uploaded for nodes that were all absorbed (a
 * QDQ-fused node's weight DequantizeLinear: the fused kernel keeps its own
 * packed copy) leave the device. A run with an observer runs the absorbed
 * nodes, so it uploads them again first (restore_inits). */
static pare_status drop_unread_inits(gplan *p, pare_error *err)
{
    if (!p->multi || !p->fused_into)
        return PARE_OK;
    for (size_t id = 0; id < p->g->n_values; id++) {
        const pare_value *v = p->g->values[id];
        if (!p->cmirror[id] || v->is_output)
            continue;
        bool absorbed = v->n_uses > 0;
        for (size_t u = 0; u < v->n_uses && absorbed; u++) {
            const pare_node *n = v->uses[u].node;
            absorbed = n->graph == p->g && p->fused_into[node_pos(n)] != SIZE_MAX;
        }
        if (!absorbed)
            continue;
        if (!p->cdropped && !(p->cdropped = calloc(p->g->n_values, 1)))
            return PARE_NOMEM(err);
        p->dev->free(p->dev, p->dev_ctx, p->cmirror[id]->data);
        pare_tensor_free(p->cmirror[id]);
        p->cmirror[id] = NULL;
        p->cdropped[id] = 1;
    }
    return PARE_OK;
}

/* the initializers drop_unread_inits released, on the device again (kept
 * from then on) */
static pare_status restore_inits(gplan *p, pare_error *err)
{
    for (size_t id = 0; p->cdropped && id < p->g->n_values; id++) {
        if (!p->cdropped[id])
            continue;
        pare_status st = upload_init(p, id, err);
        if (st)
            return st;
        p->cdropped[id] = 0;
    }
    free(p->cdropped);
    p->cdropped = NULL;
    return PARE_OK;
}

static pare_status plan_copies(pare_session *s, gplan *p, pare_error *err)
{
    const pare_graph *g = p->g;
    size_t nv = g->n_values ? g->n_values : 1;
    p->multi = false;
    for (size_t i = 0; i < p->n; i++)
        if (p->nbe[i])
            p->multi = true;
    if (!p->multi)
        return PARE_OK;
    p->vbe = calloc(nv, 1);
    p->mirror_pos = malloc(nv * sizeof *p->mirror_pos);
    p->copies = malloc(nv * sizeof *p->copies);
    p->copy_at = calloc(p->n + 2, sizeof *p->copy_at);
    p->cmirror = calloc(nv, sizeof *p->cmirror);
    if (!p->vbe || !p->mirror_pos || !p->copies || !p->copy_at || !p->cmirror)
        return PARE_NOMEM(err);
    p->dev = s->be[1];
    p->dev_ctx = s->bctx[1];
    for (size_t i = 0; i < p->n; i++)
        for (size_t o = 0; o < p->order[i]->n_outputs; o++)
            if (p->order[i]->outputs[o])
                p->vbe[p->order[i]->outputs[o]->id] = p->nbe[i];
    size_t n_copies = 0;
    for (size_t id = 0; id < g->n_values; id++) {
        pare_value *v = g->values[id];
        size_t first = SIZE_MAX;
        for (size_t u = 0; u < v->n_uses; u++) {
            const pare_node *t = top_node(g, v->uses[u].node);
            if (!t)
                continue;
            size_t pos = (size_t)(uintptr_t)t->user;
            if (p->nbe[pos] != p->vbe[id] && pos < first)
                first = pos;
        }
        if (first == SIZE_MAX && v->is_output && p->vbe[id] != 0)
            first = p->n; /* graph outputs come home after the last node */
        p->mirror_pos[id] = first;
        if (first == SIZE_MAX)
            continue;
        if (v->init && !v->producer && !v->is_input) {
            /* an initializer read on the device: uploaded once, now */
            pare_status st = upload_init(p, id, err);
            if (st)
                return st;
            continue;
        }
        p->copies[n_copies].vid = id;
        p->copies[n_copies].to = (uint8_t)(1 - p->vbe[id]);
        n_copies++;
        p->copy_at[first + 1]++;
    }
    /* counts to starts; copies sorted by position (stable by value id) */
    for (size_t i = 1; i < p->n + 2; i++)
        p->copy_at[i] += p->copy_at[i - 1];
    pcopy *sorted = malloc((n_copies ? n_copies : 1) * sizeof *sorted);
    size_t *fill = malloc((p->n + 1) * sizeof *fill);
    if (!sorted || !fill) {
        free(sorted);
        free(fill);
        return PARE_NOMEM(err);
    }
    memcpy(fill, p->copy_at, (p->n + 1) * sizeof *fill);
    for (size_t c = 0; c < n_copies; c++)
        sorted[fill[p->mirror_pos[p->copies[c].vid]]++] = p->copies[c];
    free(fill);
    free(p->copies);
    p->copies = sorted;
    return PARE_OK;
}

/* ---- fusion ---- */

/* the one node of g reading v, when v is an intermediate nothing else
 * (no other node, no subgraph, no caller) needs */
static pare_node *sole_reader(const gplan *p, const pare_value *v)
{
    if (!v || v->graph != p->g || v->is_output || v->is_input || v->n_uses != 1 ||
        v->uses[0].node->graph != p->g)
        return NULL;
    return v->uses[0].node;
}

static bool is_op(const pare_node *n, const char *op)
{
    return !n->domain[0] && !strcmp(n->op_type, op);
}

/* a constant float32 scalar (an initializer nothing computes), or NAN */
static float const_scalar(const pare_value *v, float dflt)
{
    if (!v)
        return dflt;
    const pare_tensor *t = v->init;
    if (!t || v->producer || v->is_input || t->dtype != PARE_DT_FLOAT || pare_tensor_numel(t) != 1)
        return NAN;
    return *(const float *)t->data;
}

static bool is_const(const pare_value *v)
{
    return v && v->init && !v->producer && !v->is_input;
}

static bool same_shape(const pare_value *a, const pare_value *b)
{
    if (a->shape.rank < 0 || a->shape.rank != b->shape.rank)
        return false;
    for (int d = 0; d < a->shape.rank; d++) {
        const pare_dim *x = &a->shape.dims[d], *y = &b->shape.dims[d];
        if (x->value >= 0 ? x->value != y->value
                          : y->value >= 0 || !x->param || !y->param || strcmp(x->param, y->param))
            return false;
    }
    return true;
}

/* Reads an activation node into f; false when c is none we fuse. */
static bool fuse_act(const pare_node *c, int64_t opset, pare_kfuse *f)
{
    if (c->n_outputs != 1 || !c->outputs[0])
        return false;
    f->act_a = f->act_b = 0;
    if (is_op(c, "Relu")) {
        f->act = PARE_KACT_RELU;
    } else if (is_op(c, "Sigmoid")) {
        f->act = PARE_KACT_SIGMOID;
    } else if (is_op(c, "Tanh")) {
        f->act = PARE_KACT_TANH;
    } else if (is_op(c, "HardSwish")) {
        f->act = PARE_KACT_HARDSWISH;
    } else if (is_op(c, "LeakyRelu")) {
        f->act = PARE_KACT_LEAKY_RELU;
        f->act_a = pare_node_attr_float(c, "alpha", 0.01f);
    } else if (is_op(c, "HardSigmoid")) {
        f->act = PARE_KACT_HARDSIGMOID;
        f->act_a = pare_node_attr_float(c, "alpha", 0.2f);
        f->act_b = pare_node_attr_float(c, "beta", 0.5f);
    } else if (is_op(c, "Clip")) {
        f->act = PARE_KACT_CLIP;
        if (opset < 11) {
            f->act_a = pare_node_attr_float(c, "min", -3.402823e+38f);
            f->act_b = pare_node_attr_float(c, "max", 3.402823e+38f);
        } else {
            f->act_a = const_scalar(c->n_inputs > 1 ? c->inputs[1] : NULL, -INFINITY);
            f->act_b = const_scalar(c->n_inputs > 2 ? c->inputs[2] : NULL, INFINITY);
            if (isnan(f->act_a) || isnan(f->act_b))
                return false;
        }
    } else {
        return false;
    }
    return true;
}

static size_t node_pos(const pare_node *n)
{
    return (size_t)(uintptr_t)n->user;
}

/* the float32 data of v when it is a constant of exactly m elements: an
 * initializer, or one seen through Unsqueeze/Reshape/Squeeze/Identity */
/* m constant values of v as floats: float32 data in place; float16 and
 * bfloat16 (device plans) converted into buf (m floats), else NULL */
static const float *const_vec(const pare_value *v, int64_t m, float *buf)
{
    if (v && !is_const(v) && v->producer && v->producer->n_inputs >= 1 &&
        (is_op(v->producer, "Unsqueeze") || is_op(v->producer, "Reshape") ||
         is_op(v->producer, "Squeeze") || is_op(v->producer, "Identity")))
        v = v->producer->inputs[0];
    if (!is_const(v) || pare_tensor_numel(v->init) != (uint64_t)m)
        return NULL;
    const pare_tensor *t = v->init;
    if (t->dtype == PARE_DT_FLOAT)
        return t->data;
    if (!buf || (t->dtype != PARE_DT_FLOAT16 && t->dtype != PARE_DT_BFLOAT16))
        return NULL;
    const uint16_t *h = t->data;
    for (int64_t i = 0; i < m; i++)
        buf[i] = t->dtype == PARE_DT_FLOAT16 ? pare_f16_to_f32(h[i]) : pare_bf16_to_f32(h[i]);
    return buf;
}

/* per-channel constant data of v for an output of rank r with m channels
 * (axis 1): v's shape broadcasts to [1, m, 1, ...] without growing it */
static const float *chan_const(const pare_value *v, int64_t m, int r, float *buf)
{
    if (!v || v->shape.rank < r - 1 || v->shape.rank > r)
        return NULL;
    for (int j = 0; j < v->shape.rank; j++)
        if (v->shape.dims[j].value != (j + r - v->shape.rank == 1 ? m : 1))
            return NULL;
    return const_vec(v, m, buf);
}

/* Asks the kernel of node i (through its device backend's fuse hook when
 * it runs off the CPU) for the fused form f; when it accepts, the na
 * absorbed nodes are skipped and node i writes out (reading res as its
 * residual). A refusal leaves the nodes as they are. */
static pare_status fuse_commit(gplan *p, size_t i, const pare_kfuse *f, const size_t *absorbed,
                               size_t na, pare_value *out, const pare_value *res,
                               pare_error *err)
{
    if (!na)
        return PARE_OK;
    pare_node *n = p->order[i];
    pare_error ferr;
    pare_status st;
    if (p->multi && p->nbe[i])
        st = p->dev->fuse ? p->dev->fuse(p->dev, p->dev_ctx, p->k[i], n, p->state[i], f, &ferr)
                          : PARE_ERR_UNSUPPORTED;
    else
        st = pare_kernel_fuse(p->k[i], n, p->state[i], f, &ferr);
    if (st == PARE_ERR_NOMEM)
        return PARE_NOMEM(err);
    if (st)
        return PARE_OK; /* refused: the nodes run as they are */
    for (size_t a = 0; a < na; a++)
        p->fused_into[absorbed[a]] = i;
    p->n_fused += na;
    p->fz_out[i] = out;
    p->fz_res[i] = res;
    p->first_pos[out->id] = i;
    return PARE_OK;
}

/* device plans: node c runs on the backend of position i with no border
 * copy placed before it (the copies before an absorbed node do not run) */
static bool same_device(const gplan *p, size_t i, const pare_node *c)
{
    if (!p->multi)
        return true;
    size_t pos = node_pos(c);
    return p->nbe[pos] == p->nbe[i] && p->copy_at[pos] == p->copy_at[pos + 1];
}

/* ---- MatMul fusion ---- */

/* constant float data of v broadcasting along the last axis of an output of
 * rank r with n columns: shape [..., n] with every other dim 1 (in place), or
 * one value of rank <= r (repeated n times into buf) */
static const float *last_const(const pare_value *v, int64_t n, int r, float *buf)
{
    if (!v || v->shape.rank < 0 || v->shape.rank > r)
        return NULL;
    bool one = true;
    for (int j = 0; j < v->shape.rank; j++) {
        if (v->shape.dims[j].value != 1)
            one = false;
        if (j < v->shape.rank - 1 && v->shape.dims[j].value != 1)
            return NULL;
    }
    if (!one)
        return v->shape.dims[v->shape.rank - 1].value == n ? const_vec(v, n, NULL) : NULL;
    const float *x = const_vec(v, 1, NULL);
    if (!x)
        return NULL;
    for (int64_t j = 0; j < n; j++)
        buf[j] = *x;
    return buf;
}

/* a constant float32 scalar operand that does not raise rank r (an
 * initializer or a Constant node's value), or NAN */
static float scalar_in(const pare_value *v, int r)
{
    if (!v || v->shape.rank < 0 || v->shape.rank > r)
        return NAN;
    const pare_node *c = v->producer;
    if (c && is_op(c, "Constant") && c->n_outputs == 1) {
        const pare_attr *a = pare_node_attr(c, "value");
        if (a && a->type == PARE_ATTR_TENSOR && a->t && a->t->dtype == PARE_DT_FLOAT &&
            pare_tensor_numel(a->t) == 1)
            return *(const float *)a->t->data;
        a = pare_node_attr(c, "value_float");
        return a && a->type == PARE_ATTR_FLOAT ? a->f : NAN;
    }
    return const_scalar(v, NAN);
}

/* the operand of two-input node c that is not v */
static const pare_value *other_in(const pare_node *c, const pare_value *v)
{
    return c->inputs[0] == v ? c->inputs[1] : c->inputs[0];
}

static bool f32_node(const gplan *p, size_t i, const pare_node *c, int nin)
{
    return c && (int)c->n_inputs == nin && c->n_outputs == 1 && c->outputs[0] &&
           c->outputs[0]->dtype == PARE_DT_FLOAT && same_device(p, i, c);
}

/* GELU of y by the nodes after it: one Gelu (approximate "none"), or
 *     Mul(y, Add(Erf(Div(y, sqrt 2)), 1)) -> Mul by 0.5
 * (operands of Add/Mul either way round, Mul by 1/sqrt 2 for the Div); adds
 * the nodes to absorbed and returns the GELU's value, or NULL */
static pare_value *gelu_chain(const gplan *p, size_t i, const pare_value *y, int r,
                              size_t *absorbed, size_t *na)
{
    if (!y || y->graph != p->g || y->is_output || y->is_input)
        return NULL;
    if (y->n_uses == 1) {
        pare_node *g = sole_reader(p, y);
        if (g && is_op(g, "Gelu") && f32_node(p, i, g, 1) &&
            !strcmp(pare_node_attr_string(g, "approximate", "none"), "none")) {
            absorbed[(*na)++] = node_pos(g);
            return g->outputs[0];
        }
        return NULL;
    }
    if (y->n_uses != 2)
        return NULL;
    for (int u = 0; u < 2; u++) {
        pare_node *d = y->uses[u].node, *m = y->uses[1 - u].node;
        if (d == m || d->graph != p->g || m->graph != p->g || !f32_node(p, i, d, 2))
            continue;
        float sv = scalar_in(other_in(d, y), r);
        bool div_ok = is_op(d, "Div") && d->inputs[0] == y && fabsf(sv - 1.41421356f) < 1e-6f;
        bool mul_ok = is_op(d, "Mul") && (d->inputs[0] == y) != (d->inputs[1] == y) &&
                      fabsf(sv - 0.707106781f) < 1e-6f;
        if (!div_ok && !mul_ok)
            continue;
        pare_node *e = sole_reader(p, d->outputs[0]);
        if (!e || !is_op(e, "Erf") || !f32_node(p, i, e, 1))
            continue;
        pare_node *a = sole_reader(p, e->outputs[0]);
        if (!a || !is_op(a, "Add") || !f32_node(p, i, a, 2) ||
            (a->inputs[0] == e->outputs[0]) == (a->inputs[1] == e->outputs[0]) ||
            scalar_in(other_in(a, e->outputs[0]), r) != 1.0f)
            continue;
        if (sole_reader(p, a->outputs[0]) != m || !is_op(m, "Mul") || !f32_node(p, i, m, 2) ||
            other_in(m, a->outputs[0]) != y || m->inputs[0] == m->inputs[1])
            continue;
        pare_node *h = sole_reader(p, m->outputs[0]);
        if (!h || !is_op(h, "Mul") || !f32_node(p, i, h, 2) ||
            (h->inputs[0] == m->outputs[0]) == (h->inputs[1] == m->outputs[0]) ||
            scalar_in(other_in(h, m->outputs[0]), r) != 0.5f)
            continue;
        const pare_node *all[5] = {d, e, a, m, h};
        for (int k = 0; k < 5; k++)
            absorbed[(*na)++] = node_pos(all[k]);
        return h->outputs[0];
    }
    return NULL;
}

/* float32 MatMul [-> Add/Mul/Div by a constant along the last axis]...
 * [-> Add/Sum(residual)] [-> activation or GELU]: the kernel absorbs what
 * follows it (on the CPU; a device's MatMul runs as it is). */
static pare_status fuse_matmul(gplan *p, size_t i, pare_error *err)
{
    pare_node *n = p->order[i];
    pare_value *cur = n->outputs[0];
    int r = cur->shape.rank;
    if ((p->multi && p->nbe[i]) || n->n_inputs != 2 || !n->inputs[0] || !n->inputs[1] ||
        cur->dtype != PARE_DT_FLOAT || r < 2 || n->inputs[1]->shape.rank < 2 ||
        cur->shape.dims[r - 1].value == 0)
        return PARE_OK;
    /* columns not known at plan time: scalar constants only, no shift */
    bool n_known = cur->shape.dims[r - 1].value > 0;
    int64_t N = n_known ? cur->shape.dims[r - 1].value : 1;
    double *sc = malloc((size_t)N * sizeof *sc), *sh = malloc((size_t)N * sizeof *sh);
    float *buf = malloc((size_t)N * sizeof *buf);
    if (!sc || !sh || !buf) {
        free(sc);
        free(sh);
        free(buf);
        return PARE_NOMEM(err);
    }
    for (int64_t j = 0; j < N; j++) {
        sc[j] = 1.0;
        sh[j] = 0.0;
    }
    pare_kfuse f;
    memset(&f, 0, sizeof f);
    size_t absorbed[64], na = 0;
    const pare_value *res = NULL;
    pare_node *c = sole_reader(p, cur);
    while (c && na < 50 && f32_node(p, i, c, 2) &&
           (c->inputs[0] == cur) != (c->inputs[1] == cur)) {
        bool add = is_op(c, "Add"), mul = is_op(c, "Mul"),
             div = is_op(c, "Div") && c->inputs[0] == cur;
        const float *v = add || mul || div ? last_const(other_in(c, cur), N, r, buf) : NULL;
        if (!v)
            break;
        for (int64_t j = 0; j < N; j++) {
            if (add) {
                sh[j] += v[j];
            } else if (mul) {
                sc[j] *= v[j];
                sh[j] *= v[j];
            } else {
                sc[j] /= v[j];
                sh[j] /= v[j];
            }
        }
        absorbed[na++] = node_pos(c);
        cur = c->outputs[0];
        c = sole_reader(p, cur);
    }
    if (na && !n_known && sh[0] != 0.0) {
        na = 0;
        c = NULL;
    }
    if (na) {
        f.scale = sc;
        f.shift = sh;
        f.n_ch = N;
    }
    if (c && (is_op(c, "Add") || is_op(c, "Sum")) && f32_node(p, i, c, 2)) {
        const pare_value *o = other_in(c, cur);
        if (o && o != cur && o->graph == p->g && o->dtype == PARE_DT_FLOAT &&
            (!o->producer || node_pos(o->producer) < i) && same_shape(o, c->outputs[0]) &&
            same_shape(cur, c->outputs[0])) {
            f.residual = true;
            res = o;
            absorbed[na++] = node_pos(c);
            cur = c->outputs[0];
            c = sole_reader(p, cur);
        }
    }
    pare_value *g;
    if (c && c->inputs[0] == cur && same_device(p, i, c) &&
        fuse_act(c, p->opset[node_pos(c)], &f)) {
        absorbed[na++] = node_pos(c);
        cur = c->outputs[0];
    } else if ((g = gelu_chain(p, i, cur, r, absorbed, &na))) {
        f.act = PARE_KACT_GELU;
        cur = g;
    }
    pare_status st = fuse_commit(p, i, &f, absorbed, na, cur, res, err);
    free(sc);
    free(sh);
    free(buf);
    return st;
}

/* Mul / Add nodes after *cur by per-channel constants (M channels, rank
 * r), each the sole reader of the one before and on node i's backend,
 * composed into sc and sh (y = x * sc + sh, M entries each, from 1 and 0):
 * their positions go to absorbed (at most max in all), *cur becomes the
 * last one's output; returns the reader of *cur after them. */
static pare_node *chan_affine_chain(gplan *p, size_t i, pare_value **cur, int64_t M, int r,
                                    double *sc, double *sh, size_t *absorbed, size_t *na,
                                    size_t max)
{
    pare_node *c = sole_reader(p, *cur);
    while (c && *na < max && f32_node(p, i, c, 2) &&
           (c->inputs[0] == *cur) != (c->inputs[1] == *cur)) {
        bool mul = is_op(c, "Mul");
        const float *v = mul || is_op(c, "Add") ? chan_const(other_in(c, *cur), M, r, NULL) : NULL;
        if (!v)
            break;
        for (int64_t m = 0; m < M; m++) {
            if (mul) {
                sc[m] *= v[m];
                sh[m] *= v[m];
            } else {
                sh[m] += v[m];
            }
        }
        absorbed[(*na)++] = node_pos(c);
        *cur = c->outputs[0];
        c = sole_reader(p, *cur);
    }
    return c;
}

/* inference BatchNormalization (float32, constant parameters) [-> Mul/Add
 * by a per-channel constant]... [-> Relu/Clip/LeakyRelu], as DenseNet's
 * pre-activations after a Concat (no Conv before them to absorb them): the
 * BN kernel absorbs what follows it (on the CPU) */
static pare_status fuse_bn(gplan *p, size_t i, pare_error *err)
{
    pare_node *n = p->order[i];
    pare_value *cur = n->outputs[0];
    int r = cur->shape.rank;
    const pare_value *sv = n->n_inputs == 5 ? n->inputs[1] : NULL;
    if ((p->multi && p->nbe[i]) || !sv || !is_const(sv) || cur->dtype != PARE_DT_FLOAT || r < 2 ||
        pare_node_attr_int(n, "training_mode", 0) != 0 ||
        (p->opset[i] < 7 && !pare_node_attr_int(n, "is_test", 0)))
        return PARE_OK;
    int64_t M = (int64_t)pare_tensor_numel(sv->init);
    if (M <= 0 || cur->shape.dims[1].value != M)
        return PARE_OK;
    double *sc = malloc((size_t)M * sizeof *sc), *sh = malloc((size_t)M * sizeof *sh);
    if (!sc || !sh) {
        free(sc);
        free(sh);
        return PARE_NOMEM(err);
    }
    for (int64_t m = 0; m < M; m++) {
        sc[m] = 1.0;
        sh[m] = 0.0;
    }
    pare_kfuse f;
    memset(&f, 0, sizeof f);
    size_t absorbed[64], na = 0;
    pare_node *c = chan_affine_chain(p, i, &cur, M, r, sc, sh, absorbed, &na, 60);
    f.scale = sc;
    f.shift = sh;
    f.n_ch = M;
    if (c && c->inputs[0] == cur && same_device(p, i, c) &&
        fuse_act(c, p->opset[node_pos(c)], &f) &&
        (f.act == PARE_KACT_RELU || f.act == PARE_KACT_CLIP || f.act == PARE_KACT_LEAKY_RELU)) {
        absorbed[na++] = node_pos(c);
        cur = c->outputs[0];
    } else {
        f.act = PARE_KACT_NONE;
    }
    pare_status st = fuse_commit(p, i, &f, absorbed, na, cur, NULL, err);
    free(sc);
    free(sh);
    return st;
}

/* Conv [-> BatchNormalization | Mul/Add by a per-channel constant]...
 * [-> Add/Sum(residual)] [-> activation]: asks the kernel of node i to
 * absorb what follows it. */
static pare_status fuse_node(gplan *p, size_t i, pare_error *err)
{
    pare_node *n = p->order[i];
    if (is_op(n, "BatchNormalization") && n->n_outputs == 1 && n->outputs[0])
        return fuse_bn(p, i, err);
    if (is_op(n, "MatMul") && n->n_outputs == 1 && n->outputs[0])
        return fuse_matmul(p, i, err);
    int dt = n->n_outputs == 1 && n->outputs[0] ? n->outputs[0]->dtype : PARE_DT_UNDEFINED;
    bool dev = p->multi && p->nbe[i];
    /* the CPU's fused Conv is float32; a device's also float16/bfloat16 */
    if (!is_op(n, "Conv") || n->n_outputs != 1 || !n->outputs[0] ||
        !(dt == PARE_DT_FLOAT || (dev && (dt == PARE_DT_FLOAT16 || dt == PARE_DT_BFLOAT16))) ||
        n->n_inputs < 2 || !n->inputs[1])
        return PARE_OK;
    pare_kfuse f;
    memset(&f, 0, sizeof f);
    size_t absorbed[64], na = 0;
    const pare_value *res = NULL;
    pare_value *cur = n->outputs[0];
    pare_node *c = sole_reader(p, cur);
    /* the per-channel affine: needs constant weights [M, ...] */
    const pare_tensor *w = is_const(n->inputs[1]) ? n->inputs[1]->init : NULL;
    int64_t M = w && w->rank >= 3 && w->rank <= 5 ? w->dims[0] : 0;
    double *sc = NULL, *sh = NULL;
    float *cv = NULL; /* 4 x M floats: half-type parameters as float */
    if (M > 0) {
        sc = malloc((size_t)M * sizeof *sc);
        sh = malloc((size_t)M * sizeof *sh);
        cv = malloc(4 * (size_t)M * sizeof *cv);
        if (!sc || !sh || !cv) {
            free(sc);
            free(sh);
            free(cv);
            return PARE_NOMEM(err);
        }
        for (int64_t m = 0; m < M; m++) {
            sc[m] = 1.0;
            sh[m] = 0.0;
        }
    }
    while (M > 0 && c && na < 60 && c->n_outputs == 1 && c->outputs[0] && same_device(p, i, c)) {
        const float *v1, *v2, *v3, *v4;
        float *b1 = dev ? cv : NULL, *b2 = dev ? cv + M : NULL, *b3 = dev ? cv + 2 * M : NULL,
              *b4 = dev ? cv + 3 * M : NULL;
        if (is_op(c, "BatchNormalization") && c->n_inputs == 5 && c->inputs[0] == cur &&
            pare_node_attr_int(c, "training_mode", 0) == 0 &&
            pare_node_attr_int(c, "spatial", 1) == 1 &&
            (p->opset[node_pos(c)] >= 7 || pare_node_attr_int(c, "is_test", 0)) &&
            (v1 = const_vec(c->inputs[1], M, b1)) && (v2 = const_vec(c->inputs[2], M, b2)) &&
            (v3 = const_vec(c->inputs[3], M, b3)) && (v4 = const_vec(c->inputs[4], M, b4))) {
            double eps = pare_node_attr_float(c, "epsilon", 1e-5f);
            for (int64_t m = 0; m < M; m++) {
                double k = (double)v1[m] / sqrt((double)v4[m] + eps);
                sc[m] *= k;
                sh[m] = (sh[m] - v3[m]) * k + v2[m];
            }
        } else if ((is_op(c, "Mul") || is_op(c, "Add")) && c->n_inputs == 2 &&
                   (c->inputs[0] == cur) != (c->inputs[1] == cur) &&
                   (v1 = chan_const(c->inputs[c->inputs[0] == cur], M, w->rank, b1))) {
            bool mul = is_op(c, "Mul");
            for (int64_t m = 0; m < M; m++) {
                if (mul) {
                    sc[m] *= v1[m];
                    sh[m] *= v1[m];
                } else {
                    sh[m] += v1[m];
                }
            }
        } else {
            break;
        }
        absorbed[na++] = node_pos(c);
        cur = c->outputs[0];
        c = sole_reader(p, cur);
    }
    if (na) {
        f.scale = sc;
        f.shift = sh;
        f.n_ch = M;
    }
    if (c && (is_op(c, "Add") || is_op(c, "Sum")) && c->n_inputs == 2 && c->n_outputs == 1 &&
        c->outputs[0] && same_device(p, i, c)) {
        const pare_value *o = c->inputs[0] == cur ? c->inputs[1] : c->inputs[0];
        /* the residual must exist when the conv runs, with the sum's shape
         * (and, in a device plan, live where the conv runs) */
        if (o && o != cur && o->graph == p->g && o->dtype == dt &&
            (!o->producer || node_pos(o->producer) < i) && same_shape(o, c->outputs[0]) &&
            same_shape(cur, c->outputs[0]) && (!p->multi || p->vbe[o->id] == p->nbe[i])) {
            f.residual = true;
            res = o;
            absorbed[na++] = node_pos(c);
            cur = c->outputs[0];
            c = sole_reader(p, cur);
        }
    }
    if (c && c->inputs[0] == cur && same_device(p, i, c) && fuse_act(c, p->opset[node_pos(c)], &f)) {
        absorbed[na++] = node_pos(c);
        cur = c->outputs[0];
    }
    pare_status st = fuse_commit(p, i, &f, absorbed, na, cur, res, err);
    free(sc);
    free(sh);
    free(cv);
    return st;
}

/* ---- QDQ fusion ---- */

/* the DequantizeLinear (ai.onnx, per tensor or per axis) producing v, whose
 * parameters (and data, when all_const) are constants, on the backend of
 * position i; with constant data with no copy before it (a copy before one
 * of quantized data, of that data to its backend, still runs when the
 * DequantizeLinear is absorbed); else NULL */
static const pare_node *qdq_dq(const gplan *p, size_t i, const pare_value *v, bool all_const)
{
    const pare_node *d = v ? v->producer : NULL;
    if (!d || d->graph != p->g || !is_op(d, "DequantizeLinear") || d->n_inputs < 2 ||
        d->n_outputs != 1 || !is_const(d->inputs[1]) ||
        (d->n_inputs > 2 && d->inputs[2] && !is_const(d->inputs[2])) ||
        (all_const && !is_const(d->inputs[0])) || !d->inputs[0] ||
        pare_node_attr_int(d, "block_size", 0) != 0 || v->dtype != PARE_DT_FLOAT ||
        (all_const ? !same_device(p, i, d) : p->multi && p->nbe[node_pos(d)] != p->nbe[i]))
        return NULL;
    return d;
}

static const pare_tensor *qdq_in(const pare_node *n, size_t k)
{
    return n->n_inputs > k && n->inputs[k] ? n->inputs[k]->init : NULL;
}

/* Records a QDQ-fused node i: it runs kernel k with state (NULL: its own)
 * reading remap[j] (nr entries, NULL: its own input j) and writes out (the
 * QuantizeLinear's output, or a float result); the na nodes of absorbed and the
 * DequantizeLinears of dqs that only it reads are skipped. Nonzero only
 * when out of memory (state is then released). */
static pare_status qdq_commit(gplan *p, size_t i, const pare_kernel *k, void *state,
                              const pare_value *const *remap, size_t nr,
                              const pare_node *const *dqs, size_t nd, pare_value *out,
                              const size_t *absorbed, size_t na)
{
    pare_node *n = p->order[i];
    const pare_value **in = calloc(n->n_inputs ? n->n_inputs : 1, sizeof *in);
    if (!in) {
        if (state && k->release)
            k->release(state);
        return PARE_ERR_NOMEM;
    }
    for (size_t j = 0; j < nr && j < n->n_inputs; j++)
        in[j] = remap[j];
    for (size_t a = 0; a < na; a++)
        p->fused_into[absorbed[a]] = i;
    p->n_fused += na;
    for (size_t j = 0; j < nd; j++) {
        bool seen = false;
        for (size_t t = 0; t < j; t++)
            seen |= dqs[t] == dqs[j];
        if (dqs[j] && !seen && sole_reader(p, dqs[j]->outputs[0]) == n) {
            p->fused_into[node_pos(dqs[j])] = i;
            p->n_fused++;
        }
    }
    p->fz_out[i] = out;
    p->fz_res[i] = NULL;
    p->first_pos[out->id] = i;
    p->fz_k[i] = k;
    p->fz_state[i] = state;
    p->fz_in[i] = in;
    /* what it reads lives until it runs */
    for (size_t j = 0; j < n->n_inputs; j++)
        if (in[j] && (p->last_use[in[j]->id] == SIZE_MAX || p->last_use[in[j]->id] < i))
            p->last_use[in[j]->id] = i;
    return PARE_OK;
}

/* whether v is on backend be by position i: its home, or a copy there
 * made before i */
static bool lives_on(const gplan *p, const pare_value *v, uint8_t be, size_t i)
{
    return !p->multi || p->vbe[v->id] == be ||
           (p->mirror_pos[v->id] != SIZE_MAX && p->mirror_pos[v->id] < i);
}

/* DequantizeLinear(x_q), DequantizeLinear(w_q) -> Conv / MatMul / Gemm
 * [-> Relu] -> QuantizeLinear at position i: node i runs the CPU's integer
 * kernel (pare_kernel_qdq), or on a device its backend's (fuse_qdq),
 * reading x_q and writing the QuantizeLinear's output; the Relu, the
 * QuantizeLinear and the DequantizeLinears only it reads are absorbed.
 * *done when it fused. */
static pare_status fuse_qdq(gplan *p, size_t i, bool *done, pare_error *err)
{
    *done = false;
    pare_node *n = p->order[i];
    bool add = (is_op(n, "Add") || is_op(n, "Sum")) && n->n_inputs == 2;
    /* BatchNormalization in inference form with constant parameters */
    bool bn = is_op(n, "BatchNormalization") && n->n_inputs == 5 &&
              pare_node_attr_int(n, "training_mode", 0) == 0;
    for (size_t j = 1; bn && j < 5; j++)
        bn = n->inputs[j] && is_const(n->inputs[j]) && n->inputs[j]->init->dtype == PARE_DT_FLOAT;
    if (!(is_op(n, "Conv") || is_op(n, "MatMul") || is_op(n, "Gemm") || add || bn) ||
        n->n_inputs < 2 || n->n_outputs != 1 || !n->outputs[0])
        return PARE_OK;
    /* on a device: when its backend has fused kernels of its own */
    uint8_t be = p->multi ? p->nbe[i] : 0;
    if (be && (!p->dev || !p->dev->fuse_qdq))
        return PARE_OK;
    const pare_node *dx = qdq_dq(p, i, n->inputs[0], false),
                    *dw = bn ? NULL : qdq_dq(p, i, n->inputs[1], !add), *db = NULL;
    if (!dx || (!dw && !bn) || (dx == dw && !add))
        return PARE_OK;
    const pare_value *x_q = dx->inputs[0], *b_q = add ? dw->inputs[0] : NULL;
    if (x_q->graph != p->g || !lives_on(p, x_q, be, i) ||
        (b_q && (b_q->graph != p->g || !lives_on(p, b_q, be, i))))
        return PARE_OK;
    /* Add: no broadcasting */
    if (add && (!same_shape(n->inputs[0], n->inputs[1]) ||
                !same_shape(n->inputs[0], n->outputs[0])))
        return PARE_OK;
    pare_kqdq d;
    memset(&d, 0, sizeof d);
    d.op = n;
    d.x_dtype = x_q->dtype;
    d.x_scale = qdq_in(dx, 1);
    d.x_zp = qdq_in(dx, 2);
    if (add) {
        d.b_dtype = b_q->dtype;
        d.b_scale = qdq_in(dw, 1);
        d.b_zp = qdq_in(dw, 2);
    } else if (bn) {
        for (size_t j = 0; j < 4; j++)
            d.bn[j] = n->inputs[j + 1]->init;
        d.bn_eps = pare_node_attr_float(n, "epsilon", 1e-5f);
    } else {
        d.w_q = qdq_in(dw, 0);
        d.w_scale = qdq_in(dw, 1);
        d.w_zp = qdq_in(dw, 2);
        d.w_axis = pare_node_attr_int(dw, "axis", 1);
    }
    const pare_value *bv =
        !add && !bn && !is_op(n, "MatMul") && n->n_inputs > 2 ? n->inputs[2] : NULL;
    if (bv && is_const(bv)) {
        d.bias_f = bv->init;
    } else if (bv) {
        if (!(db = qdq_dq(p, i, bv, true)))
            return PARE_OK;
        d.bias_q = qdq_in(db, 0);
        d.bias_scale = qdq_in(db, 1);
        d.bias_zp = qdq_in(db, 2);
    }
    size_t absorbed[72], na = 0;
    pare_value *cur = n->outputs[0];
    pare_node *c = sole_reader(p, cur);
    /* BatchNormalization: Mul / Add by per-channel constants after it
     * (DenseNet's pre-activations) compose into its affine */
    double *bsc = NULL, *bsh = NULL;
    if (bn) {
        int64_t C = (int64_t)pare_tensor_numel(d.bn[0]);
        int r = cur->shape.rank;
        if (C < 1 || r < 2 || cur->shape.dims[1].value != C)
            return PARE_OK;
        bsc = malloc((size_t)C * sizeof *bsc);
        bsh = malloc((size_t)C * sizeof *bsh);
        if (!bsc || !bsh) {
            free(bsc);
            free(bsh);
            return PARE_NOMEM(err);
        }
        for (int64_t m = 0; m < C; m++) {
            bsc[m] = 1.0;
            bsh[m] = 0.0;
        }
        c = chan_affine_chain(p, i, &cur, C, r, bsc, bsh, absorbed, &na, 64);
        if (na) {
            d.bn_scale = bsc;
            d.bn_shift = bsh;
        }
    }
    /* MatMul: a bias Add by a constant along the last axis */
    float *bvec = NULL;
    if (is_op(n, "MatMul") && c && is_op(c, "Add") && c->n_inputs == 2 && c->n_outputs == 1 &&
        c->outputs[0] && (c->inputs[0] == cur) != (c->inputs[1] == cur) && d.w_q->rank == 2 &&
        same_device(p, i, c) && same_shape(cur, c->outputs[0])) {
        int64_t N = d.w_q->dims[1];
        if (!(bvec = malloc((size_t)(N > 0 ? N : 1) * sizeof *bvec)))
            return PARE_NOMEM(err);
        const float *bc = last_const(c->inputs[c->inputs[0] == cur], N, cur->shape.rank, bvec);
        if (bc) {
            if (bc != bvec)
                memcpy(bvec, bc, (size_t)N * sizeof *bvec);
            d.bias_vec = bvec;
            absorbed[na++] = node_pos(c);
            cur = c->outputs[0];
            c = sole_reader(p, cur);
        }
    }
    if (c && is_op(c, "Relu") && c->n_outputs == 1 && c->outputs[0] && same_device(p, i, c)) {
        d.relu = true;
        absorbed[na++] = node_pos(c);
        cur = c->outputs[0];
        c = sole_reader(p, cur);
    }
    if (c && is_op(c, "QuantizeLinear") && c->n_inputs >= 2 && c->inputs[0] == cur &&
        c->n_outputs == 1 && c->outputs[0] && is_const(c->inputs[1]) &&
        (c->n_inputs < 3 || !c->inputs[2] || is_const(c->inputs[2])) &&
        pare_node_attr_int(c, "block_size", 0) == 0 && same_device(p, i, c)) {
        absorbed[na++] = node_pos(c);
        d.y_scale = qdq_in(c, 1);
        d.y_zp = qdq_in(c, 2);
        d.y_dtype = c->outputs[0]->dtype;
        cur = c->outputs[0];
    } else if (!add && !bn && cur->dtype == PARE_DT_FLOAT) {
        d.float_out = true; /* the integer product, dequantized once at the end */
    } else {
        free(bvec);
        free(bsc);
        free(bsh);
        return PARE_OK;
    }
    const pare_kernel *k;
    void *state;
    pare_error ferr;
    pare_status st = be ? p->dev->fuse_qdq(p->dev, p->dev_ctx, &d, &k, &state, &ferr)
                        : pare_kernel_qdq(&d, &k, &state, &ferr);
    free(bvec);
    free(bsc);
    free(bsh);
    if (st == PARE_ERR_NOMEM)
        return PARE_NOMEM(err);
    if (st)
        return PARE_OK; /* refused: the nodes run as they are */
    /* the DequantizeLinears only this node reads go too */
    const pare_node *dqs[3] = {dx, dw, db};
    const pare_value *remap[2] = {x_q, b_q};
    st = qdq_commit(p, i, k, state, remap, 2, dqs, 3, cur, absorbed, na);
    if (st)
        return PARE_NOMEM(err);
    *done = true;
    return PARE_OK;
}

/* the value (scale, zero point, 8-bit type) of a DequantizeLinear's or
 * QuantizeLinear's scalar parameters */
typedef struct qparm {
    float scale;
    int32_t zp;
    int dt;
} qparm;

static bool qparm_of(const pare_node *q, int dt, qparm *out)
{
    const pare_tensor *s = qdq_in(q, 1), *z = qdq_in(q, 2);
    if ((dt != PARE_DT_UINT8 && dt != PARE_DT_INT8) || !s || s->dtype != PARE_DT_FLOAT ||
        pare_tensor_numel(s) != 1 || (z && (z->dtype != dt || pare_tensor_numel(z) != 1)))
        return false;
    out->scale = *(const float *)s->data;
    out->zp = !z ? 0 : dt == PARE_DT_UINT8 ? *(const uint8_t *)z->data : *(const int8_t *)z->data;
    out->dt = dt;
    return true;
}

static bool qparm_eq(const qparm *a, const qparm *b)
{
    return a->scale == b->scale && a->zp == b->zp && a->dt == b->dt;
}

/* DequantizeLinear -> MaxPool / Concat / Reshape / Flatten / Transpose /
 * Squeeze / Unsqueeze / Identity -> QuantizeLinear with one scale, zero
 * point and type on every side: the op selects or moves values, which
 * commutes with (de)quantization, so its own kernel runs on the 8-bit data
 * (every kernel here takes any type; MaxPool int8 and uint8). */
static pare_status fuse_qdq_move(gplan *p, size_t i, bool *done, pare_error *err)
{
    static const char *const ops[] = {"MaxPool", "Concat",    "Reshape",   "Flatten",
                                      "Transpose", "Squeeze", "Unsqueeze", "Identity", NULL};
    pare_node *n = p->order[i];
    size_t o = 0;
    while (ops[o] && !is_op(n, ops[o]))
        o++;
    if (!ops[o] || !n->n_inputs || n->n_outputs < 1 || !n->outputs[0] ||
        (n->n_outputs > 1 && n->outputs[1]) || (p->multi && p->nbe[i]) || n->n_inputs > 64)
        return PARE_OK;
    size_t ndata = is_op(n, "Concat") ? n->n_inputs : 1;
    const pare_node *dqs[64];
    const pare_value *remap[64] = {NULL};
    qparm q0 = {0, 0, 0}, qk;
    for (size_t k = 0; k < ndata; k++) {
        const pare_node *d = qdq_dq(p, i, n->inputs[k], false);
        if (!d || d->inputs[0]->graph != p->g || !qparm_of(d, d->inputs[0]->dtype, &qk) ||
            (k && !qparm_eq(&q0, &qk)) || (p->multi && p->vbe[d->inputs[0]->id] != 0))
            return PARE_OK;
        if (!k)
            q0 = qk;
        dqs[k] = d;
        remap[k] = d->inputs[0];
    }
    pare_node *c = sole_reader(p, n->outputs[0]);
    if (!c || !is_op(c, "QuantizeLinear") || c->n_inputs < 2 || c->inputs[0] != n->outputs[0] ||
        c->n_outputs != 1 || !c->outputs[0] || !is_const(c->inputs[1]) ||
        (c->n_inputs > 2 && c->inputs[2] && !is_const(c->inputs[2])) ||
        pare_node_attr_int(c, "block_size", 0) != 0 || !same_device(p, i, c) ||
        !qparm_of(c, c->outputs[0]->dtype, &qk) || !qparm_eq(&q0, &qk))
        return PARE_OK;
    size_t absorbed[1] = {node_pos(c)};
    if (qdq_commit(p, i, p->k[i], NULL, remap, n->n_inputs, dqs, ndata, c->outputs[0], absorbed,
                   1))
        return PARE_NOMEM(err);
    *done = true;
    return PARE_OK;
}

/* DequantizeLinears whose every reader is a QDQ-fused node (one activation
 * read by two branches) have nothing left to do: absorbed into the first */
static void qdq_sweep(gplan *p)
{
    for (size_t d = 0; d < p->n; d++) {
        const pare_node *n = p->order[d];
        if (p->fused_into[d] != SIZE_MAX || !is_op(n, "DequantizeLinear") || n->n_outputs != 1 ||
            !n->outputs[0] || n->outputs[0]->is_output || !n->outputs[0]->n_uses)
            continue;
        const pare_value *v = n->outputs[0];
        size_t first = SIZE_MAX;
        for (size_t u = 0; u < v->n_uses; u++) {
            const pare_node *r = v->uses[u].node;
            size_t pos = r->graph == p->g ? node_pos(r) : SIZE_MAX;
            size_t in = v->uses[u].input;
            if (pos == SIZE_MAX || !p->fz_k[pos] || p->fz_in[pos][in] != n->inputs[0]) {
                first = SIZE_MAX;
                break;
            }
            if (first == SIZE_MAX || pos < first)
                first = pos;
        }
        if (first != SIZE_MAX) {
            p->fused_into[d] = first;
            p->n_fused++;
        }
    }
}

/* whether fusion is off for session options o (or PARE_NO_FUSION=1) */
static bool fusion_off(const pare_session_opts *o)
{
    const char *e = getenv("PARE_NO_FUSION");
    return o->no_fusion || o->keep_all || (e && *e && strcmp(e, "0"));
}

static pare_status plan_fusion(gplan *p, pare_error *err)
{
    size_t nn = p->n ? p->n : 1, nv = p->g->n_values ? p->g->n_values : 1;
    p->fused_into = malloc(nn * sizeof *p->fused_into);
    p->fz_out = calloc(nn, sizeof *p->fz_out);
    p->fz_res = calloc(nn, sizeof *p->fz_res);
    p->first_pos = malloc(nv * sizeof *p->first_pos);
    p->fz_k = calloc(nn, sizeof *p->fz_k);
    p->fz_state = calloc(nn, sizeof *p->fz_state);
    p->fz_in = calloc(nn, sizeof *p->fz_in);
    if (!p->fused_into || !p->fz_out || !p->fz_res || !p->first_pos || !p->fz_k ||
        !p->fz_state || !p->fz_in)
        return PARE_NOMEM(err);
    for (size_t i = 0; i < p->n; i++)
        p->fused_into[i] = SIZE_MAX;
    for (size_t i = 0; i < p->g->n_values; i++)
        p->first_pos[i] = SIZE_MAX;
    for (size_t i = 0; i < p->n; i++)
        p->order[i]->user = (void *)(uintptr_t)i;
    for (size_t i = 0; i < p->n; i++) {
        if (p->fused_into[i] != SIZE_MAX)
            continue;
        bool done = false;
        pare_status st = fuse_qdq(p, i, &done, err);
        if (!st && !done)
            st = fuse_qdq_move(p, i, &done, err);
        if (!st && !done)
            st = fuse_node(p, i, err);
        if (st)
            return st;
    }
    qdq_sweep(p);
    return PARE_OK;
}

static pare_status plan_graph(pare_session *s, const pare_graph *g, gplan **out, pare_error *err)
{
    gplan *p = find_plan(s, g);
    if (p) {
        *out = p;
        return PARE_OK;
    }
    p = calloc(1, sizeof *p);
    if (!p)
        return PARE_NOMEM(err);
    bool main_graph = g == s->g;
    p->g = g;
    p->n = g->n_nodes;
    size_t nn = p->n ? p->n : 1;
    p->order = malloc(nn * sizeof *p->order);
    p->k = calloc(nn, sizeof *p->k);
    p->state = calloc(nn, sizeof *p->state);
    p->opset = calloc(nn, sizeof *p->opset);
    p->last_use = malloc((g->n_values ? g->n_values : 1) * sizeof *p->last_use);
    if (main_graph && s->be[1]) {
        p->nbe = calloc(nn, 1);
        p->why = calloc(nn, sizeof *p->why);
    }
    if (!p->order || !p->k || !p->state || !p->opset || !p->last_use ||
        (main_graph && s->be[1] && (!p->nbe || !p->why))) {
        gplan_free(p);
        return PARE_NOMEM(err);
    }
    p->next = s->plans;
    s->plans = p;
    if (p->n)
        memcpy(p->order, g->nodes, p->n * sizeof *p->order);
    for (size_t i = 0; i < g->n_values; i++)
        p->last_use[i] = SIZE_MAX;
    /* positions, for liveness */
    for (size_t i = 0; i < p->n; i++)
        p->order[i]->user = (void *)(uintptr_t)i;
    for (size_t i = 0; i < g->n_values; i++) {
        const pare_value *v = g->values[i];
        size_t last = SIZE_MAX;
        for (size_t u = 0; u < v->n_uses; u++) {
            const pare_node *t = top_node(g, v->uses[u].node);
            if (!t)
                continue;
            size_t pos = (size_t)(uintptr_t)t->user;
            if (last == SIZE_MAX || pos > last)
                last = pos;
        }
        p->last_use[i] = last;
    }
    for (size_t i = 0; i < p->n; i++) {
        pare_node *n = p->order[i];
        p->opset[i] = pare_node_opset(n);
        pare_status st = place_node(s, p, i, main_graph, err);
        if (st)
            return st;
        for (size_t a = 0; a < n->n_attrs; a++) {
            gplan *sub;
            if (n->attrs[a].g && (st = plan_graph(s, n->attrs[a].g, &sub, err)))
                return st;
            for (size_t j = 0; n->attrs[a].graphs && j < n->attrs[a].n; j++)
                if ((st = plan_graph(s, n->attrs[a].graphs[j], &sub, err)))
                    return st;
        }
    }
    if (p->nbe) {
        /* subgraph planning above reused node->user: positions again */
        for (size_t i = 0; i < p->n; i++)
            p->order[i]->user = (void *)(uintptr_t)i;
        pare_status st = plan_copies(s, p, err);
        if (st)
            return st;
    }
    *out = p;
    return PARE_OK;
}

/* whether some value read by a node of g (or its subgraphs) has no dtype */
static bool dtypes_missing(const pare_graph *g)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        const pare_node *n = g->nodes[i];
        for (size_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] && n->inputs[k]->dtype == PARE_DT_UNDEFINED)
                return true;
        for (size_t a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].g && dtypes_missing(n->attrs[a].g))
                return true;
            for (size_t j = 0; n->attrs[a].graphs && j < n->attrs[a].n; j++)
                if (dtypes_missing(n->attrs[a].graphs[j]))
                    return true;
        }
    }
    return false;
}

pare_status pare_session_new(pare_model *m, const pare_session_opts *opts, pare_session **out,
                             pare_error *err)
{
    pare_status align_st = pare_model_align_weights(m, err); /* typed reads below */
    if (align_st)
        return align_st;
    pare_session_opts o = PARE_SESSION_OPTS_INIT;
    if (opts)
        o = *opts;
    *out = NULL;
    const pare_backend *pref;
    pare_status st = pare_backend_get(o.device, o.gpu, &pref, err);
    if (st)
        return st;
    pare_session *s = calloc(1, sizeof *s);
    if (!s)
        return PARE_NOMEM(err);
    s->m = m;
    s->g = pare_model_graph(m);
    s->keep_all = o.keep_all;
    s->cuda_graph = o.cuda_graph;
    s->no_fusion = fusion_off(&o);
    s->profile = o.profile;
    s->be[0] = pare_backend_cpu();
    s->be[1] = pref == s->be[0] ? NULL : pref;
    if (s->be[1] && s->be[1]->open && (st = s->be[1]->open(s->be[1], &o, &s->bctx[1], err))) {
        s->be[1] = NULL; /* nothing to close */
        goto fail;
    }
    if ((st = pare_graph_toposort(s->g, err)))
        goto fail;
    s->pool = pare_threadpool_new(o.threads);
    if (!s->pool) {
        st = PARE_NOMEM(err);
        goto fail;
    }
    s->inputs = malloc((s->g->n_inputs ? s->g->n_inputs : 1) * sizeof *s->inputs);
    if (!s->inputs) {
        st = PARE_NOMEM(err);
        goto fail;
    }
    for (size_t i = 0; i < s->g->n_inputs; i++)
        if (!s->g->inputs[i]->init)
            s->inputs[s->n_inputs++] = s->g->inputs[i];
    /* densify sparse initializers up front */
    for (size_t i = 0; i < s->g->n_values; i++)
        if (s->g->values[i]->is_sparse_init && !pare_value_tensor(s->g->values[i], err)) {
            st = err->status;
            goto fail;
        }
    /* kernels are chosen by input dtypes: infer those the file does not give
     * (a model inference cannot type keeps the unknown ones, which every
     * kernel accepts; the kernel checks them when it runs) */
    if (dtypes_missing(s->g)) {
        pare_error ierr;
        if (pare_infer_shapes(m, NULL, NULL, &ierr) == PARE_ERR_NOMEM) {
            st = PARE_NOMEM(err);
            goto fail;
        }
    }
    if ((st = plan_graph(s, s->g, &s->main, err)))
        goto fail;
    if (!s->no_fusion && (!s->be[1] || s->be[1]->fuse) &&
        ((st = plan_fusion(s->main, err)) || (st = drop_unread_inits(s->main, err))))
        goto fail;
    *out = s;
    return PARE_OK;
fail:
    pare_session_free(s);
    return st;
}

void pare_session_free(pare_session *s)
{
    if (!s)
        return;
    for (gplan *p = s->plans, *nx; p; p = nx) {
        nx = p->next;
        gplan_free(p);
    }
    pare_threadpool_free(s->pool);
    free(s->inputs);
    free(s->planned_dims);
    free(s->rec_size);
    free(s->slots);
    for (int b = 0; b < NBE; b++)
        if (s->arena[b])
            s->be[b]->free(s->be[b], s->bctx[b], s->arena[b]);
    if (s->be[1] && s->be[1]->close)
        s->be[1]->close(s->be[1], s->bctx[1]);
    free(s->signature);
    free(s->prof);
    free(s);
}

size_t pare_session_profile(const pare_session *s, const pare_node_profile **out)
{
    *out = s->prof;
    return s->prof ? s->n_prof : 0;
}

void pare_session_profile_reset(pare_session *s)
{
    for (size_t i = 0; s->prof && i < s->n_prof; i++) {
        s->prof[i].ms = 0;
        s->prof[i].runs = 0;
    }
}

static double prof_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* opts.profile: the entries of the main plan, made at its first run */
static pare_status prof_init(pare_session *s, const gplan *p, pare_error *err)
{
    if (s->prof)
        return PARE_OK;
    s->prof = calloc(p->n + 1, sizeof *s->prof);
    if (!s->prof)
        return PARE_NOMEM(err);
    s->n_prof = p->n + 1;
    for (size_t i = 0; i < p->n; i++) {
        s->prof[i].node = p->order[i];
        s->prof[i].backend = s->be[p->multi ? p->nbe[i] : 0]->name;
        if (p->fused_into && p->fused_into[i] != SIZE_MAX)
            s->prof[i].fused_into = p->order[p->fused_into[i]];
    }
    s->prof[p->n].backend = s->be[1] ? s->be[1]->name : s->be[0]->name;
    return PARE_OK;
}

/* opts.profile: waits for the device's queued work */
static pare_status prof_sync(pare_session *s, const gplan *p, pare_error *err)
{
    return p->multi ? s->be[1]->sync(s->be[1], s->bctx[1], err) : PARE_OK;
}

size_t pare_session_input_count(const pare_session *s)
{
    return s->n_inputs;
}
const pare_value *pare_session_input(const pare_session *s, size_t i)
{
    return s->inputs[i];
}
size_t pare_session_output_count(const pare_session *s)
{
    return s->g->n_outputs;
}
const pare_value *pare_session_output(const pare_session *s, size_t i)
{
    return s->g->outputs[i];
}
void pare_session_set_observer(pare_session *s, pare_observer_fn fn, void *ctx)
{
    s->observer = fn;
    s->observer_ctx = ctx;
}
void pare_session_run_stats(const pare_session *s, pare_run_stats *out)
{
    memset(out, 0, sizeof *out);
    const pare_backend *dev = s->be[1];
    out->device = dev ? dev->name : "cpu";
    const gplan *p = s->main;
    size_t n = p ? p->n : 0;
    if (!p || !p->multi) {
        out->nodes_cpu = n;
    } else {
        for (size_t i = 0; i < n; i++) {
            if (p->nbe[i])
                out->nodes_device++;
            else
                out->nodes_cpu++;
        }
    }
    if (dev && s->have_plan)
        out->device_arena_bytes = s->arena_size[1];
    if (dev && dev->stats)
        dev->stats(dev, s->bctx[1], out); /* copies, device time, memory */
}

size_t pare_session_arena_bytes(const pare_session *s)
{
    return s->have_plan ? s->arena_size[0] + s->arena_size[1] : 0;
}

static void shape_str(const pare_value *v, char *buf, size_t size)
{
    size_t off = 0;
    if (v->shape.rank < 0) {
        snprintf(buf, size, "[?]");
        return;
    }
    off += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < v->shape.rank && off < size; i++) {
        const pare_dim *d = &v->shape.dims[i];
        if (d->value >= 0)
            off += (size_t)snprintf(buf + off, size - off, "%s%lld", i ? "," : "",
                                    (long long)d->value);
        else
            off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? "," : "",
                                    d->param ? d->param : "?");
    }
    if (off < size)
        snprintf(buf + off, size - off, "]");
}

const char *pare_session_signature(pare_session *s)
{
    if (s->signature)
        return s->signature;
    size_t cap = 256 + s->n_inputs * 320, off = 0;
    char *b = malloc(cap);
    if (!b)
        return "(out of memory)";
    b[0] = 0;
    for (size_t i = 0; i < s->n_inputs && off < cap; i++) {
        char sh[256];
        shape_str(s->inputs[i], sh, sizeof sh);
        off += (size_t)snprintf(b + off, cap - off, "%s'%s' %s %s", i ? ", " : "",
                                s->inputs[i]->name, pare_dtype_name(s->inputs[i]->dtype), sh);
    }
    if (s->n_inputs == 0)
        snprintf(b, cap, "(no inputs)");
    s->signature = b;
    return b;
}

/* a growing string for the plan text */
typedef struct sbuf {
    char *b;
    size_t len, cap;
    bool fail;
} sbuf;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void sb_printf(sbuf *sb, const char *fmt, ...)
{
    if (sb->fail)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(sb->b + sb->len, sb->cap - sb->len, fmt, ap);
        va_end(ap);
        if (w < 0) {
            sb->fail = true;
            return;
        }
        if ((size_t)w < sb->cap - sb->len) {
            sb->len += (size_t)w;
            return;
        }
        size_t nc = sb->cap * 2 + (size_t)w;
        char *nb = realloc(sb->b, nc);
        if (!nb) {
            sb->fail = true;
            return;
        }
        sb->b = nb;
        sb->cap = nc;
    }
}

static void plan_row(sbuf *sb, const char *name, const char *op, const char *be,
                     const char *kern, const char *note)
{
    if (note && *note)
        sb_printf(sb, "%-24s %-20s %-8s %-36s %s\n", name, op, be, kern, note);
    else
        sb_printf(sb, "%-24s %-20s %-8s %s\n", name, op, be, kern);
}

static void plan_copies_text(sbuf *sb, const pare_session *s, const gplan *p, size_t pos)
{
    for (size_t c = p->copy_at[pos]; c < p->copy_at[pos + 1]; c++) {
        const pare_value *v = p->g->values[p->copies[c].vid];
        char name[300], kern[64];
        snprintf(name, sizeof name, "copy:%s", v->name);
        uint8_t to = p->copies[c].to;
        snprintf(kern, sizeof kern, "%s->%s", s->be[1 - to]->name, s->be[to]->name);
        plan_row(sb, name, "(copy)", s->be[to]->name, kern,
                 pos == p->n ? "graph output to the host" : "");
    }
}

char *pare_session_plan_text(pare_session *s)
{
    sbuf sb = {malloc(4096), 0, 4096, false};
    if (!sb.b)
        return NULL;
    sb.b[0] = 0;
    const gplan *p = s->main;
    plan_row(&sb, "node", "op", "backend", "kernel(input dtypes)", "note");
    if (p->multi)
        for (size_t id = 0; id < p->g->n_values; id++)
            if (p->cmirror[id]) {
                char name[300], kern[64];
                snprintf(name, sizeof name, "copy:%s", p->g->values[id]->name);
                snprintf(kern, sizeof kern, "cpu->%s", s->be[1]->name);
                plan_row(&sb, name, "(copy)", s->be[1]->name, kern,
                         "initializer, once when the session is made");
            }
    for (size_t i = 0; i < p->n; i++) {
        const pare_node *n = p->order[i];
        const pare_kernel *k = p->k[i];
        uint8_t be = p->nbe ? p->nbe[i] : 0;
        char name[300], kern[400], note[400] = "";
        if (p->multi)
            plan_copies_text(&sb, s, p, i);
        if (n->name && *n->name)
            snprintf(name, sizeof name, "%s", n->name);
        else
            snprintf(name, sizeof name, "#%zu", n->id);
        bool dom = k->domain && *k->domain;
        size_t ko = (size_t)snprintf(kern, sizeof kern, "%s%s%s/%d(", dom ? k->domain : "",
                                     dom ? ":" : "", k->op_type, k->since_version);
        for (size_t j = 0; j < n->n_inputs && ko < sizeof kern; j++) {
            const pare_value *v = n->inputs[j];
            ko += (size_t)snprintf(kern + ko, sizeof kern - ko, "%s%s", j ? "," : "",
                                   !v ? "-" : v->dtype ? pare_dtype_name(v->dtype) : "?");
        }
        if (ko < sizeof kern)
            snprintf(kern + ko, sizeof kern - ko, ")");
        if (p->why && p->why[i])
            snprintf(note, sizeof note, "fallback from %s: %s", s->be[1]->name, p->why[i]);
        if (p->fz_k && p->fz_k[i]) {
            size_t no = (size_t)snprintf(note, sizeof note, "8-bit QDQ kernel: reads ");
            size_t nr = 0, total = 0;
            for (size_t j = 0; j < n->n_inputs; j++)
                total += p->fz_in[i][j] != NULL;
            for (size_t j = 0; j < n->n_inputs && no < sizeof note; j++) {
                const pare_value *rd = p->fz_in[i][j];
                if (!rd)
                    continue;
                nr++;
                if (nr > 3 && nr < total)
                    continue; /* a, b, c, ... and z */
                no += (size_t)snprintf(note + no, sizeof note - no, "%s%s",
                                       nr == 1 ? "" : nr == total ? " and " : ", ",
                                       nr > 3 ? "... " : "");
                if (no < sizeof note)
                    no += (size_t)snprintf(note + no, sizeof note - no, "%s", rd->name);
            }
            if (no < sizeof note)
                snprintf(note + no, sizeof note - no, ", writes %s", p->fz_out[i]->name);
        }
        if (p->fused_into && p->fused_into[i] != SIZE_MAX) {
            const pare_node *into = p->order[p->fused_into[i]];
            if (into->name && *into->name)
                snprintf(note, sizeof note, "%s fused into %s", n->op_type, into->name);
            else
                snprintf(note, sizeof note, "%s fused into #%zu", n->op_type, into->id);
        }
        plan_row(&sb, name, n->op_type, s->be[be]->name, kern, note);
    }
    if (p->multi)
        plan_copies_text(&sb, s, p, p->n);
    if (sb.fail) {
        free(sb.b);
        return NULL;
    }
    return sb.b;
}

/* ---- running ---- */

/* backend index of the node being run in frame f (subgraphs: the CPU) */
static inline uint8_t frame_be(const frame *f)
{
    return f->p->multi ? f->p->nbe[f->pos] : 0;
}

/* v (a value of x's graph) as seen from backend be */
static inline pare_tensor *frame_value(frame *x, const pare_value *v, uint8_t be)
{
    const gplan *p = x->p;
    if (p->multi && p->vbe[v->id] != be)
        return p->cmirror[v->id] ? p->cmirror[v->id] : x->mirror[v->id];
    pare_tensor *t = x->vals[v->id];
    if (t || !v->init)
        return t;
    return v->init;
}

/* v seen from backend be in f (outer frames: from the CPU) */
static inline pare_tensor *lookup_be(frame *f, const pare_value *v, uint8_t be)
{
    for (frame *x = f; x; x = x->parent, be = 0)
        if (x->p->g == v->graph)
            return frame_value(x, v, be);
    return v->init;
}

/* v seen from the node being run in f */
static pare_tensor *lookup(frame *f, const pare_value *v)
{
    return lookup_be(f, v, frame_be(f));
}

/* a graph output as the host sees it; a subgraph output with no producer
 * stands for an outer value of that name */
static pare_tensor *lookup_output(frame *f, const pare_value *v)
{
    pare_tensor *t = v->graph == f->p->g ? frame_value(f, v, 0) : lookup(f, v);
    if (t || v->producer || v->is_input)
        return t;
    for (frame *x = f->parent; x; x = x->parent) {
        const pare_value *o = pare_graph_find_value(x->p->g, v->name);
        if (o && o != v)
            return frame_value(x, o, 0);
    }
    return NULL;
}

typedef struct scratch {
    pare_tensor *t;
    bool dev;   /* data from the device backend's alloc */
    uint8_t be; /* that backend */
} scratch;

typedef struct kctx_ext {
    pare_kctx k;
    frame *f;
    pare_node *node;
    scratch *scratch;       /* outputs omitted in the node */
    size_t n_scratch;
    pare_value *out0;       /* fused form: the value output 0 writes, else NULL */
} kctx_ext;

/* frees a frame's tensor by its ownership code; be: the backend holding it */
static void drop(const pare_session *s, pare_tensor *t, uint8_t code, uint8_t be)
{
    if (!code || !t)
        return;
    if (code == OWN_DEV)
        s->be[be]->free(s->be[be], s->bctx[be], t->data);
    pare_tensor_free(t);
}

/* A buffer for a tensor on backend be: slot `key` of that backend's arena
 * when the plan has one big enough, else a new allocation. */
static pare_status new_buffer(pare_session *s, bool main_frame, size_t key, uint8_t be,
                              const char *name, int dtype, int rank, const int64_t *dims,
                              pare_tensor **out, uint8_t *code, pare_error *err)
{
    const pare_backend *b = s->be[be];
    pare_status st;
    *out = NULL;
    if (dtype == PARE_DT_STRING && !b->host_memory)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "strings cannot live on %s", b->name);
    if (main_frame && key != SIZE_MAX && s->have_plan && dtype != PARE_DT_STRING) {
        uint64_t n;
        if (pare_shape_numel(rank, dims, &n, err))
            return err->status;
        size_t need = pare_dtype_nbytes(dtype, n);
        slot *sl = &s->slots[key];
        if (need != SIZE_MAX && sl->size >= need && need > 0) {
            if ((st = pare_tensor_wrap(name, dtype, rank, dims, s->arena[be] + sl->offset, need,
                                       out, err)))
                return st;
            *code = OWN_VIEW;
            return PARE_OK;
        }
    }
    if (b->host_memory) {
        if ((st = pare_tensor_new(name, dtype, rank, dims, out, err)))
            return st;
        *code = OWN_HEAP;
        return PARE_OK;
    }
    uint64_t n;
    if (pare_shape_numel(rank, dims, &n, err))
        return err->status;
    size_t need = pare_dtype_nbytes(dtype, n);
    if (need == SIZE_MAX)
        return pare_error_set(err, PARE_ERR_LIMIT, "tensor '%s' is too large",
                              name ? name : "?");
    void *mem;
    if ((st = b->alloc(b, s->bctx[be], need ? need : 1, &mem, err)))
        return pare_error_prefix(err, "tensor '%s' (%zu bytes) on %s", name ? name : "?", need,
                                 b->name);
    if ((st = pare_tensor_wrap(name, dtype, rank, dims, mem, need, out, err))) {
        b->free(b, s->bctx[be], mem);
        return st;
    }
    *code = OWN_DEV;
    return PARE_OK;
}

static pare_status alloc_out(pare_kctx *k, size_t i, int dtype, int rank, const int64_t *dims,
                             pare_tensor **out, pare_error *err)
{
    kctx_ext *x = (kctx_ext *)k;
    frame *f = x->f;
    pare_session *s = f->s;
    if (i >= k->n_out)
        return pare_error_set(err, PARE_ERR_INVALID, "output %zu does not exist", i);
    pare_value *v = i == 0 && x->out0 ? x->out0 : x->node->outputs[i];
    if (v && f->vals[v->id])
        return pare_error_set(err, PARE_ERR_INVALID, "output %zu allocated twice", i);
    uint8_t be = frame_be(f), code = OWN_NONE;
    bool main_frame = f->p == s->main;
    pare_tensor *t = NULL;
    pare_status st = new_buffer(s, main_frame, v ? 2 * v->id : SIZE_MAX, be, v ? v->name : NULL,
                                dtype, rank, dims, &t, &code, err);
    if (st)
        return st;
    if (v) {
        f->vals[v->id] = t;
        f->owned[v->id] = code;
        if (s->recording && main_frame && dtype != PARE_DT_STRING)
            s->rec_size[2 * v->id] = t->nbytes;
    } else {
        scratch *ns = realloc(x->scratch, (x->n_scratch + 1) * sizeof *ns);
        if (!ns) {
            drop(s, t, code, be);
            return PARE_NOMEM(err);
        }
        x->scratch = ns;
        x->scratch[x->n_scratch].t = t;
        x->scratch[x->n_scratch].dev = code == OWN_DEV;
        x->scratch[x->n_scratch].be = be;
        x->n_scratch++;
    }
    *out = t;
    return PARE_OK;
}

static void frame_release(frame *f, size_t id)
{
    const gplan *p = f->p;
    uint8_t home = p->multi ? p->vbe[id] : 0;
    drop(f->s, f->vals[id], f->owned[id], home);
    f->vals[id] = NULL;
    f->owned[id] = OWN_NONE;
    if (f->mirror) {
        drop(f->s, f->mirror[id], f->mowned[id], (uint8_t)(1 - home));
        f->mirror[id] = NULL;
        f->mowned[id] = OWN_NONE;
    }
}

/* Runs border copy c of the main frame: the value's mirror on c->to. */
static pare_status run_copy(frame *f, const pcopy *c, pare_error *err)
{
    pare_session *s = f->s;
    const pare_value *v = f->p->g->values[c->vid];
    uint8_t from = (uint8_t)(1 - c->to);
    pare_tensor *src = f->vals[c->vid] ? f->vals[c->vid] : v->init;
    if (!src || f->mirror[c->vid])
        return PARE_OK; /* not computed (the reader reports it) or already there */
    const pare_backend *bf = s->be[from], *bt = s->be[c->to];
    if (src->dtype == PARE_DT_STRING)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "value '%s': strings cannot move from "
                              "%s to %s", v->name, bf->name, bt->name);
    pare_tensor *t;
    uint8_t code;
    pare_status st = new_buffer(s, true, 2 * c->vid + 1, c->to, v->name, src->dtype, src->rank,
                                src->dims, &t, &code, err);
    if (st)
        return st;
    if (bt->host_memory)
        st = bf->sync(bf, s->bctx[from], err)
                 ? err->status
                 : bf->to_host(bf, s->bctx[from], t->data, src->data, src->nbytes, err);
    else
        st = bt->to_device(bt, s->bctx[c->to], t->data, src->data, src->nbytes, err);
    if (st) {
        drop(s, t, code, c->to);
        return pare_error_prefix(err, "copy of '%s' from %s to %s", v->name, bf->name, bt->name);
    }
    f->mirror[c->vid] = t;
    f->mowned[c->vid] = code;
    if (s->recording)
        s->rec_size[2 * c->vid + 1] = t->nbytes;
    return PARE_OK;
}

static pare_status run_copies(frame *f, size_t pos, pare_error *err)
{
    const gplan *p = f->p;
    for (size_t c = p->copy_at[pos]; c < p->copy_at[pos + 1]; c++) {
        pare_status st = run_copy(f, &p->copies[c], err);
        if (st)
            return st;
    }
    return PARE_OK;
}

/* Calls the observer with output o of node n, brought to the host first
 * when it lives on a device. */
static int observe(frame *f, const pare_node *n, size_t o, pare_tensor *t, pare_error *err)
{
    pare_session *s = f->s;
    uint8_t be = frame_be(f);
    if (!be || s->be[be]->host_memory || t->dtype == PARE_DT_STRING)
        return s->observer(s->observer_ctx, n, o, t);
    const pare_backend *b = s->be[be];
    pare_tensor *h;
    if (pare_tensor_new(t->name, t->dtype, t->rank, t->dims, &h, err))
        return -1;
    if (b->sync(b, s->bctx[be], err) ||
        b->to_host(b, s->bctx[be], h->data, t->data, t->nbytes, err)) {
        pare_tensor_free(h);
        return -1;
    }
    int r = s->observer(s->observer_ctx, n, o, h);
    pare_tensor_free(h);
    return r;
}

static pare_status exec_graph(pare_session *s, gplan *p, frame *parent,
                              const pare_tensor *const *inputs, size_t n_inputs,
                              pare_tensor ***outs, size_t *n_outs, pare_error *err);

static pare_status run_graph_cb(pare_kctx *k, const pare_graph *g, const pare_tensor *const *inputs,
                                size_t n_inputs, pare_tensor ***outputs, size_t *n_outputs,
                                pare_error *err)
{
    kctx_ext *x = (kctx_ext *)k;
    gplan *p = find_plan(x->f->s, g);
    if (!p)
        return pare_error_set(err, PARE_ERR_INVALID, "subgraph was not planned");
    return exec_graph(x->f->s, p, x->f, inputs, n_inputs, outputs, n_outputs, err);
}

/* frees what node n (at position i) was the last to need */
static void release_after(frame *f, const pare_node *n, size_t i)
{
    const gplan *p = f->p;
    /* free inputs whose last reader was this node */
    for (size_t k = 0; k < n->n_inputs; k++) {
        pare_value *v = n->inputs[k];
        if (v && v->graph == p->g && !v->is_output && p->last_use[v->id] == i &&
            (f->vals[v->id] || (f->mirror && f->mirror[v->id])))
            frame_release(f, v->id);
    }
    /* outputs nobody reads */
    for (size_t o = 0; o < n->n_outputs; o++) {
        pare_value *v = n->outputs[o];
        if (v && !v->is_output && p->last_use[v->id] == SIZE_MAX)
            frame_release(f, v->id);
    }
}

static pare_status exec_graph(pare_session *s, gplan *p, frame *parent,
                              const pare_tensor *const *inputs, size_t n_inputs,
                              pare_tensor ***outs, size_t *n_outs, pare_error *err)
{
    const pare_graph *g = p->g;
    /* the fused plan, unless an observer wants every intermediate */
    bool fuse_on = parent == NULL && p->fused_into && !s->observer;
    if (parent == NULL && !fuse_on && p->cdropped) {
        pare_status rst = restore_inits(p, err); /* the absorbed nodes run this time */
        if (rst)
            return rst;
    }
    frame f = {s, p, NULL, NULL, NULL, NULL, parent, 0};
    bool capturing = false; /* the device work of this run goes into a CUDA graph */
    size_t nv = g->n_values ? g->n_values : 1;
    f.vals = calloc(nv, sizeof *f.vals);
    f.owned = calloc(nv, 1);
    pare_tensor **results = NULL;
    pare_status st = PARE_OK;
    char lbl[300];
    if (!f.vals || !f.owned) {
        st = PARE_NOMEM(err);
        goto out;
    }
    if (p->multi) {
        f.mirror = calloc(nv, sizeof *f.mirror);
        f.mowned = calloc(nv, 1);
        if (!f.mirror || !f.mowned) {
            st = PARE_NOMEM(err);
            goto out;
        }
    }
    /* bind inputs (views; the caller keeps ownership) */
    size_t bound = 0;
    for (size_t i = 0; i < g->n_inputs && bound < n_inputs; i++) {
        pare_value *v = g->inputs[i];
        if (parent == NULL && v->init)
            continue; /* main graph: fed inputs exclude initializers, bound below */
        f.vals[v->id] = (pare_tensor *)inputs[bound++];
    }
    /* opts.profile: main graph only; each node's time includes waiting
     * for its own device work, not its predecessors' */
    bool prof = parent == NULL && s->profile;
    double t_prof = 0;
    if (prof && (st = prof_init(s, p, err)))
        goto out;
    if (parent == NULL && p->multi && s->be[1]->run_begin)
        s->be[1]->run_begin(s->be[1], s->bctx[1]); /* device timing of this run */
    if (parent == NULL && s->graph_run) {
        if ((st = s->be[1]->graph_begin(s->be[1], s->bctx[1], err)))
            goto out;
        capturing = true;
    }
    for (size_t i = 0; i < p->n; i++) {
        pare_node *n = p->order[i];
        f.pos = i;
        if (fuse_on && p->fused_into[i] != SIZE_MAX) {
            /* computed by the node that absorbed it; its border copies (a
             * DequantizeLinear's quantized input) are what that node reads */
            if (p->multi && (st = run_copies(&f, i, err)))
                goto out;
            if (!s->keep_all)
                release_after(&f, n, i);
            continue;
        }
        if (prof && (st = prof_sync(s, p, err)))
            goto out;
        if (prof)
            t_prof = prof_now_ms();
        if (p->multi && (st = run_copies(&f, i, err)))
            goto out;
        if (prof && p->copy_at && p->copy_at[i] != p->copy_at[i + 1]) {
            if ((st = prof_sync(s, p, err)))
                goto out;
            double t = prof_now_ms();
            s->prof[p->n].ms += t - t_prof;
            t_prof = t;
        }
        kctx_ext x;
        memset(&x, 0, sizeof x);
        bool fz = fuse_on && p->fz_out[i];
        /* a QDQ-fused node runs a kernel of its own or the op's plain one
         * on remapped inputs: no residual slot, no pare_kfuse form */
        bool qz = fz && p->fz_k[i];
        size_t n_in = fz && !qz && n->n_inputs < 4 ? 4 : n->n_inputs;
        const pare_tensor *inbuf[16];
        const pare_tensor **ins = n_in <= 16 ? inbuf : malloc(n_in * sizeof *ins);
        if (!ins) {
            st = PARE_NOMEM(err);
            goto out;
        }
        uint8_t nbe = frame_be(&f);
        for (size_t k = n->n_inputs; k < n_in; k++)
            ins[k] = NULL;
        if (fz && p->fz_res[i] && !(ins[3] = lookup_be(&f, p->fz_res[i], nbe))) {
            if (ins != inbuf)
                free(ins);
            st = pare_error_set(err, PARE_ERR_INVALID, "node %s: residual '%s' has no value",
                                pare_node_label(n, lbl, sizeof lbl), p->fz_res[i]->name);
            goto out;
        }
        for (size_t k = 0; k < n->n_inputs; k++) {
            ins[k] = n->inputs[k] ? lookup_be(&f, n->inputs[k], nbe) : NULL;
            if (n->inputs[k] && !ins[k] && n->inputs[k]->producer == NULL &&
                !n->inputs[k]->is_input) {
                if (ins != inbuf)
                    free(ins);
                st = pare_error_set(err, PARE_ERR_INVALID, "node %s: input '%s' has no value",
                                    pare_node_label(n, lbl, sizeof lbl), n->inputs[k]->name);
                goto out;
            }
        }
        const pare_kernel *kern = p->k[i];
        if (qz) {
            kern = p->fz_k[i];
            for (size_t j = 0; j < n->n_inputs; j++) {
                const pare_value *rd = p->fz_in[i][j];
                if (rd && !(ins[j] = lookup_be(&f, rd, nbe))) {
                    if (ins != inbuf)
                        free(ins);
                    st = pare_error_set(err, PARE_ERR_INVALID, "node %s: input '%s' has no value",
                                        pare_node_label(n, lbl, sizeof lbl), rd->name);
                    goto out;
                }
            }
        }
        x.k.node = n;
        x.k.opset = p->opset[i];
        x.k.in = ins;
        x.k.n_in = n_in;
        x.k.fused = fz && !qz;
        x.out0 = fz ? p->fz_out[i] : NULL;
        x.k.n_out = n->n_outputs;
        x.k.state = fz && p->fz_state[i] ? p->fz_state[i] : p->state[i];
        x.k.pool = s->pool;
        x.k.alloc_out = alloc_out;
        x.k.run_graph = run_graph_cb;
        x.k.exec = &f;
        x.k.dev = s->bctx[nbe];
        x.f = &f;
        x.node = n;
        st = kern->run(&x.k, err);
        if (ins != inbuf)
            free(ins);
        for (size_t k = 0; k < x.n_scratch; k++) {
            if (x.scratch[k].dev)
                s->be[x.scratch[k].be]->free(s->be[x.scratch[k].be], s->bctx[x.scratch[k].be],
                                              x.scratch[k].t->data);
            pare_tensor_free(x.scratch[k].t);
        }
        free(x.scratch);
        if (st) {
            pare_error_prefix(err, "node %s", pare_node_label(n, lbl, sizeof lbl));
            goto out;
        }
        if (prof) {
            if (nbe && (st = prof_sync(s, p, err)))
                goto out;
            s->prof[i].ms += prof_now_ms() - t_prof;
            s->prof[i].runs++;
        }
        for (size_t o = 0; o < n->n_outputs; o++) {
            pare_value *v = o == 0 && x.out0 ? x.out0 : n->outputs[o];
            if (v && !f.vals[v->id]) {
                st = pare_error_set(err, PARE_ERR_RUNTIME, "node %s: output %zu was not produced",
                                    pare_node_label(n, lbl, sizeof lbl), o);
                goto out;
            }
        }
        if (parent == NULL && s->observer) {
            for (size_t o = 0; o < n->n_outputs; o++) {
                pare_value *v = n->outputs[o];
                if (!v)
                    continue;
                int r = observe(&f, n, o, f.vals[v->id], err);
                if (r < 0) {
                    st = err->status;
                    goto out;
                }
                if (r) {
                    st = pare_error_set(err, PARE_ERR_RUNTIME, "stopped by the observer at node %s",
                                        pare_node_label(n, lbl, sizeof lbl));
                    goto out;
                }
            }
        }
        if (!s->keep_all)
            release_after(&f, n, i);
    }
    if (p->multi) {
        f.pos = p->n;
        if (capturing) {
            capturing = false;
            if ((st = s->be[1]->graph_end(s->be[1], s->bctx[1], true, err)))
                goto out;
        }
        if (parent == NULL && s->be[1]->run_end &&
            (st = s->be[1]->run_end(s->be[1], s->bctx[1], err)))
            goto out;
        if (prof)
            t_prof = prof_now_ms();
        if ((st = run_copies(&f, p->n, err)) || (st = s->be[1]->sync(s->be[1], s->bctx[1], err)))
            goto out;
        if (prof)
            s->prof[p->n].ms += prof_now_ms() - t_prof;
    }
    if (prof)
        s->prof[p->n].runs++;
    results = calloc(g->n_outputs ? g->n_outputs : 1, sizeof *results);
    if (!results) {
        st = PARE_NOMEM(err);
        goto out;
    }
    for (size_t i = 0; i < g->n_outputs; i++) {
        pare_value *v = g->outputs[i];
        pare_tensor *t = lookup_output(&f, v);
        if (!t) {
            st = pare_error_set(err, PARE_ERR_RUNTIME, "graph output '%s' was not computed",
                                v->name);
            goto out;
        }
        /* the host copy of the value: its home, or its mirror when homed on a device */
        pare_tensor **tp = NULL;
        uint8_t *op = NULL;
        if (v->graph == g) {
            bool mir = p->multi && p->vbe[v->id] != 0;
            tp = mir ? &f.mirror[v->id] : &f.vals[v->id];
            op = mir ? &f.mowned[v->id] : &f.owned[v->id];
        }
        if (tp && *op == OWN_HEAP && *tp == t) {
            /* hand the heap tensor over; the same value may be listed twice */
            bool later = false;
            for (size_t j = i + 1; j < g->n_outputs; j++)
                if (g->outputs[j] == v)
                    later = true;
            if (!later) {
                results[i] = t;
                *tp = NULL;
                *op = OWN_NONE;
                if (pare_tensor_set_name(t, v->name, err)) {
                    st = err->status;
                    goto out;
                }
                continue;
            }
        }
        if ((st = pare_tensor_clone(t, &results[i], err)))
            goto out;
        if ((st = pare_tensor_set_name(results[i], v->name, err)))
            goto out;
    }
    *outs = results;
    *n_outs = g->n_outputs;
    results = NULL;
out:
    if (capturing) {
        pare_error gerr;
        s->be[1]->graph_end(s->be[1], s->bctx[1], false, &gerr);
    }
    if (results)
        pare_tensors_free(results, g->n_outputs);
    if (f.vals && f.owned) {
        for (size_t i = 0; i < g->n_values; i++) {
            uint8_t home = p->multi ? p->vbe[i] : 0;
            drop(s, f.vals[i], f.owned[i], home);
            if (f.mirror && f.mowned)
                drop(s, f.mirror[i], f.mowned[i], (uint8_t)(1 - home));
        }
    }
    free(f.vals);
    free(f.owned);
    free(f.mirror);
    free(f.mowned);
    return st;
}

/* ---- arena planning from a recorded run ---- */

typedef struct live {
    size_t key, first, last, size;
} live;

static int cmp_size_desc(const void *a, const void *b)
{
    const live *x = a, *y = b;
    if (x->size != y->size)
        return x->size < y->size ? 1 : -1;
    return (x->key > y->key) - (x->key < y->key);
}

/* Places the buffers of one backend: greedy by size, each at the lowest
 * offset that does not overlap a placed buffer whose lifetime intersects. */
static size_t place(pare_session *s, live *ls, size_t n)
{
    qsort(ls, n, sizeof *ls, cmp_size_desc);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t off = 0;
        bool moved = true;
        while (moved) {
            moved = false;
            for (size_t j = 0; j < i; j++) {
                if (ls[j].last < ls[i].first || ls[i].last < ls[j].first)
                    continue;
                size_t a = s->slots[ls[j].key].offset, b = a + ls[j].size;
                if (off < b && a < off + ls[i].size) {
                    off = b;
                    moved = true;
                }
            }
        }
        s->slots[ls[i].key].offset = off;
        s->slots[ls[i].key].size = ls[i].size;
        if (off + ls[i].size > total)
            total = off + ls[i].size;
    }
    return total;
}

static pare_status build_arena(pare_session *s, pare_error *err)
{
    gplan *p = s->main;
    const pare_graph *g = p->g;
    size_t nk = 2 * g->n_values;
    live *ls = malloc((nk ? nk : 1) * sizeof *ls);
    if (!ls)
        return PARE_NOMEM(err);
    for (int b = 0; b < NBE; b++) {
        if (!s->be[b])
            continue;
        size_t n = 0;
        for (size_t key = 0; key < nk; key++) {
            size_t id = key / 2;
            const pare_value *v = g->values[id];
            bool mirror = key & 1;
            uint8_t home = p->multi ? p->vbe[id] : 0;
            uint8_t where = mirror ? (uint8_t)(1 - home) : home;
            if (where != b || !s->rec_size[key])
                continue;
            /* host copies of graph outputs are handed to the caller */
            if (v->is_output && where == 0)
                continue;
            size_t first, last;
            if (mirror) {
                first = p->mirror_pos[id];
            } else {
                if (!v->producer)
                    continue;
                first = (size_t)(uintptr_t)v->producer->user;
                /* written earlier by the node its producer was fused into */
                if (p->first_pos && p->first_pos[id] < first)
                    first = p->first_pos[id];
            }
            last = v->is_output ? p->n : p->last_use[id] == SIZE_MAX ? first : p->last_use[id];
            ls[n].key = key;
            ls[n].first = first;
            ls[n].last = last < first ? first : last;
            ls[n].size = (s->rec_size[key] + 63) & ~(size_t)63;
            n++;
        }
        size_t total = place(s, ls, n);
        if (s->arena[b])
            s->be[b]->free(s->be[b], s->bctx[b], s->arena[b]);
        s->arena[b] = NULL;
        s->arena_size[b] = 0;
        if (total) {
            void *mem;
            pare_status st = s->be[b]->alloc(s->be[b], s->bctx[b], total, &mem, err);
            if (st) {
                free(ls);
                return st;
            }
            s->arena[b] = mem;
        }
        s->arena_size[b] = total;
    }
    free(ls);
    return PARE_OK;
}

static pare_status match_inputs(pare_session *s, pare_tensor *const *inputs, size_t n_inputs,
                                const pare_tensor **bound, pare_error *err)
{
    for (size_t i = 0; i < s->n_inputs; i++)
        bound[i] = NULL;
    for (size_t k = 0; k < n_inputs; k++) {
        const pare_tensor *t = inputs[k];
        size_t slot_i = SIZE_MAX;
        if (t->name && *t->name) {
            for (size_t i = 0; i < s->n_inputs; i++)
                if (strcmp(s->inputs[i]->name, t->name) == 0)
                    slot_i = i;
            if (slot_i == SIZE_MAX)
                return pare_error_set(err, PARE_ERR_ARG, "no model input named '%s'; the model "
                                      "expects %s", t->name, pare_session_signature(s));
        } else {
            slot_i = k;
        }
        if (slot_i >= s->n_inputs)
            return pare_error_set(err, PARE_ERR_ARG, "too many inputs (%zu); the model expects "
                                  "%s", n_inputs, pare_session_signature(s));
        if (bound[slot_i])
            return pare_error_set(err, PARE_ERR_ARG, "input '%s' given twice",
                                  s->inputs[slot_i]->name);
        const pare_value *v = s->inputs[slot_i];
        if (v->dtype && v->dtype != t->dtype)
            return pare_error_set(err, PARE_ERR_ARG, "input '%s' is %s, the model expects %s "
                                  "(signature: %s)", v->name, pare_dtype_name(t->dtype),
                                  pare_dtype_name(v->dtype), pare_session_signature(s));
        if (v->shape.rank >= 0) {
            if (v->shape.rank != t->rank)
                return pare_error_set(err, PARE_ERR_ARG, "input '%s' has rank %d, the model "
                                      "expects rank %d (signature: %s)", v->name, t->rank,
                                      v->shape.rank, pare_session_signature(s));
            for (int d = 0; d < t->rank; d++)
                if (v->shape.dims[d].value >= 0 && v->shape.dims[d].value != t->dims[d])
                    return pare_error_set(err, PARE_ERR_ARG, "input '%s' dim %d is %lld, the "
                                          "model expects %lld (signature: %s)", v->name, d,
                                          (long long)t->dims[d],
                                          (long long)v->shape.dims[d].value,
                                          pare_session_signature(s));
        }
        bound[slot_i] = t;
    }
    for (size_t i = 0; i < s->n_inputs; i++)
        if (!bound[i])
            return pare_error_set(err, PARE_ERR_ARG, "input '%s' is missing; the model expects "
                                  "%s", s->inputs[i]->name, pare_session_signature(s));
    return PARE_OK;
}

static bool same_plan_shapes(pare_session *s, const pare_tensor **bound)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n_inputs; i++) {
        if (k >= s->n_planned_dims || s->planned_dims[k++] != bound[i]->rank)
            return false;
        for (int d = 0; d < bound[i]->rank; d++)
            if (k >= s->n_planned_dims || s->planned_dims[k++] != bound[i]->dims[d])
                return false;
    }
    return k == s->n_planned_dims;
}

static pare_status remember_shapes(pare_session *s, const pare_tensor **bound, pare_error *err)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_inputs; i++)
        n += 1 + (size_t)bound[i]->rank;
    int64_t *d = malloc((n ? n : 1) * sizeof *d);
    if (!d)
        return PARE_NOMEM(err);
    size_t k = 0;
    for (size_t i = 0; i < s->n_inputs; i++) {
        d[k++] = bound[i]->rank;
        for (int j = 0; j < bound[i]->rank; j++)
            d[k++] = bound[i]->dims[j];
    }
    free(s->planned_dims);
    s->planned_dims = d;
    s->n_planned_dims = n;
    return PARE_OK;
}

/* Whether this run captures its device work into a CUDA graph
 * (backend.h, graph_begin): sets s->graph_run. With cuda_graph 1, a run
 * where graphs cannot apply fails with the reason (the first run with new
 * shapes records sizes and runs without one). */
static pare_status graph_decision(pare_session *s, bool same, pare_error *err)
{
    s->graph_run = false;
    if (s->cuda_graph == 0 || s->graph_off)
        return PARE_OK;
    const char *why = NULL;
    size_t on_cpu = 0;
    const gplan *p = s->main;
    if (!s->be[1] || !s->be[1]->graph_begin || !s->be[1]->graph_end)
        why = "the device backend has no graphs";
    else if (s->observer)
        why = "an observer is set";
    else if (s->profile)
        why = "profiling";
    else if (s->keep_all)
        why = "keep_all: buffers are not from the arena";
    else if (!p->multi)
        why = "no node runs on the device";
    for (size_t i = 0; !why && i < p->n; i++)
        if (!p->nbe[i])
            on_cpu++;
    if (!why && on_cpu)
        why = "nodes run on the cpu";
    if (why) {
        if (s->cuda_graph == 1)
            return on_cpu ? pare_error_set(err, PARE_ERR_UNSUPPORTED,
                                           "cuda_graph=1: %zu nodes run on the cpu", on_cpu)
                          : pare_error_set(err, PARE_ERR_UNSUPPORTED, "cuda_graph=1: %s", why);
        return PARE_OK;
    }
    s->graph_run = same && s->have_plan; /* buffers laid out: from the second run on */
    return PARE_OK;
}

pare_status pare_session_run(pare_session *s, pare_tensor *const *inputs, size_t n_inputs,
                             pare_tensor ***outputs, size_t *n_outputs, pare_error *err)
{
    const pare_tensor *bound_buf[8];
    const pare_tensor **bound = s->n_inputs <= 8 ? bound_buf
                                                 : malloc(s->n_inputs * sizeof *bound);
    if (!bound)
        return PARE_NOMEM(err);
    pare_status st = match_inputs(s, inputs, n_inputs, bound, err);
    if (st)
        goto out;
    bool same = s->planned_dims && same_plan_shapes(s, bound);
    if (!same) {
        /* new shapes: this run records sizes; the next one uses the arena */
        s->have_plan = false;
        free(s->rec_size);
        size_t nk = s->g->n_values ? 2 * s->g->n_values : 1; /* home and mirror per value */
        s->rec_size = calloc(nk, sizeof *s->rec_size);
        free(s->slots);
        s->slots = calloc(nk, sizeof *s->slots);
        if (!s->rec_size || !s->slots) {
            st = PARE_NOMEM(err);
            goto out;
        }
        s->recording = !s->keep_all;
        if ((st = remember_shapes(s, bound, err)))
            goto out;
    }
    if ((st = graph_decision(s, same, err)))
        goto out;
    st = exec_graph(s, s->main, NULL, bound, s->n_inputs, outputs, n_outputs, err);
    if (st && s->graph_run) {
        /* a captured run failed (a call a capture does not allow, e.g. a
         * kernel reading a computed shape on the host): without graphs from
         * now on, this run again; cuda_graph 1 fails instead */
        s->graph_off = true;
        s->graph_run = false;
        if (s->cuda_graph == 1)
            pare_error_prefix(err, "cuda_graph=1: the captured run failed");
        else
            st = exec_graph(s, s->main, NULL, bound, s->n_inputs, outputs, n_outputs, err);
    }
    if (!st && s->recording) {
        s->recording = false;
        if ((st = build_arena(s, err)))
            goto out;
        s->have_plan = true;
    }
out:
    s->recording = false;
    s->graph_run = false;
    if (bound != bound_buf)
        free(bound);
    return st;
}
