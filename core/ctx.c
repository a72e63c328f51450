/* ctx.c: the engine context: errors, host, statistics. Nodes live in core/uop.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { LG_INITIAL_BUCKETS = 1024 };

lg_status lg_ctx_new(lg_ctx **out) {
  lg_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) return LG_ERR_NOMEM;
  ctx->buckets = calloc(LG_INITIAL_BUCKETS, sizeof *ctx->buckets);
  if (!ctx->buckets) {
    free(ctx);
    return LG_ERR_NOMEM;
  }
  ctx->nbuckets = LG_INITIAL_BUCKETS;
  *out = ctx;
  return LG_OK;
}

void lg_ctx_free(lg_ctx *ctx) {
  if (!ctx) return;
  lg_devices_free(ctx->devices);
  /* Nodes still referenced here were leaked by their holders; the context owns their memory. */
  for (uint64_t b = 0; b < ctx->nbuckets; b++) {
    lg_uop *u = ctx->buckets[b];
    while (u) {
      lg_uop *next = u->next;
      free(u);
      u = next;
    }
  }
  free(ctx->buckets);
  free(ctx);
}

const char *lg_ctx_error(const lg_ctx *ctx) { return ctx->err; }

lg_status lg_ctx_fail(lg_ctx *ctx, lg_status code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
  va_end(ap);
  return code;
}

int64_t lg_ctx_live_nodes(const lg_ctx *ctx) { return ctx->live_nodes; }
int64_t lg_ctx_live_bytes(const lg_ctx *ctx) { return ctx->live_bytes; }

void lg_ctx_set_host(lg_ctx *ctx, const lg_rule_host *host) {
  if (host) ctx->host = *host;
  ctx->has_host = host != NULL;
}

const lg_rule_host *lg_ctx_host(const lg_ctx *ctx) { return ctx->has_host ? &ctx->host : NULL; }

void lg_free(void *p) { free(p); }
