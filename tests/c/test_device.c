/* test_device.c: the device layer and the CPU device: buffers, compiling and launching a
 * hand-written kernel, compile errors, the memory and disk caches, bad compilers and cache
 * folders, several programs compiled at once, cache paths; the thread pool, the rule that
 * splits kernels, THREADS, and launches that read a kernel's split info. Every test that
 * compiles uses a private CACHE_DIR; eight compiler runs in all. */
#include <dirent.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctest.h"
#include "device.h"
#include "pool.h"

static const char add_src[] =
    "#include <stdint.h>\n"
    "void add(void **bufs, const int64_t *ints, int32_t core_id, int32_t ncores) {\n"
    "  float *c = bufs[0];\n"
    "  const float *a = bufs[1], *b = bufs[2];\n"
    "  int64_t n = ints[0], lo = n * core_id / ncores, hi = n * (core_id + 1) / ncores;\n"
    "  for (int64_t i = lo; i < hi; i++) c[i] = a[i] + b[i];\n"
    "}\n";

static const char bad_src[] =
    "#include <stdint.h>\n"
    "void bad(void **bufs, const int64_t *ints, int32_t core_id, int32_t ncores) {\n"
    "  float *c = bufs[0];\n"
    "  c[0] = undefined_thing + 1.0f;\n"
    "}\n";

/* An environment variable set for one test and put back after it. */
typedef struct saved_env {
  const char *name;
  char *old;
} saved_env;

static saved_env env_set(const char *name, const char *value) {
  const char *old = getenv(name);
  saved_env s = {name, old ? strdup(old) : NULL};
  if (value) setenv(name, value, 1);
  else unsetenv(name);
  return s;
}

static void env_restore(saved_env s) {
  if (s.old) setenv(s.name, s.old, 1);
  else unsetenv(s.name);
  free(s.old);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) { return remove(path); }
static void remove_tree(const char *dir) { nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS); }

/* Files in dir whose names end with ext. */
static int count_files(const char *dir, const char *ext) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) {
    size_t l = strlen(e->d_name), el = strlen(ext);
    n += e->d_name[0] != '.' && l >= el && strcmp(e->d_name + l - el, ext) == 0;
  }
  closedir(d);
  return n;
}

static lg_device *cpu(ctest_run *ctest_r_, lg_ctx *ctx) {
  lg_device *dev = NULL;
  lg_status st = lg_device_get(ctx, "CPU", &dev);
  CHECK_MSG(st == LG_OK, "lg_device_get: %s", lg_ctx_error(ctx));
  return dev;
}

CTEST(device_registry) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_device *a = cpu(ctest_r_, ctx), *b = NULL, *c = NULL;
  REQUIRE(a);
  CHECK_STR(lg_device_name(a), "CPU");
  CHECK(lg_device_get(ctx, "cpu", &b) == LG_OK && b == a);
  CHECK(lg_device_get(ctx, "CPU:0", &c) == LG_OK && c == a);
  CHECK_INT(lg_device_get(ctx, "CPU:1", &c), LG_ERR_ARG);
  CHECK(strstr(lg_ctx_error(ctx), "CPU:1"));
  CHECK_INT(lg_device_get(ctx, "TPU", &c), LG_ERR_ARG);
  CHECK(strstr(lg_ctx_error(ctx), "'TPU': unknown (devices: CPU"));
  CHECK_INT(lg_device_get(ctx, "CPU:", &c), LG_ERR_ARG);
  CHECK_INT(lg_device_synchronize(a), LG_OK);
  lg_ctx_free(ctx);
}

CTEST(device_buffers) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_device *dev = cpu(ctest_r_, ctx);
  REQUIRE(dev);
  lg_buffer *buf = NULL, *empty = NULL;
  REQUIRE_OK(ctx, lg_buffer_new(ctx, dev, 1000, &buf));
  CHECK_INT((uintptr_t)buf->mem % 64, 0);
  CHECK_INT(lg_buffer_size(buf), 1000);
  CHECK(lg_buffer_device(buf) == dev);
  unsigned char in[1000], out[1000] = {0};
  for (int i = 0; i < 1000; i++) in[i] = (unsigned char)(i * 7);
  REQUIRE_OK(ctx, lg_buffer_write(buf, 0, in, 1000));
  REQUIRE_OK(ctx, lg_buffer_read(buf, 0, out, 1000));
  CHECK(memcmp(in, out, 1000) == 0);
  REQUIRE_OK(ctx, lg_buffer_write(buf, 990, in, 10));
  REQUIRE_OK(ctx, lg_buffer_read(buf, 985, out, 15));
  CHECK(memcmp(out, in + 985, 5) == 0 && memcmp(out + 5, in, 10) == 0);
  CHECK_INT(lg_buffer_write(buf, 995, in, 10), LG_ERR_ARG);
  CHECK(strstr(lg_ctx_error(ctx), "bytes [995, 995 + 10) are outside the buffer of 1000 bytes on CPU"));
  CHECK_INT(lg_buffer_read(buf, -1, out, 1), LG_ERR_ARG);
  CHECK_INT(lg_buffer_new(ctx, dev, -5, &empty), LG_ERR_ARG);
  REQUIRE_OK(ctx, lg_buffer_new(ctx, dev, 0, &empty));
  REQUIRE_OK(ctx, lg_buffer_write(empty, 0, NULL, 0));
  lg_device_stats st;
  lg_device_stats_get(dev, &st);
  CHECK_INT(st.buffers, 2);
  CHECK_INT(st.buffer_bytes, 1000);
  CHECK(lg_buffer_retain(buf) == buf);
  lg_buffer_release(buf);
  lg_buffer_release(buf);
  lg_buffer_release(empty);
  lg_device_stats_get(dev, &st);
  CHECK_INT(st.buffers, 0);
  CHECK_INT(st.buffer_bytes, 0);
  /* a buffer left alive is freed with its context */
  REQUIRE_OK(ctx, lg_buffer_new(ctx, dev, 64, &buf));
  lg_ctx_free(ctx);
}

/* Run the add kernel over n floats; 1 when c == a + b. */
static int run_add(lg_ctx *ctx, lg_program *prog, int64_t n, const lg_launch_dims *dims) {
  lg_device *dev = lg_program_device(prog);
  lg_buffer *bufs[3] = {NULL, NULL, NULL};
  float a[100], b[100], c[100];
  int ok = n <= 100;
  for (int i = 0; i < 3 && ok; i++) ok = lg_buffer_new(ctx, dev, n * 4, &bufs[i]) == LG_OK;
  for (int64_t i = 0; i < n; i++) a[i] = (float)i, b[i] = 0.5f * (float)i, c[i] = -1;
  ok = ok && lg_buffer_write(bufs[1], 0, a, n * 4) == LG_OK && lg_buffer_write(bufs[2], 0, b, n * 4) == LG_OK &&
       lg_program_launch(ctx, prog, bufs, 3, &n, 1, dims) == LG_OK && lg_buffer_read(bufs[0], 0, c, n * 4) == LG_OK;
  for (int64_t i = 0; i < n && ok; i++) ok = c[i] == 1.5f * (float)i;
  for (int i = 0; i < 3; i++) lg_buffer_release(bufs[i]);
  return ok;
}

CTEST(device_compile_and_caches) {
  char dir[] = "/tmp/lg_cache_XXXXXX", sub[64];
  REQUIRE(mkdtemp(dir));
  snprintf(sub, sizeof sub, "%s/cpu", dir);
  saved_env cache = env_set("CACHE_DIR", dir), cc = env_set("LUAGRAD_CC", NULL);
  lg_ctx *ctx = NULL, *ctx2 = NULL;
  lg_program *p = NULL, *q = NULL, *r = NULL;
  lg_device_stats st;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK && lg_ctx_new(&ctx2) == LG_OK);
  lg_device *dev = cpu(ctest_r_, ctx), *dev2 = cpu(ctest_r_, ctx2);
  REQUIRE(dev && dev2);

  /* compile, launch on one core and on three */
  REQUIRE_OK(ctx, lg_program_compile(ctx, dev, add_src, "add", &p));
  CHECK_STR(lg_program_entry(p), "add");
  lg_device_stats_get(dev, &st);
  CHECK_INT(st.compiles, 1);
  CHECK_INT(st.disk_hits, 0);
  CHECK(run_add(ctx, p, 100, NULL));
  CHECK(run_add(ctx, p, 7, &(lg_launch_dims){.global = {3, 1, 1}}));
  CHECK_MSG(run_add(ctx, p, 0, NULL), "%s", lg_ctx_error(ctx));
  lg_device_stats_get(dev, &st);
  CHECK_INT(st.launches, 3);
  CHECK_INT(count_files(sub, ".so"), 1);
  CHECK_INT(count_files(sub, ".c"), 0);
  struct stat sb;
  CHECK(stat(sub, &sb) == 0 && (sb.st_mode & 0777) == 0700);

  /* memory cache: the same program while it is held */
  REQUIRE_OK(ctx, lg_program_compile(ctx, dev, add_src, "add", &q));
  CHECK(q == p);
  lg_device_stats_get(dev, &st);
  CHECK_INT(st.memory_hits, 1);
  CHECK_INT(st.compiles, 1);
  lg_program_release(q);

  /* disk cache: another context loads the file and runs no compiler */
  REQUIRE_OK(ctx2, lg_program_compile(ctx2, dev2, add_src, "add", &r));
  lg_device_stats_get(dev2, &st);
  CHECK_INT(st.compiles, 0);
  CHECK_INT(st.disk_hits, 1);
  CHECK(run_add(ctx2, r, 50, NULL));

  /* launch arguments are checked */
  lg_buffer *b = NULL, *none[1] = {NULL};
  REQUIRE_OK(ctx, lg_buffer_new(ctx, dev, 16, &b));
  CHECK_INT(lg_program_launch(ctx, p, none, 1, NULL, 0, NULL), LG_ERR_ARG);
  CHECK(strstr(lg_ctx_error(ctx), "buffer 0 is NULL"));
  CHECK_INT(lg_program_launch(ctx2, r, &b, 1, NULL, 0, NULL), LG_ERR_ARG);
  CHECK_INT(lg_program_launch(ctx, p, &b, 1, NULL, 1, NULL), LG_ERR_ARG);
  lg_buffer_release(b);

  /* a compile error quotes the compiler and the offending line; no temporary file is left */
  CHECK_INT(lg_program_compile(ctx, dev, bad_src, "bad", &q), LG_ERR_COMPILE);
  const char *msg = lg_ctx_error(ctx);
  CHECK_MSG(strstr(msg, "kernel 'bad' does not compile") && strstr(msg, "bad.c:4:10: error:") &&
                strstr(msg, "undefined_thing") && strstr(msg, "    4 |   c[0] = undefined_thing + 1.0f;\n      |          ^"),
            "message:\n%s", msg);
  /* a source without the entry */
  CHECK_INT(lg_program_compile(ctx, dev, add_src, "sub", &q), LG_ERR_COMPILE);
  CHECK(strstr(lg_ctx_error(ctx), "defines no function 'sub'"));
  CHECK_INT(lg_program_compile(ctx, dev, add_src, "not an identifier", &q), LG_ERR_ARG);
  lg_device_stats_get(dev, &st);
  CHECK_INT(st.compiles, 3);
  CHECK_INT(count_files(sub, ".c"), 0);
  CHECK_INT(count_files(sub, ".so"), 1); /* only programs that loaded are kept */

  lg_program_release(p);
  lg_program_release(r);
  lg_ctx_free(ctx);
  lg_ctx_free(ctx2);
  remove_tree(dir);
  env_restore(cache);
  env_restore(cc);
}

static const char sub_src[] =
    "#include <stdint.h>\n"
    "void sub(void **bufs, const int64_t *ints, int32_t core_id, int32_t ncores) {\n"
    "  float *c = bufs[0];\n"
    "  c[0] = 7.0f - 2.0f;\n"
    "}\n";

/* Several programs compiled at once: each its program or its message; a source given twice is
 * compiled once; a second context finds them on disk. A launch of a sample of the cores. Then
 * file names in a folder of the cache. */
CTEST(device_compile_many) {
  char dir[] = "/tmp/lg_cache_XXXXXX", sub[64];
  REQUIRE(mkdtemp(dir));
  snprintf(sub, sizeof sub, "%s/cpu", dir);
  saved_env cache = env_set("CACHE_DIR", dir), cc = env_set("LUAGRAD_CC", NULL), t = env_set("THREADS", "2");
  lg_ctx *ctx = NULL, *ctx2 = NULL;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK && lg_ctx_new(&ctx2) == LG_OK);
  lg_device *dev = cpu(ctest_r_, ctx), *dev2 = cpu(ctest_r_, ctx2);
  REQUIRE(dev && dev2);
  const char *srcs[] = {add_src, bad_src, add_src, sub_src}, *entries[] = {"add", "bad", "add", "sub"};
  lg_program *out[4] = {NULL};
  char *errors[4] = {NULL};
  REQUIRE_OK(ctx, lg_program_compile_many(ctx, dev, 4, srcs, entries, out, errors));
  CHECK(out[0] && out[0] == out[2] && out[3] && !out[1]);
  CHECK(!errors[0] && !errors[2] && !errors[3]);
  CHECK_MSG(errors[1] && strstr(errors[1], "kernel 'bad' does not compile") && strstr(errors[1], "undefined_thing"),
            "%s", errors[1] ? errors[1] : "(none)");
  CHECK(run_add(ctx, out[0], 100, NULL));
  /* a sample launch runs the first cores only: [0, 25) of 100 floats in 4 */
  lg_buffer *ab[3] = {NULL, NULL, NULL};
  float ones[100], got[100];
  int64_t n100 = 100;
  for (int i = 0; i < 100; i++) ones[i] = 1;
  for (int i = 0; i < 3; i++) REQUIRE_OK(ctx, lg_buffer_new(ctx, dev, 400, &ab[i]));
  for (int i = 0; i < 3; i++) REQUIRE_OK(ctx, lg_buffer_write(ab[i], 0, ones, 400));
  REQUIRE_OK(ctx, lg_program_launch(ctx, out[0], ab, 3, &n100, 1, &(lg_launch_dims){.global = {4, 1, 1}, .sample = 1}));
  REQUIRE_OK(ctx, lg_buffer_read(ab[0], 0, got, 400));
  int ran = 0, left = 0;
  for (int i = 0; i < 100; i++) ran += i < 25 && got[i] == 2, left += i >= 25 && got[i] == 1;
  CHECK_INT(ran, 25);
  CHECK_INT(left, 75);
  for (int i = 0; i < 3; i++) lg_buffer_release(ab[i]);
  lg_buffer *b = NULL;
  float v = 0;
  REQUIRE_OK(ctx, lg_buffer_new(ctx, dev, 4, &b));
  CHECK(lg_program_launch(ctx, out[3], &b, 1, NULL, 0, NULL) == LG_OK && lg_buffer_read(b, 0, &v, 4) == LG_OK && v == 5.0f);
  lg_buffer_release(b);
  lg_device_stats st;
  lg_device_stats_get(dev, &st);
  CHECK_INT(st.compiles, 3);
  CHECK_INT(count_files(sub, ".so"), 2);
  CHECK_INT(count_files(sub, ".c"), 0);
  for (int i = 0; i < 4; i++) lg_program_release(out[i]), lg_free(errors[i]), out[i] = NULL, errors[i] = NULL;

  /* another context: the good ones from the disk cache */
  const char *srcs2[] = {sub_src, add_src}, *entries2[] = {"sub", "add"};
  REQUIRE_OK(ctx2, lg_program_compile_many(ctx2, dev2, 2, srcs2, entries2, out, errors));
  CHECK(out[0] && out[1] && !errors[0] && !errors[1]);
  lg_device_stats_get(dev2, &st);
  CHECK_INT(st.compiles, 0);
  CHECK_INT(st.disk_hits, 2);
  for (int i = 0; i < 2; i++) lg_program_release(out[i]), out[i] = NULL;
  /* bad arguments fail the whole call */
  const char *bad_entries[] = {"sub", "not an identifier"};
  CHECK_INT(lg_program_compile_many(ctx2, dev2, 2, srcs2, bad_entries, out, errors), LG_ERR_ARG);
  CHECK(strstr(lg_ctx_error(ctx2), "entry 1 'not an identifier'"));
  CHECK(!out[0] && !out[1]);
  REQUIRE_OK(ctx2, lg_program_compile_many(ctx2, dev2, 0, NULL, NULL, NULL, NULL));

  /* cache paths: one per text and device, in a private folder of the cache root */
  char *p1 = NULL, *p2 = NULL, *p3 = NULL, beam[64];
  snprintf(beam, sizeof beam, "%s/beam/", dir);
  REQUIRE_OK(ctx, lg_device_cache_path(ctx, dev, "beam", "some text", &p1));
  REQUIRE_OK(ctx2, lg_device_cache_path(ctx2, dev2, "beam", "some text", &p2));
  REQUIRE_OK(ctx, lg_device_cache_path(ctx, dev, "beam", "other text", &p3));
  CHECK_MSG(strncmp(p1, beam, strlen(beam)) == 0 && strlen(p1) == strlen(beam) + 32, "%s", p1);
  CHECK_STR(p1, p2);
  CHECK(strcmp(p1, p3) != 0);
  struct stat sb;
  CHECK(stat(beam, &sb) == 0 && (sb.st_mode & 0777) == 0700);
  CHECK_INT(lg_device_cache_path(ctx, dev, "../x", "t", &p3), LG_ERR_ARG);
  CHECK_INT(lg_device_cache_path(ctx, dev, "cpu", "t", &p3), LG_ERR_ARG);
  CHECK(strstr(lg_ctx_error(ctx), "the folder of device kind CPU"));
  lg_free(p1), lg_free(p2), lg_free(p3);

  lg_ctx_free(ctx);
  lg_ctx_free(ctx2);
  remove_tree(dir);
  env_restore(cache);
  env_restore(cc);
  env_restore(t);
}

CTEST(device_missing_compiler) {
  char dir[] = "/tmp/lg_cache_XXXXXX";
  REQUIRE(mkdtemp(dir));
  saved_env cache = env_set("CACHE_DIR", dir), cc = env_set("LUAGRAD_CC", "/nonexistent/cc");
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_device *dev = cpu(ctest_r_, ctx);
  lg_program *p = NULL;
  if (dev) {
    CHECK_INT(lg_program_compile(ctx, dev, add_src, "add", &p), LG_ERR_DEVICE);
    CHECK_STR(lg_ctx_error(ctx), "CPU: cannot run the C compiler '/nonexistent/cc' (LUAGRAD_CC): No such file or directory");
  }
  lg_ctx_free(ctx);
  remove_tree(dir);
  env_restore(cache);
  env_restore(cc);
}

CTEST(device_unsafe_cache_dir) {
  char dir[] = "/tmp/lg_cache_XXXXXX";
  REQUIRE(mkdtemp(dir));
  REQUIRE(chmod(dir, 0777) == 0);
  saved_env cache = env_set("CACHE_DIR", dir);
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_device *dev = cpu(ctest_r_, ctx);
  lg_program *p = NULL;
  if (dev) {
    CHECK_INT(lg_program_compile(ctx, dev, add_src, "add", &p), LG_ERR_DEVICE);
    CHECK_MSG(strstr(lg_ctx_error(ctx), dir) && strstr(lg_ctx_error(ctx), "is writable by group or others (mode 777)"),
              "%s", lg_ctx_error(ctx));
  }
  lg_ctx_free(ctx);
  /* as root, a folder of another user can be made: it is refused too */
  if (geteuid() == 0 && chmod(dir, 0700) == 0 && chown(dir, 65534, 65534) == 0) {
    REQUIRE(lg_ctx_new(&ctx) == LG_OK);
    if ((dev = cpu(ctest_r_, ctx))) {
      CHECK_INT(lg_program_compile(ctx, dev, add_src, "add", &p), LG_ERR_DEVICE);
      CHECK_MSG(strstr(lg_ctx_error(ctx), "is owned by another user"), "%s", lg_ctx_error(ctx));
    }
    lg_ctx_free(ctx);
  }
  remove_tree(dir);
  env_restore(cache);
}

/* ---- the thread pool ------------------------------------------------------------------------ */

typedef struct pool_job {
  atomic_int runs[64];     /* per task: how often it ran */
  atomic_int started;      /* tasks begun */
  int32_t meet;            /* when > 0: each task waits until this many have begun (or 10 s) */
  pthread_t who[64];       /* per task: the thread that ran it */
} pool_job;

static void pool_task(void *arg, int32_t task, int32_t ntasks) {
  pool_job *j = arg;
  atomic_fetch_add(&j->runs[task], 1);
  j->who[task] = pthread_self();
  atomic_fetch_add(&j->started, 1);
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (j->meet > 0 && atomic_load(&j->started) < j->meet) {
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (t.tv_sec - t0.tv_sec > 10) break;
  }
}

/* Run ntasks tasks on p; 1 when each ran exactly once. */
static int pool_once(lg_pool *p, pool_job *j, int32_t ntasks, int32_t meet) {
  memset(j, 0, sizeof *j);
  j->meet = meet;
  lg_pool_run(p, pool_task, j, ntasks);
  int ok = 1;
  for (int32_t i = 0; i < 64; i++) ok &= atomic_load(&j->runs[i]) == (i < ntasks);
  return ok;
}

CTEST(device_pool) {
  static pool_job job;
  /* never started: freed at once */
  lg_pool *p = lg_pool_new(4);
  REQUIRE(p);
  CHECK_INT(lg_pool_threads(p), 4);
  CHECK_INT(lg_pool_workers(p), 0);
  CHECK(pool_once(p, &job, 1, 0)); /* one task runs on the caller, no thread starts */
  CHECK_INT(lg_pool_workers(p), 0);
  lg_pool_free(p);
  lg_pool_free(NULL);

  /* three tasks that wait for each other run on three threads at once */
  REQUIRE((p = lg_pool_new(3)));
  CHECK(pool_once(p, &job, 3, 3));
  CHECK_INT(lg_pool_workers(p), 2);
  CHECK_INT(atomic_load(&job.started), 3);
  CHECK(!pthread_equal(job.who[0], job.who[1]) && !pthread_equal(job.who[0], job.who[2]) &&
        !pthread_equal(job.who[1], job.who[2]));
  /* runs one after another: more tasks than threads, fewer, and one; every task once each time */
  int bad = 0;
  for (int i = 0; i < 3000; i++) bad += !pool_once(p, &job, 1 + i % 64, 0);
  CHECK_INT(bad, 0);
  lg_pool_free(p); /* joins the workers: ASan sees no thread or leak left */

  /* a pool of one thread runs everything on the caller */
  REQUIRE((p = lg_pool_new(1)));
  CHECK(pool_once(p, &job, 5, 0));
  CHECK_INT(lg_pool_workers(p), 0);
  CHECK(pthread_equal(job.who[4], pthread_self()));
  lg_pool_free(p);
}

CTEST(device_pool_width) {
  enum { W = LG_POOL_MIN_WORK };
  CHECK_INT(lg_pool_width(16, 16 * 5, 8), 1);              /* a tiny kernel */
  CHECK_INT(lg_pool_width(1000, 2 * (int64_t)W - 1, 8), 1); /* just under two chunks of work */
  CHECK_INT(lg_pool_width(1000, 2 * (int64_t)W, 8), 2);
  CHECK_INT(lg_pool_width(1000, 5 * (int64_t)W + 7, 8), 5);
  CHECK_INT(lg_pool_width(1000, INT64_MAX, 8), 8 * LG_POOL_CHUNKS); /* at most LG_POOL_CHUNKS per thread */
  CHECK_INT(lg_pool_width(7, INT64_MAX, 8), 7);                     /* at most one iteration each */
  CHECK_INT(lg_pool_width(1, INT64_MAX, 8), 1);
  CHECK_INT(lg_pool_width(0, INT64_MAX, 8), 1); /* not split */
  CHECK_INT(lg_pool_width(1000, INT64_MAX, 1), 1);
}

CTEST(device_threads_env) {
  static const char *const bad[] = {"0", "-2", "abc", "3x", "1025", "99999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    saved_env t = env_set("THREADS", bad[i]);
    lg_ctx *ctx;
    lg_device *dev = NULL;
    REQUIRE(lg_ctx_new(&ctx) == LG_OK);
    CHECK_INT(lg_device_get(ctx, "CPU", &dev), LG_ERR_ARG);
    char want[96];
    snprintf(want, sizeof want, "device CPU: THREADS='%s' is not a number of threads from 1 to 1024", bad[i]);
    CHECK_STR(lg_ctx_error(ctx), want);
    lg_ctx_free(ctx);
    env_restore(t);
  }
}

/* Kernels that write ncores into each element of their chunk of 1000 int32s; big's split info
 * asks for all the cores there are, tiny's for one. */
static const char split_src[] =
    "#include <stdint.h>\n"
    "const int64_t big_split[2] = {1000, 1ll << 40};\n"
    "const int64_t tiny_split[2] = {1000, 5};\n"
    "static void fill(int32_t *out, int32_t core_id, int32_t ncores) {\n"
    "  for (int64_t i = 1000ll * core_id / ncores; i < 1000ll * (core_id + 1) / ncores; i++) out[i] = ncores;\n"
    "}\n"
    "void big(void **bufs, const int64_t *ints, int32_t core_id, int32_t ncores) { fill(bufs[0], core_id, ncores); }\n"
    "void tiny(void **bufs, const int64_t *ints, int32_t core_id, int32_t ncores) { fill(bufs[0], core_id, ncores); }\n";

/* Launch `entry` of split_src in a context opened with THREADS=threads (NULL: unset); the
 * ncores every element saw, or -1 when they differ or a step failed. */
static int32_t split_cores(const char *threads, const char *entry, const lg_launch_dims *dims) {
  saved_env t = env_set("THREADS", threads);
  lg_ctx *ctx = NULL;
  lg_device *dev = NULL;
  lg_program *p = NULL;
  lg_buffer *b = NULL;
  int32_t out[1000], n = -1;
  memset(out, 0xff, sizeof out);
  if (lg_ctx_new(&ctx) == LG_OK && lg_device_get(ctx, "CPU", &dev) == LG_OK &&
      lg_program_compile(ctx, dev, split_src, entry, &p) == LG_OK && lg_buffer_new(ctx, dev, sizeof out, &b) == LG_OK &&
      lg_program_launch(ctx, p, &b, 1, NULL, 0, dims) == LG_OK && lg_buffer_read(b, 0, out, sizeof out) == LG_OK) {
    n = out[0];
    for (int i = 0; i < 1000; i++) n = out[i] == n ? n : -1;
  }
  lg_buffer_release(b);
  lg_program_release(p);
  lg_ctx_free(ctx);
  env_restore(t);
  return n;
}

CTEST(device_split_launch) {
  char dir[] = "/tmp/lg_cache_XXXXXX";
  REQUIRE(mkdtemp(dir));
  saved_env cache = env_set("CACHE_DIR", dir), cc = env_set("LUAGRAD_CC", NULL);
  cpu_set_t set;
  REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
  int32_t ncpu = CPU_COUNT(&set);
  CHECK_INT(split_cores("3", "big", NULL), 3 * LG_POOL_CHUNKS);
  CHECK_INT(split_cores("3", "tiny", NULL), 1); /* too little work: one core */
  CHECK_INT(split_cores("3", "tiny", &(lg_launch_dims){.global = {5, 1, 1}}), 5); /* asked for */
  CHECK_INT(split_cores("1", "big", NULL), 1);
  CHECK_INT(split_cores("40", "big", NULL), 40 * LG_POOL_CHUNKS);
  CHECK_INT(split_cores(NULL, "big", NULL), ncpu > 1 ? ncpu * LG_POOL_CHUNKS : 1); /* the CPUs we may use */
  remove_tree(dir);
  env_restore(cache);
  env_restore(cc);
}
