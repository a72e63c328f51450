/* repl.h: the parts of the luagrad executable. main.c handles the command line the way lua.c
 * does; repl.c runs chunks (Ctrl-C interrupts them) and holds the interactive loop. */
#ifndef LGR_REPL_H
#define LGR_REPL_H
#include <lua.h>

/* Call the function below narg arguments with a traceback handler; Ctrl-C raises "interrupted!"
 * inside the running chunk. Returns the lua_pcall status; on error the message is on top. */
int lgr_docall(lua_State *L, int narg, int nres);
/* Print the error message on top of the stack (prefixed by `prefix: ` unless prefix is NULL) and
 * pop it when status is not LUA_OK. Returns status. */
int lgr_report(lua_State *L, int status, const char *prefix);
/* The read-eval-print loop, until end of input. With tty set: readline, prompts and history;
 * otherwise plain lines from stdin, no prompts (for pipes). */
void lgr_repl(lua_State *L, int tty);

#endif
