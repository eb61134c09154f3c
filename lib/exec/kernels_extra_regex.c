/* Included by kernels_extra.c: RegexFullMatch.
 *
 * The pattern (RE2 syntax) is parsed once at init into a small tree and
 * compiled into a Thompson-NFA program; each string is then decided by a
 * Pike-VM simulation over its code points, so the time per string is
 * O(length * program size) whatever the pattern: no backtracking blow-up.
 * Only whether the whole string matches is needed, so there are no
 * captures, and greedy and lazy quantifiers compile the same.
 *
 * Supported: literals, ., [...] with ranges, negation, POSIX [:name:] and
 * perl classes, \d \w \s \D \W \S (ASCII, as in RE2), ^ $ \A \z \b \B,
 * groups ( ) (?: ) (?P<n> ) (?<n> ), flags (?imsU) and (?imsU:...),
 * * + ? {n} {n,} {n,m} (max 1000) with optional lazy ?, alternation,
 * escapes \n \t \r \f \v \a \x41 \x{263a} \0 \123 and escaped punctuation.
 * Not supported (init fails with PARE_ERR_UNSUPPORTED): Unicode classes
 * \p{..}, \C, \Q..\E, backreferences (not RE2 either). Case folding (?i)
 * covers ASCII letters only. Invalid UTF-8 bytes in the input are distinct
 * code points that only ., negated classes and \D \W \S match. */
#include <stdatomic.h>

enum { RX_CHAR, RX_ANY, RX_ANYNL, RX_CLASS, RX_SPLIT, RX_JMP, RX_ASSERT, RX_MATCH };
enum { RXA_BEGIN_TEXT, RXA_END_TEXT, RXA_BEGIN_LINE, RXA_END_LINE, RXA_WORD, RXA_NOT_WORD };
enum { RN_EMPTY, RN_LIT, RN_ANY, RN_CLASS, RN_ASSERT, RN_CAT, RN_ALT, RN_REP };
enum { RXF_FOLD = 1, RXF_DOTNL = 2, RXF_MULTI = 4 };

#define RX_MAX_CP 0x1100FFu  /* 0x110000 + b: an invalid UTF-8 byte b */
#define RX_MAX_REPEAT 1000
#define RX_MAX_DEPTH 200
#define RX_MAX_INST (1 << 17)

typedef struct rx_range {
    uint32_t lo, hi;
} rx_range;

typedef struct rx_inst {
    uint8_t op;
    uint8_t neg;  /* RX_CLASS: negated */
    uint32_t c;   /* RX_CHAR: code point; RX_ASSERT: kind */
    int32_t x, y; /* RX_SPLIT/RX_JMP targets; RX_CLASS: first range, count */
} rx_inst;

typedef struct rx_prog {
    rx_inst *ins;
    int32_t n, cap;
    rx_range *rg;
    int32_t nrg, caprg;
} rx_prog;

typedef struct rx_node {
    uint8_t kind;
    uint8_t flag;             /* RN_ANY: dot matches \n; RN_CLASS: negated */
    uint32_t c;               /* RN_LIT: code point; RN_ASSERT: kind */
    int32_t a, b;             /* RN_CLASS: first range, count */
    int32_t first, last, next; /* children of RN_CAT/RN_ALT/RN_REP; sibling link */
    int32_t min, max;         /* RN_REP; max -1: unbounded */
} rx_node;

typedef struct rx_parser {
    const uint32_t *p;
    size_t n, i;
    rx_node *nd;
    int32_t nn, capn;
    rx_prog *prog;
    int flags;
    int depth;
    pare_error *err;
} rx_parser;

static void rx_prog_free(rx_prog *g)
{
    free(g->ins);
    free(g->rg);
    g->ins = NULL;
    g->rg = NULL;
}

static int rx_fail(rx_parser *ps, pare_status st, const char *what)
{
    pare_error_set(ps->err, st, "RegexFullMatch: %s at pattern offset %zu", what, ps->i);
    return -1;
}

static int32_t rx_new(rx_parser *ps, int kind)
{
    if (ps->nn == ps->capn) {
        int32_t cap = ps->capn ? ps->capn * 2 : 64;
        if (cap > RX_MAX_INST)
            return rx_fail(ps, PARE_ERR_LIMIT, "pattern too large");
        rx_node *nd = realloc(ps->nd, (size_t)cap * sizeof *nd);
        if (!nd) {
            pare_error_set(ps->err, PARE_ERR_NOMEM, "out of memory");
            return -1;
        }
        ps->nd = nd;
        ps->capn = cap;
    }
    rx_node *x = &ps->nd[ps->nn];
    memset(x, 0, sizeof *x);
    x->kind = (uint8_t)kind;
    x->first = x->last = x->next = -1;
    return ps->nn++;
}

static void rx_append(rx_parser *ps, int32_t parent, int32_t child)
{
    rx_node *p = &ps->nd[parent];
    if (p->last < 0)
        p->first = child;
    else
        ps->nd[p->last].next = child;
    p->last = child;
}

static int rx_add_range(rx_parser *ps, uint32_t lo, uint32_t hi)
{
    rx_prog *g = ps->prog;
    if (g->nrg == g->caprg) {
        int32_t cap = g->caprg ? g->caprg * 2 : 32;
        if (cap > RX_MAX_INST)
            return rx_fail(ps, PARE_ERR_LIMIT, "pattern too large");
        rx_range *rg = realloc(g->rg, (size_t)cap * sizeof *rg);
        if (!rg) {
            pare_error_set(ps->err, PARE_ERR_NOMEM, "out of memory");
            return -1;
        }
        g->rg = rg;
        g->caprg = cap;
    }
    g->rg[g->nrg].lo = lo;
    g->rg[g->nrg].hi = hi;
    g->nrg++;
    return 0;
}

/* Adds a sorted, disjoint set of ranges, or its complement. */
static int rx_add_set(rx_parser *ps, const rx_range *set, int n, int neg)
{
    if (!neg) {
        for (int i = 0; i < n; i++)
            if (rx_add_range(ps, set[i].lo, set[i].hi))
                return -1;
        return 0;
    }
    uint32_t next = 0;
    for (int i = 0; i < n; i++) {
        if (set[i].lo > next && rx_add_range(ps, next, set[i].lo - 1))
            return -1;
        next = set[i].hi + 1;
    }
    if (next <= RX_MAX_CP && rx_add_range(ps, next, RX_MAX_CP))
        return -1;
    return 0;
}

static const rx_range rx_digit[] = {{'0', '9'}};
static const rx_range rx_space[] = {{'\t', '\n'}, {'\f', '\r'}, {' ', ' '}};
static const rx_range rx_word[] = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};

/* Perl class letter (d s w, upper case negated); -1 if c is not one. */
static int rx_perl(rx_parser *ps, uint32_t c)
{
    int neg = c == 'D' || c == 'S' || c == 'W';
    switch (c | 0x20) {
    case 'd':
        return rx_add_set(ps, rx_digit, 1, neg) ? -2 : 0;
    case 's':
        return rx_add_set(ps, rx_space, 3, neg) ? -2 : 0;
    case 'w':
        return rx_add_set(ps, rx_word, 4, neg) ? -2 : 0;
    default:
        return -1;
    }
}

static int rx_ishex(uint32_t c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static uint32_t rx_hexval(uint32_t c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* A single-character escape after '\' (ps->i at the letter); stores the
 * code point in *out. Returns 0, or -1 with the error set. */
static int rx_escape_char(rx_parser *ps, uint32_t *out)
{
    uint32_t c = ps->p[ps->i++];
    switch (c) {
    case 'n': *out = '\n'; return 0;
    case 't': *out = '\t'; return 0;
    case 'r': *out = '\r'; return 0;
    case 'f': *out = '\f'; return 0;
    case 'v': *out = '\v'; return 0;
    case 'a': *out = 7; return 0;
    case 'x': {
        uint32_t v = 0;
        if (ps->i < ps->n && ps->p[ps->i] == '{') {
            ps->i++;
            int nd = 0;
            while (ps->i < ps->n && rx_ishex(ps->p[ps->i])) {
                v = v * 16 + rx_hexval(ps->p[ps->i++]);
                if (v > 0x10FFFF)
                    return rx_fail(ps, PARE_ERR_INVALID, "bad \\x escape");
                nd++;
            }
            if (!nd || ps->i >= ps->n || ps->p[ps->i] != '}')
                return rx_fail(ps, PARE_ERR_INVALID, "bad \\x escape");
            ps->i++;
        } else {
            for (int k = 0; k < 2; k++) {
                if (ps->i >= ps->n || !rx_ishex(ps->p[ps->i]))
                    return rx_fail(ps, PARE_ERR_INVALID, "bad \\x escape");
                v = v * 16 + rx_hexval(ps->p[ps->i++]);
            }
        }
        *out = v;
        return 0;
    }
    default:
        break;
    }
    if (c >= '1' && c <= '7' && !(ps->i < ps->n && ps->p[ps->i] >= '0' && ps->p[ps->i] <= '7'))
        return rx_fail(ps, PARE_ERR_UNSUPPORTED, "backreferences are not supported");
    if (c >= '0' && c <= '7') {
        uint32_t v = c - '0';
        for (int k = 0; k < 2 && ps->i < ps->n && ps->p[ps->i] >= '0' && ps->p[ps->i] <= '7'; k++)
            v = v * 8 + (ps->p[ps->i++] - '0');
        *out = v;
        return 0;
    }
    if (c < 0x80 && !(c >= '0' && c <= '9') && !((c | 0x20) >= 'a' && (c | 0x20) <= 'z') &&
        c != '_') {
        *out = c; /* escaped punctuation */
        return 0;
    }
    ps->i--;
    if (c == 'p' || c == 'P' || c == 'C' || c == 'Q' || c == 'E')
        return rx_fail(ps, PARE_ERR_UNSUPPORTED, "unsupported escape");
    return rx_fail(ps, PARE_ERR_INVALID, "invalid escape");
}

/* Adds the other-case counterparts of ASCII letters in ranges [from, nrg). */
static int rx_fold_ranges(rx_parser *ps, int32_t from)
{
    int32_t end = ps->prog->nrg;
    for (int32_t r = from; r < end; r++) {
        uint32_t lo = ps->prog->rg[r].lo, hi = ps->prog->rg[r].hi;
        uint32_t a = lo > 'a' ? lo : 'a', b = hi < 'z' ? hi : 'z';
        if (a <= b && rx_add_range(ps, a - 32, b - 32))
            return -1;
        a = lo > 'A' ? lo : 'A';
        b = hi < 'Z' ? hi : 'Z';
        if (a <= b && rx_add_range(ps, a + 32, b + 32))
            return -1;
    }
    return 0;
}

static int32_t rx_class_node(rx_parser *ps, int32_t from, int neg)
{
    if ((ps->flags & RXF_FOLD) && rx_fold_ranges(ps, from))
        return -1;
    int32_t x = rx_new(ps, RN_CLASS);
    if (x < 0)
        return -1;
    ps->nd[x].a = from;
    ps->nd[x].b = ps->prog->nrg - from;
    ps->nd[x].flag = (uint8_t)neg;
    return x;
}

static int32_t rx_literal(rx_parser *ps, uint32_t c)
{
    if ((ps->flags & RXF_FOLD) && (c | 0x20) >= 'a' && (c | 0x20) <= 'z') {
        int32_t from = ps->prog->nrg;
        if (rx_add_range(ps, c, c))
            return -1;
        return rx_class_node(ps, from, 0);
    }
    int32_t x = rx_new(ps, RN_LIT);
    if (x >= 0)
        ps->nd[x].c = c;
    return x;
}

static const struct {
    const char *name;
    rx_range set[4];
    int n;
} rx_posix[] = {
    {"alnum", {{'0', '9'}, {'A', 'Z'}, {'a', 'z'}}, 3},
    {"alpha", {{'A', 'Z'}, {'a', 'z'}}, 2},
    {"ascii", {{0, 0x7F}}, 1},
    {"blank", {{'\t', '\t'}, {' ', ' '}}, 2},
    {"cntrl", {{0, 0x1F}, {0x7F, 0x7F}}, 2},
    {"digit", {{'0', '9'}}, 1},
    {"graph", {{'!', '~'}}, 1},
    {"lower", {{'a', 'z'}}, 1},
    {"print", {{' ', '~'}}, 1},
    {"punct", {{'!', '/'}, {':', '@'}, {'[', '`'}, {'{', '~'}}, 4},
    {"space", {{'\t', '\r'}, {' ', ' '}}, 2},
    {"upper", {{'A', 'Z'}}, 1},
    {"word", {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}, 4},
    {"xdigit", {{'0', '9'}, {'A', 'F'}, {'a', 'f'}}, 3},
};

/* [:name:] or [:^name:] at ps->i (which is at '['); 1 if consumed, 0 if
 * not a POSIX class, -1 on error. */
static int rx_posix_class(rx_parser *ps)
{
    size_t i = ps->i + 2;
    int neg = 0;
    if (i < ps->n && ps->p[i] == '^') {
        neg = 1;
        i++;
    }
    char name[8];
    size_t len = 0;
    while (i < ps->n && ps->p[i] != ':' && len < sizeof name - 1) {
        if (ps->p[i] >= 0x80)
            return 0;
        name[len++] = (char)ps->p[i++];
    }
    name[len] = 0;
    if (i + 1 >= ps->n || ps->p[i] != ':' || ps->p[i + 1] != ']')
        return 0;
    for (size_t k = 0; k < sizeof rx_posix / sizeof *rx_posix; k++) {
        if (strcmp(name, rx_posix[k].name) == 0) {
            ps->i = i + 2;
            return rx_add_set(ps, rx_posix[k].set, rx_posix[k].n, neg) ? -1 : 1;
        }
    }
    return rx_fail(ps, PARE_ERR_INVALID, "invalid character class name");
}

/* One class member endpoint (a character or a single-character escape). */
static int rx_class_char(rx_parser *ps, uint32_t *out)
{
    if (ps->i >= ps->n)
        return rx_fail(ps, PARE_ERR_INVALID, "missing ]");
    uint32_t c = ps->p[ps->i++];
    if (c != '\\') {
        *out = c;
        return 0;
    }
    if (ps->i >= ps->n)
        return rx_fail(ps, PARE_ERR_INVALID, "trailing \\");
    return rx_escape_char(ps, out);
}

static int32_t rx_parse_class(rx_parser *ps)
{
    ps->i++; /* '[' */
    int neg = 0;
    if (ps->i < ps->n && ps->p[ps->i] == '^') {
        neg = 1;
        ps->i++;
    }
    int32_t from = ps->prog->nrg;
    int first = 1;
    for (;;) {
        if (ps->i >= ps->n)
            return rx_fail(ps, PARE_ERR_INVALID, "missing ]");
        uint32_t c = ps->p[ps->i];
        if (c == ']' && !first) {
            ps->i++;
            break;
        }
        first = 0;
        if (c == '[' && ps->i + 1 < ps->n && ps->p[ps->i + 1] == ':') {
            int r = rx_posix_class(ps);
            if (r < 0)
                return -1;
            if (r)
                continue;
        }
        if (c == '\\' && ps->i + 1 < ps->n) {
            int r = rx_perl(ps, ps->p[ps->i + 1]);
            if (r == -2)
                return -1;
            if (r == 0) {
                ps->i += 2;
                continue;
            }
        }
        uint32_t lo, hi;
        if (rx_class_char(ps, &lo))
            return -1;
        hi = lo;
        if (ps->i + 1 < ps->n && ps->p[ps->i] == '-' && ps->p[ps->i + 1] != ']') {
            ps->i++;
            if (ps->p[ps->i] == '\\' && ps->i + 1 < ps->n &&
                ((ps->p[ps->i + 1] | 0x20) == 'd' || (ps->p[ps->i + 1] | 0x20) == 's' ||
                 (ps->p[ps->i + 1] | 0x20) == 'w'))
                return rx_fail(ps, PARE_ERR_INVALID, "bad character class range");
            if (rx_class_char(ps, &hi))
                return -1;
            if (hi < lo)
                return rx_fail(ps, PARE_ERR_INVALID, "bad character class range");
        }
        if (rx_add_range(ps, lo, hi))
            return -1;
    }
    return rx_class_node(ps, from, neg);
}

static int32_t rx_parse_alt(rx_parser *ps);

/* Parses the digits of a {n}, {n,}, {n,m} at ps->i ('{'); returns 1 and
 * advances if it is one, 0 (not advanced) if the brace is a literal. */
static int rx_parse_braces(rx_parser *ps, int32_t *mn, int32_t *mx)
{
    size_t i = ps->i + 1;
    int32_t a = 0, b;
    int nd = 0;
    while (i < ps->n && ps->p[i] >= '0' && ps->p[i] <= '9') {
        if (a <= RX_MAX_REPEAT)
            a = a * 10 + (int32_t)(ps->p[i] - '0');
        i++;
        nd++;
    }
    if (!nd || i >= ps->n)
        return 0;
    if (ps->p[i] == '}') {
        b = a;
    } else if (ps->p[i] == ',') {
        i++;
        if (i < ps->n && ps->p[i] == '}') {
            b = -1;
        } else {
            b = 0;
            nd = 0;
            while (i < ps->n && ps->p[i] >= '0' && ps->p[i] <= '9') {
                if (b <= RX_MAX_REPEAT)
                    b = b * 10 + (int32_t)(ps->p[i] - '0');
                i++;
                nd++;
            }
            if (!nd || i >= ps->n || ps->p[i] != '}')
                return 0;
        }
    } else {
        return 0;
    }
    ps->i = i + 1;
    *mn = a;
    *mx = b;
    return 1;
}

static int rx_flags(rx_parser *ps, int *flags)
{
    int neg = 0, any = 0;
    if (ps->i < ps->n && ps->p[ps->i] == ':')
        return 0; /* (?:re) */
    for (;;) {
        if (ps->i >= ps->n)
            return rx_fail(ps, PARE_ERR_INVALID, "missing )");
        uint32_t c = ps->p[ps->i];
        int bit = c == 'i' ? RXF_FOLD : c == 's' ? RXF_DOTNL : c == 'm' ? RXF_MULTI : 0;
        if (c == 'U') {
            ps->i++; /* ungreedy: irrelevant to a full-match test */
            any = 1;
        } else if (bit) {
            ps->i++;
            *flags = neg ? (*flags & ~bit) : (*flags | bit);
            any = 1;
        } else if (c == '-' && !neg) {
            ps->i++;
            neg = 1;
            any = 0;
        } else if ((c == ')' || c == ':') && any) {
            return 0;
        } else {
            return rx_fail(ps, PARE_ERR_INVALID, "invalid or missing flags in (?");
        }
    }
}

/* ps->i is just past '('. */
static int32_t rx_parse_group(rx_parser *ps, int *flags_only)
{
    *flags_only = 0;
    int saved = ps->flags;
    if (ps->i < ps->n && ps->p[ps->i] == '?') {
        ps->i++;
        size_t j = ps->i;
        if (j < ps->n && ps->p[j] == 'P')
            j++;
        if (j < ps->n && ps->p[j] == '<') {
            j++;
            size_t start = j;
            while (j < ps->n && ps->p[j] != '>') {
                uint32_t c = ps->p[j];
                if (!((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
                      c == '_'))
                    return rx_fail(ps, PARE_ERR_INVALID, "invalid named capture group");
                j++;
            }
            if (j >= ps->n || j == start)
                return rx_fail(ps, PARE_ERR_INVALID, "invalid named capture group");
            ps->i = j + 1;
        } else {
            int fl = ps->flags;
            if (rx_flags(ps, &fl))
                return -1;
            if (ps->p[ps->i] == ')') {
                ps->i++;
                ps->flags = fl; /* to the end of the enclosing group */
                *flags_only = 1;
                return rx_new(ps, RN_EMPTY);
            }
            ps->i++; /* ':' */
            ps->flags = fl;
        }
    }
    if (ps->depth >= RX_MAX_DEPTH)
        return rx_fail(ps, PARE_ERR_LIMIT, "groups nested too deeply");
    ps->depth++;
    int32_t r = rx_parse_alt(ps);
    ps->depth--;
    if (r < 0)
        return -1;
    if (ps->i >= ps->n || ps->p[ps->i] != ')')
        return rx_fail(ps, PARE_ERR_INVALID, "missing )");
    ps->i++;
    ps->flags = saved;
    return r;
}

static int32_t rx_parse_atom(rx_parser *ps, int *flags_only)
{
    *flags_only = 0;
    uint32_t c = ps->p[ps->i];
    int32_t x, mn, mx;
    switch (c) {
    case '(':
        ps->i++;
        return rx_parse_group(ps, flags_only);
    case '*':
    case '+':
    case '?':
        return rx_fail(ps, PARE_ERR_INVALID, "missing argument to repetition operator");
    case '{':
        if (rx_parse_braces(ps, &mn, &mx))
            return rx_fail(ps, PARE_ERR_INVALID, "missing argument to repetition operator");
        ps->i++;
        return rx_literal(ps, c);
    case '[':
        return rx_parse_class(ps);
    case '.':
        ps->i++;
        x = rx_new(ps, RN_ANY);
        if (x >= 0)
            ps->nd[x].flag = (ps->flags & RXF_DOTNL) != 0;
        return x;
    case '^':
    case '$':
        ps->i++;
        x = rx_new(ps, RN_ASSERT);
        if (x >= 0) {
            int multi = (ps->flags & RXF_MULTI) != 0;
            ps->nd[x].c = c == '^' ? (multi ? RXA_BEGIN_LINE : RXA_BEGIN_TEXT)
                                   : (multi ? RXA_END_LINE : RXA_END_TEXT);
        }
        return x;
    case '\\': {
        ps->i++;
        if (ps->i >= ps->n)
            return rx_fail(ps, PARE_ERR_INVALID, "trailing \\");
        uint32_t e = ps->p[ps->i];
        int32_t from = ps->prog->nrg;
        int r = rx_perl(ps, e);
        if (r == -2)
            return -1;
        if (r == 0) {
            ps->i++;
            return rx_class_node(ps, from, 0);
        }
        int kind = e == 'b' ? RXA_WORD : e == 'B' ? RXA_NOT_WORD : e == 'A' ? RXA_BEGIN_TEXT
                 : e == 'z' ? RXA_END_TEXT : -1;
        if (kind >= 0) {
            ps->i++;
            x = rx_new(ps, RN_ASSERT);
            if (x >= 0)
                ps->nd[x].c = (uint32_t)kind;
            return x;
        }
        uint32_t v;
        if (rx_escape_char(ps, &v))
            return -1;
        return rx_literal(ps, v);
    }
    default:
        ps->i++;
        return rx_literal(ps, c);
    }
}

static int32_t rx_parse_repeat(rx_parser *ps)
{
    int flags_only;
    int32_t a = rx_parse_atom(ps, &flags_only);
    if (a < 0)
        return -1;
    int done = 0;
    while (ps->i < ps->n) {
        uint32_t c = ps->p[ps->i];
        int32_t mn, mx;
        if (c == '*') {
            mn = 0, mx = -1;
            ps->i++;
        } else if (c == '+') {
            mn = 1, mx = -1;
            ps->i++;
        } else if (c == '?') {
            mn = 0, mx = 1;
            ps->i++;
        } else if (c == '{' && rx_parse_braces(ps, &mn, &mx)) {
            if (mn > RX_MAX_REPEAT || mx > RX_MAX_REPEAT || (mx >= 0 && mx < mn))
                return rx_fail(ps, PARE_ERR_INVALID, "bad repetition operator");
        } else {
            break;
        }
        if (done || flags_only)
            return rx_fail(ps, PARE_ERR_INVALID, "bad repetition operator");
        done = 1;
        if (ps->i < ps->n && ps->p[ps->i] == '?')
            ps->i++; /* lazy: same language */
        int32_t r = rx_new(ps, RN_REP);
        if (r < 0)
            return -1;
        ps->nd[r].first = ps->nd[r].last = a;
        ps->nd[r].min = mn;
        ps->nd[r].max = mx;
        a = r;
    }
    return a;
}

static int32_t rx_parse_cat(rx_parser *ps)
{
    int32_t cat = rx_new(ps, RN_CAT);
    if (cat < 0)
        return -1;
    while (ps->i < ps->n && ps->p[ps->i] != '|' && ps->p[ps->i] != ')') {
        int32_t r = rx_parse_repeat(ps);
        if (r < 0)
            return -1;
        rx_append(ps, cat, r);
    }
    return cat;
}

static int32_t rx_parse_alt(rx_parser *ps)
{
    int32_t first = rx_parse_cat(ps);
    if (first < 0 || ps->i >= ps->n || ps->p[ps->i] != '|')
        return first;
    int32_t alt = rx_new(ps, RN_ALT);
    if (alt < 0)
        return -1;
    rx_append(ps, alt, first);
    while (ps->i < ps->n && ps->p[ps->i] == '|') {
        ps->i++;
        int32_t r = rx_parse_cat(ps);
        if (r < 0)
            return -1;
        rx_append(ps, alt, r);
    }
    return alt;
}

static int32_t rx_emit_inst(rx_parser *ps, int op)
{
    rx_prog *g = ps->prog;
    if (g->n == g->cap) {
        int32_t cap = g->cap ? g->cap * 2 : 64;
        if (g->n >= RX_MAX_INST)
            return rx_fail(ps, PARE_ERR_LIMIT, "pattern too large");
        rx_inst *ins = realloc(g->ins, (size_t)cap * sizeof *ins);
        if (!ins) {
            pare_error_set(ps->err, PARE_ERR_NOMEM, "out of memory");
            return -1;
        }
        g->ins = ins;
        g->cap = cap;
    }
    rx_inst *in = &g->ins[g->n];
    memset(in, 0, sizeof *in);
    in->op = (uint8_t)op;
    return g->n++;
}

static int rx_emit(rx_parser *ps, int32_t node)
{
    const rx_node *x = &ps->nd[node];
    int32_t pc;
    switch (x->kind) {
    case RN_EMPTY:
        return 0;
    case RN_LIT:
        if ((pc = rx_emit_inst(ps, RX_CHAR)) < 0)
            return -1;
        ps->prog->ins[pc].c = x->c;
        return 0;
    case RN_ANY:
        return rx_emit_inst(ps, x->flag ? RX_ANYNL : RX_ANY) < 0 ? -1 : 0;
    case RN_CLASS:
        if ((pc = rx_emit_inst(ps, RX_CLASS)) < 0)
            return -1;
        ps->prog->ins[pc].x = x->a;
        ps->prog->ins[pc].y = x->b;
        ps->prog->ins[pc].neg = x->flag;
        return 0;
    case RN_ASSERT:
        if ((pc = rx_emit_inst(ps, RX_ASSERT)) < 0)
            return -1;
        ps->prog->ins[pc].c = x->c;
        return 0;
    case RN_CAT:
        for (int32_t c = x->first; c >= 0; c = ps->nd[c].next)
            if (rx_emit(ps, c))
                return -1;
        return 0;
    case RN_ALT: {
        /* SPLIT L1, next; L1: a; JMP end; next: SPLIT L2, next2; ... last */
        int32_t jumps = -1; /* chain of JMPs to patch, linked through y */
        for (int32_t c = x->first; c >= 0; c = ps->nd[c].next) {
            int32_t split = -1;
            if (ps->nd[c].next >= 0) {
                if ((split = rx_emit_inst(ps, RX_SPLIT)) < 0)
                    return -1;
                ps->prog->ins[split].x = split + 1;
            }
            if (rx_emit(ps, c))
                return -1;
            if (split >= 0) {
                int32_t j = rx_emit_inst(ps, RX_JMP);
                if (j < 0)
                    return -1;
                ps->prog->ins[j].y = jumps;
                jumps = j;
                ps->prog->ins[split].y = ps->prog->n;
            }
        }
        while (jumps >= 0) {
            int32_t prev = ps->prog->ins[jumps].y;
            ps->prog->ins[jumps].x = ps->prog->n;
            ps->prog->ins[jumps].y = 0;
            jumps = prev;
        }
        return 0;
    }
    case RN_REP: {
        for (int32_t k = 0; k < x->min; k++)
            if (rx_emit(ps, x->first))
                return -1;
        if (x->max < 0) {
            int32_t loop = rx_emit_inst(ps, RX_SPLIT);
            if (loop < 0)
                return -1;
            ps->prog->ins[loop].x = loop + 1;
            if (rx_emit(ps, x->first))
                return -1;
            int32_t j = rx_emit_inst(ps, RX_JMP);
            if (j < 0)
                return -1;
            ps->prog->ins[j].x = loop;
            ps->prog->ins[loop].y = ps->prog->n;
            return 0;
        }
        /* each optional copy may be skipped to the end: chain through y */
        int32_t splits = -1;
        for (int32_t k = x->min; k < x->max; k++) {
            int32_t s = rx_emit_inst(ps, RX_SPLIT);
            if (s < 0)
                return -1;
            ps->prog->ins[s].x = s + 1;
            ps->prog->ins[s].y = splits;
            splits = s;
            if (rx_emit(ps, x->first))
                return -1;
        }
        while (splits >= 0) {
            int32_t prev = ps->prog->ins[splits].y;
            ps->prog->ins[splits].y = ps->prog->n;
            splits = prev;
        }
        return 0;
    }
    default:
        return rx_fail(ps, PARE_ERR_INVALID, "internal: bad node");
    }
}

/* Decodes UTF-8. Invalid bytes become RX_MAX_CP - 0xFF + byte when lenient;
 * when strict, returns (size_t)-1 on the first one. */
static size_t rx_utf8(const unsigned char *s, size_t n, uint32_t *out, int strict)
{
    size_t i = 0, k = 0;
    while (i < n) {
        unsigned b = s[i];
        uint32_t cp = 0;
        size_t len = 0;
        if (b < 0x80) {
            cp = b;
            len = 1;
        } else if (b >= 0xC2 && b <= 0xDF) {
            cp = b & 0x1F;
            len = 2;
        } else if (b >= 0xE0 && b <= 0xEF) {
            cp = b & 0x0F;
            len = 3;
        } else if (b >= 0xF0 && b <= 0xF4) {
            cp = b & 0x07;
            len = 4;
        }
        int ok = len > 0 && i + len <= n;
        for (size_t j = 1; ok && j < len; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                ok = 0;
            else
                cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if (ok && ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
                   (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))))
            ok = 0;
        if (!ok) {
            if (strict)
                return (size_t)-1;
            cp = 0x110000u + b;
            len = 1;
        }
        out[k++] = cp;
        i += len;
    }
    return k;
}

typedef struct regex_state {
    rx_prog prog;
} regex_state;

static void regex_release(void *state)
{
    regex_state *s = state;
    if (!s)
        return;
    rx_prog_free(&s->prog);
    free(s);
}

/* Compiles an RE2 pattern of `len` bytes into prog (freed by the caller on
 * failure too). */
static pare_status rx_compile(const char *pat, size_t len, rx_prog *prog, pare_error *err)
{
    uint32_t *cps = malloc((len ? len : 1) * sizeof *cps);
    if (!cps)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    size_t n = rx_utf8((const unsigned char *)pat, len, cps, 1);
    if (n == (size_t)-1) {
        free(cps);
        return pare_error_set(err, PARE_ERR_INVALID, "RegexFullMatch: pattern is not UTF-8");
    }
    rx_parser ps = {0};
    ps.p = cps;
    ps.n = n;
    ps.prog = prog;
    ps.err = err;
    int32_t root = rx_parse_alt(&ps);
    if (root >= 0 && ps.i < ps.n)
        root = rx_fail(&ps, PARE_ERR_INVALID, "unexpected )");
    if (root >= 0 && (rx_emit(&ps, root) || rx_emit_inst(&ps, RX_MATCH) < 0))
        root = -1;
    free(ps.nd);
    free(cps);
    if (root < 0)
        return err->status;
    return PARE_OK;
}

static pare_status regex_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    const pare_attr *a = pare_node_attr(n, "pattern");
    const char *pat = "";
    size_t len = 0;
    if (a) {
        if (a->type != PARE_ATTR_STRING)
            return pare_error_set(err, PARE_ERR_INVALID, "RegexFullMatch: pattern is not a string");
        pat = a->s.data ? a->s.data : "";
        len = a->s.data ? a->s.len : 0;
    }
    regex_state *s = calloc(1, sizeof *s);
    if (!s)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    pare_status st = rx_compile(pat, len, &s->prog, err);
    if (st) {
        regex_release(s);
        return st;
    }
    *state = s;
    return PARE_OK;
}

static int rx_isword(const uint32_t *t, size_t len, size_t i)
{
    if (i >= len)
        return 0;
    uint32_t c = t[i];
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int rx_assert(uint32_t kind, const uint32_t *t, size_t len, size_t pos)
{
    switch (kind) {
    case RXA_BEGIN_TEXT: return pos == 0;
    case RXA_END_TEXT: return pos == len;
    case RXA_BEGIN_LINE: return pos == 0 || t[pos - 1] == '\n';
    case RXA_END_LINE: return pos == len || t[pos] == '\n';
    case RXA_WORD: return (pos > 0 && rx_isword(t, len, pos - 1)) != rx_isword(t, len, pos);
    case RXA_NOT_WORD: return (pos > 0 && rx_isword(t, len, pos - 1)) == rx_isword(t, len, pos);
    default: return 0;
    }
}

typedef struct rx_vm {
    const rx_prog *g;
    int32_t *cl, *nl, *stack;
    uint64_t *mark;
    uint64_t gen;
    uint32_t *text;
    size_t cap_text;
} rx_vm;

/* Adds pc and everything reachable from it without consuming input. */
static void rx_add(rx_vm *vm, int32_t *list, int32_t *cnt, int32_t pc, const uint32_t *t,
                   size_t len, size_t pos)
{
    int32_t sp = 0;
    vm->stack[sp++] = pc;
    while (sp) {
        pc = vm->stack[--sp];
        if (vm->mark[pc] == vm->gen)
            continue;
        vm->mark[pc] = vm->gen;
        const rx_inst *in = &vm->g->ins[pc];
        switch (in->op) {
        case RX_JMP:
            vm->stack[sp++] = in->x;
            break;
        case RX_SPLIT:
            vm->stack[sp++] = in->y;
            vm->stack[sp++] = in->x;
            break;
        case RX_ASSERT:
            if (rx_assert(in->c, t, len, pos))
                vm->stack[sp++] = pc + 1;
            break;
        default:
            list[(*cnt)++] = pc;
            break;
        }
    }
}

static int rx_consumes(const rx_prog *g, const rx_inst *in, uint32_t c)
{
    switch (in->op) {
    case RX_CHAR: return in->c == c;
    case RX_ANY: return c != '\n';
    case RX_ANYNL: return 1;
    case RX_CLASS: {
        int hit = 0;
        for (int32_t r = in->x; r < in->x + in->y && !hit; r++)
            hit = g->rg[r].lo <= c && c <= g->rg[r].hi;
        return hit != in->neg;
    }
    default: return 0;
    }
}

/* Whole-text match of t[0..len) */
static int rx_full_match(rx_vm *vm, const uint32_t *t, size_t len)
{
    int32_t nc = 0, nn;
    vm->gen++;
    rx_add(vm, vm->cl, &nc, 0, t, len, 0);
    for (size_t pos = 0; pos < len && nc; pos++) {
        nn = 0;
        vm->gen++;
        for (int32_t k = 0; k < nc; k++) {
            int32_t pc = vm->cl[k];
            if (rx_consumes(vm->g, &vm->g->ins[pc], t[pos]))
                rx_add(vm, vm->nl, &nn, pc + 1, t, len, pos + 1);
        }
        int32_t *tmp = vm->cl;
        vm->cl = vm->nl;
        vm->nl = tmp;
        nc = nn;
    }
    for (int32_t k = 0; k < nc; k++)
        if (vm->g->ins[vm->cl[k]].op == RX_MATCH)
            return 1;
    return 0;
}

static int rx_vm_init(rx_vm *vm, const rx_prog *g)
{
    memset(vm, 0, sizeof *vm);
    vm->g = g;
    size_t n = (size_t)g->n;
    vm->cl = malloc(n * sizeof *vm->cl);
    vm->nl = malloc(n * sizeof *vm->nl);
    vm->stack = malloc((2 * n + 2) * sizeof *vm->stack);
    vm->mark = calloc(n, sizeof *vm->mark);
    return vm->cl && vm->nl && vm->stack && vm->mark ? 0 : -1;
}

static void rx_vm_free(rx_vm *vm)
{
    free(vm->cl);
    free(vm->nl);
    free(vm->stack);
    free(vm->mark);
    free(vm->text);
}

/* Matches one UTF-8 string; -1 on allocation failure. */
static int rx_match_string(rx_vm *vm, const char *s, size_t len)
{
    if (len + 1 > vm->cap_text) {
        if (len >= SIZE_MAX / sizeof *vm->text - 1)
            return -1;
        uint32_t *t = realloc(vm->text, (len + 1) * sizeof *t);
        if (!t)
            return -1;
        vm->text = t;
        vm->cap_text = len + 1;
    }
    size_t n = s ? rx_utf8((const unsigned char *)s, len, vm->text, 0) : 0;
    return rx_full_match(vm, vm->text, n);
}

typedef struct regex_job {
    const rx_prog *g;
    const pare_string *x;
    bool *y;
    atomic_int failed;
} regex_job;

static void regex_range(void *ctx, int64_t b, int64_t e)
{
    regex_job *j = ctx;
    rx_vm vm;
    if (rx_vm_init(&vm, j->g)) {
        rx_vm_free(&vm);
        atomic_store(&j->failed, 1);
        return;
    }
    for (int64_t i = b; i < e; i++) {
        int r = rx_match_string(&vm, j->x[i].data, j->x[i].len);
        if (r < 0) {
            atomic_store(&j->failed, 1);
            break;
        }
        j->y[i] = r != 0;
    }
    rx_vm_free(&vm);
}

static pare_status regex_run(pare_kctx *k, pare_error *err)
{
    const regex_state *s = k->state;
    const pare_tensor *x = k->n_in > 0 ? k->in[0] : NULL;
    if (!x)
        return pare_error_set(err, PARE_ERR_INVALID, "missing input X");
    if (x->dtype != PARE_DT_STRING)
        return pare_error_set(err, PARE_ERR_INVALID, "RegexFullMatch: input must be string, not %s",
                              pare_dtype_name(x->dtype));
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, PARE_DT_BOOL, x->rank, x->dims, &y, err);
    if (st)
        return st;
    regex_job j = {.g = &s->prog, .x = x->data, .y = y->data};
    atomic_init(&j.failed, 0);
    int64_t n = (int64_t)pare_tensor_numel(x);
    if (n > 0)
        pare_parallel_for(k->pool, n, 64, regex_range, &j);
    if (atomic_load(&j.failed))
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    return PARE_OK;
}
