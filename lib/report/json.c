/* A small streaming JSON writer into memory; see pare/report.h. */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include "pare/report.h"

typedef struct frame {
    char kind;     /* '{' or '[' */
    bool flat;     /* no newlines inside */
    bool have_key; /* object: a key waits for its value */
    size_t count;  /* members or elements so far */
} frame;

struct pare_json {
    unsigned flags;
    char *buf;
    size_t len, cap;
    frame *stack;
    size_t depth, cap_stack;
    size_t roots;          /* top-level values written */
    pare_status st;        /* first error */
    char why[160];
};

static void fail(pare_json *j, pare_status st, const char *why)
{
    if (j->st)
        return;
    j->st = st;
    snprintf(j->why, sizeof j->why, "%s", why);
}

static void put(pare_json *j, const char *s, size_t n)
{
    if (j->st)
        return;
    if (n > SIZE_MAX - j->len - 2) {
        fail(j, PARE_ERR_LIMIT, "JSON text too large");
        return;
    }
    if (j->len + n + 2 > j->cap) {
        size_t nc = j->cap ? j->cap : 256;
        while (nc < j->len + n + 2)
            nc = nc > SIZE_MAX / 2 ? SIZE_MAX : nc * 2;
        char *nb = realloc(j->buf, nc);
        if (!nb) {
            fail(j, PARE_ERR_NOMEM, "out of memory");
            return;
        }
        j->buf = nb;
        j->cap = nc;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static void puts_(pare_json *j, const char *s)
{
    put(j, s, strlen(s));
}

pare_status pare_json_new(unsigned flags, pare_json **out, pare_error *err)
{
    pare_json *j = calloc(1, sizeof *j);
    if (!j)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    j->flags = flags;
    *out = j;
    return PARE_OK;
}

void pare_json_free(pare_json *j)
{
    if (!j)
        return;
    free(j->buf);
    free(j->stack);
    free(j);
}

static bool pretty(const pare_json *j)
{
    return (j->flags & PARE_JSON_PRETTY) && !(j->depth && j->stack[j->depth - 1].flat);
}

static void newline_indent(pare_json *j, size_t depth)
{
    put(j, "\n", 1);
    for (size_t i = 0; i < depth; i++)
        put(j, "  ", 2);
}

/* Everything a value needs written before it; false if no value may go here. */
static bool before_value(pare_json *j)
{
    if (j->st)
        return false;
    if (j->depth == 0) {
        if (j->roots) {
            fail(j, PARE_ERR_ARG, "more than one top-level JSON value");
            return false;
        }
        j->roots++;
        return true;
    }
    frame *f = &j->stack[j->depth - 1];
    if (f->kind == '{') {
        if (!f->have_key) {
            fail(j, PARE_ERR_ARG, "a JSON object member without a key");
            return false;
        }
        f->have_key = false;
        f->count++;
        return true;
    }
    if (f->count)
        put(j, ",", 1);
    if (pretty(j))
        newline_indent(j, j->depth);
    else if (f->count && (j->flags & PARE_JSON_PRETTY))
        put(j, " ", 1);
    f->count++;
    return true;
}

static void begin(pare_json *j, char kind, bool flat)
{
    if (!before_value(j))
        return;
    if (j->depth == j->cap_stack) {
        size_t nc = j->cap_stack ? j->cap_stack * 2 : 8;
        frame *ns = realloc(j->stack, nc * sizeof *ns);
        if (!ns) {
            fail(j, PARE_ERR_NOMEM, "out of memory");
            return;
        }
        j->stack = ns;
        j->cap_stack = nc;
    }
    bool parent_flat = j->depth && j->stack[j->depth - 1].flat;
    j->stack[j->depth++] = (frame){kind, flat || parent_flat, false, 0};
    put(j, kind == '{' ? "{" : "[", 1);
}

static void end(pare_json *j, char kind)
{
    if (j->st)
        return;
    if (j->depth == 0 || j->stack[j->depth - 1].kind != kind) {
        fail(j, PARE_ERR_ARG, kind == '{' ? "end of a JSON object that is not open"
                                         : "end of a JSON array that is not open");
        return;
    }
    frame *f = &j->stack[j->depth - 1];
    if (f->have_key) {
        fail(j, PARE_ERR_ARG, "a JSON key without a value");
        return;
    }
    bool nl = pretty(j) && f->count;
    j->depth--;
    if (nl)
        newline_indent(j, j->depth);
    put(j, kind == '{' ? "}" : "]", 1);
}

void pare_json_begin_object(pare_json *j)
{
    begin(j, '{', false);
}
void pare_json_begin_object_flat(pare_json *j)
{
    begin(j, '{', true);
}
void pare_json_end_object(pare_json *j)
{
    end(j, '{');
}
void pare_json_begin_array(pare_json *j)
{
    begin(j, '[', false);
}
void pare_json_begin_array_flat(pare_json *j)
{
    begin(j, '[', true);
}
void pare_json_end_array(pare_json *j)
{
    end(j, '[');
}

/* ---- strings ---- */

typedef struct sink {
    void (*put)(void *ctx, const char *s, size_t n);
    void *ctx;
} sink;

/* Length of the valid UTF-8 sequence at s (1..4), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t need;
    uint32_t v, min;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
        v = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        v = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return need;
}

static void escape_core(const char *str, size_t len, const sink *k)
{
    const unsigned char *s = (const unsigned char *)str;
    k->put(k->ctx, "\"", 1);
    size_t run = 0; /* start of bytes that pass through unchanged */
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        const char *rep = NULL;
        char ubuf[8];
        size_t adv = 1;
        if (c < 0x80) {
            switch (c) {
            case '"': rep = "\\\""; break;
            case '\\': rep = "\\\\"; break;
            case '\b': rep = "\\b"; break;
            case '\f': rep = "\\f"; break;
            case '\n': rep = "\\n"; break;
            case '\r': rep = "\\r"; break;
            case '\t': rep = "\\t"; break;
            default:
                if (c < 0x20) {
                    snprintf(ubuf, sizeof ubuf, "\\u%04x", c);
                    rep = ubuf;
                }
            }
        } else {
            uint32_t cp;
            adv = utf8_seq(s + i, len - i, &cp);
            if (adv == 0) {
                rep = "\\ufffd";
                adv = 1;
            } else if (cp == 0x2028) {
                rep = "\\u2028";
            } else if (cp == 0x2029) {
                rep = "\\u2029";
            }
        }
        if (rep) {
            if (i > run)
                k->put(k->ctx, str + run, i - run);
            k->put(k->ctx, rep, strlen(rep));
            run = i + adv;
        }
        i += adv;
    }
    if (len > run)
        k->put(k->ctx, str + run, len - run);
    k->put(k->ctx, "\"", 1);
}

static void sink_json(void *ctx, const char *s, size_t n)
{
    put(ctx, s, n);
}

typedef struct fixed_buf {
    char *buf;
    size_t size, need;
} fixed_buf;

static void sink_fixed(void *ctx, const char *s, size_t n)
{
    fixed_buf *f = ctx;
    if (f->size && f->need < f->size - 1) {
        size_t room = f->size - 1 - f->need;
        memcpy(f->buf + f->need, s, n < room ? n : room);
    }
    f->need += n;
}

size_t pare_json_escape(const char *s, size_t len, char *buf, size_t size)
{
    fixed_buf f = {buf, size, 0};
    sink k = {sink_fixed, &f};
    escape_core(s ? s : "", s ? len : 0, &k);
    if (size)
        buf[f.need < size ? f.need : size - 1] = '\0';
    return f.need;
}

static void write_escaped(pare_json *j, const char *s, size_t len)
{
    sink k = {sink_json, j};
    escape_core(s, len, &k);
}

void pare_json_key(pare_json *j, const char *key)
{
    if (j->st)
        return;
    if (j->depth == 0 || j->stack[j->depth - 1].kind != '{') {
        fail(j, PARE_ERR_ARG, "a JSON key outside an object");
        return;
    }
    frame *f = &j->stack[j->depth - 1];
    if (f->have_key) {
        fail(j, PARE_ERR_ARG, "two JSON keys in a row");
        return;
    }
    if (f->count)
        put(j, ",", 1);
    if (pretty(j))
        newline_indent(j, j->depth);
    else if (f->count && (j->flags & PARE_JSON_PRETTY))
        put(j, " ", 1);
    key = key ? key : "";
    write_escaped(j, key, strlen(key));
    put(j, (j->flags & PARE_JSON_PRETTY) ? ": " : ":", (j->flags & PARE_JSON_PRETTY) ? 2 : 1);
    f->have_key = true;
}

void pare_json_string_n(pare_json *j, const char *s, size_t len)
{
    if (!s) {
        pare_json_null(j);
        return;
    }
    if (before_value(j))
        write_escaped(j, s, len);
}

void pare_json_string(pare_json *j, const char *s)
{
    pare_json_string_n(j, s, s ? strlen(s) : 0);
}

/* ---- numbers and literals ---- */

void pare_json_int(pare_json *j, int64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%" PRId64, v);
    if (before_value(j))
        puts_(j, b);
}

void pare_json_uint(pare_json *j, uint64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%" PRIu64, v);
    if (before_value(j))
        puts_(j, b);
}

/* Replaces the locale's decimal point, if it is not '.', with '.'. */
static void fix_decimal_point(char *b, size_t size)
{
    const char *dp = localeconv()->decimal_point;
    if (!dp || !*dp || strcmp(dp, ".") == 0)
        return;
    char *p = strstr(b, dp);
    if (!p)
        return;
    size_t dl = strlen(dp);
    *p = '.';
    memmove(p + 1, p + dl, strlen(p + dl) + 1);
    (void)size;
}

char *pare_json_format_double(double v, int digits, char *buf, size_t size)
{
    if (!isfinite(v)) {
        snprintf(buf, size, "null");
        return buf;
    }
    if (v == 0) {
        snprintf(buf, size, "0");
        return buf;
    }
    if (digits <= 0 && v == nearbyint(v) && fabs(v) < 9007199254740992.0) {
        /* whole numbers (counts, MACs) in plain digits: 640, not 6.4e+02 */
        snprintf(buf, size, "%.0f", v);
        return buf;
    }
    if (digits > 0) {
        if (digits > 17)
            digits = 17;
        snprintf(buf, size, "%.*g", digits, v);
    } else {
        for (int p = 1; p <= 17; p++) {
            snprintf(buf, size, "%.*g", p, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
    fix_decimal_point(buf, size);
    if (strcmp(buf, "-0") == 0)
        snprintf(buf, size, "0");
    return buf;
}

void pare_json_double(pare_json *j, double v)
{
    pare_json_double_sig(j, v, 0);
}

void pare_json_double_sig(pare_json *j, double v, int digits)
{
    char b[40];
    pare_json_format_double(v, digits, b, sizeof b);
    if (before_value(j))
        puts_(j, b);
}

void pare_json_bool(pare_json *j, bool v)
{
    if (before_value(j))
        puts_(j, v ? "true" : "false");
}

void pare_json_null(pare_json *j)
{
    if (before_value(j))
        puts_(j, "null");
}

void pare_json_kv_string(pare_json *j, const char *key, const char *s)
{
    pare_json_key(j, key);
    pare_json_string(j, s);
}
void pare_json_kv_int(pare_json *j, const char *key, int64_t v)
{
    pare_json_key(j, key);
    pare_json_int(j, v);
}
void pare_json_kv_uint(pare_json *j, const char *key, uint64_t v)
{
    pare_json_key(j, key);
    pare_json_uint(j, v);
}
void pare_json_kv_double(pare_json *j, const char *key, double v)
{
    pare_json_key(j, key);
    pare_json_double(j, v);
}
void pare_json_kv_bool(pare_json *j, const char *key, bool v)
{
    pare_json_key(j, key);
    pare_json_bool(j, v);
}
void pare_json_kv_null(pare_json *j, const char *key)
{
    pare_json_key(j, key);
    pare_json_null(j);
}

pare_status pare_json_finish(pare_json *j, const char **text, size_t *len, pare_error *err)
{
    if (!j->st && j->depth)
        fail(j, PARE_ERR_ARG, "JSON text ends inside an unclosed object or array");
    if (!j->st && !j->roots)
        fail(j, PARE_ERR_ARG, "JSON text is empty");
    if (!j->st && (j->len == 0 || j->buf[j->len - 1] != '\n'))
        put(j, "\n", 1);
    if (j->st)
        return pare_error_set(err, j->st, "%s", j->why);
    *text = j->buf;
    *len = j->len;
    return PARE_OK;
}
