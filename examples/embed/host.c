/* host.c: a C program with its own Lua state that uses luagrad, the way an application embeds
 * it. It links libluagrad.so and registers the engine's module opener in package.preload, so the
 * C side comes from the library it was built against (no search for core.so on LUA_CPATH, no
 * second copy of the engine); only the Lua files come from the search path, where the build
 * puts LUAGRAD_LUADIR (the installed share/lua/5.4). It runs script.lua, which builds
 * (x*4 + 3) // 4 over x in [0, hi] and simplifies it, sums squares with tensors, and reads its
 * results back in C.
 *
 *   make examples && build/examples/host examples/embed/script.lua 9 */
#include <stdio.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#ifndef LUAGRAD_LUADIR
#define LUAGRAD_LUADIR "/usr/local/share/lua/5.4"
#endif

int luaopen_luagrad_core(lua_State *L); /* in libluagrad.so */

/* Protected: set the state up and run the script with hi; returns the script's four results. */
static int run(lua_State *L) {
  const char *script = lua_touserdata(L, 1);
  const char *hi = lua_touserdata(L, 2);
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_luagrad_core);
  lua_setfield(L, -2, "luagrad.core");
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, LUAGRAD_LUADIR "/?.lua;" LUAGRAD_LUADIR "/?/init.lua;%s", lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_settop(L, 0);
  if (luaL_loadfile(L, script) != LUA_OK) return lua_error(L);
  lua_pushstring(L, hi);
  lua_call(L, 1, 4);
  return 4;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s script.lua [hi]\n", argv[0]);
    return 2;
  }
  lua_State *L = luaL_newstate();
  if (!L) return 1;
  lua_pushcfunction(L, run);
  lua_pushlightuserdata(L, argv[1]);
  lua_pushlightuserdata(L, argc > 2 ? argv[2] : "9");
  int status = lua_pcall(L, 2, 4, 0);
  if (status == LUA_OK && lua_isstring(L, 1) && lua_isstring(L, 2) && lua_isinteger(L, 3) && lua_isinteger(L, 4)) {
    printf("expression:\n%s\nsimplified:\n%s\nlargest value: %lld\nsum of squares by tensors: %lld\n",
           lua_tostring(L, 1), lua_tostring(L, 2), (long long)lua_tointeger(L, 3), (long long)lua_tointeger(L, 4));
  } else {
    fprintf(stderr, "host: %s\n", status != LUA_OK ? lua_tostring(L, -1) : "unexpected results");
    status = LUA_ERRRUN;
  }
  lua_close(L);
  return status == LUA_OK ? 0 : 1;
}
