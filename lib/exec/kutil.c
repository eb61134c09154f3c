/* Helpers shared by kernel families. */
#include <string.h>
#include "exec/kernel.h"

pare_status pare_bcast_dims(int ra, const int64_t *da, int rb, const int64_t *db, int *rank_out,
                            int64_t *dims_out, pare_error *err)
{
    int r = ra > rb ? ra : rb;
    if (r > PARE_MAX_RANK)
        return pare_error_set(err, PARE_ERR_INVALID, "rank %d too large", r);
    for (int i = 0; i < r; i++) {
        int ia = i - (r - ra), ib = i - (r - rb);
        int64_t a = ia >= 0 ? da[ia] : 1;
        int64_t b = ib >= 0 ? db[ib] : 1;
        if (a == b || b == 1)
            dims_out[i] = a;
        else if (a == 1)
            dims_out[i] = b;
        else
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "shapes cannot be broadcast: dim %d is %lld vs %lld", i,
                                  (long long)a, (long long)b);
    }
    *rank_out = r;
    return PARE_OK;
}

void pare_bcast_strides(int rank, const int64_t *out_dims, int r, const int64_t *dims,
                        int64_t *strides)
{
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        int j = i - (rank - r);
        if (j < 0 || dims[j] == 1 || out_dims[i] == 1) {
            strides[i] = 0;
            if (j >= 0)
                s *= dims[j];
        } else {
            strides[i] = s;
            s *= dims[j];
        }
    }
}

int64_t pare_tensor_ints(const pare_tensor *t, int64_t *vals, int64_t max)
{
    if (!t)
        return -1;
    int64_t n = (int64_t)pare_tensor_numel(t);
    if (t->dtype == PARE_DT_INT64) {
        for (int64_t i = 0; i < n && i < max; i++)
            memcpy(&vals[i], (const char *)t->data + i * 8, 8);
    } else if (t->dtype == PARE_DT_INT32) {
        for (int64_t i = 0; i < n && i < max; i++) {
            int32_t v;
            memcpy(&v, (const char *)t->data + i * 4, 4);
            vals[i] = v;
        }
    } else {
        return -1;
    }
    return n;
}

size_t pare_elem_size(int dtype)
{
    if (dtype == PARE_DT_STRING)
        return sizeof(pare_string);
    int b = pare_dtype_bits(dtype);
    return b <= 8 ? 1 : (size_t)b / 8;
}
