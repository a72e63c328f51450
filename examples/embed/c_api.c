/* c_api.c: luagrad from C alone, through luagrad.h. lg_open gives a context whose Lua state has
 * every rule loaded; the program builds (x*4 + 3) // 4 over a variable x in [0, 9], rewrites it
 * with the "symbolic" pass and prints the graph before and after (it becomes x: 3 < 4 and
 * x*4 + 3 >= 0, so the division drops the constant).
 *
 *   make examples && build/examples/c_api
 *
 * Every lg_uop ** result is a new reference, released when done; the context goes last. */
#include <stdio.h>

#include "luagrad.h"
#include "luagrad_enums.h"

/* a op b on int32 operands: a new reference in *out */
static lg_status binary(lg_ctx *ctx, int32_t op, lg_uop *a, lg_uop *b, lg_uop **out) {
  lg_uop *src[2] = {a, b};
  return lg_uop_new(ctx, op, LG_DT_INT32, src, 2, NULL, out);
}

static lg_status print_graph(lg_ctx *ctx, const char *title, lg_uop *u) {
  char *text = NULL;
  lg_status st = lg_uop_format(ctx, u, &text);
  if (st == LG_OK) printf("%s\n%s", title, text);
  lg_free(text);
  return st;
}

int main(void) {
  lg_ctx *ctx;
  lg_status st = lg_open(&ctx);
  if (st != LG_OK) {
    fprintf(stderr, "c_api: %s\n", ctx ? lg_ctx_error(ctx) : "cannot create the Lua state");
    lg_close(ctx);
    return 1;
  }
  int64_t range[2] = {0, 9};
  lg_arg var = {.kind = LG_ARG_STR_INTS, .s = "x", .n = 2, .ints = range};
  lg_uop *x = NULL, *c4 = NULL, *c3 = NULL, *mul = NULL, *add = NULL, *expr = NULL, *out = NULL;
  lg_ruleset *symbolic = NULL;
  lg_rewrite_opts opts = {.mode = LG_REWRITE_BOTTOM_UP};

  st = lg_uop_new(ctx, LG_OP_DEFINE_VAR, LG_DT_INT32, NULL, 0, &var, &x);
  if (!st) st = lg_uop_const_int(ctx, LG_DT_INT32, 4, &c4);
  if (!st) st = lg_uop_const_int(ctx, LG_DT_INT32, 3, &c3);
  if (!st) st = binary(ctx, LG_OP_MUL, x, c4, &mul);
  if (!st) st = binary(ctx, LG_OP_ADD, mul, c3, &add);
  if (!st) st = binary(ctx, LG_OP_IDIV, add, c4, &expr);
  if (!st) st = lg_pass(ctx, "symbolic", &symbolic);
  if (!st) st = lg_graph_rewrite(ctx, expr, symbolic, &opts, &out);
  if (!st) st = print_graph(ctx, "expression:", expr);
  if (!st) st = print_graph(ctx, "simplified:", out);
  if (!st) printf("%lld nodes visited, %lld rewrites, result is x: %s\n", (long long)opts.visits,
                  (long long)opts.rewrites, out == x ? "yes" : "no");
  if (st) fprintf(stderr, "c_api: %s\n", lg_ctx_error(ctx));

  lg_uop *all[] = {x, c4, c3, mul, add, expr, out};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    if (all[i]) lg_uop_release(all[i]);
  if (symbolic) lg_ruleset_release(symbolic);
  lg_close(ctx);
  return st ? 1 : 0;
}
