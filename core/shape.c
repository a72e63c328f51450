/* shape.c: shapes of tensor-level nodes, computed and checked when a node is built (lg_uop_new,
 * for nodes that can have one, calls lg_shape_infer before it allocates: a bad shape builds
 * nothing; core/uop.c may_have_shape says which). Conventions:
 *   - ndim == -1: no shape. Kernel-level nodes (RANGE, INDEX, LOAD, DEFINE_*, SINK, ...) and
 *     plain CONSTs (shapeless scalars) have none; so does any op outside the list below, and an
 *     elementwise node none of whose sources has a shape. ndim == 0 is a shaped scalar, shape ().
 *   - Sizes are int64 >= 0, at most LG_MAX_DIMS axes; the product of the sizes (a 0 counted as 1,
 *     so strides stay representable) must fit in int64.
 *   - BUFFER: arg (size, id) (id keeps distinct buffers distinct nodes); no source, or one DEVICE
 *     named by a string arg. Shape (size).
 *   - RESHAPE: arg the new shape; element counts must match. A shapeless source counts as one
 *     element, so RESHAPE(CONST, ()) is how a tensor-level scalar constant starts.
 *   - PERMUTE: arg a permutation of 0..ndim-1; result axis i is source axis arg[i].
 *   - EXPAND: arg the new shape, same ndim; only axes of size 1 change (to any size, 0 included).
 *   - PAD: arg (before, after) per axis, >= 0. SHRINK: arg (start, end) per axis,
 *     0 <= start <= end <= size. FLIP: arg 0 or 1 per axis. These and PERMUTE, EXPAND and
 *     REDUCE_AXIS need a shaped source.
 *   - Elementwise (ALU ops, CAST, BITCAST, CONTIGUOUS, DETACH, COPY): every shaped source has
 *     the same shape, which is the result's; shapeless CONSTs may stand among them as scalars.
 *     COPY's second source (the target DEVICE) is not a value. A shaped BITCAST keeps the itemsize.
 *   - REDUCE_AXIS: arg (op name, axis...), op "ADD", "MAX" or "MUL", axes distinct
 *     and in range (none: the identity); reduced axes keep size 1 (keepdim).
 *   - ASSIGN(target, value): both shapeless, or both of one shape, the result's.
 * Messages name the op and show shapes as (3,4), axes 0-based: `ADD: shapes (3,4) and (3,5)
 * differ`. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* "(3,4)": at most LG_MAX_DIMS values of 20 characters, then ",..." */
typedef struct {
  char s[LG_MAX_DIMS * 21 + 8];
} dims_text;

static const char *fmt_dims(dims_text *t, int32_t n, const int64_t *d) {
  size_t len = 1;
  t->s[0] = '(';
  for (int32_t i = 0; i < n && i < LG_MAX_DIMS; i++)
    len += (size_t)snprintf(t->s + len, sizeof t->s - len, "%s%lld", i ? "," : "", (long long)d[i]);
  snprintf(t->s + len, sizeof t->s - len, "%s)", n > LG_MAX_DIMS ? ",..." : "");
  return t->s;
}

static const char *fmt_shape(dims_text *t, const lg_uop *u) { return fmt_dims(t, u->ndim, u->shape); }

static lg_status fail(lg_ctx *ctx, int32_t op, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static lg_status fail(lg_ctx *ctx, int32_t op, const char *fmt, ...) {
  char msg[sizeof ctx->err];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return lg_ctx_fail(ctx, LG_ERR_ARG, "%s: %s", lg_op_name(op), msg);
}

static const char *arg_kind_text(const lg_arg *a) {
  static const char *const names[] = {"no arg", "an int arg", "a float arg", "a string arg", "an ints arg",
                                      "a (name, ints) arg"};
  return names[a->kind];
}

/* arg must be `want` ints; `what` says what they are */
static lg_status need_ints(lg_ctx *ctx, int32_t op, const lg_arg *a, int32_t want, const char *what,
                           const lg_uop *s) {
  if (a->kind == LG_ARG_INTS && a->n == want) return LG_OK;
  dims_text t;
  if (a->kind == LG_ARG_INTS)
    return fail(ctx, op, "arg must be %d ints (%s of %s), got %d", want, what, fmt_shape(&t, s), a->n);
  return fail(ctx, op, "arg must be %d ints (%s of %s), got %s", want, what, fmt_shape(&t, s), arg_kind_text(a));
}

static bool same_dims(const lg_uop *a, const lg_uop *b) {
  return a->ndim == b->ndim && (a->ndim <= 0 || memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof *a->shape) == 0);
}

/* The element count, or -1 when the product of the sizes (a 0 counted as 1) overflows int64. */
static int64_t numel(int32_t n, const int64_t *d) {
  int64_t prod = 1;
  bool zero = false;
  for (int32_t i = 0; i < n; i++) {
    if (d[i] == 0) zero = true;
    else if (__builtin_mul_overflow(prod, d[i], &prod)) return -1;
  }
  return zero ? 0 : prod;
}

/* A new shape from an arg: sizes >= 0, at most LG_MAX_DIMS of them, a count that fits. */
static lg_status check_sizes(lg_ctx *ctx, int32_t op, int32_t n, const int64_t *d) {
  dims_text t;
  if (n > LG_MAX_DIMS) return fail(ctx, op, "%s has %d axes, at most %d", fmt_dims(&t, n, d), n, LG_MAX_DIMS);
  for (int32_t i = 0; i < n; i++)
    if (d[i] < 0) return fail(ctx, op, "%s has a negative size", fmt_dims(&t, n, d));
  if (numel(n, d) < 0) return fail(ctx, op, "%s has too many elements (overflows int64)", fmt_dims(&t, n, d));
  return LG_OK;
}

static lg_status buffer_shape(lg_ctx *ctx, lg_uop *const *src, int32_t n, const lg_arg *a, int32_t *ndim,
                              int64_t *dims) {
  if (a->kind == LG_ARG_INTS && a->n != 2) return fail(ctx, LG_OP_BUFFER, "arg must be (size, id), got %d ints", a->n);
  if (a->kind != LG_ARG_INTS) return fail(ctx, LG_OP_BUFFER, "arg must be (size, id), got %s", arg_kind_text(a));
  if (a->ints[0] < 0) return fail(ctx, LG_OP_BUFFER, "size %lld is negative", (long long)a->ints[0]);
  if (n == 1 && src[0]->op != LG_OP_DEVICE)
    return fail(ctx, LG_OP_BUFFER, "the source is a %s, not a DEVICE", lg_op_name(src[0]->op));
  if (n == 1 && src[0]->arg.kind != LG_ARG_STR)
    return fail(ctx, LG_OP_BUFFER, "the DEVICE source has %s, not a name", arg_kind_text(&src[0]->arg));
  *ndim = 1;
  dims[0] = a->ints[0];
  return LG_OK;
}

static lg_status reshape_shape(lg_ctx *ctx, const lg_uop *s, const lg_arg *a, int32_t *ndim, int64_t *dims) {
  if (a->kind != LG_ARG_INTS)
    return fail(ctx, LG_OP_RESHAPE, "arg must be the new shape (ints), got %s", arg_kind_text(a));
  lg_status st = check_sizes(ctx, LG_OP_RESHAPE, a->n, a->ints);
  if (st) return st;
  int64_t from = s->ndim < 0 ? 1 : numel(s->ndim, s->shape), to = numel(a->n, a->ints);
  if (from != to) {
    dims_text t1, t2;
    return fail(ctx, LG_OP_RESHAPE, "%s has %lld element%s, %s has %lld",
                s->ndim < 0 ? "a shapeless scalar" : fmt_shape(&t1, s), (long long)from, from == 1 ? "" : "s",
                fmt_dims(&t2, a->n, a->ints), (long long)to);
  }
  *ndim = a->n;
  if (a->n) memcpy(dims, a->ints, (size_t)a->n * sizeof *dims);
  return LG_OK;
}

static lg_status permute_shape(lg_ctx *ctx, const lg_uop *s, const lg_arg *a, int32_t *ndim, int64_t *dims) {
  int32_t nd = s->ndim;
  if (a->kind != LG_ARG_INTS) return need_ints(ctx, LG_OP_PERMUTE, a, nd, "a permutation of the axes", s);
  uint32_t seen = 0;
  bool ok = a->n == nd;
  for (int32_t i = 0; ok && i < nd; i++) {
    int64_t p = a->ints[i];
    ok = p >= 0 && p < nd && !(seen & (1u << p));
    if (ok) seen |= 1u << p, dims[i] = s->shape[p];
  }
  dims_text t;
  if (!ok) return fail(ctx, LG_OP_PERMUTE, "%s is not a permutation of %d axes", fmt_dims(&t, a->n, a->ints), nd);
  *ndim = nd;
  return LG_OK;
}

static lg_status expand_shape(lg_ctx *ctx, const lg_uop *s, const lg_arg *a, int32_t *ndim, int64_t *dims) {
  if (a->kind != LG_ARG_INTS)
    return fail(ctx, LG_OP_EXPAND, "arg must be the new shape (ints), got %s", arg_kind_text(a));
  lg_status st = check_sizes(ctx, LG_OP_EXPAND, a->n, a->ints);
  if (st) return st;
  dims_text t1, t2;
  if (a->n != s->ndim)
    return fail(ctx, LG_OP_EXPAND, "cannot expand %s to %s: %d axes vs %d", fmt_shape(&t1, s),
                fmt_dims(&t2, a->n, a->ints), s->ndim, a->n);
  for (int32_t i = 0; i < a->n; i++)
    if (a->ints[i] != s->shape[i] && s->shape[i] != 1)
      return fail(ctx, LG_OP_EXPAND, "cannot expand %s to %s: axis %d has size %lld, not 1", fmt_shape(&t1, s),
                  fmt_dims(&t2, a->n, a->ints), i, (long long)s->shape[i]);
  *ndim = a->n;
  if (a->n) memcpy(dims, a->ints, (size_t)a->n * sizeof *dims);
  return LG_OK;
}

static lg_status pad_shape(lg_ctx *ctx, const lg_uop *s, const lg_arg *a, int32_t *ndim, int64_t *dims) {
  lg_status st = need_ints(ctx, LG_OP_PAD, a, 2 * s->ndim, "before, after per axis", s);
  if (st) return st;
  dims_text t;
  for (int32_t i = 0; i < s->ndim; i++) {
    int64_t before = a->ints[2 * i], after = a->ints[2 * i + 1];
    if (before < 0 || after < 0)
      return fail(ctx, LG_OP_PAD, "axis %d of %s: padding (%lld,%lld) is negative", i, fmt_shape(&t, s),
                  (long long)before, (long long)after);
    if (__builtin_add_overflow(s->shape[i], before, &dims[i]) || __builtin_add_overflow(dims[i], after, &dims[i]))
      return fail(ctx, LG_OP_PAD, "axis %d of %s: padding (%lld,%lld) overflows int64", i, fmt_shape(&t, s),
                  (long long)before, (long long)after);
  }
  if (numel(s->ndim, dims) < 0)
    return fail(ctx, LG_OP_PAD, "%s has too many elements (overflows int64)", fmt_dims(&t, s->ndim, dims));
  *ndim = s->ndim;
  return LG_OK;
}

static lg_status shrink_shape(lg_ctx *ctx, const lg_uop *s, const lg_arg *a, int32_t *ndim, int64_t *dims) {
  lg_status st = need_ints(ctx, LG_OP_SHRINK, a, 2 * s->ndim, "start, end per axis", s);
  if (st) return st;
  for (int32_t i = 0; i < s->ndim; i++) {
    int64_t start = a->ints[2 * i], end = a->ints[2 * i + 1];
    if (!(start >= 0 && start <= end && end <= s->shape[i])) {
      dims_text t;
      return fail(ctx, LG_OP_SHRINK, "axis %d of %s: (%lld,%lld) is not a range within 0..%lld", i,
                  fmt_shape(&t, s), (long long)start, (long long)end, (long long)s->shape[i]);
    }
    dims[i] = end - start;
  }
  *ndim = s->ndim;
  return LG_OK;
}

static lg_status flip_shape(lg_ctx *ctx, const lg_uop *s, const lg_arg *a, int32_t *ndim, int64_t *dims) {
  lg_status st = need_ints(ctx, LG_OP_FLIP, a, s->ndim, "0 or 1 per axis", s);
  if (st) return st;
  for (int32_t i = 0; i < s->ndim; i++) {
    if (a->ints[i] != 0 && a->ints[i] != 1) {
      dims_text t;
      return fail(ctx, LG_OP_FLIP, "arg %s must hold 0 or 1 per axis", fmt_dims(&t, a->n, a->ints));
    }
  }
  *ndim = s->ndim;
  if (s->ndim) memcpy(dims, s->shape, (size_t)s->ndim * sizeof *dims);
  return LG_OK;
}

static lg_status reduce_shape(lg_ctx *ctx, const lg_uop *s, const lg_arg *a, int32_t *ndim, int64_t *dims) {
  if (a->kind != LG_ARG_STR_INTS)
    return fail(ctx, LG_OP_REDUCE_AXIS, "arg must be (op name, axis...), got %s", arg_kind_text(a));
  if (strcmp(a->s, "ADD") != 0 && strcmp(a->s, "MAX") != 0 && strcmp(a->s, "MUL") != 0)
    return fail(ctx, LG_OP_REDUCE_AXIS, "the reduce op must be ADD, MAX or MUL, got %s", a->s);
  if (s->ndim) memcpy(dims, s->shape, (size_t)s->ndim * sizeof *dims);
  uint32_t seen = 0;
  dims_text t;
  for (int32_t i = 0; i < a->n; i++) {
    int64_t ax = a->ints[i];
    if (ax < 0 || ax >= s->ndim)
      return fail(ctx, LG_OP_REDUCE_AXIS, "axis %lld is out of range for %s", (long long)ax, fmt_shape(&t, s));
    if (seen & (1u << ax)) return fail(ctx, LG_OP_REDUCE_AXIS, "axis %lld appears twice", (long long)ax);
    seen |= 1u << ax;
    dims[ax] = 1;
  }
  *ndim = s->ndim;
  return LG_OK;
}

/* ALU ops, CAST, BITCAST, CONTIGUOUS, DETACH, COPY (and FUNCTION, given its value only): one shape
 * over the shaped sources. */
static lg_status elementwise_shape(lg_ctx *ctx, int32_t op, lg_dtype dtype, lg_uop *const *src, int32_t n,
                                   int32_t *ndim, int64_t *dims) {
  const lg_uop *first = NULL;
  int32_t ifirst = -1, bare = -1;
  if (op == LG_OP_COPY) n = 1; /* COPY(value [, DEVICE]) */
  dims_text t1, t2;
  for (int32_t i = 0; i < n; i++) {
    const lg_uop *s = src[i];
    if (s->ndim < 0) {
      if (s->op != LG_OP_CONST && bare < 0) bare = i;
    } else if (!first) {
      first = s, ifirst = i;
    } else if (!same_dims(first, s)) {
      return fail(ctx, op, "shapes %s and %s differ", fmt_shape(&t1, first), fmt_shape(&t2, s));
    }
  }
  if (!first) return LG_OK;
  if (bare >= 0)
    return fail(ctx, op, "source %d (%s) has no shape, source %d has %s", bare, lg_op_name(src[bare]->op), ifirst,
                fmt_shape(&t1, first));
  if (op == LG_OP_BITCAST && lg_dtype_itemsize(dtype) != lg_dtype_itemsize(first->dtype)) {
    char from[48], to[48];
    lg_dtype_name(first->dtype, from, sizeof from);
    lg_dtype_name(dtype, to, sizeof to);
    return fail(ctx, op, "%s to %s changes the itemsize (%d to %d bytes)", from, to, lg_dtype_itemsize(first->dtype),
                lg_dtype_itemsize(dtype));
  }
  *ndim = first->ndim;
  if (first->ndim) memcpy(dims, first->shape, (size_t)first->ndim * sizeof *dims);
  return LG_OK;
}

static lg_status assign_shape(lg_ctx *ctx, const lg_uop *target, const lg_uop *value, int32_t *ndim, int64_t *dims) {
  dims_text t1, t2;
  if (target->ndim < 0 && value->ndim < 0) return LG_OK;
  if (target->ndim < 0)
    return fail(ctx, LG_OP_ASSIGN, "the target (%s) has no shape, the value has %s", lg_op_name(target->op),
                fmt_shape(&t1, value));
  if (value->ndim < 0)
    return fail(ctx, LG_OP_ASSIGN, "the value (%s) has no shape, the target has %s", lg_op_name(value->op),
                fmt_shape(&t1, target));
  if (!same_dims(target, value))
    return fail(ctx, LG_OP_ASSIGN, "target %s and value %s differ", fmt_shape(&t1, target), fmt_shape(&t2, value));
  *ndim = target->ndim;
  if (target->ndim) memcpy(dims, target->shape, (size_t)target->ndim * sizeof *dims);
  return LG_OK;
}

lg_status lg_shape_infer(lg_ctx *ctx, int32_t op, lg_dtype dtype, lg_uop *const *src, int32_t n, const lg_arg *arg,
                         int32_t *ndim, int64_t *dims) {
  *ndim = -1;
  const lg_uop *s = n ? src[0] : NULL;
  switch (op) {
  case LG_OP_BUFFER: return buffer_shape(ctx, src, n, arg, ndim, dims);
  case LG_OP_IOTA:
    if (arg->kind != LG_ARG_INTS || arg->n != 1 || arg->ints[0] < 0)
      return fail(ctx, LG_OP_IOTA, "arg must be (n) with n >= 0, got %s", arg_kind_text(arg));
    if (lg_dtype_scalar(dtype) != LG_DT_INT32) return fail(ctx, LG_OP_IOTA, "the dtype must be int32");
    *ndim = 1;
    dims[0] = arg->ints[0];
    return LG_OK;
  case LG_OP_RESHAPE: return reshape_shape(ctx, s, arg, ndim, dims);
  case LG_OP_ASSIGN: return assign_shape(ctx, s, src[1], ndim, dims);
  case LG_OP_PERMUTE:
  case LG_OP_EXPAND:
  case LG_OP_PAD:
  case LG_OP_SHRINK:
  case LG_OP_FLIP:
  case LG_OP_REDUCE_AXIS:
    if (s->ndim < 0) return fail(ctx, op, "the source (%s) has no shape", lg_op_name(s->op));
    if (op == LG_OP_PERMUTE) return permute_shape(ctx, s, arg, ndim, dims);
    if (op == LG_OP_EXPAND) return expand_shape(ctx, s, arg, ndim, dims);
    if (op == LG_OP_PAD) return pad_shape(ctx, s, arg, ndim, dims);
    if (op == LG_OP_SHRINK) return shrink_shape(ctx, s, arg, ndim, dims);
    if (op == LG_OP_FLIP) return flip_shape(ctx, s, arg, ndim, dims);
    return reduce_shape(ctx, s, arg, ndim, dims);
  case LG_OP_CAST:
  case LG_OP_BITCAST:
  case LG_OP_CONTIGUOUS:
  case LG_OP_DETACH:
  case LG_OP_COPY: return elementwise_shape(ctx, op, dtype, src, n, ndim, dims);
  case LG_OP_FUNCTION: return elementwise_shape(ctx, op, dtype, src, 1, ndim, dims); /* the value's */
  default:
    if (lg_op_has(op, LG_OPF_ALU)) return elementwise_shape(ctx, op, dtype, src, n, ndim, dims);
    return LG_OK; /* kernel-level ops have no shape, whatever their sources */
  }
}
