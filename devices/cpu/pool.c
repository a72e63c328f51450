/* pool.c: a persistent thread pool for the CPU device (see pool.h).
 *
 * A run publishes its job under the mutex with a new generation number and wakes the workers;
 * the first `helpers` workers take part, the others go back to sleep. Tasks are claimed with an
 * atomic counter. Each helper counts itself out when the counter runs past ntasks, and the
 * caller waits for that count to reach zero, so no worker still reads the job when the next run
 * replaces it. */
#include "pool.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

struct lg_pool {
  pthread_mutex_t mu;
  pthread_cond_t wake, done;
  pthread_t *threads;
  int32_t nthreads, nworkers; /* wanted (the caller included); workers started */
  bool started, quit;
  uint64_t gen; /* the job's generation: bumped by each run */
  /* the job */
  lg_pool_task task;
  void *arg;
  int32_t ntasks, helpers, busy; /* busy: helpers not yet done */
  atomic_int next;               /* the next task to claim */
};

typedef struct worker_arg {
  lg_pool *p;
  int32_t index;
} worker_arg;

static void claim_all(lg_pool *p, lg_pool_task task, void *arg, int32_t ntasks) {
  for (int32_t i; (i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed)) < ntasks;) task(arg, i, ntasks);
}

static void *worker(void *wa) {
  lg_pool *p = ((worker_arg *)wa)->p;
  int32_t index = ((worker_arg *)wa)->index;
  free(wa);
  uint64_t seen = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->quit && p->gen == seen) pthread_cond_wait(&p->wake, &p->mu);
    if (p->quit) break;
    seen = p->gen;
    if (index >= p->helpers) continue;
    lg_pool_task task = p->task;
    void *arg = p->arg;
    int32_t ntasks = p->ntasks;
    pthread_mutex_unlock(&p->mu);
    claim_all(p, task, arg, ntasks);
    pthread_mutex_lock(&p->mu);
    if (--p->busy == 0) pthread_cond_signal(&p->done);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
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
  for (int32_t i = 0; i < p->nthreads - 1; i++) {
    worker_arg *wa = malloc(sizeof *wa);
    if (!wa) break;
    *wa = (worker_arg){p, p->nworkers};
    if (pthread_create(&p->threads[p->nworkers], NULL, worker, wa) != 0) {
      free(wa);
      break;
    }
    p->nworkers++;
  }
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
  p->task = task, p->arg = arg, p->ntasks = ntasks, p->helpers = helpers, p->busy = helpers;
  atomic_store_explicit(&p->next, 0, memory_order_relaxed);
  p->gen++;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  claim_all(p, task, arg, ntasks);
  pthread_mutex_lock(&p->mu);
  while (p->busy > 0) pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
}

int32_t lg_pool_width(int64_t trips, int64_t work, int32_t threads) {
  if (trips < 2 || work < 2 * (int64_t)LG_POOL_MIN_WORK) return 1;
  int64_t n = work / LG_POOL_MIN_WORK;
  if (n > threads) n = threads;
  if (n > trips) n = trips;
  return (int32_t)n;
}
