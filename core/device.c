/* device.c: the device registry, buffers, programs and the compile caches (see device.h). */
#include "device.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

/* The device kinds, by name. Adding a kind is one line here and its folder under devices/. */
static const lg_device_ops *const kinds[] = {&lg_cpu_device, &lg_llvm_device};

/* Bumped when the calling convention or the cache layout changes: old cache files are not
 * found any more. */
enum { CACHE_FORMAT = 1 };
enum { FIRST_BUCKETS = 64, MAX_INDEX = 1023, STACK_BUFS = 16, WRAP_ALIGN = 64 };

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* a, b and c joined, malloc'd; NULL when out of memory */
static char *str_cat(const char *a, const char *b, const char *c) {
  size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
  char *d = malloc(n);
  if (d) snprintf(d, n, "%s%s%s", a, b, c);
  return d;
}

/* ---- devices ------------------------------------------------------------------------------ */

/* "KIND" or "KIND:N", any case; sets *ops and *index, or returns false. */
static bool parse_name(const char *name, const lg_device_ops **ops, int32_t *index) {
  size_t klen = strcspn(name, ":");
  *index = 0;
  if (name[klen] == ':') {
    const char *p = name + klen + 1;
    if (!*p) return false;
    long v = 0;
    for (; *p; p++) {
      if (!isdigit((unsigned char)*p) || (v = v * 10 + (*p - '0')) > MAX_INDEX) return false;
    }
    *index = (int32_t)v;
  }
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    if (strlen(kinds[k]->kind) == klen && strncasecmp(kinds[k]->kind, name, klen) == 0) {
      *ops = kinds[k];
      return true;
    }
  }
  return false;
}

static lg_status known_kinds(lg_ctx *ctx, const char *name) {
  char list[256] = "";
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    size_t n = strlen(list);
    snprintf(list + n, sizeof list - n, "%s%s", k ? ", " : "", kinds[k]->kind);
  }
  return lg_ctx_fail(ctx, LG_ERR_ARG, "device '%s': unknown (devices: %s, optionally with an index as in CPU:0)",
                     name, list);
}

lg_status lg_device_get(lg_ctx *ctx, const char *name, lg_device **out) {
  const lg_device_ops *ops;
  int32_t index;
  if (!name || !parse_name(name, &ops, &index)) return known_kinds(ctx, name ? name : "(null)");
  if (!ctx->devices && !(ctx->devices = calloc(1, sizeof *ctx->devices)))
    return lg_ctx_fail(ctx, LG_ERR_NOMEM, "device %s: out of memory", name);
  for (lg_device *d = ctx->devices->first; d; d = d->next) {
    if (d->ops == ops && d->index == index) {
      *out = d;
      return LG_OK;
    }
  }
  lg_device *dev = calloc(1, sizeof *dev);
  if (!dev) return lg_ctx_fail(ctx, LG_ERR_NOMEM, "device %s: out of memory", name);
  dev->ctx = ctx;
  dev->ops = ops;
  dev->index = index;
  if (index) snprintf(dev->name, sizeof dev->name, "%s:%d", ops->kind, (int)index);
  else snprintf(dev->name, sizeof dev->name, "%s", ops->kind);
  lg_status st = ops->open(dev);
  if (st != LG_OK) {
    free(dev->compiler_id);
    free(dev);
    return st;
  }
  dev->next = ctx->devices->first;
  ctx->devices->first = dev;
  *out = dev;
  return LG_OK;
}

const char *lg_device_name(const lg_device *dev) { return dev->name; }

lg_status lg_device_synchronize(lg_device *dev) { return dev->ops->synchronize(dev); }

void lg_device_stats_get(const lg_device *dev, lg_device_stats *out) { *out = dev->stats; }

static void program_free(lg_program *p) {
  lg_device *dev = p->dev;
  lg_program **slot = &dev->progs[p->key[0] & (dev->nprog_buckets - 1)];
  while (*slot != p) slot = &(*slot)->next;
  *slot = p->next;
  dev->nprogs--;
  dev->ops->unload(dev, p->prog);
  free(p->entry);
  free(p);
}

static void buffer_free(lg_buffer *b) {
  lg_device *dev = b->dev;
  if (b->release) b->release(b->release_ud);
  else if (b->mem) dev->ops->free(dev, b->mem, b->nbytes);
  if (b->prev) b->prev->next = b->next;
  else dev->buffers = b->next;
  if (b->next) b->next->prev = b->prev;
  dev->stats.buffers--;
  dev->stats.buffer_bytes -= b->nbytes;
  free(b);
}

/* Programs and buffers still alive here were leaked by their holders; the context frees them. */
void lg_devices_free(struct lg_devices *devices) {
  if (!devices) return;
  for (lg_device *dev = devices->first, *next; dev; dev = next) {
    next = dev->next;
    for (uint64_t i = 0; i < dev->nprog_buckets; i++) {
      while (dev->progs[i]) program_free(dev->progs[i]);
    }
    while (dev->buffers) buffer_free(dev->buffers);
    dev->ops->close(dev);
    free(dev->progs);
    free(dev->compiler_id);
    free(dev->cache_dir);
    free(dev);
  }
  free(devices);
}

static lg_status other_ctx(lg_ctx *ctx, const char *what, const lg_device *dev) {
  return lg_ctx_fail(ctx, LG_ERR_ARG, "%s: device %s belongs to another context", what, dev->name);
}

/* ---- buffers ------------------------------------------------------------------------------ */

static void buffer_link(lg_buffer *b, lg_device *dev, int64_t nbytes) {
  b->dev = dev;
  b->nbytes = nbytes;
  b->refcnt = 1;
  b->next = dev->buffers;
  if (b->next) b->next->prev = b;
  dev->buffers = b;
  dev->stats.buffers++;
  dev->stats.buffer_bytes += nbytes;
}

lg_status lg_buffer_new(lg_ctx *ctx, lg_device *dev, int64_t nbytes, lg_buffer **out) {
  if (dev->ctx != ctx) return other_ctx(ctx, "buffer_new", dev);
  if (nbytes < 0) return lg_ctx_fail(ctx, LG_ERR_ARG, "buffer_new: size %lld is negative", (long long)nbytes);
  lg_buffer *b = calloc(1, sizeof *b);
  if (!b) return lg_ctx_fail(ctx, LG_ERR_NOMEM, "buffer_new: out of memory");
  if (nbytes > 0) {
    lg_status st = dev->ops->alloc(dev, nbytes, &b->mem);
    if (st != LG_OK) {
      free(b);
      return st;
    }
  }
  buffer_link(b, dev, nbytes);
  *out = b;
  return LG_OK;
}

lg_status lg_buffer_wrap(lg_ctx *ctx, lg_device *dev, void *mem, int64_t nbytes, void (*release)(void *ud), void *ud,
                         lg_buffer **out) {
  if (dev->ctx != ctx) return other_ctx(ctx, "buffer_wrap", dev);
  if (dev->ops != &lg_cpu_device)
    return lg_ctx_fail(ctx, LG_ERR_ARG, "buffer_wrap: the memory of device %s is not host memory", dev->name);
  if (nbytes < 0 || (nbytes > 0 && !mem) || ((uintptr_t)mem & (WRAP_ALIGN - 1)) || !release)
    return lg_ctx_fail(ctx, LG_ERR_ARG,
                       "buffer_wrap: needs %d-byte aligned memory, a size >= 0 and a release function (got %p, %lld bytes)",
                       WRAP_ALIGN, mem, (long long)nbytes);
  lg_buffer *b = calloc(1, sizeof *b);
  if (!b) return lg_ctx_fail(ctx, LG_ERR_NOMEM, "buffer_wrap: out of memory");
  b->mem = mem;
  b->release = release;
  b->release_ud = ud;
  buffer_link(b, dev, nbytes);
  *out = b;
  return LG_OK;
}

lg_buffer *lg_buffer_retain(lg_buffer *buf) {
  if (buf) buf->refcnt++;
  return buf;
}

void lg_buffer_release(lg_buffer *buf) {
  if (buf && --buf->refcnt == 0) buffer_free(buf);
}

lg_device *lg_buffer_device(const lg_buffer *buf) { return buf->dev; }
int64_t lg_buffer_size(const lg_buffer *buf) { return buf->nbytes; }

static lg_status check_range(const lg_buffer *b, const char *what, int64_t offset, const void *p, int64_t n) {
  if (offset < 0 || n < 0 || offset > b->nbytes || n > b->nbytes - offset)
    return lg_ctx_fail(b->dev->ctx, LG_ERR_ARG, "%s: bytes [%lld, %lld + %lld) are outside the buffer of %lld bytes on %s",
                       what, (long long)offset, (long long)offset, (long long)n, (long long)b->nbytes, b->dev->name);
  if (n > 0 && !p) return lg_ctx_fail(b->dev->ctx, LG_ERR_ARG, "%s: NULL host pointer", what);
  return LG_OK;
}

lg_status lg_buffer_write(lg_buffer *buf, int64_t offset, const void *src, int64_t n) {
  lg_status st = check_range(buf, "buffer_write", offset, src, n);
  if (st != LG_OK || n == 0) return st;
  return buf->dev->ops->copy_in(buf->dev, buf->mem, offset, src, n);
}

lg_status lg_buffer_read(lg_buffer *buf, int64_t offset, void *dst, int64_t n) {
  lg_status st = check_range(buf, "buffer_read", offset, dst, n);
  if (st != LG_OK || n == 0) return st;
  return buf->dev->ops->copy_out(buf->dev, dst, buf->mem, offset, n);
}

/* ---- the disk cache folder ------------------------------------------------------------------ */

/* mkdir -p with mode 0700 for what it creates. */
static lg_status make_dirs(lg_ctx *ctx, char *path) {
  for (char *p = path + 1;; p++) {
    if (*p != '/' && *p) continue;
    char c = *p;
    *p = '\0';
    struct stat st;
    int e = mkdir(path, 0700) == 0 ? 0 : errno;
    if (e && e != EEXIST && !(stat(path, &st) == 0 && S_ISDIR(st.st_mode))) {
      *p = c;
      return lg_ctx_fail(ctx, LG_ERR_DEVICE, "cannot create the cache directory %s: %s", path, strerror(e));
    }
    *p = c;
    if (!c) return LG_OK;
  }
}

/* A folder whose files get loaded as code must be ours alone. */
static lg_status check_private(lg_ctx *ctx, const char *path) {
  struct stat st;
  if (stat(path, &st) != 0)
    return lg_ctx_fail(ctx, LG_ERR_DEVICE, "cache directory %s: %s", path, strerror(errno));
  if (!S_ISDIR(st.st_mode)) return lg_ctx_fail(ctx, LG_ERR_DEVICE, "cache directory %s is not a directory", path);
  if (st.st_uid != geteuid())
    return lg_ctx_fail(ctx, LG_ERR_DEVICE,
                       "cache directory %s is owned by another user (uid %u, not %u): refusing to load code from it; "
                       "set CACHE_DIR to a directory of your own",
                       path, (unsigned)st.st_uid, (unsigned)geteuid());
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return lg_ctx_fail(ctx, LG_ERR_DEVICE,
                       "cache directory %s is writable by group or others (mode %03o): refusing to load code from it; "
                       "chmod 700 it or set CACHE_DIR",
                       path, (unsigned)(st.st_mode & 0777));
  return LG_OK;
}

/* The cache root, checked: $CACHE_DIR, else $XDG_CACHE_HOME/luagrad, else
 * $HOME/.cache/luagrad; *out is malloc'd. */
static lg_status cache_root(lg_ctx *ctx, char **out) {
  const char *env = getenv("CACHE_DIR"), *suffix = "";
  if (!env || !*env) {
    env = getenv("XDG_CACHE_HOME"), suffix = "/luagrad";
    if (!env || *env != '/') env = getenv("HOME"), suffix = "/.cache/luagrad";
    if (!env || !*env) return lg_ctx_fail(ctx, LG_ERR_DEVICE, "no cache directory: set CACHE_DIR (HOME is not set)");
  }
  char *root = str_cat(env, suffix, "");
  if (!root) return lg_ctx_fail(ctx, LG_ERR_NOMEM, "cache directory: out of memory");
  lg_status st = make_dirs(ctx, root);
  char *real = st == LG_OK ? realpath(root, NULL) : NULL;
  if (st == LG_OK && !real) st = lg_ctx_fail(ctx, LG_ERR_DEVICE, "cache directory %s: %s", root, strerror(errno));
  free(root);
  if (st == LG_OK) st = check_private(ctx, real);
  if (st != LG_OK) {
    free(real);
    return st;
  }
  *out = real;
  return LG_OK;
}

/* The folder `name` (lower-cased) of the cache root, created and checked; *out is malloc'd. */
static lg_status cache_folder(lg_ctx *ctx, const char *name, char **out) {
  char *root = NULL;
  lg_status st = cache_root(ctx, &root);
  if (st != LG_OK) return st;
  char *dir = str_cat(root, "/", name);
  if (dir) {
    for (char *p = dir + strlen(root) + 1; *p; p++) *p = (char)tolower((unsigned char)*p);
  }
  free(root);
  if (!dir) return lg_ctx_fail(ctx, LG_ERR_NOMEM, "cache directory: out of memory");
  if (mkdir(dir, 0700) != 0 && errno != EEXIST)
    st = lg_ctx_fail(ctx, LG_ERR_DEVICE, "cannot create the cache directory %s: %s", dir, strerror(errno));
  if (st == LG_OK) st = check_private(ctx, dir);
  if (st != LG_OK) {
    free(dir);
    return st;
  }
  *out = dir;
  return LG_OK;
}

/* The device kind's folder of the cache, found once. */
static lg_status cache_dir(lg_device *dev, const char **out) {
  if (!dev->cache_dir) {
    lg_status st = cache_folder(dev->ctx, dev->ops->kind, &dev->cache_dir);
    if (st != LG_OK) return st;
  }
  *out = dev->cache_dir;
  return LG_OK;
}

/* ---- programs ----------------------------------------------------------------------------- */

static bool is_identifier(const char *s) {
  if (!s || !(isalpha((unsigned char)*s) || *s == '_')) return false;
  for (; *s; s++) {
    if (!(isalnum((unsigned char)*s) || *s == '_')) return false;
  }
  return true;
}

/* XXH3-128 of the source, seeded with a chain of 64-bit hashes of what else defines the file. */
static void program_key(const lg_device *dev, const char *src, const char *entry, uint64_t key[2]) {
  const char *parts[] = {dev->ops->kind, dev->compiler_id, entry};
  XXH64_hash_t seed = CACHE_FORMAT;
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) seed = XXH3_64bits_withSeed(parts[i], strlen(parts[i]), seed);
  XXH128_hash_t h = XXH3_128bits_withSeed(src, strlen(src), seed);
  key[0] = h.low64;
  key[1] = h.high64;
}

static lg_program *cache_find(const lg_device *dev, const uint64_t key[2]) {
  if (!dev->nprog_buckets) return NULL;
  for (lg_program *p = dev->progs[key[0] & (dev->nprog_buckets - 1)]; p; p = p->next) {
    if (p->key[0] == key[0] && p->key[1] == key[1]) return p;
  }
  return NULL;
}

static bool cache_put(lg_device *dev, lg_program *prog) {
  if (dev->nprogs >= dev->nprog_buckets) {
    uint64_t nb = dev->nprog_buckets ? dev->nprog_buckets * 2 : FIRST_BUCKETS;
    lg_program **b = calloc(nb, sizeof *b);
    if (!b) return false;
    for (uint64_t i = 0; i < dev->nprog_buckets; i++) {
      for (lg_program *p = dev->progs[i], *pn; p; p = pn) {
        pn = p->next;
        p->next = b[p->key[0] & (nb - 1)];
        b[p->key[0] & (nb - 1)] = p;
      }
    }
    free(dev->progs);
    dev->progs = b;
    dev->nprog_buckets = nb;
  }
  lg_program **slot = &dev->progs[prog->key[0] & (dev->nprog_buckets - 1)];
  prog->next = *slot;
  *slot = prog;
  dev->nprogs++;
  return true;
}

/* A new empty file <dir>/tmp-XXXXXX<ext>; *tmp is its name (malloc'd). */
static lg_status make_tmp(lg_device *dev, const char *dir, char **tmp) {
  const char *ext = dev->ops->bin_ext;
  if (!(*tmp = str_cat(dir, "/tmp-XXXXXX", ext))) return lg_ctx_fail(dev->ctx, LG_ERR_NOMEM, "compile: out of memory");
  int fd = mkstemps(*tmp, (int)strlen(ext));
  if (fd < 0) {
    free(*tmp);
    *tmp = NULL;
    return lg_ctx_fail(dev->ctx, LG_ERR_DEVICE, "cannot create a file in the cache directory %s: %s", dir, strerror(errno));
  }
  close(fd);
  return LG_OK;
}

/* Load a compiled temporary file; only a file that loaded is renamed to `path`, so the disk
 * cache holds no program that fails to load. */
static lg_status load_tmp(lg_device *dev, const char *tmp, const char *entry, const char *path, void **handle) {
  lg_status st = dev->ops->load(dev, tmp, entry, handle);
  if (st == LG_OK && rename(tmp, path) != 0) {
    st = lg_ctx_fail(dev->ctx, LG_ERR_DEVICE, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    dev->ops->unload(dev, *handle);
  }
  return st;
}

/* A loaded program, entered in the memory cache (the handle is unloaded when that fails). */
static lg_status program_new(lg_device *dev, void *handle, const char *entry, const uint64_t key[2], lg_program **out) {
  lg_program *prog = calloc(1, sizeof *prog);
  if (prog)
    *prog = (lg_program){.dev = dev, .prog = handle, .entry = str_cat(entry, "", ""), .key = {key[0], key[1]}, .refcnt = 1};
  if (!prog || !prog->entry || !cache_put(dev, prog)) {
    dev->ops->unload(dev, handle);
    if (prog) free(prog->entry);
    free(prog);
    return lg_ctx_fail(dev->ctx, LG_ERR_NOMEM, "program_compile: out of memory");
  }
  *out = prog;
  return LG_OK;
}

/* One source of a batch: its key, the earlier source with the same key (or -1), its file in the
 * disk cache, and the temporary file it is compiled into. */
typedef struct batch_item {
  uint64_t key[2];
  int32_t same;
  char *path, *tmp;
} batch_item;

/* The message of the context's last failure, copied; NULL when out of memory. */
static char *copy_error(lg_ctx *ctx) { return str_cat(lg_ctx_error(ctx), "", ""); }

/* Programs for sources [0, n) (checked by the caller), from the caches or compiled, the
 * compiles run by ops->compile_many where the device has one: out[i], or NULL with st[i] and
 * msgs[i] (malloc'd) saying why. What fails the whole batch (the cache folder, memory) is
 * returned, with its message on the context and nothing handed out. */
static lg_status compile_batch(lg_device *dev, int32_t n, const char *const *srcs, const char *const *entries,
                               lg_program **out, lg_status *st, char **msgs) {
  lg_ctx *ctx = dev->ctx;
  size_t m = n > 0 ? (size_t)n : 1;
  batch_item *items = calloc(m, sizeof *items);
  /* the compiles: indices into the batch, then their sources, entries, files and results */
  int32_t *todo = malloc(m * sizeof *todo);
  const char **csrc = malloc(3 * m * sizeof *csrc);
  lg_status *cst = malloc(m * sizeof *cst);
  char **cmsg = calloc(m, sizeof *cmsg);
  lg_status fail = items && todo && csrc && cst && cmsg ? LG_OK : lg_ctx_fail(ctx, LG_ERR_NOMEM, "compile: out of memory");
  int32_t ntodo = 0;
  bool compiled = false; /* each compiled file was renamed into the cache or removed */
  const char *dir = NULL;
  for (int32_t i = 0; i < n; i++) out[i] = NULL, st[i] = LG_OK, msgs[i] = NULL;
  for (int32_t i = 0; i < n && fail == LG_OK; i++) {
    batch_item *it = &items[i];
    program_key(dev, srcs[i], entries[i], it->key);
    it->same = -1;
    for (int32_t j = 0; j < i && it->same < 0; j++) {
      if (items[j].key[0] == it->key[0] && items[j].key[1] == it->key[1]) it->same = j;
    }
    if (it->same >= 0) continue;
    lg_program *prog = cache_find(dev, it->key);
    if (prog) {
      dev->stats.memory_hits++;
      out[i] = lg_program_retain(prog);
      continue;
    }
    if (!dir && (fail = cache_dir(dev, &dir)) != LG_OK) break;
    char name[40];
    snprintf(name, sizeof name, "/%016llx%016llx", (unsigned long long)it->key[1], (unsigned long long)it->key[0]);
    if (!(it->path = str_cat(dir, name, dev->ops->bin_ext))) {
      fail = lg_ctx_fail(ctx, LG_ERR_NOMEM, "compile: out of memory");
      break;
    }
    /* A cached file that does not load (cut short, from another compiler) is compiled again. */
    void *handle = NULL;
    if (access(it->path, F_OK) == 0) {
      if (dev->ops->load(dev, it->path, entries[i], &handle) == LG_OK) dev->stats.disk_hits++;
      else unlink(it->path);
    }
    if (handle) fail = program_new(dev, handle, entries[i], it->key, &out[i]);
    else if ((fail = make_tmp(dev, dir, &it->tmp)) == LG_OK) todo[ntodo++] = i;
  }
  if (fail == LG_OK && ntodo > 0) {
    const char **centry = csrc + m, **cpath = csrc + 2 * m;
    for (int32_t k = 0; k < ntodo; k++) {
      csrc[k] = srcs[todo[k]], centry[k] = entries[todo[k]], cpath[k] = items[todo[k]].tmp;
    }
    int64_t t0 = now_ns();
    if (dev->ops->compile_many) {
      dev->ops->compile_many(dev, ntodo, csrc, centry, cpath, cst, cmsg);
    } else {
      for (int32_t k = 0; k < ntodo; k++) {
        cst[k] = dev->ops->compile(dev, csrc[k], centry[k], cpath[k]);
        if (cst[k] != LG_OK) cmsg[k] = copy_error(ctx);
      }
    }
    dev->stats.compiles += ntodo;
    dev->stats.compile_ns += now_ns() - t0;
    compiled = true;
    for (int32_t k = 0; k < ntodo; k++) {
      int32_t i = todo[k];
      void *handle = NULL;
      if (cst[k] == LG_OK && (cst[k] = load_tmp(dev, cpath[k], centry[k], items[i].path, &handle)) != LG_OK)
        cmsg[k] = copy_error(ctx);
      if (cst[k] != LG_OK) {
        unlink(cpath[k]);
        st[i] = cst[k], msgs[i] = cmsg[k], cmsg[k] = NULL;
        if (!msgs[i] && fail == LG_OK) fail = lg_ctx_fail(ctx, LG_ERR_NOMEM, "compile: out of memory");
      } else if (fail == LG_OK) {
        fail = program_new(dev, handle, centry[k], items[i].key, &out[i]);
      } else {
        dev->ops->unload(dev, handle);
      }
    }
  }
  for (int32_t i = 0; i < n && fail == LG_OK; i++) {
    int32_t j = items[i].same;
    if (j < 0) continue;
    out[i] = lg_program_retain(out[j]), st[i] = st[j];
    if (msgs[j] && !(msgs[i] = str_cat(msgs[j], "", ""))) fail = lg_ctx_fail(ctx, LG_ERR_NOMEM, "compile: out of memory");
  }
  if (fail != LG_OK) {
    for (int32_t k = 0; k < ntodo && !compiled; k++) unlink(items[todo[k]].tmp);
    for (int32_t i = 0; i < n; i++) {
      lg_program_release(out[i]);
      free(msgs[i]);
      out[i] = NULL, msgs[i] = NULL;
    }
  }
  for (int32_t i = 0; i < n && items; i++) free(items[i].path), free(items[i].tmp);
  for (int32_t k = 0; k < ntodo && cmsg; k++) free(cmsg[k]);
  free(items), free(todo), free(csrc), free(cst), free(cmsg);
  return fail;
}

lg_status lg_program_compile(lg_ctx *ctx, lg_device *dev, const char *src, const char *entry, lg_program **out) {
  if (dev->ctx != ctx) return other_ctx(ctx, "program_compile", dev);
  if (!src) return lg_ctx_fail(ctx, LG_ERR_ARG, "program_compile: no source");
  if (!is_identifier(entry))
    return lg_ctx_fail(ctx, LG_ERR_ARG, "program_compile: entry '%s' is not a C identifier", entry ? entry : "(null)");
  lg_status st = LG_OK;
  char *msg = NULL;
  lg_status fail = compile_batch(dev, 1, &src, &entry, out, &st, &msg);
  if (fail != LG_OK) return fail;
  if (st != LG_OK) lg_ctx_fail(ctx, st, "%s", msg);
  free(msg);
  return st;
}

lg_status lg_program_compile_many(lg_ctx *ctx, lg_device *dev, int32_t n, const char *const *srcs,
                                  const char *const *entries, lg_program **out, char **errors) {
  if (dev->ctx != ctx) return other_ctx(ctx, "program_compile_many", dev);
  if (n < 0 || (n > 0 && (!srcs || !entries || !out || !errors)))
    return lg_ctx_fail(ctx, LG_ERR_ARG, "program_compile_many: bad argument arrays (%d sources)", (int)n);
  for (int32_t i = 0; i < n; i++) {
    if (!srcs[i]) return lg_ctx_fail(ctx, LG_ERR_ARG, "program_compile_many: source %d is NULL", (int)i);
    if (!is_identifier(entries[i]))
      return lg_ctx_fail(ctx, LG_ERR_ARG, "program_compile_many: entry %d '%s' is not a C identifier", (int)i,
                         entries[i] ? entries[i] : "(null)");
  }
  lg_status *st = malloc((n > 0 ? (size_t)n : 1) * sizeof *st);
  if (!st) return lg_ctx_fail(ctx, LG_ERR_NOMEM, "program_compile_many: out of memory");
  lg_status fail = compile_batch(dev, n, srcs, entries, out, st, errors);
  free(st);
  return fail;
}

lg_status lg_device_cache_path(lg_ctx *ctx, lg_device *dev, const char *folder, const char *text, char **path) {
  if (dev->ctx != ctx) return other_ctx(ctx, "device_cache_path", dev);
  if (!is_identifier(folder))
    return lg_ctx_fail(ctx, LG_ERR_ARG, "device_cache_path: folder '%s' is not a name of letters, digits and _",
                       folder ? folder : "(null)");
  if (!text) return lg_ctx_fail(ctx, LG_ERR_ARG, "device_cache_path: no text");
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    if (strcasecmp(kinds[k]->kind, folder) == 0)
      return lg_ctx_fail(ctx, LG_ERR_ARG, "device_cache_path: folder '%s' is the folder of device kind %s", folder,
                         kinds[k]->kind);
  }
  char *dir = NULL;
  lg_status st = cache_folder(ctx, folder, &dir);
  if (st != LG_OK) return st;
  uint64_t key[2];
  program_key(dev, text, folder, key);
  char name[40];
  snprintf(name, sizeof name, "/%016llx%016llx", (unsigned long long)key[1], (unsigned long long)key[0]);
  *path = str_cat(dir, name, "");
  free(dir);
  return *path ? LG_OK : lg_ctx_fail(ctx, LG_ERR_NOMEM, "device_cache_path: out of memory");
}

lg_program *lg_program_retain(lg_program *prog) {
  if (prog) prog->refcnt++;
  return prog;
}

void lg_program_release(lg_program *prog) {
  if (prog && --prog->refcnt == 0) program_free(prog);
}

const char *lg_program_entry(const lg_program *prog) { return prog->entry; }
lg_device *lg_program_device(const lg_program *prog) { return prog->dev; }

lg_status lg_program_launch(lg_ctx *ctx, lg_program *prog, lg_buffer *const *bufs, int32_t nbufs,
                            const int64_t *ints, int32_t nints, const lg_launch_dims *dims) {
  lg_device *dev = prog->dev;
  if (dev->ctx != ctx) return other_ctx(ctx, "program_launch", dev);
  if (nbufs < 0 || nints < 0 || (nbufs && !bufs) || (nints && !ints))
    return lg_ctx_fail(ctx, LG_ERR_ARG, "program_launch %s: bad argument arrays (%d buffers, %d ints)", prog->entry,
                       (int)nbufs, (int)nints);
  void *stack_mems[STACK_BUFS], **mems = stack_mems;
  if (nbufs > STACK_BUFS && !(mems = malloc((size_t)nbufs * sizeof *mems)))
    return lg_ctx_fail(ctx, LG_ERR_NOMEM, "program_launch: out of memory");
  lg_status st = LG_OK;
  for (int32_t i = 0; i < nbufs && st == LG_OK; i++) {
    if (!bufs[i]) st = lg_ctx_fail(ctx, LG_ERR_ARG, "program_launch %s: buffer %d is NULL", prog->entry, (int)i);
    else if (bufs[i]->dev->ctx != ctx)
      st = lg_ctx_fail(ctx, LG_ERR_ARG, "program_launch %s: buffer %d belongs to another context", prog->entry, (int)i);
    else if (bufs[i]->dev != dev)
      st = lg_ctx_fail(ctx, LG_ERR_ARG, "program_launch %s: buffer %d is on %s, the program on %s", prog->entry, (int)i,
                       bufs[i]->dev->name, dev->name);
    else mems[i] = bufs[i]->mem;
  }
  if (st == LG_OK) {
    st = dev->ops->launch(dev, prog->prog, mems, nbufs, ints, nints, dims);
    dev->stats.launches++;
  }
  if (mems != stack_mems) free(mems);
  return st;
}
