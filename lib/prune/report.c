/* report.c - the report of pare-prune (pare/prune.h): layers, skipped
 * layers, totals, sizes; JSON (schema pare-prune/1) and a text table. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "pare/model.h"
#include "prune_internal.h"

char *prune_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void prune_note(prune_layer *L, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    free(L->note);
    L->note = prune_strdup(buf);
}

void pare_prune_report_init(pare_prune_report *r)
{
    memset(r, 0, sizeof *r);
    r->threshold = NAN;
}

void pare_prune_report_release(pare_prune_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_layers; i++) {
        free(r->layers[i].node);
        free(r->layers[i].op);
        free(r->layers[i].weight);
        free(r->layers[i].note);
    }
    for (size_t i = 0; i < r->n_skipped; i++) {
        free(r->skipped[i].node);
        free(r->skipped[i].op);
        free(r->skipped[i].why);
    }
    free(r->layers);
    free(r->skipped);
    free(r->method);
    pare_prune_report_init(r);
}

static const char *node_name(const pare_node *n, char *buf, size_t size)
{
    if (n->name && n->name[0])
        return n->name;
    snprintf(buf, size, "#%zu", n->id);
    return buf;
}

pare_status pare_prune_report_layer(pare_prune_report *r, const pare_node *n, const char *weight,
                                    pare_prune_layer_stat **out, pare_error *err)
{
    if (r->n_layers == r->cap_layers) {
        size_t cap = r->cap_layers ? r->cap_layers * 2 : 16;
        pare_prune_layer_stat *p = realloc(r->layers, cap * sizeof *p);
        if (!p)
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        r->layers = p;
        r->cap_layers = cap;
    }
    char buf[32];
    pare_prune_layer_stat *s = &r->layers[r->n_layers];
    memset(s, 0, sizeof *s);
    s->node = prune_strdup(node_name(n, buf, sizeof buf));
    s->op = prune_strdup(n->op_type);
    s->weight = prune_strdup(weight ? weight : "");
    if (!s->node || !s->op || !s->weight) {
        free(s->node);
        free(s->op);
        free(s->weight);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    r->n_layers++;
    if (out)
        *out = s;
    return PARE_OK;
}

pare_status pare_prune_report_skip(pare_prune_report *r, const pare_node *n, const char *why,
                                   pare_error *err)
{
    if (r->n_skipped == r->cap_skipped) {
        size_t cap = r->cap_skipped ? r->cap_skipped * 2 : 16;
        pare_prune_skip *p = realloc(r->skipped, cap * sizeof *p);
        if (!p)
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        r->skipped = p;
        r->cap_skipped = cap;
    }
    char buf[32];
    pare_prune_skip *s = &r->skipped[r->n_skipped];
    s->node = prune_strdup(node_name(n, buf, sizeof buf));
    s->op = prune_strdup(n->op_type);
    s->why = prune_strdup(why ? why : "");
    if (!s->node || !s->op || !s->why) {
        free(s->node);
        free(s->op);
        free(s->why);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    r->n_skipped++;
    return PARE_OK;
}

void pare_prune_count_params(pare_model *m, uint64_t *params, uint64_t *nonzero)
{
    uint64_t p = 0, nz = 0;
    pare_graph *g = pare_model_graph(m);
    for (size_t i = 0; g && i < g->n_values; i++) {
        pare_value *v = g->values[i];
        if (!v || (!v->init && !v->is_sparse_init))
            continue;
        pare_error terr;
        const pare_tensor *t = pare_value_tensor(v, &terr);
        if (!t)
            continue;
        uint64_t n = pare_tensor_numel(t);
        if (t->dtype != PARE_DT_FLOAT && t->dtype != PARE_DT_FLOAT16 &&
            t->dtype != PARE_DT_BFLOAT16 && t->dtype != PARE_DT_DOUBLE)
            continue;
        p += n;
        size_t es = pare_dtype_nbytes(t->dtype, 1);
        const unsigned char *b = t->data;
        for (uint64_t k = 0; k < n && b; k++) {
            const unsigned char *e = b + k * es;
            bool zero = true;
            /* +0 and -0 are both zero: ignore the sign bit (top bit of the last byte) */
            for (size_t q = 0; q < es; q++) {
                unsigned char c = e[q];
                if (q == es - 1)
                    c &= 0x7f;
                if (c) {
                    zero = false;
                    break;
                }
            }
            if (!zero)
                nz++;
        }
    }
    *params = p;
    *nonzero = nz;
}

pare_status pare_prune_model_sizes(pare_model *m, int level, uint64_t *plain, uint64_t *gz,
                                   pare_error *err)
{
    void *buf = NULL;
    size_t len = 0;
    if (pare_model_save_buffer(m, &buf, &len, err))
        return err ? err->status : PARE_ERR_IO;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    /* 31: gzip wrapper, as the writer uses */
    if (deflateInit2(&zs, level > 0 && level <= 9 ? level : 6, Z_DEFLATED, 31, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        free(buf);
        return pare_error_set(err, PARE_ERR_NOMEM, "zlib: cannot start deflate");
    }
    unsigned char out[65536];
    uint64_t total = 0;
    const unsigned char *p = buf;
    size_t left = len;
    int flush;
    do {
        size_t chunk = left > (1u << 30) ? (1u << 30) : left;
        zs.next_in = (unsigned char *)(uintptr_t)p;
        zs.avail_in = (uInt)chunk;
        p += chunk;
        left -= chunk;
        flush = left ? Z_NO_FLUSH : Z_FINISH;
        do {
            zs.next_out = out;
            zs.avail_out = sizeof out;
            int rc = deflate(&zs, flush);
            if (rc == Z_STREAM_ERROR) {
                deflateEnd(&zs);
                free(buf);
                return pare_error_set(err, PARE_ERR_RUNTIME, "zlib: deflate failed");
            }
            total += sizeof out - zs.avail_out;
        } while (zs.avail_out == 0);
    } while (flush != Z_FINISH);
    deflateEnd(&zs);
    free(buf);
    *plain = len;
    *gz = total;
    return PARE_OK;
}

static double share(int64_t part, int64_t whole) { return whole > 0 ? (double)part / (double)whole : 0; }

void pare_prune_report_json(const pare_prune_report *r, pare_json *j)
{
    pare_json_begin_object(j);
    pare_json_kv_string(j, "schema", "pare-prune/1");
    pare_json_kv_string(j, "method", r->method ? r->method : "");
    if (isnan(r->threshold))
        pare_json_kv_null(j, "threshold");
    else
        pare_json_kv_double(j, "threshold", r->threshold);
    pare_json_kv_uint(j, "params_before", r->params_before);
    pare_json_kv_uint(j, "params_after", r->params_after);
    pare_json_kv_uint(j, "nonzero_before", r->nonzero_before);
    pare_json_kv_uint(j, "nonzero_after", r->nonzero_after);
    pare_json_kv_uint(j, "bytes_before", r->bytes_before);
    pare_json_kv_uint(j, "bytes_after", r->bytes_after);
    pare_json_kv_uint(j, "gzip_before", r->gzip_before);
    pare_json_kv_uint(j, "gzip_after", r->gzip_after);
    pare_json_kv_double(j, "macs_before", r->macs_before);
    pare_json_kv_double(j, "macs_after", r->macs_after);
    pare_json_kv_double(j, "macs_effective_after", r->macs_effective_after);
    pare_json_kv_int(j, "calibration_samples", r->calib_samples);
    pare_json_key(j, "layers");
    pare_json_begin_array(j);
    for (size_t i = 0; i < r->n_layers; i++) {
        const pare_prune_layer_stat *s = &r->layers[i];
        pare_json_begin_object_flat(j);
        pare_json_kv_string(j, "node", s->node);
        pare_json_kv_string(j, "op", s->op);
        pare_json_kv_string(j, "weight", s->weight);
        pare_json_kv_int(j, "params", s->params);
        pare_json_kv_int(j, "zeros_before", s->zeros_before);
        pare_json_kv_int(j, "zeros_after", s->zeros_after);
        pare_json_key(j, "sparsity");
        pare_json_double_sig(j, share(s->zeros_after, s->params), 6);
        pare_json_kv_int(j, "channels_before", s->channels_before);
        pare_json_kv_int(j, "channels_after", s->channels_after);
        pare_json_kv_double(j, "macs_before", s->macs_before);
        pare_json_kv_double(j, "macs_after", s->macs_after);
        pare_json_kv_double(j, "macs_effective", s->macs_effective);
        if (s->note)
            pare_json_kv_string(j, "note", s->note);
        pare_json_end_object(j);
    }
    pare_json_end_array(j);
    pare_json_key(j, "skipped");
    pare_json_begin_array(j);
    for (size_t i = 0; i < r->n_skipped; i++) {
        pare_json_begin_object_flat(j);
        pare_json_kv_string(j, "node", r->skipped[i].node);
        pare_json_kv_string(j, "op", r->skipped[i].op);
        pare_json_kv_string(j, "why", r->skipped[i].why);
        pare_json_end_object(j);
    }
    pare_json_end_array(j);
    pare_json_end_object(j);
}

static void fmt_count(double v, char *buf, size_t size)
{
    if (v >= 1e9)
        snprintf(buf, size, "%.2fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, size, "%.2fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(buf, size, "%.1fK", v / 1e3);
    else
        snprintf(buf, size, "%.0f", v);
}

pare_status pare_prune_report_text(const pare_prune_report *r, char **text, pare_error *err)
{
    *text = NULL;
    pare_table *t;
    if (pare_table_new(9, &t, err))
        return err->status;
    const char *titles[] = {"layer", "op", "params", "sparsity before", "sparsity after",
                            "channels", "MACs before", "MACs after (nonzero)", "note"};
    for (size_t c = 0; c < 9; c++)
        pare_table_column(t, c, titles[c], c >= 2 && c <= 7 ? PARE_ALIGN_RIGHT : PARE_ALIGN_LEFT);
    for (size_t i = 0; i < r->n_layers; i++) {
        const pare_prune_layer_stat *s = &r->layers[i];
        char a[32], b[32], c[32];
        pare_table_row(t);
        pare_table_cell(t, "%s", s->node);
        pare_table_cell(t, "%s", s->op);
        pare_table_cell(t, "%" PRId64, s->params);
        pare_table_cell(t, "%.1f%%", 100 * share(s->zeros_before, s->params));
        pare_table_cell(t, "%.1f%%", 100 * share(s->zeros_after, s->params));
        if (s->channels_before != s->channels_after)
            pare_table_cell(t, "%" PRId64 " -> %" PRId64, s->channels_before, s->channels_after);
        else
            pare_table_cell(t, "%" PRId64, s->channels_after);
        fmt_count(s->macs_before, a, sizeof a);
        fmt_count(s->macs_after, b, sizeof b);
        fmt_count(s->macs_effective, c, sizeof c);
        pare_table_cell(t, "%s", s->macs_before > 0 ? a : "?");
        if (s->macs_before > 0)
            pare_table_cell(t, "%s (%s)", b, c);
        else
            pare_table_cell(t, "?");
        pare_table_cell(t, "%s", s->note ? s->note : "");
    }
    for (size_t i = 0; i < r->n_skipped; i++) {
        pare_table_row(t);
        pare_table_cell(t, "%s", r->skipped[i].node);
        pare_table_cell(t, "%s", r->skipped[i].op);
        for (int k = 0; k < 6; k++)
            pare_table_cell(t, "%s", "");
        pare_table_cell(t, "dense: %s", r->skipped[i].why);
    }
    char *body = NULL;
    size_t blen;
    if (pare_table_render(t, 0, &body, &blen, err)) {
        pare_table_free(t);
        return err->status;
    }
    pare_table_free(t);
    char mb[32], ma[32], me[32];
    fmt_count(r->macs_before, mb, sizeof mb);
    fmt_count(r->macs_after, ma, sizeof ma);
    fmt_count(r->macs_effective_after, me, sizeof me);
    char head[1024];
    int hn = snprintf(head, sizeof head,
                      "method: %s\n"
                      "params: %" PRIu64 " -> %" PRIu64 "; nonzero: %" PRIu64 " -> %" PRIu64
                      " (%.1f%% of weights zero)\n"
                      "bytes: %" PRIu64 " -> %" PRIu64 " plain, %" PRIu64 " -> %" PRIu64
                      " gzipped (%.2fx)\n"
                      "MACs of pruned layers: %s -> %s dense, %s nonzero\n",
                      r->method ? r->method : "-", r->params_before, r->params_after,
                      r->nonzero_before, r->nonzero_after,
                      r->params_after ? 100.0 * (double)(r->params_after - r->nonzero_after) /
                                            (double)r->params_after
                                      : 0.0,
                      r->bytes_before, r->bytes_after, r->gzip_before, r->gzip_after,
                      r->gzip_before ? (double)r->gzip_after / (double)r->gzip_before : 1.0, mb,
                      ma, me);
    if (hn < 0)
        hn = 0;
    size_t n = (size_t)hn + blen + 1;
    char *out = malloc(n);
    if (!out) {
        free(body);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    memcpy(out, head, (size_t)hn);
    memcpy(out + hn, body, blen);
    out[hn + blen] = 0;
    free(body);
    *text = out;
    return PARE_OK;
}
