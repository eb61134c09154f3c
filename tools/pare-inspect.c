/* pare-inspect: what is in an ONNX model - ops, parameters, bytes, sparsity,
 * quantization, MACs and FLOPs, peak activation memory, validity - and the
 * difference between two models. Reports as text, JSON (schema
 * "pare-inspect/1", documented in pare-inspect(1)) or Graphviz DOT.
 *
 * Everything is counted from the IR without reading weights, except the
 * zero counts for sparsity: embedded tensors are scanned, external ones only
 * with --scan-weights, so a model with gigabytes of external data inspects
 * in the time it takes to parse its graph.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pare/model.h"
#include "pare/ir.h"
#include "pare/infer.h"
#include "pare/report.h"
#include "pare/dtype.h"
#include "cli.h"

#define SCHEMA "pare-inspect/1"
#define TOP_LAYERS 3

/* ------------------------------------------------------------------ */
/* options                                                             */

static bool o_json, o_nodes, o_check, o_dot, o_scan;
static const char *o_diff, *o_output;
static cli_list o_shapes, o_dims;
static uint64_t o_max_dec;

static const cli_option options[] = {
    CLI_GROUP("Output"),
    CLI_FLAG(0, "json", &o_json, "print the report as JSON (schema pare-inspect/1)"),
    CLI_FLAG(0, "nodes", &o_nodes,
             "add a per-node table: name, op, inputs, outputs, shapes, params, MACs"),
    CLI_FLAG(0, "check", &o_check,
             "validate the model: print every problem and exit 1, or one line and exit 0"),
    CLI_STRING(0, "diff", &o_diff, "OTHER", "compare the model with OTHER side by side"),
    CLI_FLAG(0, "dot", &o_dot, "print the graph in Graphviz DOT"),
    CLI_STRING('o', "output", &o_output, "FILE",
               "write the report to FILE (atomically) instead of stdout"),
    CLI_GROUP("Analysis"),
    CLI_LIST(0, "shape", &o_shapes, "NAME=DIMS",
             "shape of input NAME for MACs, FLOPs and memory, e.g. input=1x3x224x224"),
    CLI_LIST(0, "dim", &o_dims, "SYM=N", "value of symbolic dim SYM (unset ones are 1)"),
    CLI_FLAG(0, "scan-weights", &o_scan,
             "also count zeros of external-data tensors (reads them; slow for big models)"),
    CLI_GROUP("Loading"),
    CLI_SIZE(0, "max-decompressed", &o_max_dec, "BYTES",
             "largest decompressed size of a gzip model (default 2G)"),
    CLI_END(),
};

static const cli_program program = {
    .name = "pare-inspect",
    .usage = "[OPTIONS] MODEL\n--check [OPTIONS] MODEL\n--diff OTHER [OPTIONS] MODEL\n"
             "--dot [OPTIONS] MODEL",
    .summary = "Describe an ONNX model (.onnx, .onnx.gz, with external data; - reads stdin): "
               "inputs and outputs, ops, parameters and bytes per dtype, sparsity, "
               "quantization, estimated MACs, FLOPs and peak activation memory.",
    .footer = "Exit status: 0 done; 1 unreadable or invalid model (or --check found "
              "problems); 2 bad usage. See pare-inspect(1) for the JSON schema.",
    .options = options,
    .args_name = "MODEL",
    .min_args = 1,
    .max_args = 1,
};

/* --shape and --dim, parsed once */
typedef struct shape_arg {
    char *name;
    int rank;
    int64_t dims[PARE_MAX_RANK];
    bool used;
} shape_arg;

typedef struct dim_arg {
    char *name;
    int64_t value;
} dim_arg;

static shape_arg *g_shapes;
static size_t g_n_shapes;
static dim_arg *g_dims;
static size_t g_n_dims;

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        cli_error(NULL, "out of memory");
        exit(CLI_EXIT_FAIL);
    }
    return p;
}

static void *xrealloc(void *p, size_t n, size_t size)
{
    if (n && size > SIZE_MAX / n) {
        cli_error(NULL, "out of memory");
        exit(CLI_EXIT_FAIL);
    }
    p = realloc(p, (n ? n : 1) * size);
    if (!p) {
        cli_error(NULL, "out of memory");
        exit(CLI_EXIT_FAIL);
    }
    return p;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d) {
        cli_error(NULL, "out of memory");
        exit(CLI_EXIT_FAIL);
    }
    return d;
}

static char *xasprintf(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = xcalloc((size_t)(n < 0 ? 0 : n) + 1, 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* a * b into *r; false on overflow or a negative operand */
static bool mul64(int64_t a, int64_t b, int64_t *r)
{
    if (a < 0 || b < 0)
        return false;
    return !__builtin_mul_overflow(a, b, r);
}

static bool add64(int64_t a, int64_t b, int64_t *r)
{
    return !__builtin_add_overflow(a, b, r);
}

/* Whether an initializer's data lives in an external file. */
static bool tensor_is_external(const pare_value *v)
{
    return pare_value_is_external(v);
}

static int64_t value_numel(const pare_value *v)
{
    if (!v)
        return -1;
    return pare_value_numel(v);
}

/* dim i of v when known, else -1 (negative i counts from the end) */
static int64_t value_dim(const pare_value *v, int i)
{
    if (!v || v->shape.rank < 0)
        return -1;
    if (i < 0)
        i += v->shape.rank;
    if (i < 0 || i >= v->shape.rank)
        return -1;
    return v->shape.dims[i].value;
}

/* "N x 3 x 224 x 224" style: known dims as numbers, symbols by name, "?" unknown */
static char *shape_str(const pare_shape *s, char *buf, size_t size)
{
    if (s->rank < 0) {
        snprintf(buf, size, "?");
        return buf;
    }
    if (s->rank == 0) {
        snprintf(buf, size, "scalar");
        return buf;
    }
    size_t k = 0;
    buf[0] = '\0';
    for (int i = 0; i < s->rank && k + 1 < size; i++) {
        const pare_dim *d = &s->dims[i];
        int n;
        if (d->value >= 0)
            n = snprintf(buf + k, size - k, "%s%" PRId64, i ? "x" : "", d->value);
        else if (d->param)
            n = snprintf(buf + k, size - k, "%s%s", i ? "x" : "", d->param);
        else
            n = snprintf(buf + k, size - k, "%s?", i ? "x" : "");
        if (n < 0)
            break;
        k += (size_t)n;
    }
    if (k >= size && size > 4)
        memcpy(buf + size - 4, "...", 4);
    return buf;
}

static void copy_shape(pare_shape *dst, const pare_shape *src)
{
    dst->rank = src->rank;
    dst->dims = NULL;
    if (src->rank > 0) {
        dst->dims = xcalloc((size_t)src->rank, sizeof *dst->dims);
        for (int i = 0; i < src->rank; i++) {
            dst->dims[i].value = src->dims[i].value;
            dst->dims[i].param = src->dims[i].param ? xstrdup(src->dims[i].param) : NULL;
        }
    }
}

static void free_shape(pare_shape *s)
{
    for (int i = 0; i < s->rank && s->dims; i++)
        free(s->dims[i].param);
    free(s->dims);
    s->dims = NULL;
    s->rank = -1;
}

static const char *op_name(const pare_node *n, char *buf, size_t size)
{
    if (n->domain[0])
        snprintf(buf, size, "%s:%s", n->domain, n->op_type);
    else
        snprintf(buf, size, "%s", n->op_type);
    return buf;
}

/* s on one line for text output: control characters (newlines in a name,
 * terminal escapes) become '?' */
static const char *vis(const char *s, char *buf, size_t size)
{
    size_t k = 0;
    for (; s && *s && k + 1 < size; s++)
        buf[k++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
    buf[k] = '\0';
    return buf;
}

static bool is_op(const pare_node *n, const char *op)
{
    return strcmp(n->op_type, op) == 0;
}

static bool op_in(const pare_node *n, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(n->op_type, *list) == 0)
            return true;
    return false;
}

/* nodes of every graph, depth first, in file order */
typedef struct graph_list {
    pare_graph **g;
    size_t n, cap;
} graph_list;

static void collect_graph(pare_graph *g, void *ctx)
{
    graph_list *l = ctx;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->g = xrealloc(l->g, l->cap, sizeof *l->g);
    }
    l->g[l->n++] = g;
}

/* ------------------------------------------------------------------ */
/* the summary of one model                                            */

typedef struct io_desc {
    const char *name;
    int dtype;
    int elem_kind;
    pare_shape shape; /* as declared in the file (copied before inference) */
} io_desc;

typedef struct op_stat {
    const char *domain, *op;
    uint64_t nodes;
    int64_t macs, flops; /* of the nodes that could be estimated */
    uint64_t unknown;    /* nodes whose cost could not be estimated */
} op_stat;

typedef struct dtype_stat {
    uint64_t tensors, params, bytes;
} dtype_stat;

typedef struct layer_sparsity {
    const char *name;
    uint64_t params, zeros;
} layer_sparsity;

typedef enum cost_class {
    COST_NONE = 0,  /* data movement, shape ops: 0 FLOPs */
    COST_MAC,       /* 2 FLOPs per MAC */
    COST_ELEMENT,   /* 1 FLOP per output element */
    COST_REDUCE,    /* 1 FLOP per element read */
    COST_CONTROL,   /* If/Loop/Scan: their bodies are counted */
    COST_UNKNOWN_OP /* an op this tool has no formula for */
} cost_class;

typedef struct node_info {
    pare_node *node;
    char *path;     /* "12" in the main graph, "3.then_branch.0" in subgraphs */
    int depth;
    cost_class cls;
    int64_t macs, flops; /* -1: not estimated */
    uint64_t params;     /* elements of initializer inputs */
} node_info;

typedef struct quant_row {
    char *op;
    char *weights;     /* "int8 (QDQ, per-channel)", "float32", "none" */
    char *activations; /* "uint8 (QDQ)", "float32" */
    uint64_t nodes;
    uint64_t weight_params;
    int64_t macs;
} quant_row;

typedef struct count_row {
    char *key;
    uint64_t count;
    uint64_t params;
} count_row;

typedef struct sym_binding {
    const char *name;
    int64_t value;
    bool defaulted;
} sym_binding;

typedef struct summary {
    const char *path;
    pare_model *m;
    uint64_t file_bytes, external_bytes;

    io_desc *inputs, *outputs;
    size_t n_inputs, n_outputs;

    graph_list graphs;
    size_t nodes_main, nodes_sub;
    op_stat *ops;
    size_t n_ops;
    node_info *nodes; /* every node, in report order */
    size_t n_nodes;

    dtype_stat by_dtype[PARE_DT_COUNT];
    uint64_t param_tensors, params, param_bytes, const_params;
    uint64_t external_tensors;

    uint64_t sp_params, sp_zeros, sp_tensors;
    uint64_t sp_skipped_tensors, sp_skipped_params;
    layer_sparsity *layers;
    size_t n_layers;

    quant_row *qrows;
    size_t n_qrows;
    count_row *qdq_pairs, *weight_dq, *qops;
    size_t n_qdq_pairs, n_weight_dq, n_qops;
    uint64_t q_weight_params, q_weight_params_quant;
    int64_t q_macs, q_macs_quant;

    /* compute */
    io_desc *eff_inputs; /* input shapes used for the estimates */
    size_t n_eff_inputs;
    sym_binding *syms;
    size_t n_syms;
    int64_t macs, flops;
    uint64_t nodes_unestimated;
    bool inferred; /* shape inference ran to the end */

    /* memory */
    uint64_t peak_bytes;
    const pare_node *peak_node;
    uint64_t unknown_size_values;

    char **notes;
    size_t n_notes;
} summary;

static void note(summary *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void note(summary *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *t = xcalloc((size_t)(n < 0 ? 0 : n) + 1, 1);
    va_start(ap, fmt);
    vsnprintf(t, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s->notes = xrealloc(s->notes, s->n_notes + 1, sizeof *s->notes);
    s->notes[s->n_notes++] = t;
}

static void free_io(io_desc *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free_shape(&d[i].shape);
    free(d);
}

static void free_rows(count_row *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(r[i].key);
    free(r);
}

static void summary_release(summary *s)
{
    free_io(s->inputs, s->n_inputs);
    free_io(s->outputs, s->n_outputs);
    free_io(s->eff_inputs, s->n_eff_inputs);
    free(s->graphs.g);
    free(s->ops);
    for (size_t i = 0; i < s->n_nodes; i++)
        free(s->nodes[i].path);
    free(s->nodes);
    free(s->layers);
    for (size_t i = 0; i < s->n_qrows; i++) {
        free(s->qrows[i].op);
        free(s->qrows[i].weights);
        free(s->qrows[i].activations);
    }
    free(s->qrows);
    free_rows(s->qdq_pairs, s->n_qdq_pairs);
    free_rows(s->weight_dq, s->n_weight_dq);
    free_rows(s->qops, s->n_qops);
    free(s->syms);
    for (size_t i = 0; i < s->n_notes; i++)
        free(s->notes[i]);
    free(s->notes);
    pare_model_free(s->m);
    memset(s, 0, sizeof *s);
}

static void count_add(count_row **rows, size_t *n, const char *key, uint64_t params)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*rows)[i].key, key) == 0) {
            (*rows)[i].count++;
            (*rows)[i].params += params;
            return;
        }
    *rows = xrealloc(*rows, *n + 1, sizeof **rows);
    (*rows)[*n] = (count_row){xstrdup(key), 1, params};
    (*n)++;
}

static int cmp_count_row(const void *a, const void *b)
{
    const count_row *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->key, y->key);
}

/* ------------------------------------------------------------------ */
/* loading and validity                                                */

static int load_model(const char *path, pare_model **m)
{
    pare_load_opts lo = PARE_LOAD_OPTS_INIT;
    lo.max_decompressed = o_max_dec;
    pare_error err;
    if (pare_model_load(path, &lo, m, &err) != PARE_OK)
        return cli_fail(path, &err);
    cli_info(1, "%s: loaded: %zu nodes in the main graph, %" PRIu64 " bytes",
             cli_display_name(path), pare_model_graph(*m)->n_nodes, pare_model_file_size(*m));
    return 0;
}

static void problem_text(const pare_problem *p, char *buf, size_t size)
{
    if (p->where && p->where[0])
        snprintf(buf, size, "%s: %s", p->where, p->what);
    else
        snprintf(buf, size, "%s", p->what);
}

/* The model must be valid to be described: one line naming the first
 * problem otherwise. */
static int require_valid(const char *path, pare_model *m)
{
    pare_problems pr = {0};
    pare_error err;
    int rc = 0;
    if (pare_model_validate(m, &pr, &err) != PARE_OK) {
        rc = cli_fail(path, &err);
    } else if (pr.n) {
        char line[2048];
        problem_text(&pr.items[0], line, sizeof line);
        if (pr.n > 1)
            cli_error(path, "%s (and %zu more problem%s; see --check)", line, pr.n - 1,
                      pr.n == 2 ? "" : "s");
        else
            cli_error(path, "%s (see --check)", line);
        rc = CLI_EXIT_FAIL;
    }
    pare_problems_release(&pr);
    return rc;
}

/* ------------------------------------------------------------------ */
/* shapes: --shape, --dim, symbolic dims bound to 1, inference          */

static bool is_real_input(const pare_value *v)
{
    return v->is_input && !v->init && !v->is_sparse_init;
}

static int check_shape_args(const char *path, pare_graph *g)
{
    for (size_t i = 0; i < g_n_shapes; i++) {
        pare_value *v = NULL;
        for (size_t k = 0; k < g->n_inputs; k++)
            if (strcmp(g->inputs[k]->name, g_shapes[i].name) == 0 && is_real_input(g->inputs[k]))
                v = g->inputs[k];
        if (!v) {
            char list[512] = "";
            for (size_t k = 0; k < g->n_inputs; k++)
                if (is_real_input(g->inputs[k]))
                    snprintf(list + strlen(list), sizeof list - strlen(list), "%s'%s'",
                             list[0] ? ", " : "", g->inputs[k]->name);
            cli_error(path, "--shape %s: the model has no input '%s' (inputs: %s)",
                      g_shapes[i].name, g_shapes[i].name, list[0] ? list : "none");
            return CLI_EXIT_USAGE;
        }
        if (v->shape.rank >= 0 && v->shape.rank != g_shapes[i].rank) {
            cli_error(path, "--shape %s: %d dims given, the input has %d", g_shapes[i].name,
                      g_shapes[i].rank, v->shape.rank);
            return CLI_EXIT_USAGE;
        }
        for (int d = 0; d < v->shape.rank; d++)
            if (v->shape.dims[d].value >= 0 && v->shape.dims[d].value != g_shapes[i].dims[d]) {
                cli_error(path, "--shape %s: dim %d is %" PRId64 " in the model, %" PRId64
                          " given", g_shapes[i].name, d, v->shape.dims[d].value,
                          g_shapes[i].dims[d]);
                return CLI_EXIT_USAGE;
            }
    }
    return 0;
}

static const shape_arg *shape_override(const char *name)
{
    for (size_t i = 0; i < g_n_shapes; i++)
        if (strcmp(g_shapes[i].name, name) == 0)
            return &g_shapes[i];
    return NULL;
}

static const dim_arg *dim_override(const char *name)
{
    for (size_t i = 0; i < g_n_dims; i++)
        if (strcmp(g_dims[i].name, name) == 0)
            return &g_dims[i];
    return NULL;
}

static void snapshot_io(summary *s)
{
    pare_graph *g = pare_model_graph(s->m);
    s->inputs = xcalloc(g->n_inputs, sizeof *s->inputs);
    for (size_t i = 0; i < g->n_inputs; i++) {
        pare_value *v = g->inputs[i];
        if (!is_real_input(v))
            continue;
        io_desc *d = &s->inputs[s->n_inputs++];
        d->name = v->name;
        d->dtype = v->dtype;
        d->elem_kind = v->elem_kind;
        copy_shape(&d->shape, &v->shape);
    }
    s->outputs = xcalloc(g->n_outputs, sizeof *s->outputs);
    for (size_t i = 0; i < g->n_outputs; i++) {
        pare_value *v = g->outputs[i];
        io_desc *d = &s->outputs[s->n_outputs++];
        d->name = v->name;
        d->dtype = v->dtype;
        d->elem_kind = v->elem_kind;
        copy_shape(&d->shape, &v->shape);
    }
}

/* Binds symbols (given by --dim, else 1), applies --shape, infers shapes. */
static void infer(summary *s, bool bind_defaults)
{
    pare_model *m = s->m;
    /* symbols of the inputs that --shape does not replace */
    for (size_t i = 0; i < s->n_inputs; i++) {
        const io_desc *d = &s->inputs[i];
        if (shape_override(d->name))
            continue;
        for (int k = 0; k < d->shape.rank; k++) {
            const char *p = d->shape.dims[k].param;
            if (!p || d->shape.dims[k].value >= 0)
                continue;
            bool seen = false;
            for (size_t j = 0; j < s->n_syms; j++)
                seen |= strcmp(s->syms[j].name, p) == 0;
            if (seen)
                continue;
            const dim_arg *da = dim_override(p);
            if (!da && !bind_defaults)
                continue;
            s->syms = xrealloc(s->syms, s->n_syms + 1, sizeof *s->syms);
            s->syms[s->n_syms++] = (sym_binding){p, da ? da->value : 1, da == NULL};
        }
    }
    for (size_t i = 0; i < g_n_dims; i++) {
        bool found = false;
        for (size_t j = 0; j < s->n_syms; j++)
            found |= strcmp(s->syms[j].name, g_dims[i].name) == 0;
        if (!found)
            cli_warning(s->path, "--dim %s: no input of the model has a dim named '%s'",
                        g_dims[i].name, g_dims[i].name);
    }

    /* the input shapes the estimates use */
    s->eff_inputs = xcalloc(s->n_inputs, sizeof *s->eff_inputs);
    s->n_eff_inputs = s->n_inputs;
    size_t n_unknown_dims = 0;
    for (size_t i = 0; i < s->n_inputs; i++) {
        io_desc *e = &s->eff_inputs[i];
        const io_desc *d = &s->inputs[i];
        e->name = d->name;
        e->dtype = d->dtype;
        e->elem_kind = d->elem_kind;
        const shape_arg *sa = shape_override(d->name);
        if (sa) {
            e->shape.rank = sa->rank;
            e->shape.dims = sa->rank ? xcalloc((size_t)sa->rank, sizeof *e->shape.dims) : NULL;
            for (int k = 0; k < sa->rank; k++)
                e->shape.dims[k].value = sa->dims[k];
            continue;
        }
        copy_shape(&e->shape, &d->shape);
        for (int k = 0; k < e->shape.rank; k++) {
            pare_dim *dm = &e->shape.dims[k];
            if (dm->value >= 0)
                continue;
            for (size_t j = 0; dm->param && j < s->n_syms; j++)
                if (strcmp(s->syms[j].name, dm->param) == 0) {
                    dm->value = s->syms[j].value;
                    free(dm->param);
                    dm->param = NULL;
                    break;
                }
            if (dm->value < 0)
                n_unknown_dims++;
        }
        if (e->shape.rank < 0)
            n_unknown_dims++;
    }

    const char **sym_names = xcalloc(s->n_syms, sizeof *sym_names);
    int64_t *sym_values = xcalloc(s->n_syms, sizeof *sym_values);
    for (size_t i = 0; i < s->n_syms; i++) {
        sym_names[i] = s->syms[i].name;
        sym_values[i] = s->syms[i].value;
    }
    const char **in_names = xcalloc(g_n_shapes, sizeof *in_names);
    const int64_t **in_dims = xcalloc(g_n_shapes, sizeof *in_dims);
    int *in_ranks = xcalloc(g_n_shapes, sizeof *in_ranks);
    for (size_t i = 0; i < g_n_shapes; i++) {
        in_names[i] = g_shapes[i].name;
        in_dims[i] = g_shapes[i].dims;
        in_ranks[i] = g_shapes[i].rank;
    }
    pare_infer_opts io = {0};
    io.sym_names = sym_names;
    io.sym_values = sym_values;
    io.n_sym = s->n_syms;
    io.input_names = in_names;
    io.input_dims = in_dims;
    io.input_ranks = in_ranks;
    io.n_inputs = g_n_shapes;
    pare_infer_report rep;
    memset(&rep, 0, sizeof rep);
    pare_error err;
    pare_error_clear(&err);
    if (pare_infer_shapes(m, &io, &rep, &err) != PARE_OK) {
        note(s, "shape inference stopped: %s; estimates may be incomplete", err.msg);
        cli_warning(s->path, "shape inference stopped: %s", err.msg);
        s->inferred = false;
    } else {
        s->inferred = true;
    }
    if (rep.n_unknown) {
        char list[400] = "";
        for (size_t i = 0; i < rep.n_unknown && i < 4; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? "; " : "",
                     rep.unknown[i]);
        note(s, "shape inference does not know %zu node%s (%s%s): their outputs have unknown "
             "shapes", rep.n_unknown, rep.n_unknown == 1 ? "" : "s", list,
             rep.n_unknown > 4 ? "; ..." : "");
    }
    pare_infer_report_release(&rep);
    free(sym_names);
    free(sym_values);
    free(in_names);
    free(in_dims);
    free(in_ranks);

    size_t n_default = 0;
    char list[400] = "";
    for (size_t i = 0; i < s->n_syms; i++)
        if (s->syms[i].defaulted) {
            n_default++;
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", n_default > 1 ?
                     ", " : "", s->syms[i].name);
        }
    if (n_default)
        note(s, "symbolic dim%s %s bound to 1 (set with --dim NAME=N or --shape)",
             n_default == 1 ? "" : "s", list);
    if (n_unknown_dims)
        note(s, "%zu input dim%s of unknown size: give --shape for complete estimates",
             n_unknown_dims, n_unknown_dims == 1 ? "" : "s");
}

/* ------------------------------------------------------------------ */
/* per-node cost                                                       */

static const char *const ops_elementwise[] = {
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Neg", "Abs", "Reciprocal", "Sqrt", "Exp", "Log",
    "Erf", "Tanh", "Sigmoid", "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu",
    "HardSigmoid", "HardSwish", "Softplus", "Softsign", "Mish", "ThresholdedRelu", "Clip",
    "Min", "Max", "Mean", "Sum", "Where", "Equal", "Less", "LessOrEqual", "Greater",
    "GreaterOrEqual", "And", "Or", "Xor", "Not", "Sign", "Floor", "Ceil", "Round", "Sin", "Cos",
    "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "IsNaN", "IsInf",
    "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot", "QuantizeLinear",
    "DequantizeLinear", "DynamicQuantizeLinear", "BatchNormalization", "InstanceNormalization",
    "LayerNormalization", "GroupNormalization", "RMSNormalization", "SkipLayerNormalization",
    "SimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization", "Softmax", "LogSoftmax",
    "Hardmax", "LpNormalization", "MeanVarianceNormalization", "LRN", "Resize", "Upsample",
    "QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax",
    "FastGelu", "BiasGelu", "QuickGelu", "BiasAdd", "Shrink", "Swish", NULL};

static const char *const ops_reduce[] = {
    "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "ReduceSum", "ReduceMean",
    "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
    "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin", "CumSum", "TopK",
    "QLinearGlobalAveragePool", NULL};

static const char *const ops_pool[] = {"MaxPool", "AveragePool", "LpPool", "QLinearAveragePool",
                                       NULL};

static const char *const ops_free[] = {
    "Reshape", "Transpose", "Concat", "Split", "Slice", "Gather", "GatherElements", "GatherND",
    "Scatter", "ScatterElements", "ScatterND", "Squeeze", "Unsqueeze", "Flatten", "Shape", "Size",
    "Identity", "Cast", "CastLike", "Constant", "ConstantOfShape", "Expand", "Tile", "Pad",
    "Range", "Dropout", "DepthToSpace", "SpaceToDepth", "NonZero", "OneHot", "EyeLike", "Trilu",
    "ReverseSequence", "Compress", "Unique", "Optional", "OptionalGetElement",
    "OptionalHasElement", "SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase",
    "SequenceInsert", "SequenceLength", "SplitToSequence", "ConcatFromSequence", "QLinearConcat",
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli",
    "Multinomial", "NonMaxSuppression", "GridSample", "RoiAlign", "MaxRoiPool", "CenterCropPad",
    NULL};

static const char *const ops_control[] = {"If", "Loop", "Scan", NULL};

static pare_value *input_at(const pare_node *n, size_t i)
{
    return i < n->n_inputs ? n->inputs[i] : NULL;
}

static pare_value *output_at(const pare_node *n, size_t i)
{
    return i < n->n_outputs ? n->outputs[i] : NULL;
}

/* product of dims [from, rank) of v; -1 unknown */
static int64_t dims_product(const pare_value *v, int from)
{
    if (!v || v->shape.rank < 0 || from > v->shape.rank)
        return -1;
    int64_t p = 1;
    for (int i = from; i < v->shape.rank; i++)
        if (!mul64(p, v->shape.dims[i].value, &p))
            return -1;
    return p;
}

/* reduction length K of a MatMul-like node from A (or B) */
static int64_t matmul_k(const pare_value *a, const pare_value *b)
{
    int64_t k = value_dim(a, -1);
    if (k >= 0)
        return k;
    if (b && b->shape.rank == 1)
        return value_dim(b, 0);
    return value_dim(b, -2);
}

static int64_t gemm_k(const pare_node *n, const pare_value *a, const pare_value *b)
{
    bool ta = pare_node_attr_int(n, "transA", 0) != 0;
    bool tb = pare_node_attr_int(n, "transB", 0) != 0;
    int64_t k = value_dim(a, ta ? 0 : 1);
    if (k < 0)
        k = value_dim(b, tb ? 1 : 0);
    return k;
}

/* index of the weight input of a MAC op; -1 for others */
static int mac_weight_index(const pare_node *n)
{
    static const char *const w1[] = {"Conv", "ConvTranspose", "ConvInteger", "Gemm", "MatMul",
                                     "MatMulInteger", "MatMulNBits", "DynamicQuantizeMatMul",
                                     "MatMulIntegerToFloat", "FusedMatMul", "FusedConv",
                                     "MatMulBnb4", NULL};
    static const char *const w3[] = {"QLinearConv", "QLinearMatMul", "QGemm", NULL};
    if (op_in(n, w1))
        return 1;
    if (op_in(n, w3))
        return 3;
    return -1;
}

static bool is_mac_op(const pare_node *n)
{
    static const char *const rnn[] = {"LSTM", "GRU", "RNN", NULL};
    return mac_weight_index(n) >= 0 || op_in(n, rnn);
}

static void node_cost(const pare_node *n, cost_class *cls, int64_t *macs, int64_t *flops)
{
    *macs = -1;
    *flops = -1;
    const pare_value *y = output_at(n, 0);
    int64_t ny = value_numel(y);
    int64_t m = -1;
    bool mac = true;
    if (is_op(n, "Conv") || is_op(n, "ConvInteger") || is_op(n, "QLinearConv") ||
        is_op(n, "FusedConv")) {
        const pare_value *w = input_at(n, (size_t)mac_weight_index(n));
        int64_t per = dims_product(w, 1);
        if (ny >= 0 && per >= 0 && !mul64(ny, per, &m))
            m = -1;
    } else if (is_op(n, "ConvTranspose")) {
        const pare_value *x = input_at(n, 0), *w = input_at(n, 1);
        int64_t nx = value_numel(x), per = dims_product(w, 1);
        if (nx >= 0 && per >= 0 && !mul64(nx, per, &m))
            m = -1;
    } else if (is_op(n, "Gemm")) {
        int64_t k = gemm_k(n, input_at(n, 0), input_at(n, 1));
        if (ny >= 0 && k >= 0 && !mul64(ny, k, &m))
            m = -1;
    } else if (is_op(n, "QGemm")) {
        int64_t k = gemm_k(n, input_at(n, 0), input_at(n, 3));
        if (ny >= 0 && k >= 0 && !mul64(ny, k, &m))
            m = -1;
    } else if (is_op(n, "MatMul") || is_op(n, "MatMulInteger") || is_op(n, "FusedMatMul") ||
               is_op(n, "DynamicQuantizeMatMul") || is_op(n, "MatMulIntegerToFloat") ||
               is_op(n, "QLinearMatMul")) {
        const pare_value *b = input_at(n, is_op(n, "QLinearMatMul") ? 3 : 1);
        int64_t k = matmul_k(input_at(n, 0), b);
        if (ny >= 0 && k >= 0 && !mul64(ny, k, &m))
            m = -1;
    } else if (is_op(n, "MatMulNBits") || is_op(n, "MatMulBnb4")) {
        int64_t k = pare_node_attr_int(n, "K", -1);
        if (ny >= 0 && k >= 0 && !mul64(ny, k, &m))
            m = -1;
    } else if (is_op(n, "LSTM") || is_op(n, "GRU") || is_op(n, "RNN")) {
        /* every step multiplies the input by W and the state by R */
        const pare_value *x = input_at(n, 0), *w = input_at(n, 1), *r = input_at(n, 2);
        int64_t nx = value_numel(x), in = value_dim(x, -1), nw = value_numel(w),
                nr = value_numel(r), t;
        if (!(nx >= 0 && in > 0 && nw >= 0 && nr >= 0 && add64(nw, nr, &t) &&
              mul64(nx / in, t, &m)))
            m = -1;
    } else {
        mac = false;
    }
    if (mac) {
        *cls = COST_MAC;
        *macs = m;
        if (m >= 0 && !mul64(m, 2, flops))
            *flops = -1;
        return;
    }
    if (op_in(n, ops_elementwise)) {
        *cls = COST_ELEMENT;
        *macs = 0;
        *flops = ny;
        return;
    }
    if (op_in(n, ops_pool)) {
        *cls = COST_REDUCE;
        *macs = 0;
        const int64_t *k;
        size_t nk = pare_node_attr_ints(n, "kernel_shape", &k);
        int64_t f = ny;
        for (size_t i = 0; f >= 0 && i < nk; i++)
            if (!mul64(f, k[i], &f))
                f = -1;
        *flops = f;
        return;
    }
    if (op_in(n, ops_reduce)) {
        *cls = COST_REDUCE;
        *macs = 0;
        *flops = value_numel(input_at(n, 0));
        return;
    }
    if (op_in(n, ops_free)) {
        *cls = COST_NONE;
        *macs = 0;
        *flops = 0;
        return;
    }
    if (op_in(n, ops_control)) {
        *cls = COST_CONTROL;
        *macs = 0;
        *flops = 0;
        return;
    }
    *cls = COST_UNKNOWN_OP;
}

/* ------------------------------------------------------------------ */
/* parameters, sparsity                                                */

/* Exact zeros among n elements of a packed buffer. */
static uint64_t count_zeros(int dtype, const void *data, uint64_t n)
{
    const uint8_t *b = data;
    uint64_t z = 0;
    switch (dtype) {
    case PARE_DT_FLOAT:
        for (uint64_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, b + i * 4, 4);
            z += (u & 0x7fffffffu) == 0;
        }
        return z;
    case PARE_DT_INT32:
    case PARE_DT_UINT32:
        for (uint64_t i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, b + i * 4, 4);
            z += u == 0;
        }
        return z;
    case PARE_DT_DOUBLE:
        for (uint64_t i = 0; i < n; i++) {
            uint64_t u;
            memcpy(&u, b + i * 8, 8);
            z += (u & 0x7fffffffffffffffull) == 0;
        }
        return z;
    case PARE_DT_INT64:
    case PARE_DT_UINT64:
        for (uint64_t i = 0; i < n; i++) {
            uint64_t u;
            memcpy(&u, b + i * 8, 8);
            z += u == 0;
        }
        return z;
    case PARE_DT_FLOAT16:
    case PARE_DT_BFLOAT16:
        for (uint64_t i = 0; i < n; i++) {
            uint16_t u;
            memcpy(&u, b + i * 2, 2);
            z += (u & 0x7fffu) == 0;
        }
        return z;
    case PARE_DT_INT16:
    case PARE_DT_UINT16:
        for (uint64_t i = 0; i < n; i++) {
            uint16_t u;
            memcpy(&u, b + i * 2, 2);
            z += u == 0;
        }
        return z;
    case PARE_DT_FLOAT8E4M3FN:
    case PARE_DT_FLOAT8E5M2:
        for (uint64_t i = 0; i < n; i++)
            z += (b[i] & 0x7f) == 0;
        return z;
    case PARE_DT_INT8:
    case PARE_DT_UINT8:
    case PARE_DT_BOOL:
    case PARE_DT_FLOAT8E4M3FNUZ: /* 0x80 is NaN in the fnuz types */
    case PARE_DT_FLOAT8E5M2FNUZ:
        for (uint64_t i = 0; i < n; i++)
            z += b[i] == 0;
        return z;
    case PARE_DT_INT4:
    case PARE_DT_UINT4:
        for (uint64_t i = 0; i < n; i++)
            z += ((b[i / 2] >> (4 * (i & 1))) & 0xf) == 0;
        return z;
    case PARE_DT_FLOAT4E2M1:
        for (uint64_t i = 0; i < n; i++)
            z += ((b[i / 2] >> (4 * (i & 1))) & 0x7) == 0;
        return z;
    case PARE_DT_COMPLEX64:
        for (uint64_t i = 0; i < n; i++) {
            uint32_t re, im;
            memcpy(&re, b + i * 8, 4);
            memcpy(&im, b + i * 8 + 4, 4);
            z += ((re | im) & 0x7fffffffu) == 0;
        }
        return z;
    case PARE_DT_COMPLEX128:
        for (uint64_t i = 0; i < n; i++) {
            uint64_t re, im;
            memcpy(&re, b + i * 16, 8);
            memcpy(&im, b + i * 16 + 8, 8);
            z += ((re | im) & 0x7fffffffffffffffull) == 0;
        }
        return z;
    default: /* float8e8m0 has no zero; strings are not counted */
        return 0;
    }
}

/* progress over the external bytes --scan-weights reads (NULL: none shown) */
static cli_progress *g_scan_progress;
static uint64_t g_scan_done;

static void add_param_tensor(summary *s, const char *name, int dtype, int rank, uint64_t numel,
                             const pare_tensor *t, bool external, bool constant)
{
    uint64_t bytes = 0;
    if (dtype == PARE_DT_STRING)
        bytes = t ? t->nbytes : 0;
    else if (pare_dtype_valid(dtype)) {
        size_t nb = pare_dtype_nbytes(dtype, numel);
        bytes = nb == SIZE_MAX ? 0 : nb;
    }
    s->param_tensors++;
    s->params += numel;
    s->param_bytes += bytes;
    if (constant)
        s->const_params += numel;
    if (external)
        s->external_tensors++;
    if (dtype >= 0 && dtype < PARE_DT_COUNT) {
        s->by_dtype[dtype].tensors++;
        s->by_dtype[dtype].params += numel;
        s->by_dtype[dtype].bytes += bytes;
    }
    if (dtype == PARE_DT_STRING || dtype == PARE_DT_FLOAT8E8M0 || !pare_dtype_valid(dtype))
        return;
    if (external && !o_scan) {
        s->sp_skipped_tensors++;
        s->sp_skipped_params += numel;
        return;
    }
    if (!t || !t->data || t->nbytes < pare_dtype_nbytes(dtype, numel))
        return;
    uint64_t z = count_zeros(dtype, t->data, numel);
    if (external) {
        g_scan_done += t->nbytes;
        cli_progress_update(g_scan_progress, g_scan_done);
    }
    s->sp_tensors++;
    s->sp_params += numel;
    s->sp_zeros += z;
    if (rank >= 2 && numel > 0) {
        s->layers = xrealloc(s->layers, s->n_layers + 1, sizeof *s->layers);
        s->layers[s->n_layers++] = (layer_sparsity){name, numel, z};
    }
}

static void count_params(summary *s)
{
    /* reading hundreds of megabytes takes a while: say how far it got */
    if (o_scan && s->external_bytes >= ((uint64_t)64 << 20)) {
        g_scan_done = 0;
        g_scan_progress = cli_progress_start("scanning external weights", s->external_bytes);
    }
    for (size_t gi = 0; gi < s->graphs.n; gi++) {
        pare_graph *g = s->graphs.g[gi];
        for (size_t i = 0; i < g->n_values; i++) {
            pare_value *v = g->values[i];
            if (!v || (!v->init && !v->is_sparse_init))
                continue;
            if (v->is_sparse_init) {
                int64_t n = value_numel(v);
                pare_error err;
                bool scan = true;
                pare_tensor *t = pare_value_tensor(v, &err);
                if (!t)
                    scan = false;
                add_param_tensor(s, v->name, v->dtype, v->shape.rank, n < 0 ? 0 : (uint64_t)n,
                                 scan ? t : NULL, false, false);
                continue;
            }
            const pare_tensor *t = v->init;
            add_param_tensor(s, v->name, t->dtype, t->rank, pare_tensor_numel(t), t,
                             tensor_is_external(v), false);
        }
        /* Constant nodes hold weights in some exports */
        for (size_t i = 0; i < g->n_nodes; i++) {
            pare_node *n = g->nodes[i];
            if (!is_op(n, "Constant") || n->domain[0])
                continue;
            const pare_attr *a = pare_node_attr(n, "value");
            if (!a || !a->t)
                continue;
            const char *name = n->n_outputs && n->outputs[0] ? n->outputs[0]->name : n->name;
            add_param_tensor(s, name, a->t->dtype, a->t->rank, pare_tensor_numel(a->t), a->t,
                             false, true);
        }
    }
    cli_progress_stop(&g_scan_progress);
    if (s->const_params)
        note(s, "%" PRIu64 " parameters are held by Constant nodes and counted with the "
             "initializers", s->const_params);
    if (s->sp_skipped_tensors)
        note(s, "sparsity: %" PRIu64 " external-data tensor%s (%" PRIu64 " params) not scanned; "
             "use --scan-weights", s->sp_skipped_tensors, s->sp_skipped_tensors == 1 ? "" : "s",
             s->sp_skipped_params);
}

static int cmp_layer_sparse_desc(const void *a, const void *b)
{
    const layer_sparsity *x = a, *y = b;
    /* zeros/params compared exactly (x.z * y.p against y.z * x.p), so that
     * ties, common at 0% and 100%, fall through to the same order everywhere */
#ifdef __SIZEOF_INT128__
    unsigned __int128 l = (unsigned __int128)x->zeros * y->params;
    unsigned __int128 r = (unsigned __int128)y->zeros * x->params;
#else
    long double l = (long double)x->zeros * y->params;
    long double r = (long double)y->zeros * x->params;
#endif
    if (l != r)
        return l > r ? -1 : 1;
    if (x->params != y->params)
        return x->params > y->params ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* ------------------------------------------------------------------ */
/* quantization                                                        */

static const char *const qoperator_ops[] = {
    "QLinearConv", "QLinearMatMul", "MatMulInteger", "ConvInteger", "MatMulNBits", "QGemm",
    "QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu", "QLinearAveragePool",
    "QLinearGlobalAveragePool", "QLinearConcat", "QLinearSoftmax", "QLinearWhere",
    "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "MatMulBnb4", "GatherBlockQuantized",
    "QAttention", "QOrderedMatMul", "DynamicQuantizeLSTM", NULL};

static pare_node *producer_of(const pare_value *v)
{
    return v ? v->producer : NULL;
}

/* dtype a QuantizeLinear produces */
static int quantize_dtype(const pare_node *q)
{
    const pare_value *y = output_at(q, 0);
    if (y && y->dtype)
        return y->dtype;
    const pare_value *zp = input_at(q, 2);
    if (zp && zp->dtype)
        return zp->dtype;
    int64_t od = pare_node_attr_int(q, "output_dtype", 0);
    return od ? (int)od : PARE_DT_UINT8;
}

static const char *dq_granularity(const pare_node *dq)
{
    if (pare_node_attr_int(dq, "block_size", 0) > 0)
        return "blocked";
    const pare_value *scale = input_at(dq, 1);
    int64_t n = value_numel(scale);
    if (n > 1)
        return "per-channel";
    return "per-tensor";
}

static bool narrow_dtype(int dt)
{
    return dt && dt != PARE_DT_FLOAT && dt != PARE_DT_DOUBLE;
}

/* Follows a weight back to the tensor it is stored in, through
 * DequantizeLinear and layout ops. Fills storage dtype, params, how. */
static bool trace_weight(const pare_value *v, int *dtype, uint64_t *params, char *how,
                         size_t how_size)
{
    how[0] = '\0';
    for (int hops = 0; v && hops < 8; hops++) {
        if (v->init || v->is_sparse_init) {
            *dtype = v->init ? v->init->dtype : v->dtype;
            int64_t n = value_numel(v);
            *params = n < 0 ? 0 : (uint64_t)n;
            return true;
        }
        const pare_node *p = v->producer;
        if (!p)
            return false;
        if (is_op(p, "Constant")) {
            const pare_attr *a = pare_node_attr(p, "value");
            if (!a || !a->t)
                return false;
            *dtype = a->t->dtype;
            *params = pare_tensor_numel(a->t);
            return true;
        }
        if (is_op(p, "DequantizeLinear")) {
            snprintf(how, how_size, "QDQ, %s", dq_granularity(p));
            v = input_at(p, 0);
            continue;
        }
        if (is_op(p, "Cast") || is_op(p, "Transpose") || is_op(p, "Reshape") ||
            is_op(p, "Identity") || is_op(p, "Squeeze") || is_op(p, "Unsqueeze")) {
            v = input_at(p, 0);
            continue;
        }
        return false;
    }
    return false;
}

/* What feeds a MAC op's activation input: its dtype and how it got it. */
static void trace_activation(const pare_node *n, char *buf, size_t size)
{
    const pare_value *x = input_at(n, 0);
    const pare_node *p = producer_of(x);
    /* layout ops between a DequantizeLinear and its consumer keep the QDQ meaning */
    for (int hops = 0; p && hops < 8 && !p->domain[0] &&
                       (is_op(p, "Reshape") || is_op(p, "Flatten") || is_op(p, "Transpose") ||
                        is_op(p, "Squeeze") || is_op(p, "Unsqueeze") || is_op(p, "Identity"));
         hops++) {
        const pare_node *up = producer_of(input_at(p, 0));
        if (!up || !(is_op(up, "DequantizeLinear") || is_op(up, "Reshape") ||
                     is_op(up, "Flatten") || is_op(up, "Transpose") || is_op(up, "Squeeze") ||
                     is_op(up, "Unsqueeze") || is_op(up, "Identity")))
            break;
        p = up;
    }
    if (p && is_op(p, "DequantizeLinear")) {
        const pare_node *q = producer_of(input_at(p, 0));
        if (q && is_op(q, "QuantizeLinear")) {
            snprintf(buf, size, "%s (QDQ)", pare_dtype_name(quantize_dtype(q)));
            return;
        }
        if (q && is_op(q, "DynamicQuantizeLinear")) {
            snprintf(buf, size, "uint8 (dynamic)");
            return;
        }
    }
    if (p && is_op(p, "DynamicQuantizeLinear")) {
        snprintf(buf, size, "uint8 (dynamic)");
        return;
    }
    if (is_op(n, "DynamicQuantizeMatMul")) {
        snprintf(buf, size, "int8 (dynamic)");
        return;
    }
    if (x && x->dtype) {
        snprintf(buf, size, "%s", pare_dtype_name(x->dtype));
        return;
    }
    snprintf(buf, size, "?");
}

static void quant_add_row(summary *s, const char *op, const char *w, const char *a,
                          uint64_t params, int64_t macs)
{
    for (size_t i = 0; i < s->n_qrows; i++) {
        quant_row *r = &s->qrows[i];
        if (strcmp(r->op, op) == 0 && strcmp(r->weights, w) == 0 &&
            strcmp(r->activations, a) == 0) {
            r->nodes++;
            r->weight_params += params;
            if (r->macs >= 0 && (macs < 0 || !add64(r->macs, macs, &r->macs)))
                r->macs = -1;
            return;
        }
    }
    s->qrows = xrealloc(s->qrows, s->n_qrows + 1, sizeof *s->qrows);
    s->qrows[s->n_qrows++] = (quant_row){xstrdup(op), xstrdup(w), xstrdup(a), 1, params, macs};
}

static int cmp_qrow(const void *a, const void *b)
{
    const quant_row *x = a, *y = b;
    int c = strcmp(x->op, y->op);
    if (c)
        return c;
    if ((c = strcmp(x->weights, y->weights)))
        return c;
    return strcmp(x->activations, y->activations);
}

static void analyse_quant(summary *s)
{
    for (size_t k = 0; k < s->n_nodes; k++) {
        node_info *ni = &s->nodes[k];
        pare_node *n = ni->node;
        char opbuf[256];
        if (op_in(n, qoperator_ops))
            count_add(&s->qops, &s->n_qops, op_name(n, opbuf, sizeof opbuf), 0);
        if (is_op(n, "QuantizeLinear")) {
            const pare_value *y = output_at(n, 0);
            for (size_t u = 0; y && u < y->n_uses; u++)
                if (is_op(y->uses[u].node, "DequantizeLinear"))
                    count_add(&s->qdq_pairs, &s->n_qdq_pairs,
                              pare_dtype_name(quantize_dtype(n)), 0);
        }
        if (is_op(n, "DequantizeLinear")) {
            const pare_value *x = input_at(n, 0);
            bool stored = x && (x->init || x->is_sparse_init ||
                                (x->producer && is_op(x->producer, "Constant")));
            if (stored) {
                int dt = x->dtype;
                int64_t np = value_numel(x);
                char key[96];
                snprintf(key, sizeof key, "%s %s", pare_dtype_name(dt), dq_granularity(n));
                count_add(&s->weight_dq, &s->n_weight_dq, key, np < 0 ? 0 : (uint64_t)np);
            }
        }
        if (!is_mac_op(n))
            continue;
        int wi = mac_weight_index(n);
        char wdesc[128], adesc[64], how[64];
        int wdt = 0;
        uint64_t wparams = 0;
        if (is_op(n, "MatMulNBits") || is_op(n, "MatMulBnb4")) {
            int64_t bits = is_op(n, "MatMulBnb4") ? 4 : pare_node_attr_int(n, "bits", 4);
            int64_t bs = pare_node_attr_int(n, "block_size", 0);
            int64_t kk = pare_node_attr_int(n, "K", 0), nn = pare_node_attr_int(n, "N", 0);
            snprintf(wdesc, sizeof wdesc, "int%" PRId64 " (blocked %" PRId64 ")", bits, bs);
            wdt = bits == 4 ? PARE_DT_INT4 : PARE_DT_INT8;
            int64_t p;
            wparams = mul64(kk, nn, &p) ? (uint64_t)p : 0;
        } else if (wi >= 0 && trace_weight(input_at(n, (size_t)wi), &wdt, &wparams, how,
                                           sizeof how)) {
            if (how[0])
                snprintf(wdesc, sizeof wdesc, "%s (%s)", pare_dtype_name(wdt), how);
            else
                snprintf(wdesc, sizeof wdesc, "%s", pare_dtype_name(wdt));
        } else if (wi < 0 && trace_weight(input_at(n, 1), &wdt, &wparams, how, sizeof how)) {
            snprintf(wdesc, sizeof wdesc, "%s", pare_dtype_name(wdt)); /* LSTM/GRU/RNN */
        } else {
            snprintf(wdesc, sizeof wdesc, "none (both inputs computed)");
            wdt = 0;
        }
        trace_activation(n, adesc, sizeof adesc);
        quant_add_row(s, op_name(n, opbuf, sizeof opbuf), wdesc, adesc, wparams, ni->macs);
        if (wdt) {
            s->q_weight_params += wparams;
            if (narrow_dtype(wdt))
                s->q_weight_params_quant += wparams;
        }
        if (ni->macs >= 0) {
            bool quant = (wdt && narrow_dtype(wdt)) ||
                         (input_at(n, 0) && narrow_dtype(input_at(n, 0)->dtype)) ||
                         strstr(adesc, "QDQ") || strstr(adesc, "dynamic");
            add64(s->q_macs, ni->macs, &s->q_macs);
            if (quant)
                add64(s->q_macs_quant, ni->macs, &s->q_macs_quant);
        }
    }
    if (s->n_qrows > 1)
        qsort(s->qrows, s->n_qrows, sizeof *s->qrows, cmp_qrow);
    if (s->n_qdq_pairs > 1)
        qsort(s->qdq_pairs, s->n_qdq_pairs, sizeof *s->qdq_pairs, cmp_count_row);
    if (s->n_weight_dq > 1)
        qsort(s->weight_dq, s->n_weight_dq, sizeof *s->weight_dq, cmp_count_row);
    if (s->n_qops > 1)
        qsort(s->qops, s->n_qops, sizeof *s->qops, cmp_count_row);
}

static bool is_quantized(const summary *s)
{
    return s->n_qdq_pairs || s->n_weight_dq || s->n_qops || s->q_weight_params_quant ||
           s->q_macs_quant;
}

/* ------------------------------------------------------------------ */
/* nodes, ops, compute                                                 */

static void add_node_info(summary *s, pare_node *n, const char *path, int depth)
{
    s->nodes = xrealloc(s->nodes, s->n_nodes + 1, sizeof *s->nodes);
    node_info *ni = &s->nodes[s->n_nodes++];
    memset(ni, 0, sizeof *ni);
    ni->node = n;
    ni->path = xstrdup(path);
    ni->depth = depth;
    node_cost(n, &ni->cls, &ni->macs, &ni->flops);
    for (size_t i = 0; i < n->n_inputs; i++) {
        const pare_value *v = n->inputs[i];
        if (v && (v->init || v->is_sparse_init)) {
            int64_t k = value_numel(v);
            if (k > 0)
                ni->params += (uint64_t)k;
        }
    }
}

static void walk_nodes(summary *s, pare_graph *g, const char *prefix, int depth)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        pare_node *n = g->nodes[i];
        char path[512];
        snprintf(path, sizeof path, "%s%zu", prefix, i);
        add_node_info(s, n, path, depth);
        if (depth == 0)
            s->nodes_main++;
        else
            s->nodes_sub++;
        for (size_t a = 0; a < n->n_attrs; a++) {
            const pare_attr *at = &n->attrs[a];
            if (at->g) {
                char sub[600];
                snprintf(sub, sizeof sub, "%s.%s.", path, at->name);
                walk_nodes(s, at->g, sub, depth + 1);
            }
            for (size_t j = 0; at->graphs && j < at->n; j++) {
                char sub[600];
                snprintf(sub, sizeof sub, "%s.%s[%zu].", path, at->name, j);
                walk_nodes(s, at->graphs[j], sub, depth + 1);
            }
        }
    }
}

static int cmp_op_stat(const void *a, const void *b)
{
    const op_stat *x = a, *y = b;
    if (x->nodes != y->nodes)
        return x->nodes > y->nodes ? -1 : 1;
    int c = strcmp(x->domain, y->domain);
    return c ? c : strcmp(x->op, y->op);
}

static void tally_ops(summary *s)
{
    s->macs = 0;
    s->flops = 0;
    for (size_t k = 0; k < s->n_nodes; k++) {
        const node_info *ni = &s->nodes[k];
        const pare_node *n = ni->node;
        op_stat *o = NULL;
        for (size_t i = 0; i < s->n_ops && !o; i++)
            if (strcmp(s->ops[i].op, n->op_type) == 0 && strcmp(s->ops[i].domain, n->domain) == 0)
                o = &s->ops[i];
        if (!o) {
            s->ops = xrealloc(s->ops, s->n_ops + 1, sizeof *s->ops);
            o = &s->ops[s->n_ops++];
            *o = (op_stat){n->domain, n->op_type, 0, 0, 0, 0};
        }
        o->nodes++;
        if (ni->macs < 0 || ni->flops < 0) {
            o->unknown++;
            s->nodes_unestimated++;
            continue;
        }
        add64(o->macs, ni->macs, &o->macs);
        add64(o->flops, ni->flops, &o->flops);
        add64(s->macs, ni->macs, &s->macs);
        add64(s->flops, ni->flops, &s->flops);
    }
    if (s->n_ops > 1)
        qsort(s->ops, s->n_ops, sizeof *s->ops, cmp_op_stat);
    if (s->nodes_sub)
        note(s, "nodes inside If/Loop/Scan bodies are counted once (a loop's trip count is not "
             "known)");
    uint64_t unknown_ops = 0, unknown_shapes = 0;
    for (size_t k = 0; k < s->n_nodes; k++) {
        if (s->nodes[k].cls == COST_UNKNOWN_OP)
            unknown_ops++;
        else if (s->nodes[k].macs < 0 || s->nodes[k].flops < 0)
            unknown_shapes++;
    }
    if (unknown_shapes)
        note(s, "MACs/FLOPs: %" PRIu64 " node%s not estimated (shapes unknown)", unknown_shapes,
             unknown_shapes == 1 ? "" : "s");
    if (unknown_ops)
        note(s, "MACs/FLOPs: %" PRIu64 " node%s of ops without a cost formula not counted",
             unknown_ops, unknown_ops == 1 ? "" : "s");
}

/* ------------------------------------------------------------------ */
/* peak activation memory                                              */

static int64_t value_bytes(const pare_value *v)
{
    int64_t n = value_numel(v);
    if (n < 0 || !v->dtype || v->dtype == PARE_DT_STRING || !pare_dtype_valid(v->dtype))
        return -1;
    size_t b = pare_dtype_nbytes(v->dtype, (uint64_t)n);
    return b == SIZE_MAX ? -1 : (int64_t)b;
}

/* Walks the main graph in order: a value is live from its producer (or the
 * start, for graph inputs) to its last consumer (the end, for outputs);
 * the peak is the largest sum of live bytes while a node runs (its inputs
 * and outputs both live). Initializers and Constant outputs are weights,
 * not activations. */
static void peak_memory(summary *s)
{
    pare_graph *g = pare_model_graph(s->m);
    size_t nv = g->n_values;
    size_t *last = xcalloc(nv, sizeof *last);
    bool *live = xcalloc(nv, sizeof *live);
    int64_t *bytes = xcalloc(nv, sizeof *bytes);
    const size_t END = (size_t)-1;
    for (size_t i = 0; i < nv; i++) {
        pare_value *v = g->values[i];
        last[i] = 0;
        bytes[i] = 0;
        if (!v)
            continue;
        if (v->id < nv && g->values[v->id] != v)
            continue;
        bytes[i] = v->init || v->is_sparse_init ? 0 : value_bytes(v);
        if (v->is_output)
            last[i] = END;
    }
    /* last use: the index of the main-graph node that reads the value,
     * directly or from inside one of its subgraphs */
    for (size_t k = 0; k < g->n_nodes; k++)
        g->nodes[k]->user = (void *)(uintptr_t)(k + 1);
    for (size_t i = 0; i < nv; i++) {
        pare_value *v = g->values[i];
        if (!v || last[i] == END)
            continue;
        for (size_t u = 0; u < v->n_uses; u++) {
            const pare_node *n = v->uses[u].node;
            while (n && n->graph != g)
                n = n->graph->owner;
            if (!n || !n->user)
                continue;
            size_t idx = (size_t)(uintptr_t)n->user - 1;
            if (idx + 1 > last[i])
                last[i] = idx + 1;
        }
    }
    uint64_t cur = 0, peak = 0, unknown = 0;
    const pare_node *peak_node = NULL;
    for (size_t i = 0; i < g->n_inputs; i++) {
        pare_value *v = g->inputs[i];
        if (!is_real_input(v) || v->id >= nv || g->values[v->id] != v || live[v->id])
            continue;
        live[v->id] = true;
        if (bytes[v->id] < 0)
            unknown++;
        else
            cur += (uint64_t)bytes[v->id];
    }
    peak = cur;
    for (size_t k = 0; k < g->n_nodes; k++) {
        pare_node *n = g->nodes[k];
        bool weight = is_op(n, "Constant") && !n->domain[0];
        for (size_t o = 0; o < n->n_outputs; o++) {
            pare_value *v = n->outputs[o];
            if (!v || v->id >= nv || g->values[v->id] != v || live[v->id])
                continue;
            if (weight) {
                bytes[v->id] = 0;
                continue;
            }
            live[v->id] = true;
            if (bytes[v->id] < 0)
                unknown++;
            else
                cur += (uint64_t)bytes[v->id];
        }
        if (cur > peak) {
            peak = cur;
            peak_node = n;
        }
        /* free what this node read last, and outputs nobody reads */
        for (size_t i = 0; i < n->n_inputs + n->n_outputs; i++) {
            pare_value *v = i < n->n_inputs ? n->inputs[i] : n->outputs[i - n->n_inputs];
            if (!v || v->id >= nv || g->values[v->id] != v || !live[v->id])
                continue;
            if (last[v->id] == END || last[v->id] > k + 1)
                continue;
            live[v->id] = false;
            if (bytes[v->id] > 0)
                cur -= (uint64_t)bytes[v->id];
        }
    }
    for (size_t k = 0; k < g->n_nodes; k++)
        g->nodes[k]->user = NULL;
    s->peak_bytes = peak;
    s->peak_node = peak_node;
    s->unknown_size_values = unknown;
    if (unknown)
        note(s, "peak memory: %" PRIu64 " value%s of unknown size not counted", unknown,
             unknown == 1 ? "" : "s");
    free(last);
    free(live);
    free(bytes);
}

/* ------------------------------------------------------------------ */
/* building a summary                                                  */

static int build_summary(const char *path, summary *s)
{
    memset(s, 0, sizeof *s);
    s->path = path;
    int rc = load_model(path, &s->m);
    if (rc)
        return rc;
    if ((rc = require_valid(path, s->m)))
        return rc;
    pare_graph *g = pare_model_graph(s->m);
    if ((rc = check_shape_args(path, g)))
        return rc;
    s->file_bytes = pare_model_file_size(s->m);
    s->external_bytes = pare_model_external_bytes(s->m);
    snapshot_io(s);
    infer(s, true);
    pare_graph_walk(g, collect_graph, &s->graphs);
    walk_nodes(s, g, "", 0);
    tally_ops(s);
    count_params(s);
    if (s->n_layers > 1)
        qsort(s->layers, s->n_layers, sizeof *s->layers, cmp_layer_sparse_desc);
    analyse_quant(s);
    peak_memory(s);
    return 0;
}

/* ------------------------------------------------------------------ */
/* text output                                                         */

static void emit_table(FILE *out, pare_table *t, int indent)
{
    char *text;
    size_t len;
    pare_error err;
    if (pare_table_render(t, indent, &text, &len, &err) != PARE_OK) {
        cli_error(NULL, "%s", err.msg);
        exit(CLI_EXIT_FAIL);
    }
    fwrite(text, 1, len, out);
    free(text);
    pare_table_free(t);
}

static pare_table *new_table(size_t ncols)
{
    pare_table *t;
    pare_error err;
    if (pare_table_new(ncols, &t, &err) != PARE_OK) {
        cli_error(NULL, "%s", err.msg);
        exit(CLI_EXIT_FAIL);
    }
    return t;
}

static const char *io_type(const io_desc *d)
{
    static const char *kinds[] = {"", "sequence", "map", "optional", "sparse tensor"};
    if (d->elem_kind > 0 && d->elem_kind <= 4)
        return kinds[d->elem_kind];
    return d->dtype ? pare_dtype_name(d->dtype) : "?";
}

static void text_io(FILE *out, const char *title, const io_desc *d, size_t n)
{
    fprintf(out, "%s:\n", title);
    if (!n) {
        fprintf(out, "  (none)\n");
        return;
    }
    pare_table *t = new_table(3);
    for (size_t i = 0; i < n; i++) {
        char sb[512];
        pare_table_row(t);
        pare_table_cell(t, "%s", d[i].name);
        pare_table_cell(t, "%s", io_type(&d[i]));
        pare_table_cell(t, "%s", d[i].elem_kind ? "" : shape_str(&d[i].shape, sb, sizeof sb));
    }
    emit_table(out, t, 2);
}

static void text_summary(FILE *out, const summary *s)
{
    char b1[64], b2[64], b3[64], v1[512], v2[512];
    pare_model *m = s->m;
    fprintf(out, "%s: %s (%s bytes)", vis(cli_display_name(s->path), v1, sizeof v1),
            cli_fmt_bytes(s->file_bytes, b1, sizeof b1), cli_fmt_count(s->file_bytes, b2,
                                                                       sizeof b2));
    if (s->external_bytes)
        fprintf(out, " + %s external data", cli_fmt_bytes(s->external_bytes, b3, sizeof b3));
    fprintf(out, "\n");
    fprintf(out, "ir version: %" PRId64 "\n", pare_model_ir_version(m));
    fprintf(out, "opsets:");
    for (size_t i = 0; i < pare_model_opset_count(m); i++) {
        const char *d;
        int64_t v;
        pare_model_opset(m, i, &d, &v);
        fprintf(out, "%s %s %" PRId64, i ? "," : "", d[0] ? d : "ai.onnx", v);
    }
    fprintf(out, "\n");
    const char *prod = pare_model_producer(m), *pv = pare_model_producer_version(m);
    fprintf(out, "producer: %s%s%s\n", prod[0] ? vis(prod, v1, sizeof v1) : "(none)",
            pv[0] ? " " : "", vis(pv, v2, sizeof v2));
    text_io(out, "inputs", s->inputs, s->n_inputs);
    text_io(out, "outputs", s->outputs, s->n_outputs);

    /* ops */
    fprintf(out, "ops: %zu node%s", s->nodes_main + s->nodes_sub,
            s->nodes_main + s->nodes_sub == 1 ? "" : "s");
    if (s->nodes_sub)
        fprintf(out, " (%zu in subgraphs)", s->nodes_sub);
    fprintf(out, ", %zu op type%s\n", s->n_ops, s->n_ops == 1 ? "" : "s");
    if (s->n_ops) {
        pare_table *t = new_table(2);
        pare_table_column(t, 1, NULL, PARE_ALIGN_RIGHT);
        for (size_t i = 0; i < s->n_ops; i++) {
            pare_table_row(t);
            if (s->ops[i].domain[0])
                pare_table_cell(t, "%s:%s", s->ops[i].domain, s->ops[i].op);
            else
                pare_table_cell(t, "%s", s->ops[i].op);
            pare_table_cell(t, "%" PRIu64, s->ops[i].nodes);
        }
        emit_table(out, t, 2);
    }

    /* parameters */
    fprintf(out, "parameters: %s in %" PRIu64 " tensor%s, %s\n",
            cli_fmt_count(s->params, b1, sizeof b1), s->param_tensors,
            s->param_tensors == 1 ? "" : "s", cli_fmt_bytes(s->param_bytes, b2, sizeof b2));
    {
        pare_table *t = new_table(4);
        pare_table_column(t, 1, NULL, PARE_ALIGN_RIGHT);
        pare_table_column(t, 2, NULL, PARE_ALIGN_RIGHT);
        pare_table_column(t, 3, NULL, PARE_ALIGN_RIGHT);
        for (int dt = 0; dt < PARE_DT_COUNT; dt++) {
            const dtype_stat *d = &s->by_dtype[dt];
            if (!d->tensors)
                continue;
            pare_table_row(t);
            pare_table_cell(t, "%s", pare_dtype_name(dt));
            pare_table_cell(t, "%s params", cli_fmt_count(d->params, b1, sizeof b1));
            pare_table_cell(t, "%" PRIu64 " tensor%s", d->tensors, d->tensors == 1 ? "" : "s");
            pare_table_cell(t, "%s", cli_fmt_bytes(d->bytes, b2, sizeof b2));
        }
        emit_table(out, t, 2);
    }

    /* sparsity */
    fprintf(out, "sparsity: ");
    if (s->sp_params)
        fprintf(out, "%s exact zeros (%s of %s scanned params)",
                cli_fmt_percent((double)s->sp_zeros, (double)s->sp_params, b1, sizeof b1),
                cli_fmt_count(s->sp_zeros, b2, sizeof b2),
                cli_fmt_count(s->sp_params, b3, sizeof b3));
    else
        fprintf(out, "no tensors scanned");
    if (s->sp_skipped_tensors)
        fprintf(out, "; %" PRIu64 " external tensor%s not scanned (use --scan-weights)",
                s->sp_skipped_tensors, s->sp_skipped_tensors == 1 ? "" : "s");
    fprintf(out, "\n");
    if (s->n_layers) {
        /* the densest layers are listed only where they are not already shown */
        size_t k = s->n_layers < TOP_LAYERS ? s->n_layers : TOP_LAYERS;
        size_t rest = s->n_layers - k < TOP_LAYERS ? s->n_layers - k : TOP_LAYERS;
        pare_table *t = new_table(4);
        pare_table_column(t, 2, NULL, PARE_ALIGN_RIGHT);
        pare_table_column(t, 3, NULL, PARE_ALIGN_RIGHT);
        for (size_t i = 0; i < k + rest; i++) {
            const layer_sparsity *l = i < k ? &s->layers[i] : &s->layers[s->n_layers - 1 - (i - k)];
            pare_table_row(t);
            pare_table_cell(t, "%s", i == 0 ? "most sparse:" : i == k ? "least sparse:" : "");
            pare_table_cell(t, "%s", l->name);
            pare_table_cell(t, "%s of", cli_fmt_percent((double)l->zeros, (double)l->params, b1,
                                                        sizeof b1));
            pare_table_cell(t, "%s", cli_fmt_count(l->params, b2, sizeof b2));
        }
        emit_table(out, t, 2);
    }

    /* quantization */
    if (!is_quantized(s)) {
        fprintf(out, "quantization: none");
        int main_dt = 0;
        uint64_t best = 0;
        for (int dt = 0; dt < PARE_DT_COUNT; dt++)
            if (s->by_dtype[dt].params > best) {
                best = s->by_dtype[dt].params;
                main_dt = dt;
            }
        if (main_dt)
            fprintf(out, " (weights %s)", pare_dtype_name(main_dt));
        fprintf(out, "\n");
    } else {
        fprintf(out, "quantization: %s of MAC-op weights (by params), %s of MACs\n",
                cli_fmt_percent((double)s->q_weight_params_quant, (double)s->q_weight_params, b1,
                                sizeof b1),
                cli_fmt_percent((double)s->q_macs_quant, (double)s->q_macs, b2, sizeof b2));
        pare_table *t = new_table(4);
        pare_table_column(t, 0, "op", PARE_ALIGN_LEFT);
        pare_table_column(t, 1, "nodes", PARE_ALIGN_RIGHT);
        pare_table_column(t, 2, "weights", PARE_ALIGN_LEFT);
        pare_table_column(t, 3, "activations", PARE_ALIGN_LEFT);
        for (size_t i = 0; i < s->n_qrows; i++) {
            pare_table_row(t);
            pare_table_cell(t, "%s", s->qrows[i].op);
            pare_table_cell(t, "%" PRIu64, s->qrows[i].nodes);
            pare_table_cell(t, "%s", s->qrows[i].weights);
            pare_table_cell(t, "%s", s->qrows[i].activations);
        }
        emit_table(out, t, 2);
        const struct {
            const char *title;
            const count_row *rows;
            size_t n;
        } lists[] = {{"QDQ pairs (activations)", s->qdq_pairs, s->n_qdq_pairs},
                     {"DequantizeLinear of stored weights", s->weight_dq, s->n_weight_dq},
                     {"QOperator ops", s->qops, s->n_qops}};
        for (size_t l = 0; l < 3; l++) {
            if (!lists[l].n)
                continue;
            fprintf(out, "  %s:", lists[l].title);
            for (size_t i = 0; i < lists[l].n; i++)
                fprintf(out, "%s %s %" PRIu64, i ? "," : "",
                        vis(lists[l].rows[i].key, v1, sizeof v1), lists[l].rows[i].count);
            fprintf(out, "\n");
        }
    }

    /* compute */
    fprintf(out, "compute: %s MACs, %s FLOPs", cli_fmt_si((double)s->macs, b1, sizeof b1),
            cli_fmt_si((double)s->flops, b2, sizeof b2));
    if (s->nodes_unestimated)
        fprintf(out, " (%" PRIu64 " node%s not estimated)", s->nodes_unestimated,
                s->nodes_unestimated == 1 ? "" : "s");
    fprintf(out, "\n");
    if (s->n_eff_inputs) {
        fprintf(out, "  for inputs:");
        for (size_t i = 0; i < s->n_eff_inputs; i++) {
            char sb[512];
            fprintf(out, "%s %s %s", i ? "," : "", vis(s->eff_inputs[i].name, v1, sizeof v1),
                    s->eff_inputs[i].elem_kind
                        ? io_type(&s->eff_inputs[i])
                        : vis(shape_str(&s->eff_inputs[i].shape, sb, sizeof sb), v2, sizeof v2));
        }
        fprintf(out, "\n");
    }
    {
        /* ops with a cost, by FLOPs */
        size_t *order = xcalloc(s->n_ops, sizeof *order), n = 0;
        for (size_t i = 0; i < s->n_ops; i++)
            if (s->ops[i].macs || s->ops[i].flops)
                order[n++] = i;
        for (size_t i = 1; i < n; i++)
            for (size_t k = i; k > 0 && s->ops[order[k]].flops > s->ops[order[k - 1]].flops; k--) {
                size_t tmp = order[k];
                order[k] = order[k - 1];
                order[k - 1] = tmp;
            }
        pare_table *t = new_table(5);
        pare_table_column(t, 0, "", PARE_ALIGN_LEFT);
        pare_table_column(t, 1, "MACs", PARE_ALIGN_RIGHT);
        pare_table_column(t, 2, "", PARE_ALIGN_RIGHT);
        pare_table_column(t, 3, "FLOPs", PARE_ALIGN_RIGHT);
        pare_table_column(t, 4, "", PARE_ALIGN_RIGHT);
        for (size_t i = 0; i < n; i++) {
            const op_stat *o = &s->ops[order[i]];
            pare_table_row(t);
            if (o->domain[0])
                pare_table_cell(t, "%s:%s", o->domain, o->op);
            else
                pare_table_cell(t, "%s", o->op);
            pare_table_cell(t, "%s", o->macs ? cli_fmt_si((double)o->macs, b1, sizeof b1) : "");
            pare_table_cell(t, "%s", o->macs ? cli_fmt_percent((double)o->macs, (double)s->macs,
                                                               b2, sizeof b2) : "");
            pare_table_cell(t, "%s", cli_fmt_si((double)o->flops, b3, sizeof b3));
            pare_table_cell(t, "%s", cli_fmt_percent((double)o->flops, (double)s->flops, b2,
                                                     sizeof b2));
        }
        if (n)
            emit_table(out, t, 2);
        else
            pare_table_free(t);
        free(order);
    }

    /* memory */
    fprintf(out, "peak activation memory: %s", cli_fmt_bytes(s->peak_bytes, b1, sizeof b1));
    if (s->peak_node) {
        char lbl[300];
        fprintf(out, " (while node %s runs)",
                vis(pare_node_label(s->peak_node, lbl, sizeof lbl), v1, sizeof v1));
    }
    fprintf(out, "\n");
    if (s->n_notes) {
        fprintf(out, "notes:\n");
        for (size_t i = 0; i < s->n_notes; i++) {
            char *t = xstrdup(s->notes[i]);
            vis(s->notes[i], t, strlen(t) + 1);
            fprintf(out, "  - %s\n", t);
            free(t);
        }
    }
}

static void value_brief(const pare_value *v, char *buf, size_t size)
{
    char sb[256];
    if (!v) {
        snprintf(buf, size, "-");
        return;
    }
    snprintf(buf, size, "%s%s %s", v->name, v->init || v->is_sparse_init ? "*" : "",
             shape_str(&v->shape, sb, sizeof sb));
}

static void text_nodes(FILE *out, const summary *s)
{
    char b1[64];
    fprintf(out, "nodes (* marks initializers):\n");
    pare_table *t = new_table(7);
    pare_table_column(t, 0, "#", PARE_ALIGN_RIGHT);
    pare_table_column(t, 1, "name", PARE_ALIGN_LEFT);
    pare_table_column(t, 2, "op", PARE_ALIGN_LEFT);
    pare_table_column(t, 3, "inputs", PARE_ALIGN_LEFT);
    pare_table_column(t, 4, "outputs", PARE_ALIGN_LEFT);
    pare_table_column(t, 5, "params", PARE_ALIGN_RIGHT);
    pare_table_column(t, 6, "MACs", PARE_ALIGN_RIGHT);
    for (size_t k = 0; k < s->n_nodes; k++) {
        const node_info *ni = &s->nodes[k];
        const pare_node *n = ni->node;
        char opb[256];
        pare_table_row(t);
        pare_table_cell(t, "%s", ni->path);
        pare_table_cell(t, "%s", n->name[0] ? n->name : "-");
        pare_table_cell(t, "%s", op_name(n, opb, sizeof opb));
        char *ins = xstrdup(""), *outs = xstrdup("");
        for (size_t i = 0; i < n->n_inputs; i++) {
            char vb[512];
            value_brief(n->inputs[i], vb, sizeof vb);
            char *t2 = xasprintf("%s%s%s", ins, i ? ", " : "", vb);
            free(ins);
            ins = t2;
        }
        for (size_t i = 0; i < n->n_outputs; i++) {
            char vb[512];
            value_brief(n->outputs[i], vb, sizeof vb);
            char *t2 = xasprintf("%s%s%s", outs, i ? ", " : "", vb);
            free(outs);
            outs = t2;
        }
        pare_table_cell(t, "%s", ins);
        pare_table_cell(t, "%s", outs);
        free(ins);
        free(outs);
        pare_table_cell(t, "%s", ni->params ? cli_fmt_count(ni->params, b1, sizeof b1) : "");
        if (ni->macs < 0)
            pare_table_cell(t, "?");
        else
            pare_table_cell(t, "%s", ni->macs ? cli_fmt_count((uint64_t)ni->macs, b1, sizeof b1)
                                              : "");
    }
    emit_table(out, t, 2);
}

/* ------------------------------------------------------------------ */
/* JSON output                                                         */

static void json_shape(pare_json *j, const pare_shape *s)
{
    if (s->rank < 0) {
        pare_json_null(j);
        return;
    }
    pare_json_begin_array_flat(j);
    for (int i = 0; i < s->rank; i++) {
        if (s->dims[i].value >= 0)
            pare_json_int(j, s->dims[i].value);
        else if (s->dims[i].param)
            pare_json_string(j, s->dims[i].param);
        else
            pare_json_null(j);
    }
    pare_json_end_array(j);
}

static void json_io(pare_json *j, const char *key, const io_desc *d, size_t n)
{
    pare_json_key(j, key);
    pare_json_begin_array(j);
    for (size_t i = 0; i < n; i++) {
        pare_json_begin_object_flat(j);
        pare_json_kv_string(j, "name", d[i].name);
        pare_json_kv_string(j, "dtype", io_type(&d[i]));
        pare_json_key(j, "shape");
        if (d[i].elem_kind)
            pare_json_null(j);
        else
            json_shape(j, &d[i].shape);
        pare_json_end_object(j);
    }
    pare_json_end_array(j);
}

static void json_int_or_null(pare_json *j, const char *key, int64_t v)
{
    pare_json_key(j, key);
    if (v < 0)
        pare_json_null(j);
    else
        pare_json_int(j, v);
}

static void json_share(pare_json *j, const char *key, double part, double whole)
{
    pare_json_key(j, key);
    if (whole > 0)
        pare_json_double_sig(j, part / whole, 6);
    else
        pare_json_null(j);
}

static void json_value_ref(pare_json *j, const pare_value *v)
{
    if (!v) {
        pare_json_null(j);
        return;
    }
    pare_json_begin_object_flat(j);
    pare_json_kv_string(j, "name", v->name);
    pare_json_kv_string(j, "dtype", v->dtype ? pare_dtype_name(v->dtype) : "?");
    pare_json_key(j, "shape");
    json_shape(j, &v->shape);
    pare_json_kv_bool(j, "initializer", v->init || v->is_sparse_init);
    pare_json_end_object(j);
}

static void json_count_rows(pare_json *j, const char *key, const char *name, const count_row *r,
                            size_t n, bool with_params)
{
    pare_json_key(j, key);
    pare_json_begin_array(j);
    for (size_t i = 0; i < n; i++) {
        pare_json_begin_object_flat(j);
        pare_json_kv_string(j, name, r[i].key);
        pare_json_kv_uint(j, "count", r[i].count);
        if (with_params)
            pare_json_kv_uint(j, "params", r[i].params);
        pare_json_end_object(j);
    }
    pare_json_end_array(j);
}

static void json_summary_body(pare_json *j, const summary *s, bool with_nodes)
{
    pare_model *m = s->m;
    pare_json_kv_string(j, "file", s->path);
    pare_json_kv_uint(j, "file_bytes", s->file_bytes);
    pare_json_kv_uint(j, "external_data_bytes", s->external_bytes);
    pare_json_kv_int(j, "ir_version", pare_model_ir_version(m));
    pare_json_key(j, "producer");
    pare_json_begin_object_flat(j);
    pare_json_kv_string(j, "name", pare_model_producer(m));
    pare_json_kv_string(j, "version", pare_model_producer_version(m));
    pare_json_end_object(j);
    pare_json_key(j, "opsets");
    pare_json_begin_array(j);
    for (size_t i = 0; i < pare_model_opset_count(m); i++) {
        const char *d;
        int64_t v;
        pare_model_opset(m, i, &d, &v);
        pare_json_begin_object_flat(j);
        pare_json_kv_string(j, "domain", d[0] ? d : "ai.onnx");
        pare_json_kv_int(j, "version", v);
        pare_json_end_object(j);
    }
    pare_json_end_array(j);
    json_io(j, "inputs", s->inputs, s->n_inputs);
    json_io(j, "outputs", s->outputs, s->n_outputs);

    pare_json_key(j, "graph");
    pare_json_begin_object(j);
    pare_json_kv_uint(j, "nodes", s->nodes_main + s->nodes_sub);
    pare_json_kv_uint(j, "nodes_in_subgraphs", s->nodes_sub);
    pare_json_kv_uint(j, "subgraphs", s->graphs.n ? s->graphs.n - 1 : 0);
    pare_json_key(j, "ops");
    pare_json_begin_array(j);
    for (size_t i = 0; i < s->n_ops; i++) {
        pare_json_begin_object_flat(j);
        pare_json_kv_string(j, "op", s->ops[i].op);
        pare_json_kv_string(j, "domain", s->ops[i].domain[0] ? s->ops[i].domain : "ai.onnx");
        pare_json_kv_uint(j, "count", s->ops[i].nodes);
        pare_json_end_object(j);
    }
    pare_json_end_array(j);
    pare_json_end_object(j);

    pare_json_key(j, "params");
    pare_json_begin_object(j);
    pare_json_kv_uint(j, "total", s->params);
    pare_json_kv_uint(j, "bytes", s->param_bytes);
    pare_json_kv_uint(j, "tensors", s->param_tensors);
    pare_json_kv_uint(j, "external_tensors", s->external_tensors);
    pare_json_kv_uint(j, "in_constant_nodes", s->const_params);
    pare_json_key(j, "by_dtype");
    pare_json_begin_array(j);
    for (int dt = 0; dt < PARE_DT_COUNT; dt++) {
        const dtype_stat *d = &s->by_dtype[dt];
        if (!d->tensors)
            continue;
        pare_json_begin_object_flat(j);
        pare_json_kv_string(j, "dtype", pare_dtype_name(dt));
        pare_json_kv_uint(j, "tensors", d->tensors);
        pare_json_kv_uint(j, "params", d->params);
        pare_json_kv_uint(j, "bytes", d->bytes);
        pare_json_end_object(j);
    }
    pare_json_end_array(j);
    pare_json_end_object(j);

    pare_json_key(j, "sparsity");
    pare_json_begin_object(j);
    pare_json_kv_uint(j, "scanned_tensors", s->sp_tensors);
    pare_json_kv_uint(j, "scanned_params", s->sp_params);
    pare_json_kv_uint(j, "zeros", s->sp_zeros);
    json_share(j, "share", (double)s->sp_zeros, (double)s->sp_params);
    pare_json_kv_uint(j, "skipped_external_tensors", s->sp_skipped_tensors);
    pare_json_kv_uint(j, "skipped_external_params", s->sp_skipped_params);
    for (int side = 0; side < 2; side++) {
        pare_json_key(j, side ? "least_sparse" : "most_sparse");
        pare_json_begin_array(j);
        size_t k = s->n_layers < TOP_LAYERS ? s->n_layers : TOP_LAYERS;
        for (size_t i = 0; i < k; i++) {
            const layer_sparsity *l = &s->layers[side ? s->n_layers - 1 - i : i];
            pare_json_begin_object_flat(j);
            pare_json_kv_string(j, "name", l->name);
            pare_json_kv_uint(j, "params", l->params);
            pare_json_kv_uint(j, "zeros", l->zeros);
            json_share(j, "share", (double)l->zeros, (double)l->params);
            pare_json_end_object(j);
        }
        pare_json_end_array(j);
    }
    pare_json_end_object(j);

    pare_json_key(j, "quantization");
    pare_json_begin_object(j);
    pare_json_kv_bool(j, "quantized", is_quantized(s));
    pare_json_kv_uint(j, "mac_weight_params", s->q_weight_params);
    pare_json_kv_uint(j, "mac_weight_params_quantized", s->q_weight_params_quant);
    json_share(j, "weight_share", (double)s->q_weight_params_quant, (double)s->q_weight_params);
    json_share(j, "mac_share", (double)s->q_macs_quant, (double)s->q_macs);
    pare_json_key(j, "mac_ops");
    pare_json_begin_array(j);
    for (size_t i = 0; i < s->n_qrows; i++) {
        const quant_row *r = &s->qrows[i];
        pare_json_begin_object_flat(j);
        pare_json_kv_string(j, "op", r->op);
        pare_json_kv_uint(j, "nodes", r->nodes);
        pare_json_kv_string(j, "weights", r->weights);
        pare_json_kv_string(j, "activations", r->activations);
        pare_json_kv_uint(j, "weight_params", r->weight_params);
        json_int_or_null(j, "macs", r->macs);
        pare_json_end_object(j);
    }
    pare_json_end_array(j);
    json_count_rows(j, "qdq_pairs", "dtype", s->qdq_pairs, s->n_qdq_pairs, false);
    json_count_rows(j, "weight_dequantize", "storage", s->weight_dq, s->n_weight_dq, true);
    json_count_rows(j, "qoperator_ops", "op", s->qops, s->n_qops, false);
    pare_json_end_object(j);

    pare_json_key(j, "compute");
    pare_json_begin_object(j);
    pare_json_key(j, "input_shapes");
    pare_json_begin_array(j);
    for (size_t i = 0; i < s->n_eff_inputs; i++) {
        pare_json_begin_object_flat(j);
        pare_json_kv_string(j, "name", s->eff_inputs[i].name);
        pare_json_key(j, "shape");
        if (s->eff_inputs[i].elem_kind)
            pare_json_null(j);
        else
            json_shape(j, &s->eff_inputs[i].shape);
        pare_json_end_object(j);
    }
    pare_json_end_array(j);
    pare_json_key(j, "symbolic_dims");
    pare_json_begin_array(j);
    for (size_t i = 0; i < s->n_syms; i++) {
        pare_json_begin_object_flat(j);
        pare_json_kv_string(j, "name", s->syms[i].name);
        pare_json_kv_int(j, "value", s->syms[i].value);
        pare_json_kv_bool(j, "defaulted", s->syms[i].defaulted);
        pare_json_end_object(j);
    }
    pare_json_end_array(j);
    pare_json_kv_int(j, "macs", s->macs);
    pare_json_kv_int(j, "flops", s->flops);
    pare_json_kv_uint(j, "nodes_not_estimated", s->nodes_unestimated);
    pare_json_kv_bool(j, "shape_inference_complete", s->inferred);
    pare_json_key(j, "by_op");
    pare_json_begin_array(j);
    for (size_t i = 0; i < s->n_ops; i++) {
        const op_stat *o = &s->ops[i];
        pare_json_begin_object_flat(j);
        pare_json_kv_string(j, "op", o->op);
        pare_json_kv_string(j, "domain", o->domain[0] ? o->domain : "ai.onnx");
        pare_json_kv_uint(j, "nodes", o->nodes);
        pare_json_kv_int(j, "macs", o->macs);
        pare_json_kv_int(j, "flops", o->flops);
        pare_json_kv_uint(j, "nodes_not_estimated", o->unknown);
        pare_json_end_object(j);
    }
    pare_json_end_array(j);
    pare_json_end_object(j);

    pare_json_key(j, "memory");
    pare_json_begin_object(j);
    pare_json_kv_uint(j, "peak_activation_bytes", s->peak_bytes);
    pare_json_key(j, "peak_at_node");
    if (s->peak_node)
        pare_json_string(j, s->peak_node->name);
    else
        pare_json_null(j);
    pare_json_kv_uint(j, "unknown_size_values", s->unknown_size_values);
    pare_json_end_object(j);

    pare_json_key(j, "notes");
    pare_json_begin_array(j);
    for (size_t i = 0; i < s->n_notes; i++)
        pare_json_string(j, s->notes[i]);
    pare_json_end_array(j);

    if (!with_nodes)
        return;
    pare_json_key(j, "nodes");
    pare_json_begin_array(j);
    for (size_t k = 0; k < s->n_nodes; k++) {
        const node_info *ni = &s->nodes[k];
        const pare_node *n = ni->node;
        pare_json_begin_object(j);
        pare_json_kv_string(j, "index", ni->path);
        pare_json_kv_string(j, "name", n->name);
        pare_json_kv_string(j, "op", n->op_type);
        pare_json_kv_string(j, "domain", n->domain[0] ? n->domain : "ai.onnx");
        pare_json_kv_string(j, "graph", n->graph->name);
        pare_json_key(j, "inputs");
        pare_json_begin_array(j);
        for (size_t i = 0; i < n->n_inputs; i++)
            json_value_ref(j, n->inputs[i]);
        pare_json_end_array(j);
        pare_json_key(j, "outputs");
        pare_json_begin_array(j);
        for (size_t i = 0; i < n->n_outputs; i++)
            json_value_ref(j, n->outputs[i]);
        pare_json_end_array(j);
        pare_json_kv_uint(j, "params", ni->params);
        json_int_or_null(j, "macs", ni->macs);
        json_int_or_null(j, "flops", ni->flops);
        pare_json_end_object(j);
    }
    pare_json_end_array(j);
}

static pare_json *json_begin(const char *mode)
{
    pare_json *j;
    pare_error err;
    if (pare_json_new(PARE_JSON_PRETTY, &j, &err) != PARE_OK) {
        cli_error(NULL, "%s", err.msg);
        exit(CLI_EXIT_FAIL);
    }
    pare_json_begin_object(j);
    pare_json_kv_string(j, "schema", SCHEMA);
    pare_json_kv_string(j, "mode", mode);
    return j;
}

static void json_finish(pare_json *j, FILE *out)
{
    pare_json_end_object(j);
    const char *text;
    size_t len;
    pare_error err;
    if (pare_json_finish(j, &text, &len, &err) != PARE_OK) {
        cli_error(NULL, "JSON: %s", err.msg);
        exit(CLI_EXIT_FAIL);
    }
    fwrite(text, 1, len, out);
    pare_json_free(j);
}

/* ------------------------------------------------------------------ */
/* --check                                                             */

static int run_check(const char *path, FILE *out)
{
    pare_model *m;
    int rc = load_model(path, &m);
    if (rc)
        return rc;
    pare_problems pr = {0};
    pare_error err;
    if (pare_model_validate(m, &pr, &err) != PARE_OK) {
        pare_model_free(m);
        return cli_fail(path, &err);
    }
    pare_graph *g = pare_model_graph(m);
    if ((rc = check_shape_args(path, g))) {
        pare_problems_release(&pr);
        pare_model_free(m);
        return rc;
    }
    /* a structurally valid graph is also run through shape inference
     * (symbolic dims stay symbolic): a node whose inputs cannot fit it is a
     * problem too */
    size_t n_infer_problems = 0;
    char **infer_problems = NULL;
    if (pr.n == 0) {
        summary s;
        memset(&s, 0, sizeof s);
        s.path = path;
        s.m = m;
        snapshot_io(&s);
        const char **sym_names = xcalloc(g_n_dims, sizeof *sym_names);
        int64_t *sym_values = xcalloc(g_n_dims, sizeof *sym_values);
        for (size_t i = 0; i < g_n_dims; i++) {
            sym_names[i] = g_dims[i].name;
            sym_values[i] = g_dims[i].value;
        }
        const char **in_names = xcalloc(g_n_shapes, sizeof *in_names);
        const int64_t **in_dims = xcalloc(g_n_shapes, sizeof *in_dims);
        int *in_ranks = xcalloc(g_n_shapes, sizeof *in_ranks);
        for (size_t i = 0; i < g_n_shapes; i++) {
            in_names[i] = g_shapes[i].name;
            in_dims[i] = g_shapes[i].dims;
            in_ranks[i] = g_shapes[i].rank;
        }
        pare_infer_opts io = {0};
        io.sym_names = sym_names;
        io.sym_values = sym_values;
        io.n_sym = g_n_dims;
        io.input_names = in_names;
        io.input_dims = in_dims;
        io.input_ranks = in_ranks;
        io.n_inputs = g_n_shapes;
        pare_infer_report rep;
        memset(&rep, 0, sizeof rep);
        pare_error_clear(&err);
        if (pare_infer_shapes(m, &io, &rep, &err) != PARE_OK) {
            infer_problems = xrealloc(infer_problems, n_infer_problems + 1,
                                      sizeof *infer_problems);
            infer_problems[n_infer_problems++] = xasprintf("shape inference: %s", err.msg);
        }
        for (size_t i = 0; i < rep.n_conflicts; i++) {
            infer_problems = xrealloc(infer_problems, n_infer_problems + 1,
                                      sizeof *infer_problems);
            infer_problems[n_infer_problems++] = xasprintf("%s", rep.conflicts[i]);
        }
        pare_infer_report_release(&rep);
        free(sym_names);
        free(sym_values);
        free(in_names);
        free(in_dims);
        free(in_ranks);
        s.m = NULL;
        summary_release(&s);
    }
    size_t total = pr.n + n_infer_problems;
    for (size_t i = 0; i < pr.n; i++) {
        char line[2048];
        problem_text(&pr.items[i], line, sizeof line);
        cli_error(path, "%s", line);
    }
    for (size_t i = 0; i < n_infer_problems; i++)
        cli_error(path, "%s", infer_problems[i]);
    if (o_json) {
        pare_json *j = json_begin("check");
        pare_json_kv_string(j, "file", path);
        pare_json_kv_bool(j, "valid", total == 0);
        pare_json_key(j, "problems");
        pare_json_begin_array(j);
        for (size_t i = 0; i < pr.n; i++) {
            pare_json_begin_object_flat(j);
            pare_json_kv_string(j, "where", pr.items[i].where);
            pare_json_kv_string(j, "problem", pr.items[i].what);
            pare_json_end_object(j);
        }
        for (size_t i = 0; i < n_infer_problems; i++) {
            pare_json_begin_object_flat(j);
            pare_json_kv_string(j, "where", "");
            pare_json_kv_string(j, "problem", infer_problems[i]);
            pare_json_end_object(j);
        }
        pare_json_end_array(j);
        json_finish(j, out);
    } else if (total == 0) {
        size_t nodes = pare_model_graph(m)->n_nodes;
        fprintf(out, "%s: valid (ir version %" PRId64 ", %zu node%s in the main graph)\n",
                cli_display_name(path), pare_model_ir_version(m), nodes, nodes == 1 ? "" : "s");
    }
    for (size_t i = 0; i < n_infer_problems; i++)
        free(infer_problems[i]);
    free(infer_problems);
    pare_problems_release(&pr);
    pare_model_free(m);
    return total ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* --dot                                                               */

static void dot_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', out);
        if (*s == '\n') {
            fputs("\\n", out);
            continue;
        }
        fputc(*s, out);
    }
    fputc('"', out);
}

typedef struct dot_ctx {
    FILE *out;
    graph_list graphs;
} dot_ctx;

static size_t graph_index(const dot_ctx *c, const pare_graph *g)
{
    for (size_t i = 0; i < c->graphs.n; i++)
        if (c->graphs.g[i] == g)
            return i;
    return 0;
}

static void dot_node_id(const dot_ctx *c, const pare_node *n, char *buf, size_t size)
{
    size_t gi = graph_index(c, n->graph), ni = 0;
    for (size_t i = 0; i < n->graph->n_nodes; i++)
        if (n->graph->nodes[i] == n)
            ni = i;
    snprintf(buf, size, "n%zu_%zu", gi, ni);
}

static void dot_graph_nodes(dot_ctx *c, pare_graph *g, int depth)
{
    FILE *out = c->out;
    char ind[64];
    snprintf(ind, sizeof ind, "%*s", 2 + 2 * depth, "");
    for (size_t i = 0; i < g->n_nodes; i++) {
        pare_node *n = g->nodes[i];
        char id[64], opb[256];
        dot_node_id(c, n, id, sizeof id);
        char *label = xasprintf("%s%s%s", n->name[0] ? n->name : "", n->name[0] ? "\n" : "",
                                op_name(n, opb, sizeof opb));
        size_t shown = 0;
        for (size_t k = 0; k < n->n_inputs; k++) {
            const pare_value *v = n->inputs[k];
            if (!v || !(v->init || v->is_sparse_init))
                continue;
            char sb[256];
            char *l2 = shown < 3 ? xasprintf("%s\n%s %s", label, v->name,
                                             shape_str(&v->shape, sb, sizeof sb))
                                 : shown == 3 ? xasprintf("%s\n...", label) : NULL;
            if (l2) {
                free(label);
                label = l2;
            }
            shown++;
        }
        fprintf(out, "%s%s [label=", ind, id);
        dot_str(out, label);
        free(label);
        fprintf(out, "];\n");
        for (size_t a = 0; a < n->n_attrs; a++) {
            const pare_attr *at = &n->attrs[a];
            size_t ng = at->g ? 1 : (at->graphs ? at->n : 0);
            for (size_t k = 0; k < ng; k++) {
                pare_graph *sg = at->g ? at->g : at->graphs[k];
                fprintf(out, "%ssubgraph cluster_%zu {\n", ind, graph_index(c, sg));
                char *cl = xasprintf("%s %s", n->name[0] ? n->name : n->op_type, at->name);
                fprintf(out, "%s  label=", ind);
                dot_str(out, cl);
                free(cl);
                fprintf(out, ";\n");
                dot_graph_nodes(c, sg, depth + 1);
                fprintf(out, "%s}\n", ind);
            }
        }
    }
}

static void dot_edges(dot_ctx *c, pare_graph *g)
{
    FILE *out = c->out;
    for (size_t i = 0; i < g->n_values; i++) {
        const pare_value *v = g->values[i];
        if (!v || v->init || v->is_sparse_init)
            continue;
        char from[64];
        if (v->producer)
            dot_node_id(c, v->producer, from, sizeof from);
        else if (v->is_input && !g->parent)
            snprintf(from, sizeof from, "in_%zu", i);
        else
            continue;
        char sb[256];
        const char *label = shape_str(&v->shape, sb, sizeof sb);
        for (size_t u = 0; u < v->n_uses; u++) {
            /* once per consumer node, even if it reads the value twice */
            bool dup = false;
            for (size_t w = 0; w < u; w++)
                dup |= v->uses[w].node == v->uses[u].node;
            if (dup)
                continue;
            char to[64];
            dot_node_id(c, v->uses[u].node, to, sizeof to);
            fprintf(out, "  %s -> %s [label=", from, to);
            dot_str(out, label);
            fprintf(out, ", tooltip=");
            dot_str(out, v->name);
            fprintf(out, "];\n");
        }
        if (v->is_output && !g->parent) {
            for (size_t k = 0; k < g->n_outputs; k++)
                if (g->outputs[k] == v) {
                    fprintf(out, "  %s -> out_%zu [label=", from, k);
                    dot_str(out, label);
                    fprintf(out, "];\n");
                }
        }
    }
}

static int run_dot(const char *path, FILE *out)
{
    summary s;
    int rc = build_summary(path, &s);
    if (rc) {
        summary_release(&s);
        return rc;
    }
    pare_graph *g = pare_model_graph(s.m);
    dot_ctx c = {out, {0}};
    pare_graph_walk(g, collect_graph, &c.graphs);
    fprintf(out, "digraph ");
    dot_str(out, g->name[0] ? g->name : "model");
    fprintf(out, " {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\", fontsize=10];\n"
                 "  edge [fontname=\"Helvetica\", fontsize=8];\n");
    /* inputs and outputs with their declared shapes (symbols by name) */
    for (size_t i = 0; i < g->n_values; i++) {
        const pare_value *v = g->values[i];
        if (!v || !is_real_input(v))
            continue;
        const pare_shape *shp = &v->shape;
        for (size_t k = 0; k < s.n_inputs; k++)
            if (strcmp(s.inputs[k].name, v->name) == 0)
                shp = &s.inputs[k].shape;
        char sb[256];
        char *label = xasprintf("%s\n%s %s", v->name, v->dtype ? pare_dtype_name(v->dtype) : "?",
                                shape_str(shp, sb, sizeof sb));
        fprintf(out, "  in_%zu [shape=ellipse, label=", i);
        dot_str(out, label);
        fprintf(out, "];\n");
        free(label);
    }
    for (size_t k = 0; k < g->n_outputs; k++) {
        const pare_value *v = g->outputs[k];
        const pare_shape *shp = k < s.n_outputs ? &s.outputs[k].shape : &v->shape;
        char sb[256];
        char *label = xasprintf("%s\n%s %s", v->name, v->dtype ? pare_dtype_name(v->dtype) : "?",
                                shape_str(shp, sb, sizeof sb));
        fprintf(out, "  out_%zu [shape=ellipse, label=", k);
        dot_str(out, label);
        fprintf(out, "];\n");
        free(label);
    }
    dot_graph_nodes(&c, g, 0);
    for (size_t i = 0; i < c.graphs.n; i++)
        dot_edges(&c, c.graphs.g[i]);
    fprintf(out, "}\n");
    free(c.graphs.g);
    summary_release(&s);
    return 0;
}

/* ------------------------------------------------------------------ */
/* --diff                                                              */

static void diff_row(pare_table *t, const char *what, const char *a, const char *b,
                     const char *change)
{
    pare_table_row(t);
    pare_table_cell(t, "%s", what);
    pare_table_cell(t, "%s", a);
    pare_table_cell(t, "%s", b);
    pare_table_cell(t, "%s", change ? change : "");
}

static char *rel_change(double a, double b, char *buf, size_t size)
{
    if (a == b)
        snprintf(buf, size, "=");
    else if (a == 0)
        snprintf(buf, size, "new");
    else
        snprintf(buf, size, "%+.1f%%", 100.0 * (b - a) / a);
    return buf;
}

static char *pt_change(double a, double b, char *buf, size_t size)
{
    double d = 100.0 * (b - a);
    if (a == b)
        snprintf(buf, size, "=");
    else if (fabs(d) < 0.05)
        snprintf(buf, size, "~0 pt");
    else
        snprintf(buf, size, "%+.1f pt", d);
    return buf;
}

static double share(double part, double whole)
{
    return whole > 0 ? part / whole : 0;
}

static void text_diff(FILE *out, const summary *a, const summary *b)
{
    char x[64], y[64], c[64];
    pare_table *t = new_table(4);
    pare_table_column(t, 0, "", PARE_ALIGN_LEFT);
    pare_table_column(t, 1, cli_display_name(a->path), PARE_ALIGN_RIGHT);
    pare_table_column(t, 2, cli_display_name(b->path), PARE_ALIGN_RIGHT);
    pare_table_column(t, 3, "change", PARE_ALIGN_RIGHT);
    diff_row(t, "file size", cli_fmt_bytes(a->file_bytes, x, sizeof x),
             cli_fmt_bytes(b->file_bytes, y, sizeof y),
             rel_change((double)a->file_bytes, (double)b->file_bytes, c, sizeof c));
    if (a->external_bytes || b->external_bytes)
        diff_row(t, "external data", cli_fmt_bytes(a->external_bytes, x, sizeof x),
                 cli_fmt_bytes(b->external_bytes, y, sizeof y),
                 rel_change((double)a->external_bytes, (double)b->external_bytes, c, sizeof c));
    diff_row(t, "parameters", cli_fmt_count(a->params, x, sizeof x),
             cli_fmt_count(b->params, y, sizeof y),
             rel_change((double)a->params, (double)b->params, c, sizeof c));
    diff_row(t, "parameter bytes", cli_fmt_bytes(a->param_bytes, x, sizeof x),
             cli_fmt_bytes(b->param_bytes, y, sizeof y),
             rel_change((double)a->param_bytes, (double)b->param_bytes, c, sizeof c));
    for (int dt = 0; dt < PARE_DT_COUNT; dt++) {
        const dtype_stat *da = &a->by_dtype[dt], *db = &b->by_dtype[dt];
        if (!da->tensors && !db->tensors)
            continue;
        char what[64];
        snprintf(what, sizeof what, "  %s", pare_dtype_name(dt));
        diff_row(t, what, da->tensors ? cli_fmt_bytes(da->bytes, x, sizeof x) : "-",
                 db->tensors ? cli_fmt_bytes(db->bytes, y, sizeof y) : "-",
                 rel_change((double)da->bytes, (double)db->bytes, c, sizeof c));
    }
    double sa = share((double)a->sp_zeros, (double)a->sp_params);
    double sb = share((double)b->sp_zeros, (double)b->sp_params);
    diff_row(t, "sparsity", cli_fmt_percent((double)a->sp_zeros, (double)a->sp_params, x, sizeof x),
             cli_fmt_percent((double)b->sp_zeros, (double)b->sp_params, y, sizeof y),
             pt_change(sa, sb, c, sizeof c));
    double qa = share((double)a->q_weight_params_quant, (double)a->q_weight_params);
    double qb = share((double)b->q_weight_params_quant, (double)b->q_weight_params);
    diff_row(t, "quantized weights",
             cli_fmt_percent((double)a->q_weight_params_quant, (double)a->q_weight_params, x,
                             sizeof x),
             cli_fmt_percent((double)b->q_weight_params_quant, (double)b->q_weight_params, y,
                             sizeof y),
             pt_change(qa, qb, c, sizeof c));
    double ma = share((double)a->q_macs_quant, (double)a->q_macs);
    double mb = share((double)b->q_macs_quant, (double)b->q_macs);
    diff_row(t, "quantized MACs",
             cli_fmt_percent((double)a->q_macs_quant, (double)a->q_macs, x, sizeof x),
             cli_fmt_percent((double)b->q_macs_quant, (double)b->q_macs, y, sizeof y),
             pt_change(ma, mb, c, sizeof c));
    diff_row(t, "MACs", cli_fmt_si((double)a->macs, x, sizeof x),
             cli_fmt_si((double)b->macs, y, sizeof y),
             rel_change((double)a->macs, (double)b->macs, c, sizeof c));
    diff_row(t, "FLOPs", cli_fmt_si((double)a->flops, x, sizeof x),
             cli_fmt_si((double)b->flops, y, sizeof y),
             rel_change((double)a->flops, (double)b->flops, c, sizeof c));
    diff_row(t, "peak activations", cli_fmt_bytes(a->peak_bytes, x, sizeof x),
             cli_fmt_bytes(b->peak_bytes, y, sizeof y),
             rel_change((double)a->peak_bytes, (double)b->peak_bytes, c, sizeof c));
    size_t na = a->nodes_main + a->nodes_sub, nb = b->nodes_main + b->nodes_sub;
    snprintf(x, sizeof x, "%zu", na);
    snprintf(y, sizeof y, "%zu", nb);
    snprintf(c, sizeof c, na == nb ? "=" : "%+lld", (long long)nb - (long long)na);
    diff_row(t, "nodes", x, y, c);
    emit_table(out, t, 0);

    /* op histogram changes: every op type whose count differs */
    pare_table *ot = new_table(4);
    pare_table_column(ot, 1, NULL, PARE_ALIGN_RIGHT);
    pare_table_column(ot, 2, NULL, PARE_ALIGN_RIGHT);
    pare_table_column(ot, 3, NULL, PARE_ALIGN_RIGHT);
    size_t changed = 0, same = 0;
    for (int side = 0; side < 2; side++) {
        const summary *p = side ? b : a, *q = side ? a : b;
        for (size_t i = 0; i < p->n_ops; i++) {
            const op_stat *o = &p->ops[i];
            uint64_t other = 0;
            for (size_t k = 0; k < q->n_ops; k++)
                if (strcmp(q->ops[k].op, o->op) == 0 && strcmp(q->ops[k].domain, o->domain) == 0)
                    other = q->ops[k].nodes;
            if (side == 1 && other)
                continue; /* already listed from a's side */
            uint64_t ca = side ? other : o->nodes, cb = side ? o->nodes : other;
            if (ca == cb) {
                same++;
                continue;
            }
            changed++;
            pare_table_row(ot);
            if (o->domain[0])
                pare_table_cell(ot, "%s:%s", o->domain, o->op);
            else
                pare_table_cell(ot, "%s", o->op);
            pare_table_cell(ot, "%" PRIu64, ca);
            pare_table_cell(ot, "%" PRIu64, cb);
            pare_table_cell(ot, "%+lld", (long long)cb - (long long)ca);
        }
    }
    if (changed) {
        fprintf(out, "op changes (%zu op type%s unchanged):\n", same, same == 1 ? "" : "s");
        emit_table(out, ot, 2);
    } else {
        fprintf(out, "op changes: none (%zu op type%s)\n", same, same == 1 ? "" : "s");
        pare_table_free(ot);
    }
}

static void json_delta(pare_json *j, const char *key, int64_t a, int64_t b)
{
    pare_json_key(j, key);
    int64_t d;
    if (__builtin_sub_overflow(b, a, &d))
        pare_json_null(j);
    else
        pare_json_int(j, d);
}

static void json_diff(FILE *out, const summary *a, const summary *b)
{
    pare_json *j = json_begin("diff");
    pare_json_key(j, "a");
    pare_json_begin_object(j);
    json_summary_body(j, a, false);
    pare_json_end_object(j);
    pare_json_key(j, "b");
    pare_json_begin_object(j);
    json_summary_body(j, b, false);
    pare_json_end_object(j);
    pare_json_key(j, "changes");
    pare_json_begin_object(j);
    json_delta(j, "file_bytes", (int64_t)a->file_bytes, (int64_t)b->file_bytes);
    json_delta(j, "params", (int64_t)a->params, (int64_t)b->params);
    json_delta(j, "param_bytes", (int64_t)a->param_bytes, (int64_t)b->param_bytes);
    json_delta(j, "nodes", (int64_t)(a->nodes_main + a->nodes_sub),
               (int64_t)(b->nodes_main + b->nodes_sub));
    json_delta(j, "macs", a->macs, b->macs);
    json_delta(j, "flops", a->flops, b->flops);
    json_delta(j, "peak_activation_bytes", (int64_t)a->peak_bytes, (int64_t)b->peak_bytes);
    pare_json_key(j, "ops");
    pare_json_begin_array(j);
    for (int side = 0; side < 2; side++) {
        const summary *p = side ? b : a, *q = side ? a : b;
        for (size_t i = 0; i < p->n_ops; i++) {
            const op_stat *o = &p->ops[i];
            uint64_t other = 0;
            for (size_t k = 0; k < q->n_ops; k++)
                if (strcmp(q->ops[k].op, o->op) == 0 && strcmp(q->ops[k].domain, o->domain) == 0)
                    other = q->ops[k].nodes;
            if (side == 1 && other)
                continue;
            uint64_t ca = side ? other : o->nodes, cb = side ? o->nodes : other;
            if (ca == cb)
                continue;
            pare_json_begin_object_flat(j);
            pare_json_kv_string(j, "op", o->op);
            pare_json_kv_string(j, "domain", o->domain[0] ? o->domain : "ai.onnx");
            pare_json_kv_uint(j, "a", ca);
            pare_json_kv_uint(j, "b", cb);
            pare_json_end_object(j);
        }
    }
    pare_json_end_array(j);
    pare_json_end_object(j);
    json_finish(j, out);
}

static int run_diff(const char *path, const char *other, FILE *out)
{
    summary a, b;
    int rc = build_summary(path, &a);
    if (rc) {
        summary_release(&a);
        return rc;
    }
    rc = build_summary(other, &b);
    if (rc) {
        summary_release(&a);
        summary_release(&b);
        return rc;
    }
    if (o_json)
        json_diff(out, &a, &b);
    else
        text_diff(out, &a, &b);
    summary_release(&a);
    summary_release(&b);
    return 0;
}

/* ------------------------------------------------------------------ */
/* main                                                                */

static int run_summary(const char *path, FILE *out)
{
    summary s;
    int rc = build_summary(path, &s);
    if (rc) {
        summary_release(&s);
        return rc;
    }
    if (o_json) {
        pare_json *j = json_begin("summary");
        json_summary_body(j, &s, o_nodes);
        json_finish(j, out);
    } else {
        text_summary(out, &s);
        if (o_nodes)
            text_nodes(out, &s);
    }
    summary_release(&s);
    return 0;
}

static int parse_shape_args(void)
{
    char why[256];
    g_shapes = xcalloc(o_shapes.n, sizeof *g_shapes);
    for (size_t i = 0; i < o_shapes.n; i++) {
        shape_arg *sa = &g_shapes[g_n_shapes];
        if (!cli_parse_named_dims(o_shapes.items[i], &sa->name, sa->dims, &sa->rank, why,
                                  sizeof why))
            return cli_usage_error("--shape: %s", why);
        g_n_shapes++;
        for (size_t k = 0; k + 1 < g_n_shapes; k++)
            if (strcmp(g_shapes[k].name, sa->name) == 0)
                return cli_usage_error("--shape: input '%s' given twice", sa->name);
    }
    g_dims = xcalloc(o_dims.n, sizeof *g_dims);
    for (size_t i = 0; i < o_dims.n; i++) {
        dim_arg *da = &g_dims[g_n_dims];
        if (!cli_parse_named_int(o_dims.items[i], &da->name, &da->value, why, sizeof why))
            return cli_usage_error("--dim: %s", why);
        g_n_dims++;
        if (da->value < 0)
            return cli_usage_error("--dim %s: %" PRId64 " is negative", da->name, da->value);
        for (size_t k = 0; k + 1 < g_n_dims; k++)
            if (strcmp(g_dims[k].name, da->name) == 0)
                return cli_usage_error("--dim: '%s' given twice", da->name);
    }
    return 0;
}

static void free_shape_args(void)
{
    for (size_t i = 0; i < g_n_shapes; i++)
        free(g_shapes[i].name);
    free(g_shapes);
    for (size_t i = 0; i < g_n_dims; i++)
        free(g_dims[i].name);
    free(g_dims);
}

static int run(const char *path)
{
    if (o_check + o_dot + (o_diff != NULL) > 1)
        return cli_usage_error("--check, --diff and --dot are separate modes; give one");
    if (o_dot && o_json)
        return cli_usage_error("--dot and --json cannot be combined");
    if (o_nodes && (o_check || o_dot || o_diff))
        return cli_usage_error("--nodes goes with the summary, not with --check, --diff or "
                               "--dot");
    if (o_diff && strcmp(o_diff, "-") == 0 && strcmp(path, "-") == 0)
        return cli_usage_error("only one model can be read from stdin");
    int rc = parse_shape_args();
    if (rc)
        return rc;

    /* the report is built in memory, then written in one go (atomically
     * to a file), so a failure leaves no partial report behind */
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out) {
        cli_error(NULL, "out of memory");
        return CLI_EXIT_FAIL;
    }
    if (o_check)
        rc = run_check(path, out);
    else if (o_dot)
        rc = run_dot(path, out);
    else if (o_diff)
        rc = run_diff(path, o_diff, out);
    else
        rc = run_summary(path, out);
    if (fclose(out) != 0) {
        free(buf);
        cli_error(NULL, "out of memory");
        return CLI_EXIT_FAIL;
    }
    /* --check writes its report whatever the verdict; others only on success */
    if ((rc == 0 || o_check) && len) {
        pare_error err;
        if (cli_write_file(o_output ? o_output : "-", buf, len, 0, &err) != PARE_OK) {
            cli_error(o_output ? o_output : NULL, "%s", err.msg);
            rc = CLI_EXIT_FAIL;
        }
    }
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    cli_args args;
    int rc = cli_parse(&program, argc, argv, &args);
    if (rc != CLI_CONTINUE)
        return rc;
    rc = run(args.argv[0]);
    free_shape_args();
    cli_list_release(&o_shapes);
    cli_list_release(&o_dims);
    cli_args_release(&args);
    return rc;
}
