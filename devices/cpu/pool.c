/* pool.c: a persistent thread pool for the CPU device (see pool.h).
 *
 * A run publishes its job under the mutex with a new generation number and wakes as many
 * sleeping workers as it has tasks beyond the caller's first; workers still watching for work
 * see the new generation by themselves. Tasks are claimed from a counter tagged with the
 * generation (compare and swap), so a worker that wakes late can never claim a task of a job
 * that has ended or of the next one; the caller claims too and returns when the count of
 * finished tasks reaches ntasks. No one waits for a worker that has claimed nothing: on a
 * loaded machine a late worker just finds the work done. A worker that finished a job watches
 * for the next one for SPIN_NS before it sleeps, and the caller watches for its tasks as long
 * before it sleeps: kernels that follow each other skip the wake-up through the kernel (8 to
 * 60 us on this project's dev machine, under 1 us when watching). */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum { SPIN_NS = 50000 };

struct lg_pool {
  pthread_mutex_t mu;
  pthread_cond_t wake, done;
  pthread_t *threads;
  int32_t nthreads, nworkers; /* wanted (the caller included); workers started */
  bool started, quit;
  atomic_uint_fast64_t gen; /* the job's generation: bumped by each run (under mu) */
  /* the job (written under mu) */
  lg_pool_task task;
  void *arg;
  int32_t ntasks;
  atomic_uint_fast64_t claim; /* the generation's low 32 bits, then the next task */
  atomic_int finished;        /* tasks done */
};

static void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Run the tasks of generation gen that are left; the one who finishes the last wakes the caller. */
static void claim_all(lg_pool *p, uint64_t gen, lg_pool_task task, void *arg, int32_t ntasks) {
  uint64_t tag = gen << 32, v = atomic_load_explicit(&p->claim, memory_order_relaxed);
  while ((v & ~(uint64_t)UINT32_MAX) == tag && (int64_t)(v & UINT32_MAX) < ntasks) {
    if (!atomic_compare_exchange_weak_explicit(&p->claim, &v, v + 1, memory_order_relaxed, memory_order_relaxed))
      continue;
    task(arg, (int32_t)(v & UINT32_MAX), ntasks);
    if (atomic_fetch_add_explicit(&p->finished, 1, memory_order_acq_rel) + 1 == ntasks) {
      pthread_mutex_lock(&p->mu);
      pthread_cond_signal(&p->done);
      pthread_mutex_unlock(&p->mu);
    }
    v = atomic_load_explicit(&p->claim, memory_order_relaxed);
  }
}

/* Watch the generation for up to SPIN_NS while it is `from`. */
static void watch(lg_pool *p, uint64_t from) {
  int64_t t0 = now_ns();
  for (int i = 1; atomic_load_explicit(&p->gen, memory_order_relaxed) == from; i++) {
    relax();
    if (i % 64 == 0 && now_ns() - t0 > SPIN_NS) return;
  }
}

static void *worker(void *arg) {
  lg_pool *p = arg;
  uint64_t seen = 0;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    while (!p->quit && atomic_load_explicit(&p->gen, memory_order_relaxed) == seen) pthread_cond_wait(&p->wake, &p->mu);
    if (p->quit) {
      pthread_mutex_unlock(&p->mu);
      return NULL;
    }
    seen = atomic_load_explicit(&p->gen, memory_order_relaxed);
    lg_pool_task task = p->task;
    void *targ = p->arg;
    int32_t ntasks = p->ntasks;
    pthread_mutex_unlock(&p->mu);
    claim_all(p, seen & UINT32_MAX, task, targ, ntasks);
    watch(p, seen);
  }
}

lg_pool *lg_pool_new(int32_t nthreads) {
  lg_pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->nthreads = nthreads < 1 ? 1 : nthreads;
  p->threads = malloc((size_t)p->nthreads * sizeof *p->threads);
  if (!p->threads || pthread_mutex_init(&p->mu, NULL) != 0) {
    free(p->threads);
    free(p);
    return NULL;
  }
  if (pthread_cond_init(&p->wake, NULL) != 0 || pthread_cond_init(&p->done, NULL) != 0) {
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
    return NULL;
  }
  return p;
}

/* Start the workers, with every signal blocked; those that fail to start are left out. */
static void start(lg_pool *p) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  while (p->nworkers < p->nthreads - 1 && pthread_create(&p->threads[p->nworkers], NULL, worker, p) == 0) p->nworkers++;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  p->started = true;
}

void lg_pool_free(lg_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->quit = true;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  for (int32_t i = 0; i < p->nworkers; i++) pthread_join(p->threads[i], NULL);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
  pthread_mutex_destroy(&p->mu);
  free(p->threads);
  free(p);
}

int32_t lg_pool_threads(const lg_pool *p) { return p->nthreads; }
int32_t lg_pool_workers(const lg_pool *p) { return p->nworkers; }

void lg_pool_run(lg_pool *p, lg_pool_task task, void *arg, int32_t ntasks) {
  if (!p->started && ntasks > 1) start(p);
  int32_t helpers = ntasks - 1 < p->nworkers ? ntasks - 1 : p->nworkers;
  if (helpers <= 0) {
    for (int32_t i = 0; i < ntasks; i++) task(arg, i, ntasks);
    return;
  }
  pthread_mutex_lock(&p->mu);
  uint64_t gen = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
  p->task = task, p->arg = arg, p->ntasks = ntasks;
  atomic_store_explicit(&p->finished, 0, memory_order_relaxed);
  atomic_store_explicit(&p->claim, (gen & UINT32_MAX) << 32, memory_order_relaxed);
  atomic_store_explicit(&p->gen, gen, memory_order_relaxed);
  for (int32_t i = 0; i < helpers; i++) pthread_cond_signal(&p->wake);
  pthread_mutex_unlock(&p->mu);
  claim_all(p, gen & UINT32_MAX, task, arg, ntasks);
  int64_t t0 = now_ns();
  for (int i = 1; atomic_load_explicit(&p->finished, memory_order_acquire) < ntasks; i++) {
    relax();
    if (i % 64 == 0 && now_ns() - t0 > SPIN_NS) {
      pthread_mutex_lock(&p->mu);
      while (atomic_load_explicit(&p->finished, memory_order_acquire) < ntasks) pthread_cond_wait(&p->done, &p->mu);
      pthread_mutex_unlock(&p->mu);
    }
  }
}

int32_t lg_pool_width(int64_t trips, int64_t work, int32_t threads) {
  if (threads < 2 || trips < 2 || work < 2 * (int64_t)LG_POOL_MIN_WORK) return 1;
  int64_t n = work / LG_POOL_MIN_WORK;
  if (n > (int64_t)threads * LG_POOL_CHUNKS) n = (int64_t)threads * LG_POOL_CHUNKS;
  return (int32_t)(n < trips ? n : trips);
}

int32_t lg_pool_thread_count(void) {
  const char *env = getenv("THREADS");
  if (env && *env) {
    char *end;
    errno = 0;
    long n = strtol(env, &end, 10);
    return *end || errno || n < 1 || n > LG_POOL_MAX_THREADS ? 0 : (int32_t)n;
  }
  cpu_set_t set;
  long n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > LG_POOL_MAX_THREADS ? LG_POOL_MAX_THREADS : (int32_t)n;
}

typedef struct launch_job {
  lg_pool_kernel fn;
  void **bufs;
  const int64_t *ints;
  int32_t ncores;
} launch_job;

static void run_core(void *arg, int32_t core, int32_t ntasks) {
  const launch_job *j = arg;
  j->fn(j->bufs, j->ints, core, j->ncores);
}

void lg_pool_launch(lg_pool *p, lg_pool_kernel fn, void **bufs, const int64_t *ints, const int64_t *split,
                    int32_t want, int32_t sample) {
  int32_t ncores = 1;
  if (want > 1) {
    ncores = want;
  } else if (split) { /* iterations * work of one, saturating */
    int64_t work = split[1] > 0 && split[0] > INT64_MAX / split[1] ? INT64_MAX : split[0] * split[1];
    ncores = lg_pool_width(split[0], work, lg_pool_threads(p));
  }
  int32_t nrun = sample > 0 && sample < ncores ? sample : ncores;
  if (nrun == 1) {
    fn(bufs, ints, 0, ncores);
    return;
  }
  launch_job job = {fn, bufs, ints, ncores};
  lg_pool_run(p, run_core, &job, nrun);
}
