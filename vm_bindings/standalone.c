/* standalone.c: lg_open / lg_close, for C hosts that use luagrad without Lua of their own
 * (linked into libluagrad.so only). lg_open makes a Lua 5.4 state, points its search paths at the
 * Lua files installed with this library, loads luagrad.core from this library (preload) and
 * requires "luagrad", so the context has every rule and pass.
 *
 * Like sqlite3_open, lg_open hands out the context even when loading luagrad fails (the message
 * is in lg_ctx_error), and the caller lg_closes it either way; when no context could be made,
 * *out is NULL and the status is LG_ERR_NOMEM or LG_ERR_HOST. lg_close takes only contexts from
 * lg_open.
 *
 * The context belongs to the state (a registry userdata frees it when the state closes); the way
 * back from the context to the state is the Lua rule host that luaopen_luagrad_core installs:
 * its `ud` points to the binding's host record, whose first member is the main lua_State*
 * (lgl_install_host in lua_pattern.c). lg_close relies on that.
 *
 * Where the Lua files are: this library sits either in <prefix>/lib (make install, the build
 * tree) or beside the Lua C modules in <prefix>/lib/lua/5.4 (luarocks); either way the files are
 * in <prefix>/share/lua/5.4 and C modules in <prefix>/lib/lua/5.4. LUA_PATH and LUA_CPATH still
 * apply, after these. */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#include "lgl.h"

/* The install prefix from this library's own path (malloc'd), or NULL. */
static char *find_prefix(void) {
  Dl_info info;
  if (!dladdr((void *)lg_open, &info) || !info.dli_fname) return NULL;
  char *path = realpath(info.dli_fname, NULL);
  if (!path) return NULL;
  char *slash = strrchr(path, '/');
  if (slash) *slash = '\0'; /* the library's directory */
  static const char *const libdirs[] = {"/lib/lua/5.4", "/lib"};
  for (size_t i = 0; i < sizeof libdirs / sizeof *libdirs; i++) {
    size_t n = strlen(path), k = strlen(libdirs[i]);
    if (n >= k && strcmp(path + n - k, libdirs[i]) == 0) {
      path[n - k] = '\0';
      return path;
    }
  }
  free(path);
  return NULL;
}

static void prepend(lua_State *L, const char *field, const char *entries) {
  lua_getglobal(L, "package");
  lua_pushstring(L, entries);
  lua_getfield(L, -2, field);
  lua_concat(L, 2);
  lua_setfield(L, -2, field);
  lua_pop(L, 1);
}

/* Protected: open the libraries and luagrad.core; returns the context. */
static int open_core(lua_State *L) {
  const char *prefix = lua_touserdata(L, 1);
  luaL_openlibs(L);
  if (prefix) {
    prepend(L, "path", lua_pushfstring(L, "%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua;",
                                       prefix, prefix));
    prepend(L, "cpath", lua_pushfstring(L, "%s/lib/lua/5.4/?.so;", prefix));
  }
  luaL_requiref(L, "luagrad.core", luaopen_luagrad_core, 0);
  lua_pushlightuserdata(L, lgl_ctx(L));
  return 1;
}

lg_status lg_open(lg_ctx **out) {
  *out = NULL;
  lua_State *L = luaL_newstate();
  if (!L) return LG_ERR_NOMEM;
  char *prefix = find_prefix();
  lua_pushcfunction(L, open_core);
  lua_pushlightuserdata(L, prefix);
  int status = lua_pcall(L, 1, 1, 0);
  free(prefix);
  if (status != LUA_OK) { /* no context to hold the message */
    lua_close(L);
    return status == LUA_ERRMEM ? LG_ERR_NOMEM : LG_ERR_HOST;
  }
  lg_ctx *ctx = lua_touserdata(L, -1);
  lua_pop(L, 1);
  *out = ctx;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luagrad");
  status = lua_pcall(L, 1, 0, 0);
  if (status == LUA_OK) return LG_OK;
  const char *msg = lua_tostring(L, -1);
  lg_status st = lg_ctx_fail(ctx, status == LUA_ERRMEM ? LG_ERR_NOMEM : LG_ERR_HOST,
                             "lg_open: require \"luagrad\": %s", msg ? msg : "(no message)");
  lua_pop(L, 1);
  return st;
}

void lg_close(lg_ctx *ctx) {
  if (ctx) lua_close(lgl_host_state(ctx));
}
