/* pool.h: the CPU device's thread pool (devices/cpu/pool.c) and the rule that decides how many
 * cores a kernel runs on.
 *
 * A pool of n threads is the calling thread plus n - 1 workers, started on the first run that
 * needs them and parked on a condition variable between runs. A run hands out the tasks
 * [0, ntasks) one at a time to whichever thread asks next (the caller too), so a worker that the
 * system leaves waiting costs no more than its wake-up; it returns when every task is done.
 * Workers block every signal: Ctrl-C reaches the thread that runs Lua. One pool serves one
 * thread at a time (the context's), like the rest of the device. */
#ifndef LG_POOL_H
#define LG_POOL_H
#include <stdint.h>

typedef struct lg_pool lg_pool;
typedef void (*lg_pool_task)(void *arg, int32_t task, int32_t ntasks);

/* A pool of nthreads (>= 1) threads, none started yet; NULL when out of memory. */
lg_pool *lg_pool_new(int32_t nthreads);
/* Stop and join the workers; NULL is fine. */
void lg_pool_free(lg_pool *p);
int32_t lg_pool_threads(const lg_pool *p);
/* Threads started so far besides the caller (workers a failed pthread_create left out are
 * missing: their tasks run on the others). */
int32_t lg_pool_workers(const lg_pool *p);
/* Run task(arg, i, ntasks) once for each i in [0, ntasks), on the caller and up to ntasks - 1
 * workers; returns when all have returned. */
void lg_pool_run(lg_pool *p, lg_pool_task task, void *arg, int32_t ntasks);

/* Work (in the renderer's operations, see devices/cpu/render_c.c) a core must get for one more
 * core to pay for waking it: about 25 us of simple vectorized operations, several times the
 * wake-up and join of a parked worker measured on a loaded 2-core machine. */
enum { LG_POOL_MIN_WORK = 1 << 17 };

/* The cores a kernel runs on: one when its work is under 2 * LG_POOL_MIN_WORK or its split loop
 * has fewer than 2 iterations; else as many as give each core LG_POOL_MIN_WORK, at most
 * `threads` and at most `trips` (one iteration each). trips 0: the kernel is not split. */
int32_t lg_pool_width(int64_t trips, int64_t work, int32_t threads);

#endif
