/* Internal definitions of the shape inference (lib/infer). Not installed.
 *
 * Inference keeps what it learns in a side table (value -> ix_vinfo) and
 * writes it into the IR only at the end, so that Loop/Scan bodies can be
 * inferred several times (until their loop-carried types settle) and
 * conflicts with the file are judged once, on the final result.
 *
 * Symbols are interned: every `sym` pointer in the structures below comes
 * from ix_intern, so two symbolic dims are the same symbol exactly when
 * their pointers are equal.
 */
#ifndef PARE_INFER_INT_H
#define PARE_INFER_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "internal.h"
#include "pare/infer.h"

/* A dim: v >= 0 known; v < 0 and sym != NULL symbolic; otherwise unknown. */
typedef struct ix_dim {
    int64_t v;
    const char *sym;
} ix_dim;

/* rank -1: unknown rank. */
typedef struct ix_shape {
    int rank;
    ix_dim d[PARE_MAX_RANK];
} ix_shape;

/* ---- small tensors whose contents are known ("values") ---- */

enum { IXE_UNK = 0, IXE_INT, IXE_SYM, IXE_FLT };

/* One element: an integer, a float, a symbol (an integer that equals a
 * symbolic dim) or unknown. */
typedef struct ix_elem {
    int kind;
    int64_t i;
    double f;
    const char *sym;
} ix_elem;

#define IX_CONST_MAX 64
#define IX_CONST_RANK 8

typedef struct ix_const {
    int dtype;
    int rank;
    int64_t dims[IX_CONST_RANK];
    int n;
    ix_elem e[IX_CONST_MAX];
} ix_const;

/* ---- the inference context ---- */

typedef struct ix_arena_blk {
    struct ix_arena_blk *next;
    size_t used, cap;
    max_align_t data[];
} ix_arena_blk;

typedef struct ix_vinfo {
    bool typed;           /* an inferred type is held */
    int dtype;
    int rank;             /* -1 unknown */
    ix_dim *dims;         /* arena */
    const ix_const *c;    /* known contents, or NULL */
    bool c_checked;       /* initializer contents were looked at */
} ix_vinfo;

typedef struct ix_slot {
    const void *key;
    void *val;
} ix_slot;

typedef struct ix_map {
    ix_slot *slots;
    size_t cap, n;
} ix_map;

typedef struct ix_node ix_node;
typedef int (*ix_fn)(ix_node *c);

typedef struct ix_op {
    const char *domain; /* "" for ai.onnx */
    const char *name;
    ix_fn fn;
} ix_op;

typedef struct ix_ctx {
    pare_model *m;
    const pare_infer_opts *opts;
    pare_infer_report *rep;
    pare_error *err;
    ix_arena_blk *arena;
    const char **syms;    /* intern table (open addressing) */
    size_t sym_cap, sym_n;
    ix_map values;        /* pare_value* -> ix_vinfo* */
    ix_map reported;      /* pare_node* already reported as unknown */
    const ix_op **ops;    /* sorted by (domain, name) */
    size_t n_ops;
    int depth;            /* subgraph nesting, to bound recursion */
    int loop_depth;       /* Loop/Scan bodies being iterated to a fixed point */
    bool oom;
} ix_ctx;

typedef struct ix_out {
    bool set;
    int dtype;
    ix_shape s;
    const ix_const *c;
} ix_out;

struct ix_node {
    ix_ctx *x;
    pare_node *n;
    int64_t opset;
    size_t nin, nout;
    ix_out *out;
};

#define IX_OK 0
#define IX_ERR (-1)

/* ---- core.c ---- */
void *ix_alloc(ix_ctx *x, size_t size);              /* zeroed; NULL + x->oom on failure */
const char *ix_intern(ix_ctx *x, const char *s);     /* NULL on failure (x->oom set) */
ix_vinfo *ix_info(ix_ctx *x, const pare_value *v, bool create);

/* Type of a value as inference currently sees it (file type merged with
 * what was inferred). Returns the dtype (0 unknown); *s gets the shape. */
int ix_value_type(ix_ctx *x, pare_value *v, ix_shape *s);
const ix_const *ix_value_const(ix_ctx *x, pare_value *v);
/* Records an inferred type (s NULL: unknown shape) and contents (may be NULL). */
void ix_value_set(ix_ctx *x, pare_value *v, int dtype, const ix_shape *s, const ix_const *c);
/* Infers every node of g (and its subgraphs). */
int ix_infer_graph(ix_ctx *x, pare_graph *g);
/* Forgets everything inferred for values of g and its subgraphs. */
void ix_reset_graph(ix_ctx *x, pare_graph *g);

/* Inputs and outputs of the node being inferred. */
bool ix_has(ix_node *c, size_t i);
int ix_dt(ix_node *c, size_t i);                     /* 0 when absent or unknown */
bool ix_sh(ix_node *c, size_t i, ix_shape *s);       /* false (rank -1) when unknown */
const ix_const *ix_cst(ix_node *c, size_t i);
void ix_set(ix_node *c, size_t o, int dtype, const ix_shape *s);
void ix_set_const(ix_node *c, size_t o, const ix_const *k);
int ix_fail(ix_node *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
int64_t ix_attr_i(ix_node *c, const char *name, int64_t dflt);
size_t ix_attr_ints(ix_node *c, const char *name, const int64_t **v);
bool ix_attr_has(ix_node *c, const char *name);

/* ---- shape.c ---- */
static inline ix_dim ix_d(int64_t v)
{
    ix_dim d = {v, NULL};
    return d;
}
static inline ix_dim ix_unk(void)
{
    ix_dim d = {-1, NULL};
    return d;
}
static inline bool ix_known(ix_dim d)
{
    return d.v >= 0;
}
/* Checked arithmetic on values from the file: false on overflow. */
static inline bool ix_add(int64_t a, int64_t b, int64_t *r)
{
    return !__builtin_add_overflow(a, b, r);
}
static inline bool ix_mul(int64_t a, int64_t b, int64_t *r)
{
    return !__builtin_mul_overflow(a, b, r);
}
/* Same known value or same symbol. */
bool ix_dim_same(ix_dim a, ix_dim b);
/* Both known and different: provably different. */
bool ix_dim_differ(ix_dim a, ix_dim b);
void ix_shape_unknown(ix_shape *s);
void ix_shape_rank(ix_shape *s, int rank);           /* rank dims, all unknown */
/* Normalises a possibly negative axis; false when out of range. */
bool ix_axis(int64_t axis, int rank, int *out);
/* Multidirectional broadcast of a and b into out; -1 on a provable mismatch. */
int ix_broadcast(const ix_shape *a, const ix_shape *b, ix_shape *out);
/* Product of dims [from, to) as a dim: known, a lone symbol (times ones), or unknown. */
ix_dim ix_dims_product(const ix_shape *s, int from, int to);
/* "1x3xNx?" into buf. */
const char *ix_shape_str(const ix_shape *s, char *buf, size_t size);
/* Union of two shapes (what both may be): equal dims kept, others unknown. */
void ix_shape_union(const ix_shape *a, const ix_shape *b, ix_shape *out);
bool ix_shape_equal(const ix_shape *a, const ix_shape *b);
/* Dim arithmetic that keeps known values (overflow or unknown: unknown). */
ix_dim ix_dim_add(ix_dim a, int64_t b);
ix_dim ix_dim_mul(ix_dim a, ix_dim b);

/* ---- consts.c ---- */
ix_const *ix_const_new(ix_ctx *x, int dtype, int rank, const int64_t *dims);
const ix_const *ix_const_from_tensor(ix_ctx *x, const pare_tensor *t);
/* A const of dtype holding the given dims (a Shape result). */
const ix_const *ix_const_from_shape(ix_ctx *x, const ix_shape *s, int from, int to);
/* Element i as an integer when known; false otherwise. */
bool ix_const_int(const ix_const *k, int i, int64_t *out);
bool ix_const_all_int(const ix_const *k);
/* Element i as a dim (for shape tensors): INT >= 0 known, SYM symbolic. */
ix_dim ix_const_dim(const ix_const *k, int i);
double ix_elem_f(const ix_elem *e);
bool ix_elem_num(const ix_elem *e);
bool ix_dtype_intlike(int dt);
/* Evaluates elementwise op on consts (with broadcasting); NULL if it cannot. */
const ix_const *ix_const_binary(ix_ctx *x, const char *op, int out_dtype, const ix_const *a,
                                const ix_const *b);
const ix_const *ix_const_unary(ix_ctx *x, const char *op, int out_dtype, const ix_const *a);
const ix_const *ix_const_where(ix_ctx *x, const ix_const *cond, const ix_const *a,
                               const ix_const *b);
const ix_const *ix_const_cast(ix_ctx *x, const ix_const *a, int to);
/* a broadcast to dims (NULL when it does not fit). */
const ix_const *ix_const_expand(ix_ctx *x, const ix_const *a, int rank, const int64_t *dims);
/* The same elements with other dims (NULL when the count differs). */
const ix_const *ix_const_reshape(ix_ctx *x, const ix_const *a, int rank, const int64_t *dims);

/* ---- op tables (ops_*.c) ---- */
extern const ix_op ix_ops_elem[];
extern const size_t ix_n_ops_elem;
extern const ix_op ix_ops_nn[];
extern const size_t ix_n_ops_nn;
extern const ix_op ix_ops_shape[];
extern const size_t ix_n_ops_shape;
extern const ix_op ix_ops_quant[];
extern const size_t ix_n_ops_quant;
extern const ix_op ix_ops_ctrl[];
extern const size_t ix_n_ops_ctrl;
extern const ix_op ix_ops_misc[];
extern const size_t ix_n_ops_misc;

#endif
