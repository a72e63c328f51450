/* signature.c: the structure of a set of graphs as bytes, with each BUFFER node replaced by its
 * position among the graphs' buffers (and its size). Graphs that differ only in which buffers
 * they read have one signature: realize caches its plans by it. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "ptrmap.h"

typedef struct bytes {
  char *p;
  size_t len, cap;
  bool oom;
} bytes;

static void put(bytes *b, const void *src, size_t n) {
  if (b->oom) return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = true;
      return;
    }
    b->p = p, b->cap = cap;
  }
  memcpy(b->p + b->len, src, n);
  b->len += n;
}

static void put_i64(bytes *b, int64_t v) { put(b, &v, sizeof v); }

static void put_arg(bytes *b, const lg_arg *a) {
  put_i64(b, a->kind);
  switch (a->kind) {
  case LG_ARG_INT: put_i64(b, a->i); break;
  case LG_ARG_FLOAT: put(b, &a->f, sizeof a->f); break;
  case LG_ARG_STR_INTS:
  case LG_ARG_STR:
    put(b, a->s, strlen(a->s) + 1);
    if (a->kind == LG_ARG_STR) break;
    /* fall through */
  case LG_ARG_INTS:
    put_i64(b, a->n);
    put(b, a->ints, sizeof *a->ints * (size_t)a->n);
    break;
  default: break;
  }
}

void lg_signature_free(lg_signature *s) {
  free(s->key);
  free(s->bufs);
  memset(s, 0, sizeof *s);
}

lg_status lg_graph_signature(lg_ctx *ctx, lg_uop *const *roots, int32_t nroots, lg_signature *out) {
  memset(out, 0, sizeof *out);
  bytes b = {0};
  lg_ptrmap id = {0};
  lg_uop **order = NULL;
  int64_t cap = 0, nbufs = 0, capbufs = 0, next = 0;
  bool oom = false;
  for (int32_t r = 0; r < nroots && !oom; r++) {
    int64_t n = lg_uop_toposort(roots[r], order, cap);
    if (n > cap) {
      lg_uop **grown = realloc(order, sizeof *order * (size_t)n);
      if (!grown) {
        oom = true;
        break;
      }
      order = grown, cap = n;
      n = lg_uop_toposort(roots[r], order, cap);
    }
    if (n < 0) {
      oom = true;
      break;
    }
    for (int64_t i = 0; i < n && !oom; i++) {
      lg_uop *u = order[i];
      void *seen;
      if (lg_ptrmap_get(&id, u, &seen)) continue;
      put_i64(&b, u->op);
      put_i64(&b, u->dtype);
      if (u->op == LG_OP_BUFFER) {
        if (nbufs == capbufs) {
          capbufs = capbufs ? capbufs * 2 : 8;
          lg_uop **grown = realloc(out->bufs, sizeof *grown * (size_t)capbufs);
          if (!grown) {
            oom = true;
            break;
          }
          out->bufs = grown;
        }
        out->bufs[nbufs++] = u;
        put_i64(&b, nbufs);
        put_i64(&b, u->arg.n > 0 ? u->arg.ints[0] : -1);
      } else {
        put_arg(&b, &u->arg);
      }
      put_i64(&b, u->nsrc);
      for (int32_t j = 0; j < u->nsrc; j++) {
        void *k = NULL;
        lg_ptrmap_get(&id, u->src[j], &k);
        put_i64(&b, (int64_t)(intptr_t)k);
      }
      oom = !lg_ptrmap_put(&id, u, (void *)(intptr_t)++next);
    }
    void *k = NULL;
    lg_ptrmap_get(&id, roots[r], &k);
    put_i64(&b, -(int64_t)(intptr_t)k); /* root marker */
  }
  free(order);
  lg_ptrmap_free(&id);
  if (oom || b.oom) {
    free(b.p);
    lg_signature_free(out);
    return lg_ctx_fail(ctx, LG_ERR_NOMEM, "signature: out of memory");
  }
  out->key = b.p, out->len = b.len, out->nbufs = nbufs;
  return LG_OK;
}
