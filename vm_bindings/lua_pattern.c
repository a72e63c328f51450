/* lua_pattern.c: the rule DSL (Pattern userdata) and compiling rule lists into engine rule sets
 * (RuleSet userdata; graph_rewrite and the rule host are in lua_rewrite.c).
 *
 * A Pattern is immutable: a small C struct (kind, op set, dtype filter, source mode) and one
 * user value, a table holding its sources [1..n] and name, pred, arg and `where` (file:line of
 * the Lua code that built it). Compiling flattens each pattern tree into the engine's lg_pat
 * arrays; callbacks and predicates go into a table (the set's `fns`, held by a registry
 * reference) and are referred to by index. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lgl.h"

#define LGL_PATTERN "luagrad.Pattern"
#define LGL_NATIVE "luagrad.Native"

enum { MAX_DT = 16, MAX_NODES = 1 << 20 };

typedef struct lpat {
  int32_t kind, src_mode, comm, nkids;
  int32_t nops; /* ops in mask; 0: any op */
  uint64_t mask[2];
  uint32_t dtc;
  int32_t ndt;
  lg_dtype dts[MAX_DT];
  int32_t has_arg;
  int64_t size, tot_ops, tot_dts; /* over the whole tree: nodes, op-list and dtype-list entries */
} lpat;

/* ---- building patterns -------------------------------------------------------------------- */

static lpat *test_pat(lua_State *L, int idx) { return luaL_testudata(L, idx, LGL_PATTERN); }

static lpat *check_pat(lua_State *L, int idx) {
  lpat *p = test_pat(L, idx);
  if (!p) luaL_typeerror(L, idx, "Pattern");
  return p;
}

/* file:line of the innermost Lua function running: where a pattern is built */
static void push_where(lua_State *L) {
  lua_Debug ar;
  for (int level = 1; lua_getstack(L, level, &ar); level++) {
    lua_getinfo(L, "Sl", &ar);
    if (ar.currentline > 0) {
      lua_pushfstring(L, "%s:%d", ar.short_src, ar.currentline);
      return;
    }
  }
  lua_pushliteral(L, "?");
}

static lpat *new_pat(lua_State *L, int32_t kind) {
  lpat *p = lua_newuserdatauv(L, sizeof *p, 1);
  *p = (lpat){.kind = kind, .size = 1};
  luaL_setmetatable(L, LGL_PATTERN);
  lua_createtable(L, 2, 2);
  push_where(L);
  lua_setfield(L, -2, "where");
  lua_setiuservalue(L, -2, 1);
  return p;
}

static bool has_op(const lpat *p, int32_t op) { return (p->mask[op >> 6] >> (op & 63)) & 1; }

static void set_ops(lpat *p, int32_t op) {
  p->mask[op >> 6] |= 1ull << (op & 63);
  p->nops++;
  p->tot_ops++;
}

/* The pattern of the value at idx: a Pattern, or a number/boolean as a constant (replaces the
 * value in place). `what` names the operand in errors. */
static lpat *to_pat(lua_State *L, int idx, const char *what) {
  idx = lua_absindex(L, idx);
  lpat *p = test_pat(L, idx);
  if (p) return p;
  if (lua_type(L, idx) != LUA_TNUMBER && !lua_isboolean(L, idx))
    luaL_error(L, "%s is a %s, expected a pattern, a number or a boolean", what, luaL_typename(L, idx));
  p = new_pat(L, LG_PAT_OP);
  set_ops(p, LG_OP_CONST);
  p->has_arg = 1;
  lua_getiuservalue(L, -1, 1);
  lua_pushvalue(L, idx);
  lua_setfield(L, -2, "arg");
  lua_pop(L, 1);
  lua_replace(L, idx);
  return p;
}

/* Append the pattern at kid (converted with to_pat) to the sources of the pattern at idx. */
static void add_kid(lua_State *L, int idx, int kid, const char *what) {
  idx = lua_absindex(L, idx);
  kid = lua_absindex(L, kid);
  lpat *p = lua_touserdata(L, idx), *k = to_pat(L, kid, what);
  p->size += k->size;
  p->tot_ops += k->tot_ops;
  p->tot_dts += k->tot_dts;
  if (p->size > MAX_NODES) luaL_error(L, "pattern too large (more than %d nodes)", MAX_NODES);
  lua_getiuservalue(L, idx, 1);
  lua_pushvalue(L, kid);
  lua_rawseti(L, -2, ++p->nkids);
  lua_pop(L, 1);
}

static lpat *copy_pat(lua_State *L, int idx) {
  lpat *src = check_pat(L, idx);
  lpat *p = lua_newuserdatauv(L, sizeof *p, 1);
  *p = *src;
  luaL_setmetatable(L, LGL_PATTERN);
  lua_newtable(L);
  lua_getiuservalue(L, idx, 1);
  for (lua_pushnil(L); lua_next(L, -2);) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -5);
  }
  lua_pop(L, 1);
  lua_setiuservalue(L, -2, 1);
  return p;
}

/* A dtype filter item: a DType, a dtype name, or a class name (bool is the dtype). */
static void add_dtype(lua_State *L, lpat *p, int idx) {
  static const char *const classes[] = {"int", "sint", "uint", "float", NULL};
  static const uint32_t bits[] = {LG_DTC_SINT | LG_DTC_UINT, LG_DTC_SINT, LG_DTC_UINT, LG_DTC_FLOAT};
  lg_dtype dt;
  if (lua_type(L, idx) == LUA_TSTRING) {
    const char *s = lua_tostring(L, idx);
    for (int i = 0; classes[i]; i++)
      if (strcmp(s, classes[i]) == 0) {
        p->dtc |= bits[i];
        return;
      }
    int32_t id = lg_dtype_lookup(s);
    if (id < 0) luaL_error(L, "unknown dtype or dtype class '%s' (classes: int, sint, uint, float)", s);
    dt = (lg_dtype)id;
  } else if (lgl_is_dtype(L, idx)) {
    dt = lgl_check_dtype(L, idx);
  } else {
    luaL_error(L, "a dtype filter takes dtypes, dtype names or classes, got a %s", luaL_typename(L, idx));
    return;
  }
  if (p->ndt == MAX_DT) luaL_error(L, "a dtype filter takes at most %d dtypes", MAX_DT);
  p->dts[p->ndt++] = dt;
  p->tot_dts++;
}

/* Replace p's dtype filter with the value at idx: one item or a list of them. */
static void set_dtypes(lua_State *L, lpat *p, int idx) {
  idx = lua_absindex(L, idx);
  p->tot_dts -= p->ndt;
  p->ndt = 0;
  p->dtc = 0;
  if (lua_type(L, idx) != LUA_TTABLE) {
    add_dtype(L, p, idx);
    return;
  }
  for (lua_Integer i = 1, n = (lua_Integer)lua_rawlen(L, idx); i <= n; i++) {
    lua_rawgeti(L, idx, i);
    add_dtype(L, p, lua_gettop(L));
    lua_pop(L, 1);
  }
}

static void set_field(lua_State *L, int pat, const char *field, int value) {
  value = lua_absindex(L, value);
  lua_getiuservalue(L, pat, 1);
  lua_pushvalue(L, value);
  lua_setfield(L, -2, field);
  lua_pop(L, 1);
}

/* P.var(name [, dtypes]) / P.cvar(name [, dtypes]) / P.const(value [, dtypes]) */
static int leaf(lua_State *L, bool is_const, bool has_value) {
  lua_settop(L, 2);
  if (has_value) luaL_argcheck(L, lua_type(L, 1) == LUA_TNUMBER || lua_isboolean(L, 1), 1, "number or boolean expected");
  else if (!lua_isnil(L, 1)) luaL_checkstring(L, 1);
  lpat *p = new_pat(L, LG_PAT_OP);
  if (is_const) set_ops(p, LG_OP_CONST);
  p->has_arg = has_value;
  if (!lua_isnil(L, 2)) set_dtypes(L, p, 2);
  if (!lua_isnil(L, 1)) set_field(L, 3, has_value ? "arg" : "name", 1);
  return 1;
}
static int l_var(lua_State *L) { return leaf(L, false, false); }
static int l_cvar(lua_State *L) { return leaf(L, true, false); }
static int l_const(lua_State *L) { return leaf(L, true, true); }

static int32_t check_op(lua_State *L, int idx) {
  const char *name = lua_tostring(L, idx);
  int32_t op = lua_type(L, idx) == LUA_TSTRING ? lg_op_lookup(name) : -1;
  if (op < 0) {
    if (lua_type(L, idx) == LUA_TSTRING) luaL_error(L, "P.op: unknown op '%s'", name);
    luaL_error(L, "P.op: an op is named by a string, got a %s", luaL_typename(L, idx));
  }
  return op;
}

/* P.op(ops, {src = {...} | each = p, rest = true, dtype =, arg =, name =, pred =, commutative =}) */
static int l_op(lua_State *L) {
  static const char *const keys[] = {"src", "each", "rest", "dtype", "arg", "name", "pred", "commutative", NULL};
  lua_settop(L, 2);
  if (!lua_isnil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  lpat *p = new_pat(L, LG_PAT_OP); /* index 3 */
  if (lua_type(L, 1) == LUA_TTABLE) {
    for (lua_Integer i = 1, n = (lua_Integer)lua_rawlen(L, 1); i <= n; i++) {
      lua_rawgeti(L, 1, i);
      int32_t op = check_op(L, -1);
      if (!has_op(p, op)) set_ops(p, op);
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, 1)) {
    set_ops(p, check_op(L, 1));
  }
  if (lua_isnil(L, 2)) return 1;
  for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1)) {
    int known = 0;
    for (int i = 0; keys[i] && !known; i++) known = lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), keys[i]) == 0;
    if (!known) return luaL_error(L, "P.op: unknown option '%s'", luaL_tolstring(L, -2, NULL));
  }
  int src = lua_getfield(L, 2, "src"), each = lua_getfield(L, 2, "each"); /* 4, 5 */
  if (src != LUA_TNIL && each != LUA_TNIL) return luaL_error(L, "P.op: give src or each, not both");
  if (src != LUA_TNIL) {
    luaL_argcheck(L, src == LUA_TTABLE, 2, "src must be a list of patterns");
    for (lua_Integer i = 1, n = (lua_Integer)lua_rawlen(L, 4); i <= n; i++) {
      char what[32];
      snprintf(what, sizeof what, "P.op: src[%d]", (int)i);
      lua_rawgeti(L, 4, i);
      add_kid(L, 3, -1, what);
      lua_pop(L, 1);
    }
    p->src_mode = lua_getfield(L, 2, "rest") != LUA_TNIL && lua_toboolean(L, -1) ? LG_SRC_PREFIX : LG_SRC_EXACT;
    lua_pop(L, 1);
  } else if (each != LUA_TNIL) {
    add_kid(L, 3, 5, "P.op: each");
    p->src_mode = LG_SRC_EACH;
  }
  if (lua_getfield(L, 2, "dtype") != LUA_TNIL) set_dtypes(L, p, -1);
  if (lua_getfield(L, 2, "arg") != LUA_TNIL) {
    lg_arg a;
    lgl_check_arg(L, -1, &a); /* checks the value; the scratch it pushes is not needed yet */
    lua_pop(L, 1);
    set_field(L, 3, "arg", -1);
    p->has_arg = 1;
  }
  if (lua_getfield(L, 2, "name") != LUA_TNIL) {
    luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, 2, "name must be a string");
    set_field(L, 3, "name", -1);
  }
  if (lua_getfield(L, 2, "pred") != LUA_TNIL) {
    luaL_argcheck(L, lua_isfunction(L, -1), 2, "pred must be a function");
    set_field(L, 3, "pred", -1);
  }
  bool all_comm = p->nops > 0;
  for (int32_t op = 0; op < LG_OP__COUNT; op++)
    if (has_op(p, op)) all_comm = all_comm && (lg_op_flags(op) & LG_OPF_COMM);
  int c = lua_getfield(L, 2, "commutative");
  p->comm = c == LUA_TNIL ? (all_comm && p->src_mode == LG_SRC_EXACT && p->nkids == 2) : lua_toboolean(L, -1);
  if (p->comm && (p->src_mode != LG_SRC_EXACT || p->nkids != 2))
    return luaL_error(L, "P.op: a commutative pattern needs exactly 2 sources");
  lua_settop(L, 3);
  return 1;
}

/* P.any(p1, p2, ...) or P.any{p1, p2, ...} */
static int l_any(lua_State *L) {
  if (lua_gettop(L) == 1 && lua_type(L, 1) == LUA_TTABLE) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    luaL_checkstack(L, (int)n, "too many alternatives");
    for (lua_Integer i = 1; i <= n; i++) lua_rawgeti(L, 1, i);
    lua_remove(L, 1);
  }
  int n = lua_gettop(L);
  if (n < 1) return luaL_error(L, "P.any: needs at least one alternative");
  new_pat(L, LG_PAT_ANY);
  for (int i = 1; i <= n; i++) {
    char what[32];
    snprintf(what, sizeof what, "P.any: alternative %d", i);
    add_kid(L, n + 1, i, what);
  }
  return 1;
}

/* An op pattern over the values at first..first+n-1. */
static int op_node(lua_State *L, int32_t op, int first, int n) {
  lpat *p = new_pat(L, LG_PAT_OP);
  int top = lua_gettop(L);
  set_ops(p, op);
  p->src_mode = LG_SRC_EXACT;
  for (int i = 0; i < n; i++) {
    char what[48];
    snprintf(what, sizeof what, "%s: operand %d", lg_op_name(op), i + 1);
    add_kid(L, top, first + i, what);
  }
  p->comm = n == 2 && (lg_op_flags(op) & LG_OPF_COMM);
  lua_settop(L, top);
  return 1;
}

#define BINOP(fname, OP)          \
  static int fname(lua_State *L) { \
    lua_settop(L, 2);              \
    return op_node(L, OP, 1, 2);   \
  }
BINOP(m_add, LG_OP_ADD)
BINOP(m_sub, LG_OP_SUB)
BINOP(m_mul, LG_OP_MUL)
BINOP(m_div, LG_OP_FDIV)
BINOP(m_idiv, LG_OP_IDIV)
BINOP(m_mod, LG_OP_MOD)
BINOP(m_pow, LG_OP_POW)
BINOP(m_band, LG_OP_AND)
BINOP(m_bor, LG_OP_OR)
BINOP(m_bxor, LG_OP_XOR)
BINOP(m_shl, LG_OP_SHL)
BINOP(m_shr, LG_OP_SHR)
BINOP(m_max, LG_OP_MAX)
BINOP(m_lt, LG_OP_CMPLT)
BINOP(m_ne, LG_OP_CMPNE)
BINOP(m_eq, LG_OP_CMPEQ)
#undef BINOP

static int m_unm(lua_State *L) {
  lua_settop(L, 1);
  return op_node(L, LG_OP_NEG, 1, 1);
}

static int m_where(lua_State *L) {
  check_pat(L, 1);
  lua_settop(L, 3);
  return op_node(L, LG_OP_WHERE, 1, 3);
}
static int m_gt(lua_State *L) { /* a > b is b < a */
  check_pat(L, 1);
  lua_settop(L, 2);
  lua_rotate(L, 1, 1);
  return op_node(L, LG_OP_CMPLT, 1, 2);
}

static int m_cast(lua_State *L) {
  check_pat(L, 1);
  lua_settop(L, 2);
  op_node(L, LG_OP_CAST, 1, 1);
  set_dtypes(L, lua_touserdata(L, 3), 2);
  return 1;
}

static int m_named(lua_State *L) {
  luaL_checkstring(L, 2);
  copy_pat(L, 1);
  set_field(L, 3, "name", 2);
  return 1;
}

static int m_dtype(lua_State *L) {
  int n = lua_gettop(L);
  lpat *p = copy_pat(L, 1);
  if (n == 2) {
    set_dtypes(L, p, 2);
  } else {
    p->tot_dts -= p->ndt;
    p->ndt = 0;
    p->dtc = 0;
    for (int i = 2; i <= n; i++) add_dtype(L, p, i);
  }
  return 1;
}

static int m_pred(lua_State *L) {
  luaL_checktype(L, 2, LUA_TFUNCTION);
  copy_pat(L, 1);
  lua_getiuservalue(L, 3, 1);
  if (lua_getfield(L, -1, "pred") != LUA_TNIL) return luaL_error(L, "pattern already has a predicate");
  lua_pop(L, 2);
  set_field(L, 3, "pred", 2);
  return 1;
}

/* A readable form: ADD(x, 0), any(...), SINK(each _), INDEX(a, b, ...); `name=` marks a
 * captured op node. Sources deeper than 8 levels print as "...". */
static void push_text(lua_State *L, int idx, int depth) {
  lpat *p = lua_touserdata(L, idx);
  luaL_checkstack(L, 8, NULL);
  lua_getiuservalue(L, idx, 1);
  int tbl = lua_gettop(L);
  bool is_const = p->nops == 1 && has_op(p, LG_OP_CONST) && p->has_arg;
  if (p->kind == LG_PAT_ANY) {
    lua_pushliteral(L, "any");
  } else if (is_const) {
    lua_getfield(L, tbl, "arg");
    luaL_tolstring(L, -1, NULL);
    lua_remove(L, -2);
  } else {
    int named = lua_getfield(L, tbl, "name") == LUA_TSTRING;
    if (!named) lua_pop(L, 1);
    if (named && p->nops) lua_pushliteral(L, "=");
    if (!named && !p->nops) lua_pushliteral(L, "_");
    for (int32_t op = 0, k = 0; op < LG_OP__COUNT; op++)
      if (has_op(p, op)) {
        if (k++) lua_pushliteral(L, "|");
        lua_pushstring(L, lg_op_name(op));
        lua_concat(L, lua_gettop(L) - tbl);
      }
  }
  if (p->nkids || p->src_mode == LG_SRC_EXACT) {
    lua_pushstring(L, p->src_mode == LG_SRC_EACH ? "(each " : "(");
    for (int32_t i = 1; i <= p->nkids; i++) {
      if (i > 1) lua_pushliteral(L, ", ");
      if (depth >= 8) {
        lua_pushliteral(L, "...");
      } else {
        lua_rawgeti(L, tbl, i);
        push_text(L, lua_gettop(L), depth + 1);
        lua_remove(L, -2);
      }
      lua_concat(L, lua_gettop(L) - tbl);
    }
    lua_pushstring(L, p->src_mode == LG_SRC_PREFIX ? ", ...)" : ")");
  }
  lua_concat(L, lua_gettop(L) - tbl);
  lua_remove(L, tbl);
}

static int m_tostring(lua_State *L) {
  check_pat(L, 1);
  push_text(L, 1, 0);
  return 1;
}

/* P.native(name): a result computed by the engine itself ("fold", "bounds") */
static int l_native(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  int32_t id = lg_native_lookup(name);
  if (!id) return luaL_error(L, "P.native: unknown native result '%s' (known: fold, bounds)", name);
  *(int32_t *)lua_newuserdatauv(L, sizeof id, 1) = id;
  luaL_setmetatable(L, LGL_NATIVE);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

static int native_tostring(lua_State *L) {
  luaL_checkudata(L, 1, LGL_NATIVE);
  lua_getiuservalue(L, 1, 1);
  lua_pushfstring(L, "native(%s)", lua_tostring(L, -1));
  return 1;
}

/* ---- compiling rule lists ----------------------------------------------------------------- */

typedef struct {
  int fns, fnidx, keep; /* stack indices: callbacks list, function -> index, values to keep alive */
} compiler;

static void keep(lua_State *L, const compiler *c) { lua_rawseti(L, c->keep, (lua_Integer)lua_rawlen(L, c->keep) + 1); }

/* The engine index of the function at the top (added to fns once); pops it. fns holds pairs:
 * fns[2i+1] the function, fns[2i+2] how many arguments it takes (a callback that declares only
 * (m) is not given ctx and node: that saves making a userdata for every call). */
static int32_t fn_index(lua_State *L, const compiler *c) {
  lua_pushvalue(L, -1);
  if (lua_rawget(L, c->fnidx) == LUA_TNUMBER) {
    int32_t i = (int32_t)lua_tointeger(L, -1);
    lua_pop(L, 2);
    return i;
  }
  lua_pop(L, 1);
  lua_Debug ar;
  lua_pushvalue(L, -1);
  lua_getinfo(L, ">u", &ar);
  int32_t i = (int32_t)lua_rawlen(L, c->fns) / 2;
  lua_pushvalue(L, -1);
  lua_rawseti(L, c->fns, 2 * i + 1);
  lua_pushinteger(L, ar.isvararg || ar.nparams > 3 ? 3 : ar.nparams);
  lua_rawseti(L, c->fns, 2 * i + 2);
  lua_pushinteger(L, i);
  lua_rawset(L, c->fnidx);
  return i;
}

/* Flatten the pattern tree at `root` into lg_pat nodes in preorder (sources after their user). */
static lg_pat *flatten(lua_State *L, int root, const compiler *c, int32_t *count) {
  lpat *rp = lua_touserdata(L, root);
  int64_t n = rp->size;
  size_t bytes = (size_t)n * sizeof(lg_pat) + (size_t)(rp->tot_ops + 3 * n + rp->tot_dts) * sizeof(int32_t);
  lg_pat *pats = lua_newuserdatauv(L, bytes, 0);
  keep(L, c);
  int32_t *ints = (int32_t *)(pats + n), *par = ints + rp->tot_ops + n, *slot = par + n;
  lg_dtype *dts = (lg_dtype *)(slot + n);
  int32_t nints = 0, ndts = 0, sp = 1, k = 0;
  lua_createtable(L, 16, 0);
  int work = lua_gettop(L);
  lua_pushvalue(L, root);
  lua_rawseti(L, work, 1);
  par[0] = -1;
  while (sp > 0) {
    lua_rawgeti(L, work, sp);
    lpat *p = lua_touserdata(L, -1);
    int32_t i = k++, parent = par[sp - 1], sl = slot[sp - 1];
    sp--;
    if (parent >= 0) ints[pats[parent].src - ints + sl] = i;
    lg_pat *q = &pats[i];
    *q = (lg_pat){.kind = p->kind, .src_mode = p->src_mode, .commutative = p->comm, .nsrc = p->nkids,
                  .dtype_classes = p->dtc, .ndtypes = p->ndt, .has_arg = p->has_arg, .pred = -1};
    q->ops = ints + nints;
    for (int32_t op = 0; p->nops && op < LG_OP__COUNT; op++)
      if (has_op(p, op)) ints[nints++] = op, q->nops++;
    q->dtypes = dts + ndts;
    for (int32_t j = 0; j < p->ndt; j++) dts[ndts++] = p->dts[j];
    q->src = ints + nints;
    nints += p->nkids;
    lua_getiuservalue(L, -1, 1);
    if (lua_getfield(L, -1, "name") == LUA_TSTRING) q->name = lua_tostring(L, -1); /* the pattern keeps it */
    lua_pop(L, 1);
    if (lua_getfield(L, -1, "pred") == LUA_TFUNCTION) q->pred = fn_index(L, c);
    else lua_pop(L, 1);
    if (p->has_arg) {
      lua_getfield(L, -1, "arg");
      lgl_check_arg(L, -1, &q->arg);
      keep(L, c);
      lua_pop(L, 1);
    }
    for (int32_t j = p->nkids; j >= 1; j--) {
      lua_rawgeti(L, -1, j);
      lua_rawseti(L, work, ++sp);
      par[sp - 1] = i;
      slot[sp - 1] = j - 1;
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  *count = k;
  return pats;
}

/* Compile rule i of the list at `list` (the rule table is at the top of the stack). */
static void compile_rule(lua_State *L, lg_ruleset *rs, const compiler *c, lua_Integer i) {
  int rule = lua_gettop(L);
  if (lua_type(L, rule) != LUA_TTABLE)
    luaL_error(L, "rule %d of %s is a %s, expected {pattern, result [, name = ]}", (int)i, lg_ruleset_name(rs),
               luaL_typename(L, rule));
  for (lua_pushnil(L); lua_next(L, rule); lua_pop(L, 1)) {
    bool ok = lua_isinteger(L, -2) ? (lua_tointeger(L, -2) == 1 || lua_tointeger(L, -2) == 2)
                                   : lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "name") == 0;
    if (!ok) luaL_error(L, "rule %d of %s: unknown item %s", (int)i, lg_ruleset_name(rs), luaL_tolstring(L, -2, NULL));
  }
  char what[64];
  snprintf(what, sizeof what, "rule %d of %s: the pattern", (int)i, lg_ruleset_name(rs));
  lua_rawgeti(L, rule, 1); /* rule+1: the pattern */
  to_pat(L, rule + 1, what);
  lua_getiuservalue(L, rule + 1, 1);
  lua_getfield(L, -1, "where"); /* rule+2: where the pattern was built */
  lua_remove(L, -2);
  int named = lua_getfield(L, rule, "name"); /* rule+3: the rule's name */
  if (named != LUA_TNIL && named != LUA_TSTRING) luaL_error(L, "rule %d of %s: name must be a string", (int)i, lg_ruleset_name(rs));
  if (named == LUA_TNIL) {
    lua_pop(L, 1);
    if (strcmp(lua_tostring(L, rule + 2), "?") != 0) lua_pushvalue(L, rule + 2);
    else lua_pushfstring(L, "%s#%d", lg_ruleset_name(rs), (int)i);
  }
  lg_rule_def def = {.name = lua_tostring(L, rule + 3), .fn = -1};
  def.pat = flatten(L, rule + 1, c, &def.npat);
  int rt = lua_rawgeti(L, rule, 2);
  if (rt == LUA_TFUNCTION) {
    def.fn = fn_index(L, c);
  } else if (luaL_testudata(L, -1, LGL_NATIVE)) {
    def.native = *(int32_t *)lua_touserdata(L, -1);
  } else if (rt == LUA_TNUMBER || rt == LUA_TBOOLEAN || test_pat(L, -1)) {
    to_pat(L, -1, "");
    def.tmpl = flatten(L, lua_gettop(L), c, &def.ntmpl);
  } else {
    luaL_error(L, "%s: rule %s: the result is a %s, expected a function, a pattern, a value or P.native",
               lua_tostring(L, rule + 2), def.name, luaL_typename(L, -1));
  }
  if (lg_ruleset_add(rs, &def) != LG_OK) {
    if (strcmp(def.name, lua_tostring(L, rule + 2)) == 0) lua_pushstring(L, lg_ctx_error(lgl_ctx(L)));
    else lua_pushfstring(L, "%s: %s", lua_tostring(L, rule + 2), lg_ctx_error(lgl_ctx(L)));
    lua_error(L);
  }
  lua_settop(L, rule);
}

/* core.compile(list [, name]) -> RuleSet */
int lgl_compile(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *name = luaL_optstring(L, 2, "rules");
  lg_ctx *ctx = lgl_ctx(L);
  lua_settop(L, 2);
  lgl_ruleset_box *b = lua_newuserdatauv(L, sizeof *b, 0); /* 3 */
  b->rs = NULL;
  luaL_setmetatable(L, LGL_RULESET);
  compiler c = {.fns = 4, .fnidx = 5, .keep = 6};
  lua_newtable(L);
  lua_pushvalue(L, -1);
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (lg_ruleset_new(ctx, name, (void *)(intptr_t)ref, &b->rs) != LG_OK) {
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    return lgl_fail(L, ctx);
  }
  lua_newtable(L);
  lua_newtable(L);
  for (lua_Integer i = 1, n = (lua_Integer)lua_rawlen(L, 1); i <= n; i++) {
    lua_rawgeti(L, 1, i);
    compile_rule(L, b->rs, &c, i);
    lua_pop(L, 1);
  }
  lua_settop(L, 3);
  return 1;
}

/* ---- registration ------------------------------------------------------------------------- */

static const luaL_Reg pat_meta[] = {
    {"__add", m_add}, {"__sub", m_sub}, {"__mul", m_mul}, {"__div", m_div}, {"__idiv", m_idiv},
    {"__mod", m_mod}, {"__pow", m_pow}, {"__unm", m_unm}, {"__band", m_band}, {"__bor", m_bor},
    {"__bxor", m_bxor}, {"__shl", m_shl}, {"__shr", m_shr}, {"__tostring", m_tostring}, {NULL, NULL}};

static const luaL_Reg pat_methods[] = {
    {"lt", m_lt}, {"gt", m_gt}, {"ne", m_ne}, {"eq", m_eq}, {"max", m_max}, {"where", m_where},
    {"cast", m_cast}, {"named", m_named}, {"dtype", m_dtype}, {"pred", m_pred}, {NULL, NULL}};


static const luaL_Reg pattern_funcs[] = {{"var", l_var}, {"cvar", l_cvar}, {"const", l_const}, {"op", l_op},
                                         {"any", l_any}, {"native", l_native}, {NULL, NULL}};
static const luaL_Reg native_meta[] = {{"__tostring", native_tostring}, {NULL, NULL}};
static const luaL_Reg no_methods[] = {{NULL, NULL}};

static void new_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods) {
  luaL_newmetatable(L, name);
  luaL_setfuncs(L, meta, 0);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

void lgl_open_pattern(lua_State *L) {
  new_class(L, LGL_PATTERN, pat_meta, pat_methods);
  new_class(L, LGL_NATIVE, native_meta, no_methods);
  luaL_newlib(L, pattern_funcs);
  lua_setfield(L, -2, "pattern");
  lua_pushcfunction(L, lgl_compile);
  lua_setfield(L, -2, "compile");
}
