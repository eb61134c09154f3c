/* Kernel registries: a backend's family tables merged into one array sorted
 * by (domain, op_type, since_version), searched with a binary search, with
 * each record's input-dtype spec (pare_kernel.types) compiled once into one
 * bit mask per input index. The CPU registry is built on first use. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "exec/kernel.h"

#define KT_MAX 16 /* tokens per spec */

typedef struct ktypes {
    uint8_t n;              /* tokens */
    bool variadic;          /* the last token covers every further input */
    uint32_t mask[KT_MAX];  /* bit d: dtype d accepted; 0: any */
    int8_t same[KT_MAX];    /* index of the input this one must equal, or -1 */
} ktypes;

typedef struct kentry {
    const pare_kernel *k;
    size_t pos; /* position in the tables, to keep their order on equal keys */
    ktypes t;
} kentry;

struct pare_kreg {
    kentry *e;
    size_t n;
};

/* ---- types specs ---- */

#define DTBIT(d) (UINT32_C(1) << (d))

static uint32_t group_mask(const char *s, size_t len)
{
    static const struct {
        const char *name;
        uint32_t mask;
    } groups[] = {
        {"fp", DTBIT(PARE_DT_FLOAT) | DTBIT(PARE_DT_DOUBLE) | DTBIT(PARE_DT_FLOAT16) |
                   DTBIT(PARE_DT_BFLOAT16)},
        {"sint", DTBIT(PARE_DT_INT8) | DTBIT(PARE_DT_INT16) | DTBIT(PARE_DT_INT32) |
                     DTBIT(PARE_DT_INT64)},
        {"uint", DTBIT(PARE_DT_UINT8) | DTBIT(PARE_DT_UINT16) | DTBIT(PARE_DT_UINT32) |
                     DTBIT(PARE_DT_UINT64)},
        {"int", DTBIT(PARE_DT_INT8) | DTBIT(PARE_DT_INT16) | DTBIT(PARE_DT_INT32) |
                    DTBIT(PARE_DT_INT64) | DTBIT(PARE_DT_UINT8) | DTBIT(PARE_DT_UINT16) |
                    DTBIT(PARE_DT_UINT32) | DTBIT(PARE_DT_UINT64)},
        {"fp8", DTBIT(PARE_DT_FLOAT8E4M3FN) | DTBIT(PARE_DT_FLOAT8E4M3FNUZ) |
                    DTBIT(PARE_DT_FLOAT8E5M2) | DTBIT(PARE_DT_FLOAT8E5M2FNUZ)},
    };
    for (size_t i = 0; i < sizeof groups / sizeof *groups; i++)
        if (strlen(groups[i].name) == len && memcmp(groups[i].name, s, len) == 0)
            return groups[i].mask;
    char name[32];
    if (len == 0 || len >= sizeof name)
        return 0;
    memcpy(name, s, len);
    name[len] = 0;
    pare_dtype d = pare_dtype_from_name(name);
    return d == PARE_DT_UNDEFINED ? 0 : DTBIT(d);
}

/* Compiles spec into t; false with why on a malformed spec. */
static bool parse_types(const char *spec, ktypes *t, char *why, size_t why_size)
{
    memset(t, 0, sizeof *t);
    for (int i = 0; i < KT_MAX; i++)
        t->same[i] = -1;
    if (!spec)
        return true;
    const char *p = spec;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        if (t->variadic) {
            snprintf(why, why_size, "'...' must end the last token");
            return false;
        }
        if (t->n >= KT_MAX) {
            snprintf(why, why_size, "more than %d tokens", KT_MAX);
            return false;
        }
        const char *end = p;
        while (*end && *end != ' ')
            end++;
        size_t len = (size_t)(end - p);
        if (len > 3 && memcmp(end - 3, "...", 3) == 0) {
            t->variadic = true;
            len -= 3;
        }
        uint8_t i = t->n;
        if (len == 1 && *p == '*') {
            t->mask[i] = 0;
        } else if (len >= 2 && *p == '=') {
            int v = 0;
            for (size_t c = 1; c < len; c++) {
                if (p[c] < '0' || p[c] > '9' || v > KT_MAX) {
                    snprintf(why, why_size, "bad token '%.*s'", (int)len, p);
                    return false;
                }
                v = v * 10 + (p[c] - '0');
            }
            if (v >= i) {
                snprintf(why, why_size, "'=%d' must name an earlier input", v);
                return false;
            }
            t->same[i] = (int8_t)v;
        } else {
            const char *q = p, *qe = p + len;
            while (q < qe) {
                const char *c = q;
                while (c < qe && *c != ',')
                    c++;
                uint32_t m = group_mask(q, (size_t)(c - q));
                if (!m) {
                    snprintf(why, why_size, "unknown dtype or group '%.*s'", (int)(c - q), q);
                    return false;
                }
                t->mask[i] |= m;
                q = c < qe ? c + 1 : c;
                if (c < qe && q == qe) {
                    snprintf(why, why_size, "empty name in '%.*s'", (int)len, p);
                    return false;
                }
            }
        }
        t->n++;
        p = end;
    }
    return true;
}

static bool types_accept(const ktypes *t, const int *dtypes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int dt = dtypes[i];
        if (dt <= 0)
            continue;
        size_t j;
        if (i < t->n)
            j = i;
        else if (t->variadic && t->n)
            j = t->n - 1u;
        else
            break;
        if (t->mask[j] && (dt >= 32 || !(t->mask[j] & DTBIT(dt))))
            return false;
        int s = t->same[j];
        if (s >= 0) {
            /* for a variadic "=N..." token every further input equals input N */
            if ((size_t)s < n && dtypes[s] > 0 && dtypes[s] != dt)
                return false;
        }
    }
    return true;
}

bool pare_kernel_accepts(const pare_kernel *k, const int *dtypes, size_t n)
{
    ktypes t;
    char why[128];
    if (!parse_types(k->types, &t, why, sizeof why))
        return false;
    return types_accept(&t, dtypes, n);
}

/* ---- registries ---- */

static const char *dom_of(const pare_kernel *k)
{
    return k->domain ? k->domain : "";
}

static int cmp_entry(const void *a, const void *b)
{
    const pare_kernel *x = ((const kentry *)a)->k, *y = ((const kentry *)b)->k;
    int c = strcmp(dom_of(x), dom_of(y));
    if (c)
        return c;
    c = strcmp(x->op_type, y->op_type);
    if (c)
        return c;
    c = (x->since_version > y->since_version) - (x->since_version < y->since_version);
    if (c)
        return c;
    /* equal keys keep table order, so the first record listed wins a tie */
    size_t pa = ((const kentry *)a)->pos, pb = ((const kentry *)b)->pos;
    return (pa > pb) - (pa < pb);
}

pare_status pare_kreg_new(const pare_kernel *const *tables, size_t n_tables, pare_kreg **out,
                          pare_error *err)
{
    *out = NULL;
    size_t n = 0;
    for (size_t t = 0; t < n_tables; t++)
        for (const pare_kernel *k = tables[t]; k->op_type; k++)
            n++;
    pare_kreg *r = calloc(1, sizeof *r);
    if (!r)
        return PARE_NOMEM(err);
    r->e = calloc(n ? n : 1, sizeof *r->e);
    if (!r->e) {
        free(r);
        return PARE_NOMEM(err);
    }
    for (size_t t = 0; t < n_tables; t++)
        for (const pare_kernel *k = tables[t]; k->op_type; k++) {
            char why[128];
            kentry *e = &r->e[r->n];
            e->k = k;
            e->pos = r->n++;
            if (!parse_types(k->types, &e->t, why, sizeof why)) {
                pare_kreg_free(r);
                return pare_error_set(err, PARE_ERR_INVALID,
                                      "kernel %s (domain '%s', since %d): types \"%s\": %s",
                                      k->op_type, dom_of(k), k->since_version, k->types, why);
            }
        }
    qsort(r->e, r->n, sizeof *r->e, cmp_entry);
    *out = r;
    return PARE_OK;
}

void pare_kreg_free(pare_kreg *r)
{
    if (!r)
        return;
    free(r->e);
    free(r);
}

/* first entry of (domain, op_type), or r->n */
static size_t lower_bound(const pare_kreg *r, const char *domain, const char *op_type)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const pare_kernel *k = r->e[mid].k;
        int c = strcmp(dom_of(k), domain);
        if (!c)
            c = strcmp(k->op_type, op_type);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool same_op(const pare_kernel *k, const char *domain, const char *op_type)
{
    return strcmp(dom_of(k), domain) == 0 && strcmp(k->op_type, op_type) == 0;
}

static bool serves_opset(const pare_kernel *k, int64_t opset)
{
    return k->since_version <= opset && (k->until_version == 0 || opset <= k->until_version);
}

const pare_kernel *pare_kreg_select(const pare_kreg *r, const char *domain, const char *op_type,
                                    int64_t opset, const int *dtypes, size_t n, char *why,
                                    size_t why_size)
{
    if (why_size)
        why[0] = 0;
    if (!domain || strcmp(domain, "ai.onnx") == 0)
        domain = "";
    size_t lo = lower_bound(r, domain, op_type);
    const pare_kernel *best = NULL;
    bool any_op = false, any_opset = false;
    int lo_v = 0, hi_v = 0;
    bool open_end = false;
    for (size_t i = lo; i < r->n && same_op(r->e[i].k, domain, op_type); i++) {
        const pare_kernel *k = r->e[i].k;
        if (!any_op || k->since_version < lo_v)
            lo_v = k->since_version;
        if (k->until_version == 0)
            open_end = true;
        else if (k->until_version > hi_v)
            hi_v = k->until_version;
        any_op = true;
        if (!serves_opset(k, opset))
            continue;
        any_opset = true;
        /* sorted by since_version: a later fit is newer; on equal since the
         * first listed wins */
        if (types_accept(&r->e[i].t, dtypes, n) &&
            (!best || k->since_version > best->since_version))
            best = k;
    }
    if (best || !why_size)
        return best;
    if (!any_op) {
        snprintf(why, why_size, "no kernel for the op");
    } else if (!any_opset) {
        if (open_end)
            snprintf(why, why_size, "no kernel for opset %lld (kernels serve opset %d on)",
                     (long long)opset, lo_v);
        else
            snprintf(why, why_size, "no kernel for opset %lld (kernels serve opsets %d to %d)",
                     (long long)opset, lo_v, hi_v);
    } else {
        size_t off = (size_t)snprintf(why, why_size, "no kernel for input dtypes (");
        for (size_t i = 0; i < n && off < why_size; i++)
            off += (size_t)snprintf(why + off, why_size - off, "%s%s", i ? ", " : "",
                                    dtypes[i] < 0    ? "none"
                                    : dtypes[i] == 0 ? "unknown"
                                                     : pare_dtype_name(dtypes[i]));
        if (off < why_size)
            snprintf(why + off, why_size - off, ")");
    }
    return NULL;
}

/* ---- the CPU registry ---- */

static const pare_kernel *const cpu_tables[] = {
    pare_kernels_elementwise, pare_kernels_linalg, pare_kernels_shape, pare_kernels_quant,
    pare_kernels_control,     pare_kernels_rnn,    pare_kernels_extra,
};
static pare_kreg *cpu_reg;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

static void build_cpu(void)
{
    pare_error err;
    if (pare_kreg_new(cpu_tables, sizeof cpu_tables / sizeof *cpu_tables, &cpu_reg, &err))
        cpu_reg = NULL;
}

const pare_kreg *pare_kreg_cpu(void)
{
    pthread_once(&cpu_once, build_cpu);
    return cpu_reg;
}

pare_status pare_kreg_check(pare_error *err)
{
    pare_kreg *r;
    pare_status st = pare_kreg_new(cpu_tables, sizeof cpu_tables / sizeof *cpu_tables, &r, err);
    pare_kreg_free(r);
    return st;
}

const pare_kernel *pare_kernel_find(const char *domain, const char *op_type, int64_t opset)
{
    const pare_kreg *r = pare_kreg_cpu();
    if (!r)
        return NULL;
    if (!domain || strcmp(domain, "ai.onnx") == 0)
        domain = "";
    const pare_kernel *best = NULL;
    for (size_t i = lower_bound(r, domain, op_type);
         i < r->n && same_op(r->e[i].k, domain, op_type); i++)
        if (serves_opset(r->e[i].k, opset) &&
            (!best || r->e[i].k->since_version > best->since_version))
            best = r->e[i].k; /* the newest that fits */
    return best;
}
