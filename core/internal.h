/* internal.h: the engine's shared structures. Not installed; hosts use luagrad.h. */
#ifndef LG_INTERNAL_H
#define LG_INTERNAL_H
#include <stdbool.h>
#include <stdint.h>

#include "luagrad.h"
#include "luagrad_enums.h"

/* Tensor-level shapes have at most this many axes (core/shape.c). */
#define LG_MAX_DIMS 16

/* A node. Immutable once interned; `next` chains the intern table's bucket. The arg's ints, the
 * shape's sizes and the arg's string live in the same allocation, in that order, after src[]. */
struct lg_uop {
  lg_ctx *ctx;
  lg_uop *next;
  uint64_t hash;
  uint32_t refcnt;
  int32_t op;
  int32_t nsrc;
  lg_dtype dtype;
  uint32_t has_bounds; /* vmin/vmax valid */
  int32_t ndim;        /* -1: no shape (kernel-level nodes, plain CONSTs) */
  const int64_t *shape; /* ndim sizes; NULL when ndim is -1. Derived, not part of the identity */
  int64_t vmin, vmax;
  lg_arg arg;
  /* scratch of graph_rewrite (core/rewrite.c): the walk that saw the node last, and its result
   * there (NULL while in progress). Not part of the node's identity. */
  uint64_t walk;
  lg_uop *walk_res;
  lg_buffer *buf; /* a BUFFER node's storage (lg_buffer_node), released with the node */
  lg_uop *src[];
};

struct lg_ctx {
  /* intern table: chained buckets; it holds no reference (a node leaves when its count drops) */
  lg_uop **buckets;
  uint64_t nbuckets; /* power of two */
  int64_t live_nodes;
  int64_t live_bytes;
  lg_rule_host host;
  int has_host;
  struct lg_devices *devices;
  uint64_t walks;        /* graph_rewrite calls so far: each walk's id */
  int64_t buffer_ids;    /* BUFFER nodes made by lg_buffer_node: each one's id */
  int32_t active_walks;  /* graph_rewrite calls in progress (nested through callbacks) */
  char err[1024];
};

void lg_devices_free(struct lg_devices *devices); /* core/device.c */

/* op table (core/ops.c) */
typedef struct lg_opinfo {
  const char *name;
  int16_t min_src, max_src;
  uint32_t flags;
} lg_opinfo;
extern const lg_opinfo lg_ops[LG_OP__COUNT];

static inline bool lg_op_has(int32_t op, uint32_t flag) { return (lg_ops[op].flags & flag) != 0; }

/* dtype helpers (core/dtype.c) */
static inline int32_t lg_dt_scalar_id(lg_dtype dt) { return (int32_t)(dt & 0xffu); }
static inline bool lg_dt_is_plain(lg_dtype dt) { return (dt >> 8) == 0; } /* scalar, not ptr */
bool lg_dt_is_float(lg_dtype dt);
bool lg_dt_is_int(lg_dtype dt);      /* signed or unsigned integer, not bool */
bool lg_dt_is_unsigned(lg_dtype dt);
/* Value range of an integer/bool scalar dtype that fits int64 (not uint64). */
bool lg_dt_int_range(lg_dtype dt, int64_t *lo, int64_t *hi);

/* Wrap an int64 to an integer dtype's width (C conversion semantics), or round a double to a
 * float dtype (round to nearest even for float16, bfloat16, float32). core/alu.c */
int64_t lg_wrap_int(lg_dtype dt, int64_t v);
double lg_round_float(lg_dtype dt, double v);
/* An integer (the bit pattern of a uint64 when is_unsigned) rounded once to a float dtype. */
double lg_int_to_float(lg_dtype dt, int64_t v, bool is_unsigned);

/* The shape of the node (op, dtype, src, arg) about to be built (core/shape.c): *ndim (-1: no
 * shape) and dims[0..*ndim), dims having room for LG_MAX_DIMS; LG_ERR_ARG with the message when
 * the sources or the arg break the op's shape rule. */
lg_status lg_shape_infer(lg_ctx *ctx, int32_t op, lg_dtype dtype, lg_uop *const *src, int32_t n,
                         const lg_arg *arg, int32_t *ndim, int64_t *dims);

/* bounds of a freshly built node (core/vrange.c); sets has_bounds/vmin/vmax */
void lg_vrange_compute(lg_uop *u);

/* The "divmod" native result of the symbolic rules (core/symbolic.c). */
lg_status lg_sym_divmod(lg_ctx *ctx, lg_uop *u, lg_uop **out);

/* arg helpers (core/uop.c) */
bool lg_arg_equal(const lg_arg *a, const lg_arg *b);

#endif
