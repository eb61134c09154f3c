/* Shared command-line support for the pare programs; see cli.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "pare_config.h"
#include "cli.h"
#include "pare/model.h"

static const char *g_prog = "pare";
static int g_verbosity = 0;

const char *cli_program_name(void)
{
    return g_prog;
}
void cli_set_program(const char *name)
{
    g_prog = name ? name : "pare";
}
int cli_verbosity(void)
{
    return g_verbosity;
}
void cli_set_verbosity(int v)
{
    g_verbosity = v;
}

/* ---- messages ---- */

static void vmessage(const char *file, const char *kind, const char *fmt, va_list ap)
{
    /* one write per line, so lines from parallel jobs do not interleave */
    char line[4096];
    int n = snprintf(line, sizeof line, "%s: ", g_prog);
    if (file && n >= 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, "%s: ", cli_display_name(file));
    if (kind && n >= 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, "%s: ", kind);
    if (n >= 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    /* a message is one line whatever it quotes, and carries no terminal
     * escapes from a file's names */
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
        else if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    fprintf(stderr, "%s\n", line);
}

void cli_error(const char *file, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(file, NULL, fmt, ap);
    va_end(ap);
}

int cli_fail(const char *file, const pare_error *err)
{
    cli_error(file, "%s", err && err->msg[0] ? err->msg : "failed");
    return CLI_EXIT_FAIL;
}

void cli_warning(const char *file, const char *fmt, ...)
{
    if (g_verbosity < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vmessage(file, "warning", fmt, ap);
    va_end(ap);
}

void cli_info(int level, const char *fmt, ...)
{
    if (g_verbosity < level)
        return;
    va_list ap;
    va_start(ap, fmt);
    vmessage(NULL, NULL, fmt, ap);
    va_end(ap);
}

int cli_usage_error(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s (see --help)\n", g_prog, msg);
    return CLI_EXIT_USAGE;
}

const char *cli_display_name(const char *path)
{
    if (!path || strcmp(path, "-") == 0)
        return "<stdin>";
    return path;
}

/* ---- lists and args ---- */

static int list_push(cli_list *l, const char *s)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 4;
        const char **ni = realloc(l->items, nc * sizeof *ni);
        if (!ni)
            return -1;
        l->items = ni;
        l->cap = nc;
    }
    l->items[l->n++] = s;
    return 0;
}

void cli_list_release(cli_list *l)
{
    free(l->items);
    memset(l, 0, sizeof *l);
}

void cli_names_release(cli_names *n)
{
    for (size_t i = 0; i < n->n; i++)
        free(n->v[i]);
    free(n->v);
    memset(n, 0, sizeof *n);
}

static int names_push(cli_names *l, const char *s, size_t len)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        char **nv = realloc(l->v, nc * sizeof *nv);
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = nc;
    }
    char *d = malloc(len + 1);
    if (!d)
        return -1;
    memcpy(d, s, len);
    d[len] = '\0';
    l->v[l->n++] = d;
    return 0;
}

int cli_split_names(const cli_list *in, const char *opt, cli_names *out)
{
    for (size_t i = 0; i < in->n; i++) {
        const char *s = in->items[i];
        for (;;) {
            const char *c = strchr(s, ',');
            size_t len = c ? (size_t)(c - s) : strlen(s);
            if (len == 0)
                return cli_usage_error("--%s '%s': empty name in the list", opt, in->items[i]);
            if (names_push(out, s, len)) {
                cli_error(NULL, "out of memory");
                return CLI_EXIT_FAIL;
            }
            if (!c)
                break;
            s = c + 1;
        }
    }
    return CLI_CONTINUE;
}

void cli_args_release(cli_args *a)
{
    free(a->argv);
    a->argv = NULL;
    a->argc = 0;
}

/* ---- built-in options ---- */

enum { BI_HELP = 1, BI_VERSION, BI_QUIET, BI_VERBOSE };

static const cli_option builtin_options[] = {
    CLI_GROUP("Common options"),
    {.kind = CLI_OPT_FLAG, .short_name = 'q', .long_name = "quiet",
     .help = "print only errors (no warnings, notes or progress)"},
    {.kind = CLI_OPT_COUNT, .short_name = 'v', .long_name = "verbose",
     .help = "say more on stderr (repeat for more)"},
    {.kind = CLI_OPT_FLAG, .short_name = 'h', .long_name = "help",
     .help = "show this help and exit"},
    {.kind = CLI_OPT_FLAG, .long_name = "version", .help = "show the version and exit"},
    CLI_END(),
};

static int builtin_id(const cli_option *o)
{
    if (o < builtin_options || o >= builtin_options + sizeof builtin_options /
                                                          sizeof builtin_options[0])
        return 0;
    const char *n = o->long_name;
    if (!n)
        return 0;
    if (strcmp(n, "help") == 0)
        return BI_HELP;
    if (strcmp(n, "version") == 0)
        return BI_VERSION;
    if (strcmp(n, "quiet") == 0)
        return BI_QUIET;
    if (strcmp(n, "verbose") == 0)
        return BI_VERBOSE;
    return 0;
}

static const cli_option *find_long(const cli_program *p, const char *name, size_t len)
{
    const cli_option *tables[2] = {p->options, builtin_options};
    for (int t = 0; t < 2; t++)
        for (const cli_option *o = tables[t]; o && o->kind != CLI_OPT_END; o++)
            if (o->kind != CLI_OPT_GROUP && o->long_name && strlen(o->long_name) == len &&
                strncmp(o->long_name, name, len) == 0)
                return o;
    return NULL;
}

static const cli_option *find_short(const cli_program *p, char c)
{
    const cli_option *tables[2] = {p->options, builtin_options};
    for (int t = 0; t < 2; t++)
        for (const cli_option *o = tables[t]; o && o->kind != CLI_OPT_END; o++)
            if (o->kind != CLI_OPT_GROUP && o->short_name && o->short_name == c)
                return o;
    return NULL;
}

/* ---- help ---- */

typedef struct strbuf {
    char *s;
    size_t len, cap;
    bool fail;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n)
{
    if (b->fail)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 1024;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *ns = realloc(b->s, nc);
        if (!ns) {
            b->fail = true;
            return;
        }
        b->s = ns;
        b->cap = nc;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_printf(strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void sb_printf(strbuf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        sb_put(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->fail = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_put(b, big, (size_t)n);
    free(big);
}

static void sb_spaces(strbuf *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sb_put(b, " ", 1);
}

/* Text wrapped at `width` columns, continuation lines indented by `indent`,
 * the first line starting at column `col`. */
static void sb_wrap(strbuf *b, const char *text, size_t col, size_t indent, size_t width)
{
    const char *p = text;
    bool first_word = true;
    while (*p) {
        if (*p == '\n') {
            sb_put(b, "\n", 1);
            sb_spaces(b, indent);
            col = indent;
            first_word = true;
            p++;
            continue;
        }
        if (*p == ' ') {
            p++;
            continue;
        }
        size_t wl = strcspn(p, " \n");
        if (!first_word && col + 1 + wl > width) {
            sb_put(b, "\n", 1);
            sb_spaces(b, indent);
            col = indent;
            first_word = true;
        }
        if (!first_word) {
            sb_put(b, " ", 1);
            col++;
        }
        sb_put(b, p, wl);
        col += wl;
        p += wl;
        first_word = false;
    }
    sb_put(b, "\n", 1);
}

static size_t option_label(const cli_option *o, char *buf, size_t size)
{
    int n;
    const char *arg = o->argname;
    if (o->short_name)
        n = snprintf(buf, size, "  -%c, --%s%s%s", o->short_name, o->long_name, arg ? " " : "",
                     arg ? arg : "");
    else
        n = snprintf(buf, size, "      --%s%s%s", o->long_name, arg ? " " : "", arg ? arg : "");
    return n < 0 ? 0 : (size_t)n;
}

static void help_options(strbuf *b, const cli_option *opts, size_t colw, bool first_table)
{
    enum { WIDTH = 79 };
    bool need_heading = first_table;
    for (const cli_option *o = opts; o && o->kind != CLI_OPT_END; o++) {
        if (o->kind == CLI_OPT_GROUP) {
            sb_printf(b, "\n%s:\n", o->help);
            need_heading = false;
            continue;
        }
        if (need_heading) {
            sb_put(b, "\nOptions:\n", 10);
            need_heading = false;
        }
        char label[256];
        size_t ll = option_label(o, label, sizeof label);
        sb_put(b, label, strlen(label));
        char help[1024];
        snprintf(help, sizeof help, "%s", o->help ? o->help : "");
        if (o->kind == CLI_OPT_LIST)
            snprintf(help + strlen(help), sizeof help - strlen(help), " (repeatable)");
        if (o->kind == CLI_OPT_CHOICE && o->choices) {
            snprintf(help + strlen(help), sizeof help - strlen(help), " (one of:");
            for (const char *const *c = o->choices; *c; c++)
                snprintf(help + strlen(help), sizeof help - strlen(help), " %s%s", *c,
                         c[1] ? "," : ")");
        }
        if (ll + 2 > colw) {
            sb_put(b, "\n", 1);
            sb_spaces(b, colw);
        } else {
            sb_spaces(b, colw - ll);
        }
        sb_wrap(b, help, colw, colw, WIDTH);
    }
}

char *cli_help_text(const cli_program *p)
{
    strbuf b = {0};
    const char *u = p->usage ? p->usage : "[OPTIONS]";
    bool first = true;
    while (*u) {
        size_t l = strcspn(u, "\n");
        sb_printf(&b, "%s %s %.*s\n", first ? "usage:" : "   or:", p->name, (int)l, u);
        first = false;
        u += l;
        if (*u == '\n')
            u++;
    }
    if (p->summary) {
        sb_put(&b, "\n", 1);
        sb_wrap(&b, p->summary, 0, 0, 79);
    }
    /* the help column: the widest label, at most 32 */
    size_t colw = 0;
    const cli_option *tables[2] = {p->options, builtin_options};
    for (int t = 0; t < 2; t++)
        for (const cli_option *o = tables[t]; o && o->kind != CLI_OPT_END; o++) {
            if (o->kind == CLI_OPT_GROUP)
                continue;
            char label[256];
            size_t ll = option_label(o, label, sizeof label) + 2;
            if (ll > colw && ll <= 32)
                colw = ll;
        }
    if (colw < 16)
        colw = 16;
    help_options(&b, p->options, colw, true);
    help_options(&b, builtin_options, colw, false);
    if (p->footer) {
        sb_put(&b, "\n", 1);
        sb_wrap(&b, p->footer, 0, 0, 79);
    }
    if (b.fail) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* ---- parsing ---- */

bool cli_parse_int(const char *s, int64_t *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return false;
    *out = v;
    return true;
}

bool cli_parse_size(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return false;
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: break;
    }
    if (shift && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0))
        end += strlen(end);
    else if (!shift && strcmp(end, "B") == 0)
        end++;
    if (*end)
        return false;
    if (shift && v > (UINT64_MAX >> shift))
        return false;
    *out = (uint64_t)v << shift;
    return true;
}

bool cli_parse_dims(const char *s, int64_t *dims, int *rank, char *why, size_t why_size)
{
    *rank = 0;
    if (!*s || strcmp(s, "scalar") == 0)
        return true;
    const char *p = s;
    for (;;) {
        if (*rank >= PARE_MAX_RANK) {
            snprintf(why, why_size, "more than %d dims", PARE_MAX_RANK);
            return false;
        }
        if (*p < '0' || *p > '9') {
            snprintf(why, why_size, "'%s' is not a list of sizes like 1x3x224x224", s);
            return false;
        }
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (errno || v < 0) {
            snprintf(why, why_size, "a dim of '%s' is out of range", s);
            return false;
        }
        dims[(*rank)++] = v;
        if (*end == '\0')
            return true;
        if (*end != 'x' && *end != 'X' && *end != ',') {
            snprintf(why, why_size, "'%s' is not a list of sizes like 1x3x224x224", s);
            return false;
        }
        p = end + 1;
    }
}

static bool split_name(const char *s, char **name, const char **rest, char *why, size_t why_size)
{
    const char *eq = strrchr(s, '=');
    if (!eq || eq == s) {
        snprintf(why, why_size, "'%s' is not NAME=VALUE", s);
        return false;
    }
    *name = strndup(s, (size_t)(eq - s));
    if (!*name) {
        snprintf(why, why_size, "out of memory");
        return false;
    }
    *rest = eq + 1;
    return true;
}

bool cli_parse_named_dims(const char *s, char **name, int64_t *dims, int *rank, char *why,
                          size_t why_size)
{
    const char *rest;
    if (!split_name(s, name, &rest, why, why_size))
        return false;
    if (!cli_parse_dims(rest, dims, rank, why, why_size)) {
        free(*name);
        *name = NULL;
        return false;
    }
    return true;
}

bool cli_parse_named_int(const char *s, char **name, int64_t *v, char *why, size_t why_size)
{
    const char *rest;
    if (!split_name(s, name, &rest, why, why_size))
        return false;
    if (!cli_parse_int(rest, v)) {
        snprintf(why, why_size, "'%s' is not an integer", rest);
        free(*name);
        *name = NULL;
        return false;
    }
    return true;
}

static int apply(const cli_option *o, const char *value, const char *shown)
{
    switch (o->kind) {
    case CLI_OPT_FLAG:
        if (o->value)
            *(bool *)o->value = true;
        return 0;
    case CLI_OPT_COUNT:
        if (o->value)
            (*(int *)o->value)++;
        return 0;
    case CLI_OPT_STRING:
        *(const char **)o->value = value;
        return 0;
    case CLI_OPT_LIST:
        if (list_push(o->value, value)) {
            cli_error(NULL, "out of memory");
            return CLI_EXIT_FAIL;
        }
        return 0;
    case CLI_OPT_INT: {
        int64_t v;
        if (!cli_parse_int(value, &v))
            return cli_usage_error("option '%s': '%s' is not an integer", shown, value);
        if (o->min < o->max && ((double)v < o->min || (double)v > o->max))
            return cli_usage_error("option '%s': %s is outside %.0f..%.0f", shown, value,
                                   o->min, o->max);
        *(int64_t *)o->value = v;
        return 0;
    }
    case CLI_OPT_SIZE: {
        uint64_t v;
        if (!cli_parse_size(value, &v))
            return cli_usage_error("option '%s': '%s' is not a byte count (e.g. 4096, 64K, "
                                   "512M, 2G)", shown, value);
        *(uint64_t *)o->value = v;
        return 0;
    }
    case CLI_OPT_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(value, &end);
        if (!*value || *end || errno || !isfinite(v))
            return cli_usage_error("option '%s': '%s' is not a number", shown, value);
        if (o->min < o->max && (v < o->min || v > o->max))
            return cli_usage_error("option '%s': %s is outside %g..%g", shown, value, o->min,
                                   o->max);
        *(double *)o->value = v;
        return 0;
    }
    case CLI_OPT_CHOICE: {
        for (int i = 0; o->choices && o->choices[i]; i++)
            if (strcmp(o->choices[i], value) == 0) {
                *(int *)o->value = i;
                return 0;
            }
        char list[512] = "";
        for (int i = 0; o->choices && o->choices[i]; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                     o->choices[i]);
        return cli_usage_error("option '%s': '%s' is not one of %s", shown, value, list);
    }
    case CLI_OPT_CALLBACK:
        return o->callback ? o->callback(o, value) : 0;
    default:
        return 0;
    }
}

int cli_parse(const cli_program *p, int argc, char **argv, cli_args *args)
{
    g_prog = p->name;
    args->argc = 0;
    args->argv = calloc((size_t)(argc > 0 ? argc : 1), sizeof *args->argv);
    if (!args->argv) {
        cli_error(NULL, "out of memory");
        return CLI_EXIT_FAIL;
    }
    bool quiet = false, only_args = false;
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_args || a[0] != '-' || a[1] == '\0') {
            args->argv[args->argc++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_args = true;
            continue;
        }
        /* one option (long) or a bundle of short options */
        const char *bundle = NULL;
        do {
            const cli_option *o;
            const char *value = NULL;
            bool inline_value = false;
            char shown[128];
            if (a[1] == '-') {
                const char *name = a + 2;
                const char *eq = strchr(name, '=');
                size_t nl = eq ? (size_t)(eq - name) : strlen(name);
                o = find_long(p, name, nl);
                snprintf(shown, sizeof shown, "--%.*s", (int)(nl < 100 ? nl : 100), name);
                if (!o) {
                    cli_args_release(args);
                    return cli_usage_error("unknown option '%s'", shown);
                }
                if (eq) {
                    if (!o->argname) {
                        cli_args_release(args);
                        return cli_usage_error("option '%s' takes no value", shown);
                    }
                    value = eq + 1;
                    inline_value = true;
                }
            } else {
                const char *c = bundle ? bundle : a + 1;
                o = find_short(p, *c);
                snprintf(shown, sizeof shown, "-%c", *c);
                if (!o) {
                    cli_args_release(args);
                    if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
                        return cli_usage_error("unknown option '%s'", a);
                    return cli_usage_error("unknown option '%s'", shown);
                }
                bundle = c[1] ? c + 1 : NULL;
                if (o->argname && bundle) {
                    value = bundle;
                    inline_value = true;
                    bundle = NULL;
                }
                if (o->long_name)
                    snprintf(shown, sizeof shown, "--%s", o->long_name);
            }
            if (o->argname && !inline_value) {
                if (i + 1 >= argc) {
                    cli_args_release(args);
                    return cli_usage_error("option '%s' needs a value (%s)", shown, o->argname);
                }
                value = argv[++i];
            }
            switch (builtin_id(o)) {
            case BI_HELP: {
                char *h = cli_help_text(p);
                cli_args_release(args);
                if (!h) {
                    cli_error(NULL, "out of memory");
                    return CLI_EXIT_FAIL;
                }
                fputs(h, stdout);
                free(h);
                return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
            }
            case BI_VERSION:
                cli_args_release(args);
                printf("%s (pare) %s\n", p->name, PARE_VERSION);
                return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
            case BI_QUIET:
                quiet = true;
                break;
            case BI_VERBOSE:
                verbose++;
                break;
            default: {
                int rc = apply(o, value, shown);
                if (rc) {
                    cli_args_release(args);
                    return rc;
                }
            }
            }
        } while (bundle);
    }
    g_verbosity = quiet ? -1 : verbose;
    const char *what = p->args_name ? p->args_name : "argument";
    if (args->argc < p->min_args) {
        cli_args_release(args);
        return cli_usage_error("missing %s", what);
    }
    if (p->max_args >= 0 && args->argc > p->max_args) {
        char extra[256];
        snprintf(extra, sizeof extra, "%s", args->argv[p->max_args]);
        cli_args_release(args);
        return cli_usage_error("unexpected argument '%s'", extra);
    }
    return CLI_CONTINUE;
}

/* ---- outputs ---- */

#define MAX_TEMPS 16
static char *volatile g_temps[MAX_TEMPS];
static bool g_cleanup_installed;

static void remove_temps(void)
{
    for (int i = 0; i < MAX_TEMPS; i++) {
        char *t = g_temps[i];
        if (t)
            unlink(t);
    }
}

static void on_signal(int sig)
{
    remove_temps();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int register_temp(char *path)
{
    if (!g_cleanup_installed) {
        g_cleanup_installed = true;
        atexit(remove_temps);
        int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
            struct sigaction sa, old;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_signal;
            sigemptyset(&sa.sa_mask);
            /* keep a handler the program chose, and "ignore" where the parent set it */
            if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL)
                sigaction(sigs[i], &sa, NULL);
        }
    }
    for (int i = 0; i < MAX_TEMPS; i++)
        if (!g_temps[i]) {
            g_temps[i] = path;
            return i;
        }
    return -1;
}

static void unregister_temp(int slot)
{
    if (slot >= 0 && slot < MAX_TEMPS)
        g_temps[slot] = NULL;
}

bool cli_is_terminal_output(const char *path)
{
    return (!path || strcmp(path, "-") == 0) && isatty(STDOUT_FILENO);
}

pare_status cli_output_open(cli_output *o, const char *path, unsigned flags, pare_error *err)
{
    memset(o, 0, sizeof *o);
    o->slot = -1;
    if (!path || strcmp(path, "-") == 0) {
        if ((flags & CLI_OUT_BINARY) && isatty(STDOUT_FILENO))
            return pare_error_set(err, PARE_ERR_ARG, "refusing to write a binary model to a "
                                  "terminal (use -o FILE or redirect stdout)");
        o->fp = stdout;
        return PARE_OK;
    }
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return pare_error_set(err, PARE_ERR_IO, "is a directory");
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dl;
    size_t need = dl + strlen(base) + 16;
    o->tmp = malloc(need);
    o->path = strdup(path);
    if (!o->tmp || !o->path) {
        free(o->tmp);
        free(o->path);
        memset(o, 0, sizeof *o);
        o->slot = -1;
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    snprintf(o->tmp, need, "%.*s.%s.tmpXXXXXX", (int)dl, path, base);
    int fd = mkstemp(o->tmp);
    if (fd < 0) {
        int e = errno;
        free(o->tmp);
        free(o->path);
        memset(o, 0, sizeof *o);
        o->slot = -1;
        return pare_error_set(err, PARE_ERR_IO, "cannot create a file beside it: %s",
                              strerror(e));
    }
    o->slot = register_temp(o->tmp);
    /* the mode a plain open() would give: the old file's, else 0666 less umask */
    mode_t mode;
    if (stat(path, &sb) == 0)
        mode = sb.st_mode & 07777;
    else {
        mode_t um = umask(0);
        umask(um);
        mode = 0666 & ~um;
    }
    if (fchmod(fd, mode) != 0) {
        /* not fatal: the file stays private */
    }
    o->fp = fdopen(fd, "wb");
    if (!o->fp) {
        int e = errno;
        close(fd);
        cli_output_abort(o);
        return pare_error_set(err, PARE_ERR_IO, "%s", strerror(e));
    }
    return PARE_OK;
}

void cli_output_abort(cli_output *o)
{
    if (!o)
        return;
    if (o->fp && o->fp != stdout)
        fclose(o->fp);
    o->fp = NULL;
    if (o->tmp) {
        unlink(o->tmp);
        unregister_temp(o->slot);
        free(o->tmp);
        o->tmp = NULL;
    }
    o->slot = -1;
    free(o->path);
    o->path = NULL;
}

pare_status cli_output_commit(cli_output *o, pare_error *err)
{
    if (!o->fp)
        return pare_error_set(err, PARE_ERR_ARG, "output is not open");
    if (o->fp == stdout) {
        o->fp = NULL;
        if (fflush(stdout) != 0 || ferror(stdout))
            return pare_error_set(err, PARE_ERR_IO, "write error on stdout: %s",
                                  strerror(errno));
        return PARE_OK;
    }
    bool ok = fflush(o->fp) == 0 && !ferror(o->fp);
    int e = errno;
    /* durable only when asked (PARE_FSYNC=1), like pare_model_save */
    if (ok && pare_io_durable() && fsync(fileno(o->fp)) != 0 && errno != EINVAL &&
        errno != EROFS) {
        ok = false;
        e = errno;
    }
    if (fclose(o->fp) != 0 && ok) {
        ok = false;
        e = errno;
    }
    o->fp = NULL;
    if (!ok) {
        cli_output_abort(o);
        return pare_error_set(err, PARE_ERR_IO, "write failed: %s", strerror(e));
    }
    if (rename(o->tmp, o->path) != 0) {
        e = errno;
        cli_output_abort(o);
        return pare_error_set(err, PARE_ERR_IO, "cannot rename into place: %s", strerror(e));
    }
    unregister_temp(o->slot);
    free(o->tmp);
    o->tmp = NULL;
    free(o->path);
    o->path = NULL;
    o->slot = -1;
    return PARE_OK;
}

pare_status cli_write_file(const char *path, const void *data, size_t len, unsigned flags,
                           pare_error *err)
{
    cli_output o;
    pare_status st = cli_output_open(&o, path, flags, err);
    if (st)
        return st;
    if (len && fwrite(data, 1, len, o.fp) != len) {
        int e = errno;
        if (o.fp == stdout) {
            o.fp = NULL;
            return pare_error_set(err, PARE_ERR_IO, "write error on stdout: %s", strerror(e));
        }
        cli_output_abort(&o);
        return pare_error_set(err, PARE_ERR_IO, "write failed: %s", strerror(e));
    }
    return cli_output_commit(&o, err);
}

/* ---- progress ---- */

struct cli_progress {
    char *title;
    uint64_t total, done;
    struct timespec last;
    int last_pct;
    bool drawn;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

cli_progress *cli_progress_start(const char *title, uint64_t total)
{
    if (g_verbosity < 0 || !isatty(STDERR_FILENO))
        return NULL;
    cli_progress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->title = strdup(title ? title : "");
    if (!p->title) {
        free(p);
        return NULL;
    }
    p->total = total;
    p->last_pct = -1;
    return p;
}

static void progress_draw(cli_progress *p, const char *end)
{
    if (p->total) {
        int pct = (int)(p->done >= p->total ? 100 : p->done * 100.0 / (double)p->total);
        fprintf(stderr, "\r%s: %3d%% (%" PRIu64 "/%" PRIu64 ")%s", p->title, pct, p->done,
                p->total, end);
        p->last_pct = pct;
    } else {
        fprintf(stderr, "\r%s: %" PRIu64 "%s", p->title, p->done, end);
    }
    fflush(stderr);
    clock_gettime(CLOCK_MONOTONIC, &p->last);
    p->drawn = true;
}

void cli_progress_update(cli_progress *p, uint64_t done)
{
    if (!p)
        return;
    p->done = done;
    double last = (double)p->last.tv_sec + (double)p->last.tv_nsec * 1e-9;
    if (!p->drawn || now_s() - last >= 0.1)
        progress_draw(p, "");
}

void cli_progress_stop(cli_progress **pp)
{
    if (!pp || !*pp)
        return;
    cli_progress *p = *pp;
    progress_draw(p, ", done.\n");
    free(p->title);
    free(p);
    *pp = NULL;
}

/* ---- formatting ---- */

char *cli_fmt_count(uint64_t v, char *buf, size_t size)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%" PRIu64, v);
    char out[48];
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0)
            out[k++] = ',';
        out[k++] = digits[i];
    }
    out[k] = '\0';
    snprintf(buf, size, "%s", out);
    return buf;
}

static void three_digits(double v, const char *unit, char *buf, size_t size)
{
    if (v < 9.995)
        snprintf(buf, size, "%.2f %s", v, unit);
    else if (v < 99.95)
        snprintf(buf, size, "%.1f %s", v, unit);
    else
        snprintf(buf, size, "%.0f %s", v, unit);
}

char *cli_fmt_bytes(uint64_t v, char *buf, size_t size)
{
    static const char *units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (v < 1024) {
        snprintf(buf, size, "%" PRIu64 " B", v);
        return buf;
    }
    double d = (double)v / 1024.0;
    int u = 0;
    while (d >= 1023.5 && u < 5) {
        d /= 1024.0;
        u++;
    }
    three_digits(d, units[u], buf, size);
    return buf;
}

char *cli_fmt_si(double v, char *buf, size_t size)
{
    static const char *units[] = {"K", "M", "G", "T", "P", "E"};
    if (!isfinite(v)) {
        snprintf(buf, size, "-");
        return buf;
    }
    if (v < 999.5) {
        snprintf(buf, size, "%.0f", v);
        return buf;
    }
    double d = v / 1000.0;
    int u = 0;
    while (d >= 999.5 && u < 5) {
        d /= 1000.0;
        u++;
    }
    three_digits(d, units[u], buf, size);
    return buf;
}

char *cli_fmt_percent(double part, double whole, char *buf, size_t size)
{
    if (!(whole > 0)) {
        snprintf(buf, size, "-");
        return buf;
    }
    snprintf(buf, size, "%.1f%%", 100.0 * part / whole);
    return buf;
}
