/* Private helpers shared by lib/data. */
#ifndef PARE_DATA_INTERNAL_H
#define PARE_DATA_INTERNAL_H

#include <stdio.h>
#include <stdint.h>
#include <stdbool.h>
#include "pare/data.h"

/* A source of bytes for the npy parser: read() delivers exactly n bytes or
 * fails (a short source is a truncated file). size is the total the source
 * holds, so that a header's claims can be checked before allocating. */
typedef struct data_src data_src;
struct data_src {
    pare_status (*read)(data_src *s, void *dst, size_t n, pare_error *err);
    uint64_t size;
    uint64_t pos;
};

typedef struct mem_src {
    data_src base;
    const unsigned char *buf;
} mem_src;

void mem_src_init(mem_src *m, const void *buf, size_t len);

typedef struct fd_src {
    data_src base;
    int fd;
} fd_src;

/* size: the file's size from fstat. Reads with pread from offset pos. */
void fd_src_init(fd_src *f, int fd, uint64_t size);

/* Little-endian loads and stores. */
static inline uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static inline void wr16(unsigned char *p, uint16_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static inline void wr32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static inline void wr64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* ---- npy (npy.c) ---- */

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6

/* Reads the prelude and header from s, leaving s at the first data byte.
 * Checks that the data fits what s holds: exact_end requires it to end the
 * source (no trailing bytes). */
pare_status npy_read_header(data_src *s, pare_npy_info *info, bool exact_end, pare_error *err);

/* Bytes of one element of an npy dtype (0 for dtypes npy lacks). */
size_t npy_elem_size(int dtype);

/* Byte-swaps (big-endian) and transposes (fortran order) n elements read
 * raw into t->data so that t holds little-endian C-order data. */
pare_status npy_fix_data(const pare_npy_info *info, pare_tensor *t, pare_error *err);
void npy_swap(int dtype, void *data, uint64_t nelem);

/* PARE_ERR_ARG unless t->nbytes is what its dtype and dims need. */
pare_status npy_check_size(const pare_tensor *t, pare_error *err);

/* Reads the data of an array whose header was just read from s. */
pare_status npy_read_body(data_src *s, const pare_npy_info *info, const char *name,
                          pare_tensor **out, pare_error *err);

/* numpy's np.save header for (dtype, C order, dims): the whole prelude and
 * padded dict. Its length does not depend on the number of digits of
 * dims[0] (numpy pads for growth), so a streaming writer can patch dims[0]
 * in place. *buf is malloc'd. */
pare_status npy_make_header(int dtype, int rank, const int64_t *dims, unsigned char **buf,
                            size_t *len, pare_error *err);

/* "(3, 4)" style shape text into buf. */
void npy_shape_str(int rank, const int64_t *dims, char *buf, size_t size);

/* ---- files (fileio.c) ---- */

/* An output file written through a temporary beside its target. */
typedef struct out_file {
    FILE *f;
    char *path;   /* target */
    char *tmp;    /* temporary (NULL for stdout) */
} out_file;

/* Opens path for writing ("-": stdout when allow_stdout, refused on a terminal). */
pare_status out_file_open(out_file *o, const char *path, bool allow_stdout, pare_error *err);
/* Flushes, closes, renames into place. Always releases o; on failure removes the temporary. */
pare_status out_file_commit(out_file *o, pare_error *err);
/* Closes and removes the temporary. */
void out_file_abort(out_file *o);
pare_status out_file_write(out_file *o, const void *buf, size_t n, pare_error *err);

/* Whole file ("-": stdin) into a malloc'd buffer, refusing files above max bytes. */
pare_status read_whole_file(const char *path, uint64_t max, void **buf, size_t *len,
                            pare_error *err);

/* Reads exactly n bytes at off with pread, retrying short reads and EINTR.
 * Returns PARE_ERR_FORMAT ("truncated") at end of file, PARE_ERR_IO on error. */
pare_status pread_full(int fd, void *dst, size_t n, uint64_t off, pare_error *err);

/* Sorted names of the entries of dir (not "." or ".."); each malloc'd. */
pare_status list_dir(const char *dir, char ***names, size_t *n, pare_error *err);
void free_names(char **names, size_t n);

/* "a/b" from dir and name; malloc'd, NULL on no memory. */
char *path_join(const char *dir, const char *name);

/* Short form of a path for messages: the path itself. Kept as a function so
 * that a later change (e.g. quoting) happens in one place. */
static inline const char *disp(const char *path) { return path ? path : "(buffer)"; }

#endif
