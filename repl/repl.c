/* repl.c: running chunks with Ctrl-C, and the read-eval-print loop (after lua.c, with torch7
 * trepl's niceties). Each input is compiled first as `return <input>` so expressions print their
 * values, then as statements; input is incomplete exactly when the compiler's message ends in
 * <eof>, and the loop then reads more lines (prompt `>>`). A trailing `;` silences the printing;
 * `_` holds the first value of the last input that returned any. Errors print a traceback and the
 * session goes on. On a terminal, lines come from readline with the history in
 * ~/.luagrad_history, and Ctrl-C at the prompt drops the input instead of ending the session.
 * A first line starting with `?` or `:` and a letter is a command: `?x` runs help(x), `:time
 * [on|off]` prints (or stops printing) the time each input takes, results printed included.
 * The global `help` and the Tab completion come from the Lua module luagrad.help (help.help and
 * help.complete): readline hands complete() the word before the cursor, where `.` and `:` do not
 * break words, and gets back the whole words that can replace it. */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
#define WORD_BREAKS " \t\n\"\\'`@$><=;|&{}()[],+-*/%^~#"

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

enum { LINE_EOF, LINE_OK, LINE_INTERRUPTED, LINE_COMMAND };

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

/* `?x` or `:name ...` (Lua has no statement that starts so; `::label::` has two colons) */
static int is_command(const char *line) {
  line += strspn(line, " \t");
  return line[0] == '?' || (line[0] == ':' && isalpha((unsigned char)line[1]));
}

/* Read one whole input, continuing incomplete ones, and compile it: on LINE_OK the function or
 * the error message is on top and *status is the load status; on LINE_COMMAND the line is. */
static int read_input(lua_State *L, int tty, const char *history, int *status, int *silent) {
  lua_settop(L, 0);
  int r = push_line(L, tty, 1);
  if (r == LINE_OK && is_command(lua_tostring(L, 1))) r = LINE_COMMAND;
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
  if (r != LINE_OK && r != LINE_COMMAND) return r;
  if (history && lua_rawlen(L, 1) > 0) {
    add_history(lua_tostring(L, 1));
    append_history(1, history);
  }
  if (r == LINE_OK) lua_remove(L, 1);
  return r;
}

static int timing; /* :time on */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void run_input(lua_State *L, int silent) {
  double start = now();
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
  if (timing) {
    double t = now() - start;
    printf(t < 1 ? "-- %.3f ms\n" : "-- %.3f s\n", t < 1 ? t * 1e3 : t);
  }
}

/* The command line on top: `?x` runs help(x) (`?` alone help()), `:time [on|off]`. */
static void run_command(lua_State *L) {
  const char *line = lua_tostring(L, -1);
  line += strspn(line, " \t");
  if (line[0] == '?') {
    const char *src = lua_pushfstring(L, "help(%s)", line + 1);
    int status = luaL_loadbuffer(L, src, strlen(src), "=stdin");
    lua_remove(L, -2);
    if (status == LUA_OK)
      run_input(L, 1);
    else
      lgr_report(L, status, NULL);
    return;
  }
  char name[16] = "", arg[16] = "", extra[2];
  int n = sscanf(line, ":%15s %15s %1s", name, arg, extra);
  int on = strcmp(arg, "on") == 0, off = strcmp(arg, "off") == 0;
  if (strcmp(name, "time") == 0 && (n == 1 || (n == 2 && (on || off)))) {
    timing = n == 1 ? !timing : on;
    printf("timing %s\n", timing ? "on" : "off");
  } else {
    fflush(stdout);
    fprintf(stderr, "unknown command %s (commands: ?expr for help(expr), :time [on|off])\n", line);
    fflush(stderr);
  }
}

/* Tab completion: the state and the registry reference of luagrad.help's complete(word). The
 * generator hands readline the strings of the list that complete() left on top of the stack. */
static lua_State *completion_state;
static int completer = LUA_NOREF;

static char *next_match(const char *text, int state) {
  static lua_Integer i;
  lua_State *L = completion_state;
  (void)text;
  i = state == 0 ? 1 : i + 1;
  char *match = lua_rawgeti(L, -1, i) == LUA_TSTRING ? strdup(lua_tostring(L, -1)) : NULL;
  lua_pop(L, 1);
  return match;
}

static char **complete(const char *text, int start, int end) {
  lua_State *L = completion_state;
  (void)start, (void)end;
  rl_attempted_completion_over = 1;      /* no file names when nothing matches */
  rl_completion_append_character = '\0'; /* "lg.Tensor" may go on with "." or ":" */
  char **matches = NULL;
  if (!lua_checkstack(L, 3)) return NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, completer);
  lua_pushstring(L, text);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) matches = rl_completion_matches(text, next_match);
  lua_pop(L, 1);
  return matches;
}

/* The global help (unless the session has one) and, on a terminal, completion: both from
 * luagrad.help; without that module the loop runs without them. */
static void open_help(lua_State *L, int tty) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luagrad.help");
  if (lgr_report(L, lgr_docall(L, 1, 1), "luagrad: no help or completion") != LUA_OK) return;
  if (lua_getglobal(L, "help") == LUA_TNIL) {
    lua_getfield(L, -2, "help");
    lua_setglobal(L, "help");
  }
  lua_pop(L, 1);
  if (tty) {
    lua_getfield(L, -1, "complete");
    completer = luaL_ref(L, LUA_REGISTRYINDEX);
    completion_state = L;
    rl_attempted_completion_function = complete;
    rl_completer_word_break_characters = WORD_BREAKS;
  }
  lua_pop(L, 1);
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
  open_help(L, tty);
  int r, status = LUA_OK, silent = 0;
  while ((r = read_input(L, tty, history, &status, &silent)) != LINE_EOF) {
    if (r == LINE_INTERRUPTED) continue;
    if (r == LINE_COMMAND)
      run_command(L);
    else if (status == LUA_OK)
      run_input(L, silent);
    else
      lgr_report(L, status, NULL);
    fflush(stdout);
  }
  lua_settop(L, 0);
  if (history) history_truncate_file(history, HISTORY_LINES);
}
