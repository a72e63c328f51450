/* test_rewrite.c: rule sets built from C (lg_pat arrays), the matcher and lg_graph_rewrite with
 * a stub host standing in for Lua: templates, callbacks, fixed points, both walk orders,
 * memoization, deep graphs, non-convergence and reference counts on every path. */
#include <stdlib.h>

#include "ctest.h"
#include "luagrad_enums.h"

static const int32_t ADD[] = {LG_OP_ADD}, MUL[] = {LG_OP_MUL}, CONST[] = {LG_OP_CONST}, SUB[] = {LG_OP_SUB};
static const int32_t S12[] = {1, 2}, S1[] = {1};

static lg_pat var(const char *name) { return (lg_pat){.kind = LG_PAT_OP, .name = name, .pred = -1}; }
static lg_pat konst(int64_t v) {
  return (lg_pat){.kind = LG_PAT_OP, .nops = 1, .ops = CONST, .has_arg = 1, .arg = {.kind = LG_ARG_INT, .i = v}, .pred = -1};
}
static lg_pat bin(const int32_t *op, int32_t comm) {
  return (lg_pat){.kind = LG_PAT_OP, .nops = 1, .ops = op, .src_mode = LG_SRC_EXACT, .nsrc = 2, .src = S12,
                  .commutative = comm, .pred = -1};
}

/* ---- a stub host: callback 0 returns capture "x"; 1 returns NULL; 2 fails; 3 returns x - y;
 * 4 rewrites capture "x" with the rule set passed as rctx, after trying to add a rule to it ---- */
typedef struct stub {
  int calls, preds;
  void *last_rctx;
} stub;

static lg_uop *cap(const lg_match *m, const char *name) {
  for (int32_t i = 0; i < m->ncap; i++)
    if (m->caps[i] && strcmp(m->names[i], name) == 0) return m->caps[i];
  return NULL;
}

static lg_status stub_rule(void *ud, lg_ctx *ctx, void *fns, int32_t fn, const lg_match *m, void *rctx, lg_uop **out) {
  stub *s = ud;
  s->calls++;
  s->last_rctx = rctx;
  *out = NULL;
  if (fn == 0) *out = lg_uop_retain(cap(m, "x"));
  if (fn == 2) return lg_ctx_fail(ctx, LG_ERR_RULE, "boom");
  if (fn == 3) {
    lg_uop *src[2] = {cap(m, "x"), cap(m, "y")};
    return lg_uop_new(ctx, LG_OP_SUB, lg_uop_dtype(src[0]), src, 2, NULL, out);
  }
  if (fn == 4) {
    lg_pat p[1] = {{.kind = LG_PAT_OP, .pred = -1}};
    lg_rule_def d = {.name = "late", .pat = p, .npat = 1, .fn = 1};
    if (lg_ruleset_add(rctx, &d) != LG_ERR_ARG) return lg_ctx_fail(ctx, LG_ERR_RULE, "added a rule to a busy set");
    return lg_graph_rewrite(ctx, cap(m, "x"), rctx, NULL, out);
  }
  return LG_OK;
}

static lg_status stub_pred(void *ud, lg_ctx *ctx, void *fns, int32_t fn, lg_uop *u, int32_t *ok) {
  ((stub *)ud)->preds++;
  *ok = lg_uop_op(u) == LG_OP_DEFINE_VAR; /* predicate 0: "is a variable" */
  return LG_OK;
}

static lg_uop *dvar(lg_ctx *ctx, const char *name) {
  static const int64_t range[2] = {0, 9};
  lg_arg a = {.kind = LG_ARG_STR_INTS, .s = name, .n = 2, .ints = range};
  lg_uop *u = NULL;
  lg_uop_new(ctx, LG_OP_DEFINE_VAR, LG_DT_INT32, NULL, 0, &a, &u);
  return u;
}

static lg_uop *mk2(lg_ctx *ctx, int32_t op, lg_uop *a, lg_uop *b) { /* consumes a and b */
  lg_uop *src[2] = {a, b}, *u = NULL;
  lg_uop_new(ctx, op, lg_uop_dtype(a), src, 2, NULL, &u);
  lg_uop_release(a);
  lg_uop_release(b);
  return u;
}

static lg_uop *cint(lg_ctx *ctx, int64_t v) {
  lg_uop *u = NULL;
  lg_uop_const_int(ctx, LG_DT_INT32, v, &u);
  return u;
}

/* x + 0 -> x (commutative, template) */
static lg_status add_zero_rule(lg_ruleset *rs) {
  lg_pat pat[3] = {bin(ADD, 1), var("x"), konst(0)}, tmpl[1] = {var("x")};
  lg_rule_def def = {.name = "add0", .pat = pat, .npat = 3, .fn = -1, .tmpl = tmpl, .ntmpl = 1};
  return lg_ruleset_add(rs, &def);
}

CTEST(rewrite_template_add_zero) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_ruleset *rs;
  REQUIRE_OK(ctx, lg_ruleset_new(ctx, "t", NULL, &rs));
  REQUIRE_OK(ctx, add_zero_rule(rs));
  CHECK_STR(lg_ruleset_name(rs), "t");
  CHECK_INT(lg_ruleset_count(rs), 1);
  lg_uop *a = dvar(ctx, "a"), *b = dvar(ctx, "b");
  lg_uop *g = mk2(ctx, LG_OP_ADD, mk2(ctx, LG_OP_ADD, lg_uop_retain(a), cint(ctx, 0)),
                  mk2(ctx, LG_OP_ADD, cint(ctx, 0), lg_uop_retain(b)));
  int64_t live = lg_ctx_live_nodes(ctx);
  lg_rewrite_opts o = {.stats = 1};
  lg_uop *out;
  REQUIRE_OK(ctx, lg_graph_rewrite(ctx, g, rs, &o, &out));
  CHECK(lg_uop_op(out) == LG_OP_ADD && lg_uop_src(out, 0) == a && lg_uop_src(out, 1) == b);
  CHECK_INT(o.rewrites, 2);
  lg_rule_stats s;
  CHECK(lg_ruleset_stats(rs, 0, &s));
  CHECK_STR(s.name, "add0");
  CHECK_INT(s.rewrites, 2);
  CHECK_INT(o.visits, 6);  /* a, 0, b, both inner ADDs and the rebuilt root */
  CHECK_INT(s.tries, 2);   /* the inner ADDs; DEFINE_VAR and CONST have no rules, and the rebuilt
                            * root a + b is ruled out by its sources' ops before matching */
  CHECK(!lg_ruleset_stats(rs, 1, &s));
  lg_ruleset_reset_stats(rs);
  lg_ruleset_stats(rs, 0, &s);
  CHECK_INT(s.tries, 0);
  lg_uop_release(out);
  CHECK_INT(lg_ctx_live_nodes(ctx), live); /* the new a+b is gone again: nothing leaked */
  lg_uop_release(g);
  lg_uop_release(a);
  lg_uop_release(b);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ruleset_release(rs);
  lg_ctx_free(ctx);
}

CTEST(rewrite_callbacks_and_predicates) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  stub s = {0};
  lg_rule_host host = {.ud = &s, .call_rule = stub_rule, .call_pred = stub_pred};
  lg_ctx_set_host(ctx, &host);
  lg_ruleset *rs;
  REQUIRE_OK(ctx, lg_ruleset_new(ctx, "cb", NULL, &rs));
  /* rule 1: x * y (both orders) -> NULL; rule 2: x * y with pred(x) -> x - y */
  lg_pat p1[3] = {bin(MUL, 1), var("x"), var("y")};
  lg_rule_def d1 = {.name = "nil", .pat = p1, .npat = 3, .fn = 1};
  lg_pat p2[3] = {bin(MUL, 1), var("x"), var("y")};
  p2[1].pred = 0;
  lg_rule_def d2 = {.name = "sub", .pat = p2, .npat = 3, .fn = 3};
  REQUIRE_OK(ctx, lg_ruleset_add(rs, &d1));
  REQUIRE_OK(ctx, lg_ruleset_add(rs, &d2));
  lg_uop *a = dvar(ctx, "a"), *g = mk2(ctx, LG_OP_MUL, cint(ctx, 3), lg_uop_retain(a)), *out;
  int marker;
  lg_rewrite_opts o = {.rctx = &marker};
  REQUIRE_OK(ctx, lg_graph_rewrite(ctx, g, rs, &o, &out));
  /* "nil" is called for both orders, "sub" only for x = a (the swapped order) */
  CHECK_INT(s.calls, 3);
  CHECK(s.last_rctx == &marker);
  CHECK(lg_uop_op(out) == LG_OP_SUB && lg_uop_src(out, 0) == a && lg_uop_op(lg_uop_src(out, 1)) == LG_OP_CONST);
  lg_uop_release(out);

  /* a failing callback: the error names the rule, and nothing leaks */
  lg_pat p3[3] = {bin(SUB, 0), var("x"), var("y")};
  lg_rule_def d3 = {.name = "boom", .pat = p3, .npat = 3, .fn = 2};
  lg_ruleset *rs2;
  REQUIRE_OK(ctx, lg_ruleset_new(ctx, "cb2", NULL, &rs2));
  REQUIRE_OK(ctx, lg_ruleset_add(rs2, &d3));
  lg_uop *g2 = mk2(ctx, LG_OP_SUB, lg_uop_retain(a), cint(ctx, 1));
  int64_t live = lg_ctx_live_nodes(ctx);
  CHECK_INT(lg_graph_rewrite(ctx, g2, rs2, NULL, &out), LG_ERR_RULE);
  CHECK(out == NULL);
  CHECK_STR(lg_ctx_error(ctx), "boom: boom");
  CHECK_INT(lg_ctx_live_nodes(ctx), live);
  lg_uop_release(g2);
  lg_uop_release(g);
  lg_uop_release(a);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ruleset_release(rs);
  lg_ruleset_release(rs2);

  /* without a host a callback rule is an LG_ERR_HOST error, and lg_pass cannot load passes */
  lg_ctx_set_host(ctx, NULL);
  lg_ruleset *p;
  CHECK_INT(lg_pass(ctx, "symbolic", &p), LG_ERR_HOST);
  lg_ctx_free(ctx);
}

CTEST(rewrite_non_convergence_names_rules) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_ruleset *rs;
  REQUIRE_OK(ctx, lg_ruleset_new(ctx, "cycle", NULL, &rs));
  lg_pat pa[3] = {bin(ADD, 0), var("x"), var("y")}, ta[3] = {bin(MUL, 0), var("x"), var("y")};
  lg_pat pm[3] = {bin(MUL, 0), var("x"), var("y")}, tm[3] = {bin(ADD, 0), var("x"), var("y")};
  lg_rule_def swap = {.name = "swap", .pat = pa, .npat = 3, .fn = -1, .tmpl = ta, .ntmpl = 3};
  lg_rule_def unswap = {.name = "unswap", .pat = pm, .npat = 3, .fn = -1, .tmpl = tm, .ntmpl = 3};
  REQUIRE_OK(ctx, lg_ruleset_add(rs, &swap));
  REQUIRE_OK(ctx, lg_ruleset_add(rs, &unswap));
  lg_uop *g = mk2(ctx, LG_OP_ADD, dvar(ctx, "a"), cint(ctx, 1)), *out;
  for (int32_t mode = 0; mode < 2; mode++) {
    lg_rewrite_opts o = {.mode = mode};
    CHECK_INT(lg_graph_rewrite(ctx, g, rs, &o, &out), LG_ERR_LIMIT);
    CHECK_STR(lg_ctx_error(ctx), "graph_rewrite(cycle): no fixed point after 1000 rewrites of one node "
                                 "(ADD int32); last rules: swap (500x), unswap (500x)");
    CHECK_INT(lg_ctx_live_nodes(ctx), 3);
  }
  lg_rewrite_opts small = {.budget = 10};
  CHECK_INT(lg_graph_rewrite(ctx, g, rs, &small, &out), LG_ERR_LIMIT);
  lg_uop_release(g);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ruleset_release(rs);
  lg_ctx_free(ctx);
}

CTEST(rewrite_growing_rewrite_stops) {
  /* x - y -> (x - y) - 0 re-enters x - y inside its own replacement: an endless chain */
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_ruleset *rs;
  REQUIRE_OK(ctx, lg_ruleset_new(ctx, "grow", NULL, &rs));
  lg_pat p[3] = {bin(SUB, 0), var("x"), var("y")};
  p[0].name = "s";
  lg_pat t[3] = {bin(SUB, 0), var("s"), konst(0)};
  lg_rule_def d = {.name = "grow", .pat = p, .npat = 3, .fn = -1, .tmpl = t, .ntmpl = 3};
  REQUIRE_OK(ctx, lg_ruleset_add(rs, &d));
  lg_uop *g = mk2(ctx, LG_OP_SUB, dvar(ctx, "a"), cint(ctx, 1)), *out;
  lg_rewrite_opts o = {.budget = 50};
  CHECK_INT(lg_graph_rewrite(ctx, g, rs, &o, &out), LG_ERR_LIMIT);
  CHECK(strstr(lg_ctx_error(ctx), "grow (50x)") != NULL);
  lg_uop_release(g);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ruleset_release(rs);
  lg_ctx_free(ctx);
}

CTEST(rewrite_deep_chain_both_modes) {
  enum { N = 1000000 };
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_ruleset *rs;
  REQUIRE_OK(ctx, lg_ruleset_new(ctx, "deep", NULL, &rs));
  REQUIRE_OK(ctx, add_zero_rule(rs));
  /* ((a + 0) * 1 + 0) * 1 ...: every ADD goes, every MUL stays */
  lg_uop *a = dvar(ctx, "a"), *g = lg_uop_retain(a);
  for (int i = 0; i < N; i++) g = mk2(ctx, i % 2 ? LG_OP_MUL : LG_OP_ADD, g, cint(ctx, i % 2));
  for (int32_t mode = 0; mode < 2; mode++) {
    lg_rewrite_opts o = {.mode = mode};
    lg_uop *out;
    REQUIRE_OK(ctx, lg_graph_rewrite(ctx, g, rs, &o, &out));
    CHECK_INT(o.rewrites, N / 2);
    CHECK_INT(lg_uop_size(out), N / 2 + 2); /* N/2 MULs, a, the constant 1 */
    lg_uop *x = out;
    while (lg_uop_op(x) == LG_OP_MUL) x = lg_uop_src(x, 0);
    CHECK(x == a);
    lg_uop_release(out);
  }
  lg_uop_release(g);
  lg_uop_release(a);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ruleset_release(rs);
  lg_ctx_free(ctx);
}

CTEST(rewrite_memoizes_shared_nodes) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_ruleset *rs;
  REQUIRE_OK(ctx, lg_ruleset_new(ctx, "memo", NULL, &rs));
  REQUIRE_OK(ctx, add_zero_rule(rs));
  /* a diamond ladder: s_{k+1} = s_k * s_k, 2^60 paths, 62 distinct nodes */
  lg_uop *s = mk2(ctx, LG_OP_ADD, dvar(ctx, "a"), cint(ctx, 0));
  for (int i = 0; i < 60; i++) s = mk2(ctx, LG_OP_MUL, lg_uop_retain(s), s);
  lg_rewrite_opts o = {0};
  lg_uop *out;
  REQUIRE_OK(ctx, lg_graph_rewrite(ctx, s, rs, &o, &out));
  CHECK_INT(o.rewrites, 1);
  CHECK(o.visits < 200);
  lg_uop_release(out);
  lg_uop_release(s);
  lg_ruleset_release(rs);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ctx_free(ctx);
}

CTEST(rewrite_bad_rules_are_refused) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  lg_ruleset *rs;
  REQUIRE_OK(ctx, lg_ruleset_new(ctx, "bad", NULL, &rs));
  lg_pat pat[3] = {bin(ADD, 1), var("x"), konst(0)}, tmpl[1] = {var("z")};
  lg_rule_def d = {.name = "unbound", .pat = pat, .npat = 3, .fn = -1, .tmpl = tmpl, .ntmpl = 1};
  CHECK_INT(lg_ruleset_add(rs, &d), LG_ERR_ARG);
  CHECK_STR(lg_ctx_error(ctx), "rule unbound: capture 'z' is used in the template but never bound by the pattern");
  lg_pat three[2] = {bin(ADD, 0), var("x")};
  static const int32_t s111[] = {1, 1, 1};
  three[0].nsrc = 3, three[0].src = s111;
  lg_rule_def d2 = {.name = "arity", .pat = three, .npat = 2, .fn = 0};
  CHECK_INT(lg_ruleset_add(rs, &d2), LG_ERR_ARG);
  CHECK_STR(lg_ctx_error(ctx), "rule arity: ADD never has 3 sources");
  lg_pat loop[2] = {bin(ADD, 0), var("x")};
  loop[0].nsrc = 1, loop[0].src = S1, loop[0].src_mode = LG_SRC_PREFIX;
  loop[1].src_mode = LG_SRC_EXACT, loop[1].nsrc = 1, loop[1].src = S1; /* points at itself */
  lg_rule_def d3 = {.name = "cyclic", .pat = loop, .npat = 2, .fn = 0};
  CHECK_INT(lg_ruleset_add(rs, &d3), LG_ERR_ARG);
  lg_rule_def d4 = {.name = "two results", .pat = pat, .npat = 3, .fn = 0, .tmpl = pat, .ntmpl = 1};
  CHECK_INT(lg_ruleset_add(rs, &d4), LG_ERR_ARG);
  CHECK_INT(lg_ruleset_count(rs), 0);
  lg_ruleset_release(rs);
  lg_ctx_free(ctx);
}

CTEST(rewrite_nested_with_the_same_rule_set) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  stub s = {0};
  lg_rule_host host = {.ud = &s, .call_rule = stub_rule};
  lg_ctx_set_host(ctx, &host);
  lg_ruleset *rs;
  REQUIRE_OK(ctx, lg_ruleset_new(ctx, "nest", NULL, &rs));
  REQUIRE_OK(ctx, add_zero_rule(rs));
  lg_pat p[3] = {bin(MUL, 1), var("x"), konst(1)};
  lg_rule_def d = {.name = "inner", .pat = p, .npat = 3, .fn = 4};
  REQUIRE_OK(ctx, lg_ruleset_add(rs, &d));
  lg_uop *a = dvar(ctx, "a");
  lg_uop *g = mk2(ctx, LG_OP_MUL, mk2(ctx, LG_OP_ADD, lg_uop_retain(a), cint(ctx, 0)), cint(ctx, 1)), *out;
  for (int i = 0; i < 3; i++) { /* the walk buffers go back and forth between the two levels */
    lg_rewrite_opts o = {.mode = LG_REWRITE_TOP_DOWN, .rctx = rs};
    REQUIRE_OK(ctx, lg_graph_rewrite(ctx, g, rs, &o, &out));
    CHECK(out == a);
    lg_uop_release(out);
  }
  CHECK_INT(lg_ruleset_count(rs), 2);
  lg_uop_release(g);
  lg_uop_release(a);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ruleset_release(rs);
  lg_ctx_free(ctx);
}

CTEST(rewrite_native_results) {
  lg_ctx *ctx;
  REQUIRE(lg_ctx_new(&ctx) == LG_OK);
  CHECK(lg_native_lookup("fold") > 0);
  CHECK(lg_native_lookup("bounds") > 0);
  CHECK_INT(lg_native_lookup("nope"), 0);
  lg_ruleset *rs;
  REQUIRE_OK(ctx, lg_ruleset_new(ctx, "native", NULL, &rs));
  lg_pat each[2] = {{.kind = LG_PAT_OP, .nops = 1, .ops = ADD, .src_mode = LG_SRC_EACH, .nsrc = 1, .src = S1, .pred = -1},
                    {.kind = LG_PAT_OP, .nops = 1, .ops = CONST, .pred = -1}};
  lg_rule_def d = {.name = "fold", .pat = each, .npat = 2, .fn = -1, .native = lg_native_lookup("fold")};
  REQUIRE_OK(ctx, lg_ruleset_add(rs, &d));
  lg_uop *g = mk2(ctx, LG_OP_ADD, mk2(ctx, LG_OP_ADD, cint(ctx, 2), cint(ctx, 3)), cint(ctx, 4)), *out;
  REQUIRE_OK(ctx, lg_graph_rewrite(ctx, g, rs, NULL, &out));
  CHECK(lg_uop_op(out) == LG_OP_CONST && lg_uop_arg(out)->i == 9);
  lg_uop_release(out);
  lg_uop_release(g);
  lg_ruleset_release(rs);
  CHECK_INT(lg_ctx_live_nodes(ctx), 0);
  lg_ctx_free(ctx);
}
