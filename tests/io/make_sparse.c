/* Test helper: prunes a model the crude way and writes it dense and sparse.
 * Usage: make_sparse IN DENSE_OUT SPARSE_OUT
 * Every float32 initializer of at least 256 elements keeps one element in
 * ten (the others become 0); DENSE_OUT stores them as initializers,
 * SPARSE_OUT as sparse_initializers (pare_value_store_sparse). The two files
 * hold the same weights, so every runner must give the same outputs. */
#include <stdio.h>
#include <string.h>
#include "pare/ir.h"
#include "pare/model.h"

static int sparsify(pare_graph *g, bool sparse, pare_error *err)
{
    for (size_t i = 0; i < g->n_values; i++) {
        pare_value *v = g->values[i];
        if (!v->init || v->init->dtype != PARE_DT_FLOAT || pare_tensor_numel(v->init) < 256)
            continue;
        if (!sparse) {
            pare_tensor *t;
            if (pare_tensor_clone(v->init, &t, err))
                return 1;
            float *d = t->data;
            for (size_t k = 0; k < t->nbytes / sizeof *d; k++)
                if (k % 10)
                    d[k] = 0.0f;
            if (pare_value_set_tensor(v, t, err)) {
                pare_tensor_free(t);
                return 1;
            }
        } else if (pare_value_store_sparse(v, true, err)) {
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: make_sparse IN DENSE_OUT SPARSE_OUT\n");
        return 2;
    }
    pare_model *m;
    pare_error err;
    if (pare_model_load(argv[1], NULL, &m, &err)) {
        fprintf(stderr, "make_sparse: %s: %s\n", argv[1], err.msg);
        return 1;
    }
    pare_save_opts so = PARE_SAVE_OPTS_INIT;
    so.external_threshold = INT64_MAX; /* both embedded */
    int rc = 0;
    const char *where = argv[2];
    if (sparsify(pare_model_graph(m), false, &err) || pare_model_save(m, argv[2], &so, &err) ||
        (where = argv[3], sparsify(pare_model_graph(m), true, &err)) ||
        pare_model_save(m, argv[3], &so, &err)) {
        fprintf(stderr, "make_sparse: %s: %s\n", where, err.msg);
        rc = 1;
    }
    pare_model_free(m);
    return rc;
}
