/* spec.c: the type checker for graphs: dtypes and args per op. Source counts are checked when a
 * node is built (lg_uop_new); here each node is checked against its sources. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "ptrmap.h"

typedef struct {
  char s[3][48];
} names;

static const char *dtn(names *nm, int32_t slot, lg_dtype dt) {
  lg_dtype_name(dt, nm->s[slot], sizeof nm->s[slot]);
  return nm->s[slot];
}

static lg_status fail(lg_ctx *ctx, const lg_uop *u, const char *fmt, ...) {
  char msg[512], dt[48];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  lg_dtype_name(u->dtype, dt, sizeof dt);
  return lg_ctx_fail(ctx, LG_ERR_SPEC, "spec: %s %s: %s", lg_op_name(u->op), dt, msg);
}

static lg_dtype elem(lg_dtype dt) { return lg_dtype_vec(dt, 1); }

static lg_status check_alu(lg_ctx *ctx, const lg_uop *u) {
  names nm;
  int32_t op = u->op;
  lg_dtype dt = u->dtype;
  bool cmp = lg_op_has(op, LG_OPF_CMP), shift = op == LG_OP_SHL || op == LG_OP_SHR;
  lg_dtype odt = cmp ? u->src[0]->dtype : dt; /* the operands' dtype */
  if (lg_dtype_is_ptr(odt)) return fail(ctx, u, "operands are pointers (%s)", dtn(&nm, 0, odt));
  if (cmp && dt != lg_dtype_vec(LG_DT_BOOL, lg_dtype_lanes(odt)))
    return fail(ctx, u, "result must be %s for %s operands",
                dtn(&nm, 0, lg_dtype_vec(LG_DT_BOOL, lg_dtype_lanes(odt))), dtn(&nm, 1, odt));
  int32_t first = 0;
  if (op == LG_OP_WHERE) {
    lg_dtype c = u->src[0]->dtype;
    if (lg_dtype_kind(c) != 'b' || lg_dtype_is_ptr(c) || (lg_dtype_lanes(c) != 1 && lg_dtype_lanes(c) != lg_dtype_lanes(dt)))
      return fail(ctx, u, "condition is %s, expected bool", dtn(&nm, 0, c));
    first = 1;
  }
  for (int32_t i = first; i < u->nsrc; i++) {
    lg_dtype s = u->src[i]->dtype;
    if (shift && i == 1) {
      if (!lg_dt_is_int(s) || lg_dtype_is_ptr(s) || lg_dtype_lanes(s) != lg_dtype_lanes(dt))
        return fail(ctx, u, "shift amount is %s, expected an integer with %u lanes", dtn(&nm, 0, s),
                    lg_dtype_lanes(dt));
    } else if (s != odt) {
      return fail(ctx, u, "source %d is %s, expected %s", i, dtn(&nm, 0, s), dtn(&nm, 1, odt));
    }
  }
  char k = lg_dtype_kind(odt);
  uint32_t need = k == 'f' ? LG_OPF_FLOATOK : k == 'b' ? LG_OPF_BOOLOK : k == 'v' ? 0 : LG_OPF_INTOK;
  if (!need || !lg_op_has(op, need)) return fail(ctx, u, "not defined on %s values", dtn(&nm, 0, odt));
  return LG_OK;
}

static lg_status check_node(lg_ctx *ctx, const lg_uop *u) {
  names nm;
  lg_dtype dt = u->dtype;
  const lg_arg *a = &u->arg;
  if (lg_op_has(u->op, LG_OPF_ALU)) return check_alu(ctx, u);
  switch (u->op) {
  case LG_OP_CONST:
    if (!lg_dt_is_plain(dt) || lg_dtype_kind(dt) == 'v') return fail(ctx, u, "dtype must be a scalar");
    if (a->kind != (lg_dt_is_float(dt) ? LG_ARG_FLOAT : LG_ARG_INT))
      return fail(ctx, u, "arg kind %d does not match the dtype", a->kind);
    break;
  case LG_OP_DEFINE_VAR:
    if (!lg_dt_is_plain(dt) || !lg_dt_is_int(dt)) return fail(ctx, u, "dtype must be an integer");
    if (a->kind != LG_ARG_STR_INTS || a->n != 2) return fail(ctx, u, "arg must be (name, min, max)");
    if (a->ints[0] > a->ints[1])
      return fail(ctx, u, "\"%s\" has min %lld > max %lld", a->s, (long long)a->ints[0], (long long)a->ints[1]);
    break;
  case LG_OP_RANGE:
    if (!lg_dt_is_plain(dt) || !lg_dt_is_int(dt)) return fail(ctx, u, "dtype must be an integer");
    if (u->src[0]->dtype != dt) return fail(ctx, u, "end is %s, expected %s", dtn(&nm, 0, u->src[0]->dtype), dtn(&nm, 1, dt));
    break;
  case LG_OP_FUNCTION:
    if (u->src[0]->dtype != dt) return fail(ctx, u, "the value is %s", dtn(&nm, 0, u->src[0]->dtype));
    if (u->arg.kind != LG_ARG_STR && u->arg.kind != LG_ARG_STR_INTS)
      return fail(ctx, u, "arg must be a name (and ints)");
    break;
  case LG_OP_BITCAST:
    if (lg_dtype_itemsize(dt) != lg_dtype_itemsize(u->src[0]->dtype))
      return fail(ctx, u, "source %s has %d bytes, %s has %d", dtn(&nm, 0, u->src[0]->dtype),
                  lg_dtype_itemsize(u->src[0]->dtype), dtn(&nm, 1, dt), lg_dtype_itemsize(dt));
    break;
  case LG_OP_SINK:
    if (dt != LG_DT_VOID) return fail(ctx, u, "dtype must be void");
    break;
  case LG_OP_VECTORIZE:
    if (lg_dtype_lanes(dt) != (uint32_t)u->nsrc)
      return fail(ctx, u, "%d sources for %u lanes", u->nsrc, lg_dtype_lanes(dt));
    for (int32_t i = 0; i < u->nsrc; i++)
      if (u->src[i]->dtype != elem(dt))
        return fail(ctx, u, "source %d is %s, expected %s", i, dtn(&nm, 0, u->src[i]->dtype), dtn(&nm, 1, elem(dt)));
    break;
  case LG_OP_GEP: {
    lg_dtype s = u->src[0]->dtype;
    if (a->kind != LG_ARG_INTS || a->n < 1) return fail(ctx, u, "arg must be a list of lane indices");
    if (lg_dtype_lanes(dt) != (uint32_t)a->n || elem(dt) != elem(s))
      return fail(ctx, u, "%d lanes of %s do not give %s", a->n, dtn(&nm, 0, s), dtn(&nm, 1, dt));
    for (int32_t i = 0; i < a->n; i++)
      if (a->ints[i] < 0 || a->ints[i] >= (int64_t)lg_dtype_lanes(s))
        return fail(ctx, u, "lane %lld is out of range for %s", (long long)a->ints[i], dtn(&nm, 0, s));
    break;
  }
  case LG_OP_INDEX:
    if (!lg_dtype_is_ptr(u->src[0]->dtype)) return fail(ctx, u, "buffer is %s, not a pointer", dtn(&nm, 0, u->src[0]->dtype));
    break;
  case LG_OP_LOAD:
  case LG_OP_STORE:
    if (!lg_dtype_is_ptr(u->src[0]->dtype) && u->src[0]->op != LG_OP_INDEX)
      return fail(ctx, u, "address is %s %s, not a pointer or INDEX", lg_op_name(u->src[0]->op), dtn(&nm, 0, u->src[0]->dtype));
    break;
  default: break;
  }
  return LG_OK;
}

lg_status lg_uop_verify(lg_ctx *ctx, lg_uop *root) {
  lg_ptrmap seen = {0};
  lg_uop **stack = NULL;
  size_t sp = 0, cap = 0;
  lg_status st = LG_OK;
  if (!root) return lg_ctx_fail(ctx, LG_ERR_ARG, "spec: no graph");
  if (!lg_ptrmap_put(&seen, root, NULL)) return lg_ctx_fail(ctx, LG_ERR_NOMEM, "spec: out of memory");
  for (lg_uop *u = root; u && !st; u = sp ? stack[--sp] : NULL) {
    if ((st = check_node(ctx, u))) break;
    for (int32_t i = 0; i < u->nsrc && !st; i++) {
      lg_uop *s = u->src[i];
      if (lg_ptrmap_get(&seen, s, NULL)) continue;
      if (sp == cap) {
        size_t ncap = cap ? cap * 2 : 64;
        lg_uop **ns = realloc(stack, ncap * sizeof *ns);
        if (!ns) { st = LG_ERR_NOMEM; break; }
        stack = ns, cap = ncap;
      }
      if (!lg_ptrmap_put(&seen, s, NULL)) st = LG_ERR_NOMEM;
      stack[sp++] = s;
    }
  }
  free(stack);
  lg_ptrmap_free(&seen);
  if (st == LG_ERR_NOMEM) return lg_ctx_fail(ctx, LG_ERR_NOMEM, "spec: out of memory");
  return st;
}
