/* lua_rewrite.c: RuleSet userdata, graph_rewrite, and the rule host that runs Lua callbacks and
 * predicates for the engine (under lua_pcall, so a Lua error never unwinds through C frames). */
#include <stdint.h>
#include <string.h>

#include "lgl.h"

/* The host: callbacks run on the thread that called graph_rewrite (the main thread otherwise). */
typedef struct {
  lua_State *L;
} lgl_host;

static const char host_key = 'h'; /* its address is the registry key of the host */

static lgl_host *get_host(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &host_key);
  lgl_host *h = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return h;
}

lg_ruleset *lgl_check_ruleset(lua_State *L, int idx) {
  lgl_ruleset_box *b = luaL_checkudata(L, idx, LGL_RULESET);
  if (!b->rs) luaL_argerror(L, idx, "the rule set is closed");
  return b->rs;
}

static int rs_gc(lua_State *L) {
  lgl_ruleset_box *b = luaL_checkudata(L, 1, LGL_RULESET);
  if (b->rs) {
    lgl_host *h = get_host(L);
    lua_State *saved = h->L;
    h->L = L; /* release_fns runs on this thread */
    lg_ruleset_release(b->rs);
    h->L = saved;
    b->rs = NULL;
  }
  return 0;
}

/* rs:stats() -> {{name=, tries=, matches=, rewrites=, ns=}, ...} in rule order */
static int rs_stats(lua_State *L) {
  lg_ruleset *rs = lgl_check_ruleset(L, 1);
  lg_rule_stats s;
  lua_createtable(L, lg_ruleset_count(rs), 0);
  for (int32_t i = 0; lg_ruleset_stats(rs, i, &s); i++) {
    lua_createtable(L, 0, 5);
    lua_pushstring(L, s.name);
    lua_setfield(L, -2, "name");
    lua_pushinteger(L, s.tries);
    lua_setfield(L, -2, "tries");
    lua_pushinteger(L, s.matches);
    lua_setfield(L, -2, "matches");
    lua_pushinteger(L, s.rewrites);
    lua_setfield(L, -2, "rewrites");
    lua_pushinteger(L, s.ns);
    lua_setfield(L, -2, "ns");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int rs_reset_stats(lua_State *L) {
  lg_ruleset_reset_stats(lgl_check_ruleset(L, 1));
  return 0;
}

static int rs_name(lua_State *L) {
  lua_pushstring(L, lg_ruleset_name(lgl_check_ruleset(L, 1)));
  return 1;
}

static int rs_len(lua_State *L) {
  lua_pushinteger(L, lg_ruleset_count(lgl_check_ruleset(L, 1)));
  return 1;
}

static int rs_tostring(lua_State *L) {
  lg_ruleset *rs = lgl_check_ruleset(L, 1);
  lua_pushfstring(L, "RuleSet(%s, %d rules)", lg_ruleset_name(rs), (int)lg_ruleset_count(rs));
  return 1;
}

/* ---- graph_rewrite ------------------------------------------------------------------------ */

/* The rule set for the value at idx: a RuleSet, a list of rules, or a pass name (replaced in
 * place by the RuleSet). */
static lg_ruleset *to_ruleset(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TTABLE) {
    lua_pushcfunction(L, lgl_compile);
    lua_pushvalue(L, idx);
    lua_pushliteral(L, "graph_rewrite");
    lua_call(L, 2, 1);
    lua_replace(L, idx);
  } else if (lua_type(L, idx) == LUA_TSTRING) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "luagrad.rules");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "pass");
    lua_pushvalue(L, idx);
    lua_call(L, 1, 1);
    lua_replace(L, idx);
    lua_pop(L, 1);
  }
  return lgl_check_ruleset(L, idx);
}

/* core.graph_rewrite(node, rules [, opts]) -> node. opts: {mode =, ctx =, budget =, stats =};
 * after the call opts.visits (rule tries at a node), opts.nodes (distinct nodes processed) and
 * opts.rewrites hold the counts. */
static int l_graph_rewrite(lua_State *L) {
  static const char *const keys[] = {"mode", "ctx", "budget", "stats", "visits", "rewrites", "nodes", NULL};
  lg_uop *root = lgl_check_uop(L, 1);
  lua_settop(L, 3);
  lg_ruleset *rs = to_ruleset(L, 2);
  lg_rewrite_opts o = {0};
  if (!lua_isnil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) {
      int known = 0;
      for (int i = 0; keys[i] && !known; i++) known = lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), keys[i]) == 0;
      if (!known) return luaL_error(L, "graph_rewrite: unknown option '%s'", luaL_tolstring(L, -2, NULL));
    }
    const char *mode = lua_getfield(L, 3, "mode") == LUA_TNIL ? "bottom_up" : lua_tostring(L, -1);
    if (!mode || (strcmp(mode, "bottom_up") != 0 && strcmp(mode, "top_down") != 0))
      return luaL_error(L, "graph_rewrite: mode must be \"bottom_up\" or \"top_down\", got %s", luaL_tolstring(L, -1, NULL));
    o.mode = mode[0] == 't' ? LG_REWRITE_TOP_DOWN : LG_REWRITE_BOTTOM_UP;
    int isint = lua_getfield(L, 3, "budget") == LUA_TNIL;
    lua_Integer budget = isint ? 0 : lua_tointegerx(L, -1, &isint);
    if (!isint || budget < 0 || budget > 100000000)
      return luaL_error(L, "graph_rewrite: budget must be an integer from 1 to 1e8, got %s", luaL_tolstring(L, -1, NULL));
    o.budget = (int32_t)budget;
    lua_getfield(L, 3, "stats");
    o.stats = lua_toboolean(L, -1);
    lua_pop(L, 3);
    if (lua_getfield(L, 3, "ctx") != LUA_TNIL) { /* callbacks find it in the registry under rctx */
      o.rctx = &o;
      lua_rawsetp(L, LUA_REGISTRYINDEX, o.rctx);
    }
  }
  lg_ctx *ctx = lgl_ctx(L);
  lgl_host *h = get_host(L);
  lua_State *saved = h->L;
  lg_uop *out;
  h->L = L;
  lg_status st = lg_graph_rewrite(ctx, root, rs, &o, &out);
  h->L = saved;
  if (o.rctx) {
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, o.rctx);
  }
  if (st) return lgl_fail(L, ctx);
  lgl_push_uop_owned(L, out);
  if (lua_istable(L, 3)) {
    lua_pushinteger(L, o.visits);
    lua_setfield(L, 3, "visits");
    lua_pushinteger(L, o.rewrites);
    lua_setfield(L, 3, "rewrites");
    lua_pushinteger(L, o.nodes);
    lua_setfield(L, 3, "nodes");
  }
  return 1;
}

/* ---- the rule host ------------------------------------------------------------------------ */

typedef struct {
  const lg_match *m;
  void *rctx;
  lg_uop *u;
  intptr_t fns;
  int32_t fn, ok;
  const char *name;
  lg_uop *out;
  lg_ruleset *rs;
} host_call;

/* Push callback c->fn; returns how many arguments it takes. */
static int push_fn(lua_State *L, const host_call *c) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, (lua_Integer)c->fns);
  lua_rawgeti(L, -1, 2 * c->fn + 1);
  lua_rawgeti(L, -2, 2 * c->fn + 2);
  int nargs = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  lua_remove(L, -2);
  return nargs;
}

/* fn(captures, ctx, node); ctx is the registry value under rctx (nil for unknown keys) */
static int rule_tramp(lua_State *L) {
  host_call *c = lua_touserdata(L, 1);
  int nargs = push_fn(L, c);
  lua_createtable(L, 0, c->m->ncap);
  for (int32_t i = 0; i < c->m->ncap; i++) {
    if (!c->m->caps[i]) continue;
    lgl_push_uop(L, c->m->caps[i]);
    lua_setfield(L, -2, c->m->names[i]);
  }
  if (nargs >= 2 && c->rctx) lua_rawgetp(L, LUA_REGISTRYINDEX, c->rctx);
  else if (nargs >= 2) lua_pushnil(L);
  if (nargs >= 3) lgl_push_uop(L, c->m->root);
  lua_call(L, nargs > 1 ? nargs : 1, 1);
  if (lua_isnil(L, -1)) return 0;
  lg_uop *u = lgl_to_uop(L, -1);
  if (!u) return luaL_error(L, "returned a %s, expected a UOp or nil", luaL_typename(L, -1));
  c->out = lg_uop_retain(u);
  return 0;
}

static int pred_tramp(lua_State *L) {
  host_call *c = lua_touserdata(L, 1);
  push_fn(L, c);
  lgl_push_uop(L, c->u);
  lua_call(L, 1, 1);
  c->ok = lua_toboolean(L, -1);
  return 0;
}

static int pass_tramp(lua_State *L) {
  host_call *c = lua_touserdata(L, 1);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luagrad.rules");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "pass");
  lua_pushstring(L, c->name);
  lua_call(L, 1, 1);
  lgl_ruleset_box *b = luaL_testudata(L, -1, LGL_RULESET);
  if (!b || !b->rs) return luaL_error(L, "rules.pass('%s') returned a %s, not a RuleSet", c->name, luaL_typename(L, -1));
  c->rs = lg_ruleset_retain(b->rs);
  return 0;
}

/* Run a trampoline under lua_pcall: a Lua error becomes the ctx's message, no longjmp escapes. */
static lg_status protected(lua_State *L, lg_ctx *ctx, lua_CFunction f, host_call *c) {
  if (!lua_checkstack(L, 8)) return lg_ctx_fail(ctx, LG_ERR_NOMEM, "Lua stack overflow");
  lua_pushcfunction(L, f);
  lua_pushlightuserdata(L, c);
  int r = lua_pcall(L, 1, 0, 0);
  if (r == LUA_OK) return LG_OK;
  const char *msg = lua_tostring(L, -1);
  lg_status st = lg_ctx_fail(ctx, r == LUA_ERRMEM ? LG_ERR_NOMEM : LG_ERR_RULE, "%s",
                             msg ? msg : "(error object is not a string)");
  lua_pop(L, 1);
  return st;
}

static lg_status host_rule(void *ud, lg_ctx *ctx, void *fns, int32_t fn, const lg_match *m, void *rctx, lg_uop **out) {
  host_call c = {.m = m, .rctx = rctx, .fns = (intptr_t)fns, .fn = fn};
  lg_status st = protected(((lgl_host *)ud)->L, ctx, rule_tramp, &c);
  *out = c.out;
  return st;
}

static lg_status host_pred(void *ud, lg_ctx *ctx, void *fns, int32_t fn, lg_uop *u, int32_t *ok) {
  host_call c = {.u = u, .fns = (intptr_t)fns, .fn = fn};
  lg_status st = protected(((lgl_host *)ud)->L, ctx, pred_tramp, &c);
  *ok = c.ok;
  return st;
}

static lg_status host_pass(void *ud, lg_ctx *ctx, const char *name, lg_ruleset **out) {
  host_call c = {.name = name};
  lg_status st = protected(((lgl_host *)ud)->L, ctx, pass_tramp, &c);
  *out = c.rs;
  return st;
}

static void host_release(void *ud, void *fns) {
  luaL_unref(((lgl_host *)ud)->L, LUA_REGISTRYINDEX, (int)(intptr_t)fns);
}

void lgl_install_host(lua_State *L, lg_ctx *ctx) {
  lgl_host *h = lua_newuserdatauv(L, sizeof *h, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  h->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &host_key);
  lg_rule_host host = {.ud = h, .call_rule = host_rule, .call_pred = host_pred, .release_fns = host_release,
                       .load_pass = host_pass};
  lg_ctx_set_host(ctx, &host);
}

lua_State *lgl_host_state(const lg_ctx *ctx) {
  const lg_rule_host *h = lg_ctx_host(ctx);
  return h && h->call_rule == host_rule ? ((lgl_host *)h->ud)->L : NULL;
}

static const luaL_Reg rs_meta[] = {{"__gc", rs_gc}, {"__close", rs_gc}, {"__len", rs_len},
                                   {"__tostring", rs_tostring}, {NULL, NULL}};
static const luaL_Reg rs_methods[] = {{"stats", rs_stats}, {"reset_stats", rs_reset_stats}, {"name", rs_name},
                                      {NULL, NULL}};

void lgl_open_rewrite(lua_State *L) {
  luaL_newmetatable(L, LGL_RULESET);
  luaL_setfuncs(L, rs_meta, 0);
  luaL_newlib(L, rs_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_graph_rewrite);
  lua_setfield(L, -2, "graph_rewrite");
}
