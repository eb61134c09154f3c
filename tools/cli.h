/* tools/cli.h - what every pare program shares: option parsing and --help
 * from one table, --version, messages in the one-line error format,
 * verbosity, atomic outputs, and a progress bar for terminals.
 *
 *     static bool json;
 *     static const char *out_path;
 *     static cli_list shapes;
 *     static const cli_option options[] = {
 *         CLI_GROUP("Output"),
 *         CLI_FLAG(0, "json", &json, "print the report as JSON"),
 *         CLI_STRING('o', "output", &out_path, "FILE", "write to FILE instead of stdout"),
 *         CLI_LIST(0, "shape", &shapes, "NAME=DIMS", "input shape, e.g. x=1x3x224x224"),
 *         CLI_END(),
 *     };
 *     static const cli_program prog = {
 *         .name = "pare-inspect", .usage = "[OPTIONS] MODEL",
 *         .summary = "Describe an ONNX model.", .options = options,
 *         .args_name = "MODEL", .min_args = 1, .max_args = 1,
 *     };
 *     int main(int argc, char **argv) {
 *         cli_args args;
 *         int rc = cli_parse(&prog, argc, argv, &args);
 *         if (rc != CLI_CONTINUE)
 *             return rc;                       // 0 after --help/--version, 2 on bad usage
 *         ...
 *         if (load fails)
 *             return cli_fail(args.argv[0], &err);   // "pare-inspect: FILE: why", 1
 *     }
 *
 * Every program gets -h/--help, --version, -q/--quiet and -v/--verbose
 * without listing them. Options may come before or after the positional
 * arguments; "--" ends options; a lone "-" is a positional argument
 * (stdin or stdout). Long options take values as "--opt VALUE" or
 * "--opt=VALUE", short ones as "-o VALUE" or "-oVALUE"; short flags bundle
 * ("-qv"). Abbreviated long options are not accepted, so scripts stay valid
 * when options are added.
 *
 * State kept here for the process: the program name and the verbosity.
 */
#ifndef PARE_CLI_H
#define PARE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "pare/status.h"
#include "pare/tensor.h"

/* ---- options ---- */

typedef enum cli_opt_kind {
    CLI_OPT_END = 0,
    CLI_OPT_GROUP,    /* a heading in --help, no option */
    CLI_OPT_FLAG,     /* bool *: set to true */
    CLI_OPT_COUNT,    /* int *: incremented at each use */
    CLI_OPT_STRING,   /* const char **: the value (the last use wins) */
    CLI_OPT_LIST,     /* cli_list *: every value, in order (repeatable) */
    CLI_OPT_INT,      /* int64_t *: decimal integer within [min, max] */
    CLI_OPT_SIZE,     /* uint64_t *: byte count, suffixes K M G T (powers of 1024) */
    CLI_OPT_DOUBLE,   /* double *: finite number within [min, max] */
    CLI_OPT_CHOICE,   /* int *: index of the value in `choices` (NULL-terminated) */
    CLI_OPT_CALLBACK  /* callback(opt, value): value NULL when argname is NULL */
} cli_opt_kind;

typedef struct cli_option cli_option;

/* Returns 0 to go on, or prints its own message with cli_usage_error and
 * returns its result (2) to stop. */
typedef int (*cli_callback)(const cli_option *opt, const char *value);

struct cli_option {
    cli_opt_kind kind;
    char short_name;          /* 0: none */
    const char *long_name;    /* without "--"; NULL only for groups */
    void *value;              /* where the result goes (see the kinds) */
    const char *argname;      /* placeholder in --help ("FILE"); NULL: takes no value */
    const char *help;         /* one line; for a group, its title */
    double min, max;          /* CLI_OPT_INT and CLI_OPT_DOUBLE bounds */
    const char *const *choices;
    cli_callback callback;
};

/* Values of a repeatable option; the strings point into argv. */
typedef struct cli_list {
    const char **items;
    size_t n, cap;
} cli_list;

void cli_list_release(cli_list *l);

/* Names given to a repeatable option, each value split at commas
 * ("--exclude-nodes a,b --exclude-nodes c" gives a, b, c), copied. */
typedef struct cli_names {
    char **v;
    size_t n, cap;
} cli_names;

/* Appends the names of `in` (option --opt) to out. Returns CLI_CONTINUE, or
 * an exit status after printing why (an empty name is a usage error). */
int cli_split_names(const cli_list *in, const char *opt, cli_names *out);
void cli_names_release(cli_names *n);

#define CLI_GROUP(title) {.kind = CLI_OPT_GROUP, .help = (title)}
#define CLI_FLAG(s, l, v, h) {.kind = CLI_OPT_FLAG, .short_name = (s), .long_name = (l), \
                              .value = (v), .help = (h)}
#define CLI_COUNT(s, l, v, h) {.kind = CLI_OPT_COUNT, .short_name = (s), .long_name = (l), \
                               .value = (v), .help = (h)}
#define CLI_STRING(s, l, v, arg, h) {.kind = CLI_OPT_STRING, .short_name = (s), \
                                     .long_name = (l), .value = (v), .argname = (arg), .help = (h)}
#define CLI_LIST(s, l, v, arg, h) {.kind = CLI_OPT_LIST, .short_name = (s), .long_name = (l), \
                                   .value = (v), .argname = (arg), .help = (h)}
#define CLI_INT(s, l, v, arg, lo, hi, h) {.kind = CLI_OPT_INT, .short_name = (s), \
                                          .long_name = (l), .value = (v), .argname = (arg), \
                                          .help = (h), .min = (lo), .max = (hi)}
#define CLI_SIZE(s, l, v, arg, h) {.kind = CLI_OPT_SIZE, .short_name = (s), .long_name = (l), \
                                   .value = (v), .argname = (arg), .help = (h)}
#define CLI_DOUBLE(s, l, v, arg, lo, hi, h) {.kind = CLI_OPT_DOUBLE, .short_name = (s), \
                                             .long_name = (l), .value = (v), .argname = (arg), \
                                             .help = (h), .min = (lo), .max = (hi)}
#define CLI_CHOICE(s, l, v, arg, list, h) {.kind = CLI_OPT_CHOICE, .short_name = (s), \
                                           .long_name = (l), .value = (v), .argname = (arg), \
                                           .help = (h), .choices = (list)}
#define CLI_CALLBACK(s, l, arg, cb, h) {.kind = CLI_OPT_CALLBACK, .short_name = (s), \
                                        .long_name = (l), .argname = (arg), .help = (h), \
                                        .callback = (cb)}
#define CLI_END() {.kind = CLI_OPT_END}

typedef struct cli_program {
    const char *name;       /* "pare-inspect": the prefix of every message */
    const char *usage;      /* what follows the name in "usage:"; '\n' separates forms */
    const char *summary;    /* a paragraph under the usage lines */
    const char *footer;     /* text after the options in --help; NULL: none */
    const cli_option *options; /* ends with CLI_END() */
    const char *args_name;  /* the positional argument in messages ("MODEL") */
    int min_args, max_args; /* positional arguments allowed; max_args < 0: no limit */
} cli_program;

typedef struct cli_args {
    int argc;               /* positional arguments, in order */
    char **argv;            /* malloc'd array of pointers into argv; free with cli_args_release */
} cli_args;

void cli_args_release(cli_args *a);

#define CLI_CONTINUE (-1)

/* Exit codes of every program. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2, CLI_EXIT_GATE = 3 };

/* Parses argv by the table. Returns CLI_CONTINUE when the program should
 * run, 0 after printing --help or --version (on stdout), or 2 after
 * printing a usage error ("pare-X: unknown option '--foo' (see --help)").
 * Also records the program name and the verbosity for the functions below. */
int cli_parse(const cli_program *p, int argc, char **argv, cli_args *args);

/* The --help text of p, as cli_parse prints it (malloc'd; caller frees). */
char *cli_help_text(const cli_program *p);

/* Program name given to cli_parse (or cli_set_program); "pare" before. */
const char *cli_program_name(void);
void cli_set_program(const char *name);

/* -1 with -q, 0 by default, n with n times -v. */
int cli_verbosity(void);
void cli_set_verbosity(int v);

/* ---- messages (all on stderr) ---- */

/* "pare-X: FILE: message" (file NULL: "pare-X: message"); always printed. */
void cli_error(const char *file, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* cli_error with the library's message; returns 1 (CLI_EXIT_FAIL). */
int cli_fail(const char *file, const pare_error *err);
/* "pare-X: FILE: warning: message"; silenced by -q. */
void cli_warning(const char *file, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* "pare-X: message" at verbosity >= level (0: normal, silenced by -q; 1: -v; 2: -vv). */
void cli_info(int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* "pare-X: message (see --help)"; returns 2 (CLI_EXIT_USAGE). */
int cli_usage_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* How a path is shown in messages: "<stdin>" for "-", else the path. */
const char *cli_display_name(const char *path);

/* ---- outputs ---- */

enum {
    CLI_OUT_BINARY = 1 /* refuse a terminal as the destination */
};

/* An output being written: stdout for "-" (or NULL), else a temporary file
 * beside the target that cli_output_commit renames over it. Until then the
 * target is untouched; the temporary file is removed by cli_output_abort,
 * at exit, and on SIGINT/SIGTERM/SIGHUP/SIGPIPE. */
typedef struct cli_output {
    FILE *fp;       /* write here */
    char *path;     /* target (NULL for stdout) */
    char *tmp;      /* temporary file (NULL for stdout) */
    int slot;       /* cleanup registration, -1 none */
} cli_output;

/* Opens path for writing (see above). With CLI_OUT_BINARY, a terminal on
 * stdout is refused (PARE_ERR_ARG, "refusing to write a binary model to a
 * terminal"). New files get mode 0666 less the umask. */
pare_status cli_output_open(cli_output *o, const char *path, unsigned flags, pare_error *err);
/* Flushes, syncs and renames into place (stdout: flushes). Closes o either way. */
pare_status cli_output_commit(cli_output *o, pare_error *err);
/* Closes o and removes the temporary file. NULL-tolerant, idempotent. */
void cli_output_abort(cli_output *o);
/* Writes len bytes to path ("-": stdout) atomically, in one go. */
pare_status cli_write_file(const char *path, const void *data, size_t len, unsigned flags,
                           pare_error *err);
/* True when path is stdout ("-" or NULL) and stdout is a terminal: the check
 * for tools that hand "-" to pare_model_save. */
bool cli_is_terminal_output(const char *path);

/* ---- progress ---- */

/* A progress line on stderr, shown only when stderr is a terminal and -q
 * is not given; otherwise cli_progress_start returns NULL and the other
 * calls do nothing with it (NULL-tolerant, like git's progress.c). Redraws
 * at most ten times a second. total 0: a plain counter. */
typedef struct cli_progress cli_progress;
cli_progress *cli_progress_start(const char *title, uint64_t total);
void cli_progress_update(cli_progress *p, uint64_t done);
/* Prints the final state and ", done." and frees; sets *p to NULL. */
void cli_progress_stop(cli_progress **p);

/* ---- parsing values ---- */

/* "1x3x224x224" or "1,3,224,224" (empty or "scalar": rank 0) into dims. */
bool cli_parse_dims(const char *s, int64_t *dims, int *rank, char *why, size_t why_size);
/* "NAME=1x3x224x224": the name is everything before the last '='.
 * *name is malloc'd (caller frees). */
bool cli_parse_named_dims(const char *s, char **name, int64_t *dims, int *rank, char *why,
                          size_t why_size);
/* "NAME=INTEGER" (for symbolic dims: "N=8"). *name malloc'd. */
bool cli_parse_named_int(const char *s, char **name, int64_t *v, char *why, size_t why_size);
/* "123", "64K", "512M", "2G", "1T" (also "KiB", "MiB"... and "B"): powers of 1024. */
bool cli_parse_size(const char *s, uint64_t *out);
bool cli_parse_int(const char *s, int64_t *out);

/* ---- human formatting (deterministic, locale-free) ---- */

/* "17,306" */
char *cli_fmt_count(uint64_t v, char *buf, size_t size);
/* "812 B", "69.2 KiB", "1.50 MiB", "3.07 GiB" */
char *cli_fmt_bytes(uint64_t v, char *buf, size_t size);
/* "950", "12.3 K", "1.23 M", "4.56 G", "7.89 T" (three significant digits) */
char *cli_fmt_si(double v, char *buf, size_t size);
/* "12.5%" of part/whole (one decimal; "-" when whole is 0) */
char *cli_fmt_percent(double part, double whole, char *buf, size_t size);

#endif
