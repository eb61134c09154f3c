/* pare/data.h - tensors on disk: .npy, .npz, TensorProto .pb, datasets.
 *
 *     pare_error err;
 *     pare_tensor *t;
 *     if (pare_tensor_read_file("x.npy", &t, &err))        // .npy or .pb by magic
 *         fprintf(stderr, "pare-run: %s\n", err.msg);      // "x.npy: header: ..."
 *
 *     pare_npz_writer *w;
 *     pare_npz_writer_open("out.npz", true, &w, &err);     // deflated members
 *     pare_npz_writer_add(w, "logits", t, &err);
 *     pare_npz_writer_begin_array(w, "probs", PARE_DT_FLOAT, 1, (int64_t[]){10}, &err);
 *     pare_npz_writer_append(w, rows, 32, &err);           // 32 rows of 10 floats
 *     pare_npz_writer_end_array(w, &err);
 *     pare_npz_writer_close(w, &err);                      // rename into place
 *
 *     pare_dataset *ds;
 *     pare_dataset_open("calib/", &ds, &err);              // .npz, dir of .npz, test_data_set*
 *     pare_tensor **batch;
 *     int64_t got;
 *     while (pare_dataset_next(ds, 8, &batch, &got, &err) == PARE_OK && got > 0) {
 *         ... batch[i] is array i, first dim got ...
 *         pare_tensors_free(batch, pare_dataset_num_arrays(ds));
 *     }
 *     pare_dataset_close(ds);
 *
 * Messages name the file and the place: "x.npz: member 'a.npy': header: shape
 * (3, -1) has a negative dim". Every length and offset read from a file is
 * checked; truncated or malicious files give PARE_ERR_FORMAT (or _LIMIT,
 * _UNSUPPORTED), never a crash.
 *
 * npy dtypes: <f4 <f8 <f2 <i1 <u1 <i2 <u2 <i4 <u4 <i8 <u8 |b1 <c8 <c16, and
 * their big-endian forms, which are byte-swapped on read. fortran_order=True
 * is read and transposed to C order. Writing is always little-endian, C order,
 * the same bytes numpy's np.save writes (format 1.0, 2.0 for huge headers).
 * bfloat16, float8, float4, int4/uint4, float8e8m0 and string tensors have no
 * plain numpy dtype: writing them fails with PARE_ERR_UNSUPPORTED (cast them to
 * float32/int8 first), and reading void ('|V2') or string descrs fails alike.
 */
#ifndef PARE_DATA_H
#define PARE_DATA_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "pare/status.h"
#include "pare/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- .npy ------------------------------------------------------------- */

/* Headers longer than this are refused (PARE_ERR_LIMIT). numpy writes < 4 KiB. */
#define PARE_NPY_MAX_HEADER ((size_t)1 << 20)

/* What an .npy header says. */
typedef struct pare_npy_info {
    int version;              /* 1, 2 or 3 (format major version) */
    int dtype;                /* pare_dtype */
    int rank;
    int64_t dims[PARE_MAX_RANK];
    bool fortran_order;
    bool big_endian;
    uint64_t data_offset;     /* bytes before the data (prelude + header) */
    uint64_t nbytes;          /* bytes of data */
} pare_npy_info;

/* Reads an .npy file ("-": stdin). *out owns its data; its name is NULL.
 * Caller frees with pare_tensor_free. */
pare_status pare_npy_read(const char *path, pare_tensor **out, pare_error *err);

/* Same from memory (the buffer is not kept). The buffer must hold exactly one
 * array: trailing bytes are an error. Caller frees *out. */
pare_status pare_npy_read_buffer(const void *buf, size_t len, pare_tensor **out, pare_error *err);

/* Reads only the header of an .npy file. */
pare_status pare_npy_read_info(const char *path, pare_npy_info *info, pare_error *err);

/* Writes t as .npy to path ("-": stdout, refused when stdout is a terminal).
 * Atomic: temporary file beside the target, then rename; on failure the
 * target is untouched and no temporary file is left. */
pare_status pare_npy_write(const char *path, const pare_tensor *t, pare_error *err);

/* Serializes t as .npy into a malloc'd buffer. Caller frees *buf. */
pare_status pare_npy_write_buffer(const pare_tensor *t, void **buf, size_t *len, pare_error *err);

/* The numpy descr for a dtype ("<f4", "|b1"), or NULL when numpy has none. */
const char *pare_npy_descr(int dtype);

/* ---- .npz reading ----------------------------------------------------- */

/* An open .npz archive. Only the central directory is held in memory;
 * members are read from the file on demand. Not thread-safe. */
typedef struct pare_npz pare_npz;

/* Opens path and reads its central directory (zip and zip64). Member names
 * ending in ".npy" are listed without the suffix. Caller closes *out with
 * pare_npz_close. */
pare_status pare_npz_open(const char *path, pare_npz **out, pare_error *err);

/* NULL-safe. */
void pare_npz_close(pare_npz *z);

/* Number of members, and the name of member i (owned by z, valid until close). */
size_t pare_npz_count(const pare_npz *z);
const char *pare_npz_name(const pare_npz *z, size_t i);

/* Index of the member called name ("x" or "x.npy"), or -1. */
int64_t pare_npz_find(const pare_npz *z, const char *name);

/* Reads the npy header of member i (inflating only its first bytes). */
pare_status pare_npz_info(pare_npz *z, size_t i, pare_npy_info *info, pare_error *err);

/* Reads member i whole; stored or deflated, CRC-32 checked. *out is named
 * after the member and owns its data; caller frees with pare_tensor_free. */
pare_status pare_npz_read(pare_npz *z, size_t i, pare_tensor **out, pare_error *err);

/* Reads rows [start, start+count) of member i (rank >= 1) as a tensor whose
 * first dim is count. Consecutive calls going forward continue where the
 * last one stopped (one cursor per member), so reading a deflated member in
 * order inflates it once; the CRC is checked when a forward pass reaches the
 * end. Caller frees *out. */
pare_status pare_npz_read_rows(pare_npz *z, size_t i, uint64_t start, uint64_t count,
                               pare_tensor **out, pare_error *err);

/* ---- .npz writing ----------------------------------------------------- */

/* A streaming .npz writer. Members are stored, or deflated when compress is
 * set. Output bytes depend only on the calls made (timestamps 1980-01-01, no
 * other variable field). Not thread-safe. */
typedef struct pare_npz_writer pare_npz_writer;

/* Creates a temporary file beside path; "-" (stdout) is refused, as a zip
 * needs seeking. On success the caller ends *out with pare_npz_writer_close
 * or pare_npz_writer_abort. */
pare_status pare_npz_writer_open(const char *path, bool compress, pare_npz_writer **out,
                                 pare_error *err);

/* Adds t as member "name.npy" (duplicate names are refused). */
pare_status pare_npz_writer_add(pare_npz_writer *w, const char *name, const pare_tensor *t,
                                pare_error *err);

/* Starts member "name.npy" of shape [n, inner_dims...] whose n grows with
 * each append; inner_rank may be 0 (a vector of n scalars). */
pare_status pare_npz_writer_begin_array(pare_npz_writer *w, const char *name, int dtype,
                                        int inner_rank, const int64_t *inner_dims,
                                        pare_error *err);

/* Appends nrows rows (nrows * row bytes, packed) to the open array. */
pare_status pare_npz_writer_append(pare_npz_writer *w, const void *rows, uint64_t nrows,
                                   pare_error *err);

/* Appends a tensor of shape [k, inner_dims...] of the array's dtype. */
pare_status pare_npz_writer_append_tensor(pare_npz_writer *w, const pare_tensor *t,
                                          pare_error *err);

/* Ends the open array: its header's first dim and its zip sizes are patched. */
pare_status pare_npz_writer_end_array(pare_npz_writer *w, pare_error *err);

/* Writes the central directory and renames the file into place. Frees w in
 * every case; on failure (or an array still open) the temporary file is
 * removed and the target untouched. */
pare_status pare_npz_writer_close(pare_npz_writer *w, pare_error *err);

/* NULL-safe. Removes the temporary file and frees w. */
void pare_npz_writer_abort(pare_npz_writer *w);

/* ---- single-tensor files --------------------------------------------- */

typedef enum pare_tensor_format {
    PARE_TENSOR_FORMAT_AUTO = 0, /* by extension: .npy, else TensorProto */
    PARE_TENSOR_FORMAT_NPY,
    PARE_TENSOR_FORMAT_PB
} pare_tensor_format;

/* Reads a single-tensor file ("-": stdin): .npy when it starts with
 * "\x93NUMPY", else an ONNX TensorProto. *out owns its data (its name is
 * the TensorProto's name, NULL for npy). Caller frees *out. */
pare_status pare_tensor_read_file(const char *path, pare_tensor **out, pare_error *err);

/* Writes t as .npy or TensorProto to path ("-": stdout, not a terminal);
 * atomic as pare_npy_write. */
pare_status pare_tensor_write_file(const char *path, const pare_tensor *t, pare_tensor_format fmt,
                                   pare_error *err);

/* ---- datasets --------------------------------------------------------- */

/* A dataset is one of:
 *   - a .npz file whose arrays are named after model inputs, samples on axis 0;
 *   - a folder of such .npz files (taken in strcmp order of their names,
 *     samples concatenated; every file has the same arrays, dtypes and inner
 *     shapes);
 *   - an ONNX test_data_set_N folder (input_0.pb, input_1.pb, ...);
 *   - a folder of test_data_set_* folders (in order of N).
 * For .npz data a sample is one row of every array. For test data a sample
 * is one test_data_set folder, whose tensors are already whole batches: a
 * read of one sample gives them as stored, a read of several concatenates
 * them on axis 0 (they must agree on the other axes).
 * Nothing is loaded at open beyond headers (npz) or the first set (pb). */
typedef struct pare_dataset pare_dataset;

typedef enum pare_dataset_kind {
    PARE_DATASET_NPZ = 1,     /* one .npz file */
    PARE_DATASET_NPZ_DIR,     /* a folder of .npz files */
    PARE_DATASET_PB_SET,      /* one test_data_set folder */
    PARE_DATASET_PB_SETS      /* a folder of test_data_set_* folders */
} pare_dataset_kind;

/* One array of the dataset. */
typedef struct pare_dataset_array {
    const char *name;         /* model input name; NULL for a .pb tensor without a
                                 name, which matches inputs by position */
    int dtype;
    int rank;                 /* npz: of one sample (the array's rank - 1);
                                 pb: the full rank of the first set's tensor */
    const int64_t *dims;      /* rank entries, owned by the dataset */
} pare_dataset_array;

/* Opens path (a file or a folder, see above). Caller closes *out. */
pare_status pare_dataset_open(const char *path, pare_dataset **out, pare_error *err);

/* NULL-safe. */
void pare_dataset_close(pare_dataset *ds);

pare_dataset_kind pare_dataset_get_kind(const pare_dataset *ds);

/* Number of samples, or -1 when unknown. */
int64_t pare_dataset_count(const pare_dataset *ds);

/* Number of arrays (model inputs) per sample, and array i (owned by ds). */
size_t pare_dataset_num_arrays(const pare_dataset *ds);
const pare_dataset_array *pare_dataset_array_at(const pare_dataset *ds, size_t i);

/* Reads samples [start, start+count): *tensors is a malloc'd array of
 * pare_dataset_num_arrays(ds) tensors, named after the arrays, in array
 * order. Caller frees it with pare_tensors_free. Only the members (or files)
 * that hold the requested samples are read. */
pare_status pare_dataset_read(pare_dataset *ds, int64_t start, int64_t count,
                              pare_tensor ***tensors, pare_error *err);

/* Reads the next up to max_count samples after the previous call (from
 * sample 0 after open or rewind). At the end, *got is 0 and *tensors NULL. */
pare_status pare_dataset_next(pare_dataset *ds, int64_t max_count, pare_tensor ***tensors,
                              int64_t *got, pare_error *err);
void pare_dataset_rewind(pare_dataset *ds);

/* NULL-safe: frees n tensors and the array holding them. */
/* pare_tensors_free: see pare/tensor.h */

/* ---- random inputs ---------------------------------------------------- */

/* A tensor filled from a splitmix64 stream seeded with seed, the same on
 * every platform: floats uniform in [-1, 1) (before rounding to a narrow
 * type), signed ints in [-8, 8), unsigned ints in [0, 16), bools 0/1,
 * complex parts as floats. Strings are refused. Caller frees *out. */
pare_status pare_tensor_random(const char *name, int dtype, int rank, const int64_t *dims,
                               uint64_t seed, pare_tensor **out, pare_error *err);

#ifdef __cplusplus
}
#endif
#endif
