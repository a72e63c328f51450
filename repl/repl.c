/* repl.c: running chunks with Ctrl-C, and the read-eval-print loop (after lua.c, with torch7
 * trepl's niceties). Each input is compiled first as `return <input>` so expressions print their
 * values, then as statements; input is incomplete exactly when the compiler's message ends in
 * <eof>, and the loop then reads more lines (prompt `>>`). A trailing `;` silences the printing;
 * `_` holds the first value of the last input that returned any. Errors print a traceback and the
 * session goes on. On a terminal, lines come from readline with the history in
 * ~/.luagrad_history, and Ctrl-C at the prompt drops the input instead of ending the session. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <readline/history.h>
#include <readline/readline.h>

#include "repl.h"

#define PROMPT "> "
#define PROMPT2 ">> "
#define HISTORY_FILE "/.luagrad_history"
#define HISTORY_LINES 1000
#define EOFMARK "<eof>"

/* A signal handler can reach only globals, so as in lua.c these two are: the state whose chunk
 * is running (the handler sets a hook in it that raises "interrupted!"), and a flag telling the
 * line reader that Ctrl-C came while it waited for a key. */
static lua_State *volatile running;
static volatile sig_atomic_t interrupted;

static void set_signal(int sig, void (*handler)(int)) {
  struct sigaction sa;
  sa.sa_handler = handler;
  sa.sa_flags = 0; /* no SA_RESTART: a read() waiting for a key fails with EINTR */
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

static void on_sigint(int sig) {
  lua_State *L = running;
  if (L) {
    set_signal(sig, SIG_DFL); /* a second Ctrl-C before the hook runs ends the process */
    lua_sethook(L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
  } else {
    interrupted = 1;
  }
}

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int lgr_docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  running = L;
  set_signal(SIGINT, on_sigint);
  int status = lua_pcall(L, narg, nres, base);
  set_signal(SIGINT, SIG_DFL);
  running = NULL;
  if (lua_gethook(L) == stop_hook) lua_sethook(L, NULL, 0, 0); /* Ctrl-C after the chunk ended */
  lua_remove(L, base);
  return status;
}

int lgr_report(lua_State *L, int status, const char *prefix) {
  if (status == LUA_OK) return status;
  const char *msg = lua_tostring(L, -1);
  fflush(stdout); /* keep the order of results and errors when both go to one pipe */
  if (prefix) fprintf(stderr, "%s: ", prefix);
  fprintf(stderr, "%s\n", msg ? msg : "(error object is not a string)");
  fflush(stderr);
  lua_pop(L, 1);
  return status;
}

/* readline's key reader, changed to give up the line on Ctrl-C: readline's own signal handling
 * is off, so SIGINT (on_sigint, no SA_RESTART) makes read() fail with EINTR; end of input on an
 * emptied line makes readline return NULL, and the flag tells that from a real end of input. */
static int read_key(FILE *in) {
  for (;;) {
    unsigned char c;
    ssize_t n = read(fileno(in), &c, 1);
    if (n == 1) return c;
    if (n == 0 || errno != EINTR) return EOF;
    if (interrupted) {
      rl_replace_line("", 1);
      return EOF;
    }
  }
}

enum { LINE_EOF, LINE_OK, LINE_INTERRUPTED };

static const char *get_prompt(lua_State *L, int first) {
  lua_getglobal(L, first ? "_PROMPT" : "_PROMPT2");
  const char *p = lua_tostring(L, -1);
  lua_pop(L, 1); /* a string held by a global stays alive */
  return p ? p : first ? PROMPT : PROMPT2;
}

/* Push the next line of input, without its newline. */
static int push_line(lua_State *L, int tty, int first) {
  char *line = NULL;
  if (tty) {
    interrupted = 0;
    set_signal(SIGINT, on_sigint);
    line = readline(get_prompt(L, first));
    set_signal(SIGINT, SIG_DFL);
    if (interrupted) {
      free(line);
      return LINE_INTERRUPTED;
    }
    if (!line) return LINE_EOF;
    lua_pushstring(L, line);
  } else {
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
      free(line);
      return LINE_EOF;
    }
    if (n > 0 && line[n - 1] == '\n') n--;
    lua_pushlstring(L, line, (size_t)n);
  }
  free(line);
  return LINE_OK;
}

static int incomplete(lua_State *L, int status) {
  size_t len;
  const char *msg = lua_tolstring(L, -1, &len);
  return status == LUA_ERRSYNTAX && len >= strlen(EOFMARK) &&
         strcmp(msg + len - strlen(EOFMARK), EOFMARK) == 0;
}

/* Compile the input at index 1 as `return <input>` (without a trailing `;`, which sets *silent)
 * and, failing that, as statements. Leaves the function or the error message on top; returns the
 * load status, or INCOMPLETE when the error of either form ends in <eof> (that one is on top). */
enum { INCOMPLETE = -1 };
static int load_input(lua_State *L, int *silent) {
  size_t len;
  const char *src = lua_tolstring(L, 1, &len);
  size_t n = len;
  while (n > 0 && strchr(" \t\r\n", src[n - 1])) n--;
  *silent = n > 0 && src[n - 1] == ';';
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "return ");
  luaL_addlstring(&b, src, n - (size_t)*silent);
  luaL_pushresult(&b);
  int status = luaL_loadbuffer(L, lua_tostring(L, -1), lua_rawlen(L, -1), "=stdin");
  lua_remove(L, -2);
  if (status == LUA_OK) return status;
  if (incomplete(L, status)) {
    if (luaL_loadbuffer(L, src, len, "=stdin") == LUA_OK) {
      lua_remove(L, -2);
      return LUA_OK;
    }
    lua_pop(L, 1);
    return INCOMPLETE;
  }
  lua_pop(L, 1);
  status = luaL_loadbuffer(L, src, len, "=stdin");
  return incomplete(L, status) ? INCOMPLETE : status;
}

/* Read one whole input, continuing incomplete ones, and compile it: on LINE_OK the function or
 * the error message is on top and *status is the load status. */
static int read_input(lua_State *L, int tty, const char *history, int *status, int *silent) {
  lua_settop(L, 0);
  int r = push_line(L, tty, 1);
  while (r == LINE_OK && (*status = load_input(L, silent)) == INCOMPLETE) {
    r = push_line(L, tty, 0);
    if (r == LINE_EOF) { /* the input ends inside a statement: report the <eof> error */
      *status = LUA_ERRSYNTAX;
      r = LINE_OK;
      break;
    }
    if (r == LINE_OK) { /* input, <eof> message, next line -> input "\n" next line */
      lua_remove(L, -2);
      lua_pushliteral(L, "\n");
      lua_insert(L, -2);
      lua_concat(L, 3);
    }
  }
  if (r != LINE_OK) return r;
  if (history && lua_rawlen(L, 1) > 0) {
    add_history(lua_tostring(L, 1));
    append_history(1, history);
  }
  lua_remove(L, 1);
  return r;
}

static void run_input(lua_State *L, int silent) {
  int status = lgr_docall(L, 0, LUA_MULTRET);
  if (status == LUA_OK && lua_gettop(L) > 0) {
    lua_pushvalue(L, 1);
    lua_setglobal(L, "_");
    if (!silent) {
      luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
      lua_getglobal(L, "print");
      lua_insert(L, 1);
      status = lgr_docall(L, lua_gettop(L) - 1, 0);
    }
  }
  lgr_report(L, status, NULL);
}

void lgr_repl(lua_State *L, int tty) {
  char path[4096];
  const char *home = getenv("HOME");
  const char *history = NULL;
  if (tty) {
    rl_readline_name = "luagrad";
    rl_catch_signals = 0;
    rl_getc_function = read_key;
    if (home && *home && snprintf(path, sizeof path, "%s" HISTORY_FILE, home) < (int)sizeof path) {
      history = path;
      if (read_history(history) != 0) write_history(history); /* append_history needs the file */
    }
  }
  int r, status = LUA_OK, silent = 0;
  while ((r = read_input(L, tty, history, &status, &silent)) != LINE_EOF) {
    if (r == LINE_INTERRUPTED) continue;
    if (status == LUA_OK)
      run_input(L, silent);
    else
      lgr_report(L, status, NULL);
    fflush(stdout);
  }
  lua_settop(L, 0);
  if (history) history_truncate_file(history, HISTORY_LINES);
}
