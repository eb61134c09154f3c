/* pare/ir.h - the graph IR and its rewrite API.
 *
 * A model has one main graph; If/Loop/Scan bodies are graphs of the same
 * kind whose `parent` is the graph of the node that owns them. Every value
 * has at most one producer (SSA) and knows its consumers; the API below keeps
 * those links right, so passes never edit them by hand.
 *
 * The structs are visible so that readers (passes, the executor, reports)
 * can walk them cheaply; change them only through the functions here.
 *
 *     pare_graph *g = pare_model_graph(m);
 *     for (size_t i = 0; i < g->n_nodes; i++) {
 *         pare_node *n = g->nodes[i];
 *         if (pare_node_is(n, "", "Identity"))
 *             pare_graph_bypass_node(g, n, 0, &err);   // consumers read n's input
 *     }
 *     pare_graph_remove_dead(g, &err);
 *
 * Names and strings are owned by the IR. Node inputs that are omitted
 * optional inputs ("" in the file) are NULL pointers.
 */
#ifndef PARE_IR_H
#define PARE_IR_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "pare/status.h"
#include "pare/tensor.h"
#include "pare/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pare_node pare_node;
typedef struct pare_value pare_value;

/* A dimension: a known size (value >= 0), a symbol (param != NULL, value -1)
 * or unknown (value -1, param NULL). */
typedef struct pare_dim {
    int64_t value;
    char *param;
} pare_dim;

/* rank -1: unknown rank. */
typedef struct pare_shape {
    int rank;
    pare_dim *dims;
} pare_shape;

typedef struct pare_use {
    pare_node *node;
    size_t input; /* index in node->inputs */
} pare_use;

struct pare_value {
    char *name;
    int dtype;             /* pare_dtype; 0 unknown */
    pare_shape shape;      /* from value_info / inputs / inference */
    int elem_kind;         /* 0 tensor; 1 sequence, 2 map, 3 optional, 4 sparse (not modelled) */
    pare_graph *graph;     /* the graph whose scope defines it */
    pare_node *producer;   /* NULL for graph inputs, initializers, undefined */
    size_t producer_output;
    pare_use *uses;
    size_t n_uses, cap_uses;
    pare_tensor *init;     /* initializer data (NULL if not an initializer) */
    bool is_input;         /* listed in graph->inputs */
    bool is_output;        /* listed in graph->outputs */
    bool is_sparse_init;   /* a sparse_initializer (init holds the dense form once densified),
                              or saved as one (pare_value_store_sparse) */
    bool shape_from_file;  /* shape/dtype came from the file, not inference */
    /* internal bookkeeping */
    void *orig_vi;         /* the ValueInfoProto it was read from */
    void *orig_init;       /* the TensorProto it was read from */
    bool dirty;            /* type/shape/data changed since load */
    size_t id;             /* stable index within the graph, for passes' side arrays */
};

typedef enum pare_attr_type {
    PARE_ATTR_UNDEFINED = 0,
    PARE_ATTR_FLOAT = 1,
    PARE_ATTR_INT = 2,
    PARE_ATTR_STRING = 3,
    PARE_ATTR_TENSOR = 4,
    PARE_ATTR_GRAPH = 5,
    PARE_ATTR_FLOATS = 6,
    PARE_ATTR_INTS = 7,
    PARE_ATTR_STRINGS = 8,
    PARE_ATTR_TENSORS = 9,
    PARE_ATTR_GRAPHS = 10,
    PARE_ATTR_SPARSE_TENSOR = 11,
    PARE_ATTR_SPARSE_TENSORS = 12,
    PARE_ATTR_TYPE_PROTO = 13,
    PARE_ATTR_TYPE_PROTOS = 14
} pare_attr_type;

typedef struct pare_attr {
    char *name;
    pare_attr_type type;
    char *ref_attr_name;   /* inside functions; NULL otherwise */
    float f;
    int64_t i;
    pare_string s;         /* owned bytes, NUL-terminated for convenience */
    pare_tensor *t;
    pare_graph *g;
    size_t n;              /* element count of the list kinds */
    float *floats;
    int64_t *ints;
    pare_string *strings;
    pare_tensor **tensors;
    pare_graph **graphs;
    void *orig;            /* AttributeProto it was read from; NULL when new */
} pare_attr;

struct pare_node {
    char *name;
    char *op_type;
    char *domain;          /* "" for the default ai.onnx domain */
    pare_value **inputs;   /* NULL entries: omitted optional inputs */
    size_t n_inputs;
    pare_value **outputs;  /* NULL entries: omitted optional outputs */
    size_t n_outputs;
    pare_attr *attrs;
    size_t n_attrs;
    pare_graph *graph;     /* owning graph */
    char *doc;             /* may be NULL */
    void *orig;            /* NodeProto it was read from; NULL when new */
    bool dirty;
    size_t id;             /* stable index for side arrays */
    void *user;            /* free for a pass or the executor to use */
};

struct pare_graph {
    char *name;
    pare_model *model;
    pare_graph *parent;    /* NULL for the main graph */
    pare_node *owner;      /* node holding this subgraph; NULL for the main graph */
    pare_node **nodes;     /* in topological order after pare_graph_toposort */
    size_t n_nodes, cap_nodes;
    pare_value **inputs;
    size_t n_inputs, cap_inputs;
    pare_value **outputs;
    size_t n_outputs, cap_outputs;
    pare_value **values;   /* every value defined in this scope, by id */
    size_t n_values, cap_values;
    size_t next_node_id;
    void *index;           /* name -> value table (internal) */
    void *orig;            /* GraphProto it was read from */
    bool dirty;            /* structure changed since load */
};

/* ---- lookups ---- */

/* Value named `name` in g's scope or, failing that, an enclosing scope; NULL if none. */
pare_value *pare_graph_find_value(const pare_graph *g, const char *name);
/* First node with that name in g (not subgraphs); NULL if none or name empty. */
pare_node *pare_graph_find_node(const pare_graph *g, const char *name);
/* True when domain ("" == "ai.onnx") and op_type match. */
bool pare_node_is(const pare_node *n, const char *domain, const char *op_type);
/* Attribute by name; NULL if absent. */
const pare_attr *pare_node_attr(const pare_node *n, const char *name);
/* Typed getters with a default when absent or of another type. */
int64_t pare_node_attr_int(const pare_node *n, const char *name, int64_t dflt);
float pare_node_attr_float(const pare_node *n, const char *name, float dflt);
const char *pare_node_attr_string(const pare_node *n, const char *name, const char *dflt);
/* List attribute: returns count (0 if absent) and sets *vals (owned by the node). */
size_t pare_node_attr_ints(const pare_node *n, const char *name, const int64_t **vals);
size_t pare_node_attr_floats(const pare_node *n, const char *name, const float **vals);
/* The opset version that governs a node (its domain's import; 0 if none). */
int64_t pare_node_opset(const pare_node *n);
/* Label "'name' (Op)" or "#12 (Op)" for messages; writes into buf. */
const char *pare_node_label(const pare_node *n, char *buf, size_t size);
/* Number of elements of a value's shape when fully known; -1 otherwise. */
int64_t pare_value_numel(const pare_value *v);
/* True when v's initializer data lives in an external data file (mapped, not
 * read); false for embedded, new or changed tensors. */
bool pare_value_is_external(const pare_value *v);
/* Initializer data of v, densifying a sparse initializer on first use; NULL if v is
 * not an initializer. */
pare_tensor *pare_value_tensor(pare_value *v, pare_error *err);

/* ---- rewriting ---- */

/* New value in g's scope; fails if the name is taken in this scope.
 * name NULL: a unique name is made from `hint`. */
pare_status pare_graph_new_value(pare_graph *g, const char *name, const char *hint, int dtype,
                                 pare_value **out, pare_error *err);
/* A unique name in g's scope (and enclosing ones) starting with hint; buf receives it. */
const char *pare_graph_unique_name(const pare_graph *g, const char *hint, char *buf, size_t size);

/* Makes v an initializer holding t (the value takes ownership of t; any old data freed).
 * v's dtype and shape follow t. */
pare_status pare_value_set_tensor(pare_value *v, pare_tensor *t, pare_error *err);
/* Stores initializer v as an ONNX sparse_initializer (COO: values of v's dtype
 * [NNZ], int64 linear indices [NNZ]) when saved; the IR keeps the dense form in
 * v->init, so readers and the executor see no difference. sparse=false undoes it.
 * Zeros (all bits zero, so -0.0 stays an explicit entry) are the implicit
 * entries. Strings and sub-byte types (int4, uint4, ...) are refused with
 * PARE_ERR_UNSUPPORTED. pare_value_set_tensor makes v dense again; call this after it.
 * Note: onnxruntime and onnx.checker.check_model accept such files, but the
 * checker's full_check (strict shape inference, onnx 1.22) types a
 * sparse_initializer as sparse_tensor and refuses it as input of a dense op. */
pare_status pare_value_store_sparse(pare_value *v, bool sparse, pare_error *err);
/* Adds a new initializer value named t->name (or hint) holding t (ownership taken). */
pare_status pare_graph_add_initializer(pare_graph *g, pare_tensor *t, pare_value **out,
                                       pare_error *err);
/* Sets dtype and shape (copied) of v; marks it changed. rank -1 clears. */
pare_status pare_value_set_type(pare_value *v, int dtype, const pare_shape *shape, pare_error *err);
/* Shape from concrete dims. */
pare_status pare_value_set_dims(pare_value *v, int dtype, int rank, const int64_t *dims,
                                pare_error *err);

/* Appends a node; inputs/outputs may contain NULL for omitted ones. Outputs must
 * have no producer yet. The node is placed at the end of g->nodes (call
 * pare_graph_toposort after a batch of inserts), or before `before` if given.
 * Attributes are added with pare_node_set_attr_*. */
pare_status pare_graph_add_node(pare_graph *g, const char *name, const char *domain,
                                const char *op_type, pare_value *const *inputs, size_t n_inputs,
                                pare_value *const *outputs, size_t n_outputs, pare_node *before,
                                pare_node **out, pare_error *err);
/* Replaces input i of n (NULL to omit it); fixes both values' use lists. */
pare_status pare_node_set_input(pare_node *n, size_t i, pare_value *v, pare_error *err);
/* Appends an input. */
pare_status pare_node_add_input(pare_node *n, pare_value *v, pare_error *err);
/* Attribute setters: add or replace. */
pare_status pare_node_set_attr_int(pare_node *n, const char *name, int64_t v, pare_error *err);
pare_status pare_node_set_attr_float(pare_node *n, const char *name, float v, pare_error *err);
pare_status pare_node_set_attr_string(pare_node *n, const char *name, const char *v,
                                      pare_error *err);
pare_status pare_node_set_attr_ints(pare_node *n, const char *name, const int64_t *v, size_t count,
                                    pare_error *err);
pare_status pare_node_set_attr_floats(pare_node *n, const char *name, const float *v,
                                      size_t count, pare_error *err);
/* Takes ownership of t. */
pare_status pare_node_set_attr_tensor(pare_node *n, const char *name, pare_tensor *t,
                                      pare_error *err);
pare_status pare_node_remove_attr(pare_node *n, const char *name, pare_error *err);

/* Every use of `from` (in g and its subgraphs) reads `to` instead; graph outputs
 * that were `from` become `to` (renamed when needed, so output names stay). */
pare_status pare_value_replace_uses(pare_value *from, pare_value *to, pare_error *err);
/* Removes n; its outputs lose their producer (they stay as undefined values
 * until removed or re-produced). Frees the node with its subgraphs, whose
 * reads of outer-scope values are dropped from those values' uses. */
pare_status pare_graph_remove_node(pare_graph *g, pare_node *n, pare_error *err);
/* Consumers of n's output `out` read n's input `in` instead, then n is removed. */
pare_status pare_graph_bypass_node(pare_graph *g, pare_node *n, size_t in, pare_error *err);
/* Renames v (fails if the new name is taken). */
pare_status pare_value_rename(pare_value *v, const char *name, pare_error *err);
/* Graph inputs and outputs. */
pare_status pare_graph_add_input(pare_graph *g, pare_value *v, pare_error *err);
pare_status pare_graph_add_output(pare_graph *g, pare_value *v, pare_error *err);
pare_status pare_graph_remove_output(pare_graph *g, size_t i, pare_error *err);
pare_status pare_graph_remove_input(pare_graph *g, size_t i, pare_error *err);
/* Removes nodes whose outputs nobody reads, then initializers and values
 * nobody uses (graph inputs stay). Returns how many nodes went in *removed. */
pare_status pare_graph_remove_dead(pare_graph *g, size_t *removed, pare_error *err);

/* Sorts g->nodes topologically (stable: keeps file order where it can).
 * Fails with PARE_ERR_INVALID naming a node on a cycle. */
pare_status pare_graph_toposort(pare_graph *g, pare_error *err);

/* ---- checks ---- */

typedef struct pare_problem {
    char *where;   /* "node 'conv1' (Conv)", "initializer 'W'", "graph 'main'" */
    char *what;
} pare_problem;

typedef struct pare_problems {
    pare_problem *items;
    size_t n, cap;
} pare_problems;

/* Checks graph structure the way onnx.checker does (single producer per
 * value, topological order, every input defined, opset imports present for
 * every domain used, initializer dtype and data size consistent with dims,
 * attribute types, subgraphs) and appends every problem found. Returns
 * PARE_OK when it ran (even with problems), an error only on allocation
 * failure. */
pare_status pare_model_validate(pare_model *m, pare_problems *out, pare_error *err);
void pare_problems_release(pare_problems *p);

/* Walks g and all subgraphs depth-first, calling fn for each graph. */
void pare_graph_walk(pare_graph *g, void (*fn)(pare_graph *, void *), void *ctx);

#ifdef __cplusplus
}
#endif
#endif
