/* lib/cuda's elementwise (ew.cu), data movement (move.cu: copies, Pad,
 * Gather) and row reduction (reduce.cu) kernels run on the CPU through the
 * CUDA emulation of tests/cuda/emu, launched as lib/cuda/core.c launches
 * them, against pare's CPU executor running the same ONNX op in a one-node model (Cast: against
 * pare_dtype_convert, which the CPU's Cast is; what ONNX leaves open, such
 * as an out-of-range Gather index or an empty reduction, against the
 * launchers' stated contract). Every launch runs in the emulation's three
 * thread orders (the reductions combine partial results through shared
 * memory and shuffles: a missing barrier between a write and another
 * thread's read shows in one of them) into outputs filled with garbage
 * first, so that an element the kernel skips shows.
 * Tolerances are per case, in units in the last place (ulps) of the output
 * dtype or absolute, each with its reason where the case is set up. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pare/model.h"
#include "pare/exec.h"
#include "cuda/core_kernels.h"
#include "cuda/ops_shared.h"
#include "../exec/fusion_build.h"

/* ---- tensors, shapes ---- */

static const int fp_types[] = {PARE_DT_FLOAT, PARE_DT_FLOAT16, PARE_DT_BFLOAT16};

static uint32_t seed = 4242;
static float urand(float lo, float hi)
{
    seed = seed * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)(seed >> 8) / 16777216.0f;
}

static pare_tensor *tensor(int dtype, int rank, const int64_t *dims)
{
    pare_tensor *t;
    pare_error err;
    assert_int_equal(pare_tensor_new(NULL, dtype, rank, dims, &t, &err), PARE_OK);
    return t;
}

/* values from [lo, hi), rounded to dtype (integers: truncated; bool: true
 * in the upper half) */
static pare_tensor *rnd_tensor(int dtype, int rank, const int64_t *dims, float lo, float hi)
{
    pare_tensor *t = tensor(dtype, rank, dims);
    for (uint64_t i = 0; i < pare_tensor_numel(t); i++) {
        double v = urand(lo, hi);
        pare_dtype_set_f64(dtype, t->data, i, dtype == PARE_DT_BOOL ? v >= (lo + hi) / 2 : v);
    }
    return t;
}

/* a rank-1 tensor of n given values (int64 ones for ints, shapes, axes) */
static pare_tensor *vec(int dtype, int64_t n, const double *v)
{
    pare_tensor *t = tensor(dtype, 1, &n);
    for (int64_t i = 0; i < n; i++)
        pare_dtype_set_f64(dtype, t->data, (size_t)i, v[i]);
    return t;
}

static void put(pare_tensor *t, size_t i, double v) { pare_dtype_set_f64(t->dtype, t->data, i, v); }

/* sh widened by t's dims, broadcast as ONNX does (right-aligned, 1 stretched) */
static void widen(pcu_shape *sh, const pare_tensor *t)
{
    int r = t->rank > sh->rank ? t->rank : sh->rank;
    pcu_shape o = {r, {0}};
    for (int d = 0; d < r; d++) {
        int i = d - (r - sh->rank), j = d - (r - t->rank);
        int64_t a = i >= 0 ? sh->dims[i] : 1, b = j >= 0 ? t->dims[j] : 1;
        o.dims[d] = a == 1 ? b : a;
    }
    *sh = o;
}

/* stride in t of each dim of sh (0 where t is broadcast), t contiguous */
static pcu_strides bcast(const pare_tensor *t, const pcu_shape *sh)
{
    pcu_strides s = {{0}};
    int64_t st = 1;
    for (int d = sh->rank - 1, e = t->rank - 1; d >= 0 && e >= 0; d--, e--) {
        s.s[d] = t->dims[e] == 1 ? 0 : st;
        st *= t->dims[e];
    }
    return s;
}

static int64_t numel(const pcu_shape *sh)
{
    int64_t n = 1;
    for (int d = 0; d < sh->rank; d++)
        n *= sh->dims[d];
    return n;
}

static pcu_shape shape(int rank, const int64_t *dims)
{
    pcu_shape sh = {rank, {0}};
    memcpy(sh.dims, dims, (size_t)rank * sizeof *dims);
    return sh;
}

/* ---- comparing ---- */

typedef struct tol {
    int ulps;   /* units in the last place of the output dtype */
    double abs; /* or this close */
} tol;

static const tol EXACT = {0, 0};
/* float16/bfloat16 results: the kernel and the CPU compute in float and
 * round once; float results a few float ulps apart may round to
 * neighbouring narrow values */
static const tol NARROW = {1, 0};

/* a float's bits as an integer that orders as the values do (-0 == +0) */
static int64_t ordered(int dtype, const void *p, size_t i)
{
    if (dtype == PARE_DT_FLOAT) {
        int32_t b;
        memcpy(&b, (const char *)p + 4 * i, 4);
        return b < 0 ? -(int64_t)(b & 0x7fffffff) : b;
    }
    uint16_t h;
    memcpy(&h, (const char *)p + 2 * i, 2);
    return h & 0x8000 ? -(int64_t)(h & 0x7fff) : h;
}

/* integer and bool elements equal; floating ones both NaN, equal, or
 * finite and within t */
static bool close_enough(int dtype, const void *got, const void *want, size_t i, tol t)
{
    size_t es = pare_dtype_nbytes(dtype, 1);
    if (!pare_dtype_is_float(dtype))
        return memcmp((const char *)got + i * es, (const char *)want + i * es, es) == 0;
    double g = pare_dtype_get_f64(dtype, got, i), w = pare_dtype_get_f64(dtype, want, i);
    if (g != g || w != w)
        return g != g && w != w;
    if (g == w)
        return true;
    if (isinf(g) || isinf(w))
        return false;
    int64_t du = ordered(dtype, got, i) - ordered(dtype, want, i);
    return fabs(g - w) <= t.abs || (du < 0 ? -du : du) <= t.ulps;
}

static void expect_close(const pare_tensor *want, const void *got, tol t, const char *what,
                         int order)
{
    for (size_t i = 0; i < pare_tensor_numel(want); i++)
        if (!close_enough(want->dtype, got, want->data, i, t))
            fail_msg("%s, thread order %d: element %zu is %.9g, want %.9g", what, order, i,
                     pare_dtype_get_f64(want->dtype, got, i),
                     pare_dtype_get_f64(want->dtype, want->data, i));
}

/* ---- launching ---- */

/* calls a launcher with args, writing the outputs y[] */
typedef int (*launch_fn)(const void *args, void *const *y);

/* Runs go in each thread order into outputs of want's sizes, filled with
 * garbage first, and compares output i with want[i] within t */
static void check_launch(launch_fn go, const void *args, pare_tensor *const *want, size_t n_out,
                         tol t, const char *what)
{
    void *y[3];
    for (size_t i = 0; i < n_out; i++)
        assert_non_null(y[i] = malloc(want[i]->nbytes));
    for (int order = 0; order < 3; order++) {
        for (size_t i = 0; i < n_out; i++)
            memset(y[i], 0xa5, want[i]->nbytes);
        pcu_emu_order(order);
        long before = pcu_emu_launches();
        int rc = go(args, y);
        if (rc)
            fail_msg("%s: launch failed (%d): %s", what, rc,
                     pcu_emu_failure() ? pcu_emu_failure() : "");
        assert_true(pcu_emu_launches() > before);
        for (size_t i = 0; i < n_out; i++)
            expect_close(want[i], y[i], t, what, order);
    }
    pcu_emu_order(0);
    for (size_t i = 0; i < n_out; i++)
        free(y[i]);
}

/* A model of one node op on graph inputs of ins' dtypes and shapes with
 * n_out outputs (dtype out_dt[i], 0 or out_dt NULL: inferred); the node is
 * returned for its attributes */
static pare_node *one_node(pare_model **m, int64_t opset, const char *op, pare_tensor *const *ins,
                           size_t n_in, size_t n_out, const int *out_dt)
{
    pare_error err;
    *m = new_model(opset);
    pare_graph *g = pare_model_graph(*m);
    pare_value *in[5], *out[3];
    for (size_t i = 0; i < n_in; i++) {
        const pare_tensor *t = ins[i];
        assert_int_equal(pare_graph_new_value(g, NULL, "x", t->dtype, &in[i], &err), PARE_OK);
        assert_int_equal(pare_value_set_dims(in[i], t->dtype, t->rank, t->dims, &err), PARE_OK);
        assert_int_equal(pare_graph_add_input(g, in[i], &err), PARE_OK);
    }
    for (size_t i = 0; i < n_out; i++)
        assert_int_equal(pare_graph_new_value(g, NULL, "y", out_dt ? out_dt[i] : 0, &out[i],
                                              &err),
                         PARE_OK);
    pare_node *n;
    assert_int_equal(pare_graph_add_node(g, NULL, "", op, in, n_in, out, n_out, NULL, &n, &err),
                     PARE_OK);
    for (size_t i = 0; i < n_out; i++)
        assert_int_equal(pare_graph_add_output(g, out[i], &err), PARE_OK);
    return n;
}

static void set_int(pare_node *n, const char *name, int64_t v)
{
    pare_error err;
    assert_int_equal(pare_node_set_attr_int(n, name, v, &err), PARE_OK);
}

static void set_float(pare_node *n, const char *name, float v)
{
    pare_error err;
    assert_int_equal(pare_node_set_attr_float(n, name, v, &err), PARE_OK);
}

/* The launch against m's outputs on the CPU (m is freed) */
static void check_ref(pare_model *m, pare_tensor **ins, size_t n_in, size_t n_out, launch_fn go,
                      const void *args, tol t, const char *fmt, ...)
{
    size_t n;
    pare_tensor **want = run(m, true, ins, n_in, &n, NULL);
    assert_int_equal(n, n_out);
    pare_model_free(m);
    char what[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    check_launch(go, args, want, n_out, t, what);
    pare_tensors_free(want, n);
}

static void free_all(pare_tensor **ts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pare_tensor_free(ts[i]);
}

/* ---- binary ---- */

typedef struct bin_args {
    int op, dtype;
    pcu_shape sh;
    pcu_strides sa, sb;
    const void *a, *b;
} bin_args;

static int go_binary(const void *args, void *const *y)
{
    const bin_args *p = args;
    return pcu_binary(p->op, p->dtype, &p->sh, &p->sa, &p->sb, p->a, p->b, y[0], numel(&p->sh),
                      NULL);
}

static const char *const bin_onnx[PCU_BIN_COUNT] = {
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "PRelu",
    "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor"};

/* a OP b with ONNX broadcasting, against the CPU's op */
static void check_binary(int op, pare_tensor *a, pare_tensor *b, tol t)
{
    bin_args p = {op, a->dtype, {0, {0}}, {{0}}, {{0}}, a->data, b->data};
    widen(&p.sh, a);
    widen(&p.sh, b);
    p.sa = bcast(a, &p.sh);
    p.sb = bcast(b, &p.sh);
    pare_model *m;
    pare_tensor *ins[2] = {a, b};
    one_node(&m, 13, bin_onnx[op], ins, 2, 1, NULL);
    check_ref(m, ins, 2, 1, go_binary, &p, t, "%s %s", bin_onnx[op], pare_dtype_name(a->dtype));
}

/* Every op of ops[0..n) in every floating dtype on a (dims da, values in
 * [alo, ahi)) and b (db, [-2, 2)), each with a NaN; coarse rounds the
 * values to halves, so that comparisons meet equal operands. The
 * arithmetic is one IEEE operation in float rounded once, as on the CPU:
 * equal to the bit; Pow is the host's powf against the CPU's: 1 ulp. */
static void binary_cases(const int *ops, int n, int ra, const int64_t *da, float alo, float ahi,
                         int rb, const int64_t *db, bool coarse)
{
    for (size_t d = 0; d < 3; d++)
        for (int k = 0; k < n; k++) {
            pare_tensor *a = rnd_tensor(fp_types[d], ra, da, alo, ahi);
            pare_tensor *b = rnd_tensor(fp_types[d], rb, db, -2.0f, 2.0f);
            pare_tensor *ab[2] = {a, b};
            for (int i = 0; coarse && i < 2; i++)
                for (size_t j = 0; j < pare_tensor_numel(ab[i]); j++)
                    put(ab[i], j, rint(2 * pare_dtype_get_f64(ab[i]->dtype, ab[i]->data, j)) / 2);
            put(a, 7, NAN);
            put(b, 2, NAN);
            check_binary(ops[k], a, b, ops[k] == PCU_POW ? (tol){1, 0} : EXACT);
            free_all(ab, 2);
        }
}

static const int arith[] = {PCU_ADD, PCU_SUB, PCU_MUL, PCU_DIV, PCU_POW, PCU_MAX, PCU_MIN};

/* both operands broadcast, on different dims (the strided kernel); more
 * than one block of 256 */
static void test_binary_broadcast(void **state)
{
    (void)state;
    const int64_t da[4] = {2, 3, 1, 45}, db[3] = {3, 4, 1};
    binary_cases(arith, 7, 4, da, 0.1f, 3.0f, 3, db, false);
}

/* PRelu's slope broadcasts to X one way only: per channel, as in CNNs
 * (the strided kernel), and of X's own shape (the flat one); exact */
static void test_prelu(void **state)
{
    (void)state;
    const int64_t dx[4] = {2, 3, 4, 25}, dc[3] = {3, 1, 1};
    for (size_t d = 0; d < 3; d++)
        for (int flat = 0; flat < 2; flat++) {
            pare_tensor *a = rnd_tensor(fp_types[d], 4, dx, -3.0f, 3.0f);
            pare_tensor *b = flat ? rnd_tensor(fp_types[d], 4, dx, 0.0f, 0.5f)
                                  : rnd_tensor(fp_types[d], 3, dc, 0.0f, 0.5f);
            pare_tensor *ab[2] = {a, b};
            put(a, 7, NAN);
            check_binary(PCU_PRELU, a, b, EXACT);
            free_all(ab, 2);
        }
}

static int go_not(const void *args, void *const *y)
{
    const pare_tensor *x = args;
    return pcu_not(x->data, y[0], (int64_t)pare_tensor_numel(x), NULL);
}

/* And, Or, Xor of bool masks broadcast both ways (an attention mask
 * [2, 1, 9, 9] with a causal [9, 9] one), Not; exact */
static void test_logic(void **state)
{
    (void)state;
    const int64_t da[4] = {2, 1, 9, 9}, db[2] = {9, 9};
    const int ops[3] = {PCU_AND, PCU_OR, PCU_XOR};
    for (int k = 0; k < 3; k++) {
        pare_tensor *a = rnd_tensor(PARE_DT_BOOL, 4, da, 0, 1);
        pare_tensor *b = rnd_tensor(PARE_DT_BOOL, 2, db, 0, 1);
        pare_tensor *ab[2] = {a, b};
        check_binary(ops[k], a, b, EXACT);
        free_all(ab, 2);
    }
    pare_tensor *x = rnd_tensor(PARE_DT_BOOL, 4, da, 0, 1);
    pare_model *m;
    one_node(&m, 13, "Not", &x, 1, 1, NULL);
    check_ref(m, &x, 1, 1, go_not, x, EXACT, "Not");
    /* a logic op on floats, or arithmetic on bools, is refused unlaunched */
    pcu_shape sh = {1, {4}};
    pcu_strides st = {{1}};
    float f[4] = {0};
    long before = pcu_emu_launches();
    assert_int_equal(pcu_binary(PCU_AND, PCU_F32, &sh, &st, &st, f, f, f, 4, NULL),
                     cudaErrorInvalidValue);
    assert_int_equal(pcu_binary(PCU_ADD, PCU_BOOL, &sh, &st, &st, f, f, f, 4, NULL),
                     cudaErrorInvalidValue);
    assert_int_equal(pcu_emu_launches(), before);
    pare_tensor_free(x);
}

/* same shapes (the flat kernel: a dim of 1 has any stride) */
static void test_binary_flat(void **state)
{
    (void)state;
    const int64_t d[3] = {3, 1, 700};
    binary_cases(arith, 7, 3, d, 0.1f, 3.0f, 3, d, false);
}

/* the comparisons write bool; broadcast; equal operands and NaNs met */
static void test_binary_compare(void **state)
{
    (void)state;
    const int ops[] = {PCU_EQ, PCU_LT, PCU_GT, PCU_LE, PCU_GE};
    const int64_t da[3] = {5, 1, 60}, db[2] = {4, 1};
    binary_cases(ops, 5, 3, da, -2.0f, 2.0f, 2, db, true);
}

/* ---- unary ---- */

typedef struct un_args {
    int op, dtype;
    const void *x;
    int64_t n;
    float p0, p1;
} un_args;

static int go_unary(const void *args, void *const *y)
{
    const un_args *p = args;
    return pcu_unary(p->op, p->dtype, p->x, y[0], p->n, p->p0, p->p1, NULL);
}

typedef struct un_case {
    int op;
    const char *onnx;
    float p0, p1;
    const char *a0, *a1; /* the attributes p0 and p1 are (NULL: none or inputs) */
    int extra;           /* p0 (and p1) as inputs: Mul's B, Clip's min and max */
    float lo, hi;        /* the range of the random inputs */
    tol f32;
} un_case;

/* float32 tolerances: exact where the kernel and the CPU do the same
 * correctly rounded operations; 4 ulps for the host's libm functions (the
 * CPU may call other implementations) and for formulas arranged
 * differently; an absolute floor of a few ulps of 1 where a formula
 * cancels: Elu's alpha * (exp(x) - 1) and Selu's alpha * exp(x) - alpha
 * near 0, Gelu's 1 + erf and 1 + tanh for x < 0, HardSwish's x / 6 + 1/2
 * near -3. The parameters are not the defaults, and Scale's and Clip's are
 * exact in float16 and bfloat16, as their ONNX inputs must be. */
static const un_case un_cases[] = {
    {PCU_NEG, "Neg", 0, 0, NULL, NULL, 0, -8, 8, {0, 0}},
    {PCU_ABS, "Abs", 0, 0, NULL, NULL, 0, -8, 8, {0, 0}},
    {PCU_SQRT, "Sqrt", 0, 0, NULL, NULL, 0, 0, 50, {0, 0}},
    {PCU_EXP, "Exp", 0, 0, NULL, NULL, 0, -30, 30, {4, 0}},
    {PCU_LOG, "Log", 0, 0, NULL, NULL, 0, 0, 50, {4, 0}},
    {PCU_RECIP, "Reciprocal", 0, 0, NULL, NULL, 0, -8, 8, {0, 0}},
    {PCU_FLOOR, "Floor", 0, 0, NULL, NULL, 0, -8, 8, {0, 0}},
    {PCU_CEIL, "Ceil", 0, 0, NULL, NULL, 0, -8, 8, {0, 0}},
    {PCU_ERF, "Erf", 0, 0, NULL, NULL, 0, -4, 4, {4, 0}},
    {PCU_TANH, "Tanh", 0, 0, NULL, NULL, 0, -8, 8, {4, 0}},
    {PCU_SIGMOID, "Sigmoid", 0, 0, NULL, NULL, 0, -30, 30, {4, 0}},
    {PCU_RELU, "Relu", 0, 0, NULL, NULL, 0, -8, 8, {0, 0}},
    {PCU_LEAKYRELU, "LeakyRelu", 0.15f, 0, "alpha", NULL, 0, -8, 8, {0, 0}},
    {PCU_ELU, "Elu", 0.7f, 0, "alpha", NULL, 0, -8, 8, {4, 1.5e-7}},
    {PCU_SELU, "Selu", 1.5f, 1.25f, "alpha", "gamma", 0, -8, 8, {4, 4e-7}},
    {PCU_GELU, "Gelu", 0, 0, NULL, NULL, 0, -8, 8, {4, 2.5e-7}},
    {PCU_GELU_TANH, "Gelu", 0, 0, NULL, NULL, 0, -8, 8, {4, 1.5e-7}},
    {PCU_HARDSIGMOID, "HardSigmoid", 0.25f, 0.4f, "alpha", "beta", 0, -8, 8, {1, 0}},
    {PCU_HARDSWISH, "HardSwish", 0, 0, NULL, NULL, 0, -8, 8, {4, 1.5e-7}},
    {PCU_CLIP, "Clip", -1.5f, 2.25f, NULL, NULL, 2, -8, 8, {0, 0}},
    {PCU_SOFTPLUS, "Softplus", 0, 0, NULL, NULL, 0, -30, 30, {4, 0}},
    {PCU_SCALE, "Mul", 0.375f, 0, NULL, NULL, 1, -8, 8, {0, 0}},
    {PCU_SIN, "Sin", 0, 0, NULL, NULL, 0, -8, 8, {4, 0}},
    {PCU_COS, "Cos", 0, 0, NULL, NULL, 0, -8, 8, {4, 0}},
    {PCU_TAN, "Tan", 0, 0, NULL, NULL, 0, -1.5f, 1.5f, {4, 0}},
    {PCU_ASIN, "Asin", 0, 0, NULL, NULL, 0, -1, 1, {4, 0}},
    {PCU_ACOS, "Acos", 0, 0, NULL, NULL, 0, -1, 1, {4, 0}},
    {PCU_ATAN, "Atan", 0, 0, NULL, NULL, 0, -8, 8, {4, 0}},
    {PCU_SINH, "Sinh", 0, 0, NULL, NULL, 0, -8, 8, {4, 0}},
    {PCU_COSH, "Cosh", 0, 0, NULL, NULL, 0, -8, 8, {4, 0}},
    {PCU_ASINH, "Asinh", 0, 0, NULL, NULL, 0, -8, 8, {4, 0}},
    {PCU_ACOSH, "Acosh", 0, 0, NULL, NULL, 0, 1, 9, {4, 0}},
    {PCU_ATANH, "Atanh", 0, 0, NULL, NULL, 0, -1, 1, {4, 0}},
    {PCU_ROUND, "Round", 0, 0, NULL, NULL, 0, -8, 8, {0, 0}},
    {PCU_SIGN, "Sign", 0, 0, NULL, NULL, 0, -8, 8, {0, 0}},
    {PCU_SOFTSIGN, "Softsign", 0, 0, NULL, NULL, 0, -8, 8, {1, 0}},
    {PCU_MISH, "Mish", 0, 0, NULL, NULL, 0, -30, 30, {4, 2e-7}},
    {PCU_CELU, "Celu", 0.8f, 0, "alpha", NULL, 0, -8, 8, {4, 1.5e-7}},
    {PCU_THRESHOLDED_RELU, "ThresholdedRelu", 1.25f, 0, "alpha", NULL, 0, -8, 8, {0, 0}},
};

/* inputs every unary op meets first: signed zeros, NaN, infinities, the
 * thresholds of the piecewise ones (Softplus switches at 20) */
static const float un_specials[] = {0.0f, -0.0f, NAN, INFINITY, -INFINITY, 1.0f, -1.0f,
                                    0.5f, 20.5f, -20.5f, 1e-3f, -1e-3f, 3.0f, -3.0f};

static void check_unary(const un_case *c, int dtype)
{
    const int64_t n = 600;
    pare_tensor *ins[3] = {rnd_tensor(dtype, 1, &n, c->lo, c->hi)};
    for (size_t i = 0; i < sizeof un_specials / sizeof *un_specials; i++)
        put(ins[0], i, un_specials[i]);
    for (int i = 0; i < c->extra; i++) {
        ins[1 + i] = tensor(dtype, 0, NULL);
        put(ins[1 + i], 0, i ? c->p1 : c->p0);
    }
    pare_model *m;
    pare_node *nd = one_node(&m, 20, c->onnx, ins, 1 + (size_t)c->extra, 1, NULL);
    if (c->a0)
        set_float(nd, c->a0, c->p0);
    if (c->a1)
        set_float(nd, c->a1, c->p1);
    if (c->op == PCU_GELU_TANH) {
        pare_error err;
        assert_int_equal(pare_node_set_attr_string(nd, "approximate", "tanh", &err), PARE_OK);
    }
    un_args p = {c->op, dtype, ins[0]->data, n, c->p0, c->p1};
    check_ref(m, ins, 1 + (size_t)c->extra, 1, go_unary, &p,
              dtype == PARE_DT_FLOAT ? c->f32 : NARROW, "unary %d (%s) %s", c->op, c->onnx,
              pare_dtype_name(dtype));
    free_all(ins, 1 + (size_t)c->extra);
}

static void test_unary_float32(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof un_cases / sizeof *un_cases; i++)
        check_unary(&un_cases[i], PARE_DT_FLOAT);
}

static void test_unary_narrow(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof un_cases / sizeof *un_cases; i++) {
        check_unary(&un_cases[i], PARE_DT_FLOAT16);
        check_unary(&un_cases[i], PARE_DT_BFLOAT16);
    }
}

/* every op of the enum has a case */
static void test_unary_cases_complete(void **state)
{
    (void)state;
    bool seen[PCU_UN_COUNT] = {false};
    for (size_t i = 0; i < sizeof un_cases / sizeof *un_cases; i++)
        seen[un_cases[i].op] = true;
    for (int op = 0; op < PCU_UN_COUNT; op++)
        if (!seen[op])
            fail_msg("unary op %d has no case", op);
}

/* ---- Cast ---- */

typedef struct cast_args {
    int from, to;
    const void *x;
    int64_t n;
} cast_args;

static int go_cast(const void *args, void *const *y)
{
    const cast_args *p = args;
    return pcu_cast(p->from, p->to, p->x, y[0], p->n, NULL);
}

static const int cast_types[] = {PARE_DT_FLOAT, PARE_DT_FLOAT16, PARE_DT_BFLOAT16, PARE_DT_INT32,
                                 PARE_DT_INT64, PARE_DT_BOOL,    PARE_DT_INT8,     PARE_DT_UINT8};

/* Cast's sources: for the floating types values that truncate, round
 * (ties, float16's subnormals and overflow, bfloat16's ties) and saturate
 * in every integer type, NaN and infinities; for the integer types values
 * that wrap in the narrower ones (stored wrapped, as Cast from int64
 * would); bool 0 and 1 */
static pare_tensor *cast_source(int dtype)
{
    static const float f[] = {
        0.0f, -0.0f, 1.5f, -1.5f, 2.5f, -2.7f, 100.9f, 127.9f, 128.5f, -128.9f, -129.5f,
        255.4f, 256.0f, 300.0f, -300.0f, 40000.7f, 65519.0f, 65520.0f, 70000.0f, -70000.0f,
        3e9f, -3e9f, 2147483520.0f, 1e19f, -1e19f, 1e-8f, 6e-8f, 3e-5f, 1.00390625f,
        1.01171875f, -1.00390625f, NAN, INFINITY, -INFINITY};
    static const int64_t i[] = {0, 1, -1, 127, 128, -128, -129, 255, 256, 300, -300, 65535,
                                65537, 16777217, 2147483647, 2147483648LL, -2147483649LL,
                                1099511627777LL, 9007199254740993LL, INT64_MAX, INT64_MIN};
    static const uint8_t b[] = {0, 1, 1, 0, 1};
    int64_t n = pare_dtype_is_float(dtype) ? (int64_t)(sizeof f / sizeof *f)
                : dtype == PARE_DT_BOOL    ? (int64_t)sizeof b
                                           : (int64_t)(sizeof i / sizeof *i);
    pare_tensor *t = tensor(dtype, 1, &n);
    if (pare_dtype_is_float(dtype))
        assert_true(pare_dtype_convert(dtype, t->data, PARE_DT_FLOAT, f, (size_t)n, false));
    else if (dtype == PARE_DT_BOOL)
        memcpy(t->data, b, sizeof b);
    else
        assert_true(pare_dtype_convert(dtype, t->data, PARE_DT_INT64, i, (size_t)n, false));
    return t;
}

/* every pair of the dtypes pcu_cast takes, equal to the bit to the CPU's
 * conversion (float -> integer truncates, NaN gives 0, out of range
 * saturates; integer -> integer wraps; -> bool is != 0) */
static void test_cast(void **state)
{
    (void)state;
    for (size_t s = 0; s < 8; s++) {
        pare_tensor *x = cast_source(cast_types[s]);
        for (size_t d = 0; d < 8; d++) {
            int64_t n = (int64_t)pare_tensor_numel(x);
            pare_tensor *want = tensor(cast_types[d], 1, &n);
            assert_true(pare_dtype_convert(cast_types[d], want->data, x->dtype, x->data,
                                           (size_t)n, true));
            cast_args p = {x->dtype, cast_types[d], x->data, n};
            char what[64];
            snprintf(what, sizeof what, "Cast %s to %s", pare_dtype_name(x->dtype),
                     pare_dtype_name(cast_types[d]));
            check_launch(go_cast, &p, &want, 1, EXACT, what);
            pare_tensor_free(want);
        }
        pare_tensor_free(x);
    }
}

/* ---- Where ---- */

typedef struct where_args {
    int esize;
    pcu_shape sh;
    pcu_strides sc, sx, sz;
    const uint8_t *c;
    const void *x, *z;
} where_args;

static int go_where(const void *args, void *const *y)
{
    const where_args *p = args;
    return pcu_where(p->esize, &p->sh, &p->sc, &p->sx, &p->sz, p->c, p->x, p->z, y[0],
                     numel(&p->sh), NULL);
}

/* cond, x and z broadcast on different dims; elements of 1, 2, 4 and 8
 * bytes; moved, so equal to the bit */
static void test_where(void **state)
{
    (void)state;
    const int types[] = {PARE_DT_UINT8, PARE_DT_BFLOAT16, PARE_DT_INT32, PARE_DT_INT64};
    const int64_t dc[3] = {3, 1, 50}, dx[2] = {4, 50}, dz[3] = {3, 4, 1};
    for (size_t k = 0; k < 4; k++) {
        pare_tensor *ins[3] = {rnd_tensor(PARE_DT_BOOL, 3, dc, 0, 2),
                               rnd_tensor(types[k], 2, dx, 0, 120),
                               rnd_tensor(types[k], 3, dz, 0, 120)};
        where_args p = {(int)pare_dtype_nbytes(types[k], 1), {0, {0}}, {{0}}, {{0}}, {{0}},
                        ins[0]->data, ins[1]->data, ins[2]->data};
        for (int i = 0; i < 3; i++)
            widen(&p.sh, ins[i]);
        p.sc = bcast(ins[0], &p.sh);
        p.sx = bcast(ins[1], &p.sh);
        p.sz = bcast(ins[2], &p.sh);
        pare_model *m;
        one_node(&m, 16, "Where", ins, 3, 1, NULL);
        check_ref(m, ins, 3, 1, go_where, &p, EXACT, "Where %s", pare_dtype_name(types[k]));
        free_all(ins, 3);
    }
}

/* ---- copies ---- */

/* one or two strided copies into y (Concat copies each input) */
typedef struct copy_args {
    int esize, n_parts;
    struct {
        pcu_shape sh;
        pcu_strides xs, ys;
        const void *x;
        int64_t xoff, yoff;
    } part[2];
} copy_args;

static int go_copy(const void *args, void *const *y)
{
    const copy_args *p = args;
    int rc = 0;
    for (int i = 0; i < p->n_parts && !rc; i++)
        rc = pcu_copy_nd(p->esize, &p->part[i].sh, p->part[i].x, &p->part[i].xs, p->part[i].xoff,
                         y[0], &p->part[i].ys, p->part[i].yoff, numel(&p->part[i].sh), NULL);
    return rc;
}

/* y's dims given, contiguous y strides */
static void copy_part(copy_args *p, int i, int rank, const int64_t *dims, const pare_tensor *x,
                      const int64_t *xs, int64_t xoff, const int64_t *ys, int64_t yoff)
{
    p->part[i].sh = shape(rank, dims);
    p->part[i].x = x->data;
    p->part[i].xoff = xoff;
    p->part[i].yoff = yoff;
    memcpy(p->part[i].xs.s, xs, (size_t)rank * sizeof *xs);
    memcpy(p->part[i].ys.s, ys, (size_t)rank * sizeof *ys);
}

/* Transpose: x's strides permuted; 4-byte elements, more than one block */
static void test_copy_transpose(void **state)
{
    (void)state;
    const int64_t dx[4] = {2, 3, 4, 15}, perm[4] = {2, 0, 3, 1};
    const int64_t dy[4] = {4, 2, 15, 3}, xs[4] = {180, 60, 15, 1}, ys[4] = {90, 45, 3, 1};
    pare_tensor *x = rnd_tensor(PARE_DT_FLOAT, 4, dx, -9, 9);
    copy_args p = {.esize = 4, .n_parts = 1};
    int64_t pxs[4];
    for (int d = 0; d < 4; d++)
        pxs[d] = xs[perm[d]];
    copy_part(&p, 0, 4, dy, x, pxs, 0, ys, 0);
    pare_model *m;
    pare_error err;
    pare_node *n = one_node(&m, 13, "Transpose", &x, 1, 1, NULL);
    assert_int_equal(pare_node_set_attr_ints(n, "perm", perm, 4, &err), PARE_OK);
    check_ref(m, &x, 1, 1, go_copy, &p, EXACT, "Transpose");
    pare_tensor_free(x);
}

/* Slice with negative and non-unit steps: an offset into x and negative
 * strides; 2-byte elements */
static void test_copy_slice(void **state)
{
    (void)state;
    const int64_t dx[3] = {4, 6, 5}, dy[3] = {4, 3, 2}, ys[3] = {6, 2, 1};
    /* starts (3, 1, 4), steps (-1, 2, -2): x[3 - i][1 + 2j][4 - 2k] */
    const int64_t xs[3] = {-30, 10, -2}, xoff = 3 * 30 + 1 * 5 + 4;
    const double starts[3] = {3, 1, 4}, ends[3] = {-5, 6, 0}, steps[3] = {-1, 2, -2};
    const double axes[3] = {0, 1, 2};
    pare_tensor *ins[5] = {rnd_tensor(PARE_DT_FLOAT16, 3, dx, -9, 9),
                           vec(PARE_DT_INT64, 3, starts), vec(PARE_DT_INT64, 3, ends),
                           vec(PARE_DT_INT64, 3, axes), vec(PARE_DT_INT64, 3, steps)};
    copy_args p = {.esize = 2, .n_parts = 1};
    copy_part(&p, 0, 3, dy, ins[0], xs, xoff, ys, 0);
    pare_model *m;
    one_node(&m, 13, "Slice", ins, 5, 1, NULL);
    check_ref(m, ins, 5, 1, go_copy, &p, EXACT, "Slice");
    free_all(ins, 5);
}

/* Concat on axis 1: each input to an offset in y; 8-byte elements */
static void test_copy_concat(void **state)
{
    (void)state;
    const int64_t da[3] = {2, 3, 4}, db[3] = {2, 5, 4}, ys[3] = {32, 4, 1};
    const int64_t as[3] = {12, 4, 1}, bs[3] = {20, 4, 1};
    pare_tensor *ins[2] = {rnd_tensor(PARE_DT_INT64, 3, da, -1e6f, 1e6f),
                           rnd_tensor(PARE_DT_INT64, 3, db, -1e6f, 1e6f)};
    copy_args p = {.esize = 8, .n_parts = 2};
    copy_part(&p, 0, 3, da, ins[0], as, 0, ys, 0);
    copy_part(&p, 1, 3, db, ins[1], bs, 0, ys, 3 * 4);
    pare_model *m;
    pare_node *n = one_node(&m, 13, "Concat", ins, 2, 1, NULL);
    set_int(n, "axis", 1);
    check_ref(m, ins, 2, 1, go_copy, &p, EXACT, "Concat");
    free_all(ins, 2);
}

/* Expand: x's strides 0 on the dims it is broadcast along; 1-byte elements */
static void test_copy_expand(void **state)
{
    (void)state;
    const int64_t dx[2] = {3, 1}, dy[3] = {2, 3, 40}, xs[3] = {0, 1, 0}, ys[3] = {120, 40, 1};
    const double to[3] = {2, 3, 40};
    pare_tensor *ins[2] = {rnd_tensor(PARE_DT_UINT8, 2, dx, 0, 255), vec(PARE_DT_INT64, 3, to)};
    copy_args p = {.esize = 1, .n_parts = 1};
    copy_part(&p, 0, 3, dy, ins[0], xs, 0, ys, 0);
    pare_model *m;
    one_node(&m, 13, "Expand", ins, 2, 1, NULL);
    check_ref(m, ins, 2, 1, go_copy, &p, EXACT, "Expand");
    free_all(ins, 2);
}

/* ---- Gather ---- */

typedef struct gather_args {
    int esize, idx64;
    int64_t outer, axis_len, inner, n_idx;
    const void *x, *idx;
} gather_args;

static int go_gather(const void *args, void *const *y)
{
    const gather_args *p = args;
    return pcu_gather(p->esize, p->outer, p->axis_len, p->inner, p->x, p->idx, p->idx64, p->n_idx,
                      y[0], NULL);
}

/* x [7, 3, 7] of dtype gathered on axis (0: inner 21; 2: inner 1) by a
 * [2, 4] index tensor of idt with negative indices; moved: exact */
static void check_gather(int dtype, int axis, int idt)
{
    const int64_t dx[3] = {7, 3, 7}, di[2] = {2, 4};
    const double idx[8] = {0, -1, 4, -7, 2, 6, -3, 5};
    pare_tensor *ins[2] = {rnd_tensor(dtype, 3, dx, 0, 120), tensor(idt, 2, di)};
    for (size_t i = 0; i < 8; i++)
        put(ins[1], i, idx[i]);
    gather_args p = {(int)pare_dtype_nbytes(dtype, 1), idt == PARE_DT_INT64,
                     axis ? 21 : 1, 7, axis ? 1 : 21, 8, ins[0]->data, ins[1]->data};
    pare_model *m;
    pare_node *n = one_node(&m, 13, "Gather", ins, 2, 1, NULL);
    set_int(n, "axis", axis);
    check_ref(m, ins, 2, 1, go_gather, &p, EXACT, "Gather %s axis %d by %s",
              pare_dtype_name(dtype), axis, pare_dtype_name(idt));
    free_all(ins, 2);
}

static void test_gather_int32(void **state)
{
    (void)state;
    check_gather(PARE_DT_FLOAT, 0, PARE_DT_INT32);
    check_gather(PARE_DT_UINT8, 2, PARE_DT_INT32);
    check_gather(PARE_DT_INT64, 2, PARE_DT_INT32);
}

static void test_gather_int64(void **state)
{
    (void)state;
    check_gather(PARE_DT_FLOAT16, 2, PARE_DT_INT64);
    check_gather(PARE_DT_INT64, 0, PARE_DT_INT64);
    check_gather(PARE_DT_BOOL, 0, PARE_DT_INT64);
}

/* ---- GatherElements ---- */

typedef struct gel_args {
    int esize, axis, idx64;
    pcu_shape sh;
    pcu_strides xs;
    int64_t axis_len, n;
    const void *x, *idx;
} gel_args;

static int go_gather_el(const void *args, void *const *y)
{
    const gel_args *p = args;
    return pcu_gather_elements(p->esize, &p->sh, &p->xs, p->axis, p->axis_len, p->x, p->idx,
                               p->idx64, y[0], p->n, NULL);
}

/* x [3, 4, 5] of dtype, indices of idt [3, 2, 5] or [3, 4, 2] along axis
 * 1 or 2 with negative ones, against the CPU's GatherElements: exact */
static void check_gather_el(int dtype, int idt, int axis)
{
    const int64_t dx[3] = {3, 4, 5}, di[3] = {3, axis == 1 ? 2 : 4, axis == 2 ? 2 : 5};
    pare_tensor *ins[2] = {rnd_tensor(dtype, 3, dx, -9, 9), tensor(idt, 3, di)};
    int64_t len = dx[axis];
    for (size_t i = 0; i < pare_tensor_numel(ins[1]); i++)
        put(ins[1], i, (double)((int64_t)(urand(0, 1) * (float)(2 * len)) - len));
    gel_args p = {(int)pare_dtype_nbytes(dtype, 1), axis, idt == PARE_DT_INT64,
                  {3, {di[0], di[1], di[2]}}, {{20, 5, 1}}, len,
                  (int64_t)pare_tensor_numel(ins[1]), ins[0]->data, ins[1]->data};
    pare_model *m;
    pare_node *n = one_node(&m, 13, "GatherElements", ins, 2, 1, NULL);
    set_int(n, "axis", axis);
    check_ref(m, ins, 2, 1, go_gather_el, &p, EXACT, "GatherElements %s by %s axis %d",
              pare_dtype_name(dtype), pare_dtype_name(idt), axis);
    free_all(ins, 2);
}

static void test_gather_elements(void **state)
{
    (void)state;
    check_gather_el(PARE_DT_FLOAT, PARE_DT_INT64, 1);
    check_gather_el(PARE_DT_UINT8, PARE_DT_INT32, 2);
    check_gather_el(PARE_DT_FLOAT16, PARE_DT_INT64, 2);
    check_gather_el(PARE_DT_INT64, PARE_DT_INT32, 1);
}

/* ---- Trilu ---- */

typedef struct trilu_args {
    int esize, upper;
    int64_t k, rows, cols, n;
    const void *x;
} trilu_args;

static int go_trilu(const void *args, void *const *y)
{
    const trilu_args *p = args;
    return pcu_trilu(p->esize, p->upper, p->k, p->rows, p->cols, p->x, y[0], p->n, NULL);
}

/* x [2, 5, 7] of dtype, upper and lower, k from below the matrix to past
 * it, against the CPU's Trilu: exact */
static void test_trilu(void **state)
{
    (void)state;
    const int64_t dx[3] = {2, 5, 7}, one = 1, ks[4] = {-6, -1, 2, 9};
    const int types[2] = {PARE_DT_FLOAT16, PARE_DT_INT64};
    for (int t = 0; t < 2; t++)
        for (int upper = 0; upper < 2; upper++)
            for (int i = 0; i < 4; i++) {
                pare_tensor *ins[2] = {rnd_tensor(types[t], 3, dx, 1, 9),
                                       tensor(PARE_DT_INT64, 0, &one)};
                put(ins[1], 0, (double)ks[i]);
                trilu_args p = {(int)pare_dtype_nbytes(types[t], 1), upper, ks[i], 5, 7, 70,
                                ins[0]->data};
                pare_model *m;
                pare_node *n = one_node(&m, 14, "Trilu", ins, 2, 1, NULL);
                set_int(n, "upper", upper);
                check_ref(m, ins, 2, 1, go_trilu, &p, EXACT, "Trilu %s upper %d k %lld",
                          pare_dtype_name(types[t]), upper, (long long)ks[i]);
                free_all(ins, 2);
            }
}

/* ---- ArgMax, ArgMin ---- */

typedef struct arg_args {
    int dtype, mx, last;
    int64_t outer, dim, inner;
    const void *x;
} arg_args;

static int go_arg(const void *args, void *const *y)
{
    const arg_args *p = args;
    return pcu_argreduce(p->dtype, p->mx, p->last, p->outer, p->dim, p->inner, p->x, y[0], NULL);
}

/* x [3, 21, 40] (a segmentation head's classes on axis 1) of dtype, values
 * rounded to halves so that ties occur, two NaNs in one column, against
 * the CPU's ArgMax / ArgMin with and without select_last_index: exact */
static void check_arg(int dtype, bool mx, bool last)
{
    const int64_t dx[3] = {3, 21, 40};
    pare_tensor *x = rnd_tensor(dtype, 3, dx, -4, 4);
    for (size_t j = 0; j < pare_tensor_numel(x); j++)
        put(x, j, rint(2 * pare_dtype_get_f64(dtype, x->data, j)) / 2);
    put(x, 5 * 40 + 7, NAN);
    put(x, 12 * 40 + 7, NAN);
    arg_args p = {dtype, mx, last, 3, 21, 40, x->data};
    pare_model *m;
    pare_node *n = one_node(&m, 13, mx ? "ArgMax" : "ArgMin", &x, 1, 1, NULL);
    set_int(n, "axis", 1);
    set_int(n, "keepdims", 0);
    set_int(n, "select_last_index", last);
    check_ref(m, &x, 1, 1, go_arg, &p, EXACT, "Arg%s %s last %d", mx ? "Max" : "Min",
              pare_dtype_name(dtype), last);
    pare_tensor_free(x);
}

static void test_argmax_argmin(void **state)
{
    (void)state;
    for (size_t d = 0; d < 3; d++)
        for (int k = 0; k < 4; k++)
            check_arg(fp_types[d], k & 1, k >> 1);
}

/* ---- Pad ---- */

typedef struct pad_args {
    int esize;
    pcu_pad_args a;
    const void *fill, *x;
    int64_t n;
} pad_args;

static int go_pad(const void *args, void *const *y)
{
    const pad_args *p = args;
    return pcu_pad(p->esize, &p->a, p->fill, p->x, y[0], p->n, NULL);
}

/* x [3, 4, 5] of dtype padded in mode by pads (begin 3, end 3: negative
 * crops; reflect and wrap pads larger than the axis go round again) with
 * constant 7.5, as the launch core.c's Pad makes, against the CPU's Pad */
static void check_pad(int dtype, const char *mode, int code, const int64_t *pads)
{
    const int64_t dx[3] = {3, 4, 5}, dp = 6;
    pare_tensor *ins[3] = {rnd_tensor(dtype, 3, dx, -50, 50), tensor(PARE_DT_INT64, 1, &dp),
                           tensor(dtype, 0, NULL)};
    for (int i = 0; i < 6; i++)
        put(ins[1], (size_t)i, (double)pads[i]);
    put(ins[2], 0, 7.5);
    pad_args p = {(int)pare_dtype_nbytes(dtype, 1), {3, code, {0}, {0}, {0}}, ins[2]->data,
                  ins[0]->data, 1};
    for (int d = 0; d < 3; d++) {
        p.a.in[d] = dx[d];
        p.a.pb[d] = pads[d];
        p.a.out[d] = dx[d] + pads[d] + pads[3 + d];
        p.n *= p.a.out[d];
    }
    pare_model *m;
    pare_node *n = one_node(&m, 19, "Pad", ins, 3, 1, NULL);
    pare_error err;
    assert_int_equal(pare_node_set_attr_string(n, "mode", mode, &err), PARE_OK);
    check_ref(m, ins, 3, 1, go_pad, &p, EXACT, "Pad %s %s", mode, pare_dtype_name(dtype));
    free_all(ins, 3);
}

static void test_pad(void **state)
{
    (void)state;
    const int64_t grow[6] = {1, 2, 0, 2, 0, 3}, crop[6] = {0, -1, 2, 1, 1, -2},
                  wide[6] = {4, 9, 6, 5, 7, 11};
    const char *modes[4] = {"constant", "reflect", "edge", "wrap"};
    const int codes[4] = {PCU_PAD_CONSTANT, PCU_PAD_REFLECT, PCU_PAD_EDGE, PCU_PAD_WRAP};
    for (int i = 0; i < 4; i++) {
        check_pad(PARE_DT_FLOAT, modes[i], codes[i], grow);
        check_pad(PARE_DT_UINT8, modes[i], codes[i], crop);
        check_pad(PARE_DT_FLOAT16, modes[i], codes[i], wide);
        check_pad(PARE_DT_INT64, modes[i], codes[i], grow);
    }
}

/* an index out of range (either side) gives zeros, as the header says
 * (ONNX leaves it an error: no CPU reference) */
static void test_gather_out_of_range(void **state)
{
    (void)state;
    const int64_t dx[3] = {2, 5, 3}, dy[3] = {2, 4, 3}, idx[4] = {5, -6, 2, 100};
    pare_tensor *x = rnd_tensor(PARE_DT_FLOAT, 3, dx, 1, 9), *want = tensor(PARE_DT_FLOAT, 3, dy);
    for (int64_t o = 0; o < 2; o++)
        for (int64_t k = 0; k < 3; k++)
            ((float *)want->data)[(o * 4 + 2) * 3 + k] = ((float *)x->data)[(o * 5 + 2) * 3 + k];
    gather_args p = {4, 1, 2, 5, 3, 4, x->data, idx};
    check_launch(go_gather, &p, &want, 1, EXACT, "Gather out of range");
    pare_tensor_free(x);
    pare_tensor_free(want);
}

/* ---- Softmax, LogSoftmax ---- */

typedef struct softmax_args {
    int dtype, log;
    int64_t outer, len, inner;
    const void *x;
} softmax_args;

static int go_softmax(const void *args, void *const *y)
{
    const softmax_args *p = args;
    return pcu_softmax(p->dtype, p->log, p->outer, p->len, p->inner, p->x, y[0], NULL);
}

/* x [outer, len, inner] for Softmax: rows (o, in) of values from -6 to 6,
 * row 0 with a 100 (exp overflows float unless the row's maximum is taken
 * off first), row 1 from -206 to -194 (exp underflows unless it is), the
 * last of three or more rows with a NaN (the row is NaN) */
static pare_tensor *softmax_input(int dtype, int64_t outer, int64_t len, int64_t inner)
{
    const int64_t dx[3] = {outer, len, inner}, rows = outer * inner;
    pare_tensor *x = tensor(dtype, 3, dx);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < len; j++)
            for (int64_t in = 0; in < inner; in++)
                put(x, (size_t)((o * len + j) * inner + in),
                    urand(-6, 6) - (o * inner + in == 1 ? 200 : 0));
    put(x, 0, 100);
    if (rows >= 3)
        put(x, (size_t)((outer - 1) * len * inner + inner - 1), NAN);
    return x;
}

/* Softmax and LogSoftmax over len (opset 13, axis 1). float32: the row's
 * sum is added in another order than on the CPU (its rounding errors
 * differ by about sqrt(len) half-ulps, 300 terms: about 9) and expf is the
 * host's on both sides: 32 ulps; the data are drawn from a seed of their
 * own, not from what other tests drew; LogSoftmax also 1e-5 absolute: the CPU takes off
 * max + log(sum), rounded at the size of the row's maximum (half an ulp of
 * 200 in row 1 is 8e-6), the kernel x - max, then log(sum). A block runs
 * each row, slowly in the emulation: few rows. */
static void check_softmax(int dtype, int64_t outer, int64_t len, int64_t inner)
{
    seed = (uint32_t)(1000 + 7 * len + inner);
    for (int log = 0; log < 2; log++) {
        pare_tensor *x = softmax_input(dtype, outer, len, inner);
        softmax_args p = {dtype, log, outer, len, inner, x->data};
        pare_model *m;
        pare_node *n = one_node(&m, 13, log ? "LogSoftmax" : "Softmax", &x, 1, 1, NULL);
        set_int(n, "axis", 1);
        check_ref(m, &x, 1, 1, go_softmax, &p,
                  dtype != PARE_DT_FLOAT ? NARROW : (tol){32, log ? 1e-5 : 0},
                  "%sSoftmax %s [%lld %lld %lld]", log ? "Log" : "", pare_dtype_name(dtype),
                  (long long)outer, (long long)len, (long long)inner);
        pare_tensor_free(x);
    }
}

/* rows of contiguous elements: lengths short of a warp multiple, and
 * longer than the block of 256 */
static void test_softmax_rows(void **state)
{
    (void)state;
    check_softmax(PARE_DT_FLOAT, 3, 37, 1);
    check_softmax(PARE_DT_FLOAT, 1, 300, 1);
}

/* rows strided by inner > 1 */
static void test_softmax_strided(void **state)
{
    (void)state;
    check_softmax(PARE_DT_FLOAT, 1, 45, 3);
    check_softmax(PARE_DT_FLOAT, 1, 300, 2);
}

static void test_softmax_narrow(void **state)
{
    (void)state;
    check_softmax(PARE_DT_FLOAT16, 1, 45, 3);
    check_softmax(PARE_DT_BFLOAT16, 2, 37, 1);
}

/* ---- LayerNormalization ---- */

typedef struct ln_args {
    int dtype;
    int64_t rows, len, scale_n, bias_n;
    const void *x, *scale, *bias;
    float eps;
    bool stats;
} ln_args;

static int go_layernorm(const void *args, void *const *y)
{
    const ln_args *p = args;
    return pcu_layernorm(p->dtype, p->rows, p->len, p->x, p->scale, p->scale_n, p->bias,
                         p->bias_n, p->eps, y[0], p->stats ? y[1] : NULL,
                         p->stats ? y[2] : NULL, NULL);
}

/* LayerNormalization of x (dtype) [rows, len] (axis -1, epsilon 1e-3, not
 * the default) with scale and bias of len or 1 elements (bias_n 0: none),
 * and with stats the Mean and InvStdDev outputs (float). x is offset from
 * 0, so that a mean left out shows. float32: the mean and variance are
 * summed in another order than on the CPU: 16 ulps, and 2e-6 absolute for
 * results near 0 (y = (x - mean) * inv_std * scale + bias cancels there).
 * float16, bfloat16: y within 1 ulp of its type, the float Mean and
 * InvStdDev (about 5 and 0.6) within 1e-5. */
static void check_layernorm(int dtype, int64_t rows, int64_t len, int64_t scale_n,
                            int64_t bias_n, bool stats)
{
    const int64_t dx[2] = {rows, len};
    const int st_dt[3] = {0, PARE_DT_FLOAT, PARE_DT_FLOAT};
    pare_tensor *ins[3] = {rnd_tensor(dtype, 2, dx, 2, 8), rnd_tensor(dtype, 1, &scale_n, -2, 2),
                           bias_n ? rnd_tensor(dtype, 1, &bias_n, -1, 1) : NULL};
    size_t n_in = bias_n ? 3 : 2, n_out = stats ? 3 : 1;
    ln_args p = {dtype, rows, len, scale_n, bias_n, ins[0]->data, ins[1]->data,
                 bias_n ? ins[2]->data : NULL, 1e-3f, stats};
    pare_model *m;
    pare_node *n = one_node(&m, 17, "LayerNormalization", ins, n_in, n_out, st_dt);
    set_float(n, "epsilon", 1e-3f);
    check_ref(m, ins, n_in, n_out, go_layernorm, &p,
              dtype != PARE_DT_FLOAT ? (tol){1, 1e-5} : (tol){16, 2e-6},
              "LayerNormalization %s [%lld %lld]", pare_dtype_name(dtype), (long long)rows,
              (long long)len);
    free_all(ins, n_in);
}

/* scale and bias of the row's length; a row longer than the block */
static void test_layernorm(void **state)
{
    (void)state;
    check_layernorm(PARE_DT_FLOAT, 2, 37, 37, 37, true);
    check_layernorm(PARE_DT_FLOAT, 1, 300, 300, 300, true);
}

/* one-element scale and bias broadcast; no bias; no Mean and InvStdDev */
static void test_layernorm_broadcast(void **state)
{
    (void)state;
    check_layernorm(PARE_DT_FLOAT, 2, 70, 1, 1, true);
    check_layernorm(PARE_DT_FLOAT, 2, 20, 20, 0, false);
    check_layernorm(PARE_DT_FLOAT, 1, 33, 1, 0, false);
}

static void test_layernorm_narrow(void **state)
{
    (void)state;
    check_layernorm(PARE_DT_FLOAT16, 2, 37, 37, 37, true);
    check_layernorm(PARE_DT_BFLOAT16, 2, 70, 1, 1, true);
}

static int go_rmsnorm(const void *args, void *const *y)
{
    const ln_args *p = args;
    return pcu_rmsnorm(p->dtype, p->rows, p->len, p->x, p->scale, p->scale_n, p->eps, y[0], NULL);
}

/* RMSNormalization of x (dtype) [rows, len] (axis -1, epsilon 1e-3) with a
 * scale of len or 1 elements, against the CPU's: x is offset from 0, so
 * that a mean taken out shows; tolerances as LayerNormalization's */
static void check_rmsnorm(int dtype, int64_t rows, int64_t len, int64_t scale_n)
{
    const int64_t dx[2] = {rows, len};
    pare_tensor *ins[2] = {rnd_tensor(dtype, 2, dx, 2, 8), rnd_tensor(dtype, 1, &scale_n, -2, 2)};
    ln_args p = {dtype, rows, len, scale_n, 0, ins[0]->data, ins[1]->data, NULL, 1e-3f, false};
    pare_model *m;
    pare_node *n = one_node(&m, 23, "RMSNormalization", ins, 2, 1, NULL);
    set_float(n, "epsilon", 1e-3f);
    check_ref(m, ins, 2, 1, go_rmsnorm, &p,
              dtype != PARE_DT_FLOAT ? (tol){1, 1e-5} : (tol){16, 2e-6},
              "RMSNormalization %s [%lld %lld]", pare_dtype_name(dtype), (long long)rows,
              (long long)len);
    free_all(ins, 2);
}

static void test_rmsnorm(void **state)
{
    (void)state;
    check_rmsnorm(PARE_DT_FLOAT, 3, 37, 37);
    check_rmsnorm(PARE_DT_FLOAT, 1, 300, 1);
    check_rmsnorm(PARE_DT_FLOAT16, 2, 64, 64);
    check_rmsnorm(PARE_DT_BFLOAT16, 2, 70, 70);
}

/* ---- ReduceSum, ReduceMean, ReduceMax, ReduceMin ---- */

typedef struct red_args {
    int op, dtype;
    pcu_shape kept, red;
    pcu_strides ks, rs;
    const void *x;
} red_args;

static int go_reduce(const void *args, void *const *y)
{
    const red_args *p = args;
    return pcu_reduce(p->op, p->dtype, &p->kept, &p->ks, &p->red, &p->rs, p->x, y[0],
                      numel(&p->kept), numel(&p->red), NULL);
}

static const char *const red_onnx[PCU_R_COUNT] = {
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceL1",
    "ReduceL2",  "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"};

/* x's dims split into kept and reduced ones, with x's (contiguous) strides;
 * no kept dim: one of 1 */
static void split_dims(const pare_tensor *x, const bool *reduced, red_args *p)
{
    int64_t st[PCU_MAX_RANK], s = 1;
    for (int d = x->rank - 1; d >= 0; d--) {
        st[d] = s;
        s *= x->dims[d];
    }
    p->kept.rank = p->red.rank = 0;
    for (int d = 0; d < x->rank; d++) {
        pcu_shape *sh = reduced[d] ? &p->red : &p->kept;
        pcu_strides *ss = reduced[d] ? &p->rs : &p->ks;
        ss->s[sh->rank] = st[d];
        sh->dims[sh->rank++] = x->dims[d];
    }
    if (!p->kept.rank)
        p->kept = shape(1, (const int64_t[]){1});
}

/* Every reduction of x (dtype) over the dims flagged in reduced (keepdims
 * 0); a NaN at x[nan_at] unless it is negative. Max and Min are exact;
 * float32 Sum and Mean add in another order than the CPU: 8 ulps, and
 * 2e-5 absolute for sums that cancel near 0 (the values are 0.5 to 1 in
 * size, so that one element more or less shows). A block runs each output
 * element, slowly in the emulation: few of them. */
static void check_reduce(int dtype, int rank, const int64_t *dims, const bool *reduced,
                         int64_t nan_at)
{
    double axes[PCU_MAX_RANK];
    int64_t na = 0;
    for (int d = 0; d < rank; d++)
        if (reduced[d])
            axes[na++] = d;
    for (int op = PCU_RSUM; op < PCU_R_COUNT; op++) {
        pare_tensor *ins[2] = {rnd_tensor(dtype, rank, dims, 0.5f, 1),
                               vec(PARE_DT_INT64, na, axes)};
        for (size_t i = 0; i < pare_tensor_numel(ins[0]); i++) /* LogSum: positive */
            if (urand(0, 1) < 0.5f && op != PCU_RLOGSUM)
                put(ins[0], i, -pare_dtype_get_f64(dtype, ins[0]->data, i));
        if (nan_at >= 0)
            put(ins[0], (size_t)nan_at, NAN);
        red_args p = {op, dtype, {0, {0}}, {0, {0}}, {{0}}, {{0}}, ins[0]->data};
        split_dims(ins[0], reduced, &p);
        pare_model *m;
        pare_node *n = one_node(&m, 18, red_onnx[op], ins, 2, 1, NULL);
        set_int(n, "keepdims", 0);
        tol t = op == PCU_RMAX || op == PCU_RMIN ? EXACT
                : dtype != PARE_DT_FLOAT        ? NARROW
                                                : (tol){8, 2e-5};
        check_ref(m, ins, 2, 1, go_reduce, &p, t, "%s %s over %lld of %lld", red_onnx[op],
                  pare_dtype_name(dtype), (long long)numel(&p.red),
                  (long long)pare_tensor_numel(ins[0]));
        free_all(ins, 2);
    }
}

static const int64_t red_dims[3] = {2, 5, 2};
static const bool red_mid[3] = {false, true, false};

/* a middle dim; the outer and inner dims around a kept one; all dims */
static void test_reduce_dims(void **state)
{
    (void)state;
    const bool ends[3] = {true, false, true}, all[3] = {true, true, true};
    check_reduce(PARE_DT_FLOAT, 3, red_dims, red_mid, -1);
    check_reduce(PARE_DT_FLOAT, 3, red_dims, ends, -1);
    check_reduce(PARE_DT_FLOAT, 3, red_dims, all, -1);
}

static void test_reduce_narrow(void **state)
{
    (void)state;
    check_reduce(PARE_DT_FLOAT16, 3, red_dims, red_mid, -1);
    check_reduce(PARE_DT_BFLOAT16, 3, red_dims, red_mid, -1);
}

/* reduced sets longer than the block of 256, contiguous and strided */
static void test_reduce_long(void **state)
{
    (void)state;
    const int64_t d[2] = {2, 300}, e[2] = {600, 2};
    const bool inner[2] = {false, true}, outer[2] = {true, false};
    check_reduce(PARE_DT_FLOAT, 2, d, inner, -1);
    check_reduce(PARE_DT_FLOAT, 2, e, outer, -1);
}

/* a NaN makes its Sum, Mean, Max and Min NaN, and no other */
static void test_reduce_nan(void **state)
{
    (void)state;
    const int64_t e[2] = {2, 400};
    const bool inner[2] = {false, true};
    check_reduce(PARE_DT_FLOAT, 3, red_dims, red_mid, 7);
    check_reduce(PARE_DT_FLOAT, 2, e, inner, 401);
}

/* an empty reduced set: 0 (Sum, L1, L2, SumSquare), NaN (Mean), -inf
 * (Max, LogSum, LogSumExp), +inf (Min), as core.c states and ONNX has it */
static void test_reduce_empty(void **state)
{
    (void)state;
    const int64_t three = 3, zero = 0;
    const double v[PCU_R_COUNT] = {0, NAN, -INFINITY, INFINITY, 0, 0, 0, -INFINITY, -INFINITY};
    float x = 1;
    for (int op = PCU_RSUM; op < PCU_R_COUNT; op++) {
        pare_tensor *want = tensor(PARE_DT_FLOAT, 1, &three);
        for (size_t i = 0; i < 3; i++)
            put(want, i, v[op]);
        red_args p = {op, PARE_DT_FLOAT, shape(1, &three), shape(1, &zero), {{1}}, {{3}}, &x};
        check_launch(go_reduce, &p, &want, 1, EXACT, red_onnx[op]);
        pare_tensor_free(want);
    }
}

/* ---- what the launchers decline ---- */

/* nothing to do: no launch, success */
static void test_empty(void **state)
{
    (void)state;
    pcu_shape sh = {1, {0}};
    pcu_strides s = {{1}};
    long before = pcu_emu_launches();
    assert_int_equal(pcu_binary(PCU_ADD, PCU_F32, &sh, &s, &s, NULL, NULL, NULL, 0, NULL), 0);
    assert_int_equal(pcu_unary(PCU_EXP, PCU_F32, NULL, NULL, 0, 0, 0, NULL), 0);
    assert_int_equal(pcu_cast(PCU_F32, PCU_I32, NULL, NULL, 0, NULL), 0);
    assert_int_equal(pcu_where(4, &sh, &s, &s, &s, NULL, NULL, NULL, NULL, 0, NULL), 0);
    assert_int_equal(pcu_copy_nd(4, &sh, NULL, &s, 0, NULL, &s, 0, 0, NULL), 0);
    assert_int_equal(pcu_gather(4, 3, 5, 2, NULL, NULL, 0, 0, NULL, NULL), 0);
    assert_int_equal(pcu_softmax(PCU_F32, 0, 0, 5, 1, NULL, NULL, NULL), 0);
    assert_int_equal(pcu_layernorm(PCU_F32, 0, 5, NULL, NULL, 1, NULL, 0, 1e-5f, NULL, NULL,
                                   NULL, NULL),
                     0);
    assert_int_equal(pcu_reduce(PCU_RSUM, PCU_F32, &sh, &s, &sh, &s, NULL, NULL, 0, 0, NULL), 0);
    assert_int_equal(pcu_emu_launches(), before);
}

/* an op, dtype or element size the kernels do not have: refused, no launch */
static void test_refusals(void **state)
{
    (void)state;
    pcu_shape sh = {1, {4}};
    pcu_strides s = {{1}};
    float x[4] = {0}, y[4];
    long before = pcu_emu_launches();
    const int bad = cudaErrorInvalidValue;
    assert_int_equal(pcu_binary(PCU_BIN_COUNT, PCU_F32, &sh, &s, &s, x, x, y, 4, NULL), bad);
    assert_int_equal(pcu_binary(PCU_ADD, PCU_I32, &sh, &s, &s, x, x, y, 4, NULL), bad);
    assert_int_equal(pcu_unary(PCU_EXP, PCU_I64, x, y, 4, 0, 0, NULL), bad);
    assert_int_equal(pcu_cast(PARE_DT_DOUBLE, PCU_F32, x, y, 4, NULL), bad);
    assert_int_equal(pcu_cast(PCU_F32, PARE_DT_UINT16, x, y, 4, NULL), bad);
    assert_int_equal(pcu_where(3, &sh, &s, &s, &s, (uint8_t *)x, x, x, y, 4, NULL), bad);
    assert_int_equal(pcu_copy_nd(16, &sh, x, &s, 0, y, &s, 0, 4, NULL), bad);
    assert_int_equal(pcu_gather(3, 1, 4, 1, x, x, 0, 1, y, NULL), bad);
    assert_int_equal(pcu_softmax(PCU_I32, 0, 1, 4, 1, x, y, NULL), bad);
    assert_int_equal(pcu_layernorm(PCU_U8, 1, 4, x, x, 1, NULL, 0, 1e-5f, y, NULL, NULL, NULL),
                     bad);
    assert_int_equal(pcu_reduce(PCU_RSUM, PCU_I64, &sh, &s, &sh, &s, x, y, 4, 4, NULL), bad);
    assert_int_equal(pcu_emu_launches(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_broadcast),
        cmocka_unit_test(test_prelu),
        cmocka_unit_test(test_logic),
        cmocka_unit_test(test_binary_flat),
        cmocka_unit_test(test_binary_compare),
        cmocka_unit_test(test_unary_float32),
        cmocka_unit_test(test_unary_narrow),
        cmocka_unit_test(test_unary_cases_complete),
        cmocka_unit_test(test_cast),
        cmocka_unit_test(test_where),
        cmocka_unit_test(test_copy_transpose),
        cmocka_unit_test(test_copy_slice),
        cmocka_unit_test(test_copy_concat),
        cmocka_unit_test(test_copy_expand),
        cmocka_unit_test(test_gather_int32),
        cmocka_unit_test(test_gather_int64),
        cmocka_unit_test(test_gather_out_of_range),
        cmocka_unit_test(test_pad),
        cmocka_unit_test(test_argmax_argmin),
        cmocka_unit_test(test_gather_elements),
        cmocka_unit_test(test_trilu),
        cmocka_unit_test(test_softmax_rows),
        cmocka_unit_test(test_softmax_strided),
        cmocka_unit_test(test_softmax_narrow),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_layernorm_broadcast),
        cmocka_unit_test(test_layernorm_narrow),
        cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_reduce_dims),
        cmocka_unit_test(test_reduce_narrow),
        cmocka_unit_test(test_reduce_long),
        cmocka_unit_test(test_reduce_nan),
        cmocka_unit_test(test_reduce_empty),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
