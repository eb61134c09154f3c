/* test_cli.c - tools/cli.c: parsing by the option table, --help generated
 * from it, usage errors, value parsers, atomic outputs, formatting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static bool f_json, f_dry;
static int f_count;
static const char *s_out;
static cli_list l_shape;
static int64_t i_seed;
static uint64_t z_max;
static double d_ratio;
static int c_mode;
static int cb_calls;
static const char *cb_value;

static int on_cb(const cli_option *opt, const char *value)
{
    (void)opt;
    cb_calls++;
    cb_value = value;
    if (value && strcmp(value, "bad") == 0)
        return cli_usage_error("callback refused '%s'", value);
    return 0;
}

static const char *const modes[] = {"fast", "exact", NULL};

static const cli_option opts[] = {
    CLI_GROUP("Output"),
    CLI_FLAG(0, "json", &f_json, "print JSON"),
    CLI_STRING('o', "output", &s_out, "FILE", "write to FILE"),
    CLI_COUNT('c', "count", &f_count, "count me"),
    CLI_FLAG('n', "dry-run", &f_dry, "do nothing"),
    CLI_GROUP("Tuning"),
    CLI_LIST(0, "shape", &l_shape, "NAME=DIMS", "an input shape"),
    CLI_INT(0, "seed", &i_seed, "N", 0, 1000, "random seed"),
    CLI_SIZE(0, "max", &z_max, "BYTES", "a limit"),
    CLI_DOUBLE(0, "ratio", &d_ratio, "R", 0, 1, "a share"),
    CLI_CHOICE(0, "mode", &c_mode, "MODE", modes, "how"),
    CLI_CALLBACK(0, "hook", "X", on_cb, "a callback with a value"),
    CLI_CALLBACK(0, "ping", NULL, on_cb, "a callback without one"),
    CLI_END(),
};

static const cli_program prog = {
    .name = "pare-test",
    .usage = "[OPTIONS] IN [OUT]\n--other IN",
    .summary = "A program for tests.",
    .footer = "Exit status: 0, 1, 2.",
    .options = opts,
    .args_name = "IN",
    .min_args = 1,
    .max_args = 2,
};

static void reset(void)
{
    f_json = f_dry = false;
    f_count = 0;
    s_out = NULL;
    cli_list_release(&l_shape);
    i_seed = 0;
    z_max = 0;
    d_ratio = 0;
    c_mode = -1;
    cb_calls = 0;
    cb_value = NULL;
    cli_set_verbosity(0);
}

/* Runs cli_parse over a NULL-terminated list of words with stdout and
 * stderr sent to files, whose text is returned in *out and *err. */
static int parse(cli_args *args, char **out, char **err, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"pare-test";
    va_list ap;
    va_start(ap, err);
    for (char *w; (w = va_arg(ap, char *)) != NULL;)
        argv[argc++] = w;
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    FILE *fo = tmpfile(), *fe = tmpfile();
    assert_non_null(fo);
    assert_non_null(fe);
    dup2(fileno(fo), 1);
    dup2(fileno(fe), 2);
    int rc = cli_parse(&prog, argc, argv, args);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    FILE *fs[2] = {fo, fe};
    char **dst[2] = {out, err};
    for (int i = 0; i < 2; i++) {
        long n = ftell(fs[i]);
        char *b = calloc((size_t)n + 1, 1);
        rewind(fs[i]);
        if (n > 0)
            assert_int_equal(fread(b, 1, (size_t)n, fs[i]), (size_t)n);
        fclose(fs[i]);
        *dst[i] = b;
    }
    return rc;
}

static void test_parse_values(void **state)
{
    (void)state;
    reset();
    cli_args a;
    char *out, *err;
    int rc = parse(&a, &out, &err, "--json", "in.onnx", "-o", "x.onnx", "--shape", "a=1x2",
                   "--shape=b=3", "--seed=7", "--max", "64M", "--ratio", "0.25", "--mode", "exact",
                   "-cc", "-nc", "out.onnx", "--hook", "v", "--ping", NULL);
    assert_int_equal(rc, CLI_CONTINUE);
    assert_string_equal(err, "");
    assert_string_equal(out, "");
    assert_true(f_json);
    assert_true(f_dry);
    assert_int_equal(f_count, 3);
    assert_string_equal(s_out, "x.onnx");
    assert_int_equal(l_shape.n, 2);
    assert_string_equal(l_shape.items[0], "a=1x2");
    assert_string_equal(l_shape.items[1], "b=3");
    assert_int_equal(i_seed, 7);
    assert_int_equal(z_max, 64u << 20);
    assert_true(d_ratio == 0.25);
    assert_int_equal(c_mode, 1);
    assert_int_equal(cb_calls, 2);
    assert_null(cb_value); /* --ping came last, without a value */
    assert_int_equal(a.argc, 2);
    assert_string_equal(a.argv[0], "in.onnx");
    assert_string_equal(a.argv[1], "out.onnx");
    assert_int_equal(cli_verbosity(), 0);
    assert_string_equal(cli_program_name(), "pare-test");
    cli_args_release(&a);
    free(out);
    free(err);
}

static void test_parse_short_forms_and_dashes(void **state)
{
    (void)state;
    reset();
    cli_args a;
    char *out, *err;
    /* -oVALUE, a bundle ending in a value option, "-" as an argument, "--" */
    int rc = parse(&a, &out, &err, "-ofile", "-", "-nofile2", "--", "--json", NULL);
    assert_int_equal(rc, CLI_CONTINUE);
    assert_string_equal(s_out, "file2");
    assert_true(f_dry);
    assert_false(f_json);
    assert_int_equal(a.argc, 2);
    assert_string_equal(a.argv[0], "-");
    assert_string_equal(a.argv[1], "--json");
    cli_args_release(&a);
    free(out);
    free(err);

    reset();
    rc = parse(&a, &out, &err, "-qv", "x", NULL);
    assert_int_equal(rc, CLI_CONTINUE);
    assert_int_equal(cli_verbosity(), -1); /* -q wins */
    cli_args_release(&a);
    free(out);
    free(err);
    reset();
    rc = parse(&a, &out, &err, "-v", "--verbose", "x", NULL);
    assert_int_equal(cli_verbosity(), 2);
    cli_args_release(&a);
    free(out);
    free(err);
}

static void expect_usage(const char *want, ...)
{
    char *argv[16];
    int argc = 0;
    va_list ap;
    va_start(ap, want);
    for (char *w; (w = va_arg(ap, char *)) != NULL;)
        argv[argc++] = w;
    va_end(ap);
    reset();
    cli_args a;
    char *out, *err;
    int rc;
    switch (argc) {
    case 0: rc = parse(&a, &out, &err, NULL); break;
    case 1: rc = parse(&a, &out, &err, argv[0], NULL); break;
    case 2: rc = parse(&a, &out, &err, argv[0], argv[1], NULL); break;
    case 3: rc = parse(&a, &out, &err, argv[0], argv[1], argv[2], NULL); break;
    default: rc = parse(&a, &out, &err, argv[0], argv[1], argv[2], argv[3], NULL); break;
    }
    assert_int_equal(rc, CLI_EXIT_USAGE);
    assert_string_equal(out, "");
    assert_string_equal(err, want);
    assert_null(a.argv);
    free(out);
    free(err);
}

static void test_usage_errors(void **state)
{
    (void)state;
    expect_usage("pare-test: unknown option '--foo' (see --help)\n", "--foo", "in", NULL);
    expect_usage("pare-test: unknown option '--foo' (see --help)\n", "--foo=3", "in", NULL);
    expect_usage("pare-test: unknown option '--jso' (see --help)\n", "--jso", "in", NULL);
    expect_usage("pare-test: unknown option '-z' (see --help)\n", "-nz", "in", NULL);
    expect_usage("pare-test: missing IN (see --help)\n", NULL);
    expect_usage("pare-test: unexpected argument 'c' (see --help)\n", "a", "b", "c", NULL);
    expect_usage("pare-test: option '--output' needs a value (FILE) (see --help)\n", "in", "-o",
                 NULL);
    expect_usage("pare-test: option '--json' takes no value (see --help)\n", "--json=1", "in",
                 NULL);
    expect_usage("pare-test: option '--seed': 'x' is not an integer (see --help)\n", "--seed", "x",
                 "in", NULL);
    expect_usage("pare-test: option '--seed': 1001 is outside 0..1000 (see --help)\n", "--seed",
                 "1001", "in", NULL);
    expect_usage("pare-test: option '--max': '1X' is not a byte count (e.g. 4096, 64K, 512M, 2G) "
                 "(see --help)\n", "--max", "1X", "in", NULL);
    expect_usage("pare-test: option '--ratio': 'nan' is not a number (see --help)\n", "--ratio",
                 "nan", "in", NULL);
    expect_usage("pare-test: option '--ratio': 2 is outside 0..1 (see --help)\n", "--ratio", "2",
                 "in", NULL);
    expect_usage("pare-test: option '--mode': 'slow' is not one of fast, exact (see --help)\n",
                 "--mode", "slow", "in", NULL);
    expect_usage("pare-test: callback refused 'bad' (see --help)\n", "--hook", "bad", "in", NULL);
}

static void test_help_and_version(void **state)
{
    (void)state;
    reset();
    cli_args a;
    char *out, *err;
    /* options are taken in order: an unknown one before --help is an error */
    int rc = parse(&a, &out, &err, "--bogus", "--help", NULL);
    assert_int_equal(rc, CLI_EXIT_USAGE);
    free(out);
    free(err);
    rc = parse(&a, &out, &err, "--json", "--help", "--bogus", NULL);
    assert_int_equal(rc, CLI_EXIT_OK);
    assert_string_equal(err, "");
    char *h = cli_help_text(&prog);
    assert_non_null(h);
    assert_string_equal(out, h);
    /* every option of the table, and the common ones, are in the help */
    const char *want[] = {"usage: pare-test [OPTIONS] IN [OUT]\n   or: pare-test --other IN\n",
                          "A program for tests.", "\nOutput:\n", "\nTuning:\n",
                          "      --json ", "  -o, --output FILE ", "  -c, --count ",
                          "  -n, --dry-run ", "      --shape NAME=DIMS ", "(repeatable)",
                          "      --seed N ", "      --max BYTES ", "      --ratio R ",
                          "      --mode MODE ", "(one of: fast, exact)", "      --hook X ",
                          "      --ping ", "\nCommon options:\n", "  -q, --quiet ",
                          "  -v, --verbose ", "  -h, --help ", "      --version ",
                          "\nExit status: 0, 1, 2.\n"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(h, want[i]))
            fail_msg("help lacks '%s':\n%s", want[i], h);
    /* no line is wider than 79 columns */
    for (const char *p = h; *p;) {
        size_t l = strcspn(p, "\n");
        assert_true(l <= 79);
        p += l + (p[l] == '\n');
    }
    free(h);
    free(out);
    free(err);

    rc = parse(&a, &out, &err, "--version", NULL);
    assert_int_equal(rc, CLI_EXIT_OK);
    assert_non_null(strstr(out, "pare-test (pare) "));
    free(out);
    free(err);
    rc = parse(&a, &out, &err, "-h", NULL);
    assert_int_equal(rc, CLI_EXIT_OK);
    assert_non_null(strstr(out, "usage: pare-test"));
    free(out);
    free(err);
}

static void test_value_parsers(void **state)
{
    (void)state;
    uint64_t z;
    assert_true(cli_parse_size("4096", &z) && z == 4096);
    assert_true(cli_parse_size("64K", &z) && z == 65536);
    assert_true(cli_parse_size("2G", &z) && z == (2ull << 30));
    assert_true(cli_parse_size("3MiB", &z) && z == (3ull << 20));
    assert_true(cli_parse_size("1t", &z) && z == (1ull << 40));
    assert_true(cli_parse_size("10B", &z) && z == 10);
    assert_false(cli_parse_size("", &z));
    assert_false(cli_parse_size("-1", &z));
    assert_false(cli_parse_size("1.5G", &z));
    assert_false(cli_parse_size("99999999999T", &z));
    assert_false(cli_parse_size("5X", &z));
    int64_t v;
    assert_true(cli_parse_int("-12", &v) && v == -12);
    assert_false(cli_parse_int("12a", &v));
    assert_false(cli_parse_int("99999999999999999999", &v));

    int64_t dims[PARE_MAX_RANK];
    int rank;
    char why[128];
    assert_true(cli_parse_dims("1x3x224x224", dims, &rank, why, sizeof why));
    assert_int_equal(rank, 4);
    assert_int_equal(dims[3], 224);
    assert_true(cli_parse_dims("2,5", dims, &rank, why, sizeof why));
    assert_int_equal(rank, 2);
    assert_int_equal(dims[1], 5);
    assert_true(cli_parse_dims("scalar", dims, &rank, why, sizeof why) && rank == 0);
    assert_true(cli_parse_dims("", dims, &rank, why, sizeof why) && rank == 0);
    assert_false(cli_parse_dims("1x", dims, &rank, why, sizeof why));
    assert_false(cli_parse_dims("1x-2", dims, &rank, why, sizeof why));
    assert_false(cli_parse_dims("ax2", dims, &rank, why, sizeof why));
    assert_false(cli_parse_dims("1x99999999999999999999", dims, &rank, why, sizeof why));

    char *name;
    assert_true(cli_parse_named_dims("in:0=1x2", &name, dims, &rank, why, sizeof why));
    assert_string_equal(name, "in:0");
    assert_int_equal(rank, 2);
    free(name);
    /* the last '=' separates: names may hold one */
    assert_true(cli_parse_named_dims("a=b=3", &name, dims, &rank, why, sizeof why));
    assert_string_equal(name, "a=b");
    free(name);
    assert_false(cli_parse_named_dims("=3", &name, dims, &rank, why, sizeof why));
    assert_false(cli_parse_named_dims("noeq", &name, dims, &rank, why, sizeof why));
    assert_true(cli_parse_named_int("N=8", &name, &v, why, sizeof why));
    assert_string_equal(name, "N");
    assert_int_equal(v, 8);
    free(name);
    assert_false(cli_parse_named_int("N=x", &name, &v, why, sizeof why));
}

static void test_formatting(void **state)
{
    (void)state;
    char b[64];
    assert_string_equal(cli_fmt_count(0, b, sizeof b), "0");
    assert_string_equal(cli_fmt_count(999, b, sizeof b), "999");
    assert_string_equal(cli_fmt_count(17306, b, sizeof b), "17,306");
    assert_string_equal(cli_fmt_count(1234567890, b, sizeof b), "1,234,567,890");
    assert_string_equal(cli_fmt_bytes(812, b, sizeof b), "812 B");
    assert_string_equal(cli_fmt_bytes(70856, b, sizeof b), "69.2 KiB");
    assert_string_equal(cli_fmt_bytes(3u << 20, b, sizeof b), "3.00 MiB");
    assert_string_equal(cli_fmt_bytes(524288000, b, sizeof b), "500 MiB");
    assert_string_equal(cli_fmt_bytes(UINT64_MAX, b, sizeof b), "16.0 EiB");
    assert_string_equal(cli_fmt_si(950, b, sizeof b), "950");
    assert_string_equal(cli_fmt_si(468288, b, sizeof b), "468 K");
    assert_string_equal(cli_fmt_si(1638400, b, sizeof b), "1.64 M");
    assert_string_equal(cli_fmt_si(4.56e9, b, sizeof b), "4.56 G");
    assert_string_equal(cli_fmt_percent(1, 8, b, sizeof b), "12.5%");
    assert_string_equal(cli_fmt_percent(1, 0, b, sizeof b), "-");
    assert_string_equal(cli_display_name("-"), "<stdin>");
    assert_string_equal(cli_display_name("a.onnx"), "a.onnx");
}

static size_t dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void test_outputs(void **state)
{
    (void)state;
    char dir[] = "/tmp/pare-test-cli-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    pare_error err;

    /* written in one go, then replaced atomically */
    assert_int_equal(cli_write_file(path, "hello\n", 6, 0, &err), PARE_OK);
    FILE *f = fopen(path, "r");
    char buf[32] = "";
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "hello\n");
    assert_int_equal(dir_entries(dir), 1);

    cli_output o;
    assert_int_equal(cli_output_open(&o, path, 0, &err), PARE_OK);
    fputs("partial", o.fp);
    /* while open, the target still holds the old text and a temporary exists */
    f = fopen(path, "r");
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "hello\n");
    assert_int_equal(dir_entries(dir), 2);
    cli_output_abort(&o);
    cli_output_abort(&o); /* idempotent */
    assert_int_equal(dir_entries(dir), 1);
    f = fopen(path, "r");
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "hello\n");

    assert_int_equal(cli_output_open(&o, path, CLI_OUT_BINARY, &err), PARE_OK);
    fputs("new\n", o.fp);
    assert_int_equal(cli_output_commit(&o, &err), PARE_OK);
    f = fopen(path, "r");
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "new\n");
    assert_int_equal(dir_entries(dir), 1);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true((sb.st_mode & 0444) != 0);

    /* a folder that does not exist, a folder as the target */
    char bad[300];
    snprintf(bad, sizeof bad, "%s/no/such/file", dir);
    assert_int_not_equal(cli_write_file(bad, "x", 1, 0, &err), PARE_OK);
    assert_int_not_equal(cli_write_file(dir, "x", 1, 0, &err), PARE_OK);
    assert_non_null(strstr(err.msg, "directory"));

    unlink(path);
    rmdir(dir);

    /* stdout: a binary model is refused on a terminal only */
    assert_int_equal(cli_is_terminal_output("-"), isatty(1) != 0);
    assert_false(cli_is_terminal_output("file.onnx"));
}

static void test_progress_off_without_terminal(void **state)
{
    (void)state;
    /* stderr of a test is not a terminal: no handle, and NULL is fine */
    if (isatty(2))
        skip();
    cli_progress *p = cli_progress_start("calibrating", 10);
    assert_null(p);
    cli_progress_update(p, 5);
    cli_progress_stop(&p);
    cli_progress_stop(NULL);
}

static void test_split_names(void **state)
{
    (void)state;
    const char *items[] = {"a,bc", "d", "e,,f"};
    cli_list l = {items, 2, 2};
    cli_names n = {0};
    assert_int_equal(cli_split_names(&l, "exclude-nodes", &n), CLI_CONTINUE);
    assert_int_equal(n.n, 3);
    assert_string_equal(n.v[0], "a");
    assert_string_equal(n.v[1], "bc");
    assert_string_equal(n.v[2], "d");
    /* an empty name is a usage error */
    cli_list bad = {items + 2, 1, 1};
    assert_int_equal(cli_split_names(&bad, "exclude-nodes", &n), CLI_EXIT_USAGE);
    cli_names_release(&n);
    assert_int_equal(n.n, 0);
    assert_null(n.v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_values),
        cmocka_unit_test(test_parse_short_forms_and_dashes),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_value_parsers),
        cmocka_unit_test(test_formatting),
        cmocka_unit_test(test_outputs),
        cmocka_unit_test(test_progress_off_without_terminal),
        cmocka_unit_test(test_split_names),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cli_list_release(&l_shape);
    return rc;
}
