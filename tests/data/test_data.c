/* Tests of lib/data: .npy, .npz, tensor files, datasets, random tensors.
 * Fixtures come from fixtures/make_fixtures.py (numpy); the expected values
 * are recomputed here with the same formulas. Run with the fixtures' parent
 * as the working directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "pare/data.h"
#include "pare/model.h"

#define FX "fixtures/"

static char tmpdir[256];

/* ---- helpers ---- */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup_tmp(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pare-test-data-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void spit(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
}

/* Files in tmpdir whose name starts with '.' (left-over temporaries). */
static int count_hidden(void)
{
    DIR *d = opendir(tmpdir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

typedef struct fx_type {
    const char *code;
    int dtype;
    bool has_be;
} fx_type;

static const fx_type types[] = {
    {"f4", PARE_DT_FLOAT, true},      {"f8", PARE_DT_DOUBLE, true},   {"f2", PARE_DT_FLOAT16, true},
    {"i1", PARE_DT_INT8, false},      {"u1", PARE_DT_UINT8, false},   {"i2", PARE_DT_INT16, true},
    {"u2", PARE_DT_UINT16, true},     {"i4", PARE_DT_INT32, true},    {"u4", PARE_DT_UINT32, true},
    {"i8", PARE_DT_INT64, true},      {"u8", PARE_DT_UINT64, true},   {"b1", PARE_DT_BOOL, false},
    {"c8", PARE_DT_COMPLEX64, true},  {"c16", PARE_DT_COMPLEX128, true},
};
#define N_TYPES (sizeof types / sizeof types[0])

/* make_fixtures.py's value(): element i of a fixture array. */
static void expected(int dtype, uint64_t i, double *re, double *im)
{
    double x = (double)i;
    *im = 0;
    switch (dtype) {
    case PARE_DT_BOOL: *re = i % 3 == 0; break;
    case PARE_DT_FLOAT: case PARE_DT_DOUBLE: case PARE_DT_FLOAT16: *re = (x - 5) * 0.25; break;
    case PARE_DT_COMPLEX64: case PARE_DT_COMPLEX128:
        *re = (x - 5) * 0.25;
        *im = x * 0.5;
        break;
    case PARE_DT_UINT8: case PARE_DT_UINT16: case PARE_DT_UINT32: case PARE_DT_UINT64:
        *re = (double)((i * 7) % 23);
        break;
    default: *re = (double)((i * 7) % 23) - 11; break;
    }
}

static void element(const pare_tensor *t, uint64_t i, double *re, double *im)
{
    const void *d = t->data;
    *im = 0;
    switch (t->dtype) {
    case PARE_DT_FLOAT: *re = ((const float *)d)[i]; break;
    case PARE_DT_DOUBLE: *re = ((const double *)d)[i]; break;
    case PARE_DT_FLOAT16: *re = pare_f16_to_f32(((const uint16_t *)d)[i]); break;
    case PARE_DT_INT8: *re = ((const int8_t *)d)[i]; break;
    case PARE_DT_UINT8: *re = ((const uint8_t *)d)[i]; break;
    case PARE_DT_BOOL: *re = ((const uint8_t *)d)[i]; break;
    case PARE_DT_INT16: *re = ((const int16_t *)d)[i]; break;
    case PARE_DT_UINT16: *re = ((const uint16_t *)d)[i]; break;
    case PARE_DT_INT32: *re = ((const int32_t *)d)[i]; break;
    case PARE_DT_UINT32: *re = ((const uint32_t *)d)[i]; break;
    case PARE_DT_INT64: *re = (double)((const int64_t *)d)[i]; break;
    case PARE_DT_UINT64: *re = (double)((const uint64_t *)d)[i]; break;
    case PARE_DT_COMPLEX64:
        *re = ((const float *)d)[2 * i];
        *im = ((const float *)d)[2 * i + 1];
        break;
    case PARE_DT_COMPLEX128:
        *re = ((const double *)d)[2 * i];
        *im = ((const double *)d)[2 * i + 1];
        break;
    default: fail_msg("dtype %d", t->dtype);
    }
}

/* t holds value(first + i) at C-order index i, plus offset. */
static void check_values(const pare_tensor *t, uint64_t first, double offset)
{
    uint64_t n = pare_tensor_numel(t);
    for (uint64_t i = 0; i < n; i++) {
        double er, ei, gr = 0, gi = 0;
        expected(t->dtype, first + i, &er, &ei);
        element(t, i, &gr, &gi);
        if (gr != er + offset || gi != ei)
            fail_msg("element %llu: got %g%+gi, want %g%+gi", (unsigned long long)i, gr, gi,
                     er + offset, ei);
    }
}

static void check_shape(const pare_tensor *t, int dtype, int rank, const int64_t *dims)
{
    assert_int_equal(t->dtype, dtype);
    assert_int_equal(t->rank, rank);
    for (int i = 0; i < rank; i++)
        assert_int_equal(t->dims[i], dims[i]);
}

#define ASSERT_OK(call)                                                                         \
    do {                                                                                        \
        pare_status st_ = (call);                                                               \
        if (st_ != PARE_OK)                                                                     \
            fail_msg("%s: %s", #call, err.msg);                                                 \
    } while (0)

#define ASSERT_FAILS(call, want_status, substr)                                                 \
    do {                                                                                        \
        pare_status st_ = (call);                                                               \
        if (st_ != (want_status) || !strstr(err.msg, (substr)))                                 \
            fail_msg("%s: got status %d '%s', want %d with '%s'", #call, st_, err.msg,          \
                     (want_status), (substr));                                                  \
    } while (0)

/* ---- npy reading ---- */

static void test_npy_all_dtypes(void **state)
{
    (void)state;
    pare_error err;
    const int64_t dims[2] = {3, 4};
    for (size_t k = 0; k < N_TYPES; k++) {
        char path[128];
        for (int be = 0; be <= (int)types[k].has_be; be++) {
            snprintf(path, sizeof path, FX "%s_%s.npy", be ? "be" : "le", types[k].code);
            pare_tensor *t = NULL;
            ASSERT_OK(pare_npy_read(path, &t, &err));
            check_shape(t, types[k].dtype, 2, dims);
            check_values(t, 0, 0);
            assert_null(t->name);
            pare_tensor_free(t);
        }
    }
}

static void test_npy_info(void **state)
{
    (void)state;
    pare_error err;
    pare_npy_info info;
    ASSERT_OK(pare_npy_read_info(FX "be_i8.npy", &info, &err));
    assert_int_equal(info.version, 1);
    assert_int_equal(info.dtype, PARE_DT_INT64);
    assert_true(info.big_endian);
    assert_false(info.fortran_order);
    assert_int_equal(info.rank, 2);
    assert_int_equal(info.data_offset, 128);
    assert_int_equal(info.nbytes, 96);
    ASSERT_OK(pare_npy_read_info(FX "v2_f4.npy", &info, &err));
    assert_int_equal(info.version, 2);
    ASSERT_OK(pare_npy_read_info(FX "v3_f4.npy", &info, &err));
    assert_int_equal(info.version, 3);
}

static void test_npy_versions(void **state)
{
    (void)state;
    pare_error err;
    const char *files[] = {FX "v2_f4.npy", FX "v3_f4.npy"};
    const int64_t dims[2] = {3, 4};
    for (int i = 0; i < 2; i++) {
        pare_tensor *t;
        ASSERT_OK(pare_npy_read(files[i], &t, &err));
        check_shape(t, PARE_DT_FLOAT, 2, dims);
        check_values(t, 0, 0);
        pare_tensor_free(t);
    }
}

static void test_npy_fortran(void **state)
{
    (void)state;
    pare_error err;
    pare_tensor *t;
    ASSERT_OK(pare_npy_read(FX "fortran_i4.npy", &t, &err));
    check_shape(t, PARE_DT_INT32, 3, (int64_t[]){2, 3, 4});
    check_values(t, 0, 0);
    pare_tensor_free(t);
    ASSERT_OK(pare_npy_read(FX "fortran_be_f8.npy", &t, &err));
    check_shape(t, PARE_DT_DOUBLE, 2, (int64_t[]){2, 3});
    check_values(t, 0, 0);
    pare_tensor_free(t);
}

static void test_npy_scalar_and_empty(void **state)
{
    (void)state;
    pare_error err;
    pare_tensor *t;
    ASSERT_OK(pare_npy_read(FX "scalar_f4.npy", &t, &err));
    assert_int_equal(t->rank, 0);
    assert_int_equal(t->nbytes, 4);
    assert_true(*(float *)t->data == 3.5f);
    pare_tensor_free(t);
    ASSERT_OK(pare_npy_read(FX "empty_0x3_f4.npy", &t, &err));
    check_shape(t, PARE_DT_FLOAT, 2, (int64_t[]){0, 3});
    assert_int_equal(t->nbytes, 0);
    pare_tensor_free(t);
    ASSERT_OK(pare_npy_read(FX "empty_2x0x5_i8.npy", &t, &err));
    check_shape(t, PARE_DT_INT64, 3, (int64_t[]){2, 0, 5});
    pare_tensor_free(t);
}

/* Our writer gives numpy's bytes: for little-endian fixtures the file
 * itself, for big-endian and fortran ones the little-endian C twin. */
static void test_npy_write_matches_numpy(void **state)
{
    (void)state;
    pare_error err;
    const char *same[] = {"scalar_f4", "empty_0x3_f4", "empty_2x0x5_i8", "vec5_u1"};
    for (size_t k = 0; k < N_TYPES + 4; k++) {
        char path[128];
        if (k < N_TYPES)
            snprintf(path, sizeof path, FX "le_%s.npy", types[k].code);
        else
            snprintf(path, sizeof path, FX "%s.npy", same[k - N_TYPES]);
        size_t flen, blen;
        unsigned char *file = slurp(path, &flen);
        pare_tensor *t;
        ASSERT_OK(pare_npy_read_buffer(file, flen, &t, &err));
        void *buf;
        ASSERT_OK(pare_npy_write_buffer(t, &buf, &blen, &err));
        assert_int_equal(blen, flen);
        assert_memory_equal(buf, file, flen);
        free(buf);
        if (k < N_TYPES && types[k].has_be) {
            pare_tensor *b;
            snprintf(path, sizeof path, FX "be_%s.npy", types[k].code);
            ASSERT_OK(pare_npy_read(path, &b, &err));
            ASSERT_OK(pare_npy_write_buffer(b, &buf, &blen, &err));
            assert_int_equal(blen, flen);
            assert_memory_equal(buf, file, flen);
            free(buf);
            pare_tensor_free(b);
        }
        pare_tensor_free(t);
        free(file);
    }
}

static void test_npy_write_file(void **state)
{
    (void)state;
    pare_error err;
    pare_tensor *t, *u;
    ASSERT_OK(pare_npy_read(FX "fortran_i4.npy", &t, &err));
    const char *out = tmp_path("w.npy");
    ASSERT_OK(pare_npy_write(out, t, &err));
    ASSERT_OK(pare_npy_read(out, &u, &err));
    assert_int_equal(u->nbytes, t->nbytes);
    assert_memory_equal(u->data, t->data, t->nbytes);
    assert_int_equal(count_hidden(), 0);
    pare_tensor_free(u);
    /* an unwritable target leaves nothing behind */
    ASSERT_FAILS(pare_npy_write(tmp_path("no/such/dir.npy"), t, &err), PARE_ERR_IO, "no/such");
    pare_tensor_free(t);

    /* dtypes without a numpy twin are refused, with a hint */
    const int refused[] = {PARE_DT_BFLOAT16, PARE_DT_FLOAT8E4M3FN, PARE_DT_INT4, PARE_DT_STRING};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        ASSERT_OK(pare_tensor_new("x", refused[i], 1, (int64_t[]){4}, &t, &err));
        ASSERT_FAILS(pare_npy_write(tmp_path("bad.npy"), t, &err), PARE_ERR_UNSUPPORTED,
                     "npy has no dtype for");
        void *buf;
        size_t len;
        assert_int_equal(pare_npy_write_buffer(t, &buf, &len, &err), PARE_ERR_UNSUPPORTED);
        pare_tensor_free(t);
    }
    ASSERT_FAILS(pare_npy_write(tmp_path("bad.npy"), NULL, &err), PARE_ERR_ARG, "NULL");
    assert_int_equal(count_hidden(), 0);
    assert_int_equal(access(tmp_path("bad.npy"), F_OK), -1);
}

/* An .npy from a dict text and data. */
static unsigned char *make_npy(int major, const char *dict, size_t datalen, size_t *len)
{
    size_t dl = strlen(dict), pre = major == 1 ? 10 : 12;
    unsigned char *b = calloc(1, pre + dl + datalen + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    b[8] = (unsigned char)dl;
    b[9] = (unsigned char)(dl >> 8);
    memcpy(b + pre, dict, dl);
    *len = pre + dl + datalen;
    return b;
}

static void test_npy_bad_headers(void **state)
{
    (void)state;
    pare_error err;
    pare_tensor *t = NULL;
    struct {
        const char *dict;
        size_t data;
        pare_status st;
        const char *msg;
    } cases[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, -1), }", 0, PARE_ERR_FORMAT,
         "header: shape (3, -1) has a negative dim"},
        {"{'descr': '<f4', 'fortran_order': False, }", 0, PARE_ERR_FORMAT, "missing key 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 4, PARE_ERR_FORMAT,
         "unknown key 'x'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}", 4,
         PARE_ERR_FORMAT, "duplicate key"},
        {"{'descr': '<V2', 'fortran_order': False, 'shape': (1,)}", 2, PARE_ERR_UNSUPPORTED,
         "'<V2'"},
        {"{'descr': '|f4', 'fortran_order': False, 'shape': (1,)}", 4, PARE_ERR_FORMAT,
         "needs a byte order"},
        {"{'descr': '<U8', 'fortran_order': False, 'shape': (1,)}", 32, PARE_ERR_UNSUPPORTED,
         "not supported"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}", 4,
         PARE_ERR_UNSUPPORTED, "structured"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3)}", 12, PARE_ERR_FORMAT,
         "not a tuple"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}", 12, PARE_ERR_FORMAT,
         "fortran_order"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16)}", 0,
         PARE_ERR_LIMIT, "overflow"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", 0,
         PARE_ERR_LIMIT, "too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000,)}", 8, PARE_ERR_FORMAT,
         "data: truncated (shape (1000000,) needs 4000000 bytes, 8 present)"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 9, PARE_ERR_FORMAT,
         "1 bytes after the array"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", 8, PARE_ERR_FORMAT,
         "after the dict"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", 8, PARE_ERR_FORMAT,
         "expected ',' or '}'"},
        {"{'descr: '<f4', 'fortran_order': False, 'shape': (2,)}", 8, PARE_ERR_FORMAT, "header"},
        {"", 0, PARE_ERR_FORMAT, "not a dict"},
        {"[]", 0, PARE_ERR_FORMAT, "not a dict"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
         "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
         "1,1,1)}", 4, PARE_ERR_LIMIT, "more than 64 dims"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        unsigned char *b = make_npy(1, cases[i].dict, cases[i].data, &len);
        pare_status st = pare_npy_read_buffer(b, len, &t, &err);
        if (st != cases[i].st || !strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: status %d '%s', want %d '%s'", i, st, err.msg, cases[i].st,
                     cases[i].msg);
        free(b);
    }
    /* accepted oddities: double quotes, no trailing comma, Python 2 longs, newlines */
    const char *good[] = {
        "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2L,)}",
        "{'shape': ( 2 , ) ,\n'fortran_order':False,'descr':'<f4'}\n  \n",
    };
    for (size_t i = 0; i < 2; i++) {
        size_t len;
        unsigned char *b = make_npy(1, good[i], 8, &len);
        ASSERT_OK(pare_npy_read_buffer(b, len, &t, &err));
        assert_int_equal(t->dims[0], 2);
        pare_tensor_free(t);
        free(b);
    }
    /* versions and magic */
    size_t len;
    unsigned char *b = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': ()}", 4, &len);
    b[6] = 4;
    ASSERT_FAILS(pare_npy_read_buffer(b, len, &t, &err), PARE_ERR_UNSUPPORTED, "version 4.0");
    b[6] = 1;
    b[0] = 'x';
    ASSERT_FAILS(pare_npy_read_buffer(b, len, &t, &err), PARE_ERR_FORMAT, "bad magic");
    b[0] = 0x93;
    b[8] = 0xff; /* header length past the end */
    ASSERT_FAILS(pare_npy_read_buffer(b, len, &t, &err), PARE_ERR_FORMAT, "header: truncated");
    free(b);
    /* a v2 header claiming 2 GiB */
    b = make_npy(2, "{}", 0, &len);
    b[8] = 0;
    b[9] = 0;
    b[10] = 0;
    b[11] = 0x80;
    ASSERT_FAILS(pare_npy_read_buffer(b, len, &t, &err), PARE_ERR_LIMIT, "over the limit");
    free(b);
    ASSERT_FAILS(pare_npy_read(FX "no_such.npy", &t, &err), PARE_ERR_IO, "no_such.npy");
    ASSERT_FAILS(pare_npy_read(FX, &t, &err), PARE_ERR_IO, "directory");
    ASSERT_FAILS(pare_npy_read(FX "stored.npz", &t, &err), PARE_ERR_FORMAT,
                 FX "stored.npz: not an npy file");
}

/* ---- npz reading ---- */

static void check_npz_abcs(const char *path)
{
    pare_error err;
    pare_npz *z;
    ASSERT_OK(pare_npz_open(path, &z, &err));
    assert_int_equal(pare_npz_count(z), 4);
    const char *names[] = {"a", "b", "c", "s"};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(pare_npz_name(z, i), names[i]);
        assert_int_equal(pare_npz_find(z, names[i]), (int64_t)i);
    }
    assert_int_equal(pare_npz_find(z, "b.npy"), 1);
    assert_int_equal(pare_npz_find(z, "zz"), -1);
    assert_null(pare_npz_name(z, 4));
    pare_tensor *t;
    ASSERT_OK(pare_npz_read(z, 0, &t, &err));
    assert_string_equal(t->name, "a");
    check_shape(t, PARE_DT_FLOAT, 2, (int64_t[]){3, 4});
    check_values(t, 0, 0);
    pare_tensor_free(t);
    ASSERT_OK(pare_npz_read(z, 1, &t, &err));
    check_shape(t, PARE_DT_INT64, 1, (int64_t[]){5});
    check_values(t, 0, 0);
    pare_tensor_free(t);
    ASSERT_OK(pare_npz_read(z, 2, &t, &err));
    check_shape(t, PARE_DT_BOOL, 1, (int64_t[]){7});
    check_values(t, 0, 0);
    pare_tensor_free(t);
    ASSERT_OK(pare_npz_read(z, 3, &t, &err));
    assert_int_equal(t->rank, 0);
    assert_true(*(double *)t->data == 2.0);
    pare_tensor_free(t);
    /* again, and rows, in any order */
    for (int rep = 0; rep < 2; rep++) {
        ASSERT_OK(pare_npz_read_rows(z, 0, 1, 2, &t, &err));
        check_shape(t, PARE_DT_FLOAT, 2, (int64_t[]){2, 4});
        check_values(t, 4, 0);
        pare_tensor_free(t);
        ASSERT_OK(pare_npz_read_rows(z, 0, 0, 1, &t, &err));
        check_values(t, 0, 0);
        pare_tensor_free(t);
        ASSERT_OK(pare_npz_read_rows(z, 0, 3, 0, &t, &err));
        check_shape(t, PARE_DT_FLOAT, 2, (int64_t[]){0, 4});
        pare_tensor_free(t);
    }
    pare_npy_info info;
    ASSERT_OK(pare_npz_info(z, 1, &info, &err));
    assert_int_equal(info.dtype, PARE_DT_INT64);
    ASSERT_FAILS(pare_npz_read_rows(z, 0, 2, 2, &t, &err), PARE_ERR_ARG, "outside");
    ASSERT_FAILS(pare_npz_read_rows(z, 3, 0, 1, &t, &err), PARE_ERR_ARG, "scalar");
    ASSERT_FAILS(pare_npz_read(z, 9, &t, &err), PARE_ERR_ARG, "index");
    pare_npz_close(z);
}

static void test_npz_read(void **state)
{
    (void)state;
    check_npz_abcs(FX "stored.npz");
    check_npz_abcs(FX "deflated.npz");
    pare_npz_close(NULL);
}

static void test_npz_zip64_and_odd(void **state)
{
    (void)state;
    pare_error err;
    pare_npz *z;
    pare_tensor *t;
    ASSERT_OK(pare_npz_open(FX "zip64_forced.npz", &z, &err));
    assert_int_equal(pare_npz_count(z), 2);
    ASSERT_OK(pare_npz_read(z, 0, &t, &err));
    check_shape(t, PARE_DT_INT32, 2, (int64_t[]){2, 3});
    check_values(t, 0, 0);
    pare_tensor_free(t);
    ASSERT_OK(pare_npz_read(z, 1, &t, &err));
    check_values(t, 0, 0);
    pare_tensor_free(t);
    pare_npz_close(z);

    ASSERT_OK(pare_npz_open(FX "odd.npz", &z, &err));
    int64_t be = pare_npz_find(z, "be"), f = pare_npz_find(z, "f");
    assert_true(be >= 0 && f >= 0);
    ASSERT_OK(pare_npz_read(z, (size_t)be, &t, &err));
    check_shape(t, PARE_DT_INT16, 2, (int64_t[]){2, 3});
    check_values(t, 0, 0);
    pare_tensor_free(t);
    ASSERT_OK(pare_npz_read_rows(z, (size_t)be, 1, 1, &t, &err));
    check_values(t, 3, 0);
    pare_tensor_free(t);
    ASSERT_OK(pare_npz_read(z, (size_t)f, &t, &err));
    check_shape(t, PARE_DT_FLOAT, 2, (int64_t[]){4, 6});
    check_values(t, 0, 0);
    pare_tensor_free(t);
    for (uint64_t r = 0; r < 4; r++) {
        ASSERT_OK(pare_npz_read_rows(z, (size_t)f, r, 1, &t, &err));
        check_shape(t, PARE_DT_FLOAT, 2, (int64_t[]){1, 6});
        check_values(t, r * 6, 0);
        pare_tensor_free(t);
    }
    pare_npz_close(z);

    ASSERT_FAILS(pare_npz_open(FX "le_f4.npy", &z, &err), PARE_ERR_FORMAT,
                 FX "le_f4.npy: not a zip archive");
    ASSERT_FAILS(pare_npz_open(FX "nothing.npz", &z, &err), PARE_ERR_IO, "nothing.npz");
    ASSERT_FAILS(pare_npz_open("-", &z, &err), PARE_ERR_UNSUPPORTED, "stdin");
}

/* Offset of the n-th npy magic in buf. */
static size_t find_magic(const unsigned char *b, size_t len, int nth)
{
    for (size_t i = 0; i + 6 <= len; i++)
        if (memcmp(b + i, "\x93NUMPY", 6) == 0 && nth-- == 0)
            return i;
    fail_msg("no magic");
    return 0;
}

static void test_npz_crc(void **state)
{
    (void)state;
    pare_error err;
    pare_npz *z;
    pare_tensor *t;
    size_t len;
    unsigned char *b = slurp(FX "stored.npz", &len);
    size_t data = find_magic(b, len, 0) + 128; /* member a: 3x4 float32 after 128 header bytes */
    b[data + 5] ^= 0x40;
    const char *bad = tmp_path("crc.npz");
    spit(bad, b, len);
    ASSERT_OK(pare_npz_open(bad, &z, &err));
    ASSERT_FAILS(pare_npz_read(z, 0, &t, &err), PARE_ERR_FORMAT,
                 "crc.npz: member 'a.npy': CRC-32 mismatch");
    /* a forward pass of row reads reaches the end and checks it too */
    ASSERT_OK(pare_npz_read_rows(z, 0, 0, 2, &t, &err));
    pare_tensor_free(t);
    ASSERT_FAILS(pare_npz_read_rows(z, 0, 2, 1, &t, &err), PARE_ERR_FORMAT, "CRC-32 mismatch");
    /* other members are fine */
    ASSERT_OK(pare_npz_read(z, 1, &t, &err));
    pare_tensor_free(t);
    pare_npz_close(z);
    free(b);

    /* any changed byte of a deflated member's data is caught (inflate or CRC) */
    b = slurp(FX "deflated.npz", &len);
    size_t start = 30 + 5 + 20, csize = 103; /* member a.npy, see unzip -v */
    for (size_t off = start; off < start + csize; off++) {
        b[off] ^= 0x10;
        spit(bad, b, len);
        b[off] ^= 0x10;
        ASSERT_OK(pare_npz_open(bad, &z, &err));
        if (pare_npz_read(z, 0, &t, &err) == PARE_OK)
            fail_msg("a changed byte at %zu went unnoticed", off);
        pare_npz_close(z);
    }
    free(b);
}

/* ---- robustness: truncation and byte flips never crash ---- */

static const char *all_fixtures[] = {
    "le_f4.npy", "le_c16.npy", "be_i8.npy", "le_b1.npy", "v2_f4.npy", "v3_f4.npy",
    "fortran_i4.npy", "fortran_be_f8.npy", "scalar_f4.npy", "empty_0x3_f4.npy",
    "stored.npz", "deflated.npz", "zip64_forced.npz", "odd.npz", "ds_single.npz", "tensor_f4.pb",
};

static void try_all(const char *path, bool must_fail)
{
    pare_error err;
    pare_tensor *t;
    pare_npz *z;
    if (pare_tensor_read_file(path, &t, &err) == PARE_OK) {
        if (must_fail && memcmp(path + strlen(path) - 4, ".npy", 4) == 0)
            fail_msg("%s read", path);
        pare_tensor_free(t);
    } else {
        assert_true(err.msg[0] != '\0');
        assert_null(strchr(err.msg, '\n'));
    }
    if (pare_npz_open(path, &z, &err) == PARE_OK) {
        for (size_t i = 0; i < pare_npz_count(z); i++) {
            if (pare_npz_read(z, i, &t, &err) == PARE_OK)
                pare_tensor_free(t);
            if (pare_npz_read_rows(z, i, 0, 1, &t, &err) == PARE_OK)
                pare_tensor_free(t);
        }
        pare_npz_close(z);
    }
}

static void test_truncated_and_flipped(void **state)
{
    (void)state;
    const char *p = tmp_path("cut.bin");
    for (size_t f = 0; f < sizeof all_fixtures / sizeof all_fixtures[0]; f++) {
        char src[128];
        size_t len;
        snprintf(src, sizeof src, FX "%s", all_fixtures[f]);
        unsigned char *b = slurp(src, &len);
        for (size_t cut = 0; cut < len; cut++) {
            pare_error err;
            pare_tensor *t;
            /* npy: every truncation fails, from memory and from a file */
            if (strstr(src, ".npy")) {
                assert_int_not_equal(pare_npy_read_buffer(b, cut, &t, &err), PARE_OK);
                assert_int_equal(err.status, PARE_ERR_FORMAT);
            }
            if (cut % 7 == 0 || len < 300 || cut + 64 > len) {
                spit(p, b, cut);
                try_all(p, true);
            }
        }
        for (size_t off = 0; off < len; off++) {
            unsigned char keep = b[off];
            b[off] = (unsigned char)(keep ^ (off & 1 ? 0xff : 0x01));
            if (strstr(src, ".npy")) {
                pare_error err;
                pare_tensor *t;
                if (pare_npy_read_buffer(b, len, &t, &err) == PARE_OK)
                    pare_tensor_free(t);
            }
            /* through a file: every byte of headers and directory, some of the data */
            if (len < 400 || off < 150 || off + 250 > len || off % 5 == 0) {
                spit(p, b, len);
                try_all(p, false);
            }
            b[off] = keep;
        }
        free(b);
    }
}

/* ---- npz writing ---- */

static void write_sample_npz(const char *path, bool compress)
{
    pare_error err;
    pare_npz_writer *w;
    pare_tensor *t;
    ASSERT_OK(pare_npz_writer_open(path, compress, &w, &err));
    for (size_t k = 0; k < N_TYPES; k++) {
        char fx[128];
        snprintf(fx, sizeof fx, FX "le_%s.npy", types[k].code);
        ASSERT_OK(pare_npy_read(fx, &t, &err));
        ASSERT_OK(pare_npz_writer_add(w, types[k].code, t, &err));
        pare_tensor_free(t);
    }
    ASSERT_OK(pare_npy_read(FX "scalar_f4.npy", &t, &err));
    ASSERT_OK(pare_npz_writer_add(w, "scalar", t, &err));
    pare_tensor_free(t);
    ASSERT_OK(pare_npy_read(FX "empty_2x0x5_i8.npy", &t, &err));
    ASSERT_OK(pare_npz_writer_add(w, "empty", t, &err));
    pare_tensor_free(t);
    /* a growing array of rows of 3 floats: value(i) at flat index i */
    ASSERT_OK(pare_npz_writer_begin_array(w, "rows", PARE_DT_FLOAT, 1, (int64_t[]){3}, &err));
    float buf[3 * 1000];
    for (int i = 0; i < 3 * 1000; i++)
        buf[i] = (float)((i - 5) * 0.25);
    ASSERT_OK(pare_npz_writer_append(w, buf, 2, &err));
    ASSERT_OK(pare_npz_writer_append(w, buf + 6, 0, &err));
    ASSERT_OK(pare_npz_writer_append(w, buf + 6, 998, &err));
    ASSERT_OK(pare_npz_writer_end_array(w, &err));
    /* by tensors, and one that stays empty */
    ASSERT_OK(pare_npz_writer_begin_array(w, "by_tensor", PARE_DT_INT64, 0, NULL, &err));
    ASSERT_OK(pare_npy_read(FX "le_i8.npy", &t, &err));
    ASSERT_FAILS(pare_npz_writer_append_tensor(w, t, &err), PARE_ERR_ARG, "cannot append");
    pare_tensor_free(t);
    for (int part = 0; part < 3; part++) {
        ASSERT_OK(pare_tensor_new(NULL, PARE_DT_INT64, 1, (int64_t[]){part + 1}, &t, &err));
        for (int i = 0; i <= part; i++)
            ((int64_t *)t->data)[i] = part * 10 + i;
        ASSERT_OK(pare_npz_writer_append_tensor(w, t, &err));
        pare_tensor_free(t);
    }
    ASSERT_OK(pare_npz_writer_end_array(w, &err));
    ASSERT_OK(pare_npz_writer_begin_array(w, "none", PARE_DT_UINT8, 2, (int64_t[]){2, 2}, &err));
    ASSERT_OK(pare_npz_writer_end_array(w, &err));
    ASSERT_OK(pare_npz_writer_close(w, &err));
}

static void check_sample_npz(const char *path)
{
    pare_error err;
    pare_npz *z;
    pare_tensor *t;
    ASSERT_OK(pare_npz_open(path, &z, &err));
    assert_int_equal(pare_npz_count(z), N_TYPES + 5);
    for (size_t k = 0; k < N_TYPES; k++) {
        ASSERT_OK(pare_npz_read(z, k, &t, &err));
        assert_string_equal(t->name, types[k].code);
        check_shape(t, types[k].dtype, 2, (int64_t[]){3, 4});
        check_values(t, 0, 0);
        pare_tensor_free(t);
    }
    ASSERT_OK(pare_npz_read(z, (size_t)pare_npz_find(z, "scalar"), &t, &err));
    assert_int_equal(t->rank, 0);
    pare_tensor_free(t);
    ASSERT_OK(pare_npz_read(z, (size_t)pare_npz_find(z, "empty"), &t, &err));
    check_shape(t, PARE_DT_INT64, 3, (int64_t[]){2, 0, 5});
    pare_tensor_free(t);
    size_t rows = (size_t)pare_npz_find(z, "rows");
    ASSERT_OK(pare_npz_read(z, rows, &t, &err));
    check_shape(t, PARE_DT_FLOAT, 2, (int64_t[]){1000, 3});
    check_values(t, 0, 0);
    pare_tensor_free(t);
    for (uint64_t r = 0; r < 1000; r += 100) { /* forward row reads */
        ASSERT_OK(pare_npz_read_rows(z, rows, r, 100, &t, &err));
        check_values(t, r * 3, 0);
        pare_tensor_free(t);
    }
    ASSERT_OK(pare_npz_read_rows(z, rows, 7, 1, &t, &err)); /* and back */
    check_values(t, 21, 0);
    pare_tensor_free(t);
    ASSERT_OK(pare_npz_read(z, (size_t)pare_npz_find(z, "by_tensor"), &t, &err));
    check_shape(t, PARE_DT_INT64, 1, (int64_t[]){6});
    const int64_t want[6] = {0, 10, 11, 20, 21, 22};
    assert_memory_equal(t->data, want, sizeof want);
    pare_tensor_free(t);
    ASSERT_OK(pare_npz_read(z, (size_t)pare_npz_find(z, "none"), &t, &err));
    check_shape(t, PARE_DT_UINT8, 3, (int64_t[]){0, 2, 2});
    pare_tensor_free(t);
    pare_npz_close(z);
}

static void test_npz_write_roundtrip(void **state)
{
    (void)state;
    for (int c = 0; c < 2; c++) {
        const char *a = tmp_path(c ? "w_deflated.npz" : "w_stored.npz");
        const char *b = tmp_path(c ? "w_deflated2.npz" : "w_stored2.npz");
        write_sample_npz(a, c);
        check_sample_npz(a);
        /* deterministic: the same calls give the same bytes */
        write_sample_npz(b, c);
        size_t la, lb;
        unsigned char *ba = slurp(a, &la), *bb = slurp(b, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(ba, bb, la);
        free(ba);
        free(bb);
        /* members of the same array are numpy's np.save bytes */
        pare_error err;
        pare_npz *z;
        pare_npy_info info;
        ASSERT_OK(pare_npz_open(a, &z, &err));
        ASSERT_OK(pare_npz_info(z, (size_t)pare_npz_find(z, "rows"), &info, &err));
        assert_int_equal(info.data_offset, 128);
        pare_npz_close(z);
    }
    assert_int_equal(count_hidden(), 0);
}

static void test_npz_writer_errors(void **state)
{
    (void)state;
    pare_error err;
    pare_npz_writer *w;
    pare_tensor *t, *bf;
    ASSERT_FAILS(pare_npz_writer_open("-", false, &w, &err), PARE_ERR_UNSUPPORTED, "stdout");
    ASSERT_FAILS(pare_npz_writer_open(tmp_path("no/dir/x.npz"), false, &w, &err), PARE_ERR_IO,
                 "temporary");
    ASSERT_OK(pare_npy_read(FX "le_f4.npy", &t, &err));
    ASSERT_OK(pare_tensor_new("b", PARE_DT_BFLOAT16, 1, (int64_t[]){2}, &bf, &err));
    const char *out = tmp_path("e.npz");
    ASSERT_OK(pare_npz_writer_open(out, true, &w, &err));
    ASSERT_OK(pare_npz_writer_add(w, "x", t, &err));
    ASSERT_FAILS(pare_npz_writer_add(w, "x", t, &err), PARE_ERR_ARG, "'x.npy' written twice");
    ASSERT_FAILS(pare_npz_writer_add(w, "b", bf, &err), PARE_ERR_UNSUPPORTED, "bfloat16");
    ASSERT_FAILS(pare_npz_writer_add(w, "", t, &err), PARE_ERR_ARG, "name");
    ASSERT_FAILS(pare_npz_writer_append(w, t->data, 1, &err), PARE_ERR_ARG, "no array is open");
    ASSERT_FAILS(pare_npz_writer_end_array(w, &err), PARE_ERR_ARG, "no array is open");
    ASSERT_OK(pare_npz_writer_begin_array(w, "g", PARE_DT_FLOAT, 1, (int64_t[]){4}, &err));
    ASSERT_FAILS(pare_npz_writer_add(w, "y", t, &err), PARE_ERR_ARG, "still open");
    ASSERT_OK(pare_npz_writer_append_tensor(w, t, &err));
    /* the writer is still fine after refused calls */
    ASSERT_OK(pare_npz_writer_end_array(w, &err));
    ASSERT_OK(pare_npz_writer_close(w, &err));
    pare_npz *z;
    ASSERT_OK(pare_npz_open(out, &z, &err));
    assert_int_equal(pare_npz_count(z), 2);
    pare_npz_close(z);

    /* close with an array open: refused, nothing written, no temporary left */
    const char *out2 = tmp_path("e2.npz");
    ASSERT_OK(pare_npz_writer_open(out2, false, &w, &err));
    ASSERT_OK(pare_npz_writer_begin_array(w, "g", PARE_DT_FLOAT, 1, (int64_t[]){4}, &err));
    ASSERT_FAILS(pare_npz_writer_close(w, &err), PARE_ERR_ARG, "still open");
    assert_int_equal(access(out2, F_OK), -1);
    /* abort */
    ASSERT_OK(pare_npz_writer_open(out2, false, &w, &err));
    ASSERT_OK(pare_npz_writer_add(w, "x", t, &err));
    assert_int_equal(count_hidden(), 1);
    pare_npz_writer_abort(w);
    pare_npz_writer_abort(NULL);
    assert_int_equal(access(out2, F_OK), -1);
    assert_int_equal(count_hidden(), 0);
    pare_tensor_free(t);
    pare_tensor_free(bf);
}

/* More than 65535 members: the zip64 end of central directory. */
static void test_npz_many_members(void **state)
{
    (void)state;
    pare_error err;
    pare_npz_writer *w;
    pare_tensor *t;
    const char *out = tmp_path("many.npz");
    ASSERT_OK(pare_tensor_new(NULL, PARE_DT_INT32, 0, NULL, &t, &err));
    ASSERT_OK(pare_npz_writer_open(out, false, &w, &err));
    for (int32_t i = 0; i < 70000; i++) {
        char name[32];
        snprintf(name, sizeof name, "m%d", i);
        *(int32_t *)t->data = i;
        ASSERT_OK(pare_npz_writer_add(w, name, t, &err));
    }
    ASSERT_OK(pare_npz_writer_close(w, &err));
    pare_tensor_free(t);
    pare_npz *z;
    ASSERT_OK(pare_npz_open(out, &z, &err));
    assert_int_equal(pare_npz_count(z), 70000);
    int64_t k = pare_npz_find(z, "m69999");
    assert_int_equal(k, 69999);
    ASSERT_OK(pare_npz_read(z, (size_t)k, &t, &err));
    assert_int_equal(*(int32_t *)t->data, 69999);
    pare_tensor_free(t);
    for (size_t i = 0; i < 70000; i += 3) { /* many cursors: old ones are dropped */
        pare_npy_info info;
        ASSERT_OK(pare_npz_info(z, i, &info, &err));
        assert_int_equal(info.rank, 0);
    }
    ASSERT_OK(pare_npz_read(z, 12345, &t, &err));
    assert_int_equal(*(int32_t *)t->data, 12345);
    pare_tensor_free(t);
    pare_npz_close(z);
    remove(out);
}

/* ---- tensor files ---- */

static void test_tensor_files(void **state)
{
    (void)state;
    pare_error err;
    pare_tensor *t, *u;
    ASSERT_OK(pare_tensor_read_file(FX "tensor_f4.pb", &t, &err));
    assert_string_equal(t->name, "w");
    check_shape(t, PARE_DT_FLOAT, 2, (int64_t[]){2, 3});
    check_values(t, 0, 0);
    const char *pb = tmp_path("t.pb"), *npy = tmp_path("t.npy");
    ASSERT_OK(pare_tensor_write_file(pb, t, PARE_TENSOR_FORMAT_AUTO, &err));
    ASSERT_OK(pare_tensor_write_file(npy, t, PARE_TENSOR_FORMAT_AUTO, &err));
    ASSERT_OK(pare_tensor_read_file(pb, &u, &err));
    assert_string_equal(u->name, "w");
    assert_memory_equal(u->data, t->data, t->nbytes);
    pare_tensor_free(u);
    ASSERT_OK(pare_tensor_read_file(npy, &u, &err));
    assert_null(u->name);
    assert_memory_equal(u->data, t->data, t->nbytes);
    pare_tensor_free(u);
    pare_tensor_free(t);
    ASSERT_OK(pare_tensor_read_file(FX "be_u4.npy", &t, &err));
    check_values(t, 0, 0);
    pare_tensor_free(t);
    ASSERT_FAILS(pare_tensor_read_file(FX "missing.pb", &t, &err), PARE_ERR_IO, "missing.pb");
    assert_int_not_equal(pare_tensor_read_file(FX "make_fixtures.py", &t, &err), PARE_OK);
    assert_non_null(strstr(err.msg, "make_fixtures.py: "));
}

/* ---- datasets ---- */

static void test_dataset_npz(void **state)
{
    (void)state;
    pare_error err;
    pare_dataset *ds;
    pare_tensor **b;
    int64_t got;
    ASSERT_OK(pare_dataset_open(FX "ds_single.npz", &ds, &err));
    assert_int_equal(pare_dataset_get_kind(ds), PARE_DATASET_NPZ);
    assert_int_equal(pare_dataset_count(ds), 5);
    assert_int_equal(pare_dataset_num_arrays(ds), 2);
    const pare_dataset_array *x = pare_dataset_array_at(ds, 0), *y = pare_dataset_array_at(ds, 1);
    assert_string_equal(x->name, "x");
    assert_int_equal(x->dtype, PARE_DT_FLOAT);
    assert_int_equal(x->rank, 1);
    assert_int_equal(x->dims[0], 3);
    assert_string_equal(y->name, "y");
    assert_int_equal(y->rank, 0);
    assert_null(pare_dataset_array_at(ds, 2));
    ASSERT_OK(pare_dataset_read(ds, 1, 3, &b, &err));
    check_shape(b[0], PARE_DT_FLOAT, 2, (int64_t[]){3, 3});
    check_values(b[0], 3, 0);
    assert_string_equal(b[1]->name, "y");
    check_shape(b[1], PARE_DT_INT64, 1, (int64_t[]){3});
    check_values(b[1], 1, 0);
    pare_tensors_free(b, 2);
    int64_t seen = 0;
    for (;;) {
        ASSERT_OK(pare_dataset_next(ds, 2, &b, &got, &err));
        if (!got)
            break;
        assert_true(got == 2 || (seen == 4 && got == 1));
        check_values(b[0], (uint64_t)seen * 3, 0);
        check_values(b[1], (uint64_t)seen, 0);
        pare_tensors_free(b, 2);
        seen += got;
    }
    assert_null(b);
    assert_int_equal(seen, 5);
    pare_dataset_rewind(ds);
    ASSERT_OK(pare_dataset_next(ds, 100, &b, &got, &err));
    assert_int_equal(got, 5);
    pare_tensors_free(b, 2);
    ASSERT_FAILS(pare_dataset_read(ds, 4, 2, &b, &err), PARE_ERR_ARG, "outside");
    ASSERT_FAILS(pare_dataset_read(ds, -1, 1, &b, &err), PARE_ERR_ARG, "outside");
    ASSERT_OK(pare_dataset_read(ds, 5, 0, &b, &err));
    check_shape(b[0], PARE_DT_FLOAT, 2, (int64_t[]){0, 3});
    pare_tensors_free(b, 2);
    pare_dataset_close(ds);
    pare_dataset_close(NULL);

    /* a folder of .npz: samples concatenated across files */
    ASSERT_OK(pare_dataset_open(FX "ds_dir", &ds, &err));
    assert_int_equal(pare_dataset_get_kind(ds), PARE_DATASET_NPZ_DIR);
    assert_int_equal(pare_dataset_count(ds), 7);
    assert_string_equal(pare_dataset_array_at(ds, 0)->name, "x");
    for (int64_t start = 0; start < 7; start++) {
        for (int64_t n = 0; start + n <= 7; n++) {
            ASSERT_OK(pare_dataset_read(ds, start, n, &b, &err));
            check_shape(b[0], PARE_DT_FLOAT, 2, (int64_t[]){n, 3});
            check_values(b[0], (uint64_t)start * 3, 0);
            check_values(b[1], (uint64_t)start, 0);
            pare_tensors_free(b, 2);
        }
    }
    pare_dataset_close(ds);
}

static void test_dataset_pb(void **state)
{
    (void)state;
    pare_error err;
    pare_dataset *ds;
    pare_tensor **b;
    ASSERT_OK(pare_dataset_open(FX "ds_sets", &ds, &err));
    assert_int_equal(pare_dataset_get_kind(ds), PARE_DATASET_PB_SETS);
    assert_int_equal(pare_dataset_count(ds), 3);
    assert_int_equal(pare_dataset_num_arrays(ds), 2);
    const pare_dataset_array *a = pare_dataset_array_at(ds, 0);
    assert_string_equal(a->name, "pixels");
    assert_int_equal(a->rank, 3);
    assert_string_equal(pare_dataset_array_at(ds, 1)->name, "ids");
    for (int64_t s = 0; s < 3; s++) {
        ASSERT_OK(pare_dataset_read(ds, s, 1, &b, &err));
        check_shape(b[0], PARE_DT_FLOAT, 3, (int64_t[]){1, 2, 3});
        check_values(b[0], 0, (double)s);
        assert_string_equal(b[1]->name, "ids"); /* set 1's is unnamed: matched by position */
        check_shape(b[1], PARE_DT_INT64, 2, (int64_t[]){1, 4});
        check_values(b[1], 0, 10.0 * (double)s);
        pare_tensors_free(b, 2);
    }
    ASSERT_OK(pare_dataset_read(ds, 0, 3, &b, &err));
    check_shape(b[0], PARE_DT_FLOAT, 3, (int64_t[]){3, 2, 3});
    check_shape(b[1], PARE_DT_INT64, 2, (int64_t[]){3, 4});
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < 6; i++)
            assert_true(((float *)b[0]->data)[s * 6 + i] == (float)((i - 5) * 0.25 + s));
    pare_tensors_free(b, 2);
    ASSERT_FAILS(pare_dataset_read(ds, 0, 0, &b, &err), PARE_ERR_ARG, "at least one");
    pare_dataset_close(ds);

    ASSERT_OK(pare_dataset_open(FX "ds_sets/test_data_set_1", &ds, &err));
    assert_int_equal(pare_dataset_get_kind(ds), PARE_DATASET_PB_SET);
    assert_int_equal(pare_dataset_count(ds), 1);
    assert_null(pare_dataset_array_at(ds, 1)->name);
    pare_dataset_close(ds);

    ASSERT_FAILS(pare_dataset_open(FX "missing_dir", &ds, &err), PARE_ERR_IO, "missing_dir");
    mkdir(tmp_path("empty"), 0777);
    ASSERT_FAILS(pare_dataset_open(tmp_path("empty"), &ds, &err), PARE_ERR_INVALID,
                 "no .npz files");
    ASSERT_FAILS(pare_dataset_open(FX "le_f4.npy", &ds, &err), PARE_ERR_FORMAT, "not a zip");
    ASSERT_FAILS(pare_dataset_open(FX "stored.npz", &ds, &err), PARE_ERR_INVALID,
                 "stored.npz: array 'b' has 5 samples, 'a' has 3");
}

/* Files that disagree: caught at open, with the file named. */
static void test_dataset_mismatch(void **state)
{
    (void)state;
    pare_error err;
    pare_dataset *ds;
    pare_npz_writer *w;
    pare_tensor *t;
    mkdir(tmp_path("mis"), 0777);
    ASSERT_OK(pare_npy_read(FX "le_f4.npy", &t, &err)); /* 3x4 */
    ASSERT_OK(pare_npz_writer_open(tmp_path("mis/a.npz"), false, &w, &err));
    ASSERT_OK(pare_npz_writer_add(w, "x", t, &err));
    ASSERT_OK(pare_npz_writer_close(w, &err));
    ASSERT_OK(pare_npz_writer_open(tmp_path("mis/b.npz"), false, &w, &err));
    ASSERT_OK(pare_npz_writer_add(w, "z", t, &err));
    ASSERT_OK(pare_npz_writer_close(w, &err));
    ASSERT_FAILS(pare_dataset_open(tmp_path("mis"), &ds, &err), PARE_ERR_INVALID,
                 "b.npz: has no array 'x'");
    t->dims[1] = 2;
    t->dims[0] = 6;
    ASSERT_OK(pare_npz_writer_open(tmp_path("mis/b.npz"), false, &w, &err));
    ASSERT_OK(pare_npz_writer_add(w, "x", t, &err));
    ASSERT_OK(pare_npz_writer_close(w, &err));
    ASSERT_FAILS(pare_dataset_open(tmp_path("mis"), &ds, &err), PARE_ERR_INVALID,
                 "b.npz: array 'x' has samples of float32 2");
    ASSERT_OK(pare_npz_writer_open(tmp_path("mis/b.npz"), false, &w, &err));
    ASSERT_OK(pare_npz_writer_add(w, "x", t, &err));
    pare_tensor *s;
    ASSERT_OK(pare_tensor_new(NULL, PARE_DT_FLOAT, 0, NULL, &s, &err));
    ASSERT_OK(pare_npz_writer_add(w, "s", s, &err));
    pare_tensor_free(s);
    ASSERT_OK(pare_tensor_new(NULL, PARE_DT_FLOAT, 1, (int64_t[]){1}, &s, &err));
    s->dims[0] = 2; /* a tensor whose size does not match its shape is refused */
    ASSERT_FAILS(pare_npz_writer_add(w, "t", s, &err), PARE_ERR_ARG, "bytes");
    ASSERT_FAILS(pare_npy_write(tmp_path("s.npy"), s, &err), PARE_ERR_ARG, "bytes");
    s->dims[0] = 1;
    pare_tensor_free(s);
    ASSERT_OK(pare_npz_writer_close(w, &err));
    ASSERT_FAILS(pare_dataset_open(tmp_path("mis/b.npz"), &ds, &err), PARE_ERR_INVALID,
                 "b.npz: array 's' is a scalar (samples go on axis 0");
    pare_tensor_free(t);
}

/* ---- random ---- */

static void test_random(void **state)
{
    (void)state;
    pare_error err;
    const int64_t dims[2] = {17, 31};
    const int dts[] = {PARE_DT_FLOAT, PARE_DT_DOUBLE, PARE_DT_FLOAT16, PARE_DT_BFLOAT16,
                       PARE_DT_INT8, PARE_DT_UINT8, PARE_DT_INT32, PARE_DT_INT64, PARE_DT_UINT64,
                       PARE_DT_BOOL, PARE_DT_INT4, PARE_DT_UINT4, PARE_DT_COMPLEX64,
                       PARE_DT_FLOAT8E4M3FN};
    for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++) {
        pare_tensor *a, *b, *c;
        ASSERT_OK(pare_tensor_random("r", dts[k], 2, dims, 42, &a, &err));
        ASSERT_OK(pare_tensor_random("r", dts[k], 2, dims, 42, &b, &err));
        ASSERT_OK(pare_tensor_random("r", dts[k], 2, dims, 43, &c, &err));
        assert_string_equal(a->name, "r");
        assert_memory_equal(a->data, b->data, a->nbytes);
        assert_memory_not_equal(a->data, c->data, a->nbytes);
        for (size_t i = 0; i < 17 * 31; i++) {
            double v;
            switch (dts[k]) {
            case PARE_DT_FLOAT: v = ((float *)a->data)[i]; break;
            case PARE_DT_DOUBLE: v = ((double *)a->data)[i]; break;
            case PARE_DT_FLOAT16: v = pare_f16_to_f32(((uint16_t *)a->data)[i]); break;
            case PARE_DT_INT8: v = ((int8_t *)a->data)[i]; break;
            case PARE_DT_UINT8: v = ((uint8_t *)a->data)[i]; break;
            case PARE_DT_INT32: v = ((int32_t *)a->data)[i]; break;
            case PARE_DT_INT64: v = (double)((int64_t *)a->data)[i]; break;
            case PARE_DT_UINT64: v = (double)((uint64_t *)a->data)[i]; break;
            case PARE_DT_BOOL: v = ((uint8_t *)a->data)[i]; break;
            case PARE_DT_INT4: v = pare_int4_get(a->data, i, true); break;
            case PARE_DT_UINT4: v = pare_int4_get(a->data, i, false); break;
            default: v = 0; break;
            }
            if (dts[k] == PARE_DT_FLOAT || dts[k] == PARE_DT_DOUBLE)
                assert_true(v >= -1 && v < 1);
            else if (dts[k] == PARE_DT_FLOAT16)
                assert_true(v >= -1 && v <= 1);
            else if (dts[k] == PARE_DT_BOOL)
                assert_true(v == 0 || v == 1);
            else if (dts[k] == PARE_DT_INT8 || dts[k] == PARE_DT_INT32 || dts[k] == PARE_DT_INT64 ||
                     dts[k] == PARE_DT_INT4)
                assert_true(v >= -8 && v < 8);
            else if (dts[k] == PARE_DT_UINT8 || dts[k] == PARE_DT_UINT64 || dts[k] == PARE_DT_UINT4)
                assert_true(v >= 0 && v < 16);
        }
        pare_tensor_free(a);
        pare_tensor_free(b);
        pare_tensor_free(c);
    }
    /* the stream is fixed: first float of seed 1 */
    pare_tensor *t;
    ASSERT_OK(pare_tensor_random(NULL, PARE_DT_FLOAT, 1, (int64_t[]){1}, 1, &t, &err));
    float first = *(float *)t->data;
    pare_tensor_free(t);
    ASSERT_OK(pare_tensor_random(NULL, PARE_DT_FLOAT, 1, (int64_t[]){1000}, 1, &t, &err));
    assert_true(*(float *)t->data == first);
    double mean = 0;
    for (int i = 0; i < 1000; i++)
        mean += ((float *)t->data)[i];
    assert_true(fabs(mean / 1000) < 0.1);
    pare_tensor_free(t);
    ASSERT_FAILS(pare_tensor_random(NULL, PARE_DT_STRING, 0, NULL, 1, &t, &err),
                 PARE_ERR_UNSUPPORTED, "string");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_npy_all_dtypes),
        cmocka_unit_test(test_npy_info),
        cmocka_unit_test(test_npy_versions),
        cmocka_unit_test(test_npy_fortran),
        cmocka_unit_test(test_npy_scalar_and_empty),
        cmocka_unit_test(test_npy_write_matches_numpy),
        cmocka_unit_test(test_npy_write_file),
        cmocka_unit_test(test_npy_bad_headers),
        cmocka_unit_test(test_npz_read),
        cmocka_unit_test(test_npz_zip64_and_odd),
        cmocka_unit_test(test_npz_crc),
        cmocka_unit_test(test_truncated_and_flipped),
        cmocka_unit_test(test_npz_write_roundtrip),
        cmocka_unit_test(test_npz_writer_errors),
        cmocka_unit_test(test_npz_many_members),
        cmocka_unit_test(test_tensor_files),
        cmocka_unit_test(test_dataset_npz),
        cmocka_unit_test(test_dataset_pb),
        cmocka_unit_test(test_dataset_mismatch),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
