/* cpu.c: the CPU device. Buffers are 64-byte aligned host memory, large freed ones kept for
 * reuse (hostmem.h). A program is C source compiled by the system C compiler into a shared
 * object (posix_spawn, no shell) and loaded with dlopen; its entry follows the CPU calling
 * convention of luagrad.h ("devices").
 *
 * The compiler command is LUAGRAD_CC (default "cc"), then
 *   -O2               optimized code; -O3 compiles slower for little gain on generated loops
 *   -march=native     the vector units of this machine (the cache key carries the CPU model and
 *                     its feature flags, so a cache folder shared between machines stays right)
 *   -fPIC -shared     a shared object for dlopen
 *   -Wl,--no-undefined a call of a missing function is a compile error, not a failed dlopen
 *   -ffp-contract=off no fused multiply-add unless the kernel asks (fmaf, fma_f32x16: a float
 *                     REDUCE ADD of products, linearize.h): results match other devices
 *   -fno-math-errno   sqrt and friends become instructions (vectorizable), not errno-setting calls
 *   -fno-tree-loop-vectorize  gcc 12.2's loop vectorizer (on at -O2) miscompiles some of our
 *                     reductions (three accumulators over a loop of two trips summed wrong;
 *                     tests/devices/cpu_spec.lua keeps the kernel); the renderer writes vector
 *                     code itself (vector lanes, opt.vectorize), and the SLP vectorizer stays on
 * then LUAGRAD_CFLAGS, then "-o out.so src.c -lm" (libm for the math functions a kernel calls).
 *
 * Launching: a kernel from devices/cpu/render_c.c exports `<entry>_split`, {iterations of its
 * split loop (0: not split), work of one iteration}; the device runs it with ncores =
 * lg_pool_width(iterations, iterations * work, THREADS) (pool.h): each core_id is a chunk of
 * the loop, run by whichever thread of the pool takes it. dims->global[0] > 1 asks for exactly
 * that many instead (tests; hand-written kernels, which otherwise run as one), and dims->sample
 * runs only the first chunks of them (timing a part of a kernel). THREADS (1 to
 * LG_POOL_MAX_THREADS) is read when a context opens the device; the default is the number of CPUs this
 * process may run on. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "device.h"
#include "hostmem.h"
#include "pool.h"


enum {
  MAX_OUTPUT = 64 * 1024,  /* compiler output kept; the rest is read and dropped */
  MAX_ERRORS = 3,          /* compiler errors quoted in a message */
  SHOW_COLS = 100          /* a long source line is shown as a window around the column */
};

static const char *const default_flags[] = {"-O2", "-march=native", "-fPIC", "-shared", "-Wl,--no-undefined",
                                             "-ffp-contract=off", "-fno-math-errno", "-fno-tree-loop-vectorize"};

typedef struct cpu_state {
  char *words;     /* LUAGRAD_CC and LUAGRAD_CFLAGS, split in place */
  char **argv;     /* the compiler command, then room for "-o", out, src, "-lm", NULL */
  int argc;        /* words of the command before "-o" */
  lg_pool *pool;   /* THREADS threads, started on the first launch on more than one core */
  lg_hostmem *mem; /* the buffers, with spares for reuse (hostmem.h) */
} cpu_state;

typedef struct cpu_program {
  void *lib;
  lg_pool_kernel fn;
  const int64_t *split; /* <entry>_split: {iterations, work of one}; NULL in hand-written kernels */
} cpu_program;

/* ---- setup: the compiler command and the machine ---------------------------------------------- */

/* Split s (copied to *store) on spaces and tabs, appending the words to argv. */
static void split_words(char *store, const char *s, char **argv, int *argc) {
  strcpy(store, s);
  char *save = NULL;
  for (char *p = strtok_r(store, " \t", &save); p; p = strtok_r(NULL, " \t", &save)) argv[(*argc)++] = p;
}

static size_t count_words(const char *s) {
  size_t n = 0;
  for (bool in = false; *s; s++) {
    bool sp = *s == ' ' || *s == '\t';
    n += !sp && !in;
    in = !sp;
  }
  return n;
}

/* The lines of /proc/cpuinfo that tell what -march=native targets (x86: model and flags; arm:
 * features and part), from the first processor's block; "" where there is no /proc. */
static void cpu_identity(char *out, size_t size) {
  static const char *const keys[] = {"vendor_id", "model name", "flags", "Features", "CPU implementer", "CPU part"};
  out[0] = '\0';
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[4096];
  size_t len = 0;
  while (fgets(line, sizeof line, f) && line[0] != '\n') {
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
      size_t kl = strlen(keys[k]);
      size_t ll = strlen(line);
      if (strncmp(line, keys[k], kl) == 0 && (line[kl] == ' ' || line[kl] == '\t' || line[kl] == ':') && len + ll < size) {
        memcpy(out + len, line, ll + 1);
        len += ll;
      }
    }
  }
  fclose(f);
}


static lg_status cpu_open(lg_device *dev) {
  if (dev->index != 0)
    return lg_ctx_fail(dev->ctx, LG_ERR_ARG, "device %s: there is one CPU device (CPU or CPU:0)", dev->name);
  lg_hostmem_tune_malloc(); /* process-wide, on purpose (hostmem.c says why) */
  int32_t threads = lg_pool_thread_count();
  if (!threads)
    return lg_ctx_fail(dev->ctx, LG_ERR_ARG, "device CPU: THREADS='%s' is not a number of threads from 1 to %d",
                       getenv("THREADS"), LG_POOL_MAX_THREADS);
  const char *cc = getenv("LUAGRAD_CC"), *cflags = getenv("LUAGRAD_CFLAGS");
  if (!cc || !count_words(cc)) cc = "cc";
  if (!cflags) cflags = "";
  size_t ndefault = sizeof default_flags / sizeof default_flags[0];
  cpu_state *s = calloc(1, sizeof *s);
  if (s) s->words = malloc(strlen(cc) + strlen(cflags) + 2);
  if (s && s->words) s->argv = calloc(count_words(cc) + ndefault + count_words(cflags) + 5, sizeof *s->argv);
  if (s && s->argv) s->pool = lg_pool_new(threads);
  if (s && s->pool) s->mem = lg_hostmem_new();
  if (!s || !s->mem) goto nomem;
  split_words(s->words, cc, s->argv, &s->argc);
  for (size_t i = 0; i < ndefault; i++) s->argv[s->argc++] = (char *)default_flags[i];
  split_words(s->words + strlen(cc) + 1, cflags, s->argv, &s->argc);
  /* the compiler identity: the command as it runs, and the machine */
  char cpu[8192];
  cpu_identity(cpu, sizeof cpu);
  size_t idlen = strlen(cpu) + sizeof " -lm\n";
  for (int i = 0; i < s->argc; i++) idlen += strlen(s->argv[i]) + 1;
  if (!(dev->compiler_id = malloc(idlen))) goto nomem;
  char *id = dev->compiler_id;
  for (int i = 0; i < s->argc; i++) id += sprintf(id, "%s%s", i ? " " : "", s->argv[i]);
  sprintf(id, " -lm\n%s", cpu);
  dev->impl = s;
  return LG_OK;
nomem:
  if (s) free(s->words), free(s->argv), lg_pool_free(s->pool), lg_hostmem_free(s->mem);
  free(s);
  return lg_ctx_fail(dev->ctx, LG_ERR_NOMEM, "device CPU: out of memory");
}

static void cpu_close(lg_device *dev) {
  cpu_state *s = dev->impl;
  lg_pool_free(s->pool);
  lg_hostmem_free(s->mem);
  free(s->words);
  free(s->argv);
  free(s);
}

/* ---- memory ----------------------------------------------------------------------------------- */

static lg_status cpu_alloc(lg_device *dev, int64_t nbytes, void **mem) {
  cpu_state *s = dev->impl;
  if (!(*mem = lg_hostmem_alloc(s->mem, nbytes)))
    return lg_ctx_fail(dev->ctx, LG_ERR_NOMEM, "CPU: cannot allocate a buffer of %lld bytes", (long long)nbytes);
  return LG_OK;
}

/* Large buffers are kept for reuse (hostmem.h). */
static void cpu_free(lg_device *dev, void *mem, int64_t nbytes) {
  cpu_state *s = dev->impl;
  lg_hostmem_release(s->mem, mem, nbytes);
}

static lg_status cpu_copy_in(lg_device *dev, void *mem, int64_t offset, const void *src, int64_t n) {
  memcpy((char *)mem + offset, src, (size_t)n);
  return LG_OK;
}

static lg_status cpu_copy_out(lg_device *dev, void *dst, void *mem, int64_t offset, int64_t n) {
  memcpy(dst, (const char *)mem + offset, (size_t)n);
  return LG_OK;
}

/* ---- running the compiler --------------------------------------------------------------------- */

/* Start argv (PATH searched), stdin from /dev/null, stdout and stderr into a pipe whose read
 * end is *fd. Returns 0, or an errno when the program could not be started. */
static int spawn_capture(char *const *argv, pid_t *pid, int *fd) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return errno;
  posix_spawn_file_actions_t fa;
  int err = posix_spawn_file_actions_init(&fa);
  if (!err) {
    err = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!err) err = posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    if (!err) err = posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    if (!err) err = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
  }
  close(fds[1]);
  if (err) close(fds[0]);
  else *fd = fds[0];
  return err;
}

/* Read what a started program writes into *out (NUL-terminated, at most MAX_OUTPUT bytes kept),
 * close fd and wait for the program. Returns 0 and the wait status in *status, or an errno. */
static int collect_capture(pid_t pid, int fd, char **out, int *status) {
  char *buf = malloc(MAX_OUTPUT + 1), drop[4096];
  size_t len = 0;
  int err = 0;
  for (ssize_t r = 1; r != 0;) {
    bool keep = buf && len < MAX_OUTPUT;
    r = keep ? read(fd, buf + len, MAX_OUTPUT - len) : read(fd, drop, sizeof drop);
    if (r < 0 && errno != EINTR) break;
    if (r > 0 && keep) len += (size_t)r;
  }
  close(fd);
  while (waitpid(pid, status, 0) < 0 && !err) err = errno == EINTR ? 0 : errno;
  if (!err && !buf) err = ENOMEM;
  if (err) {
    free(buf);
    return err;
  }
  buf[len] = '\0';
  *out = buf;
  return 0;
}

typedef struct msgbuf {
  char s[1024];
  size_t len;
} msgbuf;

static void put(msgbuf *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(msgbuf *m, const char *fmt, ...) {
  if (m->len >= sizeof m->s) return;
  va_list ap;
  va_start(ap, fmt);
  m->len += (size_t)vsnprintf(m->s + m->len, sizeof m->s - m->len, fmt, ap);
  va_end(ap);
}

/* Line `lineno` (1-based) of src, with a caret under column col (1-based; compilers count bytes
 * there, save gcc after a tab, which generated code does not hold). */
static void put_source_line(msgbuf *m, const char *src, long lineno, long col) {
  const char *p = src;
  for (long l = 1; l < lineno && p; l++) p = (p = strchr(p, '\n')) ? p + 1 : NULL;
  if (!p || !*p) return;
  long n = (long)strcspn(p, "\n"), from = 0;
  if (col < 1 || col > n + 1) col = 1;
  if (n > SHOW_COLS && col > SHOW_COLS / 2) from = col - 1 - SHOW_COLS / 2;
  long shown = n - from < SHOW_COLS ? n - from : SHOW_COLS;
  const char *dots = from ? "..." : "";
  put(m, "\n%5ld | %s%.*s%s\n      | %*s^", lineno, dots, (int)shown, p + from, from + shown < n ? "..." : "",
      (int)(strlen(dots) + (size_t)(col - 1 - from)), "");
}

/* The message of a failed compile: the first error lines of the compiler (their file named
 * after the entry) and, for the first one in the kernel, the offending line of the source. */
static void format_errors(msgbuf *m, const char *output, const char *src, const char *srcpath, const char *entry) {
  const char *base = strrchr(srcpath, '/') ? strrchr(srcpath, '/') + 1 : srcpath; /* linkers name the file so */
  int nerr = 0;
  bool shown_source = false;
  for (const char *line = output; *line && nerr < MAX_ERRORS;) {
    size_t n = strcspn(line, "\n");
    const char *next = line + n + (line[n] == '\n');
    size_t plen = strncmp(line, srcpath, strlen(srcpath)) == 0 ? strlen(srcpath)
                  : strncmp(line, base, strlen(base)) == 0   ? strlen(base)
                                                             : 0;
    bool ours = plen > 0;
    const char *rest = line + plen;
    size_t rn = n - (size_t)(rest - line);
    char text[512];
    snprintf(text, sizeof text, "%.*s", (int)(rn < sizeof text - 1 ? rn : sizeof text - 1), rest);
    bool is_error = (strstr(text, ": error:") || strstr(text, ": fatal error:") || strstr(text, "undefined reference")) &&
                    strncmp(text, "collect2:", 9) != 0 && !strstr(text, "linker command failed");
    if (is_error) {
      put(m, "\n%s%s", ours ? entry : "", ours ? ".c" : "");
      put(m, "%s", text);
      long lineno = 0, col = 0;
      if (ours && !shown_source && sscanf(text, ":%ld:%ld:", &lineno, &col) == 2) {
        put_source_line(m, src, lineno, col);
        shown_source = true;
      }
      nerr++;
    }
    line = next;
  }
  if (nerr) return;
  /* no line looked like an error: quote the start of the output as it is */
  int nlines = 0;
  for (const char *line = output; *line && nlines < 6; nlines++) {
    size_t n = strcspn(line, "\n");
    put(m, "\n%.*s", (int)(n < 300 ? n : 300), line);
    line += n + (line[n] == '\n');
  }
}

static bool write_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    s += w, n -= (size_t)w;
  }
  return true;
}

/* One compiler run: the source file it reads (tmp-XXXXXX.c next to the output), the process
 * and the read end of its output. */
typedef struct compile_job {
  const char *src, *entry;
  char *srcpath;
  pid_t pid;
  int fd;
} compile_job;

/* Write the source next to out_path and start the compiler on it. */
static lg_status compile_start(lg_device *dev, compile_job *j, const char *out_path) {
  cpu_state *s = dev->impl;
  lg_ctx *ctx = dev->ctx;
  size_t dirlen = (size_t)(strrchr(out_path, '/') ? strrchr(out_path, '/') - out_path + 1 : 0);
  if (!(j->srcpath = malloc(dirlen + 16))) return lg_ctx_fail(ctx, LG_ERR_NOMEM, "CPU compile: out of memory");
  snprintf(j->srcpath, dirlen + 16, "%.*stmp-XXXXXX.c", (int)dirlen, out_path);
  int fd = mkstemps(j->srcpath, 2);
  if (fd < 0 || !write_all(fd, j->src, strlen(j->src))) {
    lg_status st = lg_ctx_fail(ctx, LG_ERR_DEVICE, "CPU compile: cannot write %s: %s", j->srcpath, strerror(errno));
    if (fd >= 0) close(fd), unlink(j->srcpath);
    free(j->srcpath);
    j->srcpath = NULL;
    return st;
  }
  close(fd);
  int n = s->argc;
  s->argv[n] = "-o", s->argv[n + 1] = (char *)out_path, s->argv[n + 2] = j->srcpath, s->argv[n + 3] = "-lm";
  s->argv[n + 4] = NULL;
  int err = spawn_capture(s->argv, &j->pid, &j->fd);
  if (!err) return LG_OK;
  unlink(j->srcpath);
  free(j->srcpath);
  j->srcpath = NULL;
  return lg_ctx_fail(ctx, err == ENOMEM ? LG_ERR_NOMEM : LG_ERR_DEVICE,
                     "CPU: cannot run the C compiler '%s' (LUAGRAD_CC): %s", s->argv[0], strerror(err));
}

/* Wait for a started compiler; a failure quotes its first errors. */
static lg_status compile_finish(lg_device *dev, compile_job *j) {
  cpu_state *s = dev->impl;
  lg_ctx *ctx = dev->ctx;
  char *output = NULL;
  int status = 0, err = collect_capture(j->pid, j->fd, &output, &status);
  unlink(j->srcpath);
  lg_status st = LG_OK;
  if (err) {
    st = lg_ctx_fail(ctx, err == ENOMEM ? LG_ERR_NOMEM : LG_ERR_DEVICE, "CPU: the C compiler '%s' (LUAGRAD_CC): %s",
                     s->argv[0], strerror(err));
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    msgbuf m = {.len = 0};
    put(&m, "CPU: kernel '%s' does not compile (%s ", j->entry, s->argv[0]);
    if (WIFEXITED(status)) put(&m, "exited with status %d):", WEXITSTATUS(status));
    else put(&m, "killed by signal %d):", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    format_errors(&m, output, j->src, j->srcpath, j->entry);
    st = lg_ctx_fail(ctx, LG_ERR_COMPILE, "%s", m.s);
  }
  free(output);
  free(j->srcpath);
  j->srcpath = NULL;
  return st;
}

static lg_status cpu_compile(lg_device *dev, const char *src, const char *entry, const char *out_path) {
  compile_job j = {.src = src, .entry = entry};
  lg_status st = compile_start(dev, &j, out_path);
  return st == LG_OK ? compile_finish(dev, &j) : st;
}

/* Up to THREADS compilers run at once: each finished one (oldest first) makes room for the
 * next. A failure's message is copied off the context before the next can overwrite it. */
static void cpu_compile_many(lg_device *dev, int32_t n, const char *const *srcs, const char *const *entries,
                             const char *const *out_paths, lg_status *st, char **msgs) {
  cpu_state *s = dev->impl;
  int32_t width = lg_pool_threads(s->pool);
  compile_job *jobs = calloc(n > 0 ? (size_t)n : 1, sizeof *jobs);
  if (!jobs) lg_ctx_fail(dev->ctx, LG_ERR_NOMEM, "CPU compile: out of memory");
  int32_t started = 0;
  for (int32_t i = 0; i < n; i++) {
    for (; jobs && started < n && started < i + width; started++) {
      jobs[started] = (compile_job){.src = srcs[started], .entry = entries[started]};
      if ((st[started] = compile_start(dev, &jobs[started], out_paths[started])) != LG_OK)
        msgs[started] = strdup(lg_ctx_error(dev->ctx));
    }
    if (!jobs) st[i] = LG_ERR_NOMEM, msgs[i] = strdup(lg_ctx_error(dev->ctx));
    else if (st[i] == LG_OK && (st[i] = compile_finish(dev, &jobs[i])) != LG_OK) msgs[i] = strdup(lg_ctx_error(dev->ctx));
  }
  free(jobs);
}

/* ---- programs --------------------------------------------------------------------------------- */

static lg_status cpu_load(lg_device *dev, const char *path, const char *entry, void **prog) {
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib) return lg_ctx_fail(dev->ctx, LG_ERR_DEVICE, "CPU: cannot load %s: %s", path, dlerror());
  lg_pool_kernel fn = (lg_pool_kernel)dlsym(lib, entry);
  char *split_name = malloc(strlen(entry) + sizeof "_split");
  cpu_program *p = fn && split_name ? malloc(sizeof *p) : NULL;
  if (!p) {
    dlclose(lib);
    free(split_name);
    return fn ? lg_ctx_fail(dev->ctx, LG_ERR_NOMEM, "CPU: out of memory")
              : lg_ctx_fail(dev->ctx, LG_ERR_COMPILE, "CPU: the kernel source defines no function '%s'", entry);
  }
  sprintf(split_name, "%s_split", entry);
  *p = (cpu_program){lib, fn, dlsym(lib, split_name)};
  free(split_name);
  *prog = p;
  return LG_OK;
}

static void cpu_unload(lg_device *dev, void *prog) {
  cpu_program *p = prog;
  dlclose(p->lib);
  free(p);
}

static lg_status cpu_launch(lg_device *dev, void *prog, void *const *mems, int32_t nbufs, const int64_t *ints,
                            int32_t nints, const lg_launch_dims *dims) {
  cpu_program *p = prog;
  cpu_state *s = dev->impl;
  lg_pool_launch(s->pool, p->fn, (void **)mems, ints, p->split, dims ? dims->global[0] : 0, dims ? dims->sample : 0);
  return LG_OK;
}

static lg_status cpu_synchronize(lg_device *dev) { return LG_OK; }

const lg_device_ops lg_cpu_device = {
    .kind = "CPU",
    .bin_ext = ".so",
    .open = cpu_open,
    .close = cpu_close,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .copy_in = cpu_copy_in,
    .copy_out = cpu_copy_out,
    .compile = cpu_compile,
    .compile_many = cpu_compile_many,
    .load = cpu_load,
    .unload = cpu_unload,
    .launch = cpu_launch,
    .synchronize = cpu_synchronize,
};
