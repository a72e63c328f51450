/* print.c: the text form of a graph, one line per node, sources before their users:
 *   %0 = DEFINE_VAR int32 ("i", 0, 9)
 *   %1 = CONST int32 4
 *   %2 = MUL int32 %0 %1
 * A shaped (tensor-level) node shows its shape after the dtype: %3 = ADD float32 (3,4) %1 %2 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "ptrmap.h"
#include "strbuf.h"

/* the shortest %g form that reads back as the same double */
static void put_float(lg_strbuf *b, double f) {
  char s[32];
  if (isnan(f) || isinf(f)) {
    lg_strbuf_put(b, "%s", isnan(f) ? "nan" : f < 0 ? "-inf" : "inf");
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(s, sizeof s, "%.*g", prec, f);
    if (strtod(s, NULL) == f) break;
  }
  lg_strbuf_put(b, "%s", s);
}

static void put_str(lg_strbuf *b, const char *s) {
  lg_strbuf_put(b, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') lg_strbuf_put(b, "\\%c", c);
    else if (c < 0x20 || c == 0x7f) lg_strbuf_put(b, "\\x%02x", c);
    else lg_strbuf_put(b, "%c", c);
  }
  lg_strbuf_put(b, "\"");
}

static void put_arg(lg_strbuf *b, const lg_uop *u) {
  const lg_arg *a = &u->arg;
  switch (a->kind) {
  case LG_ARG_INT:
    if (u->op == LG_OP_CONST && lg_dtype_kind(u->dtype) == 'b') lg_strbuf_put(b, " %s", a->i ? "true" : "false");
    else if (u->op == LG_OP_CONST && lg_dtype_kind(u->dtype) == 'u') lg_strbuf_put(b, " %llu", (unsigned long long)(uint64_t)a->i);
    else lg_strbuf_put(b, " %lld", (long long)a->i);
    break;
  case LG_ARG_FLOAT: lg_strbuf_put(b, " "), put_float(b, a->f); break;
  case LG_ARG_STR: lg_strbuf_put(b, " "), put_str(b, a->s); break;
  case LG_ARG_INTS:
  case LG_ARG_STR_INTS:
    lg_strbuf_put(b, " (");
    if (a->kind == LG_ARG_STR_INTS) put_str(b, a->s), lg_strbuf_put(b, a->n ? ", " : "");
    for (int32_t i = 0; i < a->n; i++) lg_strbuf_put(b, "%s%lld", i ? ", " : "", (long long)a->ints[i]);
    lg_strbuf_put(b, ")");
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
  lg_strbuf b = {0};
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
    lg_strbuf_put(&b, "%%%lld = %s %s", (long long)next_id, lg_op_name(u->op), dt);
    if (u->ndim >= 0) {
      lg_strbuf_put(&b, " (");
      for (int32_t i = 0; i < u->ndim; i++) lg_strbuf_put(&b, "%s%lld", i ? "," : "", (long long)u->shape[i]);
      lg_strbuf_put(&b, ")");
    }
    for (int32_t i = 0; i < u->nsrc; i++) lg_strbuf_put(&b, " %%%lld", (long long)id_of(&ids, u->src[i]));
    put_arg(&b, u);
    lg_strbuf_put(&b, "\n");
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
