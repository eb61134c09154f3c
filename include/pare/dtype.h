/* pare/dtype.h - ONNX tensor element types and conversions.
 *
 * The numbering is ONNX's TensorProto.DataType, so a dtype read from a file
 * is used as is after pare_dtype_valid(). Sub-byte types (int4, uint4,
 * float4e2m1) are packed two to a byte, low nibble first, as ONNX stores them.
 */
#ifndef PARE_DTYPE_H
#define PARE_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pare_dtype {
    PARE_DT_UNDEFINED = 0,
    PARE_DT_FLOAT = 1,
    PARE_DT_UINT8 = 2,
    PARE_DT_INT8 = 3,
    PARE_DT_UINT16 = 4,
    PARE_DT_INT16 = 5,
    PARE_DT_INT32 = 6,
    PARE_DT_INT64 = 7,
    PARE_DT_STRING = 8,
    PARE_DT_BOOL = 9,
    PARE_DT_FLOAT16 = 10,
    PARE_DT_DOUBLE = 11,
    PARE_DT_UINT32 = 12,
    PARE_DT_UINT64 = 13,
    PARE_DT_COMPLEX64 = 14,
    PARE_DT_COMPLEX128 = 15,
    PARE_DT_BFLOAT16 = 16,
    PARE_DT_FLOAT8E4M3FN = 17,
    PARE_DT_FLOAT8E4M3FNUZ = 18,
    PARE_DT_FLOAT8E5M2 = 19,
    PARE_DT_FLOAT8E5M2FNUZ = 20,
    PARE_DT_UINT4 = 21,
    PARE_DT_INT4 = 22,
    PARE_DT_FLOAT4E2M1 = 23,
    PARE_DT_FLOAT8E8M0 = 24,
    PARE_DT_UINT2 = 25,
    PARE_DT_INT2 = 26,
    PARE_DT_COUNT
} pare_dtype;

/* True for 1..26. */
bool pare_dtype_valid(int dtype);
/* "float32", "float16", "int4", ... as numpy/onnx name them; "undefined" for others. */
const char *pare_dtype_name(int dtype);
/* Parses the names above (and "float" for float32); PARE_DT_UNDEFINED if unknown. */
pare_dtype pare_dtype_from_name(const char *name);
/* Bits per element: 2 for int2/uint2, 4 for int4/uint4/float4e2m1, 8*bytes
 * otherwise; 0 for string/undefined. Sub-byte types are packed low bits first. */
int pare_dtype_bits(int dtype);
/* Bytes needed for n elements (rounded up for sub-byte types); SIZE_MAX on overflow or string. */
size_t pare_dtype_nbytes(int dtype, uint64_t n);
bool pare_dtype_is_float(int dtype);   /* float, double, fp16, bf16, fp8*, fp4 */
bool pare_dtype_is_int(int dtype);     /* signed and unsigned integers, int4/uint4 (not bool) */
bool pare_dtype_is_signed(int dtype);  /* signed ints and floats */

/* Scalar conversions with ONNX semantics: float32 -> narrow types round to
 * nearest even; NaN stays NaN where the type has one. The saturate flag of
 * the float8 converters follows Cast's "saturate" attribute: true clamps
 * out-of-range values, +-inf included (for e5m2 too, as Cast's table says),
 * to the largest finite value; false maps them to inf (e5m2) or NaN (the
 * fn/fnuz types). */
uint16_t pare_f32_to_f16(float f);
float pare_f16_to_f32(uint16_t h);
uint16_t pare_f32_to_bf16(float f);
float pare_bf16_to_f32(uint16_t b);
uint8_t pare_f32_to_f8(int dtype, float f, bool saturate);
float pare_f8_to_f32(int dtype, uint8_t v);
uint8_t pare_f32_to_f4e2m1(float f);       /* 4-bit code, saturating */
float pare_f4e2m1_to_f32(uint8_t code);    /* low 4 bits used */
uint8_t pare_f32_to_e8m0(float f, bool saturate); /* round up, as Cast's default */
float pare_e8m0_to_f32(uint8_t v);

/* Element i of a packed 4-bit buffer, sign-extended for int4. */
int pare_int4_get(const uint8_t *buf, size_t i, bool is_signed);
/* Stores the low 4 bits of v as element i. */
void pare_int4_set(uint8_t *buf, size_t i, int v);
/* The same for 2-bit elements, four to a byte. */
int pare_int2_get(const uint8_t *buf, size_t i, bool is_signed);
void pare_int2_set(uint8_t *buf, size_t i, int v);

/* Converts n elements between any two numeric dtypes (not string), the way
 * ONNX Cast does (saturate as Cast's attribute; float->int truncates toward
 * zero; int->int wraps; ->bool is !=0). Returns false for an unsupported pair. */
bool pare_dtype_convert(int dst_dtype, void *dst, int src_dtype, const void *src, size_t n,
                        bool saturate);

/* Element i read as double / written from double (any numeric dtype). */
double pare_dtype_get_f64(int dtype, const void *buf, size_t i);
void pare_dtype_set_f64(int dtype, void *buf, size_t i, double v);

#ifdef __cplusplus
}
#endif
#endif
