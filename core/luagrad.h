/* luagrad.h: the public C API of the luagrad engine.
 *
 * Plain prototypes over opaque handles and fixed-width integers, so LuaJIT's ffi.cdef can read
 * the declarations below the include guard as they are. Ops and dtypes are plain integers here:
 * look them up by name (lg_op_lookup, lg_dtype_lookup), or include luagrad_enums.h for the
 * LG_OP_* and LG_DT_* constants generated from core/ops.def and core/dtypes.def.
 *
 * Conventions: functions that can fail return an lg_status (0 = LG_OK) and leave a message on the
 * context (lg_ctx_error). A function that hands out a UOp through an `lg_uop **out` gives the
 * caller a new reference, to be dropped with lg_uop_release. UOps passed in are borrowed.
 * Everything is 0-based. */
#ifndef LUAGRAD_H
#define LUAGRAD_H
#include <stddef.h>
#include <stdint.h>

typedef struct lg_ctx lg_ctx;
typedef struct lg_uop lg_uop;
typedef struct lg_ruleset lg_ruleset;

typedef int32_t lg_status;
enum {
  LG_OK = 0,
  LG_ERR_ARG = 1,     /* bad argument: wrong op, dtype, source count, arg kind */
  LG_ERR_NOMEM = 2,   /* allocation failed */
  LG_ERR_RULE = 3,    /* a rule callback raised an error or returned a bad value */
  LG_ERR_SPEC = 4,    /* a graph breaks the spec */
  LG_ERR_LIMIT = 5,   /* a rewrite did not converge within its budget */
  LG_ERR_HOST = 6,    /* no rule host (no Lua state) for a request that needs one */
  LG_ERR_DEVICE = 7,  /* the device or the system failed: no compiler, a refused cache folder */
  LG_ERR_COMPILE = 8  /* a kernel's source did not compile; the message shows the first errors */
};

/* A dtype is a 32-bit value: bits 0-7 the scalar (dtypes.def order), bits 8-23 the vector
 * width minus one, bits 24-25 the address space plus one for a pointer (0: not a pointer). */
typedef uint32_t lg_dtype;
enum { LG_ADDR_GLOBAL = 0, LG_ADDR_LOCAL = 1, LG_ADDR_REG = 2 };

/* A UOp's arg. kind says which fields hold it:
 *   NONE; INT (i: integers, bools and the bit pattern of uint64); FLOAT (f); STR (s);
 *   INTS (n values in ints); STR_INTS (s, then n values in ints), e.g. DEFINE_VAR ("i", {0, 9}). */
enum { LG_ARG_NONE = 0, LG_ARG_INT = 1, LG_ARG_FLOAT = 2, LG_ARG_STR = 3, LG_ARG_INTS = 4, LG_ARG_STR_INTS = 5 };
typedef struct lg_arg {
  int32_t kind;
  int32_t n;
  int64_t i;
  double f;
  const char *s;
  const int64_t *ints;
} lg_arg;

/* ---- context ---------------------------------------------------------------------------- */
lg_status lg_ctx_new(lg_ctx **out);
void lg_ctx_free(lg_ctx *ctx);
const char *lg_ctx_error(const lg_ctx *ctx);
/* Set the error message (printf-style) and return code; used by hosts that report into the ctx. */
lg_status lg_ctx_fail(lg_ctx *ctx, lg_status code, const char *fmt, ...);
/* Live node count and bytes held by nodes, for leak checks and statistics. */
int64_t lg_ctx_live_nodes(const lg_ctx *ctx);
int64_t lg_ctx_live_bytes(const lg_ctx *ctx);

/* ---- ops and dtypes --------------------------------------------------------------------- */
int32_t lg_op_count(void);
const char *lg_op_name(int32_t op);
int32_t lg_op_lookup(const char *name);          /* -1 when unknown */
uint32_t lg_op_flags(int32_t op);
int32_t lg_op_min_src(int32_t op);
int32_t lg_op_max_src(int32_t op);               /* -1: any number */

int32_t lg_dtype_count(void);                    /* number of scalar dtypes */
int32_t lg_dtype_lookup(const char *name);       /* scalar dtype by name, -1 when unknown */
lg_dtype lg_dtype_scalar(lg_dtype dt);           /* the element type: no vector, no pointer */
uint32_t lg_dtype_lanes(lg_dtype dt);
int32_t lg_dtype_is_ptr(lg_dtype dt);
int32_t lg_dtype_addrspace(lg_dtype dt);         /* LG_ADDR_*, or -1 when not a pointer */
lg_dtype lg_dtype_vec(lg_dtype dt, uint32_t lanes);
lg_dtype lg_dtype_ptr(lg_dtype dt, int32_t addrspace);
lg_dtype lg_dtype_base(lg_dtype dt);             /* what a pointer points to */
int32_t lg_dtype_itemsize(lg_dtype dt);          /* bytes of one (vector) element */
char lg_dtype_kind(lg_dtype dt);                 /* 'v' 'b' 'i' 'u' 'f' of the scalar */
int32_t lg_dtype_is_valid(lg_dtype dt);
/* "float32", "int8x4", "float32*", "float32 local*"; returns the length written (snprintf) */
int32_t lg_dtype_name(lg_dtype dt, char *buf, size_t size);
/* PyTorch's promotion of two scalar dtypes (bool < ints < floats; see core/dtype.c) */
lg_status lg_dtype_promote(lg_ctx *ctx, lg_dtype a, lg_dtype b, lg_dtype *out);

/* ---- UOps ------------------------------------------------------------------------------- */
/* Build or find the node (op, dtype, src[0..n), arg). Checks the op's source count. */
lg_status lg_uop_new(lg_ctx *ctx, int32_t op, lg_dtype dtype, lg_uop *const *src, int32_t n,
                     const lg_arg *arg, lg_uop **out);
/* CONST of a scalar dtype: the value is converted with C semantics (ints wrap, floats round to
 * the dtype, bool is value != 0). Integers and floats come in separately to keep int64 exact. */
lg_status lg_uop_const_int(lg_ctx *ctx, lg_dtype dtype, int64_t v, lg_uop **out);
lg_status lg_uop_const_float(lg_ctx *ctx, lg_dtype dtype, double v, lg_uop **out);
lg_uop *lg_uop_retain(lg_uop *u);
void lg_uop_release(lg_uop *u);

int32_t lg_uop_op(const lg_uop *u);
lg_dtype lg_uop_dtype(const lg_uop *u);
int32_t lg_uop_nsrc(const lg_uop *u);
lg_uop *lg_uop_src(const lg_uop *u, int32_t i);  /* borrowed */
const lg_arg *lg_uop_arg(const lg_uop *u);
uint64_t lg_uop_hash(const lg_uop *u);
uint32_t lg_uop_refcount(const lg_uop *u);
/* Tensor-level nodes have a shape, computed and checked when built (core/shape.c): ndim sizes,
 * ndim 0 for a shaped scalar. Kernel-level nodes and plain CONSTs have none: ndim -1, NULL. */
int32_t lg_uop_ndim(const lg_uop *u);
const int64_t *lg_uop_shape(const lg_uop *u);

/* Integer range analysis: every int/bool node knows bounds of its value, computed when it is
 * built. Returns 1 and fills lo/hi when bounds are known, 0 otherwise (floats, uint64 beyond
 * int64). */
int32_t lg_uop_bounds(const lg_uop *u, int64_t *lo, int64_t *hi);

/* Fold an ALU/CAST/BITCAST node whose sources are all CONST into a CONST (C semantics).
 * *out is NULL (and LG_OK returned) when the node cannot be folded. */
lg_status lg_uop_fold(lg_ctx *ctx, const lg_uop *u, lg_uop **out);

/* One scalar of dtype dt in memory (itemsize bytes, little-endian): from a value given as an
 * INT or FLOAT arg, converted as a CONST of dt would be (a float to an integer type truncates,
 * NaN gives 0 and values beyond int64 saturate);
 * and back, as INT (integers, bool; uint64 as its bit pattern) or FLOAT. */
void lg_value_to_bytes(lg_dtype dt, const lg_arg *v, void *dst);
void lg_value_from_bytes(lg_dtype dt, const void *src, lg_arg *out);

/* Check a graph against the spec (source counts, dtypes, args per op). */
lg_status lg_uop_verify(lg_ctx *ctx, lg_uop *root);

/* Render the graph as text, one line per node, shared nodes named once; *out is malloc'd
 * (free with lg_free). */
lg_status lg_uop_format(lg_ctx *ctx, lg_uop *root, char **out);
void lg_free(void *p);

/* Count of distinct nodes reachable from root (including it); -1 when out of memory. */
int64_t lg_uop_size(const lg_uop *root);
/* The nodes reachable from root, sources before their users, written to buf (borrowed
 * pointers, at most cap of them). Returns the total count (> cap: call again with more room),
 * or -1 when out of memory. */
int64_t lg_uop_toposort(const lg_uop *root, lg_uop **buf, int64_t cap);
/* The structure of the graphs at roots as bytes (key, len), with each BUFFER node replaced by
 * its position among the graphs' buffers (listed in bufs, borrowed) and its size: graphs that
 * differ only in their buffers have one key. Free with lg_signature_free. */
typedef struct lg_signature {
  char *key;
  size_t len;
  lg_uop **bufs;
  int64_t nbufs;
} lg_signature;
lg_status lg_graph_signature(lg_ctx *ctx, lg_uop *const *roots, int32_t nroots, lg_signature *out);
void lg_signature_free(lg_signature *s);

/* ---- rules and graph_rewrite ------------------------------------------------------------- */
/* The engine calls rule callbacks and predicates through a host. vm_bindings implements one
 * for Lua states; `fns` is the host's handle for a rule set's callbacks, `rctx` the handle for
 * the context value of one graph_rewrite call. */
typedef struct lg_match {
  int32_t ncap;
  lg_uop *const *caps;        /* by capture slot; NULL where unbound */
  const char *const *names;   /* capture names by slot */
  lg_uop *root;               /* the node that matched */
} lg_match;

typedef struct lg_rule_host {
  void *ud;
  /* Run callback `fn`; set *out to a new reference, or NULL for "no change". */
  lg_status (*call_rule)(void *ud, lg_ctx *ctx, void *fns, int32_t fn, const lg_match *m,
                         void *rctx, lg_uop **out);
  /* Run predicate `fn` on u; set *ok to 1 (accept) or 0. */
  lg_status (*call_pred)(void *ud, lg_ctx *ctx, void *fns, int32_t fn, lg_uop *u, int32_t *ok);
  /* Forget a rule set's callbacks handle (the rule set is being freed). */
  void (*release_fns)(void *ud, void *fns);
  /* Compile the named pass (rule files on the search path) into a rule set; new reference. */
  lg_status (*load_pass)(void *ud, lg_ctx *ctx, const char *name, lg_ruleset **out);
} lg_rule_host;

void lg_ctx_set_host(lg_ctx *ctx, const lg_rule_host *host);
const lg_rule_host *lg_ctx_host(const lg_ctx *ctx);

/* Rule sets are reference counted. */
lg_ruleset *lg_ruleset_retain(lg_ruleset *rs);
void lg_ruleset_release(lg_ruleset *rs);
/* The named pass, compiled by the host (for C hosts: "symbolic", ...). */
lg_status lg_pass(lg_ctx *ctx, const char *name, lg_ruleset **out);

enum { LG_REWRITE_BOTTOM_UP = 0, LG_REWRITE_TOP_DOWN = 1 };
typedef struct lg_rewrite_opts {
  int32_t mode;         /* LG_REWRITE_BOTTOM_UP: sources first; TOP_DOWN: node first */
  int32_t budget;       /* max rewrites of one node before LG_ERR_LIMIT; 0: default (1000) */
  int32_t stats;        /* 1: collect per-rule statistics into the rule set */
  void *rctx;           /* passed to callbacks */
  int64_t visits;       /* out: times the rules were tried on a node */
  int64_t nodes;        /* out: distinct nodes the walk processed (input and created) */
  int64_t rewrites;     /* out: rule applications that changed a node */
} lg_rewrite_opts;

lg_status lg_graph_rewrite(lg_ctx *ctx, lg_uop *root, lg_ruleset *rs, lg_rewrite_opts *opts,
                           lg_uop **out);

/* ---- patterns and rule sets (core/pattern.c, core/rewrite.c) ------------------------------ */
/* A rule is a pattern, given as an array of nodes (node 0 the root; a node's sources are
 * indices of later nodes of the same array), and a result: a host callback, or a template
 * (an array of the same form) that the engine builds itself, with no host call.
 *
 * Matching: an LG_PAT_OP node matches a UOp whose op is in ops (any op when nops is 0), whose
 * dtype is one of dtypes or in one of dtype_classes (no check when both are empty), whose arg
 * equals arg (when has_arg; INT and FLOAT args compare by value: 1 == 1.0 == true), and whose
 * sources match by src_mode; a predicate (host index pred) runs after the node's sources
 * matched. An LG_PAT_ANY node matches what one of its sources matches, tried in order. A
 * node with a name captures the UOp; a name bound twice must bind the same UOp. Every match is
 * tried in turn (alternatives, then swapped commutative sources) until a result is not nil.
 *
 * Templates: a node with a name is the captured UOp; a CONST node with an INT or FLOAT arg and no
 * name is a constant of its one dtype, else of its sibling's (WHERE's condition: bool), else of
 * the matched root's; a node of one op with exact sources builds that op with its arg, of its one
 * dtype, else bool for comparisons, WHERE's second source's, the first source's, or the root's. */
enum { LG_PAT_OP = 0, LG_PAT_ANY = 1 };
enum { LG_SRC_ANY = 0, LG_SRC_EXACT = 1, LG_SRC_PREFIX = 2, LG_SRC_EACH = 3 };
enum { LG_DTC_BOOL = 1, LG_DTC_SINT = 2, LG_DTC_UINT = 4, LG_DTC_FLOAT = 8 };

typedef struct lg_pat {
  int32_t kind;            /* LG_PAT_OP or LG_PAT_ANY (alternatives in src) */
  int32_t nops;            /* op set; 0: any op */
  const int32_t *ops;
  int32_t ndtypes;         /* dtype filter */
  const lg_dtype *dtypes;
  uint32_t dtype_classes;  /* LG_DTC_* of the element type; a pointer is in no class */
  int32_t src_mode;        /* ANY: not checked; EXACT: source i matches src[i], same count;
                              PREFIX: the first nsrc sources; EACH: every source matches src[0] */
  int32_t nsrc;
  const int32_t *src;      /* node indices, each greater than this node's */
  int32_t commutative;     /* EXACT with two sources: also try them swapped */
  int32_t has_arg;
  lg_arg arg;
  const char *name;        /* capture name, or NULL */
  int32_t pred;            /* host predicate index, or -1 */
} lg_pat;

/* A rule's result is one of: a host callback (fn >= 0), a template (ntmpl > 0), or a native
 * result (native > 0, from lg_native_lookup). */
typedef struct lg_rule_def {
  const char *name;        /* for statistics and messages */
  const lg_pat *pat;
  int32_t npat;
  int32_t fn;              /* host callback index, or -1 */
  const lg_pat *tmpl;
  int32_t ntmpl;
  int32_t native;
} lg_rule_def;

typedef struct lg_rule_stats {
  const char *name;
  int64_t tries;           /* rule tried on a node of a matching op */
  int64_t matches;         /* full structural matches (predicates passed) */
  int64_t rewrites;        /* results that changed the node */
  int64_t ns;              /* time spent trying the rule, callbacks included */
} lg_rule_stats;

/* Native results, run in C: "fold" (lg_uop_fold: an ALU node whose sources are constants
 * becomes a constant), "bounds" (an integer or bool node whose bounds hold one value becomes
 * that constant). Returns the id for lg_rule_def.native, 0 when the name is unknown. */
int32_t lg_native_lookup(const char *name);
/* A new, empty rule set; `fns` is the host's handle for its callbacks (released through
 * lg_rule_host.release_fns with the set). */
lg_status lg_ruleset_new(lg_ctx *ctx, const char *name, void *fns, lg_ruleset **out);
/* Check and append a rule (rules are tried in the order added). */
lg_status lg_ruleset_add(lg_ruleset *rs, const lg_rule_def *rule);
const char *lg_ruleset_name(const lg_ruleset *rs);
int32_t lg_ruleset_count(const lg_ruleset *rs);
/* Statistics of rule i, collected by rewrites with opts.stats; 0 when i is out of range. */
int32_t lg_ruleset_stats(const lg_ruleset *rs, int32_t i, lg_rule_stats *out);
void lg_ruleset_reset_stats(lg_ruleset *rs);

/* ---- devices (core/device.c, devices/<kind>/) --------------------------------------------- */
/* A device ("CPU"; later "LLVM", "CUDA", "CUDA:1") runs compiled programs on buffers of its
 * memory. The context opens a device on first lg_device_get and owns it: the handle is
 * borrowed and valid until lg_ctx_free. Buffers and programs are reference counted (a _new or
 * _compile gives the caller one reference); release them before lg_ctx_free, which frees
 * whatever is left. Launches may be asynchronous on GPUs: lg_buffer_read waits for the work
 * queued before it; lg_device_synchronize waits for all of it. On the CPU everything is
 * synchronous.
 *
 * Kernel calling convention on the CPU: the entry function of the source is
 *   void entry(void **bufs, const int64_t *ints, int32_t core_id, int32_t ncores);
 * bufs[i] is the data of the i-th buffer given to lg_program_launch (64-byte aligned), ints the
 * scalar arguments (symbolic sizes, ...) as given; both arrays live for the call only. The
 * kernel is run once for each core_id in [0, ncores) and does its share of the work for that
 * core_id (a chunk of its first output loop); the runs are concurrent, on the device's thread
 * pool. ncores is dims->global[0] when that is > 1, else chosen from the work the kernel reports
 * (devices/cpu/pool.h: small kernels run as one chunk).
 *
 * Compiled programs are cached by a hash of (device kind, compiler and flags, target, entry,
 * source): in memory per context (compiling again while a program is held returns it), and on
 * disk, one file per program, under $CACHE_DIR, else $XDG_CACHE_HOME/luagrad, else
 * ~/.cache/luagrad, in a folder per device kind (created with mode 0700; a folder owned by
 * another user or writable by group or others is refused: LG_ERR_DEVICE).
 * CPU environment: LUAGRAD_CC (compiler command, default "cc"; words split on spaces),
 * LUAGRAD_CFLAGS (flags appended, split on spaces); read when a context opens the device.
 * LLVM (devices/llvm, the same calling convention; programs are LLVM IR): LUAGRAD_LIBLLVM, the
 * libLLVM to load (default: the one luagrad was built against), read when the process first
 * opens the device. */
typedef struct lg_device lg_device;
typedef struct lg_buffer lg_buffer;
typedef struct lg_program lg_program;

/* Launch geometry: for GPUs, global is the grid (in blocks) and local the block (in threads);
 * the CPU reads only global[0], its number of cores (see above), and sample: when it is > 0 and
 * below that number, only core_ids [0, sample) run (part of the work, to time a kernel whose
 * whole run may take too long; other devices run all of it). */
typedef struct lg_launch_dims {
  int32_t global[3];
  int32_t local[3];
  int32_t sample;
} lg_launch_dims;

typedef struct lg_device_stats {
  int64_t compiles;      /* compiler runs (programs found in neither cache) */
  int64_t disk_hits;     /* programs loaded from the disk cache */
  int64_t memory_hits;   /* programs reused from this context's cache */
  int64_t compile_ns;    /* time spent in compiler runs */
  int64_t launches;
  int64_t buffers;       /* live buffers */
  int64_t buffer_bytes;  /* bytes held by live buffers */
} lg_device_stats;

/* name: a kind, optionally with an index ("CPU", "cpu", "CUDA:1"). */
lg_status lg_device_get(lg_ctx *ctx, const char *name, lg_device **out);
const char *lg_device_name(const lg_device *dev);   /* canonical: "CPU", "CUDA:1" */
lg_status lg_device_synchronize(lg_device *dev);    /* message on the device's context */
void lg_device_stats_get(const lg_device *dev, lg_device_stats *out);

/* A buffer of nbytes (>= 0) of device memory; its contents are undefined until written. */
lg_status lg_buffer_new(lg_ctx *ctx, lg_device *dev, int64_t nbytes, lg_buffer **out);
lg_buffer *lg_buffer_retain(lg_buffer *buf);
void lg_buffer_release(lg_buffer *buf);
lg_device *lg_buffer_device(const lg_buffer *buf);
int64_t lg_buffer_size(const lg_buffer *buf);
/* Copy n bytes from host memory into the buffer at offset, or out of it; the range must lie in
 * the buffer. Errors go to the buffer's context. */
lg_status lg_buffer_write(lg_buffer *buf, int64_t offset, const void *src, int64_t n);
lg_status lg_buffer_read(lg_buffer *buf, int64_t offset, void *dst, int64_t n);
/* A buffer over host memory that stays the caller's (CPU device only): mem 64-byte aligned (the
 * kernels' contract), nbytes >= 0. release(ud) runs when the buffer is freed; when the call fails
 * it does not run. */
lg_status lg_buffer_wrap(lg_ctx *ctx, lg_device *dev, void *mem, int64_t nbytes, void (*release)(void *ud),
                         void *ud, lg_buffer **out);

/* Compile src (CPU: C source) and find its function `entry` (a C identifier), or reuse the
 * program from a cache. */
/* The kernel rooted at sink (docs/kernel_ir.md) as C source for the CPU device: one function
 * `name` with the calling convention above, splitting its first top-level output loop over
 * core_id (a kernel that cannot be split returns at once on every core but 0), and the constant
 * `<name>_split` = {iterations of that loop, work of one} (0, 0 when not split) that the launcher
 * reads. *src is malloc'd (free with lg_free). */
lg_status lg_render_c(lg_ctx *ctx, lg_uop *sink, const char *name, char **src);
/* The same kernel as LLVM IR text for the LLVM device (devices/llvm/render_llvm.c): a module
 * whose function `name` has the calling convention above and computes what lg_render_c's does. */
lg_status lg_render_llvm(lg_ctx *ctx, lg_uop *sink, const char *name, char **src);

/* A BUFFER node of a new id that holds buf (retained until the node is freed); its shape is
 * (nbytes / itemsize of dtype). lg_uop_buffer: the buffer of such a node (borrowed), or NULL. */
lg_status lg_buffer_node(lg_ctx *ctx, lg_buffer *buf, lg_dtype dtype, lg_uop **out);
lg_buffer *lg_uop_buffer(const lg_uop *u);

lg_status lg_program_compile(lg_ctx *ctx, lg_device *dev, const char *src, const char *entry,
                             lg_program **out);
/* Programs for n sources at once, as lg_program_compile makes each: out[i] is source i's
 * program, or NULL with errors[i] (malloc'd, lg_free) the message of its failure. The CPU
 * device runs up to THREADS compilers at a time; others compile one after the other. Fails as
 * a whole (nothing handed out) for bad arguments, an unusable cache folder, or no memory. */
lg_status lg_program_compile_many(lg_ctx *ctx, lg_device *dev, int32_t n, const char *const *srcs,
                                  const char *const *entries, lg_program **out, char **errors);
/* A file name for text in the folder `folder` (a C identifier, not a device kind's) of the
 * cache root above: <root>/<folder>/<32 hex digits of a hash of the text, the device kind and
 * its compiler identity>. The folder is created (mode 0700) and checked as the device's is; the
 * file is not. *path is malloc'd (lg_free). */
lg_status lg_device_cache_path(lg_ctx *ctx, lg_device *dev, const char *folder, const char *text, char **path);
lg_program *lg_program_retain(lg_program *prog);
void lg_program_release(lg_program *prog);
const char *lg_program_entry(const lg_program *prog);
lg_device *lg_program_device(const lg_program *prog);
/* Run the program on bufs[0..nbufs) (all on its device) with the scalar arguments
 * ints[0..nints); dims may be NULL. The kernel must expect exactly these arguments. */
lg_status lg_program_launch(lg_ctx *ctx, lg_program *prog, lg_buffer *const *bufs, int32_t nbufs,
                            const int64_t *ints, int32_t nints, const lg_launch_dims *dims);

/* ---- weights and datasets on disk (core/safetensors.c, core/idx.c) ------------------------ */
/* safetensors files: an 8-byte little-endian header length N, N bytes of JSON (an object: name ->
 * {"dtype", "shape", "data_offsets": [begin, end]} relative to the data after the header, and an
 * optional "__metadata__" object of strings), then the raw little-endian data. Dtype names: BOOL
 * U8 I8 U16 I16 U32 I32 U64 I64 F16 BF16 F32 F64. lg_safetensors_open maps the file and checks
 * all of it (header at most 100,000,000 bytes, entries inside the data, sizes equal to
 * numel * itemsize, no overlaps; gaps are allowed); the file is read through the mapping, which
 * lives while the handle or any buffer made from it does. */
typedef struct lg_safetensors lg_safetensors;
typedef struct lg_tensor_info {
  const char *name;
  lg_dtype dtype;
  int32_t ndim;            /* at most 16 */
  const int64_t *shape;
  int64_t offset;          /* the data's first byte, from the start of the file */
  int64_t nbytes;
} lg_tensor_info;

lg_status lg_safetensors_open(lg_ctx *ctx, const char *path, lg_safetensors **out);
void lg_safetensors_close(lg_safetensors *f);
/* The tensors, in the order of their data (0-based i); borrowed strings, valid while f is open. */
int64_t lg_safetensors_count(const lg_safetensors *f);
void lg_safetensors_info(const lg_safetensors *f, int64_t i, lg_tensor_info *out);
int64_t lg_safetensors_metadata_count(const lg_safetensors *f);
void lg_safetensors_metadata(const lg_safetensors *f, int64_t i, const char **key, const char **value);
/* Tensor i's values in a buffer of dev: on the CPU a view of the mapped file when its data is
 * 64-byte aligned (no copy; the buffer keeps the mapping alive), else a copy. BOOL values other
 * than 0 and 1 are an error. */
lg_status lg_safetensors_buffer(lg_ctx *ctx, lg_safetensors *f, int64_t i, lg_device *dev, lg_buffer **out);
/* Write a safetensors file: the header's keys sorted ("__metadata__" first, when nmeta > 0),
 * padded with spaces to end on a 64-byte boundary; the data packed without gaps, by itemsize
 * (largest first), then name, as the reference writer does. Each tensor's buffer holds exactly its
 * numel * itemsize bytes. The file is written under a temporary name in the same folder and
 * renamed into place, so a mapping of the old file stays valid. */
typedef struct lg_tensor_entry {
  const char *name;
  lg_dtype dtype;
  int32_t ndim;
  const int64_t *shape;
  lg_buffer *buf;
} lg_tensor_entry;
lg_status lg_safetensors_save(lg_ctx *ctx, const char *path, const lg_tensor_entry *tensors, int64_t n,
                              const char *const *meta_keys, const char *const *meta_values, int64_t nmeta);

/* IDX files (MNIST's format), gzip-compressed or not: bytes 0, 0, a type code (0x08 uint8,
 * 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of dims; the
 * dims as big-endian uint32; the big-endian values. Read into a new CPU buffer in host order;
 * dims needs room for 16 sizes. */
lg_status lg_idx_load(lg_ctx *ctx, const char *path, lg_buffer **out, lg_dtype *dtype, int32_t *ndim,
                      int64_t *dims);
/* A new buffer on src's device (host memory: CPU) whose row i is row idx[i] of src (rows of
 * row_bytes bytes, 0-based indices, checked); shuffles a dataset with one pass over it. */
lg_status lg_gather_rows(lg_ctx *ctx, lg_buffer *src, int64_t row_bytes, const int64_t *idx, int64_t n,
                         lg_buffer **out);

/* ---- kernel optimizer (core/opt.c; docs/kernel_ir.md, "Optimization") ---------------------- */
/* Transformations of a kernel (a SINK of the kernel IR) that keep its results and change its
 * loops. A step names one transformation and its two integers: an axis (a RANGE arg's axis
 * number) and an amount, or two axes for merge and swap:
 *   UPCAST axis n      an output range of size s becomes a range of s/n (none when n = s) and n
 *                      copies of the body with r := outer*n + i (padded first when n does not
 *                      divide s)
 *   UNROLL axis n      the same for a reduce range: each REDUCE over it reduces its op of the n
 *                      copies of its value
 *   ACCUMULATE axis n  like UNROLL, with a REDUCE of its own per copy, combined after the loop
 *   MERGE a b          two ranges of one kind closed together become one range of their sizes'
 *                      product, axis a: a := m // size(b), b := m % size(b)
 *   PAD axis m         a range grows to a multiple of m; gates keep the extra iterations out of
 *                      memory and out of the reductions
 *   SWAP a b           two ranges of one kind trade axes (their loops trade places)
 *   VECTORIZE axis w   r := outer*w + lane, lane a RANGE of kind LG_RANGE_LANES of size w (a
 *                      power of 2 from 2 to LG_OPT_MAX_LANES)
 * Errors are LG_ERR_ARG with a message "opt: <step>: <the problem>" naming the axis and value. */
enum { LG_OPT_UPCAST = 0, LG_OPT_UNROLL = 1, LG_OPT_ACCUMULATE = 2, LG_OPT_MERGE = 3, LG_OPT_PAD = 4,
       LG_OPT_SWAP = 5, LG_OPT_VECTORIZE = 6, LG_OPT__COUNT = 7 };
enum { LG_OPT_MAX_LANES = 16 };
typedef struct lg_opt_step {
  int32_t op; /* LG_OPT_* */
  int64_t x;  /* the axis (MERGE, SWAP: the first axis) */
  int64_t y;  /* the amount, multiple or width (MERGE, SWAP: the second axis) */
} lg_opt_step;

/* "upcast", ... by LG_OPT_* value, and back (-1 when unknown). */
const char *lg_opt_name(int32_t op);
int32_t lg_opt_lookup(const char *name);
/* The RANGE of axis x that step op would transform in sink (borrowed), or the step's error for
 * that axis alone: no such range, a range of the wrong kind, a size that is not a constant. */
lg_status lg_opt_range(lg_ctx *ctx, lg_uop *sink, int32_t op, int64_t axis, lg_uop **out);
/* One transformation, without simplification. */
lg_status lg_opt_transform(lg_ctx *ctx, lg_uop *sink, const lg_opt_step *step, lg_uop **out);
/* The steps in order, the symbolic pass after each MERGE (its m // s * s + m % s folds back to
 * m before a later step splits m); needs a rule host when a step merges. */
lg_status lg_opt_steps(lg_ctx *ctx, lg_uop *sink, const lg_opt_step *steps, int32_t n, lg_uop **out);
/* What the optimizer makes of sink: the steps, the symbolic pass (lg_pass "symbolic", so a rule
 * host is needed), then every INDEX whose index is base + lane once simplified (a contiguous
 * access along the vector lanes) gets exactly the form ADD(base, lane) the renderers look for,
 * and one whose index is base + 2 * lane the form ADD(base, MUL(lane, 2)). */
lg_status lg_opt_apply(lg_ctx *ctx, lg_uop *sink, const lg_opt_step *steps, int32_t n, lg_uop **out);
/* dep[i] = 1 when nodes[i] depends on range r, else 0; nodes in lg_uop_toposort order (a REDUCE or
 * an END that closes r does not depend on it). */
lg_status lg_opt_dependents(lg_ctx *ctx, lg_uop *const *nodes, int64_t n, const lg_uop *r, uint8_t *dep);

/* ---- embedding (vm_bindings/standalone.c; libluagrad only) -------------------------------- */
/* A context with its own Lua 5.4 state, luagrad loaded, so C hosts get every rule. Like
 * sqlite3_open: if loading luagrad fails, *out is still set (message in lg_ctx_error) and must
 * be lg_closed; *out is NULL only when no context could be made (LG_ERR_NOMEM, LG_ERR_HOST).
 * lg_close takes only contexts from lg_open. */
lg_status lg_open(lg_ctx **out);
void lg_close(lg_ctx *ctx);

#endif
