/* common.c - what every quantization mode shares beyond the report entries:
 * the report as JSON (schema pare-quantize/1, the "quantization" member of
 * pare-quantize's --json document; man/pare-quantize.1 documents it) and the
 * test for a model that is already quantized. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/quant.h"

/* ---- report as JSON ---------------------------------------------------- */

/* How many of the widest ranges the report lists as outliers. */
#define TOP_OUTLIERS 10

static int cmp_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "");
}

/* Sorting works on arrays of entry pointers into one report, so ties fall
 * back to the position in the report (the pointers' order): stable. */
static int cmp_pos(const pare_quant_entry *x, const pare_quant_entry *y)
{
    return x < y ? -1 : x > y;
}

/* by (op, how) */
static int cmp_op_how(const void *pa, const void *pb)
{
    const pare_quant_entry *x = *(const pare_quant_entry *const *)pa;
    const pare_quant_entry *y = *(const pare_quant_entry *const *)pb;
    int c = cmp_str(x->op, y->op);
    if (!c)
        c = cmp_str(x->how, y->how);
    return c ? c : cmp_pos(x, y);
}

static int cmp_name(const void *pa, const void *pb)
{
    const pare_quant_entry *x = *(const pare_quant_entry *const *)pa;
    const pare_quant_entry *y = *(const pare_quant_entry *const *)pb;
    int c = cmp_str(x->name, y->name);
    return c ? c : cmp_pos(x, y);
}

static double amax_of(const pare_quant_entry *e)
{
    double lo = fabs(e->lo), hi = fabs(e->hi);
    if (isnan(lo))
        return hi;
    if (isnan(hi))
        return lo;
    return lo > hi ? lo : hi;
}

/* widest range first; NaN last; ties by name */
static int cmp_amax(const void *pa, const void *pb)
{
    const pare_quant_entry *x = *(const pare_quant_entry *const *)pa;
    const pare_quant_entry *y = *(const pare_quant_entry *const *)pb;
    double a = amax_of(x), b = amax_of(y);
    if (isnan(a) != isnan(b))
        return isnan(a) ? 1 : -1;
    if (!isnan(a) && a != b)
        return a > b ? -1 : 1;
    return cmp_name(pa, pb);
}

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return a < b ? -1 : a > b;
}

static void kv_num(pare_json *j, const char *key, double v)
{
    if (isfinite(v))
        pare_json_kv_double(j, key, v);
    else
        pare_json_kv_null(j, key);
}

/* the entries of one kind, in report order (NULL when none, or when out of
 * memory: the lists then come out empty rather than wrong) */
static const pare_quant_entry **entries_of(const pare_quant_report *r,
                                           pare_quant_entry_kind kind, size_t *n)
{
    size_t count = 0;
    for (size_t i = 0; i < r->n; i++)
        count += r->items[i].kind == kind;
    *n = 0;
    if (!count)
        return NULL;
    const pare_quant_entry **e = malloc(count * sizeof *e);
    if (!e)
        return NULL;
    for (size_t i = 0; i < r->n; i++)
        if (r->items[i].kind == kind)
            e[(*n)++] = &r->items[i];
    return e;
}

static void write_nodes(const pare_quant_report *r, pare_json *j, pare_quant_entry_kind kind,
                        const char *list_key, const char *groups_key, const char *how_key)
{
    size_t n;
    const pare_quant_entry **es = entries_of(r, kind, &n);
    const pare_quant_entry **sorted = n ? malloc(n * sizeof *sorted) : NULL;
    /* groups by op type and how (the mode for quantized nodes, the reason
     * for float ones) */
    pare_json_key(j, groups_key);
    pare_json_begin_array(j);
    if (sorted) {
        memcpy(sorted, es, n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, cmp_op_how);
        for (size_t a = 0; a < n;) {
            const pare_quant_entry *e = sorted[a];
            size_t b = a + 1;
            while (b < n && !cmp_str(sorted[b]->op, e->op) && !cmp_str(sorted[b]->how, e->how))
                b++;
            pare_json_begin_object_flat(j);
            pare_json_kv_string(j, "op", e->op);
            pare_json_kv_string(j, how_key, e->how);
            pare_json_kv_uint(j, "nodes", (uint64_t)(b - a));
            pare_json_end_object(j);
            a = b;
        }
    }
    pare_json_end_array(j);
    free(sorted);
    /* every node, in the order the pass met them (topological) */
    pare_json_key(j, list_key);
    pare_json_begin_array(j);
    for (size_t k = 0; k < n; k++) {
        pare_json_begin_object_flat(j);
        pare_json_kv_string(j, "name", es[k]->name);
        pare_json_kv_string(j, "op", es[k]->op);
        pare_json_kv_string(j, how_key, es[k]->how);
        pare_json_end_object(j);
    }
    pare_json_end_array(j);
    free(es);
}

static void write_range(pare_json *j, const pare_quant_entry *e)
{
    pare_json_begin_object_flat(j);
    pare_json_kv_string(j, "tensor", e->name);
    kv_num(j, "lo", e->lo);
    kv_num(j, "hi", e->hi);
    kv_num(j, "scale", e->scale);
    pare_json_kv_int(j, "zero_point", e->zero_point);
    pare_json_end_object(j);
}

static void write_calibration(const pare_quant_report *r, pare_json *j)
{
    size_t n;
    const pare_quant_entry **es = entries_of(r, PARE_QE_RANGE, &n);
    pare_json_key(j, "calibration");
    pare_json_begin_object(j);
    pare_json_kv_uint(j, "samples", r->calib_samples);
    pare_json_kv_uint(j, "tensors", (uint64_t)n);
    /* ranges by tensor name, so that two reports diff line by line */
    if (n)
        qsort(es, n, sizeof *es, cmp_name);
    pare_json_key(j, "ranges");
    pare_json_begin_array(j);
    for (size_t k = 0; k < n; k++)
        write_range(j, es[k]);
    pare_json_end_array(j);
    /* the widest ranges: the tensors whose quantization step is coarsest,
     * and how far they stand above the median tensor */
    double median = NAN;
    double *amax = n ? malloc(n * sizeof *amax) : NULL;
    if (amax) {
        size_t m = 0;
        for (size_t k = 0; k < n; k++) {
            double a = amax_of(es[k]);
            if (isfinite(a))
                amax[m++] = a;
        }
        if (m) {
            qsort(amax, m, sizeof *amax, cmp_double);
            median = m % 2 ? amax[m / 2] : 0.5 * (amax[m / 2 - 1] + amax[m / 2]);
        }
        free(amax);
    }
    kv_num(j, "median_abs_max", median);
    if (n)
        qsort(es, n, sizeof *es, cmp_amax);
    pare_json_key(j, "top_outliers");
    pare_json_begin_array(j);
    for (size_t k = 0; k < n && k < TOP_OUTLIERS; k++) {
        double a = amax_of(es[k]);
        pare_json_begin_object_flat(j);
        pare_json_kv_string(j, "tensor", es[k]->name);
        kv_num(j, "abs_max", a);
        kv_num(j, "times_median", median > 0 ? a / median : NAN);
        kv_num(j, "scale", es[k]->scale);
        pare_json_end_object(j);
    }
    pare_json_end_array(j);
    pare_json_end_object(j);
    free(es);
}

static void write_clamped(const pare_quant_report *r, pare_json *j)
{
    size_t n;
    const pare_quant_entry **es = entries_of(r, PARE_QE_CLAMPED, &n);
    uint64_t total = 0;
    for (size_t k = 0; k < n; k++)
        total += es[k]->count;
    pare_json_kv_uint(j, "clamped_total", total);
    if (n)
        qsort(es, n, sizeof *es, cmp_name);
    pare_json_key(j, "clamped");
    pare_json_begin_array(j);
    for (size_t k = 0; k < n; k++) {
        pare_json_begin_object_flat(j);
        pare_json_kv_string(j, "tensor", es[k]->name);
        pare_json_kv_uint(j, "count", es[k]->count);
        pare_json_end_object(j);
    }
    pare_json_end_array(j);
    free(es);
}

void pare_quant_report_json(const pare_quant_report *r, pare_json *j)
{
    size_t nq = 0, nf = 0;
    for (size_t i = 0; i < r->n; i++) {
        nq += r->items[i].kind == PARE_QE_QUANTIZED;
        nf += r->items[i].kind == PARE_QE_FLOAT;
    }
    pare_json_begin_object(j);
    pare_json_kv_uint(j, "nodes_quantized", (uint64_t)nq);
    pare_json_kv_uint(j, "nodes_float", (uint64_t)nf);
    write_nodes(r, j, PARE_QE_QUANTIZED, "quantized", "quantized_by_op", "how");
    write_nodes(r, j, PARE_QE_FLOAT, "float", "float_by_op", "why");
    pare_json_kv_uint(j, "weight_bytes_before", r->weight_bytes_before);
    pare_json_kv_uint(j, "weight_bytes_after", r->weight_bytes_after);
    kv_num(j, "weight_ratio", r->weight_bytes_before
                                  ? (double)r->weight_bytes_after / (double)r->weight_bytes_before
                                  : NAN);
    write_calibration(r, j);
    write_clamped(r, j);
    kv_num(j, "seconds", r->seconds);
    pare_json_end_object(j);
}

/* ---- already quantized? ------------------------------------------------ */

typedef struct quant_scan {
    char *what;
    size_t what_size;
    bool found;
} quant_scan;

static bool is_quant_op(const pare_node *n)
{
    static const char *const exact[] = {
        "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulNBits",
        "MatMulBnb4", "GatherBlockQuantized", "DynamicQuantizeMatMul", "DynamicQuantizeLSTM",
        "QAttention", "QGemm", "QOrderedMatMul", "QOrderedAttention", "QEmbedLayerNormalization",
        "QuantizeBFP", "DequantizeBFP", NULL};
    const char *op = n->op_type ? n->op_type : "";
    for (size_t i = 0; exact[i]; i++)
        if (strcmp(op, exact[i]) == 0)
            return true;
    /* QLinearConv, QLinearMatMul, com.microsoft QLinearAdd, ... */
    if (strncmp(op, "QLinear", 7) == 0)
        return true;
    /* MatMulInteger, ConvInteger, MatMulIntegerToFloat */
    if (strstr(op, "Integer") && (strncmp(op, "MatMul", 6) == 0 || strncmp(op, "Conv", 4) == 0))
        return true;
    return false;
}

/* low-precision types that only quantization produces */
static bool is_quant_dtype(int dt)
{
    switch (dt) {
    case PARE_DT_INT4:
    case PARE_DT_UINT4:
    case PARE_DT_INT2:
    case PARE_DT_UINT2:
    case PARE_DT_FLOAT8E4M3FN:
    case PARE_DT_FLOAT8E4M3FNUZ:
    case PARE_DT_FLOAT8E5M2:
    case PARE_DT_FLOAT8E5M2FNUZ:
    case PARE_DT_FLOAT4E2M1:
        return true;
    default:
        return false;
    }
}

/* ops that compute with a weight: an 8-bit initializer read by one of them
 * is a quantized weight (a hand-made dequantization starts with a Cast) */
static bool is_weight_consumer(const pare_node *n)
{
    static const char *const ops[] = {"Conv", "ConvTranspose", "MatMul", "Gemm", "Cast",
                                      "Gather", "Einsum", NULL};
    for (size_t i = 0; ops[i]; i++)
        if (pare_node_is(n, "", ops[i]))
            return true;
    return false;
}

static void scan_graph(pare_graph *g, void *ctx)
{
    quant_scan *s = ctx;
    if (s->found)
        return;
    char label[160];
    for (size_t i = 0; i < g->n_nodes; i++) {
        pare_node *n = g->nodes[i];
        if (is_quant_op(n)) {
            snprintf(s->what, s->what_size, "it has quantized node %s",
                     pare_node_label(n, label, sizeof label));
            s->found = true;
            return;
        }
    }
    for (size_t i = 0; i < g->n_values; i++) {
        pare_value *v = g->values[i];
        if (!v || !v->init)
            continue;
        int dt = v->init->dtype;
        if (is_quant_dtype(dt) && v->n_uses) {
            snprintf(s->what, s->what_size, "initializer '%s' is %s", v->name,
                     pare_dtype_name(dt));
            s->found = true;
            return;
        }
        if (dt != PARE_DT_INT8 && dt != PARE_DT_UINT8)
            continue;
        /* small 8-bit constants (masks, lookup tables of a few entries) are
         * common in float models: only a weight-sized one counts */
        if (pare_tensor_numel(v->init) < 16)
            continue;
        for (size_t u = 0; u < v->n_uses; u++) {
            pare_node *c = v->uses[u].node;
            if (c && is_weight_consumer(c)) {
                snprintf(s->what, s->what_size, "initializer '%s' (%s) feeds %s", v->name,
                         pare_dtype_name(dt), pare_node_label(c, label, sizeof label));
                s->found = true;
                return;
            }
        }
    }
}

bool pare_model_is_quantized(pare_model *m, char *what, size_t what_size)
{
    char dummy[1];
    quant_scan s = {what && what_size ? what : dummy, what && what_size ? what_size : 1, false};
    s.what[0] = '\0';
    pare_graph_walk(pare_model_graph(m), scan_graph, &s);
    return s.found;
}
