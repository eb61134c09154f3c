/* pare/quant.h - quantization: int8 dynamic and static (QDQ), fp8, weight-only
 * int4/int8 (RTN, GPTQ), fp16/bf16 conversion, and the report they share.
 *
 * Every entry point rewrites the model in place and appends what it did to a
 * pare_quant_report; the program pare-quantize (tools/pare-quantize.c) parses
 * options, calls one of them, validates the result, prints the report and
 * saves. Calibration runs through the executor (pare/exec.h) over a dataset
 * (pare/feed.h) batch by batch, keeping only streaming statistics.
 *
 *     pare_quant_report r;
 *     pare_quant_report_init(&r);
 *     pare_static_opts so = PARE_STATIC_OPTS_INIT;
 *     so.calib_path = "calib.npz";
 *     if (pare_quantize_static(m, &so, &r, &err)) ...;
 *     pare_quant_report_json(&r, json);
 *     pare_quant_report_release(&r);
 */
#ifndef PARE_QUANT_H
#define PARE_QUANT_H

#include <stdbool.h>
#include <stdint.h>
#include "pare/ir.h"
#include "pare/report.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- report ------------------------------------------------------------ */

typedef enum pare_quant_entry_kind {
    PARE_QE_QUANTIZED = 1, /* node quantized: how = "int8 per-channel QDQ", "MatMulNBits 4-bit b32" */
    PARE_QE_FLOAT,         /* node left float: how = why ("excluded by --exclude-nodes", "op not quantizable", "accuracy fallback") */
    PARE_QE_RANGE,         /* calibration range of a tensor: lo, hi, scale, zero_point */
    PARE_QE_CLAMPED        /* values clamped in a tensor on conversion: count */
} pare_quant_entry_kind;

typedef struct pare_quant_entry {
    pare_quant_entry_kind kind;
    char *name;    /* node name (QUANTIZED/FLOAT) or tensor name (RANGE/CLAMPED) */
    char *op;      /* op type of the node; NULL for tensors */
    char *how;     /* see above; may be NULL for RANGE/CLAMPED */
    double lo, hi, scale;
    int64_t zero_point;
    uint64_t count;
} pare_quant_entry;

typedef struct pare_quant_report {
    pare_quant_entry *items;
    size_t n, cap;
    uint64_t weight_bytes_before, weight_bytes_after; /* initializer bytes */
    uint64_t calib_samples;                           /* samples seen by calibration */
    double seconds;                                   /* wall time of the quantization call */
} pare_quant_report;

void pare_quant_report_init(pare_quant_report *r);
void pare_quant_report_release(pare_quant_report *r);
/* Append an entry (strings copied; how may be NULL). */
pare_status pare_quant_report_node(pare_quant_report *r, pare_quant_entry_kind kind,
                                   const pare_node *n, const char *how, pare_error *err);
pare_status pare_quant_report_range(pare_quant_report *r, const char *tensor, double lo, double hi,
                                    double scale, int64_t zero_point, pare_error *err);
pare_status pare_quant_report_clamped(pare_quant_report *r, const char *tensor, uint64_t count,
                                      pare_error *err);
/* Bytes of all initializers of the model (main graph and subgraphs). */
uint64_t pare_model_weight_bytes(pare_model *m);

/* ---- what to quantize -------------------------------------------------- */

typedef struct pare_quant_filter {
    const char *const *op_types;         /* only nodes of these op types (NULL: the mode's default set) */
    size_t n_op_types;
    const char *const *exclude_nodes;    /* node names kept float (names that do not exist: an error) */
    size_t n_exclude_nodes;
    const char *const *exclude_op_types;
    size_t n_exclude_op_types;
} pare_quant_filter;

/* Progress of calibration or GPTQ: done of total samples (total -1: unknown). */
typedef void (*pare_quant_progress_fn)(void *ctx, int64_t done, int64_t total);

/* Options common to everything that runs calibration data. */
typedef struct pare_calib_opts {
    const char *path;        /* dataset (pare/feed.h); NULL when the mode needs none */
    int64_t samples;         /* at most this many samples; 0: all */
    int64_t batch;           /* samples per run; 0: 8 */
    uint64_t seed;           /* for any sampling */
    int threads;             /* executor threads; 0: all cores */
    const char *device;      /* executor device; NULL: cpu */
    pare_quant_progress_fn progress;
    void *progress_ctx;
} pare_calib_opts;

/* ---- int8 dynamic (lib/quant/dynamic.c) --------------------------------- */

typedef struct pare_dynamic_opts {
    pare_quant_filter filter;
    bool per_channel;        /* weights per output channel (default true) */
    int weight_type;         /* PARE_DT_INT8 (default) or PARE_DT_UINT8 */
} pare_dynamic_opts;
#define PARE_DYNAMIC_OPTS_INIT {{NULL, 0, NULL, 0, NULL, 0}, true, PARE_DT_INT8}
pare_status pare_quantize_dynamic(pare_model *m, const pare_dynamic_opts *o, pare_quant_report *r,
                                  pare_error *err);

/* ---- int8 / fp8 static QDQ with calibration (lib/quant/static.c, calib.c) */

typedef enum pare_calib_method {
    PARE_CALIB_MINMAX = 1,
    PARE_CALIB_PERCENTILE,
    PARE_CALIB_ENTROPY,
    PARE_CALIB_MSE
} pare_calib_method;

typedef struct pare_static_opts {
    pare_quant_filter filter;
    pare_calib_opts calib;
    pare_calib_method method;   /* default PERCENTILE */
    double percentile;          /* default 99.999 */
    int activation_type;        /* PARE_DT_UINT8 (asymmetric, default) or PARE_DT_INT8 (symmetric);
                                   PARE_DT_FLOAT8E4M3FN for fp8 mode */
    int weight_type;            /* PARE_DT_INT8 (symmetric, default) or PARE_DT_FLOAT8E4M3FN */
    bool per_channel;           /* weights per output channel (default true) */
    bool quantize_bias;         /* int32 bias where the consumer allows (default true) */
    double smooth_quant_alpha;  /* > 0: SmoothQuant migration strength before calibration */
    bool moving_average;        /* running min/max as a moving average */
    double moving_average_constant; /* default 0.01 */
} pare_static_opts;
#define PARE_STATIC_OPTS_INIT {{NULL, 0, NULL, 0, NULL, 0}, {NULL, 0, 0, 0, 0, NULL, NULL, NULL}, \
    PARE_CALIB_PERCENTILE, 99.999, PARE_DT_UINT8, PARE_DT_INT8, true, true, 0.0, false, 0.01}
pare_status pare_quantize_static(pare_model *m, const pare_static_opts *o, pare_quant_report *r,
                                 pare_error *err);

/* ---- weight-only int4/int8 (lib/quant/weight_only.c, gptq.c) ------------ */

typedef enum pare_wq_format {
    PARE_WQ_QDQ = 1,        /* int4/uint4/int8 initializer + blocked DequantizeLinear (opset 21) */
    PARE_WQ_MATMULNBITS     /* com.microsoft MatMulNBits */
} pare_wq_format;

typedef enum pare_wq_algo { PARE_WQ_RTN = 1, PARE_WQ_GPTQ } pare_wq_algo;

typedef struct pare_wq_opts {
    pare_quant_filter filter;   /* default set: MatMul and Gemm with a constant weight */
    int bits;                   /* 4 or 8 */
    int block_size;             /* 32, 64 or 128 (along the reduction axis) */
    bool symmetric;             /* default false: asymmetric with zero points */
    pare_wq_format format;
    pare_wq_algo algo;
    pare_calib_opts calib;      /* GPTQ's data */
    double damp;                /* GPTQ: damping as a share of mean(diag H); default 0.01 */
    bool act_order;             /* GPTQ: columns in order of decreasing diag H */
    bool embeddings;            /* also Gather of embedding tables */
    uint64_t hessian_budget;    /* GPTQ: bytes of Hessians (K*K doubles each) held at
                                   once; layers beyond it get further passes over the
                                   data, with the earlier layers already quantized
                                   (0: 1 GiB) */
} pare_wq_opts;
#define PARE_WQ_OPTS_INIT {{NULL, 0, NULL, 0, NULL, 0}, 4, 32, false, PARE_WQ_QDQ, PARE_WQ_RTN, \
    {NULL, 0, 0, 0, 0, NULL, NULL, NULL}, 0.01, false, false, 0}
pare_status pare_quantize_weight_only(pare_model *m, const pare_wq_opts *o, pare_quant_report *r,
                                      pare_error *err);

/* ---- fp16 / bf16 (lib/quant/float_convert.c) ---------------------------- */

typedef struct pare_fq_opts {
    int dtype;                       /* PARE_DT_FLOAT16 or PARE_DT_BFLOAT16 */
    bool keep_io_types;              /* graph inputs/outputs stay float32 (default true) */
    bool default_block_list;         /* keep the default op block list float32 (default true) */
    const char *const *block_ops;    /* more op types kept float32 */
    size_t n_block_ops;
    const char *const *block_nodes;  /* node names kept float32 */
    size_t n_block_nodes;
    bool storage_only;               /* only the weights change type: each float32
                                        initializer of more than 16 values whose readers
                                        would all convert is stored narrow, with a Cast
                                        to float32 before them; compute, inputs and
                                        outputs stay float32 (runs on onnxruntime's CPU
                                        provider, which lacks bfloat16 compute kernels).
                                        Default false: compute in the narrow type */
} pare_fq_opts;
#define PARE_FQ_OPTS_INIT {PARE_DT_FLOAT16, true, true, NULL, 0, NULL, 0, false}
/* The default block list, NULL-terminated (ops whose float16 result or range is
 * unsafe, documented in man/pare-quantize.1). */
extern const char *const pare_fq_default_block_ops[];
pare_status pare_quantize_float(pare_model *m, const pare_fq_opts *o, pare_quant_report *r,
                                pare_error *err);

/* ---- helpers ----------------------------------------------------------- */

/* True when the model already holds quantized weights or Q/DQ nodes
 * (QuantizeLinear, DequantizeLinear, QLinear*, *Integer, MatMulNBits, int8/int4
 * or fp8 initializers feeding compute). what receives a short reason. */
bool pare_model_is_quantized(pare_model *m, char *what, size_t what_size);

/* Writes the report as a JSON object (schema pare-quantize/1, documented in
 * man/pare-quantize.1) at the writer's current position. */
void pare_quant_report_json(const pare_quant_report *r, pare_json *j);

#ifdef __cplusplus
}
#endif
#endif
