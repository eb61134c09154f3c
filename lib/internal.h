/* Internal definitions shared by lib/ modules. Not installed. */
#ifndef PARE_INTERNAL_H
#define PARE_INTERNAL_H

#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include "pare/status.h"
#include "pare/tensor.h"
#include "pare/model.h"
#include "pare/ir.h"
#include "proto/onnx.pb-c.h"

typedef struct pare_extmap {
    char *location;  /* as written in the model */
    void *addr;      /* mmap'd file */
    size_t len;
    char *path;      /* resolved path, to reopen the same file (dev, ino) when saving */
    dev_t dev;
    ino_t ino;
} pare_extmap;

/* The bytes a model was parsed from, when embedded tensors borrow them:
 * each listed raw_data field points into addr (lib/io/load.c) and is cleared
 * before the ModelProto is freed, since protobuf-c would free it. */
typedef struct pare_source {
    const uint8_t *addr;
    size_t len;
    int fd;          /* the model file, kept open for in-kernel copies on save; -1: none */
    bool mapped;     /* addr is a mapping of fd (munmap); else malloc'd (free) */
    ProtobufCBinaryData **borrowed;
    size_t n_borrowed;
} pare_source;

typedef struct pare_opset {
    char *domain;
    int64_t version;
} pare_opset;

struct pare_model {
    Onnx__ModelProto *proto;   /* as unpacked; owns every original message */
    pare_graph *graph;
    char *base_dir;            /* folder for external data; NULL: refused */
    bool no_external;
    pare_extmap *ext;
    size_t n_ext;
    pare_opset *opsets;
    size_t n_opsets;
    bool opsets_dirty;
    uint64_t file_size;
    uint64_t external_bytes;
    pare_problems load_problems; /* what the loader saw that validate reports */
    pare_source *src;          /* bytes embedded tensors borrow; NULL: none */
    size_t n_unaligned;        /* initializers still borrowed at misaligned addresses */
};

/* Defined in lib/ir/build.c */
pare_status pare__model_from_proto(Onnx__ModelProto *proto, const char *base_dir, bool no_external,
                                   pare_model **out, pare_error *err);
void pare__graph_free(pare_graph *g);
pare_status pare__problem_add(pare_problems *p, const char *where, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Defined in lib/io/load.c. Frees a ModelProto from the loader, first
 * clearing the raw_data fields that borrow the model's bytes (src, or the
 * model being built when src is NULL). NULL-safe. */
void pare__model_proto_free(Onnx__ModelProto *proto, pare_source *src);
/* Copies len bytes at p into dst when p lies in the mapped file of m (or of
 * the model being loaded, m NULL or not yet attached) by reading the file,
 * which spares faulting the mapping in; false when it does not (then copy
 * from memory). */
bool pare__source_read(const pare_model *m, const void *p, void *dst, size_t len);

/* Defined in lib/io/tensor_proto.c.
 * Converts a TensorProto. With PARE__TP_BORROW, raw_data (and external data)
 * is referenced, not copied; the proto must outlive the tensor. External
 * data needs m (for base_dir and the mapping cache); m NULL refuses it.
 * Borrowed bytes at an address misaligned for the element type are copied
 * to aligned memory, except with PARE__TP_DEFER_ALIGN (graph initializers
 * of at least PARE__DEFER_ALIGN_MIN bytes): those stay borrowed, counted in
 * m->n_unaligned, until pare_model_align_weights copies them. */
enum { PARE__TP_BORROW = 1, PARE__TP_DEFER_ALIGN = 2 };
#define PARE__DEFER_ALIGN_MIN 4096
pare_status pare__tensor_from_proto(const Onnx__TensorProto *tp, pare_model *m, unsigned flags,
                                    pare_tensor **out, pare_error *err);
/* Whether p is aligned for dtype's elements (as malloc'd data is). */
bool pare__aligned_for(int dtype, const void *p);
/* Copies one initializer of m still borrowed at a misaligned address to
 * aligned memory (pare_model_align_weights does all of them); a no-op for
 * any other tensor. Defined in lib/io/load.c. */
pare_status pare__init_align(pare_model *m, pare_tensor *t, pare_error *err);
/* Gives back the resident pages of m's mapped file that lie wholly inside
 * [p, p + len), for a caller done reading a borrowed tensor (they fault in
 * again if read later); a no-op for other memory. */
void pare__source_forget(const pare_model *m, const void *p, size_t len);
/* Resolves and maps an external location for m; returns address and length. */
pare_status pare__extmap_get(pare_model *m, const char *location, const void **addr, size_t *len,
                             pare_error *err);

/* Value table (lib/ir/ir.c) */
pare_status pare__graph_index_put(pare_graph *g, pare_value *v, pare_error *err);
void pare__graph_index_del(pare_graph *g, pare_value *v);
pare_value *pare__graph_index_get(const pare_graph *g, const char *name);
pare_status pare__value_new(pare_graph *g, const char *name, pare_value **out, pare_error *err);
pare_status pare__use_add(pare_value *v, pare_node *n, size_t input, pare_error *err);
void pare__use_del(pare_value *v, pare_node *n, size_t input);
pare_status pare__shape_copy(pare_shape *dst, const pare_shape *src, pare_error *err);
void pare__shape_release(pare_shape *s);
void pare__attr_release(pare_attr *a);
void pare__node_free(pare_node *n);

#define PARE_NOMEM(err) pare_error_set((err), PARE_ERR_NOMEM, "out of memory")

/* Grows *arr (element size es) to hold at least need elements. */
static inline int pare__grow(void **arr, size_t *cap, size_t need, size_t es)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 8;
    while (nc < need)
        nc *= 2;
    if (nc > SIZE_MAX / es)
        return -1;
    void *p = realloc(*arr, nc * es);
    if (!p)
        return -1;
    *arr = p;
    *cap = nc;
    return 0;
}

static inline char *pare__strdup0(const char *s)
{
    return strdup(s ? s : "");
}

#endif
