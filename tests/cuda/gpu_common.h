/* Shared by the GPU suite (gpu_nodes.c, gpu_models.c): whether a GPU is
 * usable, .pb tensors, deterministic inputs, comparisons with tolerances,
 * runs of a model on a device. */
#ifndef PARE_TESTS_GPU_COMMON_H
#define PARE_TESTS_GPU_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include "pare/exec.h"
#include "pare/model.h"

/* true when device "cuda" can run here; else why */
bool gpu_usable(char *why, size_t size);
/* whether a row of a plan text (pare_session_plan_text) runs on backend be
 * with a note containing note */
bool gpu_plan_has(const char *plan, const char *be, const char *note);
pare_status gpu_read_pb(const char *path, pare_tensor **out, pare_error *err);
/* |got - want| <= atol + rtol |want| elementwise (NaN equal to NaN, inf to
 * the same inf); integers and bools exactly; false with why */
bool gpu_compare(const pare_tensor *got, const pare_tensor *want, double rtol, double atol,
                 char *why, size_t size);
/* Runs m on device (threads 1 on the cpu) with opts' cuda settings;
 * outputs owned by the caller; the session's stats in *rs if not NULL;
 * `runs` runs, the outputs of the last kept. */
pare_status gpu_run(pare_model *m, const char *device, int cuda_graph, int runs,
                    pare_tensor *const *ins, size_t n_in, pare_tensor ***outs, size_t *n_outs,
                    pare_run_stats *rs, char **plan, pare_error *err);
/* Inputs for every graph input of m: float arange(n)/n (ints: i % 7, bools:
 * i % 2), dynamic dims set to dyn. Caller frees with pare_tensors_free. */
pare_status gpu_make_inputs(pare_model *m, int64_t dyn, pare_tensor ***ins, size_t *n,
                            pare_error *err);

#endif
