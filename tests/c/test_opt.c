/* test_opt.c: the kernel optimizer's transformations (core/opt.c) on a matmul kernel built by
 * hand: every error message, what upcast, pad, swap, merge and vectorize make of the graph,
 * apply with a stub rule host (its "symbolic" pass only folds constants) and without one, and
 * no node left behind on any path. (tests/opt/opt_spec.lua runs the kernels.) */
#include <stdlib.h>

#include "ctest.h"
#include "luagrad_enums.h"

/* ---- a 6x12 matmul over 5: ranges 0 (6) and 1 (12) output, 2 (5) reduce ---------------------- */

typedef struct kb {
  lg_ctx *ctx;
  lg_uop *held[128];
  int n;
} kb;

static lg_uop *nd(kb *k, int32_t op, lg_dtype dt, const lg_arg *arg, int n, lg_uop *a, lg_uop *b, lg_uop *c) {
  lg_uop *src[3] = {a, b, c}, *u = NULL;
  if (k->n < 128 && lg_uop_new(k->ctx, op, dt, src, n, arg, &u) == LG_OK) k->held[k->n++] = u;
  return u;
}

static lg_uop *ci(kb *k, int64_t v) {
  return nd(k, LG_OP_CONST, LG_DT_INT32, &(lg_arg){.kind = LG_ARG_INT, .i = v}, 0, 0, 0, 0);
}

static lg_uop *rng(kb *k, lg_uop *end, int64_t axis, int64_t kind) {
  int64_t a[2] = {axis, kind};
  return nd(k, LG_OP_RANGE, LG_DT_INT32, &(lg_arg){.kind = LG_ARG_INTS, .n = 2, .ints = a}, 1, end, 0, 0);
}

static lg_uop *glob(kb *k, int64_t slot) {
  return nd(k, LG_OP_DEFINE_GLOBAL, lg_dtype_ptr(LG_DT_FLOAT32, LG_ADDR_GLOBAL),
            &(lg_arg){.kind = LG_ARG_INT, .i = slot}, 0, 0, 0, 0);
}

static lg_uop *bin(kb *k, int32_t op, lg_uop *a, lg_uop *b) {
  return nd(k, op, lg_op_flags(op) & LG_OPF_CMP ? LG_DT_BOOL : lg_uop_dtype(a), NULL, 2, a, b, 0);
}

static lg_uop *load(kb *k, lg_uop *buf, lg_uop *i) {
  return nd(k, LG_OP_LOAD, LG_DT_FLOAT32, NULL, 1, nd(k, LG_OP_INDEX, lg_uop_dtype(buf), NULL, 2, buf, i, 0), 0, 0);
}

/* out[i, j] = sum_r a[i, r] * b[r, j]; `m` the first output range's end (a DEFINE_VAR for a size
 * known at launch), `reduce` the reduce range's size */
static lg_uop *matmul(kb *k, lg_uop *m, int64_t reduce) {
  lg_uop *out = glob(k, 0), *a = glob(k, 1), *b = glob(k, 2);
  lg_uop *i = rng(k, m, 0, LG_RANGE_OUTPUT), *j = rng(k, ci(k, 12), 1, LG_RANGE_OUTPUT);
  lg_uop *r = rng(k, ci(k, reduce), 2, LG_RANGE_REDUCE);
  lg_uop *x = load(k, a, bin(k, LG_OP_ADD, bin(k, LG_OP_MUL, i, ci(k, reduce)), r));
  lg_uop *y = load(k, b, bin(k, LG_OP_ADD, bin(k, LG_OP_MUL, r, ci(k, 12)), j));
  lg_uop *red =
      nd(k, LG_OP_REDUCE, LG_DT_FLOAT32, &(lg_arg){.kind = LG_ARG_STR, .s = "ADD"}, 2, bin(k, LG_OP_MUL, x, y), r, 0);
  lg_uop *o =
      nd(k, LG_OP_INDEX, lg_uop_dtype(out), NULL, 2, out, bin(k, LG_OP_ADD, bin(k, LG_OP_MUL, i, ci(k, 12)), j), 0);
  lg_uop *end = nd(k, LG_OP_END, LG_DT_VOID, NULL, 3, nd(k, LG_OP_STORE, LG_DT_VOID, NULL, 2, o, red, 0), i, j);
  return nd(k, LG_OP_SINK, LG_DT_VOID, NULL, 1, end, 0, 0);
}

static void kb_free(kb *k) {
  while (k->n) lg_uop_release(k->held[--k->n]);
}

/* ---- reading graphs ------------------------------------------------------------------------ */

static int64_t count_op(lg_uop *root, int32_t op) {
  lg_uop *nodes[4096];
  int64_t n = lg_uop_toposort(root, nodes, 4096), c = 0;
  for (int64_t i = 0; i < n && i < 4096; i++) c += lg_uop_op(nodes[i]) == op;
  return c;
}

/* the size of the range of axis (-1: none), its kind in *kind */
static int64_t range_size(lg_uop *root, int64_t axis, int64_t *kind) {
  lg_uop *nodes[4096];
  int64_t n = lg_uop_toposort(root, nodes, 4096);
  for (int64_t i = 0; i < n && i < 4096; i++) {
    const lg_arg *a = lg_uop_arg(nodes[i]);
    if (lg_uop_op(nodes[i]) != LG_OP_RANGE || a->ints[0] != axis) continue;
    if (kind) *kind = a->ints[1];
    return lg_uop_arg(lg_uop_src(nodes[i], 0))->i;
  }
  return -1;
}

/* the transformation's error message, or "ok" */
static const char *try_step(lg_ctx *ctx, lg_uop *sink, int32_t op, int64_t x, int64_t y) {
  lg_opt_step s = {op, x, y};
  lg_uop *out = NULL;
  if (lg_opt_transform(ctx, sink, &s, &out) != LG_OK) return out ? "an error with a result" : lg_ctx_error(ctx);
  lg_uop_release(out);
  return "ok";
}

CTEST(opt_names_each_problem) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  kb k = {.ctx = ctx};
  lg_uop *sink = matmul(&k, ci(&k, 6), 5);
  REQUIRE(sink);
  CHECK_STR(try_step(ctx, sink, LG_OPT_UPCAST, 7, 2), "opt: upcast: the kernel has no range of axis 7");
  CHECK_STR(try_step(ctx, sink, LG_OPT_UPCAST, 2, 2), "opt: upcast: axis 2 is a reduce range");
  CHECK_STR(try_step(ctx, sink, LG_OPT_UNROLL, 0, 2), "opt: unroll: axis 0 is an output range");
  CHECK_STR(try_step(ctx, sink, LG_OPT_ACCUMULATE, 1, 2), "opt: accumulate: axis 1 is an output range");
  CHECK_STR(try_step(ctx, sink, LG_OPT_UPCAST, 0, 0), "opt: upcast: the amount must be an integer >= 1, got 0");
  CHECK_STR(try_step(ctx, sink, LG_OPT_PAD, 0, -3), "opt: pad: the multiple must be an integer >= 1, got -3");
  CHECK_STR(try_step(ctx, sink, LG_OPT_SWAP, 0, 2), "opt: swap: axes 0 and 2 are ranges of different kinds");
  CHECK_STR(try_step(ctx, sink, LG_OPT_MERGE, 2, 1), "opt: merge: axes 2 and 1 are ranges of different kinds");
  CHECK_STR(try_step(ctx, sink, LG_OPT_MERGE, 0, 9), "opt: merge: the kernel has no range of axis 9");
  CHECK_STR(try_step(ctx, sink, LG_OPT_VECTORIZE, 1, 64),
            "opt: vectorize: the width must be a power of 2 from 2 to 16, got 64");
  CHECK_STR(try_step(ctx, sink, LG_OPT_VECTORIZE, 1, 6),
            "opt: vectorize: the width must be a power of 2 from 2 to 16, got 6");
  CHECK_STR(try_step(ctx, sink, LG_OPT_VECTORIZE, 1, 1),
            "opt: vectorize: the width must be a power of 2 from 2 to 16, got 1");
  lg_opt_step bad = {LG_OPT__COUNT, 0, 2};
  lg_uop *out = NULL;
  CHECK_INT(lg_opt_transform(ctx, sink, &bad, &out), LG_ERR_ARG);
  CHECK_STR(lg_ctx_error(ctx), "opt: unknown transformation 7");
  CHECK(out == NULL);

  /* vector lanes twice; their range is no axis to transform */
  lg_opt_step v = {LG_OPT_VECTORIZE, 1, 4};
  lg_uop *lanes = NULL;
  REQUIRE_OK(ctx, lg_opt_transform(ctx, sink, &v, &lanes));
  CHECK_STR(try_step(ctx, lanes, LG_OPT_VECTORIZE, 0, 2),
            "opt: vectorize: the kernel has vector lanes already (axis 3)");
  CHECK_STR(try_step(ctx, lanes, LG_OPT_PAD, 3, 2), "opt: pad: axis 3 is a vector lanes range");
  lg_uop *r = NULL;
  CHECK_INT(lg_opt_range(ctx, lanes, LG_OPT_UPCAST, 3, &r), LG_ERR_ARG);
  CHECK_STR(lg_ctx_error(ctx), "opt: upcast: axis 3 is a vector lanes range");
  REQUIRE_OK(ctx, lg_opt_range(ctx, lanes, LG_OPT_UNROLL, 2, &r));
  CHECK_INT(lg_uop_op(r), LG_OP_RANGE);
  lg_uop_release(lanes);

  /* a size known at launch, an empty reduce range, a range that no END closes */
  kb k2 = {.ctx = ctx};
  int64_t mm[2] = {1, 9};
  lg_uop *m = nd(&k2, LG_OP_DEFINE_VAR, LG_DT_INT32, &(lg_arg){.kind = LG_ARG_STR_INTS, .s = "m", .n = 2, .ints = mm},
                 0, 0, 0, 0);
  lg_uop *dyn = matmul(&k2, m, 5), *empty = matmul(&k2, ci(&k2, 6), 0);
  REQUIRE(dyn && empty);
  CHECK_STR(try_step(ctx, dyn, LG_OPT_UPCAST, 0, 2), "opt: upcast: axis 0 has a size that is not a constant");
  CHECK_STR(try_step(ctx, empty, LG_OPT_UNROLL, 2, 2), "opt: unroll: axis 2 has size 0");
  lg_uop *lone = rng(&k2, ci(&k2, 4), 0, LG_RANGE_OUTPUT), *g0 = glob(&k2, 0);
  lg_uop *store =
      nd(&k2, LG_OP_STORE, LG_DT_VOID, NULL, 2, nd(&k2, LG_OP_INDEX, lg_uop_dtype(g0), NULL, 2, g0, lone, 0),
         nd(&k2, LG_OP_CONST, LG_DT_FLOAT32, &(lg_arg){.kind = LG_ARG_FLOAT, .f = 1}, 0, 0, 0, 0), 0);
  lg_uop *open = nd(&k2, LG_OP_SINK, LG_DT_VOID, NULL, 1, store, 0, 0);
  CHECK_STR(try_step(ctx, open, LG_OPT_UPCAST, 0, 2), "opt: upcast: no END closes axis 0");
  /* two output ranges closed by different ENDs */
  lg_uop *other = rng(&k2, ci(&k2, 3), 1, LG_RANGE_OUTPUT);
  lg_uop *e0 = nd(&k2, LG_OP_END, LG_DT_VOID, NULL, 2, store, lone, 0);
  lg_uop *st1 = nd(&k2, LG_OP_STORE, LG_DT_VOID, NULL, 2, nd(&k2, LG_OP_INDEX, lg_uop_dtype(g0), NULL, 2, g0, other, 0),
                   lg_uop_src(store, 1), 0);
  lg_uop *two = nd(&k2, LG_OP_SINK, LG_DT_VOID, NULL, 2, e0, nd(&k2, LG_OP_END, LG_DT_VOID, NULL, 2, st1, other, 0), 0);
  CHECK_STR(try_step(ctx, two, LG_OPT_MERGE, 0, 1), "opt: merge: axes 0 and 1 are not closed together");
  kb_free(&k2);
  kb_free(&k);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ctx_free(ctx);
}

CTEST(opt_transforms_the_loops) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  kb k = {.ctx = ctx};
  lg_uop *sink = matmul(&k, ci(&k, 6), 5), *out = NULL;
  REQUIRE(sink);
  int64_t kind = -1;
  /* upcast by a part: an outer range and 4 copies; by the whole size: no range, 6 stores */
  lg_opt_step s = {LG_OPT_UPCAST, 1, 4};
  REQUIRE_OK(ctx, lg_opt_steps(ctx, sink, &s, 1, &out));
  CHECK_INT(range_size(out, 1, NULL), 3);
  CHECK_INT(count_op(out, LG_OP_STORE), 4);
  CHECK_INT(count_op(out, LG_OP_REDUCE), 4);
  CHECK_INT(count_op(out, LG_OP_GROUP), 1);
  lg_uop_release(out);
  s = (lg_opt_step){LG_OPT_UPCAST, 0, 6};
  REQUIRE_OK(ctx, lg_opt_transform(ctx, sink, &s, &out));
  CHECK_INT(range_size(out, 0, NULL), -1);
  CHECK_INT(count_op(out, LG_OP_STORE), 6);
  lg_uop_release(out);
  /* unroll whole: no REDUCE; accumulate by 2 pads 5 to 6: two REDUCEs over a range of 3 */
  s = (lg_opt_step){LG_OPT_UNROLL, 2, 5};
  REQUIRE_OK(ctx, lg_opt_transform(ctx, sink, &s, &out));
  CHECK_INT(count_op(out, LG_OP_REDUCE), 0);
  lg_uop_release(out);
  s = (lg_opt_step){LG_OPT_ACCUMULATE, 2, 2};
  REQUIRE_OK(ctx, lg_opt_transform(ctx, sink, &s, &out));
  CHECK_INT(count_op(out, LG_OP_REDUCE), 2);
  CHECK_INT(range_size(out, 2, &kind), 3);
  CHECK_INT(kind, LG_RANGE_REDUCE);
  CHECK_INT(count_op(out, LG_OP_WHERE), 2); /* the padded iteration adds 0 */
  lg_uop_release(out);
  /* pad an output range: the loads and the store that depend on it get the gate r < 6 */
  s = (lg_opt_step){LG_OPT_PAD, 0, 4};
  REQUIRE_OK(ctx, lg_opt_transform(ctx, sink, &s, &out));
  CHECK_INT(range_size(out, 0, NULL), 8);
  CHECK_INT(count_op(out, LG_OP_CMPLT), 1);
  lg_uop_release(out);
  s = (lg_opt_step){LG_OPT_PAD, 0, 3}; /* already a multiple: the same kernel */
  REQUIRE_OK(ctx, lg_opt_transform(ctx, sink, &s, &out));
  CHECK(out == sink);
  lg_uop_release(out);
  /* swap and merge */
  s = (lg_opt_step){LG_OPT_SWAP, 0, 1};
  REQUIRE_OK(ctx, lg_opt_transform(ctx, sink, &s, &out));
  CHECK_INT(range_size(out, 0, NULL), 12);
  CHECK_INT(range_size(out, 1, NULL), 6);
  lg_uop_release(out);
  s = (lg_opt_step){LG_OPT_MERGE, 0, 1};
  REQUIRE_OK(ctx, lg_opt_transform(ctx, sink, &s, &out));
  CHECK_INT(range_size(out, 0, NULL), 72);
  CHECK_INT(range_size(out, 1, NULL), -1);
  CHECK_INT(count_op(out, LG_OP_IDIV), 1);
  CHECK_INT(count_op(out, LG_OP_MOD), 1);
  lg_uop_release(out);
  /* vectorize 12 by 8 pads to 16: an outer range of 2 and lanes of 8 (axis 3) */
  s = (lg_opt_step){LG_OPT_VECTORIZE, 1, 8};
  REQUIRE_OK(ctx, lg_opt_transform(ctx, sink, &s, &out));
  CHECK_INT(range_size(out, 1, NULL), 2);
  CHECK_INT(range_size(out, 3, &kind), 8);
  CHECK_INT(kind, LG_RANGE_LANES);
  lg_uop_release(out);
  /* a failing step in a list: nothing handed out, nothing leaked */
  lg_opt_step list[2] = {{LG_OPT_UPCAST, 1, 4}, {LG_OPT_UPCAST, 2, 2}};
  CHECK_INT(lg_opt_steps(ctx, sink, list, 2, &out), LG_ERR_ARG);
  CHECK_STR(lg_ctx_error(ctx), "opt: upcast: axis 2 is a reduce range");
  CHECK(out == NULL);
  kb_free(&k);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ctx_free(ctx);
}

CTEST(opt_dependents_and_names) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  kb k = {.ctx = ctx};
  lg_uop *sink = matmul(&k, ci(&k, 6), 5), *nodes[64], *r = NULL;
  REQUIRE(sink);
  REQUIRE_OK(ctx, lg_opt_range(ctx, sink, LG_OPT_UNROLL, 2, &r));
  int64_t n = lg_uop_toposort(sink, nodes, 64);
  uint8_t dep[64];
  REQUIRE(n > 0 && n <= 64);
  REQUIRE_OK(ctx, lg_opt_dependents(ctx, nodes, n, r, dep));
  for (int64_t i = 0; i < n; i++) {
    lg_uop *u = nodes[i];
    int32_t op = lg_uop_op(u);
    bool want = false; /* this kernel: r is at most two sources down from the nodes that depend on it */
    if (op == LG_OP_LOAD || (op == LG_OP_MUL && lg_uop_dtype(u) == LG_DT_FLOAT32))
      want = true;
    else if (op == LG_OP_RANGE)
      want = u == r;
    else if (op == LG_OP_INDEX)
      want = lg_uop_arg(lg_uop_src(u, 0))->i != 0; /* the loads', not the store's */
    else if (op == LG_OP_ADD || op == LG_OP_MUL)
      for (int32_t j = 0; j < 2; j++)
        want = want || lg_uop_src(u, j) == r ||
               (lg_uop_nsrc(lg_uop_src(u, j)) == 2 && lg_uop_src(lg_uop_src(u, j), 0) == r);
    CHECK_MSG(dep[i] == want, "node %lld (%s): %d", (long long)i, lg_op_name(op), dep[i]);
  }
  for (int32_t op = 0; op < LG_OPT__COUNT; op++) CHECK_INT(lg_opt_lookup(lg_opt_name(op)), op);
  CHECK_INT(lg_opt_lookup("tile"), -1);
  CHECK(lg_opt_name(-1) == NULL);
  kb_free(&k);
  lg_ctx_free(ctx);
}

/* ---- apply: the "symbolic" pass of a stub host folds constants (one native rule) --------------- */

static lg_status fold_pass(void *ud, lg_ctx *ctx, const char *name, lg_ruleset **out) {
  lg_pat any = {.kind = LG_PAT_OP, .pred = -1};
  lg_rule_def fold = {.name = "fold", .pat = &any, .npat = 1, .fn = -1, .native = lg_native_lookup("fold")};
  ++*(int *)ud;
  lg_status st = lg_ruleset_new(ctx, name, NULL, out);
  if (!st && (st = lg_ruleset_add(*out, &fold))) lg_ruleset_release(*out), *out = NULL;
  return st;
}

CTEST(opt_apply_runs_the_symbolic_pass) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  kb k = {.ctx = ctx};
  lg_uop *sink = matmul(&k, ci(&k, 6), 5), *out = NULL;
  REQUIRE(sink);
  lg_opt_step whole = {LG_OPT_UPCAST, 0, 6};
  CHECK_INT(lg_opt_apply(ctx, sink, &whole, 1, &out), LG_ERR_HOST); /* no host, no pass */
  CHECK(out == NULL);
  int loads = 0;
  lg_rule_host host = {.ud = &loads, .load_pass = fold_pass};
  lg_ctx_set_host(ctx, &host);
  /* upcast whole: the copies' indices 0 + i fold to constants */
  REQUIRE_OK(ctx, lg_opt_apply(ctx, sink, &whole, 1, &out));
  CHECK_INT(loads, 1);
  lg_uop *nodes[4096];
  int64_t n = lg_uop_toposort(out, nodes, 4096);
  for (int64_t i = 0; i < n; i++)
    CHECK(!(lg_uop_op(nodes[i]) == LG_OP_ADD && lg_uop_op(lg_uop_src(nodes[i], 0)) == LG_OP_CONST &&
            lg_uop_op(lg_uop_src(nodes[i], 1)) == LG_OP_CONST));
  lg_uop_release(out);
  /* vector lanes on axis 1: the store's index is ADD(base, lane) */
  lg_opt_step vec = {LG_OPT_VECTORIZE, 1, 4};
  REQUIRE_OK(ctx, lg_opt_apply(ctx, sink, &vec, 1, &out));
  CHECK_INT(loads, 2);
  lg_uop *index = lg_uop_src(lg_uop_src(lg_uop_src(out, 0), 0), 0);
  CHECK_INT(lg_uop_op(index), LG_OP_INDEX);
  CHECK_INT(lg_uop_op(lg_uop_src(index, 1)), LG_OP_ADD);
  CHECK_INT(lg_uop_op(lg_uop_src(lg_uop_src(index, 1), 1)), LG_OP_RANGE);
  CHECK_INT(lg_uop_arg(lg_uop_src(lg_uop_src(index, 1), 1))->ints[1], LG_RANGE_LANES);
  lg_uop_release(out);
  /* the pass runs after a merge, before the steps that follow it */
  lg_opt_step merged[2] = {{LG_OPT_MERGE, 0, 1}, {LG_OPT_UPCAST, 1, 2}};
  CHECK_INT(lg_opt_apply(ctx, sink, merged, 2, &out), LG_ERR_ARG);
  CHECK_STR(lg_ctx_error(ctx), "opt: upcast: the kernel has no range of axis 1");
  CHECK_INT(loads, 3);
  CHECK(out == NULL);
  kb_free(&k);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ctx_free(ctx);
}
