/* pare/feed.h - a dataset bound to a session's inputs, read batch by batch.
 *
 * Every program that runs a model over data (pare-run, calibration in
 * pare-quantize, wanda/sparsegpt in pare-prune, pare-distill-export) feeds it
 * the same way:
 *
 *     pare_feed *f;
 *     if (pare_feed_open("calib.npz", s, 8, 0, &f, &err)) ...;   // batches of 8, all samples
 *     pare_tensor **ins; int64_t got;
 *     while (!(st = pare_feed_next(f, &ins, &got, &err)) && ins) {
 *         pare_session_run(s, ins, pare_session_input_count(s), &outs, &n, &err);
 *         ...
 *         pare_tensors_free(ins, pare_session_input_count(s));
 *     }
 *     pare_feed_close(f);
 *
 * Arrays are matched to the session's inputs by name (or by position for
 * unnamed TensorProto .pb tensors); a dataset that lacks an input, or whose
 * dtype or per-sample shape does not fit it, fails at open with a message
 * that lists the model's expected signature. Only one batch is in memory.
 */
#ifndef PARE_FEED_H
#define PARE_FEED_H

#include <stdint.h>
#include "pare/data.h"
#include "pare/exec.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pare_feed pare_feed;

/* Opens the dataset at path for session s. batch >= 1 samples per batch
 * (a test_data_set folder gives its stored tensors as they are, one set per
 * batch); max_samples > 0 stops after that many samples (0: all). */
pare_status pare_feed_open(const char *path, pare_session *s, int64_t batch, int64_t max_samples,
                           pare_feed **out, pare_error *err);

/* Next batch: *inputs is a malloc'd array of pare_session_input_count(s)
 * tensors in the session's input order, named after the inputs (caller frees
 * with pare_tensors_free); *samples is how many samples it holds. At the end
 * *inputs is NULL and *samples 0. */
pare_status pare_feed_next(pare_feed *f, pare_tensor ***inputs, int64_t *samples, pare_error *err);

/* Draws the samples at random instead of taking the first ones: when the
 * feed has a sample limit smaller than the dataset (and the dataset's size is
 * known), the limit's worth of distinct samples is drawn with seed (the same
 * seed, the same samples on every platform) and given in file order. seed 0
 * keeps the first samples. Call before the first pare_feed_next. */
pare_status pare_feed_set_sampling(pare_feed *f, uint64_t seed, pare_error *err);

/* Starts again from the first sample. */
void pare_feed_rewind(pare_feed *f);

/* Samples the feed will give in all (after max_samples); -1 when unknown. */
int64_t pare_feed_count(const pare_feed *f);

/* Samples given so far. */
int64_t pare_feed_position(const pare_feed *f);

/* The dataset underneath (owned by the feed). */
pare_dataset *pare_feed_dataset(pare_feed *f);

/* NULL-safe. */
void pare_feed_close(pare_feed *f);

#ifdef __cplusplus
}
#endif
#endif
