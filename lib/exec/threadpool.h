/* A small fixed thread pool for data-parallel loops inside kernels. */
#ifndef PARE_EXEC_THREADPOOL_H
#define PARE_EXEC_THREADPOOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct pare_threadpool pare_threadpool;

/* n_threads <= 0: all cores. NULL on allocation failure. */
pare_threadpool *pare_threadpool_new(int n_threads);
void pare_threadpool_free(pare_threadpool *p);
int pare_threadpool_size(const pare_threadpool *p);

/* Calls fn(ctx, begin, end) over [0, n) split in chunks across the pool and
 * waits for all of them. Chunks are at least `grain` long. Runs inline when
 * the pool has one thread, n is small, or the call is nested. */
typedef void (*pare_range_fn)(void *ctx, int64_t begin, int64_t end);
void pare_parallel_for(pare_threadpool *p, int64_t n, int64_t grain, pare_range_fn fn, void *ctx);

#endif
