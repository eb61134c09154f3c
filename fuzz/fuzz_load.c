/* libFuzzer target: model loader, validator and saver on untrusted bytes. */
#include <stdint.h>
#include <stdlib.h>
#include "pare/ir.h"
#include "pare/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pare_model *m;
    pare_error err;
    pare_load_opts lo = PARE_LOAD_OPTS_INIT;
    lo.max_decompressed = 16u << 20;
    if (pare_model_load_buffer(data, size, NULL, &lo, &m, &err) != PARE_OK)
        return 0;
    pare_problems probs = {0};
    pare_model_validate(m, &probs, &err);
    pare_model_align_weights(m, &err);
    pare_problems_release(&probs);
    void *buf;
    size_t len;
    if (pare_model_save_buffer(m, &buf, &len, &err) == PARE_OK)
        free(buf);
    pare_graph_toposort(pare_model_graph(m), &err);
    pare_model_free(m);
    return 0;
}
