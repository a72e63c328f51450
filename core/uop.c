/* uop.c: nodes and their interning. Structurally equal nodes are one pointer; a node's count
 * covers its holders (callers and parent nodes), never the intern table, which drops a node
 * when the last holder releases it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "internal.h"
#include "ptrmap.h"

/* the multiply carries v's low bits up only; the shift brings its high bits (a double's exponent
 * and top mantissa) down to the bucket index */
static uint64_t mix(uint64_t h, uint64_t v) {
  uint64_t x = (h ^ v) * 0x9e3779b97f4a7c15ULL;
  return x ^ (x >> 29);
}

static uint64_t float_bits(double f) {
  uint64_t b;
  memcpy(&b, &f, sizeof b);
  return b;
}

static uint64_t hash_node(int32_t op, lg_dtype dt, lg_uop *const *src, int32_t n, const lg_arg *a) {
  uint64_t h = XXH3_64bits_withSeed(src, (size_t)n * sizeof *src, ((uint64_t)op << 32) | dt);
  h = mix(h, (uint64_t)a->kind);
  switch (a->kind) {
  case LG_ARG_INT: h = mix(h, (uint64_t)a->i); break;
  case LG_ARG_FLOAT: h = mix(h, float_bits(a->f)); break;
  case LG_ARG_STR_INTS:
  case LG_ARG_STR: h = mix(h, XXH3_64bits(a->s, strlen(a->s))); break;
  default: break;
  }
  if (a->kind == LG_ARG_INTS || a->kind == LG_ARG_STR_INTS)
    h = mix(h, XXH3_64bits(a->ints, (size_t)a->n * sizeof *a->ints));
  return h;
}

bool lg_arg_equal(const lg_arg *a, const lg_arg *b) {
  if (a->kind != b->kind) return false;
  switch (a->kind) {
  case LG_ARG_NONE: return true;
  case LG_ARG_INT: return a->i == b->i;
  case LG_ARG_FLOAT: return float_bits(a->f) == float_bits(b->f);
  case LG_ARG_STR: return strcmp(a->s, b->s) == 0;
  case LG_ARG_STR_INTS:
    if (strcmp(a->s, b->s) != 0) return false;
    /* fallthrough */
  case LG_ARG_INTS:
    return a->n == b->n && (a->n == 0 || memcmp(a->ints, b->ints, (size_t)a->n * sizeof *a->ints) == 0);
  default: return false;
  }
}

static size_t node_bytes(int32_t n, const lg_arg *a, int32_t ndim) {
  size_t bytes = sizeof(lg_uop) + (size_t)n * sizeof(lg_uop *);
  if (a->kind == LG_ARG_INTS || a->kind == LG_ARG_STR_INTS) bytes += (size_t)a->n * sizeof(int64_t);
  if (ndim > 0) bytes += (size_t)ndim * sizeof(int64_t);
  if (a->kind == LG_ARG_STR || a->kind == LG_ARG_STR_INTS) bytes += strlen(a->s) + 1;
  return bytes;
}

static lg_status grow_table(lg_ctx *ctx) {
  uint64_t nb = ctx->nbuckets * 2;
  lg_uop **buckets = calloc(nb, sizeof *buckets);
  if (!buckets) return LG_ERR_NOMEM;
  for (uint64_t b = 0; b < ctx->nbuckets; b++) {
    lg_uop *u = ctx->buckets[b];
    while (u) {
      lg_uop *next = u->next;
      uint64_t j = u->hash & (nb - 1);
      u->next = buckets[j];
      buckets[j] = u;
      u = next;
    }
  }
  free(ctx->buckets);
  ctx->buckets = buckets;
  ctx->nbuckets = nb;
  return LG_OK;
}

/* Check and canonicalise a CONST's arg against its dtype, so equal values intern to one node. */
static lg_status const_arg(lg_ctx *ctx, lg_dtype dt, const lg_arg *in, lg_arg *out) {
  char name[64];
  if (!lg_dt_is_plain(dt) || lg_dtype_kind(dt) == 'v') {
    lg_dtype_name(dt, name, sizeof name);
    return lg_ctx_fail(ctx, LG_ERR_ARG, "CONST: dtype must be a scalar, got %s", name);
  }
  *out = (lg_arg){.kind = in->kind};
  if (lg_dt_is_float(dt)) {
    if (in->kind != LG_ARG_FLOAT && in->kind != LG_ARG_INT)
      return lg_ctx_fail(ctx, LG_ERR_ARG, "CONST: a float constant needs a number arg");
    out->kind = LG_ARG_FLOAT;
    out->f = in->kind == LG_ARG_INT ? lg_int_to_float(dt, in->i, false)
             : isnan(in->f)         ? NAN
                                    : lg_round_float(dt, in->f);
  } else {
    if (in->kind != LG_ARG_INT)
      return lg_ctx_fail(ctx, LG_ERR_ARG, "CONST: an integer or bool constant needs an integer arg");
    out->i = lg_dtype_kind(dt) == 'b' ? (in->i != 0) : lg_wrap_int(dt, in->i);
  }
  return LG_OK;
}

/* Only BUFFER, IOTA, the movement ops, REDUCE_AXIS and nodes over a shaped source can have a shape
 * (core/shape.c): kernel-level nodes skip the shape rules. */
static inline bool may_have_shape(int32_t op, lg_uop *const *src, int32_t n) {
  if (op == LG_OP_BUFFER || op == LG_OP_IOTA || op == LG_OP_REDUCE_AXIS || lg_op_has(op, LG_OPF_MOVE)) return true;
  for (int32_t i = 0; i < n; i++)
    if (src[i]->ndim >= 0) return true;
  return false;
}

lg_status lg_uop_new(lg_ctx *ctx, int32_t op, lg_dtype dtype, lg_uop *const *src, int32_t n,
                     const lg_arg *arg, lg_uop **out) {
  static const lg_arg none = {0};
  lg_arg canon;
  *out = NULL;
  if (op < 0 || op >= LG_OP__COUNT) return lg_ctx_fail(ctx, LG_ERR_ARG, "uop: unknown op %d", op);
  const lg_opinfo *info = &lg_ops[op];
  if (n < info->min_src || (info->max_src >= 0 && n > info->max_src)) {
    if (info->max_src < 0)
      return lg_ctx_fail(ctx, LG_ERR_ARG, "%s: takes at least %d sources, got %d", info->name, info->min_src, n);
    if (info->min_src == info->max_src)
      return lg_ctx_fail(ctx, LG_ERR_ARG, "%s: takes %d sources, got %d", info->name, info->min_src, n);
    return lg_ctx_fail(ctx, LG_ERR_ARG, "%s: takes %d to %d sources, got %d", info->name, info->min_src,
                       info->max_src, n);
  }
  if (!lg_dtype_is_valid(dtype)) return lg_ctx_fail(ctx, LG_ERR_ARG, "%s: invalid dtype 0x%x", info->name, dtype);
  for (int32_t i = 0; i < n; i++)
    if (!src[i]) return lg_ctx_fail(ctx, LG_ERR_ARG, "%s: source %d is missing", info->name, i);
  if (!arg) arg = &none;
  if (arg->kind < LG_ARG_NONE || arg->kind > LG_ARG_STR_INTS || arg->n < 0 ||
      ((arg->kind == LG_ARG_STR || arg->kind == LG_ARG_STR_INTS) && !arg->s) ||
      ((arg->kind == LG_ARG_INTS || arg->kind == LG_ARG_STR_INTS) && arg->n > 0 && !arg->ints))
    return lg_ctx_fail(ctx, LG_ERR_ARG, "%s: malformed arg (kind %d)", info->name, arg->kind);
  if (op == LG_OP_CONST) {
    lg_status st = const_arg(ctx, dtype, arg, &canon);
    if (st) return st;
    arg = &canon;
  }

  uint64_t h = hash_node(op, dtype, src, n, arg);
  for (lg_uop *u = ctx->buckets[h & (ctx->nbuckets - 1)]; u; u = u->next) {
    if (u->hash == h && u->op == op && u->dtype == dtype && u->nsrc == n &&
        (n == 0 || memcmp(u->src, src, (size_t)n * sizeof *src) == 0) && lg_arg_equal(&u->arg, arg)) {
      u->refcnt++;
      *out = u;
      return LG_OK;
    }
  }

  /* a new node: its shape is derived (an equal node found above has the same one) */
  int32_t ndim = -1;
  int64_t dims[LG_MAX_DIMS];
  if (may_have_shape(op, src, n)) {
    lg_status st = lg_shape_infer(ctx, op, dtype, src, n, arg, &ndim, dims);
    if (st) return st;
  }
  size_t bytes = node_bytes(n, arg, ndim);
  lg_uop *u = malloc(bytes);
  if (!u) return lg_ctx_fail(ctx, LG_ERR_NOMEM, "%s: out of memory", info->name);
  *u = (lg_uop){.ctx = ctx, .hash = h, .refcnt = 1, .op = op, .nsrc = n, .dtype = dtype,
                .ndim = ndim, .arg = *arg};
  for (int32_t i = 0; i < n; i++) u->src[i] = lg_uop_retain(src[i]);
  char *tail = (char *)&u->src[n];
  if (arg->kind == LG_ARG_INTS || arg->kind == LG_ARG_STR_INTS) {
    if (arg->n) memcpy(tail, arg->ints, (size_t)arg->n * sizeof(int64_t));
    u->arg.ints = (const int64_t *)tail;
    tail += (size_t)arg->n * sizeof(int64_t);
  } else {
    u->arg.ints = NULL;
  }
  if (ndim >= 0) {
    if (ndim) memcpy(tail, dims, (size_t)ndim * sizeof(int64_t));
    u->shape = (const int64_t *)tail;
    tail += (size_t)ndim * sizeof(int64_t);
  }
  if (arg->kind == LG_ARG_STR || arg->kind == LG_ARG_STR_INTS) {
    strcpy(tail, arg->s);
    u->arg.s = tail;
  } else {
    u->arg.s = NULL;
  }
  lg_vrange_compute(u);

  lg_uop **bucket = &ctx->buckets[h & (ctx->nbuckets - 1)];
  u->next = *bucket;
  *bucket = u;
  ctx->live_nodes++;
  ctx->live_bytes += (int64_t)bytes;
  if ((uint64_t)ctx->live_nodes > ctx->nbuckets) grow_table(ctx); /* on failure chains just get longer */
  *out = u;
  return LG_OK;
}

lg_status lg_uop_const_int(lg_ctx *ctx, lg_dtype dtype, int64_t v, lg_uop **out) {
  lg_arg a = {.kind = LG_ARG_INT, .i = v};
  return lg_uop_new(ctx, LG_OP_CONST, dtype, NULL, 0, &a, out);
}

lg_status lg_uop_const_float(lg_ctx *ctx, lg_dtype dtype, double v, lg_uop **out) {
  lg_arg a = {.kind = LG_ARG_FLOAT, .f = v};
  if (lg_dt_is_plain(dtype) && !lg_dt_is_float(dtype) && lg_dtype_kind(dtype) != 'v') {
    /* C conversion of a float to an integer type; out-of-range values are an error there. */
    char name[32];
    lg_dtype_name(dtype, name, sizeof name);
    if (isnan(v)) return lg_ctx_fail(ctx, LG_ERR_ARG, "CONST: nan does not convert to %s", name);
    if (lg_dtype_kind(dtype) == 'b') {
      a = (lg_arg){.kind = LG_ARG_INT, .i = v != 0};
    } else {
      double t = trunc(v);
      if (!(t >= -9223372036854775808.0 && t < 18446744073709551616.0))
        return lg_ctx_fail(ctx, LG_ERR_ARG, "CONST: %g is out of range for %s", v, name);
      a = (lg_arg){.kind = LG_ARG_INT, .i = t >= 9223372036854775808.0 ? (int64_t)(uint64_t)t : (int64_t)t};
    }
  }
  return lg_uop_new(ctx, LG_OP_CONST, dtype, NULL, 0, &a, out);
}

lg_uop *lg_uop_retain(lg_uop *u) {
  if (u) u->refcnt++;
  return u;
}

static void unlink_node(lg_uop *u) {
  lg_ctx *ctx = u->ctx;
  lg_uop **p = &ctx->buckets[u->hash & (ctx->nbuckets - 1)];
  while (*p != u) p = &(*p)->next;
  *p = u->next;
  ctx->live_nodes--;
  ctx->live_bytes -= (int64_t)node_bytes(u->nsrc, &u->arg, u->ndim);
}

void lg_uop_release(lg_uop *u) {
  if (!u || --u->refcnt) return;
  /* Freed nodes are unlinked from the table, so `next` is free to chain the work list: no
   * recursion, whatever the depth of the graph. */
  unlink_node(u);
  u->next = NULL;
  while (u) {
    lg_uop *n = u;
    u = u->next;
    for (int32_t i = 0; i < n->nsrc; i++) {
      lg_uop *s = n->src[i];
      if (--s->refcnt == 0) {
        unlink_node(s);
        s->next = u;
        u = s;
      }
    }
    lg_buffer_release(n->buf);
    free(n);
  }
}

int32_t lg_uop_op(const lg_uop *u) { return u->op; }
lg_dtype lg_uop_dtype(const lg_uop *u) { return u->dtype; }
int32_t lg_uop_nsrc(const lg_uop *u) { return u->nsrc; }
lg_uop *lg_uop_src(const lg_uop *u, int32_t i) { return (i >= 0 && i < u->nsrc) ? u->src[i] : NULL; }
const lg_arg *lg_uop_arg(const lg_uop *u) { return &u->arg; }
uint64_t lg_uop_hash(const lg_uop *u) { return u->hash; }
uint32_t lg_uop_refcount(const lg_uop *u) { return u->refcnt; }
int32_t lg_uop_ndim(const lg_uop *u) { return u->ndim; }
const int64_t *lg_uop_shape(const lg_uop *u) { return u->shape; }

int32_t lg_uop_bounds(const lg_uop *u, int64_t *lo, int64_t *hi) {
  if (!u->has_bounds) return 0;
  if (lo) *lo = u->vmin;
  if (hi) *hi = u->vmax;
  return 1;
}

/* Post-order DFS with an explicit stack of (node, next source) frames. */
int64_t lg_uop_toposort(const lg_uop *root, lg_uop **buf, int64_t cap) {
  typedef struct {
    const lg_uop *u;
    int32_t next;
  } frame;
  lg_ptrmap seen = {0};
  frame *stack = NULL;
  int64_t n = 0, sp = 0, scap = 0;
  if (!lg_ptrmap_put(&seen, root, NULL)) return -1;
  for (const lg_uop *push = root; push || sp;) {
    if (push) {
      if (sp == scap) {
        scap = scap ? scap * 2 : 64;
        frame *s = realloc(stack, (size_t)scap * sizeof *stack);
        if (!s) { n = -1; break; }
        stack = s;
      }
      stack[sp++] = (frame){push, 0};
      push = NULL;
    }
    frame *f = &stack[sp - 1];
    if (f->next < f->u->nsrc) {
      const lg_uop *s = f->u->src[f->next++];
      if (!lg_ptrmap_get(&seen, s, NULL)) {
        if (!lg_ptrmap_put(&seen, s, NULL)) { n = -1; break; }
        push = s;
      }
      continue;
    }
    if (n < cap) buf[n] = (lg_uop *)f->u;
    n++;
    sp--;
  }
  free(stack);
  lg_ptrmap_free(&seen);
  return n;
}

int64_t lg_uop_size(const lg_uop *root) { return lg_uop_toposort(root, NULL, 0); }

lg_status lg_buffer_node(lg_ctx *ctx, lg_buffer *buf, lg_dtype dtype, lg_uop **out) {
  int32_t size = lg_dtype_itemsize(dtype);
  *out = NULL;
  if (!lg_dt_is_plain(dtype) || size < 1 || lg_buffer_size(buf) % size)
    return lg_ctx_fail(ctx, LG_ERR_ARG, "BUFFER: a buffer of %lld bytes does not hold whole elements of this dtype",
                       (long long)lg_buffer_size(buf));
  int64_t arg[2] = {lg_buffer_size(buf) / size, ++ctx->buffer_ids};
  lg_status st = lg_uop_new(ctx, LG_OP_BUFFER, dtype, NULL, 0, &(lg_arg){.kind = LG_ARG_INTS, .n = 2, .ints = arg}, out);
  if (!st) (*out)->buf = lg_buffer_retain(buf);
  return st;
}

lg_buffer *lg_uop_buffer(const lg_uop *u) { return u->buf; }
