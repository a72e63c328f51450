/* device.h: the device layer's structures and the interface each device implements.
 *
 * A device kind ("CPU", later "LLVM", "CUDA") is one const lg_device_ops table, listed in the
 * registry of core/device.c. A context opens an instance of a kind on first use (lg_device_get)
 * and keeps it, with its buffers and its compiled programs, until lg_ctx_free.
 *
 * The generic layer (core/device.c) checks arguments, counts, and owns the compile caches: a
 * program is keyed by XXH3-128 of (kind, the device's compiler identity, entry, source); the
 * memory cache maps the key to a loaded lg_program (holding no reference: a program leaves it
 * when its last holder releases it), the disk cache holds one compiled file per
 * key, <cache>/<kind in lower case>/<32 hex digits><bin_ext>, written under a temporary name in
 * the same folder and renamed into place. A device only turns source into a file (compile) and
 * a file into something it can launch (load).
 *
 * Every hook that can fail returns an lg_status and leaves its message on dev->ctx. The kernel
 * calling convention of each device is in luagrad.h ("devices"). */
#ifndef LG_DEVICE_H
#define LG_DEVICE_H
#include "internal.h"

typedef struct lg_device_ops {
  const char *kind;     /* registry name, upper case: "CPU" */
  const char *bin_ext;  /* file name ending of a compiled program in the disk cache: ".so" */
  /* Set up instance `dev->index` of the kind: fill dev->impl and dev->compiler_id (the
   * compiler, its flags and the target: anything that changes the compiled file). Fails
   * (LG_ERR_ARG) for an index the machine does not have. close undoes it; it runs after every
   * buffer and program of the instance is gone. */
  lg_status (*open)(lg_device *dev);
  void (*close)(lg_device *dev);
  /* Device memory: *mem is the device's handle (a host pointer on the CPU, a device address
   * on a GPU). nbytes > 0. free must not give back memory that queued work still uses (free in
   * stream order, or synchronize first). */
  lg_status (*alloc)(lg_device *dev, int64_t nbytes, void **mem);
  void (*free)(lg_device *dev, void *mem, int64_t nbytes);
  /* Copies between host memory and [offset, offset + n) of a buffer (checked by the caller).
   * copy_in may return before the copy is done but not before src may be reused; copy_out
   * returns when dst holds the data, after the work queued before it. */
  lg_status (*copy_in)(lg_device *dev, void *mem, int64_t offset, const void *src, int64_t n);
  lg_status (*copy_out)(lg_device *dev, void *dst, void *mem, int64_t offset, int64_t n);
  /* Compile `src` into the file `out_path` (it exists, empty, in the cache folder; a device
   * may put its own temporary files next to it). A source that does not compile is
   * LG_ERR_COMPILE with the compiler's first errors; a compiler that cannot run, LG_ERR_DEVICE. */
  lg_status (*compile)(lg_device *dev, const char *src, const char *entry, const char *out_path);
  /* Optional: compile n sources as compile does, several at a time; st[i] is the result of
   * source i and msgs[i] (malloc'd) the message of a failure. Without it the generic layer
   * calls compile for one after the other. */
  void (*compile_many)(lg_device *dev, int32_t n, const char *const *srcs, const char *const *entries,
                       const char *const *out_paths, lg_status *st, char **msgs);
  /* Load a compiled file and find `entry` in it; *prog is the device's handle. */
  lg_status (*load)(lg_device *dev, const char *path, const char *entry, void **prog);
  void (*unload)(lg_device *dev, void *prog);
  /* Run (or queue) a program. mems are the buffers' handles, in order. May return before the
   * work is done; the device keeps whatever the queued work needs. */
  lg_status (*launch)(lg_device *dev, void *prog, void *const *mems, int32_t nbufs,
                      const int64_t *ints, int32_t nints, const lg_launch_dims *dims);
  /* Wait for all queued work. */
  lg_status (*synchronize)(lg_device *dev);
} lg_device_ops;

struct lg_device {
  lg_ctx *ctx;
  const lg_device_ops *ops;
  int32_t index;         /* "CUDA:1" is index 1; "CPU" is "CPU:0" */
  char name[32];         /* canonical: "CPU", "CUDA:1" */
  void *impl;            /* the device's own state */
  char *compiler_id;     /* set by open (malloc'd, freed by the generic layer) */
  char *cache_dir;       /* the disk cache folder, checked; NULL until the first compile */
  lg_buffer *buffers;    /* live buffers (a list through prev/next) */
  lg_program **progs;    /* memory cache: chained hash table by key */
  uint64_t nprog_buckets, nprogs;
  lg_device_stats stats;
  lg_device *next;       /* the context's list */
};

struct lg_buffer {
  lg_device *dev;
  void *mem;
  int64_t nbytes;
  uint32_t refcnt;
  void (*release)(void *ud); /* lg_buffer_wrap: gives mem back to its owner instead of ops->free */
  void *release_ud;
  lg_buffer *prev, *next;
};

struct lg_program {
  lg_device *dev;
  void *prog;
  char *entry;
  uint64_t key[2];       /* XXH3-128: low, high */
  uint32_t refcnt;
  lg_program *next;      /* memory cache bucket chain */
};

/* The context's devices: the open instances. */
struct lg_devices {
  lg_device *first;
};

/* The device kinds (devices/<kind>/). */
extern const lg_device_ops lg_cpu_device;
extern const lg_device_ops lg_llvm_device;

#endif
