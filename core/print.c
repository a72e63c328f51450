/* print.c: the text form of a graph, one line per node, sources before their users:
 *   %0 = DEFINE_VAR int32 ("i", 0, 9)
 *   %1 = CONST int32 4
 *   %2 = MUL int32 %0 %1
 * A shaped (tensor-level) node shows its shape after the dtype: %3 = ADD float32 (3,4) %1 %2 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "ptrmap.h"

typedef struct {
  char *p;
  size_t len, cap;
  bool oom;
} buf;

static void put(buf *b, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
  va_end(ap);
  if (n >= 0 && !b->oom && b->len + (size_t)n >= b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (b->len + (size_t)n >= cap) cap *= 2;
    char *p = realloc(b->p, cap);
    if (p) {
      b->p = p, b->cap = cap;
      vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap2);
    } else {
      b->oom = true;
    }
  }
  va_end(ap2);
  if (n >= 0 && !b->oom) b->len += (size_t)n;
}

/* the shortest %g form that reads back as the same double */
static void put_float(buf *b, double f) {
  char s[32];
  if (isnan(f) || isinf(f)) {
    put(b, "%s", isnan(f) ? "nan" : f < 0 ? "-inf" : "inf");
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(s, sizeof s, "%.*g", prec, f);
    if (strtod(s, NULL) == f) break;
  }
  put(b, "%s", s);
}

static void put_str(buf *b, const char *s) {
  put(b, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') put(b, "\\%c", c);
    else if (c < 0x20 || c == 0x7f) put(b, "\\x%02x", c);
    else put(b, "%c", c);
  }
  put(b, "\"");
}

static void put_arg(buf *b, const lg_uop *u) {
  const lg_arg *a = &u->arg;
  switch (a->kind) {
  case LG_ARG_INT:
    if (u->op == LG_OP_CONST && lg_dtype_kind(u->dtype) == 'b') put(b, " %s", a->i ? "true" : "false");
    else if (u->op == LG_OP_CONST && lg_dtype_kind(u->dtype) == 'u') put(b, " %llu", (unsigned long long)(uint64_t)a->i);
    else put(b, " %lld", (long long)a->i);
    break;
  case LG_ARG_FLOAT: put(b, " "), put_float(b, a->f); break;
  case LG_ARG_STR: put(b, " "), put_str(b, a->s); break;
  case LG_ARG_INTS:
  case LG_ARG_STR_INTS:
    put(b, " (");
    if (a->kind == LG_ARG_STR_INTS) put_str(b, a->s), put(b, a->n ? ", " : "");
    for (int32_t i = 0; i < a->n; i++) put(b, "%s%lld", i ? ", " : "", (long long)a->ints[i]);
    put(b, ")");
    break;
  default: break;
  }
}

typedef struct {
  const lg_uop *u;
  int32_t next; /* the next source to visit */
} frame;

/* ids are stored in the map as id + 1, so a node on the stack (no id yet) maps to 0 */
static int64_t id_of(const lg_ptrmap *ids, const lg_uop *u) {
  void *v = NULL;
  lg_ptrmap_get(ids, u, &v);
  return (int64_t)(intptr_t)v - 1;
}

lg_status lg_uop_format(lg_ctx *ctx, lg_uop *root, char **out) {
  *out = NULL;
  if (!root) return lg_ctx_fail(ctx, LG_ERR_ARG, "format: no graph");
  buf b = {0};
  lg_ptrmap ids = {0};
  frame *stack = malloc(64 * sizeof *stack);
  size_t sp = 0, cap = 64;
  int64_t next_id = 0;
  bool oom = !stack || !lg_ptrmap_put(&ids, root, NULL);
  if (!oom) stack[sp++] = (frame){root, 0};
  while (sp && !oom) {
    frame *f = &stack[sp - 1];
    if (f->next < f->u->nsrc) {
      const lg_uop *s = f->u->src[f->next++];
      if (lg_ptrmap_get(&ids, s, NULL)) continue;
      if (sp == cap) {
        frame *ns = realloc(stack, 2 * cap * sizeof *ns);
        if (!ns) { oom = true; break; }
        stack = ns, cap *= 2;
      }
      oom = !lg_ptrmap_put(&ids, s, NULL);
      stack[sp++] = (frame){s, 0};
      continue;
    }
    const lg_uop *u = f->u;
    char dt[48];
    lg_dtype_name(u->dtype, dt, sizeof dt);
    put(&b, "%%%lld = %s %s", (long long)next_id, lg_op_name(u->op), dt);
    if (u->ndim >= 0) {
      put(&b, " (");
      for (int32_t i = 0; i < u->ndim; i++) put(&b, "%s%lld", i ? "," : "", (long long)u->shape[i]);
      put(&b, ")");
    }
    for (int32_t i = 0; i < u->nsrc; i++) put(&b, " %%%lld", (long long)id_of(&ids, u->src[i]));
    put_arg(&b, u);
    put(&b, "\n");
    oom = b.oom || !lg_ptrmap_put(&ids, u, (void *)(intptr_t)(++next_id));
    sp--;
  }
  free(stack);
  lg_ptrmap_free(&ids);
  if (oom) {
    free(b.p);
    return lg_ctx_fail(ctx, LG_ERR_NOMEM, "format: out of memory");
  }
  *out = b.p;
  return LG_OK;
}
