/* lua_module.c: luaopen_luagrad_core. One engine context per Lua state, kept in the registry
 * and freed when the state closes (it is created first, so it is finalized last). */
#include <time.h>

#include "lgl.h"

#define LGL_CONTEXT "luagrad.Context"

typedef struct {
  lg_ctx *ctx;
} ctx_box;

static const char ctx_key = 'c'; /* its address is the registry key */

lg_ctx *lgl_ctx(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ctx_key);
  ctx_box *box = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (!box || !box->ctx) luaL_error(L, "luagrad: the engine context of this Lua state is closed");
  return box->ctx;
}

int lgl_fail(lua_State *L, lg_ctx *ctx) { return luaL_error(L, "%s", lg_ctx_error(ctx)); }

static int ctx_gc(lua_State *L) {
  ctx_box *box = luaL_checkudata(L, 1, LGL_CONTEXT);
  lg_ctx_free(box->ctx);
  box->ctx = NULL;
  return 0;
}

static int l_live_nodes(lua_State *L) {
  lua_pushinteger(L, lg_ctx_live_nodes(lgl_ctx(L)));
  lua_pushinteger(L, lg_ctx_live_bytes(lgl_ctx(L)));
  return 2;
}

/* core.clock(): seconds of the monotonic clock, for timing (os.clock is CPU time) */
static int l_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
  return 1;
}

static void ensure_ctx(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &ctx_key) != LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  ctx_box *box = lua_newuserdatauv(L, sizeof *box, 0);
  box->ctx = NULL;
  if (luaL_newmetatable(L, LGL_CONTEXT)) {
    lua_pushcfunction(L, ctx_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, ctx_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_setmetatable(L, -2);
  if (lg_ctx_new(&box->ctx) != LG_OK) luaL_error(L, "luagrad: out of memory creating the engine context");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &ctx_key);
  lgl_install_host(L, box->ctx);
}

int luaopen_luagrad_core(lua_State *L) {
  ensure_ctx(L);
  lua_newtable(L);
  lgl_open_dtype(L);
  lgl_open_uop(L);
  lgl_open_pattern(L);
  lgl_open_rewrite(L);
  lgl_open_device(L);
  lgl_open_io(L);
  lgl_open_opt(L);
  lua_pushcfunction(L, l_live_nodes);
  lua_setfield(L, -2, "live_nodes");
  lua_pushcfunction(L, l_clock);
  lua_setfield(L, -2, "clock");
  return 1;
}
