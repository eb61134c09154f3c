/* Quantization ops: (Dynamic)QuantizeLinear, DequantizeLinear, in ai.onnx
 * and com.microsoft. The shapes pass through; the types need care. */
#include "infer/infer_int.h"

static int op_quantize(ix_node *c)
{
    ix_shape x;
    ix_sh(c, 0, &x);
    int dt;
    if (ix_has(c, 2)) {
        dt = ix_dt(c, 2); /* the zero point's type */
    } else {
        int64_t od = c->n->domain[0] == 0 && c->opset >= 21 ? ix_attr_i(c, "output_dtype", 0) : 0;
        dt = od ? (int)od : PARE_DT_UINT8;
    }
    ix_set(c, 0, dt, &x);
    return IX_OK;
}

static int op_dequantize(ix_node *c)
{
    ix_shape x;
    ix_sh(c, 0, &x);
    int64_t od = c->n->domain[0] == 0 && c->opset >= 23 ? ix_attr_i(c, "output_dtype", 0) : 0;
    int dt = od ? (int)od : ix_dt(c, 1);
    if (!dt && c->n->domain[0] == 0 && c->opset < 19)
        dt = PARE_DT_FLOAT;
    ix_set(c, 0, dt, &x);
    return IX_OK;
}

static int op_dynamic_quantize(ix_node *c)
{
    ix_shape x, s;
    ix_sh(c, 0, &x);
    ix_set(c, 0, PARE_DT_UINT8, &x);
    s.rank = 0;
    ix_set(c, 1, PARE_DT_FLOAT, &s);
    ix_set(c, 2, PARE_DT_UINT8, &s);
    return IX_OK;
}

const ix_op ix_ops_quant[] = {
    {"", "DequantizeLinear", op_dequantize},
    {"", "DynamicQuantizeLinear", op_dynamic_quantize},
    {"", "QuantizeLinear", op_quantize},
    {"com.microsoft", "DequantizeLinear", op_dequantize},
    {"com.microsoft", "QuantizeLinear", op_quantize},
};
const size_t ix_n_ops_quant = sizeof ix_ops_quant / sizeof ix_ops_quant[0];
