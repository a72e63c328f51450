/* main.c: the `luagrad` executable: a Lua 5.4 interpreter with luagrad preloaded. The command
 * line is lua.c's (script and `arg`, -e, -i, -l mod, -l g=mod, -v, -E, -W, -, --, LUA_INIT);
 * the interactive loop is in repl.c. package.preload["luagrad.core"] is the engine this program
 * links (libluagrad.so), and package.path/cpath start with the Lua directories of the prefix the
 * executable sits in (<exe dir>/..), so the build tree and an installed tree both just work. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lualib.h>

#include "lgl.h"
#include "repl.h"

#define PROGNAME "luagrad"
#define INIT_VAR "LUA_INIT" /* and LUA_INIT_5_4 first, as lua.c */
#define VERSION_MARK '-'   /* -l mod-2 sets global mod: lua.c's LUA_IGMARK */

static void print_usage(const char *badoption) {
  if (badoption[1] == 'e' || badoption[1] == 'l')
    fprintf(stderr, PROGNAME ": '%s' needs argument\n", badoption);
  else
    fprintf(stderr, PROGNAME ": unrecognized option '%s'\n", badoption);
  fputs("usage: " PROGNAME " [options] [script [args]]\n"
        "Available options are:\n"
        "  -e stat   execute string 'stat'\n"
        "  -i        enter interactive mode after executing 'script'\n"
        "  -l mod    require library 'mod' into global 'mod'\n"
        "  -l g=mod  require library 'mod' into global 'g'\n"
        "  -v        show version information\n"
        "  -E        ignore environment variables\n"
        "  -W        turn warnings on\n"
        "  --        stop handling options\n"
        "  -         stop handling options and execute stdin\n",
        stderr);
}

static void print_version(void) { puts(PROGNAME " (" LUA_COPYRIGHT ")"); }

/* package.preload["luagrad.core"]: the engine linked into this program. And the search paths
 * start with <prefix>/share/lua/5.4 and <prefix>/lib/lua/5.4, where prefix is the directory above
 * the executable's (found through /proc/self/exe, so links to the executable work; without /proc
 * the paths stay as they are). */
static void open_luagrad(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_luagrad_core);
  lua_setfield(L, -2, "luagrad.core");
  lua_pop(L, 1);
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  char *slash = n > 0 ? memrchr(exe, '/', (size_t)n) : NULL;
  if (!slash) return;
  *slash = '\0';
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/../share/lua/5.4/?.lua;%s/../share/lua/5.4/?/init.lua;", exe, exe);
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_pushfstring(L, "%s/../lib/lua/5.4/?.so;", exe);
  lua_getfield(L, -2, "cpath");
  lua_concat(L, 2);
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
}

static int dochunk(lua_State *L, int status) {
  if (status == LUA_OK) status = lgr_docall(L, 0, 0);
  return lgr_report(L, status, PROGNAME);
}

static int dofile(lua_State *L, const char *name) { return dochunk(L, luaL_loadfile(L, name)); }

static int dostring(lua_State *L, const char *s, const char *name) {
  return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

/* -l mod: global mod = require "mod" (a suffix after '-' is dropped from the global's name, as
 * lua.c does for versioned modules); -l g=mod: global g = require "mod". */
static int dolibrary(lua_State *L, char *globname) {
  char *suffix = NULL;
  char *modname = strchr(globname, '=');
  if (!modname) {
    modname = globname;
    suffix = strchr(modname, VERSION_MARK);
  } else {
    *modname++ = '\0';
  }
  lua_getglobal(L, "require");
  lua_pushstring(L, modname);
  int status = lgr_docall(L, 1, 1);
  if (status == LUA_OK) {
    if (suffix) *suffix = '\0';
    lua_setglobal(L, globname);
  }
  return lgr_report(L, status, PROGNAME);
}

/* arg[0] is the script, arg[1..] its arguments, options at negative indices. */
static void create_arg_table(lua_State *L, char **argv, int argc, int script) {
  lua_createtable(L, argc - (script + 1), script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

static int handle_script(lua_State *L, char **argv) {
  const char *fname = argv[0];
  if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0) fname = NULL; /* stdin */
  int status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    if (lua_getglobal(L, "arg") != LUA_TTABLE) luaL_error(L, "'arg' is not a table");
    int n = (int)luaL_len(L, -1);
    luaL_checkstack(L, n + 3, "too many arguments to script");
    for (int i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
    lua_remove(L, -n - 1);
    status = lgr_docall(L, n, LUA_MULTRET);
  }
  return lgr_report(L, status, PROGNAME);
}

enum { HAS_ERROR = 1, HAS_I = 2, HAS_V = 4, HAS_E = 8, HAS_NOENV = 16 };

/* Scan the options; *first becomes the index of the script (0: none) or of the bad option. */
static int collect_args(char **argv, int *first) {
  int args = 0;
  *first = 0;
  for (int i = 1; argv[i]; i++) {
    *first = i;
    if (argv[i][0] != '-') return args;
    switch (argv[i][1]) {
    case '-':
      if (argv[i][2] != '\0') return HAS_ERROR;
      *first = argv[i + 1] ? i + 1 : 0;
      return args;
    case '\0':
      return args; /* the script is "-": stdin */
    case 'E':
      if (argv[i][2] != '\0') return HAS_ERROR;
      args |= HAS_NOENV;
      break;
    case 'W':
      if (argv[i][2] != '\0') return HAS_ERROR;
      break;
    case 'i':
      args |= HAS_I; /* -i implies -v */
      /* fall through */
    case 'v':
      if (argv[i][2] != '\0') return HAS_ERROR;
      args |= HAS_V;
      break;
    case 'e':
      args |= HAS_E;
      /* fall through */
    case 'l':
      if (argv[i][2] == '\0') {
        i++;
        if (!argv[i] || argv[i][0] == '-') return HAS_ERROR;
      }
      break;
    default:
      return HAS_ERROR;
    }
  }
  *first = 0;
  return args;
}

/* Run -e, -l and -W in order; 0 when one of them failed. */
static int run_args(lua_State *L, char **argv, int n) {
  for (int i = 1; i < n; i++) {
    int option = argv[i][1];
    if (option == 'e' || option == 'l') {
      char *extra = argv[i] + 2;
      if (*extra == '\0') extra = argv[++i];
      int status = option == 'e' ? dostring(L, extra, "=(command line)") : dolibrary(L, extra);
      if (status != LUA_OK) return 0;
    } else if (option == 'W') {
      lua_warning(L, "@on", 0);
    }
  }
  return 1;
}

static int handle_luainit(lua_State *L) {
  const char *name = "=" INIT_VAR LUA_VERSUFFIX;
  const char *init = getenv(name + 1);
  if (!init) {
    name = "=" INIT_VAR;
    init = getenv(name + 1);
  }
  if (!init) return LUA_OK;
  return init[0] == '@' ? dofile(L, init + 1) : dostring(L, init, name);
}

static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = lua_touserdata(L, 2);
  int script;
  int args = collect_args(argv, &script);
  luaL_checkversion(L);
  if (args == HAS_ERROR) {
    print_usage(argv[script]);
    return 0;
  }
  if (args & HAS_V) print_version();
  if (args & HAS_NOENV) {
    lua_pushboolean(L, 1); /* tells the package library to ignore LUA_PATH and LUA_CPATH */
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  open_luagrad(L);
  create_arg_table(L, argv, argc, script);
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN, 0, 0);
  if (!(args & HAS_NOENV) && handle_luainit(L) != LUA_OK) return 0;
  if (!run_args(L, argv, script > 0 ? script : argc)) return 0;
  if (script > 0 && handle_script(L, argv + script) != LUA_OK) return 0;
  int tty = isatty(STDIN_FILENO);
  if (args & HAS_I) {
    lgr_repl(L, tty);
  } else if (script == 0 && !(args & (HAS_E | HAS_V))) {
    if (tty) print_version();
    lgr_repl(L, tty);
  }
  lua_pushboolean(L, 1);
  return 1;
}

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  if (!L) {
    fputs(PROGNAME ": cannot create state: not enough memory\n", stderr);
    return EXIT_FAILURE;
  }
  lua_gc(L, LUA_GCSTOP); /* no collection while the libraries open */
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  int status = lua_pcall(L, 2, 1, 0);
  int ok = lua_toboolean(L, -1);
  lgr_report(L, status, PROGNAME);
  lua_close(L);
  return ok && status == LUA_OK ? EXIT_SUCCESS : EXIT_FAILURE;
}
