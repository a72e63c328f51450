/* lua_opt.c: core.opt, the kernel optimizer's transformations (core/opt.c) for luagrad.opt:
 *   ranges(sink) -> {[axis] = {node =, axis =, kind =, size = (nil when not a constant)}}
 *   dependents(root, r) -> {[node] = true | false} for every node of root
 *   upcast, unroll, accumulate, pad, vectorize (sink, axis, n); merge, swap (sink, a, b)
 *   apply(sink, {{name, x, y}, ...}) -> the steps, simplified (lg_opt_apply)
 *   LANES, MAX_LANES
 * Axes may be floats with an integer value (Lua finds table keys so); amounts must be integers.
 * A value the engine cannot take is named in the error the transformation would raise. */
#include "lgl.h"

/* an axis: a number with an integer value */
static int to_axis(lua_State *L, int idx, int64_t *out) {
  int ok = 0;
  if (lua_type(L, idx) == LUA_TNUMBER) *out = (int64_t)lua_tointegerx(L, idx, &ok);
  return ok;
}

static int no_axis(lua_State *L, int32_t op, int idx) {
  return luaL_error(L, "opt: %s: the kernel has no range of axis %s", lg_opt_name(op), luaL_tolstring(L, idx, NULL));
}

/* The transformation op of sink with the values at ix and iy; pushes the new kernel. The
 * errors come in the order the transformation checks: the first axis, then the second or the
 * amount. */
static int step(lua_State *L, int32_t op, lg_uop *sink, int ix, int iy) {
  lg_ctx *ctx = lgl_ctx(L);
  lg_opt_step s = {.op = op};
  lg_uop *out;
  int two_axes = op == LG_OPT_MERGE || op == LG_OPT_SWAP;
  if (!to_axis(L, ix, &s.x)) return no_axis(L, op, ix);
  if (two_axes ? !to_axis(L, iy, &s.y) : !lua_isinteger(L, iy)) {
    if (lg_opt_range(ctx, sink, op, s.x, &out)) return lgl_fail(L, ctx);
    if (two_axes) return no_axis(L, op, iy);
    const char *v = luaL_tolstring(L, iy, NULL);
    if (op == LG_OPT_PAD) return luaL_error(L, "opt: pad: the multiple must be an integer >= 1, got %s", v);
    if (op == LG_OPT_VECTORIZE)
      return luaL_error(L, "opt: vectorize: the width must be a power of 2 from 2 to %d, got %s", LG_OPT_MAX_LANES, v);
    return luaL_error(L, "opt: %s: the amount must be an integer >= 1, got %s", lg_opt_name(op), v);
  }
  s.y = lua_tointeger(L, iy);
  if (lg_opt_transform(ctx, sink, &s, &out)) return lgl_fail(L, ctx);
  lgl_push_uop_owned(L, out);
  return 1;
}

/* upvalue 1: the LG_OPT_* op */
static int l_step(lua_State *L) {
  lg_uop *sink = lgl_check_uop(L, 1);
  return step(L, (int32_t)lua_tointeger(L, lua_upvalueindex(1)), sink, 2, 3);
}

/* The steps of the list at idx as lg_opt_steps, up to the first that the engine cannot take (a
 * name that is not a transformation, an axis or amount that is not an integer); returns how
 * many it read, and leaves the steps' array on the stack. */
static int32_t read_steps(lua_State *L, int idx, lg_opt_step **out, int32_t *total) {
  int32_t n = 0;
  while (lua_geti(L, idx, n + 1) != LUA_TNIL) lua_pop(L, 1), n++;
  lua_pop(L, 1);
  lg_opt_step *steps = lua_newuserdatauv(L, sizeof *steps * (size_t)(n ? n : 1), 0);
  int32_t good = 0;
  for (; good < n; good++) {
    lg_opt_step *s = &steps[good];
    int ok = lua_geti(L, idx, good + 1) == LUA_TTABLE;
    if (ok && lua_geti(L, -1, 1) == LUA_TSTRING)
      s->op = lg_opt_lookup(lua_tostring(L, -1));
    else
      s->op = -1;
    if (ok) {
      lua_geti(L, -2, 2);
      lua_geti(L, -3, 3);
      ok = s->op >= 0 && to_axis(L, -2, &s->x) &&
           (s->op == LG_OPT_MERGE || s->op == LG_OPT_SWAP ? to_axis(L, -1, &s->y) : lua_isinteger(L, -1));
      if (ok) s->y = lua_tointeger(L, -1);
      lua_pop(L, 3);
    }
    lua_pop(L, 1);
    if (!ok) break;
  }
  *out = steps;
  *total = n;
  return good;
}

/* apply(sink, opts): the whole list in one call; a step the engine cannot take raises its
 * error after the steps before it ran (they may fail first) */
static int l_apply(lua_State *L) {
  lg_uop *sink = lgl_check_uop(L, 1), *out;
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lg_ctx *ctx = lgl_ctx(L);
  lg_opt_step *steps;
  int32_t n, good = read_steps(L, 2, &steps, &n);
  if (good == n) {
    if (lg_opt_apply(ctx, sink, steps, n, &out)) return lgl_fail(L, ctx);
    lgl_push_uop_owned(L, out);
    return 1;
  }
  if (lg_opt_steps(ctx, sink, steps, good, &out)) return lgl_fail(L, ctx);
  lgl_push_uop_owned(L, out); /* index 4 */
  lua_geti(L, 2, good + 1);   /* index 5: the step */
  if (!lua_istable(L, 5))
    return luaL_error(L, "opt: apply: step %d is a %s, expected {name, x, y}", good + 1, luaL_typename(L, 5));
  lua_geti(L, 5, 1);
  int32_t op = lua_type(L, 6) == LUA_TSTRING ? lg_opt_lookup(lua_tostring(L, 6)) : -1;
  if (op < 0)
    return luaL_error(L,
                      "opt: apply: step %d is %s; expected upcast, unroll, accumulate, merge, pad, swap or vectorize",
                      good + 1, luaL_tolstring(L, 6, NULL));
  lua_geti(L, 5, 2);
  lua_geti(L, 5, 3);
  return step(L, op, lgl_check_uop(L, 4), 7, 8);
}

/* ranges(sink): the RANGEs by axis (the last of an axis in the toposort) */
static int l_ranges(lua_State *L) {
  lg_uop *sink = lgl_check_uop(L, 1);
  int64_t n = lg_uop_size(sink);
  lg_uop **nodes = n < 0 ? NULL : lua_newuserdatauv(L, sizeof *nodes * (size_t)n, 0);
  if (n < 0 || lg_uop_toposort(sink, nodes, n) != n) return luaL_error(L, "opt: ranges: out of memory");
  lua_newtable(L);
  for (int64_t i = 0; i < n; i++) {
    lg_uop *u = nodes[i], *e;
    const lg_arg *a = lg_uop_arg(u);
    if (lg_uop_op(u) != LG_OP_RANGE || a->kind != LG_ARG_INTS || a->n < 2) continue;
    lua_createtable(L, 0, 4);
    lgl_push_uop(L, u);
    lua_setfield(L, -2, "node");
    lua_pushinteger(L, a->ints[0]);
    lua_setfield(L, -2, "axis");
    lua_pushinteger(L, a->ints[1]);
    lua_setfield(L, -2, "kind");
    if (lg_uop_op(e = lg_uop_src(u, 0)) == LG_OP_CONST) {
      lgl_push_arg(L, e);
      lua_setfield(L, -2, "size");
    }
    lua_rawseti(L, -2, a->ints[0]);
  }
  return 1;
}

/* dependents(root, r): node -> whether it depends on r */
static int l_dependents(lua_State *L) {
  lg_uop *root = lgl_check_uop(L, 1), *r = lgl_check_uop(L, 2);
  lg_ctx *ctx = lgl_ctx(L);
  int64_t n = lg_uop_size(root);
  lg_uop **nodes = n < 0 ? NULL : lua_newuserdatauv(L, sizeof *nodes * (size_t)n, 0);
  if (n < 0 || lg_uop_toposort(root, nodes, n) != n) return luaL_error(L, "opt: dependents: out of memory");
  uint8_t *dep = lua_newuserdatauv(L, (size_t)n, 0);
  if (lg_opt_dependents(ctx, nodes, n, r, dep)) return lgl_fail(L, ctx);
  lua_createtable(L, 0, (int)n);
  for (int64_t i = 0; i < n; i++) {
    lgl_push_uop(L, nodes[i]);
    lua_pushboolean(L, dep[i]);
    lua_rawset(L, -3);
  }
  return 1;
}

void lgl_open_opt(lua_State *L) {
  lua_createtable(L, 0, LG_OPT__COUNT + 5);
  for (int32_t op = 0; op < LG_OPT__COUNT; op++) {
    lua_pushinteger(L, op);
    lua_pushcclosure(L, l_step, 1);
    lua_setfield(L, -2, lg_opt_name(op));
  }
  lua_pushcfunction(L, l_apply);
  lua_setfield(L, -2, "apply");
  lua_pushcfunction(L, l_ranges);
  lua_setfield(L, -2, "ranges");
  lua_pushcfunction(L, l_dependents);
  lua_setfield(L, -2, "dependents");
  lua_pushinteger(L, LG_RANGE_LANES);
  lua_setfield(L, -2, "LANES");
  lua_pushinteger(L, LG_OPT_MAX_LANES);
  lua_setfield(L, -2, "MAX_LANES");
  lua_setfield(L, -2, "opt");
}
