/* Plain-text tables with padded columns; see pare/report.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/report.h"

typedef struct column {
    char *title;
    pare_align align;
} column;

struct pare_table {
    size_t ncols;
    column *cols;
    char **cells;          /* rows * ncols, NULL for empty */
    size_t rows, cap_rows; /* rows allocated as ncols cells each */
    size_t next_col;       /* next cell of the current row */
    pare_status st;
};

pare_status pare_table_new(size_t ncols, pare_table **out, pare_error *err)
{
    if (ncols == 0 || ncols > 4096)
        return pare_error_set(err, PARE_ERR_ARG, "a table needs 1..4096 columns");
    pare_table *t = calloc(1, sizeof *t);
    if (!t || !(t->cols = calloc(ncols, sizeof *t->cols))) {
        free(t);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    t->ncols = ncols;
    *out = t;
    return PARE_OK;
}

void pare_table_free(pare_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ncols; i++)
        free(t->cols[i].title);
    for (size_t i = 0; i < t->rows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t->cols);
    free(t);
}

void pare_table_column(pare_table *t, size_t col, const char *title, pare_align align)
{
    if (t->st)
        return;
    if (col >= t->ncols) {
        t->st = PARE_ERR_ARG;
        return;
    }
    free(t->cols[col].title);
    t->cols[col].title = title ? strdup(title) : NULL;
    if (title && !t->cols[col].title)
        t->st = PARE_ERR_NOMEM;
    t->cols[col].align = align;
}

void pare_table_row(pare_table *t)
{
    if (t->st)
        return;
    if (t->rows == t->cap_rows) {
        size_t nc = t->cap_rows ? t->cap_rows * 2 : 16;
        if (nc > SIZE_MAX / t->ncols / sizeof(char *)) {
            t->st = PARE_ERR_LIMIT;
            return;
        }
        char **ncells = realloc(t->cells, nc * t->ncols * sizeof *ncells);
        if (!ncells) {
            t->st = PARE_ERR_NOMEM;
            return;
        }
        t->cells = ncells;
        t->cap_rows = nc;
    }
    memset(t->cells + t->rows * t->ncols, 0, t->ncols * sizeof *t->cells);
    t->rows++;
    t->next_col = 0;
}

void pare_table_cell(pare_table *t, const char *fmt, ...)
{
    if (t->st)
        return;
    if (t->rows == 0 || t->next_col >= t->ncols) {
        t->st = PARE_ERR_ARG;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->st = PARE_ERR_ARG;
        return;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        t->st = PARE_ERR_NOMEM;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    /* a cell is one line of text: newlines and tabs become spaces, other
     * control characters (terminal escapes from a file's names) '?' */
    for (char *p = s; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
        else if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    t->cells[(t->rows - 1) * t->ncols + t->next_col++] = s;
}

/* Display width: UTF-8 code points (continuation bytes do not count). */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; s && *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            w++;
    return w;
}

typedef struct out {
    char *buf;
    size_t len, cap;
    bool fail;
} out;

static void emit(out *o, const char *s, size_t n)
{
    if (o->fail)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t nc = o->cap ? o->cap : 256;
        while (nc < o->len + n + 1)
            nc *= 2;
        char *nb = realloc(o->buf, nc);
        if (!nb) {
            o->fail = true;
            return;
        }
        o->buf = nb;
        o->cap = nc;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void pad(out *o, size_t n)
{
    static const char sp[] = "                                ";
    while (n) {
        size_t k = n < sizeof sp - 1 ? n : sizeof sp - 1;
        emit(o, sp, k);
        n -= k;
    }
}

static void emit_line(out *o, pare_table *t, const size_t *w, const char *const *cells, int indent)
{
    size_t start = o->len;
    pad(o, (size_t)indent);
    for (size_t c = 0; c < t->ncols; c++) {
        const char *s = cells[c] ? cells[c] : "";
        size_t sw = width(s);
        if (c)
            pad(o, 2);
        if (t->cols[c].align == PARE_ALIGN_RIGHT)
            pad(o, w[c] - sw);
        emit(o, s, strlen(s));
        if (t->cols[c].align == PARE_ALIGN_LEFT)
            pad(o, w[c] - sw);
    }
    if (o->fail)
        return;
    while (o->len > start && o->buf[o->len - 1] == ' ')
        o->len--;
    emit(o, "\n", 1);
}

pare_status pare_table_render(pare_table *t, int indent, char **text, size_t *len,
                              pare_error *err)
{
    if (t->st)
        return pare_error_set(err, t->st, "table: %s",
                              t->st == PARE_ERR_NOMEM ? "out of memory"
                                                      : "a cell outside the table");
    size_t *w = calloc(t->ncols, sizeof *w);
    const char **hdr = calloc(t->ncols, sizeof *hdr);
    if (!w || !hdr) {
        free(w);
        free(hdr);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    bool has_header = false;
    for (size_t c = 0; c < t->ncols; c++) {
        hdr[c] = t->cols[c].title;
        if (hdr[c]) {
            has_header = true;
            w[c] = width(hdr[c]);
        }
    }
    for (size_t r = 0; r < t->rows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t cw = width(t->cells[r * t->ncols + c]);
            if (cw > w[c])
                w[c] = cw;
        }
    out o = {0};
    emit(&o, "", 0);
    if (has_header)
        emit_line(&o, t, w, hdr, indent < 0 ? 0 : indent);
    for (size_t r = 0; r < t->rows; r++)
        emit_line(&o, t, w, (const char *const *)t->cells + r * t->ncols, indent < 0 ? 0 : indent);
    free(w);
    free(hdr);
    if (o.fail) {
        free(o.buf);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    *text = o.buf;
    *len = o.len;
    return PARE_OK;
}
