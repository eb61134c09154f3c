/* Internal helpers shared by the cleanup passes (lib/opt). Not installed. */
#ifndef PARE_OPT_INT_H
#define PARE_OPT_INT_H

#include "internal.h"
#include "pare/opt.h"

/* Every graph of a model, parents before their subgraphs. */
typedef struct opt_graphs {
    pare_graph **g;
    size_t n, cap;
    pare_status st;
} opt_graphs;

pare_status opt_graphs_collect(pare_model *m, opt_graphs *out, pare_error *err);
void opt_graphs_release(opt_graphs *gs);

/* Values that a subgraph output names without defining it (an output that
 * passes an outer value through): they are read by name, so passes must
 * neither remove, rename nor replace them. A sorted pointer set. */
typedef struct opt_pins {
    const pare_value **v;
    size_t n, cap;
} opt_pins;

pare_status opt_pins_collect(pare_model *m, opt_pins *out, pare_error *err);
bool opt_pinned(const opt_pins *p, const pare_value *v);
void opt_pins_release(opt_pins *p);

/* What every pass does first: *changed (may be NULL) set to 0, the pinned
 * values and the graphs (outer before inner) collected. On failure nothing is
 * left to release. */
pare_status opt_pass_begin(pare_model *m, size_t *changed, opt_pins *pins, opt_graphs *gs,
                           pare_error *err);

/* True for a model of IR version 3 or older, where every initializer is also
 * listed as a graph input and is a constant all the same (from IR version 4 on
 * an initializer that is an input is an overridable default, as onnxruntime
 * treats it). New initializers of such a model are listed as inputs too. */
bool opt_legacy(const pare_graph *g);

/* True when v is a constant: an initializer that is not an overridable
 * default (see opt_legacy). */
bool opt_is_const(const pare_value *v);

/* Makes v (no producer any more) an initializer holding t (taken, also on
 * failure), listed as a graph input in a legacy model. */
pare_status opt_set_init(pare_value *v, pare_tensor *t, pare_error *err);

/* Adds a new initializer (t taken, also on failure) the same way. */
pare_status opt_add_init(pare_graph *g, pare_tensor *t, pare_value **out, pare_error *err);

/* In a legacy model: initializers nobody reads leave the graph's input list,
 * so that the value sweep can drop them. */
pare_status opt_unlist_unused_inits(pare_graph *g, const opt_pins *pins, pare_error *err);

/* True when every use of `from` can read `to` instead and graph outputs keep
 * their names without adding a node (see pare_value_replace_uses). */
bool opt_can_replace(const opt_pins *pins, const pare_value *from, const pare_value *to);

/* pare_value_replace_uses, and a graph output that moves onto `to` keeps its
 * declared type where `to` has none. */
pare_status opt_replace(pare_value *from, pare_value *to, pare_error *err);

/* Drops values of g that are nothing any more: no producer, no use, no
 * data, not an input or output, not pinned. Also, when drop_unused_inits,
 * initializers nobody reads (graph inputs stay). Counts dropped
 * initializers in *inits (may be NULL). */
pare_status opt_sweep_values(pare_graph *g, const opt_pins *pins, bool drop_unused_inits,
                             size_t *inits, pare_error *err);

/* Drops the values of g whose mark[id] is set and that nothing uses any more
 * (no producer, no use, not an input or output). */
void opt_drop_marked(pare_graph *g, const uint8_t *mark);

/* Notes: a growing "\n"-terminated text. */
pare_status opt_note(char **notes, pare_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Reads a constant 1-D (or scalar) int32/int64 tensor into vals (at most max);
 * returns the count, or -1 when v is not such a constant. */
int64_t opt_const_ints(pare_value *v, int64_t *vals, int64_t max);

/* Total node count of g and its subgraphs. */
size_t opt_count_nodes(const pare_graph *g);

#endif
