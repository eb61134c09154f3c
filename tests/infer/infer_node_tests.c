/* Conformance check of shape inference against the ONNX backend node tests.
 *
 *     infer_node_tests NODE_DIR [--strict] [--verbose] [--no-data] [--symbolic]
 *                      [--only SUBSTR]
 *
 * For each NODE_DIR/<test>/model.onnx: load it, forget every type that is
 * not a graph input or an initializer (value_info, graph outputs, subgraph
 * values), run pare_infer_shapes, and compare each graph output's inferred
 * type with the one the file declares.
 *
 * The tests feed shapes, axes, scales and the like as graph inputs, which
 * inference cannot know; unless --no-data is given, the small inputs (64
 * elements at most) of test_data_set_0 become initializers first, so that
 * the value propagation is checked too. The declared outputs were computed
 * from those very inputs.
 *
 * --symbolic replaces every dim of the (remaining) graph inputs by a symbol
 * standing for it ("in0_1"), which checks how symbols travel: an output dim
 * inferred as a symbol must be the dim the symbol stood for. Outputs that
 * stay unknown then count as incomplete only.
 *
 *   passed      every output matches exactly
 *   failed      an inferred dtype or dim contradicts the file, or inference
 *               failed: a bug either way
 *   incomplete  something stayed unknown that the file knows (data-dependent
 *               shapes: NonZero, Unique, NonMaxSuppression, ...); with
 *               --strict these count as failed
 *   skipped     incomplete because the model uses an op inference does not
 *               know, or its outputs are not tensors
 *
 * Prints the failures and incomplete results grouped by the op that produced
 * the output, then "N passed, N failed" and a line with the other counts.
 * Exit status 1 when anything failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <inttypes.h>
#include "pare/model.h"
#include "pare/ir.h"
#include "pare/infer.h"

enum { R_PASS, R_MISMATCH, R_INCOMPLETE, R_ERROR, R_SKIP };

typedef struct fail_rec {
    char *op;
    char *line;
} fail_rec;

static fail_rec *fails;
static size_t n_fails, cap_fails;

static void add_fail(const char *op, const char *line)
{
    if (n_fails == cap_fails) {
        cap_fails = cap_fails ? cap_fails * 2 : 64;
        fails = realloc(fails, cap_fails * sizeof *fails);
        if (!fails) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
    }
    fails[n_fails].op = strdup(op);
    fails[n_fails].line = strdup(line);
    n_fails++;
}

static int cmp_fail(const void *a, const void *b)
{
    const fail_rec *x = a, *y = b;
    int d = strcmp(x->op, y->op);
    return d ? d : strcmp(x->line, y->line);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void clear_fn(pare_graph *g, void *ctx)
{
    (void)ctx;
    for (size_t i = 0; i < g->n_values; i++) {
        pare_value *v = g->values[i];
        if (v->init || (v->is_input && !g->parent))
            continue;
        if (v->elem_kind != 0)
            continue;
        pare_value_set_type(v, 0, NULL, NULL);
        v->shape_from_file = false;
    }
}

static void shape_str(int dtype, const pare_shape *s, char *buf, size_t size)
{
    size_t k = (size_t)snprintf(buf, size, "%s ", dtype ? pare_dtype_name(dtype) : "?");
    if (s->rank < 0) {
        snprintf(buf + k, size - k, "[?]");
        return;
    }
    k += (size_t)snprintf(buf + k, size - k, "[");
    for (int i = 0; i < s->rank && k < size; i++) {
        if (s->dims[i].value >= 0)
            k += (size_t)snprintf(buf + k, size - k, "%s%" PRId64, i ? "," : "",
                                  s->dims[i].value);
        else
            k += (size_t)snprintf(buf + k, size - k, "%s%s", i ? "," : "",
                                  s->dims[i].param ? s->dims[i].param : "?");
    }
    if (k < size)
        snprintf(buf + k, size - k, "]");
}

/* Symbols given to input dims and the values they stand for. */
typedef struct sym_bind {
    char name[64];
    int64_t value;
} sym_bind;

static sym_bind *syms;
static size_t n_syms, cap_syms;

static void symbolize_inputs(pare_graph *g)
{
    n_syms = 0;
    for (size_t i = 0; i < g->n_inputs; i++) {
        pare_value *v = g->inputs[i];
        if (v->init || v->elem_kind != 0)
            continue;
        for (int d = 0; d < v->shape.rank; d++) {
            pare_dim *dim = &v->shape.dims[d];
            if (dim->value < 0 || dim->param)
                continue;
            if (n_syms == cap_syms) {
                cap_syms = cap_syms ? cap_syms * 2 : 64;
                syms = realloc(syms, cap_syms * sizeof *syms);
                if (!syms)
                    exit(2);
            }
            snprintf(syms[n_syms].name, sizeof syms[n_syms].name, "in%zu_%d", i, d);
            syms[n_syms].value = dim->value;
            dim->param = strdup(syms[n_syms].name);
            dim->value = -1;
            n_syms++;
        }
    }
}

static int64_t sym_value(const char *name)
{
    for (size_t i = 0; name && i < n_syms; i++)
        if (!strcmp(syms[i].name, name))
            return syms[i].value;
    return -1;
}

/* 0 equal, 1 incomplete, 2 mismatch */
static int compare(int edt, const pare_shape *es, int gdt, const pare_shape *gs)
{
    int r = 0;
    if (edt && gdt && edt != gdt)
        return 2;
    if (edt && !gdt)
        r = 1;
    if (es->rank < 0)
        return r;
    if (gs->rank < 0)
        return 1;
    if (es->rank != gs->rank)
        return 2;
    for (int i = 0; i < es->rank; i++) {
        int64_t e = es->dims[i].value, g = gs->dims[i].value;
        if (e < 0)
            continue;
        if (g < 0 && gs->dims[i].param && n_syms) {
            int64_t sv = sym_value(gs->dims[i].param);
            if (sv >= 0 && sv != e)
                return 2;
            if (sv >= 0)
                continue;
        }
        if (g < 0)
            r = 1;
        else if (e != g)
            return 2;
    }
    return r;
}

/* Turns the small inputs of test_data_set_0 into initializers. */
static void feed_small_inputs(pare_graph *g, const char *dir, const char *name)
{
    size_t k = 0;
    for (size_t i = 0; i < g->n_inputs;) {
        pare_value *v = g->inputs[i];
        if (v->init) {
            i++;
            continue;
        }
        if (v->elem_kind != 0) { /* sequences, optionals: not tensors */
            i++;
            k++;
            continue;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s/test_data_set_0/input_%zu.pb", dir, name, k++);
        FILE *f = fopen(path, "rb");
        if (!f) {
            i++;
            continue;
        }
        static unsigned char buf[1 << 16];
        size_t len = fread(buf, 1, sizeof buf, f);
        bool whole = feof(f);
        fclose(f);
        pare_tensor *t = NULL;
        if (!whole || pare_tensor_pb_decode(buf, len, &t, NULL) || pare_tensor_numel(t) > 64 ||
            t->dtype == PARE_DT_STRING) {
            pare_tensor_free(t);
            i++;
            continue;
        }
        if (pare_graph_remove_input(g, i, NULL) || pare_value_set_tensor(v, t, NULL)) {
            pare_tensor_free(t);
            i++;
        }
    }
}

static int run_one(const char *dir, const char *name, bool verbose, bool feed, bool symbolic)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/model.onnx", dir, name);
    pare_model *m;
    pare_error err;
    pare_load_opts lo = PARE_LOAD_OPTS_INIT;
    if (pare_model_load(path, &lo, &m, &err)) {
        char line[2048];
        snprintf(line, sizeof line, "%s: load failed: %s", name, err.msg);
        add_fail("(load)", line);
        return R_ERROR;
    }
    pare_graph *g = pare_model_graph(m);
    size_t no = g->n_outputs;
    int *edt = calloc(no ? no : 1, sizeof *edt);
    pare_shape *es = calloc(no ? no : 1, sizeof *es);
    bool tensors = true;
    for (size_t i = 0; i < no; i++) {
        pare_value *v = g->outputs[i];
        edt[i] = v->dtype;
        es[i].rank = v->shape.rank;
        if (v->shape.rank > 0) {
            es[i].dims = calloc((size_t)v->shape.rank, sizeof *es[i].dims);
            for (int d = 0; d < v->shape.rank; d++) {
                es[i].dims[d].value = v->shape.dims[d].value;
                es[i].dims[d].param = NULL;
            }
        }
        if (v->elem_kind != 0)
            tensors = false;
    }
    if (feed)
        feed_small_inputs(g, dir, name);
    n_syms = 0;
    if (symbolic)
        symbolize_inputs(g);
    pare_graph_walk(g, clear_fn, NULL);
    pare_infer_report rep;
    int result = R_PASS;
    char line[4096];
    if (pare_infer_shapes(m, NULL, &rep, &err)) {
        snprintf(line, sizeof line, "%s: inference failed: %s", name, err.msg);
        const char *op = "(error)";
        add_fail(op, line);
        result = R_ERROR;
    } else {
        for (size_t i = 0; i < no; i++) {
            pare_value *v = g->outputs[i];
            int c = compare(edt[i], &es[i], v->dtype, &v->shape);
            if (c == 0)
                continue;
            char eb[512], gb[512];
            shape_str(edt[i], &es[i], eb, sizeof eb);
            shape_str(v->dtype, &v->shape, gb, sizeof gb);
            const char *op = v->producer ? v->producer->op_type : "(input)";
            int rr = c == 2 ? R_MISMATCH
                   : (rep.n_unknown || !tensors) ? R_SKIP : R_INCOMPLETE;
            if (rr == R_SKIP && c == 1 && rep.n_unknown) {
                if (verbose)
                    printf("skip %s: %s\n", name, rep.unknown[0]);
            } else if (rr != R_SKIP) {
                snprintf(line, sizeof line, "%s: %s output '%s': expected %s, got %s", name,
                         c == 2 ? "MISMATCH" : "incomplete", v->name, eb, gb);
                add_fail(op, line);
            }
            if (rr == R_MISMATCH || result == R_PASS || (result == R_SKIP && rr == R_INCOMPLETE))
                result = rr;
        }
        pare_infer_report_release(&rep);
    }
    if (!tensors && result != R_MISMATCH && result != R_ERROR)
        result = result == R_PASS ? R_PASS : R_SKIP;
    for (size_t i = 0; i < no; i++)
        free(es[i].dims);
    free(es);
    free(edt);
    pare_model_free(m);
    return result;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *only = NULL;
    bool strict = false, verbose = false, feed = true, symbolic = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--strict"))
            strict = true;
        else if (!strcmp(argv[i], "--verbose"))
            verbose = true;
        else if (!strcmp(argv[i], "--no-data"))
            feed = false;
        else if (!strcmp(argv[i], "--symbolic"))
            symbolic = true;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: %s NODE_DIR [--strict] [--verbose] [--no-data] [--symbolic] [--only SUBSTR]\n", argv[0]);
            return 2;
        } else
            dir = argv[i];
    }
    if (!dir) {
        fprintf(stderr, "usage: %s NODE_DIR [--strict] [--verbose] [--no-data] [--symbolic] [--only SUBSTR]\n", argv[0]);
        return 2;
    }
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "%s: cannot open %s\n", argv[0], dir);
        return 2;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || (only && !strstr(e->d_name, only)))
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s/model.onnx", dir, e->d_name);
        FILE *f = fopen(p, "rb");
        if (!f)
            continue;
        fclose(f);
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            names = realloc(names, cap * sizeof *names);
            if (!names)
                return 2;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    size_t count[5] = {0};
    for (size_t i = 0; i < n; i++) {
        int r = run_one(dir, names[i], verbose, feed, symbolic);
        count[r]++;
        free(names[i]);
    }
    free(names);
    if (n_fails)
        qsort(fails, n_fails, sizeof *fails, cmp_fail);
    const char *last = "";
    for (size_t i = 0; i < n_fails; i++) {
        if (strcmp(last, fails[i].op)) {
            printf("%s:\n", fails[i].op);
            last = fails[i].op;
        }
        printf("  %s\n", fails[i].line);
    }
    size_t failed = count[R_MISMATCH] + count[R_ERROR] + (strict ? count[R_INCOMPLETE] : 0);
    printf("%zu passed, %zu failed\n", count[R_PASS], failed);
    printf("(%zu mismatched, %zu errors; %zu incomplete; %zu skipped: unknown ops or "
           "non-tensor outputs)\n",
           count[R_MISMATCH], count[R_ERROR], count[R_INCOMPLETE], count[R_SKIP]);
    for (size_t i = 0; i < n_fails; i++) {
        free(fails[i].op);
        free(fails[i].line);
    }
    free(fails);
    free(syms);
    return failed ? 1 : 0;
}
