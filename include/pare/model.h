/* pare/model.h - loading and saving ONNX models.
 *
 *     pare_model *m;
 *     pare_error err;
 *     if (pare_model_load("net.onnx", NULL, &m, &err)) { report err.msg; }
 *     pare_graph *g = pare_model_graph(m);   // see pare/ir.h
 *     ... rewrite g ...
 *     pare_save_opts so = PARE_SAVE_OPTS_INIT;
 *     pare_model_save(m, "small.onnx", &so, &err);
 *     pare_model_free(m);
 *
 * Loading accepts a path or "-" for stdin; gzip is recognised by its magic
 * bytes. External data is resolved relative to the model's folder and mapped
 * with mmap; locations that are absolute, contain "..", or resolve (through
 * symlinks) outside that folder are refused. Saving is atomic (temporary file
 * beside the target, then rename) and deterministic. A model that was not
 * rewritten saves as the same protobuf message it was loaded from, unknown
 * fields included.
 */
#ifndef PARE_MODEL_H
#define PARE_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "pare/status.h"
#include "pare/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pare_model pare_model;
typedef struct pare_graph pare_graph;

/* Default limit on the decompressed size of a gzip model: 2 GiB, the most
 * a protobuf message can hold (larger weights live in external data).
 * Independently, a stream that expands more than 100:1 past 64 MiB is
 * refused as a decompression bomb. */
#define PARE_DEFAULT_MAX_DECOMPRESSED ((uint64_t)2 << 30)

typedef struct pare_load_opts {
    uint64_t max_decompressed; /* 0: PARE_DEFAULT_MAX_DECOMPRESSED */
    bool no_external;          /* refuse external data instead of mapping it */
} pare_load_opts;

#define PARE_LOAD_OPTS_INIT {0, false}

/* Loads path ("-": stdin). On success *out owns everything; free it with
 * pare_model_free. On failure *out is NULL and err says where and why. */
pare_status pare_model_load(const char *path, const pare_load_opts *opts, pare_model **out,
                            pare_error *err);

/* Loads from memory (gzip or plain). base_dir resolves external data (NULL:
 * external data refused). The buffer is not kept. */
pare_status pare_model_load_buffer(const void *buf, size_t len, const char *base_dir,
                                   const pare_load_opts *opts, pare_model **out, pare_error *err);

typedef struct pare_save_opts {
    bool gzip;                  /* write a gzip stream */
    int64_t external_threshold; /* -1: tensors that were external stay external, the
                                   rest embedded; >= 0: tensors with at least this many
                                   bytes go to the external file, the rest embedded */
    const char *external_name;  /* file name of external data beside the output;
                                   NULL: "<output file name>.data" */
    int gzip_level;             /* 1..9, 0: 6 */
    /* fsync the written files before the rename and their folder after it,
     * so that the new model survives a power cut. Off by default, as for
     * cp, compilers and linkers: the rename alone already makes the write
     * atomic for every reader. The environment variable PARE_FSYNC=1 turns
     * it on for every save (pare_io_durable). */
    bool durable;
} pare_save_opts;

#define PARE_SAVE_OPTS_INIT {false, -1, NULL, 0, false}

/* Whether writes should be durable by default: PARE_FSYNC set to a value
 * other than "" and "0". Programs use it for every file they write. */
bool pare_io_durable(void);

/* Saves to path ("-": stdout; external data then refused). Atomic: on any
 * failure the target is untouched and no temporary file is left. */
pare_status pare_model_save(pare_model *m, const char *path, const pare_save_opts *opts,
                            pare_error *err);

/* Initializers whose bytes sit in the model file at an address misaligned
 * for their element type (a float at an odd offset: any writer may place
 * them so) are loaded without a copy, like aligned ones, so that loading,
 * inspecting and saving never copy them; their data pointer is then not
 * aligned for typed access. This copies them to aligned memory (once; a
 * no-op when there are none). The library's functions that compute on
 * weights (sessions, graph passes, quantize, prune, distill) call it
 * themselves; call it before reading v->init->data through typed pointers
 * in your own code, or read it with memcpy. */
pare_status pare_model_align_weights(pare_model *m, pare_error *err);

/* Serializes to a malloc'd buffer (no external data, no gzip). Caller frees *buf. */
pare_status pare_model_save_buffer(pare_model *m, void **buf, size_t *len, pare_error *err);

/* NULL-safe. Frees the model, its graphs and tensors, and unmaps external data. */
void pare_model_free(pare_model *m);

/* The main graph. Owned by the model. */
pare_graph *pare_model_graph(pare_model *m);

/* Model-level facts (strings owned by the model; may be empty, never NULL). */
int64_t pare_model_ir_version(const pare_model *m);
const char *pare_model_producer(const pare_model *m);
const char *pare_model_producer_version(const pare_model *m);
const char *pare_model_domain(const pare_model *m);
int64_t pare_model_version(const pare_model *m);
const char *pare_model_doc(const pare_model *m);
size_t pare_model_metadata_count(const pare_model *m);
void pare_model_metadata(const pare_model *m, size_t i, const char **key, const char **value);
size_t pare_model_function_count(const pare_model *m);
const char *pare_model_function_name(const pare_model *m, size_t i, const char **domain);
bool pare_model_has_training_info(const pare_model *m);

/* Opset imports: count, then domain ("" for ai.onnx) and version of each. */
size_t pare_model_opset_count(const pare_model *m);
void pare_model_opset(const pare_model *m, size_t i, const char **domain, int64_t *version);
/* Version imported for a domain ("" and "ai.onnx" are the same); 0 if absent. */
int64_t pare_model_opset_version(const pare_model *m, const char *domain);
/* Sets (adds or replaces) an opset import. */
pare_status pare_model_set_opset(pare_model *m, const char *domain, int64_t version, pare_error *err);

/* Bytes of the file the model was loaded from (compressed size for gzip; 0 for a buffer). */
uint64_t pare_model_file_size(const pare_model *m);
/* Bytes of external data the model maps. */
uint64_t pare_model_external_bytes(const pare_model *m);

/* Tensor (de)serialization as ONNX TensorProto bytes (.pb files, test data).
 * decode: *out owns its data. encode: *buf is malloc'd, caller frees. */
pare_status pare_tensor_pb_decode(const void *buf, size_t len, pare_tensor **out, pare_error *err);
pare_status pare_tensor_pb_encode(const pare_tensor *t, void **buf, size_t *len, pare_error *err);

#ifdef __cplusplus
}
#endif
#endif
