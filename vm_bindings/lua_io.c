/* lua_io.c: files from Lua (the engine's side of luagrad.state and luagrad.data).
 *   core.safetensors_load(path) -> {{name =, shape = {...}, node = BUFFER UOp}, ...}, {key = value}
 *   core.safetensors_save(path, {{name =, shape = {...}, node = BUFFER UOp}, ...} [, {key = value}])
 *   core.idx_load(path) -> BUFFER UOp, shape {...}
 *   core.gather_rows(node, perm, row_elems) -> BUFFER UOp: rows perm[1], perm[2], ... (1-based) of
 *     the BUFFER node's values, rows of row_elems elements. */
#include "lgl.h"

#define LGL_SAFETENSORS "luagrad.SafetensorsFile"

typedef struct {
  lg_safetensors *f; /* NULL once closed */
} st_box;

static int st_gc(lua_State *L) {
  st_box *b = luaL_checkudata(L, 1, LGL_SAFETENSORS);
  lg_safetensors_close(b->f);
  b->f = NULL;
  return 0;
}

static void push_shape(lua_State *L, const int64_t *shape, int32_t ndim) {
  lua_createtable(L, ndim, 0);
  for (int32_t d = 0; d < ndim; d++) {
    lua_pushinteger(L, shape[d]);
    lua_rawseti(L, -2, d + 1);
  }
}

static int l_safetensors_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lg_ctx *ctx = lgl_ctx(L);
  st_box *box = lua_newuserdatauv(L, sizeof *box, 0); /* closes the file if anything below raises */
  box->f = NULL;
  luaL_setmetatable(L, LGL_SAFETENSORS);
  lg_device *cpu;
  if (lg_device_get(ctx, "CPU", &cpu) || lg_safetensors_open(ctx, path, &box->f)) return lgl_fail(L, ctx);
  int64_t n = lg_safetensors_count(box->f);
  lua_createtable(L, (int)n, 0);
  for (int64_t i = 0; i < n; i++) {
    lg_tensor_info info;
    lg_safetensors_info(box->f, i, &info);
    lua_createtable(L, 0, 3);
    lua_pushstring(L, info.name);
    lua_setfield(L, -2, "name");
    push_shape(L, info.shape, info.ndim);
    lua_setfield(L, -2, "shape");
    lg_buffer *buf;
    if (lg_safetensors_buffer(ctx, box->f, i, cpu, &buf)) return lgl_fail(L, ctx);
    lg_uop *u;
    lg_status st = lg_buffer_node(ctx, buf, info.dtype, &u);
    lg_buffer_release(buf);
    if (st) return lgl_fail(L, ctx);
    lgl_push_uop_owned(L, u);
    lua_setfield(L, -2, "node");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  int64_t nm = lg_safetensors_metadata_count(box->f);
  lua_createtable(L, 0, (int)nm);
  for (int64_t i = 0; i < nm; i++) {
    const char *k, *v;
    lg_safetensors_metadata(box->f, i, &k, &v);
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
  }
  lg_safetensors_close(box->f);
  box->f = NULL;
  return 2;
}

/* The BUFFER node at the top of the stack, for item i of what. */
static lg_uop *buffer_node_at(lua_State *L, const char *what, lua_Integer i) {
  lg_uop *u = lgl_to_uop(L, -1);
  if (!u || !lg_uop_buffer(u)) luaL_error(L, "%s: item %I has no BUFFER node", what, i);
  return u;
}

static int l_safetensors_save(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int has_meta = !lua_isnoneornil(L, 3);
  if (has_meta) luaL_checktype(L, 3, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
  lg_tensor_entry *es = lua_newuserdatauv(L, sizeof *es * (size_t)(n ? n : 1), 0);
  int64_t *shapes = lua_newuserdatauv(L, sizeof *shapes * (size_t)(n ? n : 1) * 16, 0);
  for (lua_Integer i = 0; i < n; i++) {
    if (lua_rawgeti(L, 2, i + 1) != LUA_TTABLE) return luaL_error(L, "safetensors_save: item %I is not a table", i + 1);
    lua_getfield(L, -1, "name");
    es[i].name = lua_tostring(L, -1); /* the string stays referenced by the item */
    if (!es[i].name) return luaL_error(L, "safetensors_save: item %I has no name", i + 1);
    lua_pop(L, 1);
    lua_getfield(L, -1, "node");
    lg_uop *u = buffer_node_at(L, "safetensors_save", i + 1);
    es[i].buf = lg_uop_buffer(u);
    es[i].dtype = lg_uop_dtype(u);
    lua_pop(L, 1);
    lua_getfield(L, -1, "shape");
    luaL_checktype(L, -1, LUA_TTABLE);
    lua_Integer nd = (lua_Integer)lua_rawlen(L, -1);
    if (nd > 16) return luaL_error(L, "safetensors_save: tensor '%s' has %I dims, at most 16", es[i].name, nd);
    es[i].ndim = (int32_t)nd;
    es[i].shape = shapes + 16 * i;
    for (lua_Integer d = 0; d < nd; d++) {
      lua_rawgeti(L, -1, d + 1);
      shapes[16 * i + d] = lua_tointeger(L, -1);
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  int64_t nmeta = 0;
  const char **keys = NULL, **values = NULL;
  if (has_meta) {
    for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1)) nmeta++;
    keys = lua_newuserdatauv(L, sizeof *keys * (size_t)(nmeta ? nmeta : 1), 0);
    values = lua_newuserdatauv(L, sizeof *values * (size_t)(nmeta ? nmeta : 1), 0);
    int64_t i = 0;
    for (lua_pushnil(L); lua_next(L, 3); lua_pop(L, 1), i++) {
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "safetensors_save: metadata keys and values must be strings (a %s key with a %s value)",
                          luaL_typename(L, -2), luaL_typename(L, -1));
      keys[i] = lua_tostring(L, -2);
      values[i] = lua_tostring(L, -1);
    }
  }
  lg_ctx *ctx = lgl_ctx(L);
  if (lg_safetensors_save(ctx, path, es, n, keys, values, nmeta)) return lgl_fail(L, ctx);
  return 0;
}

static int l_idx_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lg_ctx *ctx = lgl_ctx(L);
  lg_buffer *buf;
  lg_dtype dt;
  int32_t nd;
  int64_t dims[16];
  if (lg_idx_load(ctx, path, &buf, &dt, &nd, dims)) return lgl_fail(L, ctx);
  lg_uop *u;
  lg_status st = lg_buffer_node(ctx, buf, dt, &u);
  lg_buffer_release(buf);
  if (st) return lgl_fail(L, ctx);
  lgl_push_uop_owned(L, u);
  push_shape(L, dims, nd);
  return 2;
}

static int l_gather_rows(lua_State *L) {
  lg_uop *u = lgl_check_uop(L, 1);
  luaL_argcheck(L, lg_uop_buffer(u) != NULL, 1, "a BUFFER node");
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer row = luaL_checkinteger(L, 3);
  luaL_argcheck(L, row >= 1, 3, "rows hold at least one element");
  lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
  int64_t *idx = lua_newuserdatauv(L, sizeof *idx * (size_t)(n ? n : 1), 0);
  for (lua_Integer i = 0; i < n; i++) {
    int ok;
    lua_rawgeti(L, 2, i + 1);
    idx[i] = (int64_t)lua_tointegerx(L, -1, &ok) - 1;
    if (!ok) return luaL_error(L, "gather_rows: index %I is not an integer", i + 1);
    lua_pop(L, 1);
  }
  lg_ctx *ctx = lgl_ctx(L);
  lg_buffer *out;
  int32_t size = lg_dtype_itemsize(lg_uop_dtype(u));
  if (row > INT64_MAX / size) return luaL_error(L, "gather_rows: rows of %I elements are too long", row);
  if (lg_gather_rows(ctx, lg_uop_buffer(u), row * size, idx, n, &out)) return lgl_fail(L, ctx);
  lg_uop *res;
  lg_status st = lg_buffer_node(ctx, out, lg_uop_dtype(u), &res);
  lg_buffer_release(out);
  if (st) return lgl_fail(L, ctx);
  lgl_push_uop_owned(L, res);
  return 1;
}

static const luaL_Reg io_funcs[] = {{"safetensors_load", l_safetensors_load},
                                    {"safetensors_save", l_safetensors_save},
                                    {"idx_load", l_idx_load},
                                    {"gather_rows", l_gather_rows},
                                    {NULL, NULL}};

void lgl_open_io(lua_State *L) {
  luaL_newmetatable(L, LGL_SAFETENSORS);
  lua_pushcfunction(L, st_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, st_gc);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  luaL_setfuncs(L, io_funcs, 0);
}
