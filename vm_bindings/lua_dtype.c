/* lua_dtype.c: DType objects. One userdata per dtype value (cached in the registry), so dtypes
 * compare with == and work as table keys. */
#include <string.h>

#include "lgl.h"

typedef struct {
  lg_dtype dt;
} dt_box;

static const char cache_key = 'd'; /* its address is the registry key of the cache */

void lgl_push_dtype(lua_State *L, lg_dtype dt) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_key);
  if (lua_rawgeti(L, -1, (lua_Integer)dt) == LUA_TNIL) {
    lua_pop(L, 1);
    dt_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->dt = dt;
    luaL_setmetatable(L, LGL_DTYPE);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, (lua_Integer)dt);
  }
  lua_remove(L, -2);
}

int lgl_is_dtype(lua_State *L, int idx) { return luaL_testudata(L, idx, LGL_DTYPE) != NULL; }

lg_dtype lgl_check_dtype(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TSTRING) {
    int32_t dt = lg_dtype_lookup(lua_tostring(L, idx));
    if (dt < 0) luaL_argerror(L, idx, lua_pushfstring(L, "unknown dtype '%s'", lua_tostring(L, idx)));
    return (lg_dtype)dt;
  }
  dt_box *b = luaL_testudata(L, idx, LGL_DTYPE);
  if (!b) luaL_typeerror(L, idx, "dtype");
  return b->dt;
}

static int dt_tostring(lua_State *L) {
  char name[64];
  lg_dtype_name(lgl_check_dtype(L, 1), name, sizeof name);
  lua_pushstring(L, name);
  return 1;
}

static int dt_vec(lua_State *L) {
  lg_dtype dt = lgl_check_dtype(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 1 && n <= 65536, 2, "vector width must be 1..65536");
  luaL_argcheck(L, !lg_dtype_is_ptr(dt) && lg_dtype_lanes(dt) == 1 && lg_dtype_kind(dt) != 'v', 1,
                "only a scalar dtype has vector forms");
  lgl_push_dtype(L, lg_dtype_vec(dt, (uint32_t)n));
  return 1;
}

static int dt_ptr(lua_State *L) {
  static const char *const spaces[] = {"global", "local", "reg", NULL};
  lg_dtype dt = lgl_check_dtype(L, 1);
  luaL_argcheck(L, !lg_dtype_is_ptr(dt), 1, "already a pointer dtype");
  lgl_push_dtype(L, lg_dtype_ptr(dt, luaL_checkoption(L, 2, "global", spaces)));
  return 1;
}

static int dt_index(lua_State *L) {
  static const char *const kinds[128] = {['v'] = "void", ['b'] = "bool", ['i'] = "int", ['u'] = "uint", ['f'] = "float"};
  static const char *const spaces[] = {"global", "local", "reg"};
  lg_dtype dt = lgl_check_dtype(L, 1);
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "name") == 0) return dt_tostring(L);
  if (strcmp(k, "itemsize") == 0) lua_pushinteger(L, lg_dtype_itemsize(dt));
  else if (strcmp(k, "kind") == 0) lua_pushstring(L, kinds[(int)lg_dtype_kind(dt)]);
  else if (strcmp(k, "lanes") == 0) lua_pushinteger(L, lg_dtype_lanes(dt));
  else if (strcmp(k, "scalar") == 0) lgl_push_dtype(L, lg_dtype_scalar(dt));
  else if (strcmp(k, "base") == 0) lgl_push_dtype(L, lg_dtype_base(dt));
  else if (strcmp(k, "is_ptr") == 0) lua_pushboolean(L, lg_dtype_is_ptr(dt));
  else if (strcmp(k, "addrspace") == 0 && lg_dtype_is_ptr(dt)) lua_pushstring(L, spaces[lg_dtype_addrspace(dt)]);
  else if (strcmp(k, "vec") == 0) lua_pushcfunction(L, dt_vec);
  else if (strcmp(k, "ptr") == 0) lua_pushcfunction(L, dt_ptr);
  else lua_pushnil(L);
  return 1;
}

static int l_promote(lua_State *L) {
  lg_ctx *ctx = lgl_ctx(L);
  lg_dtype out;
  if (lg_dtype_promote(ctx, lgl_check_dtype(L, 1), lgl_check_dtype(L, 2), &out)) return lgl_fail(L, ctx);
  lgl_push_dtype(L, out);
  return 1;
}

void lgl_open_dtype(lua_State *L) {
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &cache_key);
  if (luaL_newmetatable(L, LGL_DTYPE)) {
    lua_pushcfunction(L, dt_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, dt_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  lua_createtable(L, 0, lg_dtype_count());
  for (int32_t i = 0; i < lg_dtype_count(); i++) {
    lgl_push_dtype(L, (lg_dtype)i);
    lua_getfield(L, -1, "name");
    lua_insert(L, -2);
    lua_rawset(L, -3);
  }
  lua_setfield(L, -2, "dtypes");
  lua_pushcfunction(L, l_promote);
  lua_setfield(L, -2, "promote");
}
