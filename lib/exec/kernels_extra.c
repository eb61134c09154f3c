/* Ops no other kernel family owns: Swish (ai.onnx 24) and RegexFullMatch
 * (ai.onnx 20, an RE2-syntax matcher in kernels_extra_regex.c).
 *
 * Attention, RotaryEmbedding, the losses, CumProd, BitCast, TensorScatter,
 * LinearAttention, FlexAttention, CausalConvWithState, the string and ml ops
 * and the training optimisers live in the rnn, shape and elementwise
 * families; they are not repeated here. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "exec/kernel.h"
#include "pare/ir.h"

#define EXTRA_GRAIN 16384

/* ------------------------------------------------------------------ */
/* Swish: y = x * sigmoid(alpha * x)                                   */

typedef struct swish_state {
    float alpha;
} swish_state;

static pare_status swish_init(const pare_node *n, int64_t opset, void **state, pare_error *err)
{
    (void)opset;
    swish_state *s = malloc(sizeof *s);
    if (!s)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    s->alpha = pare_node_attr_float(n, "alpha", 1.0f);
    *state = s;
    return PARE_OK;
}

/* sigmoid without overflow: exp of a non-positive argument only */
static double swish_d(double x, double alpha)
{
    double z = alpha * x;
    double sg;
    if (z >= 0) {
        sg = 1.0 / (1.0 + exp(-z));
    } else {
        double e = exp(z);
        sg = e / (1.0 + e);
    }
    return x * sg;
}

static float swish_f(float x, float alpha)
{
    float z = alpha * x;
    float sg;
    if (z >= 0) {
        sg = 1.0f / (1.0f + expf(-z));
    } else {
        float e = expf(z);
        sg = e / (1.0f + e);
    }
    return x * sg;
}

typedef struct swish_job {
    int dtype;
    float alpha;
    const void *x;
    void *y;
} swish_job;

static void swish_range(void *ctx, int64_t b, int64_t e)
{
    const swish_job *j = ctx;
    switch (j->dtype) {
    case PARE_DT_FLOAT: {
        const float *x = j->x;
        float *y = j->y;
        for (int64_t i = b; i < e; i++)
            y[i] = swish_f(x[i], j->alpha);
        break;
    }
    case PARE_DT_DOUBLE: {
        const double *x = j->x;
        double *y = j->y;
        for (int64_t i = b; i < e; i++)
            y[i] = swish_d(x[i], (double)j->alpha);
        break;
    }
    case PARE_DT_FLOAT16: {
        const uint16_t *x = j->x;
        uint16_t *y = j->y;
        for (int64_t i = b; i < e; i++)
            y[i] = pare_f32_to_f16(swish_f(pare_f16_to_f32(x[i]), j->alpha));
        break;
    }
    case PARE_DT_BFLOAT16: {
        const uint16_t *x = j->x;
        uint16_t *y = j->y;
        for (int64_t i = b; i < e; i++)
            y[i] = pare_f32_to_bf16(swish_f(pare_bf16_to_f32(x[i]), j->alpha));
        break;
    }
    default:
        break;
    }
}

static pare_status swish_run(pare_kctx *k, pare_error *err)
{
    const swish_state *s = k->state;
    const pare_tensor *x = k->n_in > 0 ? k->in[0] : NULL;
    if (!x)
        return pare_error_set(err, PARE_ERR_INVALID, "missing input X");
    if (x->dtype != PARE_DT_FLOAT && x->dtype != PARE_DT_DOUBLE && x->dtype != PARE_DT_FLOAT16 &&
        x->dtype != PARE_DT_BFLOAT16)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "Swish: unsupported type %s",
                              pare_dtype_name(x->dtype));
    pare_tensor *y;
    pare_status st = k->alloc_out(k, 0, x->dtype, x->rank, x->dims, &y, err);
    if (st)
        return st;
    swish_job j = {x->dtype, s->alpha, x->data, y->data};
    pare_parallel_for(k->pool, (int64_t)pare_tensor_numel(x), EXTRA_GRAIN, swish_range, &j);
    return PARE_OK;
}

#include "kernels_extra_regex.c"

const pare_kernel pare_kernels_extra[] = {
    {"", "RegexFullMatch", 20, 0, regex_init, regex_run, regex_release, NULL},
    {"", "Swish", 24, 0, swish_init, swish_run, free, NULL},
    {0},
};
