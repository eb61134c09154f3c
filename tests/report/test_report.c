/* test_report.c - the JSON writer (structure, escaping, number formatting,
 * misuse caught) and text tables. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pare/report.h"

static pare_json *jnew(unsigned flags)
{
    pare_json *j;
    pare_error err;
    assert_int_equal(pare_json_new(flags, &j, &err), PARE_OK);
    return j;
}

static void expect_text(pare_json *j, const char *want)
{
    const char *text;
    size_t len;
    pare_error err;
    pare_status st = pare_json_finish(j, &text, &len, &err);
    if (st)
        fail_msg("finish failed: %s", err.msg);
    assert_string_equal(text, want);
    assert_int_equal(len, strlen(want));
    pare_json_free(j);
}

static void expect_error(pare_json *j, const char *fragment)
{
    const char *text;
    size_t len;
    pare_error err;
    assert_int_not_equal(pare_json_finish(j, &text, &len, &err), PARE_OK);
    assert_non_null(strstr(err.msg, fragment));
    pare_json_free(j);
}

static void test_compact_document(void **state)
{
    (void)state;
    pare_json *j = jnew(0);
    pare_json_begin_object(j);
    pare_json_kv_string(j, "schema", "pare-inspect/1");
    pare_json_kv_int(j, "neg", -42);
    pare_json_kv_uint(j, "big", UINT64_MAX);
    pare_json_kv_bool(j, "t", true);
    pare_json_kv_bool(j, "f", false);
    pare_json_kv_null(j, "n");
    pare_json_key(j, "list");
    pare_json_begin_array(j);
    pare_json_int(j, 1);
    pare_json_string(j, "x");
    pare_json_begin_object(j);
    pare_json_end_object(j);
    pare_json_begin_array(j);
    pare_json_end_array(j);
    pare_json_end_array(j);
    pare_json_end_object(j);
    expect_text(j, "{\"schema\":\"pare-inspect/1\",\"neg\":-42,\"big\":18446744073709551615,"
                   "\"t\":true,\"f\":false,\"n\":null,\"list\":[1,\"x\",{},[]]}\n");
}

static void test_pretty_document(void **state)
{
    (void)state;
    pare_json *j = jnew(PARE_JSON_PRETTY);
    pare_json_begin_object(j);
    pare_json_kv_string(j, "a", "b");
    pare_json_key(j, "shape");
    pare_json_begin_array_flat(j);
    pare_json_int(j, 1);
    pare_json_string(j, "N");
    pare_json_null(j);
    pare_json_end_array(j);
    pare_json_key(j, "items");
    pare_json_begin_array(j);
    pare_json_begin_object(j);
    pare_json_kv_int(j, "k", 1);
    pare_json_end_object(j);
    pare_json_end_array(j);
    pare_json_key(j, "empty");
    pare_json_begin_object(j);
    pare_json_end_object(j);
    pare_json_key(j, "rec");
    pare_json_begin_object_flat(j);
    pare_json_kv_string(j, "op", "Conv");
    pare_json_key(j, "dims");
    pare_json_begin_array(j); /* inside a flat object: flat too */
    pare_json_int(j, 2);
    pare_json_int(j, 3);
    pare_json_end_array(j);
    pare_json_end_object(j);
    pare_json_end_object(j);
    expect_text(j, "{\n"
                   "  \"a\": \"b\",\n"
                   "  \"shape\": [1, \"N\", null],\n"
                   "  \"items\": [\n"
                   "    {\n"
                   "      \"k\": 1\n"
                   "    }\n"
                   "  ],\n"
                   "  \"empty\": {},\n"
                   "  \"rec\": {\"op\": \"Conv\", \"dims\": [2, 3]}\n"
                   "}\n");
}

static void test_string_escaping(void **state)
{
    (void)state;
    pare_json *j = jnew(0);
    pare_json_begin_array(j);
    pare_json_string(j, "quote\" back\\ slash/");
    pare_json_string(j, "\b\f\n\r\t\x01\x1f\x7f");
    pare_json_string_n(j, "nul\0byte", 8);
    pare_json_string(j, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"); /* valid UTF-8 passes */
    pare_json_string(j, "bad \xff \xc3 \xed\xa0\x80 \xc0\xaf end"); /* invalid -> U+FFFD */
    pare_json_string(j, "ls \xe2\x80\xa8 ps \xe2\x80\xa9");
    pare_json_string(j, NULL);
    pare_json_end_array(j);
    expect_text(j, "[\"quote\\\" back\\\\ slash/\","
                   "\"\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\","
                   "\"nul\\u0000byte\","
                   "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\","
                   "\"bad \\ufffd \\ufffd \\ufffd\\ufffd\\ufffd \\ufffd\\ufffd end\","
                   "\"ls \\u2028 ps \\u2029\","
                   "null]\n");
}

static void test_escape_fixed_buffer(void **state)
{
    (void)state;
    char buf[8];
    size_t need = pare_json_escape("a\"bcdefgh", 9, buf, sizeof buf);
    assert_int_equal(need, 12); /* quotes, a, \", bcdefgh */
    assert_string_equal(buf, "\"a\\\"bcd");
    char big[64];
    assert_int_equal(pare_json_escape("x\n", 2, big, sizeof big), 5);
    assert_string_equal(big, "\"x\\n\"");
}

static void test_numbers(void **state)
{
    (void)state;
    char b[40];
    assert_string_equal(pare_json_format_double(0.1, 0, b, sizeof b), "0.1");
    assert_string_equal(pare_json_format_double(3.0, 0, b, sizeof b), "3");
    /* whole numbers in plain digits (shortest %g would say 6.4e+02) */
    assert_string_equal(pare_json_format_double(640.0, 0, b, sizeof b), "640");
    assert_string_equal(pare_json_format_double(-123456789012.0, 0, b, sizeof b),
                        "-123456789012");
    assert_string_equal(pare_json_format_double(1e20, 0, b, sizeof b), "1e+20");
    assert_string_equal(pare_json_format_double(-2.5, 0, b, sizeof b), "-2.5");
    assert_string_equal(pare_json_format_double(1e-7, 0, b, sizeof b), "1e-07");
    assert_string_equal(pare_json_format_double(1e300, 0, b, sizeof b), "1e+300");
    assert_string_equal(pare_json_format_double(-0.0, 0, b, sizeof b), "0");
    assert_string_equal(pare_json_format_double(NAN, 0, b, sizeof b), "null");
    assert_string_equal(pare_json_format_double(INFINITY, 0, b, sizeof b), "null");
    assert_string_equal(pare_json_format_double(1.0 / 3.0, 0, b, sizeof b), "0.3333333333333333");
    assert_string_equal(pare_json_format_double(1.0 / 3.0, 4, b, sizeof b), "0.3333");
    assert_string_equal(pare_json_format_double(0.123456, 3, b, sizeof b), "0.123");
    assert_string_equal(pare_json_format_double(-1e-30, 3, b, sizeof b), "-1e-30");
    /* shortest form reads back exactly */
    double vals[] = {0.1 + 0.2, 123456789.125, 5e-324, 1.7976931348623157e308, 2.0 / 7.0};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        pare_json_format_double(vals[i], 0, b, sizeof b);
        assert_true(strtod(b, NULL) == vals[i]);
    }

    pare_json *j = jnew(0);
    pare_json_begin_array(j);
    pare_json_double(j, 0.5);
    pare_json_double(j, NAN);
    pare_json_double_sig(j, 0.987654321, 2);
    pare_json_int(j, INT64_MIN);
    pare_json_end_array(j);
    expect_text(j, "[0.5,null,0.99,-9223372036854775808]\n");
}

static void test_locale_decimal_point(void **state)
{
    (void)state;
    /* A locale with a decimal comma must not leak into JSON. Skipped quietly
     * where no such locale is installed. */
    const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8"};
    const char *ok = NULL;
    for (size_t i = 0; i < 4 && !ok; i++)
        ok = setlocale(LC_NUMERIC, names[i]);
    char b[40];
    assert_string_equal(pare_json_format_double(1.25, 0, b, sizeof b), "1.25");
    assert_string_equal(pare_json_format_double(0.1, 3, b, sizeof b), "0.1");
    setlocale(LC_NUMERIC, "C");
}

static void test_misuse(void **state)
{
    (void)state;
    pare_json *j = jnew(0);
    pare_json_begin_object(j);
    pare_json_int(j, 1); /* no key */
    pare_json_end_object(j);
    expect_error(j, "without a key");

    j = jnew(0);
    pare_json_begin_array(j);
    pare_json_key(j, "k");
    pare_json_end_array(j);
    expect_error(j, "outside an object");

    j = jnew(0);
    pare_json_begin_object(j);
    expect_error(j, "unclosed");

    j = jnew(0);
    pare_json_begin_object(j);
    pare_json_end_array(j);
    expect_error(j, "not open");

    j = jnew(0);
    pare_json_int(j, 1);
    pare_json_int(j, 2);
    expect_error(j, "more than one");

    j = jnew(0);
    expect_error(j, "empty");

    j = jnew(0);
    pare_json_begin_object(j);
    pare_json_key(j, "a");
    pare_json_end_object(j);
    expect_error(j, "key without a value");

    j = jnew(0);
    pare_json_begin_object(j);
    pare_json_key(j, "a");
    pare_json_key(j, "b");
    expect_error(j, "two JSON keys");

    pare_json_free(NULL);
}

static void test_scalar_root_and_deep_nesting(void **state)
{
    (void)state;
    pare_json *j = jnew(PARE_JSON_PRETTY);
    pare_json_string(j, "only");
    expect_text(j, "\"only\"\n");

    j = jnew(0);
    for (int i = 0; i < 200; i++)
        pare_json_begin_array(j);
    for (int i = 0; i < 200; i++)
        pare_json_end_array(j);
    const char *text;
    size_t len;
    pare_error err;
    assert_int_equal(pare_json_finish(j, &text, &len, &err), PARE_OK);
    assert_int_equal(len, 401);
    /* finishing twice gives the same text */
    assert_int_equal(pare_json_finish(j, &text, &len, &err), PARE_OK);
    assert_int_equal(len, 401);
    pare_json_free(j);
}

static void test_table(void **state)
{
    (void)state;
    pare_table *t;
    pare_error err;
    assert_int_equal(pare_table_new(3, &t, &err), PARE_OK);
    pare_table_column(t, 0, "op", PARE_ALIGN_LEFT);
    pare_table_column(t, 1, "count", PARE_ALIGN_RIGHT);
    pare_table_column(t, 2, "note", PARE_ALIGN_LEFT);
    pare_table_row(t);
    pare_table_cell(t, "%s", "Conv");
    pare_table_cell(t, "%d", 4);
    pare_table_cell(t, "caf\xc3\xa9");
    pare_table_row(t);
    pare_table_cell(t, "%s", "BatchNormalization");
    pare_table_cell(t, "%d", 12);
    pare_table_row(t);
    pare_table_cell(t, "multi\nline");
    pare_table_cell(t, "%s", "");
    pare_table_cell(t, "esc\x1b[31m");
    char *text;
    size_t len;
    assert_int_equal(pare_table_render(t, 2, &text, &len, &err), PARE_OK);
    assert_string_equal(text, "  op                  count  note\n"
                              "  Conv                    4  caf\xc3\xa9\n"
                              "  BatchNormalization     12\n"
                              "  multi line                 esc?[31m\n");
    assert_int_equal(len, strlen(text));
    free(text);
    pare_table_free(t);

    /* no titles: no header; too many cells is an error */
    assert_int_equal(pare_table_new(1, &t, &err), PARE_OK);
    pare_table_row(t);
    pare_table_cell(t, "a");
    assert_int_equal(pare_table_render(t, 0, &text, &len, &err), PARE_OK);
    assert_string_equal(text, "a\n");
    free(text);
    pare_table_cell(t, "b");
    assert_int_not_equal(pare_table_render(t, 0, &text, &len, &err), PARE_OK);
    pare_table_free(t);

    assert_int_equal(pare_table_new(2, &t, &err), PARE_OK);
    assert_int_equal(pare_table_render(t, 0, &text, &len, &err), PARE_OK);
    assert_string_equal(text, "");
    free(text);
    pare_table_free(t);
    pare_table_free(NULL);
    assert_int_not_equal(pare_table_new(0, &t, &err), PARE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compact_document),
        cmocka_unit_test(test_pretty_document),
        cmocka_unit_test(test_string_escaping),
        cmocka_unit_test(test_escape_fixed_buffer),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_locale_decimal_point),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_scalar_root_and_deep_nesting),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
