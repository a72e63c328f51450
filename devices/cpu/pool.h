/* pool.h: the CPU device's thread pool (devices/cpu/pool.c) and the rule that decides how many
 * chunks a kernel is split into.
 *
 * A pool of n threads is the calling thread plus n - 1 workers, started on the first run that
 * needs them; between runs they watch for work for a moment, then sleep on a condition
 * variable. A run hands out the tasks [0, ntasks) one at a time to whichever thread asks next
 * (the caller too) and returns when every task is done; it never waits for a worker that has
 * not taken a task, so a worker the system leaves asleep costs nothing but the wake-up call.
 * Workers block every signal: Ctrl-C reaches the thread that runs Lua. One pool serves one
 * thread at a time (the context's), like the rest of the device. */
#ifndef LG_POOL_H
#define LG_POOL_H
#include <stdint.h>

typedef struct lg_pool lg_pool;
typedef void (*lg_pool_task)(void *arg, int32_t task, int32_t ntasks);

/* A pool of nthreads (>= 1) threads, none started yet; NULL when out of memory. */
lg_pool *lg_pool_new(int32_t nthreads);

/* The threads a device's pool gets: THREADS, else the CPUs this process may run on (at most
 * LG_POOL_MAX_THREADS); 0 when THREADS is set but not a count from 1 to LG_POOL_MAX_THREADS. */
enum { LG_POOL_MAX_THREADS = 1024 };
int32_t lg_pool_thread_count(void);
/* Stop and join the workers; NULL is fine. */
void lg_pool_free(lg_pool *p);
int32_t lg_pool_threads(const lg_pool *p);
/* Threads started so far besides the caller (workers a failed pthread_create left out are
 * missing: their tasks run on the others). */
int32_t lg_pool_workers(const lg_pool *p);
/* Run task(arg, i, ntasks) once for each i in [0, ntasks), on the caller and up to ntasks - 1
 * workers; returns when all have returned. */
void lg_pool_run(lg_pool *p, lg_pool_task task, void *arg, int32_t ntasks);

/* How a kernel is split: into chunks of at least LG_POOL_MIN_WORK (in the renderer's operations,
 * devices/cpu/render_c.c), about 10 to 25 us of simple vectorized work on this project's dev
 * machine, where waking a parked worker takes 8 to 60 us and handing a chunk to a worker that
 * is already awake under 1 us; and into at most LG_POOL_CHUNKS chunks per thread, so that when a
 * worker comes late (a loaded machine), the others take its share. */
enum { LG_POOL_MIN_WORK = 1 << 18, LG_POOL_CHUNKS = 4 };

/* The chunks (the kernel's ncores) of a kernel whose split loop runs `trips` iterations (0: not
 * split) of `work` in all, on `threads` threads: 1 when work < 2 * LG_POOL_MIN_WORK or trips < 2,
 * else work / LG_POOL_MIN_WORK, at most threads * LG_POOL_CHUNKS and at most trips. */
int32_t lg_pool_width(int64_t trips, int64_t work, int32_t threads);

/* A kernel with the CPU calling convention of luagrad.h. */
typedef void (*lg_pool_kernel)(void **bufs, const int64_t *ints, int32_t core_id, int32_t ncores);
/* Run a kernel in chunks over the pool: `want` chunks when > 1, else as lg_pool_width decides
 * from split ({iterations, work of one}, as the renderers export it; NULL: one chunk). With
 * 0 < sample < chunks, only core_ids [0, sample) run (a probe of part of the work). */
void lg_pool_launch(lg_pool *p, lg_pool_kernel fn, void **bufs, const int64_t *ints, const int64_t *split,
                    int32_t want, int32_t sample);

#endif
