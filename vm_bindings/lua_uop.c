/* lua_uop.c: UOp userdata. Fields op/dtype/src/arg/vmin/vmax, arithmetic metamethods that build
 * ALU nodes (numbers become constants of the other side's dtype), and graph utilities. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lgl.h"

typedef struct {
  lg_uop *u;
} uop_box;

static const char cache_key = 'u'; /* registry key: weak table node pointer -> userdata */
static const char op_ids_key = 'o'; /* registry key: table op name -> op number */

void lgl_push_uop(lua_State *L, lg_uop *u) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_key);
  if (lua_rawgetp(L, -1, u) == LUA_TNIL) {
    lua_pop(L, 1);
    uop_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->u = lg_uop_retain(u);
    luaL_setmetatable(L, LGL_UOP);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, -3, u);
  }
  lua_remove(L, -2);
}

void lgl_push_uop_owned(lua_State *L, lg_uop *u) {
  lgl_push_uop(L, u);
  lg_uop_release(u);
}

lg_uop *lgl_to_uop(lua_State *L, int idx) {
  uop_box *b = luaL_testudata(L, idx, LGL_UOP);
  return b ? b->u : NULL;
}

lg_uop *lgl_check_uop(lua_State *L, int idx) {
  uop_box *b = luaL_testudata(L, idx, LGL_UOP);
  if (!b) luaL_typeerror(L, idx, "UOp");
  return b->u;
}

static int uop_gc(lua_State *L) {
  uop_box *b = luaL_checkudata(L, 1, LGL_UOP);
  lg_uop_release(b->u);
  b->u = NULL;
  return 0;
}

/* ---- args --------------------------------------------------------------------------------- */

void lgl_check_arg(lua_State *L, int idx, lg_arg *out) {
  idx = lua_absindex(L, idx);
  *out = (lg_arg){0};
  switch (lua_type(L, idx)) {
  case LUA_TNONE:
  case LUA_TNIL: break;
  case LUA_TBOOLEAN: out->kind = LG_ARG_INT, out->i = lua_toboolean(L, idx); break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) out->kind = LG_ARG_INT, out->i = lua_tointeger(L, idx);
    else out->kind = LG_ARG_FLOAT, out->f = lua_tonumber(L, idx);
    break;
  case LUA_TSTRING: out->kind = LG_ARG_STR, out->s = lua_tostring(L, idx); break;
  case LUA_TTABLE: {
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx), first = 1;
    if (n > 0 && lua_rawgeti(L, idx, 1) == LUA_TSTRING) {
      out->s = lua_tostring(L, -1); /* the table keeps the string alive */
      first = 2;
    }
    if (n > 0) lua_pop(L, 1);
    out->kind = first == 2 ? LG_ARG_STR_INTS : LG_ARG_INTS;
    out->n = (int32_t)(n - first + 1);
    int64_t *ints = lua_newuserdatauv(L, sizeof(int64_t) * (size_t)(out->n ? out->n : 1), 0);
    for (lua_Integer i = first; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      int ok;
      ints[i - first] = lua_tointegerx(L, -1, &ok);
      if (!ok) luaL_argerror(L, idx, lua_pushfstring(L, "arg list item %d is not an integer", (int)i));
      lua_pop(L, 1);
    }
    out->ints = ints;
    return; /* the buffer is the scratch value */
  }
  default: luaL_argerror(L, idx, lua_pushfstring(L, "an arg cannot be a %s", luaL_typename(L, idx)));
  }
  lua_pushnil(L);
}

void lgl_push_arg(lua_State *L, const lg_uop *u) {
  const lg_arg *a = lg_uop_arg(u);
  switch (a->kind) {
  case LG_ARG_INT:
    if (lg_uop_op(u) == LG_OP_CONST && lg_dtype_kind(lg_uop_dtype(u)) == 'b') lua_pushboolean(L, a->i != 0);
    else lua_pushinteger(L, a->i);
    break;
  case LG_ARG_FLOAT: lua_pushnumber(L, a->f); break;
  case LG_ARG_STR: lua_pushstring(L, a->s); break;
  case LG_ARG_INTS:
  case LG_ARG_STR_INTS: {
    int off = a->kind == LG_ARG_STR_INTS;
    lua_createtable(L, a->n + off, 0);
    if (off) {
      lua_pushstring(L, a->s);
      lua_rawseti(L, -2, 1);
    }
    for (int32_t i = 0; i < a->n; i++) {
      lua_pushinteger(L, a->ints[i]);
      lua_rawseti(L, -2, i + 1 + off);
    }
    break;
  }
  default: lua_pushnil(L);
  }
}

/* ---- building nodes ----------------------------------------------------------------------- */

static lg_uop *build(lua_State *L, int32_t op, lg_dtype dt, lg_uop *const *src, int32_t n, const lg_arg *arg) {
  lg_ctx *ctx = lgl_ctx(L);
  lg_uop *u;
  if (lg_uop_new(ctx, op, dt, src, n, arg, &u)) lgl_fail(L, ctx);
  return u;
}

/* The value at idx as a node of dtype dt: a UOp as it is, a number or boolean as a CONST. */
static lg_uop *operand(lua_State *L, int idx, lg_dtype dt, const char *opname) {
  lg_uop *u = lgl_to_uop(L, idx);
  if (u) return lg_uop_retain(u);
  lg_ctx *ctx = lgl_ctx(L);
  char name[64];
  lg_dtype_name(dt, name, sizeof name);
  if (lg_dtype_is_ptr(dt) || lg_dtype_lanes(dt) != 1 || lg_dtype_kind(dt) == 'v')
    luaL_error(L, "%s: a number cannot stand for a %s operand", opname, name);
  lg_status st;
  if (lua_isboolean(L, idx)) {
    st = lg_uop_const_int(ctx, dt, lua_toboolean(L, idx), &u);
  } else if (lua_isinteger(L, idx)) {
    st = lg_uop_const_int(ctx, dt, lua_tointeger(L, idx), &u);
  } else if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Number v = lua_tonumber(L, idx);
    if (lg_dtype_kind(dt) != 'f' && v != floor(v))
      luaL_error(L, "%s: %s is not a value of %s", opname, lua_tostring(L, idx), name);
    st = lg_uop_const_float(ctx, dt, v, &u);
  } else {
    return luaL_error(L, "%s: expected a UOp or a number, got %s", opname, luaL_typename(L, idx)), NULL;
  }
  if (st) lgl_fail(L, ctx);
  return u;
}

static void check_class(lua_State *L, int32_t op, lg_dtype dt) {
  char k = lg_dtype_kind(dt);
  uint32_t need = k == 'f' ? LG_OPF_FLOATOK : k == 'b' ? LG_OPF_BOOLOK : LG_OPF_INTOK;
  if (lg_op_flags(op) & need) return;
  char name[64];
  lg_dtype_name(dt, name, sizeof name);
  luaL_error(L, "%s: not defined for %s operands", lg_op_name(op), name);
}

/* An ALU node over the values at first..first+n-1; dtype from the first UOp among them. */
static int alu(lua_State *L, int32_t op, int first, int n) {
  lg_uop *src[3];
  lg_dtype dt = 0;
  int found = 0;
  int vfirst = op == LG_OP_WHERE ? first + 1 : first; /* WHERE's dtype is its branches' */
  for (int i = vfirst; i < first + n && !found; i++) {
    lg_uop *u = lgl_to_uop(L, i);
    if (u) dt = lg_uop_dtype(u), found = 1;
  }
  if (!found) {
    if (op != LG_OP_WHERE) return luaL_error(L, "%s: needs at least one UOp operand", lg_op_name(op));
    return luaL_error(L, "WHERE: needs a UOp for one of its branches");
  }
  for (int i = 0; i < n; i++) {
    lg_dtype want = (op == LG_OP_WHERE && i == 0) ? lg_dtype_vec(LG_DT_BOOL, lg_dtype_lanes(dt)) : dt;
    src[i] = operand(L, first + i, want, lg_op_name(op));
    if (lg_uop_dtype(src[i]) != want) {
      char a[64], b[64];
      lg_dtype_name(lg_uop_dtype(src[i]), a, sizeof a);
      lg_dtype_name(want, b, sizeof b);
      for (int j = 0; j <= i; j++) lg_uop_release(src[j]);
      return luaL_error(L, "%s: operand %d is %s, expected %s (cast it first)", lg_op_name(op), i + 1, a, b);
    }
  }
  check_class(L, op, dt);
  lg_dtype out = lg_op_flags(op) & LG_OPF_CMP ? lg_dtype_vec(LG_DT_BOOL, lg_dtype_lanes(dt)) : dt;
  lg_ctx *ctx = lgl_ctx(L);
  lg_uop *u;
  lg_status st = lg_uop_new(ctx, op, out, src, n, NULL, &u);
  for (int i = 0; i < n; i++) lg_uop_release(src[i]);
  if (st) return lgl_fail(L, ctx);
  lgl_push_uop_owned(L, u);
  return 1;
}

#define BINOP(fname, OP) \
  static int fname(lua_State *L) { return alu(L, OP, 1, 2); }
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
BINOP(m_lt, LG_OP_CMPLT)
BINOP(m_ne, LG_OP_CMPNE)
BINOP(m_eq, LG_OP_CMPEQ)
BINOP(m_max, LG_OP_MAX)
#undef BINOP

static int m_gt(lua_State *L) { /* a > b is b < a */
  lua_settop(L, 2);
  lua_rotate(L, 1, 1);
  return alu(L, LG_OP_CMPLT, 1, 2);
}

static int m_unm(lua_State *L) { return alu(L, LG_OP_NEG, 1, 1); }
static int m_where(lua_State *L) { return alu(L, LG_OP_WHERE, 1, 3); }

static int unary(lua_State *L, int32_t op) {
  lua_settop(L, 1);
  lgl_check_uop(L, 1);
  return alu(L, op, 1, 1);
}
static int m_sqrt(lua_State *L) { return unary(L, LG_OP_SQRT); }
static int m_exp2(lua_State *L) { return unary(L, LG_OP_EXP2); }
static int m_log2(lua_State *L) { return unary(L, LG_OP_LOG2); }
static int m_sin(lua_State *L) { return unary(L, LG_OP_SIN); }
static int m_recip(lua_State *L) { return unary(L, LG_OP_RECIPROCAL); }
static int m_trunc(lua_State *L) { return unary(L, LG_OP_TRUNC); }

static int m_bnot(lua_State *L) { /* ~x: XOR with all ones (true for bool) */
  lg_uop *x = lgl_check_uop(L, 1);
  lua_settop(L, 1);
  if (lg_dtype_kind(lg_uop_dtype(x)) == 'b') lua_pushboolean(L, 1);
  else lua_pushinteger(L, -1);
  return alu(L, LG_OP_XOR, 1, 2);
}

static int convert(lua_State *L, int32_t op) {
  lg_uop *x = lgl_check_uop(L, 1);
  lg_dtype dt = lgl_check_dtype(L, 2);
  lgl_push_uop_owned(L, build(L, op, dt, &x, 1, NULL));
  return 1;
}
static int m_cast(lua_State *L) { return convert(L, LG_OP_CAST); }
static int m_bitcast(lua_State *L) { return convert(L, LG_OP_BITCAST); }

/* core.uop(op, dtype, {src...}, arg) */
static int l_uop(lua_State *L) {
  lua_settop(L, 4);
  const char *opname = luaL_checkstring(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &op_ids_key); /* name -> op: no string compares per node */
  lua_pushvalue(L, 1);
  int32_t op = lua_rawget(L, -2) == LUA_TNUMBER ? (int32_t)lua_tointeger(L, -1) : -1;
  lua_pop(L, 2);
  if (op < 0) return luaL_argerror(L, 1, lua_pushfstring(L, "unknown op '%s'", opname));
  lg_dtype dt = lua_isnoneornil(L, 2) ? LG_DT_VOID : lgl_check_dtype(L, 2);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  int32_t n = lua_isnoneornil(L, 3) ? 0 : (int32_t)lua_rawlen(L, 3);
  lg_uop **src = lua_newuserdatauv(L, sizeof *src * (size_t)(n ? n : 1), 0); /* freed by the GC */
  for (int32_t i = 0; i < n; i++) {
    lua_rawgeti(L, 3, i + 1);
    src[i] = lgl_to_uop(L, -1);
    if (!src[i]) return luaL_error(L, "%s: source %d is a %s, not a UOp", opname, i + 1, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  lg_arg arg;
  lgl_check_arg(L, 4, &arg);
  lgl_push_uop_owned(L, build(L, op, dt, src, n, &arg));
  return 1;
}

/* core.const(dtype, value) */
static int l_const(lua_State *L) {
  lg_dtype dt = lgl_check_dtype(L, 1);
  luaL_argcheck(L, lua_type(L, 2) == LUA_TNUMBER || lua_isboolean(L, 2), 2, "number or boolean expected");
  lua_settop(L, 2);
  lgl_push_uop_owned(L, operand(L, 2, dt, "CONST"));
  return 1;
}

/* core.var(name, min, max [, dtype = int32]) */
static int l_var(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  int64_t range[2] = {luaL_checkinteger(L, 2), luaL_checkinteger(L, 3)};
  lg_dtype dt = lua_isnoneornil(L, 4) ? LG_DT_INT32 : lgl_check_dtype(L, 4);
  if (range[0] > range[1]) return luaL_error(L, "var '%s': min %I > max %I", name, range[0], range[1]);
  lg_arg arg = {.kind = LG_ARG_STR_INTS, .s = name, .n = 2, .ints = range};
  lgl_push_uop_owned(L, build(L, LG_OP_DEFINE_VAR, dt, NULL, 0, &arg));
  return 1;
}

/* u:replace{op=, dtype=, src=, arg=}: the same node with the given fields changed */
static int m_replace(lua_State *L) {
  lg_uop *u = lgl_check_uop(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_pushcfunction(L, l_uop);
  if (lua_getfield(L, 2, "op") == LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushstring(L, lg_op_name(lg_uop_op(u)));
  }
  if (lua_getfield(L, 2, "dtype") == LUA_TNIL) {
    lua_pop(L, 1);
    lgl_push_dtype(L, lg_uop_dtype(u));
  }
  if (lua_getfield(L, 2, "src") == LUA_TNIL) {
    lua_pop(L, 1);
    lua_createtable(L, lg_uop_nsrc(u), 0);
    for (int32_t i = 0; i < lg_uop_nsrc(u); i++) {
      lgl_push_uop(L, lg_uop_src(u, i));
      lua_rawseti(L, -2, i + 1);
    }
  }
  if (lua_getfield(L, 2, "arg") == LUA_TNIL) {
    lua_pop(L, 1);
    lgl_push_arg(L, u);
  }
  lua_call(L, 4, 1);
  return 1;
}

static int m_fold(lua_State *L) {
  lg_ctx *ctx = lgl_ctx(L);
  lg_uop *out;
  if (lg_uop_fold(ctx, lgl_check_uop(L, 1), &out)) return lgl_fail(L, ctx);
  if (out) lgl_push_uop_owned(L, out);
  else lua_pushnil(L);
  return 1;
}

static int m_verify(lua_State *L) {
  lg_ctx *ctx = lgl_ctx(L);
  if (lg_uop_verify(ctx, lgl_check_uop(L, 1))) return lgl_fail(L, ctx);
  lua_settop(L, 1);
  return 1;
}

static int m_tostring(lua_State *L) {
  lg_ctx *ctx = lgl_ctx(L);
  char *s;
  if (lg_uop_format(ctx, lgl_check_uop(L, 1), &s)) return lgl_fail(L, ctx);
  size_t n = strlen(s);
  lua_pushlstring(L, s, n && s[n - 1] == '\n' ? n - 1 : n); /* print adds the last newline */
  lg_free(s);
  return 1;
}

static int m_size(lua_State *L) {
  int64_t n = lg_uop_size(lgl_check_uop(L, 1));
  if (n < 0) return luaL_error(L, "size: out of memory");
  lua_pushinteger(L, n);
  return 1;
}

static int m_bounds(lua_State *L) {
  int64_t lo, hi;
  if (!lg_uop_bounds(lgl_check_uop(L, 1), &lo, &hi)) return 0;
  lua_pushinteger(L, lo);
  lua_pushinteger(L, hi);
  return 2;
}

/* u:toposort(): every node reachable from u, sources before users */
static int m_toposort(lua_State *L) {
  lg_uop *root = lgl_check_uop(L, 1);
  int64_t n = lg_uop_size(root);
  lg_uop **buf = n < 0 ? NULL : lua_newuserdatauv(L, sizeof *buf * (size_t)n, 0);
  if (n < 0 || lg_uop_toposort(root, buf, n) != n) return luaL_error(L, "toposort: out of memory");
  lua_createtable(L, (int)n, 0);
  for (int64_t i = 0; i < n; i++) {
    lgl_push_uop(L, buf[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* core.nodes({root...}) -> the nodes of the graphs, sources first, each once (the order of
 * core.structure's key) */
static int l_nodes(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int32_t n = (int32_t)lua_rawlen(L, 1);
  lua_newtable(L); /* seen: node pointer -> true */
  int seen = lua_gettop(L);
  lua_newtable(L);
  int out = lua_gettop(L);
  lua_Integer k = 0;
  for (int32_t r = 0; r < n; r++) {
    lua_rawgeti(L, 1, r + 1);
    lg_uop *root = lgl_to_uop(L, -1);
    if (!root) return luaL_error(L, "nodes: item %d is a %s, not a UOp", r + 1, luaL_typename(L, -1));
    lua_pop(L, 1);
    int64_t m = lg_uop_size(root);
    lg_uop **buf = m < 0 ? NULL : lua_newuserdatauv(L, sizeof *buf * (size_t)(m ? m : 1), 0);
    if (m < 0 || lg_uop_toposort(root, buf, m) != m) return luaL_error(L, "nodes: out of memory");
    for (int64_t i = 0; i < m; i++) {
      if (lua_rawgetp(L, seen, buf[i]) != LUA_TNIL) {
        lua_pop(L, 1);
        continue;
      }
      lua_pop(L, 1);
      lua_pushboolean(L, 1);
      lua_rawsetp(L, seen, buf[i]);
      lgl_push_uop(L, buf[i]);
      lua_rawseti(L, out, ++k);
    }
    lua_pop(L, 1); /* buf */
  }
  return 1;
}

/* core.view_as(node, like) -> RESHAPE of node to like's dtype and shape (a realized value seen
 * with the shape of the node it was computed for), without a shape table in Lua */
static int l_view_as(lua_State *L) {
  lg_uop *u = lgl_check_uop(L, 1), *like = lgl_check_uop(L, 2);
  int32_t nd = lg_uop_ndim(like);
  lg_arg arg = {.kind = LG_ARG_INTS, .n = nd < 0 ? 0 : nd, .ints = lg_uop_shape(like)};
  lg_uop *out, *src[1] = {u};
  lg_ctx *ctx = lgl_ctx(L);
  if (lg_uop_new(ctx, LG_OP_RESHAPE, lg_uop_dtype(like), src, 1, &arg, &out)) return lgl_fail(L, ctx);
  lgl_push_uop_owned(L, out);
  return 1;
}

/* core.structure({root...}) -> key, {BUFFER node...}: lg_graph_signature of the graphs */
static int l_structure(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int32_t n = (int32_t)lua_rawlen(L, 1);
  lg_uop **roots = lua_newuserdatauv(L, sizeof *roots * (size_t)(n ? n : 1), 0);
  for (int32_t i = 0; i < n; i++) {
    lua_rawgeti(L, 1, i + 1);
    roots[i] = lgl_to_uop(L, -1);
    if (!roots[i]) return luaL_error(L, "structure: item %d is a %s, not a UOp", i + 1, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  lg_signature sig;
  lg_ctx *ctx = lgl_ctx(L);
  if (lg_graph_signature(ctx, roots, n, &sig) != LG_OK) return lgl_fail(L, ctx);
  lua_pushlstring(L, sig.key, sig.len);
  lua_createtable(L, (int)sig.nbufs, 0);
  for (int64_t i = 0; i < sig.nbufs; i++) {
    lgl_push_uop(L, sig.bufs[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lg_signature_free(&sig);
  return 2;
}

/* __index: fields by number through upvalue 2 (name -> field), then the methods (upvalue 1).
 * Upvalue 3 holds the op names, so reading u.op makes no new string. */
enum { F_OP = 1, F_DTYPE, F_ARG, F_SRC, F_VMIN, F_VMAX, F_HASH, F_SHAPE, F_NDIM, F_NUMEL };
static const char *const field_names[] = {"op",   "dtype", "arg",  "src",   "vmin", "vmax",
                                          "hash", "shape", "ndim", "numel", NULL};

static int uop_index(lua_State *L) {
  lg_uop *u = lgl_check_uop(L, 1);
  lua_pushvalue(L, 2);
  int field = lua_rawget(L, lua_upvalueindex(2)) == LUA_TNUMBER ? (int)lua_tointeger(L, -1) : 0;
  lua_pop(L, 1);
  int64_t lo, hi;
  switch (field) {
  case F_OP: lua_rawgeti(L, lua_upvalueindex(3), lg_uop_op(u) + 1); return 1;
  case F_DTYPE: lgl_push_dtype(L, lg_uop_dtype(u)); return 1;
  case F_ARG: lgl_push_arg(L, u); return 1;
  case F_SRC:
    lua_createtable(L, lg_uop_nsrc(u), 0);
    for (int32_t i = 0; i < lg_uop_nsrc(u); i++) {
      lgl_push_uop(L, lg_uop_src(u, i));
      lua_rawseti(L, -2, i + 1);
    }
    return 1;
  case F_VMIN:
  case F_VMAX:
    if (!lg_uop_bounds(u, &lo, &hi)) return 0;
    lua_pushinteger(L, field == F_VMIN ? lo : hi);
    return 1;
  case F_HASH: lua_pushinteger(L, (lua_Integer)lg_uop_hash(u)); return 1;
  case F_SHAPE:
    if (lg_uop_ndim(u) < 0) return 0;
    lua_createtable(L, lg_uop_ndim(u), 0);
    for (int32_t i = 0; i < lg_uop_ndim(u); i++) {
      lua_pushinteger(L, lg_uop_shape(u)[i]);
      lua_rawseti(L, -2, i + 1);
    }
    return 1;
  case F_NDIM:
    if (lg_uop_ndim(u) < 0) return 0;
    lua_pushinteger(L, lg_uop_ndim(u));
    return 1;
  case F_NUMEL: { /* the element count of the shape, without making the shape's table */
    if (lg_uop_ndim(u) < 0) return 0;
    lua_Integer n = 1;
    for (int32_t i = 0; i < lg_uop_ndim(u); i++) n *= lg_uop_shape(u)[i];
    lua_pushinteger(L, n);
    return 1;
  }
  default: lua_pushvalue(L, 2); lua_rawget(L, lua_upvalueindex(1)); return 1;
  }
}

static const luaL_Reg uop_methods[] = {
    {"lt", m_lt}, {"gt", m_gt}, {"ne", m_ne}, {"eq", m_eq}, {"max", m_max}, {"where", m_where},
    {"cast", m_cast}, {"bitcast", m_bitcast}, {"sqrt", m_sqrt}, {"exp2", m_exp2}, {"log2", m_log2},
    {"sin", m_sin}, {"reciprocal", m_recip}, {"trunc", m_trunc}, {"fold", m_fold}, {"verify", m_verify},
    {"format", m_tostring}, {"size", m_size}, {"bounds", m_bounds}, {"toposort", m_toposort},
    {"replace", m_replace}, {NULL, NULL}};

static const luaL_Reg uop_meta[] = {
    {"__gc", uop_gc}, {"__tostring", m_tostring}, {"__add", m_add}, {"__sub", m_sub}, {"__mul", m_mul},
    {"__div", m_div}, {"__idiv", m_idiv}, {"__mod", m_mod}, {"__pow", m_pow}, {"__unm", m_unm},
    {"__band", m_band}, {"__bor", m_bor}, {"__bxor", m_bxor}, {"__shl", m_shl}, {"__shr", m_shr},
    {"__bnot", m_bnot}, {NULL, NULL}};

static const luaL_Reg uop_funcs[] = {
    {"uop", l_uop}, {"const", l_const}, {"var", l_var}, {"structure", l_structure}, {"nodes", l_nodes}, {"view_as", l_view_as},
    {NULL, NULL}};

void lgl_open_uop(lua_State *L) {
  lua_createtable(L, 0, lg_op_count());
  for (int32_t i = 0; i < lg_op_count(); i++) {
    lua_pushinteger(L, i);
    lua_setfield(L, -2, lg_op_name(i));
  }
  lua_rawsetp(L, LUA_REGISTRYINDEX, &op_ids_key);
  lua_newtable(L);
  lua_newtable(L);
  lua_pushliteral(L, "v");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &cache_key);

  luaL_newmetatable(L, LGL_UOP);
  luaL_setfuncs(L, uop_meta, 0);
  luaL_newlib(L, uop_methods); /* methods, extended from Lua through core.UOp */
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "UOp");
  lua_newtable(L);
  for (int i = 0; field_names[i]; i++) {
    lua_pushinteger(L, i + 1);
    lua_setfield(L, -2, field_names[i]);
  }
  lua_createtable(L, lg_op_count(), 0);
  for (int32_t i = 0; i < lg_op_count(); i++) {
    lua_pushstring(L, lg_op_name(i));
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushcclosure(L, uop_index, 3);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);

  luaL_setfuncs(L, uop_funcs, 0);
  lua_createtable(L, 0, lg_op_count());
  for (int32_t i = 0; i < lg_op_count(); i++) {
    lua_pushstring(L, lg_op_name(i));
    lua_setfield(L, -2, lg_op_name(i));
  }
  lua_setfield(L, -2, "ops");
}
