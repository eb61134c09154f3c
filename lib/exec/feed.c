/* feed.c - a dataset bound to a session's inputs (pare/feed.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pare/feed.h"

struct pare_feed {
    pare_dataset *ds;
    pare_session *s;
    size_t n_inputs;
    int *map;          /* session input i <- dataset array map[i] */
    int64_t batch, limit, pos;
    int64_t *pick;     /* sampled sample indices, sorted; NULL: the first `limit` */
    int64_t n_pick;
};

static bool is_pb(const pare_dataset *ds)
{
    pare_dataset_kind k = pare_dataset_get_kind(ds);
    return k == PARE_DATASET_PB_SET || k == PARE_DATASET_PB_SETS;
}

/* dims of one sample of array a vs the input's declared shape: ranks and
 * known dims must agree (npz: the sample's dims after the batch axis) */
static bool fits(const pare_dataset *ds, const pare_dataset_array *a, const pare_value *v,
                 char *why, size_t whysz)
{
    if (v->dtype && a->dtype != v->dtype) {
        snprintf(why, whysz, "array '%s' is %s, input '%s' wants %s", a->name ? a->name : "#",
                 pare_dtype_name(a->dtype), v->name, pare_dtype_name(v->dtype));
        return false;
    }
    if (v->shape.rank < 0)
        return true;
    int rank = is_pb(ds) ? a->rank : a->rank + 1;
    if (rank != v->shape.rank) {
        snprintf(why, whysz, "array '%s' gives rank %d, input '%s' has rank %d",
                 a->name ? a->name : "#", rank, v->name, v->shape.rank);
        return false;
    }
    int first = is_pb(ds) ? 0 : 1;
    for (int d = first; d < rank; d++) {
        int64_t want = v->shape.dims[d].value, got = a->dims[d - first];
        if (want >= 0 && got != want) {
            snprintf(why, whysz, "array '%s' has %lld on axis %d, input '%s' wants %lld",
                     a->name ? a->name : "#", (long long)got, d, v->name, (long long)want);
            return false;
        }
    }
    return true;
}

pare_status pare_feed_open(const char *path, pare_session *s, int64_t batch, int64_t max_samples,
                           pare_feed **out, pare_error *err)
{
    *out = NULL;
    if (batch < 1 || max_samples < 0)
        return pare_error_set(err, PARE_ERR_ARG, "%s: batch must be >= 1 and the sample limit "
                              ">= 0", path);
    pare_feed *f = calloc(1, sizeof *f);
    if (!f)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    f->s = s;
    f->batch = batch;
    f->limit = max_samples;
    f->n_inputs = pare_session_input_count(s);
    f->map = calloc(f->n_inputs ? f->n_inputs : 1, sizeof *f->map);
    if (!f->map) {
        free(f);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    pare_status st = pare_dataset_open(path, &f->ds, err);
    if (st) {
        pare_feed_close(f);
        return st;
    }
    size_t na = pare_dataset_num_arrays(f->ds);
    for (size_t i = 0; i < f->n_inputs; i++) {
        const pare_value *v = pare_session_input(s, i);
        f->map[i] = -1;
        for (size_t a = 0; a < na; a++) {
            const pare_dataset_array *arr = pare_dataset_array_at(f->ds, a);
            if (arr->name && strcmp(arr->name, v->name) == 0)
                f->map[i] = (int)a;
        }
        if (f->map[i] < 0 && i < na && !pare_dataset_array_at(f->ds, i)->name)
            f->map[i] = (int)i;
        if (f->map[i] < 0 && is_pb(f->ds) && na == f->n_inputs)
            f->map[i] = (int)i; /* .pb tensors named otherwise: by position */
        if (f->map[i] < 0) {
            pare_error_set(err, PARE_ERR_ARG, "%s: no array for input '%s'; the model expects %s",
                           path, v->name, pare_session_signature(s));
            pare_feed_close(f);
            return PARE_ERR_ARG;
        }
        char why[256];
        if (!fits(f->ds, pare_dataset_array_at(f->ds, (size_t)f->map[i]), v, why, sizeof why)) {
            pare_error_set(err, PARE_ERR_ARG, "%s: %s; the model expects %s", path, why,
                           pare_session_signature(s));
            pare_feed_close(f);
            return PARE_ERR_ARG;
        }
    }
    *out = f;
    return PARE_OK;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

pare_status pare_feed_set_sampling(pare_feed *f, uint64_t seed, pare_error *err)
{
    free(f->pick);
    f->pick = NULL;
    f->n_pick = 0;
    int64_t n = pare_dataset_count(f->ds);
    if (seed == 0 || f->limit <= 0 || n < 0 || f->limit >= n)
        return PARE_OK;
    for (size_t a = 0; a < pare_dataset_num_arrays(f->ds); a++) {
        int dt = pare_dataset_array_at(f->ds, a)->dtype;
        if (dt == PARE_DT_STRING || pare_dtype_bits(dt) < 8)
            return pare_error_set(err, PARE_ERR_UNSUPPORTED, "sampling: array %zu is %s, which "
                                  "cannot be drawn sample by sample", a, pare_dtype_name(dt));
    }
    /* a partial Fisher-Yates shuffle over an index array: the first `limit`
     * entries are a uniform draw without replacement */
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    if (!idx)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++)
        idx[i] = i;
    uint64_t st = seed;
    for (int64_t i = 0; i < f->limit; i++) {
        int64_t j = i + (int64_t)(splitmix64(&st) % (uint64_t)(n - i));
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    qsort(idx, (size_t)f->limit, sizeof *idx, cmp_i64);
    f->pick = idx;
    f->n_pick = f->limit;
    return PARE_OK;
}

/* Rows `pick[from .. from+count)` of every array, concatenated on axis 0. */
static pare_status read_picked(pare_feed *f, int64_t from, int64_t count, pare_tensor ***out,
                               pare_error *err)
{
    size_t na = pare_dataset_num_arrays(f->ds);
    pare_tensor **acc = NULL;
    pare_status st = PARE_OK;
    int64_t i = from, end = from + count;
    while (i < end) {
        int64_t run = 1;
        while (i + run < end && f->pick[i + run] == f->pick[i] + run)
            run++;
        pare_tensor **part = NULL;
        if ((st = pare_dataset_read(f->ds, f->pick[i], run, &part, err)))
            break;
        if (!acc) {
            acc = part;
        } else {
            for (size_t a = 0; a < na && !st; a++) {
                pare_tensor *x = acc[a], *y = part[a], *z = NULL;
                if (x->rank < 1 || x->rank != y->rank || x->dtype != y->dtype) {
                    st = pare_error_set(err, PARE_ERR_INVALID, "sampling: array %zu changes "
                                        "its shape between samples", a);
                    break;
                }
                int64_t dims[PARE_MAX_RANK];
                memcpy(dims, x->dims, (size_t)x->rank * sizeof *dims);
                dims[0] += y->dims[0];
                if (!(st = pare_tensor_new(x->name, x->dtype, x->rank, dims, &z, err))) {
                    if (z->nbytes != x->nbytes + y->nbytes) {
                        st = pare_error_set(err, PARE_ERR_INVALID, "sampling: array %zu "
                                            "changes its shape between samples", a);
                        pare_tensor_free(z);
                        break;
                    }
                    memcpy(z->data, x->data, x->nbytes);
                    memcpy((char *)z->data + x->nbytes, y->data, y->nbytes);
                    pare_tensor_free(x);
                    acc[a] = z;
                }
            }
            pare_tensors_free(part, na);
        }
        i += run;
    }
    if (st) {
        pare_tensors_free(acc, acc ? na : 0);
        return st;
    }
    *out = acc;
    return PARE_OK;
}

pare_status pare_feed_next(pare_feed *f, pare_tensor ***inputs, int64_t *samples, pare_error *err)
{
    *inputs = NULL;
    *samples = 0;
    int64_t want = f->batch;
    if (f->limit > 0) {
        if (f->pos >= f->limit)
            return PARE_OK;
        if (want > f->limit - f->pos)
            want = f->limit - f->pos;
    }
    pare_tensor **batch = NULL;
    int64_t got = 0;
    pare_status st;
    if (f->pick) {
        st = read_picked(f, f->pos, want, &batch, err);
        got = st ? 0 : want;
    } else {
        st = pare_dataset_next(f->ds, want, &batch, &got, err);
    }
    if (st || !batch || got == 0) {
        pare_tensors_free(batch, batch ? pare_dataset_num_arrays(f->ds) : 0);
        return st;
    }
    size_t na = pare_dataset_num_arrays(f->ds);
    pare_tensor **ins = calloc(f->n_inputs ? f->n_inputs : 1, sizeof *ins);
    if (!ins) {
        pare_tensors_free(batch, na);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < f->n_inputs; i++) {
        size_t a = (size_t)f->map[i];
        if (batch[a]) {
            ins[i] = batch[a];
            batch[a] = NULL;
        } else {
            /* one array feeding two inputs: copy the one already taken */
            size_t j = 0;
            while (j < i && f->map[j] != f->map[i])
                j++;
            if ((st = pare_tensor_clone(ins[j], &ins[i], err)))
                break;
        }
        if ((st = pare_tensor_set_name(ins[i], pare_session_input(f->s, i)->name, err)))
            break;
    }
    pare_tensors_free(batch, na);
    if (st) {
        pare_tensors_free(ins, f->n_inputs);
        return st;
    }
    f->pos += got;
    *inputs = ins;
    *samples = got;
    return PARE_OK;
}

void pare_feed_rewind(pare_feed *f)
{
    pare_dataset_rewind(f->ds);
    f->pos = 0;
}

int64_t pare_feed_count(const pare_feed *f)
{
    int64_t n = pare_dataset_count(f->ds);
    if (n < 0)
        return -1;
    return f->limit > 0 && f->limit < n ? f->limit : n;
}

int64_t pare_feed_position(const pare_feed *f) { return f->pos; }

pare_dataset *pare_feed_dataset(pare_feed *f) { return f->ds; }

void pare_feed_close(pare_feed *f)
{
    if (!f)
        return;
    pare_dataset_close(f->ds);
    free(f->pick);
    free(f->map);
    free(f);
}
