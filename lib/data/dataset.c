/* Datasets: model inputs for many samples, read a batch at a time. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "data_internal.h"

typedef struct npz_part {
    char *path;
    uint64_t first;     /* global index of its first sample */
    uint64_t rows;
    size_t *member;     /* per dataset array: the member index in this file */
} npz_part;

struct pare_dataset {
    pare_dataset_kind kind;
    char *path;
    size_t n_arrays;
    pare_dataset_array *arrays; /* name and dims owned (cast away const on free) */
    int64_t count;
    int64_t next;
    /* npz */
    npz_part *parts;
    size_t n_parts;
    pare_npz *z;        /* the one file kept open */
    size_t z_part;
    /* test data */
    char **sets;        /* folder of each sample */
    size_t n_sets;
};

static void free_arrays(pare_dataset *ds)
{
    for (size_t i = 0; ds->arrays && i < ds->n_arrays; i++) {
        free((char *)ds->arrays[i].name);
        free((int64_t *)ds->arrays[i].dims);
    }
    free(ds->arrays);
    ds->arrays = NULL;
}

void pare_dataset_close(pare_dataset *ds)
{
    if (!ds)
        return;
    free_arrays(ds);
    for (size_t i = 0; i < ds->n_parts; i++) {
        free(ds->parts[i].path);
        free(ds->parts[i].member);
    }
    free(ds->parts);
    pare_npz_close(ds->z);
    free_names(ds->sets, ds->n_sets);
    free(ds->path);
    free(ds);
}

/* pare_tensors_free lives in lib/core/tensor.c */

pare_dataset_kind pare_dataset_get_kind(const pare_dataset *ds) { return ds->kind; }
int64_t pare_dataset_count(const pare_dataset *ds) { return ds ? ds->count : -1; }
size_t pare_dataset_num_arrays(const pare_dataset *ds) { return ds ? ds->n_arrays : 0; }

const pare_dataset_array *pare_dataset_array_at(const pare_dataset *ds, size_t i)
{
    return ds && i < ds->n_arrays ? &ds->arrays[i] : NULL;
}

void pare_dataset_rewind(pare_dataset *ds)
{
    if (ds)
        ds->next = 0;
}

static pare_status set_array(pare_dataset_array *a, const char *name, int dtype, int rank,
                             const int64_t *dims, pare_error *err)
{
    char *n = NULL;
    int64_t *d = NULL;
    if (name && *name && !(n = strdup(name)))
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    if (rank > 0) {
        if (!(d = malloc((size_t)rank * sizeof *d))) {
            free(n);
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        }
        memcpy(d, dims, (size_t)rank * sizeof *d);
    }
    a->name = n;
    a->dtype = dtype;
    a->rank = rank;
    a->dims = d;
    return PARE_OK;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static bool is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* ---- npz ---- */

static pare_status open_part(pare_dataset *ds, size_t p, pare_error *err)
{
    if (ds->z && ds->z_part == p)
        return PARE_OK;
    pare_npz_close(ds->z);
    ds->z = NULL;
    pare_status st = pare_npz_open(ds->parts[p].path, &ds->z, err);
    if (!st)
        ds->z_part = p;
    return st;
}

/* Reads the headers of part p and checks them against the arrays so far
 * (or sets the arrays, for the first part). */
static pare_status scan_part(pare_dataset *ds, size_t p, pare_error *err)
{
    npz_part *part = &ds->parts[p];
    pare_status st = open_part(ds, p, err);
    if (st)
        return st;
    pare_npz *z = ds->z;
    size_t n = pare_npz_count(z);
    if (p == 0) {
        if (n == 0)
            return pare_error_set(err, PARE_ERR_INVALID, "%s: has no arrays", part->path);
        if (!(ds->arrays = calloc(n, sizeof *ds->arrays)))
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        ds->n_arrays = n;
    } else if (n != ds->n_arrays) {
        return pare_error_set(err, PARE_ERR_INVALID, "%s: has %zu arrays, %s has %zu", part->path,
                              n, ds->parts[0].path, ds->n_arrays);
    }
    if (!(part->member = calloc(ds->n_arrays, sizeof *part->member)))
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    for (size_t a = 0; a < ds->n_arrays; a++) {
        size_t m = a;
        if (p > 0) {
            int64_t k = pare_npz_find(z, ds->arrays[a].name);
            if (k < 0)
                return pare_error_set(err, PARE_ERR_INVALID, "%s: has no array '%s' (%s has)",
                                      part->path, ds->arrays[a].name, ds->parts[0].path);
            m = (size_t)k;
        }
        part->member[a] = m;
        pare_npy_info info;
        if ((st = pare_npz_info(z, m, &info, err)))
            return st;
        const char *name = pare_npz_name(z, m);
        if (info.rank < 1)
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "%s: array '%s' is a scalar (samples go on axis 0; read a file of "
                                  "whole inputs with pare_npz_read)", part->path,
                                  name);
        if (a == 0)
            part->rows = (uint64_t)info.dims[0];
        else if ((uint64_t)info.dims[0] != part->rows)
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "%s: array '%s' has %lld samples, '%s' has %llu", part->path,
                                  name, (long long)info.dims[0],
                                  pare_npz_name(z, part->member[0]),
                                  (unsigned long long)part->rows);
        if (p == 0) {
            if ((st = set_array(&ds->arrays[a], name, info.dtype, info.rank - 1, info.dims + 1,
                                err)))
                return st;
            continue;
        }
        const pare_dataset_array *want = &ds->arrays[a];
        bool same = info.dtype == want->dtype && info.rank - 1 == want->rank;
        for (int d = 0; same && d < want->rank; d++)
            same = info.dims[d + 1] == want->dims[d];
        if (!same) {
            char a1[256], a2[256];
            pare_dims_str(info.rank - 1, info.dims + 1, a1, sizeof a1);
            pare_dims_str(want->rank, want->dims, a2, sizeof a2);
            return pare_error_set(err, PARE_ERR_INVALID,
                                  "%s: array '%s' has samples of %s %s, %s has %s %s", part->path,
                                  name, pare_dtype_name(info.dtype), a1, ds->parts[0].path,
                                  pare_dtype_name(want->dtype), a2);
        }
    }
    return PARE_OK;
}

static pare_status open_npz_parts(pare_dataset *ds, char **paths, size_t n, pare_error *err)
{
    if (!(ds->parts = calloc(n, sizeof *ds->parts)))
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    uint64_t total = 0;
    for (size_t p = 0; p < n; p++) {
        ds->parts[p].path = paths[p];
        paths[p] = NULL;
        ds->n_parts++;
        pare_status st = scan_part(ds, p, err);
        if (st)
            return st;
        ds->parts[p].first = total;
        if (ds->parts[p].rows > (uint64_t)INT64_MAX - total)
            return pare_error_set(err, PARE_ERR_LIMIT, "too many samples");
        total += ds->parts[p].rows;
    }
    ds->count = (int64_t)total;
    return PARE_OK;
}

static pare_status alloc_batch(pare_dataset *ds, int64_t count, pare_tensor ***out,
                               pare_error *err)
{
    pare_tensor **ts = calloc(ds->n_arrays, sizeof *ts);
    if (!ts)
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    for (size_t a = 0; a < ds->n_arrays; a++) {
        const pare_dataset_array *arr = &ds->arrays[a];
        int64_t dims[PARE_MAX_RANK];
        dims[0] = count;
        if (arr->rank)
            memcpy(dims + 1, arr->dims, (size_t)arr->rank * sizeof *dims);
        pare_status st = pare_tensor_new(arr->name, arr->dtype, arr->rank + 1, dims, &ts[a], err);
        if (st) {
            pare_tensors_free(ts, ds->n_arrays);
            return st;
        }
    }
    *out = ts;
    return PARE_OK;
}

static pare_status read_npz(pare_dataset *ds, int64_t start, int64_t count, pare_tensor ***out,
                            pare_error *err)
{
    pare_tensor **ts;
    pare_status st = alloc_batch(ds, count, &ts, err);
    if (st)
        return st;
    /* the part holding sample start: the last whose first <= start */
    size_t lo = 0, hi = ds->n_parts;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (ds->parts[mid].first <= (uint64_t)start)
            lo = mid;
        else
            hi = mid;
    }
    uint64_t done = 0;
    for (size_t p = lo; done < (uint64_t)count && p < ds->n_parts; p++) {
        npz_part *part = &ds->parts[p];
        uint64_t at = (uint64_t)start + done;
        if (at >= part->first + part->rows)
            continue;
        uint64_t local = at - part->first;
        uint64_t take = part->rows - local;
        if (take > (uint64_t)count - done)
            take = (uint64_t)count - done;
        if ((st = open_part(ds, p, err)))
            break;
        for (size_t a = 0; a < ds->n_arrays && !st; a++) {
            pare_tensor *piece;
            if ((st = pare_npz_read_rows(ds->z, part->member[a], local, take, &piece, err)))
                break;
            size_t row_bytes = count ? ts[a]->nbytes / (size_t)count : 0;
            if (piece->nbytes)
                memcpy((unsigned char *)ts[a]->data + done * row_bytes, piece->data, piece->nbytes);
            pare_tensor_free(piece);
        }
        done += take;
    }
    if (st) {
        pare_tensors_free(ts, ds->n_arrays);
        return st;
    }
    *out = ts;
    return PARE_OK;
}

/* ---- test_data_set folders ---- */

/* Numeric suffix of "input_12.pb" or "test_data_set_3"; -1 if none. */
static int64_t index_after(const char *name, const char *prefix, const char *suffix)
{
    size_t pl = strlen(prefix), nl = strlen(name), sl = strlen(suffix);
    if (nl <= pl + sl || strncmp(name, prefix, pl) != 0 || strcmp(name + nl - sl, suffix) != 0)
        return -1;
    int64_t v = 0;
    for (size_t i = pl; i < nl - sl; i++) {
        if (name[i] < '0' || name[i] > '9' || v > 100000000)
            return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

/* The input_K.pb files of a set, in order of K; K must run 0..n-1. */
static pare_status set_inputs(const char *dir, char ***files, size_t *n, pare_error *err)
{
    char **names;
    size_t nn;
    pare_status st = list_dir(dir, &names, &nn, err);
    if (st)
        return st;
    size_t count = 0;
    for (size_t i = 0; i < nn; i++)
        if (index_after(names[i], "input_", ".pb") >= 0)
            count++;
    char **v = calloc(count ? count : 1, sizeof *v);
    if (!v) {
        free_names(names, nn);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < nn && !st; i++) {
        int64_t k = index_after(names[i], "input_", ".pb");
        if (k < 0)
            continue;
        if ((uint64_t)k >= count || v[k])
            st = pare_error_set(err, PARE_ERR_INVALID, "%s: inputs are not numbered 0..%zu (%s)",
                                dir, count - 1, names[i]);
        else if (!(v[k] = path_join(dir, names[i])))
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    free_names(names, nn);
    if (!st && count == 0)
        st = pare_error_set(err, PARE_ERR_INVALID, "%s: no input_*.pb files", dir);
    if (st) {
        free_names(v, count);
        return st;
    }
    *files = v;
    *n = count;
    return PARE_OK;
}

/* Reads every input of set s. */
static pare_status read_set(pare_dataset *ds, size_t s, pare_tensor ***out, pare_error *err)
{
    char **files = NULL;
    size_t n = 0;
    pare_status st = set_inputs(ds->sets[s], &files, &n, err);
    if (st)
        return st;
    if (ds->arrays && n != ds->n_arrays) {
        free_names(files, n);
        return pare_error_set(err, PARE_ERR_INVALID, "%s: has %zu inputs, %s has %zu", ds->sets[s],
                              n, ds->sets[0], ds->n_arrays);
    }
    pare_tensor **ts = calloc(n, sizeof *ts);
    if (!ts) {
        free_names(files, n);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n && !st; i++) {
        if ((st = pare_tensor_read_file(files[i], &ts[i], err)))
            break;
        if (ts[i]->dtype == PARE_DT_STRING)
            st = pare_error_set(err, PARE_ERR_UNSUPPORTED, "%s: string tensors are not supported",
                                files[i]);
        if (!st && ds->arrays) {
            const pare_dataset_array *a = &ds->arrays[i];
            const char *nm = ts[i]->name && *ts[i]->name ? ts[i]->name : NULL;
            if (ts[i]->dtype != a->dtype)
                st = pare_error_set(err, PARE_ERR_INVALID, "%s: dtype %s, %s has %s", files[i],
                                    pare_dtype_name(ts[i]->dtype), ds->sets[0],
                                    pare_dtype_name(a->dtype));
            else if (nm && a->name && strcmp(nm, a->name) != 0)
                st = pare_error_set(err, PARE_ERR_INVALID, "%s: names input '%s', %s names '%s'",
                                    files[i], nm, ds->sets[0], a->name);
        }
    }
    free_names(files, n);
    if (st) {
        pare_tensors_free(ts, n);
        return st;
    }
    *out = ts;
    if (!ds->arrays) {
        if (!(ds->arrays = calloc(n, sizeof *ds->arrays))) {
            pare_tensors_free(ts, n);
            return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        }
        ds->n_arrays = n;
        for (size_t i = 0; i < n && !st; i++)
            st = set_array(&ds->arrays[i], ts[i]->name, ts[i]->dtype, ts[i]->rank, ts[i]->dims, err);
        if (st) {
            pare_tensors_free(ts, n);
            return st;
        }
    }
    return PARE_OK;
}

static pare_status read_sets(pare_dataset *ds, int64_t start, int64_t count, pare_tensor ***out,
                             pare_error *err)
{
    size_t na = ds->n_arrays;
    pare_tensor ***sets = calloc((size_t)count, sizeof *sets);
    pare_tensor **res = calloc(na, sizeof *res);
    pare_status st = PARE_OK;
    if (!sets || !res)
        st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    int64_t got = 0;
    for (; !st && got < count; got++)
        st = read_set(ds, (size_t)(start + got), &sets[got], err);
    if (!st)
        got = count;
    else if (got > 0)
        got--; /* the failed set holds nothing */
    for (size_t a = 0; !st && a < na; a++) {
        if (count == 1) {
            res[a] = sets[0][a];
            sets[0][a] = NULL;
            st = pare_tensor_set_name(res[a], ds->arrays[a].name, err);
            continue;
        }
        /* concatenate on axis 0 */
        const pare_tensor *f = sets[0][a];
        int64_t dims[PARE_MAX_RANK];
        if (f->rank < 1) {
            st = pare_error_set(err, PARE_ERR_INVALID,
                                "%s: input %zu is a scalar; read one sample at a time", ds->sets[start], a);
            break;
        }
        memcpy(dims, f->dims, (size_t)f->rank * sizeof *dims);
        dims[0] = 0;
        for (int64_t s = 0; s < count && !st; s++) {
            const pare_tensor *t = sets[s][a];
            bool same = t->rank == f->rank;
            for (int d = 1; same && d < t->rank; d++)
                same = t->dims[d] == f->dims[d];
            if (!same) {
                char x[256], y[256];
                st = pare_error_set(err, PARE_ERR_INVALID,
                                    "%s: input %zu has shape %s, %s has %s; read one sample at a time",
                                    ds->sets[start + s], a, pare_dims_str(t->rank, t->dims, x, sizeof x),
                                    ds->sets[start], pare_dims_str(f->rank, f->dims, y, sizeof y));
            } else if (t->dims[0] > INT64_MAX - dims[0]) {
                st = pare_error_set(err, PARE_ERR_LIMIT, "batch too large");
            } else {
                dims[0] += t->dims[0];
            }
        }
        if (st || (st = pare_tensor_new(ds->arrays[a].name, f->dtype, f->rank, dims, &res[a], err)))
            break;
        size_t off = 0;
        for (int64_t s = 0; s < count; s++) {
            const pare_tensor *t = sets[s][a];
            if (t->nbytes)
                memcpy((unsigned char *)res[a]->data + off, t->data, t->nbytes);
            off += t->nbytes;
        }
    }
    for (int64_t s = 0; sets && s < got; s++)
        pare_tensors_free(sets[s], na);
    free(sets);
    if (st) {
        pare_tensors_free(res, na);
        return st;
    }
    *out = res;
    return PARE_OK;
}

static int cmp_sets(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    const char *bx = strrchr(x, '/'), *by = strrchr(y, '/');
    int64_t i = index_after(bx ? bx + 1 : x, "test_data_set_", "");
    int64_t j = index_after(by ? by + 1 : y, "test_data_set_", "");
    if (i >= 0 && j >= 0 && i != j)
        return i < j ? -1 : 1;
    return strcmp(x, y);
}

static pare_status open_sets(pare_dataset *ds, pare_error *err)
{
    pare_tensor **first;
    pare_status st = read_set(ds, 0, &first, err);
    if (st)
        return st;
    pare_tensors_free(first, ds->n_arrays);
    ds->count = (int64_t)ds->n_sets;
    return PARE_OK;
}

/* ---- open, read ---- */

static pare_status open_dir(pare_dataset *ds, const char *path, pare_error *err)
{
    char **names;
    size_t n;
    pare_status st = list_dir(path, &names, &n, err);
    if (st)
        return st;
    size_t n_pb = 0, n_sets = 0, n_npz = 0;
    char **full = calloc(n ? n : 1, sizeof *full);
    if (!full) {
        free_names(names, n);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (!(full[i] = path_join(path, names[i]))) {
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
            break;
        }
        if (index_after(names[i], "input_", ".pb") >= 0)
            n_pb++;
        else if (strncmp(names[i], "test_data_set", 13) == 0 && is_dir(full[i]))
            n_sets++;
        else if (ends_with(names[i], ".npz") && is_file(full[i]))
            n_npz++;
    }
    if (!st && n_pb) {
        ds->kind = PARE_DATASET_PB_SET;
        if (!(ds->sets = calloc(1, sizeof *ds->sets)) || !(ds->sets[0] = strdup(path)))
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        else
            ds->n_sets = 1;
        if (!st)
            st = open_sets(ds, err);
    } else if (!st && (n_sets || n_npz)) {
        /* keep the wanted entries of full, in order */
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            bool want = n_sets ? strncmp(names[i], "test_data_set", 13) == 0 && is_dir(full[i])
                               : ends_with(names[i], ".npz") && is_file(full[i]);
            if (want) {
                char *keep = full[i];
                full[i] = NULL;
                full[k++] = keep;
            } else {
                free(full[i]);
                full[i] = NULL;
            }
        }
        if (n_sets) {
            ds->kind = PARE_DATASET_PB_SETS;
            qsort(full, k, sizeof *full, cmp_sets);
            ds->sets = full;
            ds->n_sets = k;
            full = NULL;
            st = open_sets(ds, err);
        } else {
            ds->kind = PARE_DATASET_NPZ_DIR;
            st = open_npz_parts(ds, full, k, err);
        }
    } else if (!st) {
        st = pare_error_set(err, PARE_ERR_INVALID,
                            "%s: no .npz files, input_*.pb files or test_data_set_* folders", path);
    }
    free_names(full, n);
    free_names(names, n);
    return st;
}

pare_status pare_dataset_open(const char *path, pare_dataset **out, pare_error *err)
{
    if (!path || !out)
        return pare_error_set(err, PARE_ERR_ARG, "NULL argument");
    struct stat sb;
    if (stat(path, &sb) != 0)
        return pare_error_set(err, PARE_ERR_IO, "%s: %s", path, strerror(errno));
    pare_dataset *ds = calloc(1, sizeof *ds);
    if (!ds || !(ds->path = strdup(path))) {
        free(ds);
        return pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
    }
    pare_status st;
    if (S_ISDIR(sb.st_mode)) {
        st = open_dir(ds, path, err);
    } else {
        ds->kind = PARE_DATASET_NPZ;
        char *one = strdup(path);
        if (!one)
            st = pare_error_set(err, PARE_ERR_NOMEM, "out of memory");
        else
            st = open_npz_parts(ds, &one, 1, err);
        free(one);
    }
    if (st) {
        pare_dataset_close(ds);
        return st;
    }
    *out = ds;
    return PARE_OK;
}

pare_status pare_dataset_read(pare_dataset *ds, int64_t start, int64_t count,
                              pare_tensor ***tensors, pare_error *err)
{
    if (!ds || !tensors)
        return pare_error_set(err, PARE_ERR_ARG, "NULL argument");
    if (start < 0 || count < 0 || start > ds->count || count > ds->count - start)
        return pare_error_set(err, PARE_ERR_ARG, "%s: samples %lld..%lld outside 0..%lld", ds->path,
                              (long long)start, (long long)start + count, (long long)ds->count);
    if (ds->kind == PARE_DATASET_NPZ || ds->kind == PARE_DATASET_NPZ_DIR)
        return read_npz(ds, start, count, tensors, err);
    if (count == 0)
        return pare_error_set(err, PARE_ERR_ARG, "%s: a read of test data needs at least one sample",
                              ds->path);
    return read_sets(ds, start, count, tensors, err);
}

pare_status pare_dataset_next(pare_dataset *ds, int64_t max_count, pare_tensor ***tensors,
                              int64_t *got, pare_error *err)
{
    if (!ds || !tensors || !got || max_count < 1)
        return pare_error_set(err, PARE_ERR_ARG, "bad argument to pare_dataset_next");
    *tensors = NULL;
    *got = 0;
    if (ds->next >= ds->count)
        return PARE_OK;
    int64_t n = ds->count - ds->next < max_count ? ds->count - ds->next : max_count;
    pare_status st = pare_dataset_read(ds, ds->next, n, tensors, err);
    if (st)
        return st;
    ds->next += n;
    *got = n;
    return PARE_OK;
}
