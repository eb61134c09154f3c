/* Elementwise ops: unary math and activations, broadcasting binary ops,
 * comparisons and logic, Where, the variadic ops, Cast, Dropout. */
#include "infer/infer_int.h"

static int fail_bcast(ix_node *c, const ix_shape *a, const ix_shape *b)
{
    char ba[256], bb[256];
    return ix_fail(c, "cannot broadcast %s with %s", ix_shape_str(a, ba, sizeof ba),
                   ix_shape_str(b, bb, sizeof bb));
}

/* Output 0 like input 0 (type and shape). */
static int same(ix_node *c)
{
    ix_shape s;
    ix_sh(c, 0, &s);
    ix_set(c, 0, ix_dt(c, 0), &s);
    return IX_OK;
}

/* Output 0 with input 0's shape and a bool type. */
static int same_bool(ix_node *c)
{
    ix_shape s;
    ix_sh(c, 0, &s);
    ix_set(c, 0, PARE_DT_BOOL, &s);
    return IX_OK;
}

static int unary_const(ix_node *c)
{
    same(c);
    const ix_const *k = ix_cst(c, 0);
    if (k)
        ix_set_const(c, 0, ix_const_unary(c->x, c->n->op_type, k->dtype, k));
    return IX_OK;
}

static int op_identity(ix_node *c)
{
    same(c);
    const ix_const *k = ix_cst(c, 0);
    if (k)
        ix_set_const(c, 0, k);
    return IX_OK;
}

static int op_not(ix_node *c)
{
    same_bool(c);
    const ix_const *k = ix_cst(c, 0);
    if (k)
        ix_set_const(c, 0, ix_const_unary(c->x, "Not", PARE_DT_BOOL, k));
    return IX_OK;
}

/* Broadcasts every present input; result into *s. */
static int bcast_all(ix_node *c, ix_shape *s)
{
    bool first = true;
    ix_shape t;
    s->rank = -1;
    for (size_t i = 0; i < c->nin; i++) {
        if (!ix_has(c, i))
            continue;
        ix_sh(c, i, &t);
        if (first) {
            *s = t;
            first = false;
            continue;
        }
        ix_shape r;
        if (ix_broadcast(s, &t, &r) < 0)
            return fail_bcast(c, s, &t);
        *s = r;
    }
    return IX_OK;
}

static int first_dtype(ix_node *c)
{
    for (size_t i = 0; i < c->nin; i++) {
        int dt = ix_dt(c, i);
        if (dt)
            return dt;
    }
    return 0;
}

/* Binary ops whose result has the first input's type. */
static int binary(ix_node *c)
{
    ix_shape s;
    if (bcast_all(c, &s))
        return IX_ERR;
    int dt = ix_dt(c, 0);
    if (!dt && strcmp(c->n->op_type, "Pow") && strcmp(c->n->op_type, "PRelu"))
        dt = ix_dt(c, 1);
    ix_set(c, 0, dt, &s);
    const char *op = c->n->op_type;
    if (!strcmp(op, "Mod") && ix_attr_i(c, "fmod", 0))
        op = "FMod";
    const ix_const *a = ix_cst(c, 0), *b = ix_cst(c, 1);
    if (a && b && c->nin == 2)
        ix_set_const(c, 0, ix_const_binary(c->x, op, dt ? dt : a->dtype, a, b));
    return IX_OK;
}

/* Comparisons and logic: bool results. */
static int compare(ix_node *c)
{
    ix_shape s;
    if (bcast_all(c, &s))
        return IX_ERR;
    ix_set(c, 0, PARE_DT_BOOL, &s);
    const ix_const *a = ix_cst(c, 0), *b = ix_cst(c, 1);
    if (a && b)
        ix_set_const(c, 0, ix_const_binary(c->x, c->n->op_type, PARE_DT_BOOL, a, b));
    return IX_OK;
}

/* Max, Min, Sum, Mean: any number of inputs. */
static int variadic(ix_node *c)
{
    ix_shape s;
    if (bcast_all(c, &s))
        return IX_ERR;
    int dt = first_dtype(c);
    ix_set(c, 0, dt, &s);
    const char *op = c->n->op_type;
    if (!strcmp(op, "Mean"))
        return IX_OK;
    if (!strcmp(op, "Sum"))
        op = "Add";
    const ix_const *acc = NULL;
    for (size_t i = 0; i < c->nin; i++) {
        const ix_const *k = ix_cst(c, i);
        if (!k)
            return IX_OK;
        acc = acc ? ix_const_binary(c->x, op, dt ? dt : k->dtype, acc, k) : k;
        if (!acc)
            return IX_OK;
    }
    ix_set_const(c, 0, acc);
    return IX_OK;
}

static int op_where(ix_node *c)
{
    ix_shape s;
    if (bcast_all(c, &s))
        return IX_ERR;
    int dt = ix_dt(c, 1);
    ix_set(c, 0, dt ? dt : ix_dt(c, 2), &s);
    ix_set_const(c, 0, ix_const_where(c->x, ix_cst(c, 0), ix_cst(c, 1), ix_cst(c, 2)));
    return IX_OK;
}

static int op_cast(ix_node *c)
{
    /* types newer than this library (int2, ...) pass through as numbers;
     * Cast-1 named the type in a string */
    int to = (int)ix_attr_i(c, "to", 0);
    const char *name = pare_node_attr_string(c->n, "to", NULL);
    if (name) {
        static const struct {
            const char *name;
            int dt;
        } names[] = {{"FLOAT", PARE_DT_FLOAT},   {"UINT8", PARE_DT_UINT8},
                     {"INT8", PARE_DT_INT8},     {"UINT16", PARE_DT_UINT16},
                     {"INT16", PARE_DT_INT16},   {"INT32", PARE_DT_INT32},
                     {"INT64", PARE_DT_INT64},   {"STRING", PARE_DT_STRING},
                     {"BOOL", PARE_DT_BOOL},     {"FLOAT16", PARE_DT_FLOAT16},
                     {"DOUBLE", PARE_DT_DOUBLE}, {"UINT32", PARE_DT_UINT32},
                     {"UINT64", PARE_DT_UINT64}};
        for (size_t i = 0; i < sizeof names / sizeof *names; i++)
            if (!strcmp(names[i].name, name))
                to = names[i].dt;
    }
    if (to <= 0)
        to = 0;
    ix_shape s;
    ix_sh(c, 0, &s);
    ix_set(c, 0, to, &s);
    ix_set_const(c, 0, ix_const_cast(c->x, ix_cst(c, 0), to));
    return IX_OK;
}

static int op_castlike(ix_node *c)
{
    int to = ix_dt(c, 1);
    ix_shape s;
    ix_sh(c, 0, &s);
    ix_set(c, 0, to, &s);
    if (to)
        ix_set_const(c, 0, ix_const_cast(c->x, ix_cst(c, 0), to));
    return IX_OK;
}

static int op_dropout(ix_node *c)
{
    ix_shape s;
    ix_sh(c, 0, &s);
    int dt = ix_dt(c, 0);
    ix_set(c, 0, dt, &s);
    ix_set(c, 1, c->opset >= 7 ? PARE_DT_BOOL : dt, &s);
    return IX_OK;
}

/* Clip: bounds are inputs (opset 11+) or attributes; only the data's type matters. */
static int op_clip(ix_node *c)
{
    return same(c);
}

const ix_op ix_ops_elem[] = {
    {"", "Abs", unary_const},
    {"", "Acos", same},
    {"", "Acosh", same},
    {"", "Add", binary},
    {"", "And", compare},
    {"", "Asin", same},
    {"", "Asinh", same},
    {"", "Atan", same},
    {"", "Atanh", same},
    {"", "BitShift", binary},
    {"", "BitwiseAnd", binary},
    {"", "BitwiseNot", same},
    {"", "BitwiseOr", binary},
    {"", "BitwiseXor", binary},
    {"", "Cast", op_cast},
    {"", "CastLike", op_castlike},
    {"", "Ceil", unary_const},
    {"", "Celu", same},
    {"", "Clip", op_clip},
    {"", "Cos", same},
    {"", "Cosh", same},
    {"", "Div", binary},
    {"", "Dropout", op_dropout},
    {"", "Elu", same},
    {"", "Equal", compare},
    {"", "Erf", same},
    {"", "Exp", same},
    {"", "Floor", unary_const},
    {"", "Gelu", same},
    {"", "Greater", compare},
    {"", "GreaterOrEqual", compare},
    {"", "HardSigmoid", same},
    {"", "HardSwish", same},
    {"", "Hardmax", same},
    {"", "Identity", op_identity},
    {"", "IsInf", same_bool},
    {"", "IsNaN", same_bool},
    {"", "LeakyRelu", same},
    {"", "Less", compare},
    {"", "LessOrEqual", compare},
    {"", "Log", same},
    {"", "LogSoftmax", same},
    {"", "Max", variadic},
    {"", "Mean", variadic},
    {"", "Min", variadic},
    {"", "Mish", same},
    {"", "Mod", binary},
    {"", "Mul", binary},
    {"", "Neg", unary_const},
    {"", "Not", op_not},
    {"", "Or", compare},
    {"", "PRelu", same}, /* the slope broadcasts to X (or, before opset 7, along C) */
    {"", "Pow", binary},
    {"", "Reciprocal", unary_const},
    {"", "Relu", unary_const},
    {"", "Round", unary_const},
    {"", "Selu", same},
    {"", "Shrink", same},
    {"", "Sigmoid", same},
    {"", "Sign", same},
    {"", "Sin", same},
    {"", "Sinh", same},
    {"", "Softmax", same},
    {"", "Softplus", same},
    {"", "Softsign", same},
    {"", "Sqrt", unary_const},
    {"", "Sub", binary},
    {"", "Sum", variadic},
    {"", "Swish", same},
    {"", "Tan", same},
    {"", "Tanh", same},
    {"", "ThresholdedRelu", same},
    {"", "Where", op_where},
    {"", "Xor", compare},
    /* ops that keep their first input's type and shape */
    {"", "CumProd", same},
    {"", "CumSum", same},
    {"", "LRN", same},
    {"", "LpNormalization", same},
    {"", "MeanVarianceNormalization", same},
    {"", "ReverseSequence", same},
    {"", "Scatter", same},
    {"", "ScatterElements", same},
    {"", "ScatterND", same},
    {"", "Trilu", same},
    {"com.microsoft", "BiasGelu", same},
    {"com.microsoft", "FastGelu", same},
    {"com.microsoft", "Gelu", same},
    {"com.microsoft", "QuickGelu", same},
};
const size_t ix_n_ops_elem = sizeof ix_ops_elem / sizeof ix_ops_elem[0];
