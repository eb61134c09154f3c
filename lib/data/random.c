/* Deterministic random tensors for inputs nobody supplied. */
#include <string.h>
#include "pare/data.h"

/* splitmix64: tiny, fast, and the same numbers on every platform. */
static uint64_t next64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1), exactly representable in float32. */
static float unit_f32(uint64_t *s)
{
    return (float)(next64(s) >> 40) * (1.0f / 8388608.0f) - 1.0f;
}

static double unit_f64(uint64_t *s)
{
    return (double)(next64(s) >> 11) * (1.0 / 4503599627370496.0) - 1.0;
}

/* Signed: [-8, 8); unsigned: [0, 16). */
static int32_t small_int(uint64_t *s, bool is_signed)
{
    int32_t v = (int32_t)(next64(s) >> 60);
    return is_signed ? v - 8 : v;
}

pare_status pare_tensor_random(const char *name, int dtype, int rank, const int64_t *dims,
                               uint64_t seed, pare_tensor **out, pare_error *err)
{
    if (!out)
        return pare_error_set(err, PARE_ERR_ARG, "NULL argument");
    if (dtype == PARE_DT_STRING)
        return pare_error_set(err, PARE_ERR_UNSUPPORTED, "random string tensors are not supported");
    pare_tensor *t;
    pare_status st = pare_tensor_new(name, dtype, rank, dims, &t, err);
    if (st)
        return st;
    uint64_t s = seed;
    uint64_t n = pare_tensor_numel(t);
    unsigned char *b = t->data;
    for (uint64_t i = 0; i < n; i++) {
        switch (dtype) {
        case PARE_DT_FLOAT: ((float *)t->data)[i] = unit_f32(&s); break;
        case PARE_DT_DOUBLE: ((double *)t->data)[i] = unit_f64(&s); break;
        case PARE_DT_COMPLEX64:
            ((float *)t->data)[2 * i] = unit_f32(&s);
            ((float *)t->data)[2 * i + 1] = unit_f32(&s);
            break;
        case PARE_DT_COMPLEX128:
            ((double *)t->data)[2 * i] = unit_f64(&s);
            ((double *)t->data)[2 * i + 1] = unit_f64(&s);
            break;
        case PARE_DT_BOOL: b[i] = (unsigned char)(next64(&s) >> 63); break;
        case PARE_DT_INT4: pare_int4_set(b, (size_t)i, small_int(&s, true)); break;
        case PARE_DT_UINT4: pare_int4_set(b, (size_t)i, small_int(&s, false)); break;
        case PARE_DT_INT8: ((int8_t *)t->data)[i] = (int8_t)small_int(&s, true); break;
        case PARE_DT_UINT8: ((uint8_t *)t->data)[i] = (uint8_t)small_int(&s, false); break;
        case PARE_DT_INT16: ((int16_t *)t->data)[i] = (int16_t)small_int(&s, true); break;
        case PARE_DT_UINT16: ((uint16_t *)t->data)[i] = (uint16_t)small_int(&s, false); break;
        case PARE_DT_INT32: ((int32_t *)t->data)[i] = small_int(&s, true); break;
        case PARE_DT_UINT32: ((uint32_t *)t->data)[i] = (uint32_t)small_int(&s, false); break;
        case PARE_DT_INT64: ((int64_t *)t->data)[i] = small_int(&s, true); break;
        case PARE_DT_UINT64: ((uint64_t *)t->data)[i] = (uint64_t)small_int(&s, false); break;
        case PARE_DT_FLOAT16: ((uint16_t *)t->data)[i] = pare_f32_to_f16(unit_f32(&s)); break;
        case PARE_DT_BFLOAT16: ((uint16_t *)t->data)[i] = pare_f32_to_bf16(unit_f32(&s)); break;
        default: /* float8 and float4 kinds */
            pare_dtype_set_f64(dtype, t->data, (size_t)i, unit_f32(&s));
            break;
        }
    }
    *out = t;
    return PARE_OK;
}
